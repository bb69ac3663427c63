//! What Gatehouse says about its traffic: the metric-name contract (`names`), metric labels
//! (`labels`), per-worker request statistics (`request_stats`), the Prometheus registry and
//! families (`metrics`), the JSON logs and access log (`log`), and the request record that is
//! built once per request and handed to every sink (`record`).

pub(crate) mod ids;
pub(crate) mod labels;
pub(crate) mod log;
pub(crate) mod metrics;
pub(crate) mod names;
pub(crate) mod record;
pub(crate) mod request_stats;
