//! The unified API's sync state, as the proxy keeps it: for each caller, connection and model,
//! the high-water mark of completed walks, records seen, last success and last failure (in the
//! store, `gatehouse_store::sync_state`), served on the admin port at `GET /api/sync-state`; and
//! the metrics an SRE watches for staleness and onboarding:
//!
//! - `gatehouse_sync_lag_seconds{connection,model}`: seconds since the last completed walk of
//!   the model on the connection (by any caller), computed at scrape time, so a sync that stops
//!   shows a lag that grows;
//! - `gatehouse_sync_records_total{connection,model}`: records served by unified lists;
//! - `gatehouse_connection_onboarding_seconds{connection}`: from the connection's first
//!   configuration (the first start of a Gatehouse that had it, kept in the store) to its first
//!   successful unified walk.
//!
//! Sync state is bookkeeping beside the caller's request: a store outage is logged and counted
//! on the connection's log lines, never turned into the caller's error (the caller's records
//! were fetched; its own cursor carries the walk).

use crate::config::Config;
use crate::credentials::Credentials;
use crate::telemetry::names;
use gatehouse_adapters::models::{Category, Model};
use gatehouse_store::{crypto, Store, StoreError, SyncFilter, SyncRecord, WalkCompleted};
use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;

/// A completed walk, as the unified handler reports it.
pub(crate) struct WalkDone<'a> {
    pub caller: &'a str,
    pub connection: &'a str,
    pub model: Model,
    /// The highest `remote_modified_at` the walk saw (RFC 3339), if it saw any record.
    pub high_water: Option<String>,
    pub records_seen: u64,
    /// A provider sync token for the next incremental walk (Ashby's `syncToken`).
    pub sync_token: Option<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    connection: String,
    model: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    connection: String,
}

/// Where the store comes from: the credentials' (a config with OAuth connections has it open
/// already; a second opener of one SQLite directory would be refused), or opened on first use.
enum Source {
    Shared(Arc<Store>),
    Own {
        config: Box<gatehouse_store::StoreConfig>,
        store: OnceCell<Arc<Store>>,
    },
}

/// The proxy's sync-state keeper (`AppState::sync`).
pub(crate) struct SyncStates {
    source: Source,
    metrics: SyncMetrics,
    /// The configured connections whose provider serves the unified API.
    configured: std::collections::BTreeSet<String>,
}

/// How stale one model's sync is on a connection.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ModelLag {
    pub model: &'static str,
    pub lag_seconds: f64,
}

/// The sync metrics: the records counter, and what the scrape-time gauges read.
#[derive(Clone, Default)]
pub(crate) struct SyncMetrics {
    records: Family<SyncLabels, Counter>,
    /// (connection, model) → Unix ms of the last completed walk, for the lag gauge.
    last_walk: Arc<Mutex<BTreeMap<(String, Model), i64>>>,
    /// connection → onboarding seconds, once known.
    onboarding: Arc<Mutex<BTreeMap<String, f64>>>,
}

impl SyncMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            names::SYNC_RECORDS.name,
            names::SYNC_RECORDS.help,
            metrics.records.clone(),
        );
        registry.register_collector(Box::new(SyncCollector {
            last_walk: metrics.last_walk.clone(),
            onboarding: metrics.onboarding.clone(),
        }));
        metrics
    }

    pub(crate) fn served(&self, connection: &str, model: Model, records: u64) {
        self.records
            .get_or_create(&SyncLabels {
                connection: connection.to_owned(),
                model: model.label(),
            })
            .inc_by(records);
    }

    /// A walk of `model` on `connection` completed at `at_ms` (a later one wins).
    pub(crate) fn walked(&self, connection: &str, model: Model, at_ms: i64) {
        let mut last = self.last_walk.lock();
        let entry = last.entry((connection.to_owned(), model)).or_insert(at_ms);
        *entry = (*entry).max(at_ms);
    }

    /// Each model's lag on `connection` (seconds since its last completed walk), for the
    /// dashboard.
    pub(crate) fn lags(&self, connection: &str) -> Vec<ModelLag> {
        let now = now_ms();
        self.last_walk
            .lock()
            .iter()
            .filter(|((c, _), _)| c == connection)
            .map(|((_, model), at)| ModelLag {
                model: model.label(),
                lag_seconds: (now - at).max(0) as f64 / 1000.0,
            })
            .collect()
    }

    pub(crate) fn onboarded(&self, connection: &str, seconds: f64) {
        self.onboarding
            .lock()
            .insert(connection.to_owned(), seconds);
    }
}

