//! The metric-name contract: every metric Gatehouse exposes on `/metrics` is declared here,
//! with its type, help text, label names and (for histograms) bucket bounds. The code that
//! registers a metric takes its name and help from this module, the SLO rule generator and the
//! Grafana dashboards read it, and a test checks that a scrape exposes exactly these families
//! with exactly these labels. Renaming anything here is a breaking change for SREs' alerts and
//! dashboards: add beside, never rename.

/// The Prometheus type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric family as it appears in a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MetricDef {
    /// The family name as registered. Counters are exposed with `_total` appended
    /// ([`MetricDef::exposed`]); histograms with `_bucket`, `_sum` and `_count`.
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// Label names, in the order they are exposed (histograms add `le` on buckets).
    pub labels: &'static [&'static str],
}

impl MetricDef {
    /// The name a PromQL query uses for the family's main series.
    #[cfg(test)]
    pub fn exposed(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.name),
            Kind::Gauge | Kind::Histogram => self.name.to_owned(),
        }
    }
}

/// The labels of every per-request series.
pub(crate) const REQUEST_LABELS: &[&str] = &[
    "connection",
    "provider",
    "caller",
    "method",
    "status_class",
    "category",
];

pub(crate) const REQUESTS: MetricDef = MetricDef {
    name: "gatehouse_requests",
    help: "Requests handled, by outcome",
    kind: Kind::Counter,
    labels: REQUEST_LABELS,
};

pub(crate) const REQUEST_DURATION: MetricDef = MetricDef {
    name: "gatehouse_request_duration_seconds",
    help: "Time from request received to response headers sent",
    kind: Kind::Histogram,
    labels: REQUEST_LABELS,
};

/// Upper bounds of [`REQUEST_DURATION`] from 1 ms to 30 s: the proxy's own overhead sits in the
/// lowest ones, provider latency in the rest. A last, implicit bucket is `+Inf`. Latency SLOs
/// must pick a threshold that is one of these bounds.
pub(crate) const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub(crate) const REQUESTS_IN_FLIGHT: MetricDef = MetricDef {
    name: "gatehouse_requests_in_flight",
    help: "Requests being handled now",
    kind: Kind::Gauge,
    labels: &[],
};

pub(crate) const WORKER_CONNECTIONS: MetricDef = MetricDef {
    name: "gatehouse_worker_connections",
    help: "Open caller connections per data-plane worker",
    kind: Kind::Gauge,
    labels: &["worker"],
};

pub(crate) const CONNECTIONS_REFUSED: MetricDef = MetricDef {
    name: "gatehouse_connections_refused",
    help: "Connections closed as soon as they were accepted, or left unaccepted, by reason (max_connections, admin_max_connections, file_limit)",
    kind: Kind::Counter,
    labels: &["reason"],
};

pub(crate) const POLICY_RELOADS: MetricDef = MetricDef {
    name: "gatehouse_policy_reloads",
    help: "Policy reload attempts by outcome (ok, error)",
    kind: Kind::Counter,
    labels: &["outcome"],
};

pub(crate) const SOQL_VERDICTS: MetricDef = MetricDef {
    name: "gatehouse_soql_verdicts",
    help: "SOQL guard decisions: one per violated rule (block, observe, rewrite), or allow/none",
    kind: Kind::Counter,
    labels: &["connection", "caller", "verdict", "rule"],
};

pub(crate) const CREDENTIAL_STATE: MetricDef = MetricDef {
    name: "gatehouse_credential_state",
    help: "1 for the credential state each connection is in (ok, refreshing, reauth_required, token_endpoint_down, store_unavailable, misconfigured, degraded, no_token; static credentials: ok or degraded)",
    kind: Kind::Gauge,
    labels: &["connection", "state"],
};

pub(crate) const TOKEN_REFRESH: MetricDef = MetricDef {
    name: "gatehouse_token_refresh",
    help: "Token-endpoint calls and adopted refreshes per connection, by outcome",
    kind: Kind::Counter,
    labels: &["connection", "outcome"],
};

pub(crate) const TOKEN_EXPIRY: MetricDef = MetricDef {
    name: "gatehouse_token_expiry_timestamp_seconds",
    help: "Unix time at which the cached access token of each connection expires",
    kind: Kind::Gauge,
    labels: &["connection"],
};

pub(crate) const SYNC_RECORDS: MetricDef = MetricDef {
    name: "gatehouse_sync_records",
    help: "Records served by unified API lists, per connection and model",
    kind: Kind::Counter,
    labels: &["connection", "model"],
};

pub(crate) const SYNC_LAG: MetricDef = MetricDef {
    name: "gatehouse_sync_lag_seconds",
    help: "Seconds since the last completed unified walk of each model on each connection (by any caller)",
    kind: Kind::Gauge,
    labels: &["connection", "model"],
};

