//! The request record: what one request came to, built once when the request ends and handed to
//! every sink. A request ends when its response body has been sent to the end (or broke, or its
//! caller went away), not when its head left: a provider response that breaks half-way is a
//! failure, whatever status its head carried. Metrics and the access log are sinks today; audit
//! records and trace spans join as new sinks (a new module with an `impl Sink`, and one line
//! where `AppState::build` lists the sinks), without an edit of the pipeline.
//!
//! The pipeline fills a recorder as the request goes ([`crate::pipeline::recorder`]); the
//! respond stage hands it to the response body, which completes the record at the body's end.

use http::HeaderValue;
use std::sync::Arc;
use std::time::Duration;

/// One finished request. Borrowed: building it copies nothing, and a sink that keeps it (an
/// audit queue) makes its own owned copy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestRecord<'a> {
    pub request_id: &'a str,
    /// The W3C trace id the provider request carried (the caller's trace, or a new one).
    pub trace_id: Option<&'a TraceId>,
    /// The connection id, once routing found one.
    pub connection: Option<&'a str>,
    /// The connection's provider name.
    pub provider: Option<&'a str>,
    /// The caller id, once the caller was identified.
    pub caller: Option<&'a str>,
    pub method: &'a http::Method,
    /// The provider path (without the query), once routing found it.
    pub endpoint: Option<&'a str>,
    /// The status sent to the caller (499 for a caller that went away before the head).
    pub status: http::StatusCode,
    /// The error category (`none` for a request that reached the provider and came back whole,
    /// `caller_cancelled` for one its caller abandoned).
    pub category: &'static str,
    /// The finer error code within the category (`none` without an error).
    pub code: &'static str,
    /// The provider's own error code, read from a provider error response by its adapter.
    pub provider_error: Option<&'a str>,
    /// Body bytes received from the caller and sent on.
    pub bytes_in: u64,
    /// Body bytes sent to the caller.
    pub bytes_out: u64,
    /// Time from request received to the end of the response body (or to the caller leaving).
    pub duration: Duration,
}

/// Where request records go. A sink must be cheap: it runs on the request's worker thread,
/// as the response's last byte is handed to the caller's connection.
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

/// The trace id of a `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), kept inline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceId([u8; 32]);

impl TraceId {
    pub fn of(traceparent: &HeaderValue) -> Option<Self> {
        let id = traceparent.as_bytes().get(3..35)?;
        if !id.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(id);
        Some(TraceId(out))
    }

    /// The 32 lower- or upper-case hex digits, as checked by [`TraceId::of`]: text that needs
    /// no escaping, handed out as bytes because proving them UTF-8 again costs more than the
    /// rest of writing them.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use parking_lot::Mutex;

    pub(crate) type Seen = (String, u16, &'static str, &'static str, u64);

    /// A sink that keeps what it was given (id, status, category, code, bytes out).
    #[derive(Default)]
    pub(crate) struct Collect(pub Mutex<Vec<Seen>>);

    impl Sink for Collect {
        fn record(&self, r: &RequestRecord<'_>) {
            self.0.lock().push((
                r.request_id.to_owned(),
                r.status.as_u16(),
                r.category,
                r.code,
                r.bytes_out,
            ));
        }
    }

    fn record<'a>(id: &'a str, status: u16, method: &'a http::Method) -> RequestRecord<'a> {
        RequestRecord {
            request_id: id,
            trace_id: None,
            connection: Some("crm"),
            provider: Some("testapi"),
            caller: None,
            method,
            endpoint: Some("/v1/things"),
            status: http::StatusCode::from_u16(status).unwrap(),
            category: "none",
            code: "none",
            provider_error: None,
            bytes_in: 0,
            bytes_out: 0,
            duration: Duration::from_millis(3),
        }
    }

    #[test]
    fn every_sink_sees_every_record_once() {
        let first = Arc::new(Collect::default());
        let second = Arc::new(Collect::default());
        let sinks = Sinks::new(vec![first.clone(), second.clone()]);
        let method = http::Method::GET;
        for (id, status) in [("a", 200), ("b", 503)] {
            sinks.record(&record(id, status, &method));
        }
        let want = vec![
            ("a".to_owned(), 200, "none", "none", 0),
            ("b".to_owned(), 503, "none", "none", 0),
        ];
        assert_eq!(*first.0.lock(), want);
        assert_eq!(*second.0.lock(), want);
    }

    #[test]
    fn trace_ids_are_read_without_copies() {
        let tp =
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(
            TraceId::of(&tp).unwrap().as_str(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(TraceId::of(&HeaderValue::from_static("00-zz")).is_none());
    }
}
