//! `gatehouse_requests_total` and `gatehouse_request_duration_seconds`, kept per worker thread
//! and merged when scraped.
//!
//! A Prometheus `Family` is one map behind one lock shared by every thread, and each of its
//! histograms takes a write lock per observation. On the request path of several workers that
//! meant lock contention (futex calls) and cache lines bouncing between cores. Here each worker
//! adds to its own shard, behind a lock only a scrape ever competes for; `/metrics` and the
//! dashboard merge the shards. Label sets are bounded (config ids and closed enums), so a fast
//! non-keyed hash is safe.

use crate::telemetry::labels::{LabelKey, RequestLabelRefs, RequestLabels, StatusClass};
use crate::telemetry::names::{self, DURATION_BUCKETS};
use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One label set's requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub count: u64,
    pub sum_seconds: f64,
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    pub buckets: [u64; DURATION_BUCKETS.len() + 1],
}

impl Series {
    fn observe(&mut self, seconds: f64) {
        self.count += 1;
        self.sum_seconds += seconds;
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|&upper| seconds <= upper)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[bucket] += 1;
    }

    fn merge(&mut self, other: &Series) {
        self.count += other.count;
        self.sum_seconds += other.sum_seconds;
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
    }
}

/// Keeps each shard on its own cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    series: Mutex<FxHashMap<RequestLabels, Series>>,
    /// Requests this shard's thread is handling now.
    in_flight: std::sync::atomic::AtomicI64,
}

/// Counts a request as in flight until dropped (also when the caller abandons it).
pub struct InFlight<'a>(&'a std::sync::atomic::AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

pub struct RequestStats {
    /// Shard 0 serves threads that are not data-plane workers; worker `i` owns shard `i + 1`.
    shards: Box<[Shard]>,
}

impl RequestStats {
    pub fn new(workers: usize) -> Self {
        RequestStats {
            shards: (0..=workers).map(|_| Shard::default()).collect(),
        }
    }

    fn shard(&self) -> &Shard {
        let index = crate::listen::worker::current().map_or(0, |i| i + 1) % self.shards.len();
        &self.shards[index]
    }

    /// A request starts; it stops counting as in flight when the guard is dropped.
    pub fn enter(&self) -> InFlight<'_> {
        let counter = &self.shard().in_flight;
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlight(counter)
    }

    /// Requests being handled now, all threads.
    pub fn in_flight(&self) -> i64 {
        self.shards
            .iter()
            .map(|s| s.in_flight.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    pub fn record(&self, labels: &RequestLabelRefs<'_>, seconds: f64) {
        let mut series = self.shard().series.lock();
        match series.get_mut(labels as &dyn LabelKey) {
            Some(s) => s.observe(seconds),
            None => series.entry(labels.owned()).or_default().observe(seconds),
        }
    }

    /// Every label set's totals, all shards merged, in a stable order.
    pub fn snapshot(&self) -> BTreeMap<RequestLabels, Series> {
        let mut merged: BTreeMap<RequestLabels, Series> = BTreeMap::new();
        for shard in self.shards.iter() {
            for (labels, series) in shard.series.lock().iter() {
                match merged.get_mut(labels) {
                    Some(m) => m.merge(series),
                    None => {
                        merged.insert(labels.clone(), series.clone());
                    }
                }
            }
        }
        merged
    }

    /// Per connection id: requests, by status class and by error category (the dashboard).
    pub fn by_connection(&self) -> BTreeMap<String, ConnectionTally> {
        let mut out: BTreeMap<String, ConnectionTally> = BTreeMap::new();
        for (labels, series) in self.snapshot() {
            let tally = out.entry(labels.connection.to_string()).or_default();
            tally.requests += series.count;
            *tally
                .status_classes
                .entry(StatusClass::as_str(labels.status_class))
                .or_default() += series.count;
            if labels.category != "none" {
                *tally.errors.entry(labels.category).or_default() += series.count;
            }
        }
        out
    }

    /// Registers the two families with `registry`.
    pub fn register(self: &Arc<Self>, registry: &mut prometheus_client::registry::Registry) {
        registry.register_collector(Box::new(StatsCollector(self.clone())));
    }
}

impl crate::telemetry::record::Sink for RequestStats {
    fn record(&self, r: &crate::telemetry::record::RequestRecord<'_>) {
        let labels = RequestLabelRefs {
            connection: r.connection.unwrap_or("none"),
            provider: r.provider.unwrap_or("none"),
            caller: r.caller.unwrap_or("none"),
            method: crate::telemetry::labels::Method::from(r.method),
            status_class: StatusClass::from(r.status),
            category: r.category,
        };
        RequestStats::record(self, &labels, r.duration.as_secs_f64());
    }
}

/// What the requests through one connection came to.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConnectionTally {
    pub requests: u64,
    /// Responses by status class (`2xx`, `4xx`, ...).
    pub status_classes: BTreeMap<&'static str, u64>,
    /// Failed requests by error category: those Gatehouse ended itself, and provider errors
    /// passed through (classified by the provider's adapter).
    pub errors: BTreeMap<&'static str, u64>,
}

struct StatsCollector(Arc<RequestStats>);

