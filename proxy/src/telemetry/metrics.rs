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

/// The exposition formats `/metrics` answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// OpenMetrics 1.0, for a scraper that asks for it (Prometheus does by default).
    OpenMetrics,
    /// The Prometheus text format 0.0.4, for everything else (curl, promtool, older scrapers).
    Text,
}

impl Format {
    /// OpenMetrics only when the `Accept` header names it.
    pub fn negotiate(accept: Option<&http::HeaderValue>) -> Self {
        match accept.and_then(|v| v.to_str().ok()) {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The registry's families in `format`.
pub(crate) fn encode(registry: &Registry, format: Format) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(match format {
        Format::OpenMetrics => out,
        Format::Text => openmetrics_to_text(&out),
    })
}

/// OpenMetrics names a counter family without its `_total` suffix and ends with `# EOF`; the
/// text format names the family as its samples are named (`_total` included) and has neither
/// `# EOF` nor `# UNIT`. Without this, promtool and text-format scrapers see counters with no
/// help text and no type.
fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .filter(|name| !name.ends_with("_total"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + counters.len() * 12);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counter_families_as_their_samples() {
        let om = "# HELP gatehouse_requests Requests handled.\n# TYPE gatehouse_requests counter\ngatehouse_requests_total{a=\"b\"} 1\n# HELP g Gauge.\n# TYPE g gauge\ng 2\n# EOF\n";
        let text = openmetrics_to_text(om);
        assert_eq!(
            text,
            "# HELP gatehouse_requests_total Requests handled.\n# TYPE gatehouse_requests_total counter\ngatehouse_requests_total{a=\"b\"} 1\n# HELP g Gauge.\n# TYPE g gauge\ng 2\n"
        );
    }

    #[test]
    fn openmetrics_only_when_asked() {
        let prometheus = http::HeaderValue::from_static(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        );
        assert_eq!(Format::negotiate(Some(&prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::Text);
        let curl = http::HeaderValue::from_static("*/*");
        assert_eq!(Format::negotiate(Some(&curl)), Format::Text);
    }
}
