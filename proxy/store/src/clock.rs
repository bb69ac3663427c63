//! The one clock that decides token expiry.
//!
//! Expiry is stored as wall-clock milliseconds because every process of a fleet reads the same
//! row from PostgreSQL. Inside a process, though, the instant that decides "is this token still
//! good" must follow tokio's clock, so that a paused-time test moves it and a wall-clock step
//! (NTP slew, a manual `date -s`) cannot make a live token look expired or a dead one look good.
//!
//! So `now_ms()` is a wall-clock anchor read once, plus the tokio `Instant` elapsed since that
//! anchor:
//! - at start it has the same value as `SystemTime::now()`;
//! - inside the process it is monotonic and immune to wall-clock steps;
//! - across processes, each process's reading drifts from the others only by the wall-clock
//!   correction applied after it started (NTP keeps that to milliseconds; a process started before
//!   a large step keeps the old reading until it restarts). Refresh margins are tens of seconds,
//!   and every refresh takes the row lock and re-reads the row, so a skewed replica refreshes a
//!   little early or late but never loses a rotated refresh token.
//!
//! Under paused time the tokio clock only moves when the test advances it, so `now_ms()` moves
//! with it.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

struct Anchor {
    wall_ms: i64,
    at: Instant,
}

static ANCHOR: OnceLock<Anchor> = OnceLock::new();

fn wall_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch on tokio's clock: expiry instants are shared by every
/// process of a fleet (see the module note for how this relates to the wall clock).
pub fn now_ms() -> i64 {
    let anchor = ANCHOR.get_or_init(|| Anchor {
        wall_ms: wall_now_ms(),
        at: Instant::now(),
    });
    let elapsed = Instant::now().saturating_duration_since(anchor.at);
    anchor
        .wall_ms
        .saturating_add(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::now_ms;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn now_ms_follows_paused_time() {
        let before = now_ms();
        tokio::time::advance(Duration::from_secs(3600)).await;
        let after = now_ms();
        // Each reading truncates to whole milliseconds, so the difference may be 1 ms short.
        assert!(
            (3_599_999..3_600_100).contains(&(after - before)),
            "an hour of paused time moves now_ms by an hour, moved {} ms",
            after - before
        );
    }

    #[tokio::test]
    async fn now_ms_starts_at_the_wall_clock() {
        let wall = super::wall_now_ms();
        assert!(
            (now_ms() - wall).abs() < 60_000,
            "now_ms agrees with SystemTime in a process that has not been paused"
        );
    }
}
