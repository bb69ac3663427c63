//! The request record: what one request came to, built once by the pipeline when the request
//! ends (answered, or abandoned by its caller) and handed to every sink. Metrics and the access
//! log are sinks today; audit records and trace spans join as new sinks (a new module with an
//! `impl Sink`, and one line where `AppState::build` lists the sinks), without an edit of the
//! pipeline.

use std::sync::Arc;
use std::time::Duration;

/// One finished request. Borrowed: building it copies nothing, and a sink that keeps it (an
/// audit queue) makes its own owned copy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestRecord<'a> {
    pub request_id: &'a str,
    /// The connection id, once routing found one.
    pub connection: Option<&'a str>,
    /// The connection's provider name.
    pub provider: Option<&'a str>,
    /// The caller id, once the caller was identified.
    pub caller: Option<&'a str>,
    pub method: &'a http::Method,
    /// The status sent to the caller (499 for a caller that went away first).
    pub status: http::StatusCode,
    /// The error category (`none` for a request that reached the provider and came back,
    /// `caller_cancelled` for one its caller abandoned).
    pub category: &'static str,
    /// Time from request received to response headers sent (or to the caller leaving).
    pub duration: Duration,
}

/// Where request records go. A sink must be cheap: it runs on the request's worker thread,
/// after the response head is handed to the caller's connection.
pub(crate) trait Sink: Send + Sync {
    fn record(&self, record: &RequestRecord<'_>);
}

/// The sinks a request record is handed to, in order.
#[derive(Clone)]
pub(crate) struct Sinks(Arc<[Arc<dyn Sink>]>);

impl Sinks {
    pub fn new(sinks: Vec<Arc<dyn Sink>>) -> Self {
        Sinks(sinks.into())
    }

    pub fn record(&self, record: &RequestRecord<'_>) {
        for sink in self.0.iter() {
            sink.record(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<(String, u16, &'static str)>>);

    impl Sink for Collect {
        fn record(&self, r: &RequestRecord<'_>) {
            self.0
                .lock()
                .push((r.request_id.to_owned(), r.status.as_u16(), r.category));
        }
    }

    #[test]
    fn every_sink_sees_every_record_once() {
        let first = Arc::new(Collect::default());
        let second = Arc::new(Collect::default());
        let sinks = Sinks::new(vec![first.clone(), second.clone()]);
        let method = http::Method::GET;
        for (id, status) in [("a", 200), ("b", 503)] {
            sinks.record(&RequestRecord {
                request_id: id,
                connection: Some("crm"),
                provider: Some("testapi"),
                caller: None,
                method: &method,
                status: http::StatusCode::from_u16(status).unwrap(),
                category: "none",
                duration: Duration::from_millis(3),
            });
        }
        let want = vec![("a".to_owned(), 200, "none"), ("b".to_owned(), 503, "none")];
        assert_eq!(*first.0.lock(), want);
        assert_eq!(*second.0.lock(), want);
    }
}
