//! Policy hot reload: the policy file is re-read when it changes (polled) or on SIGHUP. A file
//! that fails to load is rejected with every error logged, and the last good policy stays in
//! force; requests never see a half-loaded policy (the swap is one atomic pointer store).

use crate::config::load_policy_file;
use crate::state::AppState;
use crate::telemetry::metrics::OutcomeLabels;
use std::path::Path;
use std::sync::Arc;

pub async fn watch_policy(state: Arc<AppState>) {
    let Some(path) = state.config.policy.clone() else {
        return;
    };
    let mut last = fingerprint(&path);
    let mut hangup = hangup_signal();
    let mut interval = tokio::time::interval(state.config.server.policy_poll_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = interval.tick() => false,
            _ = recv(&mut hangup) => true,
        };
        let now = fingerprint(&path);
        if !forced && now == last {
            continue;
        }
        last = now;
        reload(&state, &path);
    }
}

/// Loads and swaps in the policy file; returns whether it was accepted.
pub fn reload(state: &AppState, path: &Path) -> bool {
    // A file written in place is empty for a moment (truncate, then write): read then, it would
    // load as a valid policy with no callers and lock everyone out. An empty file is never
    // taken as a new policy; the next change (or SIGHUP) brings the real one.
    if std::fs::read(path).is_ok_and(|bytes| bytes.iter().all(u8::is_ascii_whitespace)) {
        tracing::warn!(path = %path.display(), "policy file is empty; the previous policy stays in force");
        return false;
    }
    match load_policy_file(path, &state.config.connection_ids()) {
        Ok(policy) => {
            let callers = policy.caller_count();
            state.policy.store(Arc::new(policy));
            state
                .metrics
                .policy_reloads
                .get_or_create(&OutcomeLabels {
                    outcome: "ok".into(),
                })
                .inc();
            tracing::info!(path = %path.display(), callers, "policy reloaded");
            true
        }
        Err(errors) => {
            state
                .metrics
                .policy_reloads
                .get_or_create(&OutcomeLabels {
                    outcome: "error".into(),
                })
                .inc();
            for error in &errors.0 {
                // `problem`, not `message`: the JSON formatter puts fields beside the event's own
                // `message`, and a second key of the same name breaks log-based alerts.
                tracing::error!(location = %error.location, problem = %error.message, "policy rejected; the previous policy stays in force");
            }
            false
        }
    }
}

/// Content hash rather than mtime alone: editors and config-map updates can keep the mtime
/// or swap the file through a symlink.
fn fingerprint(path: &Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(path).ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn hangup_signal() -> Hangup {}

#[cfg(unix)]
async fn recv(signal: &mut Hangup) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
#[cfg(not(unix))]
async fn recv(_: &mut Hangup) {
    std::future::pending::<()>().await
}
