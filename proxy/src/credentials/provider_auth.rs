//! Whether the provider keeps taking a connection's credential, seen from the API answers
//! (the token manager only sees the token endpoint, which may be perfectly happy while the API
//! refuses every token it issues).
//!
//! - Every provider answer is one [`AuthSignal`]: a 2xx accepts the credential; what the
//!   provider's profile calls a refused credential (`Provider::rejects_credential`) rejects it.
//! - [`DEGRADED_AFTER`] rejections in a row show the connection `degraded` (reason
//!   `provider_auth`) until the next 2xx.
//! - A refresh whose brand-new token is refused as well proves that refreshing does not help:
//!   refresh-on-401 stops for a backoff ([`FIRST_REFRESH_BACKOFF`] doubling to
//!   [`MAX_REFRESH_BACKOFF`]), and callers get `provider_auth_rejected` with `Retry-After`
//!   instead of one token call (and, with rotation, one refresh-token rotation) per request.
//!   A 2xx ends the backoff.
//!
//! The hot path (a 2xx on a healthy connection) is one atomic load.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Rejections in a row after which a connection shows `degraded`: one stray 401 (a token
/// revoked and replaced in the same second) is normal; three in a row are not.
pub(crate) const DEGRADED_AFTER: u32 = 3;
/// How long refresh-on-401 pauses the first time a fresh token was refused too.
pub(crate) const FIRST_REFRESH_BACKOFF: Duration = Duration::from_secs(5);
/// The longest pause: a provider that refuses every token is retried every 5 minutes.
pub(crate) const MAX_REFRESH_BACKOFF: Duration = Duration::from_secs(300);

/// What one provider answer says about the credential it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthSignal {
    /// A 2xx: the credential works.
    Accepted,
    /// The provider refused the credential itself.
    Rejected,
    /// Anything else (a 404, a 5xx, a quota 429): says nothing about the credential.
    Neither,
}

impl AuthSignal {
    /// The signal of a provider answer, with the profile's word on what a refusal looks like.
    pub(crate) fn of(
        provider: &dyn gatehouse_adapters::Provider,
        status: http::StatusCode,
        headers: &http::HeaderMap,
    ) -> Self {
        if status.is_success() {
            AuthSignal::Accepted
        } else if provider.rejects_credential(status.as_u16(), headers) {
            AuthSignal::Rejected
        } else {
            AuthSignal::Neither
        }
    }
}

/// What a signal changed, for the state gauge and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    Unchanged,
    /// Now `degraded`, after this many rejections in a row.
    Degraded {
        rejections: u32,
    },
    /// Back to health after being degraded.
    Recovered,
}

#[derive(Default)]
struct RefreshBackoff {
    /// Fresh tokens refused in a row (each one doubles the pause).
    failures: u32,
    until: Option<Instant>,
    /// The newest token generation whose refusal counted: the other requests of a concurrent
    /// group replay with the same new token, and their refusals are one failure, not twenty.
    generation: u64,
}

/// One connection's provider-auth health.
#[derive(Default)]
pub(crate) struct AuthHealth {
    rejections: AtomicU32,
    degraded: AtomicBool,
    /// Mirrors `backoff.until.is_some()`, so a 2xx on a healthy connection takes no lock.
    backing_off: AtomicBool,
    backoff: Mutex<RefreshBackoff>,
}

impl AuthHealth {
    /// Counts one provider answer.
    pub(crate) fn record(&self, signal: AuthSignal) -> Transition {
        match signal {
            AuthSignal::Neither => Transition::Unchanged,
            AuthSignal::Accepted => {
                if self.rejections.load(Ordering::Relaxed) != 0 {
                    self.rejections.store(0, Ordering::Relaxed);
                }
                if self.backing_off.load(Ordering::Acquire) {
                    *self.backoff.lock() = RefreshBackoff::default();
                    self.backing_off.store(false, Ordering::Release);
                }
                if self.degraded.load(Ordering::Acquire)
                    && self.degraded.swap(false, Ordering::AcqRel)
                {
                    Transition::Recovered
                } else {
                    Transition::Unchanged
                }
            }
            AuthSignal::Rejected => {
                let rejections = self
                    .rejections
                    .fetch_add(1, Ordering::Relaxed)
                    .saturating_add(1);
                if rejections >= DEGRADED_AFTER && !self.degraded.swap(true, Ordering::AcqRel) {
                    Transition::Degraded { rejections }
                } else {
                    Transition::Unchanged
                }
            }
        }
    }

