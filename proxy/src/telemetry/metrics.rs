//! Prometheus metrics of the data plane, served as text on the admin port's `/metrics`.
//!
//! Labels are config ids and stable category names only: never paths, query strings or
//! header values, so cardinality stays bounded and no secret can reach a scrape.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::sync::Arc;

use crate::telemetry::names;
use crate::telemetry::request_stats::RequestStats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SoqlLabels {
    pub connection: String,
    pub caller: String,
    /// allow, block, observe or rewrite.
    pub verdict: String,
    /// A rule id from the catalog, or `none` for an allowed query.
    pub rule: String,
}

/// Why a connection was turned away at the door (`gatehouse_connections_refused{reason}`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Refused {
    /// The data plane already holds `server.max_connections` caller connections.
    MaxConnections,
    /// The admin port already holds its own allowance of connections.
    AdminMaxConnections,
    /// The process is out of file descriptors: the connection stays in the listen backlog.
    FileLimit,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::MaxConnections => "max_connections",
            Refused::AdminMaxConnections => "admin_max_connections",
            Refused::FileLimit => "file_limit",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    pub reason: &'static str,
}

#[derive(Clone)]
pub struct Metrics {
    /// `gatehouse_requests_total`, `gatehouse_request_duration_seconds` and
    /// `gatehouse_requests_in_flight`, kept per worker.
    pub requests: Arc<RequestStats>,
    /// Open caller connections per worker (`gatehouse_worker_connections`), which also steer
    /// which worker accepts the next one.
    pub connections: Arc<crate::listen::balance::Balance>,
    pub connections_refused: Family<RefusedLabels, Counter>,
    pub policy_reloads: Family<OutcomeLabels, Counter>,
    pub soql_verdicts: Family<SoqlLabels, Counter>,
}

impl Metrics {
    /// `workers`: data-plane worker threads, each of which gets its own request statistics.
    pub fn register(registry: &mut Registry, workers: usize) -> Self {
        let requests = Arc::new(RequestStats::new(workers));
        requests.register(registry);
        let connections = crate::listen::balance::Balance::register(registry, workers);
        let connections_refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            names::CONNECTIONS_REFUSED.name,
            names::CONNECTIONS_REFUSED.help,
            connections_refused.clone(),
        );
        let policy_reloads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            names::POLICY_RELOADS.name,
            names::POLICY_RELOADS.help,
            policy_reloads.clone(),
        );
        let soql_verdicts = Family::<SoqlLabels, Counter>::default();
        registry.register(
            names::SOQL_VERDICTS.name,
            names::SOQL_VERDICTS.help,
            soql_verdicts.clone(),
        );
        Self {
            requests,
            connections,
            connections_refused,
            policy_reloads,
            soql_verdicts,
        }
    }

    /// Counts a connection turned away.
    pub fn refused(&self, reason: Refused) {
        self.connections_refused
            .get_or_create(&RefusedLabels {
                reason: reason.as_str(),
            })
            .inc();
    }
}