impl std::fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatsCollector")
    }
}

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.0.snapshot();
        encoder
            .encode_descriptor(
                names::REQUESTS_IN_FLIGHT.name,
                names::REQUESTS_IN_FLIGHT.help,
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&self.0.in_flight())?;
        {
            let mut family = encoder.encode_descriptor(
                names::REQUESTS.name,
                names::REQUESTS.help,
                None,
                MetricType::Counter,
            )?;
            for (labels, series) in &snapshot {
                family
                    .encode_family(labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&series.count, None)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            names::REQUEST_DURATION.name,
            names::REQUEST_DURATION.help,
            None,
            MetricType::Histogram,
        )?;
        for (labels, series) in &snapshot {
            let buckets: Vec<(f64, u64)> = DURATION_BUCKETS
                .iter()
                .copied()
                .chain(std::iter::once(f64::MAX))
                .zip(series.buckets.iter().copied())
                .collect();
            family
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(series.sum_seconds, series.count, &buckets, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::labels::{Label, Method};

    fn labels(connection: &str, status: StatusClass, category: &'static str) -> RequestLabels {
        RequestLabels {
            connection: Label::new(connection),
            provider: Label::new("testapi"),
            caller: Label::new("svc"),
            method: Method::GET,
            status_class: status,
            category,
        }
    }

    #[test]
    fn shards_merge_into_one_series_per_label_set() {
        let stats = Arc::new(RequestStats::new(2));
        stats.record(&labels("crm", StatusClass::C2xx, "none").as_refs(), 0.0005);
        std::thread::scope(|s| {
            for worker in 0..2 {
                let stats = &stats;
                s.spawn(move || {
                    crate::listen::worker::enter(worker);
                    stats.record(&labels("crm", StatusClass::C2xx, "none").as_refs(), 0.2);
                    stats.record(
                        &labels("crm", StatusClass::C4xx, "forbidden").as_refs(),
                        40.0,
                    );
                });
            }
        });
        let snap = stats.snapshot();
        let ok = &snap[&labels("crm", StatusClass::C2xx, "none")];
        assert_eq!(ok.count, 3);
        assert!((ok.sum_seconds - 0.4005).abs() < 1e-9);
        assert_eq!(ok.buckets[0], 1, "0.5 ms lands in the 1 ms bucket");
        assert_eq!(ok.buckets[7], 2, "200 ms lands in the 250 ms bucket");
        let denied = &snap[&labels("crm", StatusClass::C4xx, "forbidden")];
        assert_eq!(
            denied.buckets[DURATION_BUCKETS.len()],
            2,
            "40 s lands in +Inf"
        );

        let tally = &stats.by_connection()["crm"];
        assert_eq!(tally.requests, 5);
        assert_eq!(tally.status_classes.get("2xx"), Some(&3));
        assert_eq!(tally.errors.get("forbidden"), Some(&2));
    }

    #[test]
    fn borrowed_labels_find_the_owned_series() {
        let owned = labels("crm", StatusClass::C2xx, "none");
        let mut map: FxHashMap<RequestLabels, u32> = FxHashMap::default();
        map.insert(owned.clone(), 7);
        let refs = owned.as_refs();
        assert_eq!(map.get(&refs as &dyn LabelKey), Some(&7));
        let other = labels("crm", StatusClass::C5xx, "none");
        assert_eq!(map.get(&other.as_refs() as &dyn LabelKey), None);
        assert_eq!(refs.owned(), owned);
    }

    #[test]
    fn scrape_text_has_counter_and_cumulative_histogram() {
        let stats = Arc::new(RequestStats::new(1));
        let mut registry = prometheus_client::registry::Registry::default();
        stats.register(&mut registry);
        stats.record(&labels("crm", StatusClass::C2xx, "none").as_refs(), 0.003);
        stats.record(&labels("crm", StatusClass::C2xx, "none").as_refs(), 0.02);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let series = r#"connection="crm",provider="testapi",caller="svc",method="GET",status_class="2xx",category="none""#;
        assert!(text.contains("# TYPE gatehouse_requests counter"), "{text}");
        assert!(text.contains("gatehouse_requests_in_flight 0\n"), "{text}");
        let held = stats.enter();
        let mut text_during = String::new();
        prometheus_client::encoding::text::encode(&mut text_during, &registry).unwrap();
        assert!(
            text_during.contains("gatehouse_requests_in_flight 1\n"),
            "{text_during}"
        );
        drop(held);
        assert_eq!(stats.in_flight(), 0);
        assert!(
            text.contains(&format!("gatehouse_requests_total{{{series}}} 2")),
            "{text}"
        );
        assert!(
            text.contains("# TYPE gatehouse_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "gatehouse_request_duration_seconds_count{{{series}}} 2"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "gatehouse_request_duration_seconds_bucket{{le=\"0.0025\",{series}}} 0"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "gatehouse_request_duration_seconds_bucket{{le=\"0.005\",{series}}} 1"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "gatehouse_request_duration_seconds_bucket{{le=\"0.025\",{series}}} 2"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "gatehouse_request_duration_seconds_bucket{{le=\"+Inf\",{series}}} 2"
            )),
            "{text}"
        );
    }
}