    /// A refresh's new token (of `generation`) was refused too: pause refresh-on-401 and show
    /// the connection degraded at once. Returns the time left until the next refresh may be
    /// tried, and the transition.
    pub(crate) fn fresh_token_rejected(&self, generation: u64) -> (Duration, Transition) {
        let now = Instant::now();
        let left = {
            let mut backoff = self.backoff.lock();
            if generation > backoff.generation || backoff.until.is_none() {
                backoff.generation = backoff.generation.max(generation);
                backoff.failures = backoff.failures.saturating_add(1);
                let delay = refresh_backoff(backoff.failures);
                backoff.until = Some(now + delay);
                self.backing_off.store(true, Ordering::Release);
            }
            backoff
                .until
                .map_or(Duration::ZERO, |until| until.saturating_duration_since(now))
        };
        let rejections = self
            .rejections
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let transition = if self.degraded.swap(true, Ordering::AcqRel) {
            Transition::Unchanged
        } else {
            Transition::Degraded { rejections }
        };
        (left, transition)
    }

    /// While refresh-on-401 is paused: the time left.
    pub(crate) fn refresh_paused_for(&self) -> Option<Duration> {
        if !self.backing_off.load(Ordering::Acquire) {
            return None;
        }
        let until = self.backoff.lock().until?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    pub(crate) fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Credential rejections in a row (for the status page).
    pub(crate) fn rejections(&self) -> u32 {
        self.rejections.load(Ordering::Relaxed)
    }
}

impl super::Credentials {
    /// Counts one provider answer to a request that carried `applied` (see `provider_auth`):
    /// a refused credential, a 2xx, or neither. On `DEGRADED_AFTER` refusals in a row the
    /// connection shows `degraded` (warn log, gauge) and an OAuth connection tries one
    /// refresh; the next 2xx brings it back.
    pub(crate) fn observe(
        &self,
        connection: &str,
        provider: &str,
        signal: AuthSignal,
        applied: &super::Applied,
    ) {
        let Some(health) = self.health.get(connection) else {
            return;
        };
        let transition = health.record(signal);
        self.after(connection, provider, transition);
        if matches!(transition, Transition::Degraded { .. }) {
            if let Some(manager) = &self.manager {
                manager.refresh_after_rejections(connection, applied.generation);
            }
        }
    }

    /// The answer to a replay after a refresh. A refused fresh token pauses refresh-on-401
    /// (the connection shows `degraded` at once) and the caller gets `provider_auth_rejected`
    /// with the time to the next allowed refresh, not the provider's 401.
    pub(crate) fn observe_replay(
        &self,
        connection: &str,
        provider: &str,
        signal: AuthSignal,
        applied: &super::Applied,
    ) -> Result<(), super::CredentialError> {
        let Some(health) = self.health.get(connection) else {
            return Ok(());
        };
        if signal != AuthSignal::Rejected {
            let transition = health.record(signal);
            self.after(connection, provider, transition);
            return Ok(());
        }
        let (left, transition) = health.fresh_token_rejected(applied.generation);
        self.after(connection, provider, transition);
        Err(super::CredentialError::ProviderAuthRejected {
            connection: connection.to_owned(),
            retry_after: left.max(Duration::from_secs(1)),
        })
    }