impl SyncStates {
    /// Registers the metrics and notes every connection whose provider serves the unified API
    /// as configured (its onboarding clock starts at its first sighting), in the background:
    /// start-up never waits on the store for this.
    pub(crate) fn start(
        config: &Config,
        credentials: &Credentials,
        registry: &mut Registry,
    ) -> Arc<Self> {
        let source = match credentials.store() {
            Some(store) => Source::Shared(store),
            None => Source::Own {
                config: Box::new(config.store.clone()),
                store: OnceCell::new(),
            },
        };
        let configured: std::collections::BTreeSet<String> = config
            .connections
            .iter()
            .filter(|c| {
                c.resolve_provider()
                    .is_ok_and(|provider| provider.unified().is_some())
            })
            .map(|c| c.id.clone())
            .collect();
        let states = Arc::new(Self {
            source,
            metrics: SyncMetrics::register(registry),
            configured,
        });
        if !states.configured.is_empty() {
            let states = states.clone();
            tokio::spawn(async move { states.load().await });
        }
        states
    }

    async fn store(&self) -> Result<&Store, StoreError> {
        match &self.source {
            Source::Shared(store) => Ok(store),
            Source::Own { config, store } => store
                .get_or_try_init(|| async {
                    let keys = crypto::load_key_ring(config, config.url.is_none())
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    Store::open(config, keys, Duration::from_secs(5))
                        .await
                        .map(Arc::new)
                })
                .await
                .map(|s| &**s),
        }
    }

    /// At start: first sightings, the lag of walks before this process, known onboarding times.
    async fn load(&self) {
        let result = async {
            let store = self.store().await?;
            let now = now_ms();
            for connection in &self.configured {
                let onboarding = store.sync_connection_seen(connection, now).await?;
                if let Some(seconds) = onboarding.seconds() {
                    self.metrics.onboarded(connection, seconds);
                }
            }
            for record in store.sync_states(SyncFilter::default(), 10_000).await? {
                self.note_walk(&record);
            }
            Ok::<_, StoreError>(())
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, "sync state: could not load it from the store; lag and onboarding metrics start empty");
        }
    }

    fn note_walk(&self, record: &SyncRecord) {
        let (Some(model), Some(at)) = (Model::from_label(&record.model), record.last_success_at_ms)
        else {
            return;
        };
        // Only this process's connections get series: a store shared with other configs may
        // hold rows of connections it does not serve.
        if !self.configured.contains(&record.connection) {
            return;
        }
        self.metrics.walked(&record.connection, model, at);
    }

    /// Each model's lag on `connection`, for the dashboard.
    pub(crate) fn lags(&self, connection: &str) -> Vec<ModelLag> {
        self.metrics.lags(connection)
    }

    /// Records served on one page of a unified list.
    pub(crate) fn page_served(&self, connection: &str, model: Model, records: u64) {
        self.metrics.served(connection, model, records);
    }

    /// A walk's last page was served.
    pub(crate) async fn walk_completed(&self, walk: WalkDone<'_>) {
        let now = now_ms();
        let high_water = walk.high_water.as_deref().and_then(fixed_format);
        let result = async {
            let store = self.store().await?;
            let record = store
                .sync_walk_completed(WalkCompleted {
                    caller: walk.caller,
                    connection: walk.connection,
                    model: walk.model.label(),
                    high_water: high_water.as_deref(),
                    records_seen: i64::try_from(walk.records_seen).unwrap_or(i64::MAX),
                    sync_token: walk.sync_token.as_deref(),
                    at_ms: now,
                })
                .await?;
            self.note_walk(&record);
            let onboarding = store.sync_connection_walked(walk.connection, now).await?;
            if let Some(seconds) = onboarding.seconds() {
                self.metrics.onboarded(walk.connection, seconds);
            }
            Ok::<_, StoreError>(())
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(connection = walk.connection, model = walk.model.label(), caller = walk.caller, %error, "sync state: a completed walk could not be recorded");
        }
    }

    /// A page of a walk failed with `category`.
    pub(crate) async fn walk_failed(
        &self,
        caller: &str,
        connection: &str,
        model: Model,
        category: Category,
    ) {
        let result = async {
            self.store()
                .await?
                .sync_walk_failed(
                    caller,
                    connection,
                    model.label(),
                    category.as_str(),
                    now_ms(),
                )
                .await
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(connection, model = model.label(), caller, %error, "sync state: a failed walk could not be recorded");
        }
    }

    /// The provider sync token this caller's last completed walk of `model` left.
    pub(crate) async fn sync_token(
        &self,
        caller: &str,
        connection: &str,
        model: Model,
    ) -> Option<String> {
        let store = self.store().await.ok()?;
        match store.sync_state(caller, connection, model.label()).await {
            Ok(record) => record.and_then(|r| r.sync_token),
            Err(error) => {
                tracing::warn!(connection, model = model.label(), caller, %error, "sync state: the sync token could not be read; walking in full");
                None
            }
        }
    }

    /// `GET /api/sync-state[?caller=&connection=&model=]` on the admin port.
    pub(crate) async fn list(&self, filter: SyncFilter) -> Result<Vec<SyncRecord>, StoreError> {
        self.store().await?.sync_states(filter, 10_000).await
    }
}

