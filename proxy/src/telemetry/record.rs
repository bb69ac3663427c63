//! The request record: what one request came to, built once when the request ends and handed to
//! every sink. A request ends when its response body has been sent to the end (or broke, or its
//! caller went away), not when its head left: a provider response that breaks half-way is a
//! failure, whatever status its head carried. Metrics and the access log are sinks today; audit
//! records and trace spans join as new sinks (a new module with an `impl Sink`, and one line
//! where `AppState::build` lists the sinks), without an edit of the pipeline.
//!
//! The pipeline fills a [`Recorder`] as the request goes; the respond stage hands it to the
//! response body ([`crate::respond::recorded`]), which completes the record at the body's
//! end. A recorder dropped before it was completed records the request as abandoned by its
//! caller.

use crate::state::ConnectionRuntime;
use crate::telemetry::ids::RequestId;
use http::{HeaderValue, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

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

/// The status recorded for a request its caller abandoned before the response head (nginx's
/// "client closed request").
const CALLER_GONE: u16 = 499;

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

/// The provider path of a request: a suffix of its URI's path, shared with the URI (no copy).
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    uri: http::Uri,
    start: usize,
}

impl Endpoint {
    /// `path` must be a suffix of `uri`'s path (the route stage's provider path).
    pub fn new(uri: &http::Uri, path: &str) -> Self {
        let start = uri.path().len().saturating_sub(path.len());
        Endpoint {
            uri: uri.clone(),
            start,
        }
    }

    fn as_str(&self) -> &str {
        self.uri.path().get(self.start..).unwrap_or("/")
    }
}

/// The caller's body bytes: known when the body was buffered, counted as they stream otherwise.
#[derive(Debug, Clone, Default)]
pub(crate) enum BytesIn {
    #[default]
    None,
    Known(u64),
    Counted(Arc<crate::stages::body::Meter>),
}

impl BytesIn {
    fn get(&self) -> u64 {
        match self {
            BytesIn::None => 0,
            BytesIn::Known(n) => *n,
            BytesIn::Counted(meter) => meter.bytes(),
        }
    }
}

/// What the pipeline learns about a request as it goes, owned so that the record can be
/// completed after the pipeline has returned (at the end of the response body).
pub(crate) struct RequestContext {
    pub request_id: RequestId,
    pub trace_id: Option<TraceId>,
    pub method: http::Method,
    pub connection: Option<Arc<ConnectionRuntime>>,
    pub caller: Option<Arc<str>>,
    pub endpoint: Option<Endpoint>,
    pub category: Option<crate::error::Category>,
    pub code: &'static str,
    pub provider_error: Option<Box<str>>,
    pub bytes_in: BytesIn,
}

impl RequestContext {
    pub fn new(request_id: RequestId, method: http::Method) -> Self {
        RequestContext {
            request_id,
            trace_id: None,
            method,
            connection: None,
            caller: None,
            endpoint: None,
            category: None,
            code: "none",
            provider_error: None,
            bytes_in: BytesIn::None,
        }
    }

    pub fn error_context(&self) -> crate::error::ErrorContext<'_> {
        crate::error::ErrorContext {
            request_id: self.request_id.as_str(),
            connection: self.connection.as_deref().map(|c| c.id.as_str()),
            provider: self.connection.as_deref().map(|c| c.provider.name()),
        }
    }
}

/// Records a request once: when its response has been sent to the end ([`Recorder::finish`]),
/// or, if it is dropped first, as abandoned by its caller: status 499 before the response
/// head, the head's status after it; category `caller_cancelled`. Abandoned requests would
/// otherwise be missing from the metrics and the log.
pub(crate) struct Recorder {
    sinks: Sinks,
    started: Instant,
    pub ctx: RequestContext,
    /// The status sent, once the response head has been handed over.
    status: Option<StatusCode>,
    bytes_out: u64,
    done: bool,
}

impl Recorder {
    pub fn new(sinks: Sinks, ctx: RequestContext) -> Self {
        Recorder {
            sinks,
            started: Instant::now(),
            ctx,
            status: None,
            bytes_out: 0,
            done: false,
        }
    }

    /// The response head with `status` goes to the caller now.
    pub fn head_sent(&mut self, status: StatusCode) {
        self.status = Some(status);
    }