    /// The state gauge and the log line of a provider-auth transition.
    fn after(&self, connection: &str, provider: &str, transition: Transition) {
        match transition {
            Transition::Unchanged => return,
            Transition::Degraded { rejections } => tracing::warn!(
                connection,
                provider,
                consecutive_rejections = rejections,
                "provider keeps refusing the credential: connection degraded (provider_auth)"
            ),
            Transition::Recovered => tracing::info!(
                connection,
                provider,
                "provider accepts the credential again: connection ok"
            ),
        }
        let published = self
            .manager
            .as_ref()
            .is_some_and(|m| m.publish_state(connection));
        if let (false, Some(metrics)) = (published, &self.metrics) {
            let degraded = matches!(transition, Transition::Degraded { .. });
            metrics.set_state(connection, if degraded { "degraded" } else { "ok" });
        }
    }
}

/// The pause after `failures` fresh tokens were refused in a row: 5 s, 10 s, 20 s, ... 5 min.
fn refresh_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_REFRESH_BACKOFF
        .saturating_mul(1u32 << doublings)
        .min(MAX_REFRESH_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_refresh_pause_doubles_to_five_minutes_and_a_success_ends_it() {
        let health = AuthHealth::default();
        assert_eq!(health.refresh_paused_for(), None);
        let mut expected = [5u64, 10, 20, 40, 80, 160, 300, 300].into_iter();
        for generation in 1..=8u64 {
            let (left, _) = health.fresh_token_rejected(generation);
            let want = Duration::from_secs(expected.next().unwrap());
            assert_eq!(left, want, "after the refusal of generation {generation}");
            assert_eq!(health.refresh_paused_for(), Some(want));
            tokio::time::advance(want - Duration::from_millis(1)).await;
            assert!(health.refresh_paused_for().is_some(), "still paused");
            tokio::time::advance(Duration::from_millis(1)).await;
            assert_eq!(health.refresh_paused_for(), None, "the pause is over");
        }
        health.fresh_token_rejected(9);
        assert_eq!(health.record(AuthSignal::Accepted), Transition::Recovered);
        assert_eq!(health.refresh_paused_for(), None, "a 2xx ends the pause");
        let (left, _) = health.fresh_token_rejected(10);
        assert_eq!(left, FIRST_REFRESH_BACKOFF, "and starts the doubling over");
    }

    #[tokio::test(start_paused = true)]
    async fn a_concurrent_group_refused_with_one_token_counts_once() {
        let health = AuthHealth::default();
        let (first, transition) = health.fresh_token_rejected(7);
        assert_eq!(transition, Transition::Degraded { rejections: 1 });
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..19 {
            let (left, transition) = health.fresh_token_rejected(7);
            assert_eq!(transition, Transition::Unchanged);
            assert_eq!(left, first - Duration::from_secs(1), "the same pause");
        }
        tokio::time::advance(first).await;
        let (left, _) = health.fresh_token_rejected(8);
        assert_eq!(
            left,
            FIRST_REFRESH_BACKOFF * 2,
            "the next token's refusal doubles it"
        );
    }

    #[test]
    fn three_rejections_in_a_row_degrade_and_the_next_2xx_recovers() {
        let health = AuthHealth::default();
        assert_eq!(health.record(AuthSignal::Rejected), Transition::Unchanged);
        assert_eq!(health.record(AuthSignal::Rejected), Transition::Unchanged);
        // A 404 or a 5xx says nothing about the credential: the run goes on.
        assert_eq!(health.record(AuthSignal::Neither), Transition::Unchanged);
        assert!(!health.is_degraded());
        assert_eq!(
            health.record(AuthSignal::Rejected),
            Transition::Degraded { rejections: 3 }
        );
        assert_eq!(health.record(AuthSignal::Rejected), Transition::Unchanged);
        assert!(health.is_degraded());
        assert_eq!(health.rejections(), 4);
        assert_eq!(health.record(AuthSignal::Accepted), Transition::Recovered);
        assert!(!health.is_degraded());
        assert_eq!(health.rejections(), 0);
        assert_eq!(health.record(AuthSignal::Accepted), Transition::Unchanged);
        // A 2xx in between starts the count over.
        health.record(AuthSignal::Rejected);
        health.record(AuthSignal::Rejected);
        health.record(AuthSignal::Accepted);
        health.record(AuthSignal::Rejected);
        assert!(!health.is_degraded());
    }
}