/// RFC 3339 UTC with milliseconds (`2026-01-02T03:04:05.678Z`): the store compares marks as
/// text, so every mark must be in this one format. `None` for a time that does not parse.
pub(crate) fn fixed_format(rfc3339: &str) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    let parsed = time::OffsetDateTime::parse(rfc3339, &Rfc3339).ok()?;
    let utc = parsed.to_offset(time::UtcOffset::UTC);
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.millisecond()
    ))
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The lag and onboarding gauges, computed at scrape time.
struct SyncCollector {
    last_walk: Arc<Mutex<BTreeMap<(String, Model), i64>>>,
    onboarding: Arc<Mutex<BTreeMap<String, f64>>>,
}

impl std::fmt::Debug for SyncCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncCollector")
    }
}

impl Collector for SyncCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = now_ms();
        {
            let mut family = encoder.encode_descriptor(
                names::SYNC_LAG.name,
                names::SYNC_LAG.help,
                None,
                MetricType::Gauge,
            )?;
            for ((connection, model), at) in self.last_walk.lock().iter() {
                let labels = SyncLabels {
                    connection: connection.clone(),
                    model: model.label(),
                };
                let lag = (now - at).max(0) as f64 / 1000.0;
                ConstGauge::new(lag).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            names::CONNECTION_ONBOARDING.name,
            names::CONNECTION_ONBOARDING.help,
            None,
            MetricType::Gauge,
        )?;
        for (connection, seconds) in self.onboarding.lock().iter() {
            let labels = ConnectionLabels {
                connection: connection.clone(),
            };
            ConstGauge::new(*seconds).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_written_in_one_comparable_format() {
        assert_eq!(
            fixed_format("2026-01-02T03:04:05Z").as_deref(),
            Some("2026-01-02T03:04:05.000Z")
        );
        assert_eq!(
            fixed_format("2026-01-02T05:04:05.6789+02:00").as_deref(),
            Some("2026-01-02T03:04:05.678Z")
        );
        assert_eq!(fixed_format("yesterday"), None);
        // Text order is time order in this format.
        let a = fixed_format("2026-01-02T03:04:05.9Z").unwrap();
        let b = fixed_format("2026-01-02T03:04:06Z").unwrap();
        assert!(a < b);
    }
}