    /// Body bytes handed to the caller.
    pub fn sent(&mut self, bytes: u64) {
        self.bytes_out += bytes;
    }

    /// The response is complete: recorded with the category and code the pipeline set.
    pub fn finish(&mut self) {
        let category = self
            .ctx
            .category
            .map_or("none", crate::error::Category::as_str);
        self.record(category, self.ctx.code);
    }

    /// The response body broke after its head (the caller got a truncated response).
    pub fn failed(&mut self, category: crate::error::Category, code: &'static str) {
        self.ctx.category = Some(category);
        self.ctx.code = code;
        self.record(category.as_str(), code);
    }

    fn record(&mut self, category: &'static str, code: &'static str) {
        if self.done {
            return;
        }
        self.done = true;
        let ctx = &self.ctx;
        let connection = ctx.connection.as_deref();
        let status = self.status.unwrap_or_else(|| {
            StatusCode::from_u16(CALLER_GONE).unwrap_or(StatusCode::BAD_REQUEST)
        });
        self.sinks.record(&RequestRecord {
            request_id: ctx.request_id.as_str(),
            trace_id: ctx.trace_id.as_ref(),
            connection: connection.map(|c| c.id.as_str()),
            provider: connection.map(|c| c.provider.name()),
            caller: ctx.caller.as_deref(),
            method: &ctx.method,
            endpoint: ctx.endpoint.as_ref().map(Endpoint::as_str),
            status,
            category,
            code,
            provider_error: ctx.provider_error.as_deref(),
            bytes_in: ctx.bytes_in.get(),
            bytes_out: self.bytes_out,
            duration: self.started.elapsed(),
        });
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if !self.done {
            let code = if self.status.is_some() {
                "caller_closed_mid_body"
            } else {
                "caller_closed"
            };
            self.record("caller_cancelled", code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    type Seen = (String, u16, &'static str, &'static str, u64);

    #[derive(Default)]
    struct Collect(Mutex<Vec<Seen>>);

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

    fn recorder(sink: &Arc<Collect>, id: &'static str) -> Recorder {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            crate::telemetry::ids::X_REQUEST_ID,
            HeaderValue::from_static(id),
        );
        let ctx = RequestContext::new(
            crate::telemetry::ids::request_id(&headers),
            http::Method::GET,
        );
        Recorder::new(Sinks::new(vec![sink.clone()]), ctx)
    }

    #[test]
    fn a_request_is_recorded_once_at_its_end_however_it_ends() {
        let sink = Arc::new(Collect::default());
        // Abandoned before the head: 499.
        drop(recorder(&sink, "before-head"));
        // Abandoned in the middle of the body: the head's status, and the bytes that went.
        let mut mid = recorder(&sink, "mid-body");
        mid.head_sent(StatusCode::OK);
        mid.sent(10);
        drop(mid);
        // A body that broke after its head.
        let mut broken = recorder(&sink, "broken");
        broken.head_sent(StatusCode::OK);
        broken.sent(4);
        broken.failed(
            crate::error::Category::UpstreamUnavailable,
            "upstream_body_failed",
        );
        broken.finish();
        drop(broken);
        // Complete.
        let mut whole = recorder(&sink, "whole");
        whole.head_sent(StatusCode::CREATED);
        whole.sent(7);
        whole.finish();
        drop(whole);
        assert_eq!(
            *sink.0.lock(),
            vec![
                (
                    "before-head".to_owned(),
                    499,
                    "caller_cancelled",
                    "caller_closed",
                    0
                ),
                (
                    "mid-body".to_owned(),
                    200,
                    "caller_cancelled",
                    "caller_closed_mid_body",
                    10
                ),
                (
                    "broken".to_owned(),
                    200,
                    "upstream_unavailable",
                    "upstream_body_failed",
                    4
                ),
                ("whole".to_owned(), 201, "none", "none", 7),
            ]
        );
    }

    #[test]
    fn trace_ids_and_endpoints_are_read_without_copies() {
        let tp =
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(
            TraceId::of(&tp).unwrap().as_str(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(TraceId::of(&HeaderValue::from_static("00-zz")).is_none());
        let uri: http::Uri = "/acme/v1/things?q=secret".parse().unwrap();
        assert_eq!(Endpoint::new(&uri, "/v1/things").as_str(), "/v1/things");
    }
}