pub(crate) const CONNECTION_ONBOARDING: MetricDef = MetricDef {
    name: "gatehouse_connection_onboarding_seconds",
    help: "Seconds from a connection's first configuration to its first successful unified walk",
    kind: Kind::Gauge,
    labels: &["connection"],
};

/// Every family, for the contract test and for generators.
#[cfg(test)]
pub(crate) const ALL: &[MetricDef] = &[
    REQUESTS,
    REQUEST_DURATION,
    REQUESTS_IN_FLIGHT,
    WORKER_CONNECTIONS,
    CONNECTIONS_REFUSED,
    POLICY_RELOADS,
    SOQL_VERDICTS,
    CREDENTIAL_STATE,
    TOKEN_REFRESH,
    TOKEN_EXPIRY,
    SYNC_RECORDS,
    SYNC_LAG,
    CONNECTION_ONBOARDING,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::labels::{Method, RequestLabelRefs, StatusClass};
    use crate::telemetry::metrics::{Metrics, OutcomeLabels, SoqlLabels};
    use std::collections::{BTreeMap, BTreeSet};

    /// Family name → (type, label names seen on its samples), read from a text scrape.
    fn families(text: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
        let mut out: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let name = parts.next().unwrap_or_default().to_owned();
                let kind = parts.next().unwrap_or_default().to_owned();
                out.insert(name, (kind, BTreeSet::new()));
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let sample = &line[..name_end];
            let family = out
                .keys()
                .filter(|f| sample.starts_with(f.as_str()))
                .max_by_key(|f| f.len())
                .cloned()
                .unwrap_or_else(|| panic!("sample {sample} outside any declared family"));
            if let Some(labels) = line[name_end..].strip_prefix('{') {
                let labels = &labels[..labels.find('}').unwrap_or(labels.len())];
                for pair in labels.split(',') {
                    let key = pair.split('=').next().unwrap_or_default();
                    if key != "le" {
                        out.get_mut(&family).unwrap().1.insert(key.to_owned());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn a_scrape_exposes_exactly_the_declared_families_and_labels() {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Metrics::register(&mut registry, 1);
        let credentials = crate::credentials::register_metrics(&mut registry);
        // One sample in each family with labels, so their label names show in the scrape.
        metrics.requests.record(
            &RequestLabelRefs {
                connection: "crm",
                provider: "testapi",
                caller: "svc",
                method: Method::GET,
                status_class: StatusClass::C2xx,
                category: "none",
            },
            0.01,
        );
        metrics
            .policy_reloads
            .get_or_create(&OutcomeLabels {
                outcome: "ok".into(),
            })
            .inc();
        metrics
            .soql_verdicts
            .get_or_create(&SoqlLabels {
                connection: "crm".into(),
                caller: "svc".into(),
                verdict: "allow".into(),
                rule: "none".into(),
            })
            .inc();
        metrics.refused(crate::telemetry::metrics::Refused::MaxConnections);
        credentials.set_state("crm", "ok");
        credentials.refreshed("crm", "ok");
        credentials.set_expiry("crm", 1_000);
        let sync = crate::unified::sync_state::SyncMetrics::register(&mut registry);
        let model = gatehouse_adapters::models::Model::Contact;
        sync.served("crm", model, 3);
        sync.walked("crm", model, 1_000);
        sync.onboarded("crm", 12.5);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();

        let scraped = families(&text);
        let declared: BTreeMap<String, (String, BTreeSet<String>)> = ALL
            .iter()
            .map(|m| {
                let kind = match m.kind {
                    Kind::Counter => "counter",
                    Kind::Gauge => "gauge",
                    Kind::Histogram => "histogram",
                };
                let labels = m.labels.iter().map(|l| (*l).to_owned()).collect();
                (m.name.to_owned(), (kind.to_owned(), labels))
            })
            .collect();
        assert_eq!(scraped, declared, "{text}");
        for m in ALL {
            assert!(
                text.contains(&format!("# HELP {} {}", m.name, m.help)),
                "{} has no (or other) help text",
                m.name
            );
        }
        assert!(
            text.contains(&format!("{} ", REQUESTS.exposed()))
                || text.contains(&format!("{}{{", REQUESTS.exposed()))
        );
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        let mut seen = BTreeSet::new();
        for m in ALL {
            assert!(seen.insert(m.name), "{} declared twice", m.name);
            assert!(m.name.starts_with("gatehouse_"), "{}", m.name);
            assert!(
                !m.name.ends_with("_total"),
                "{}: counters get _total when exposed",
                m.name
            );
            assert!(
                m.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                m.name
            );
            assert!(!m.help.is_empty(), "{} has no help", m.name);
        }
        assert!(DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }
}
