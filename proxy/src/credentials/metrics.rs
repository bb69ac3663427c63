//! Credential metrics. Labels are connection ids, states and outcomes: never token values.

use crate::telemetry::names;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    connection: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    connection: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabel {
    connection: String,
}

/// Every state a connection can be in, so a dashboard sees the 0s as well as the 1.
pub(crate) const STATES: &[&str] = &[
    "ok",
    "refreshing",
    "reauth_required",
    "token_endpoint_down",
    "store_unavailable",
    "misconfigured",
    "degraded",
    "no_token",
];

#[derive(Clone, Default)]
pub(crate) struct CredentialMetrics {
    state: Family<StateLabels, Gauge>,
    refreshes: Family<OutcomeLabels, Counter>,
    expiry: Family<ConnectionLabel, Gauge>,
}

impl CredentialMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            names::CREDENTIAL_STATE.name,
            names::CREDENTIAL_STATE.help,
            metrics.state.clone(),
        );
        registry.register(
            names::TOKEN_REFRESH.name,
            names::TOKEN_REFRESH.help,
            metrics.refreshes.clone(),
        );
        registry.register(
            names::TOKEN_EXPIRY.name,
            names::TOKEN_EXPIRY.help,
            metrics.expiry.clone(),
        );
        metrics
    }

    pub fn set_state(&self, connection: &str, current: &str) {
        for state in STATES {
            self.state
                .get_or_create(&StateLabels {
                    connection: connection.to_owned(),
                    state: (*state).to_owned(),
                })
                .set(i64::from(*state == current));
        }
    }

    /// `ok`, `adopted` (another process or waiter refreshed), `dead_grant`, `transient`,
    /// `misconfigured`, `store_error`.
    pub fn refreshed(&self, connection: &str, outcome: &str) {
        self.refreshes
            .get_or_create(&OutcomeLabels {
                connection: connection.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn set_expiry(&self, connection: &str, expires_at_ms: i64) {
        self.expiry
            .get_or_create(&ConnectionLabel {
                connection: connection.to_owned(),
            })
            .set(expires_at_ms / 1000);
    }
}
