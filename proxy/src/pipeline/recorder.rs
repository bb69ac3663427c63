//! A request's recorder: what the pipeline learns about the request as it goes (the context),
//! owned, so that the record can be completed after the pipeline has returned: at the end of
//! the response body ([`crate::respond`] hands the recorder to the body). The record itself and
//! its sinks are telemetry's ([`crate::telemetry::record`]).

use crate::stages::body::BytesIn;
use crate::state::ConnectionRuntime;
use crate::telemetry::ids::RequestId;
use crate::telemetry::record::{RequestRecord, Sinks, TraceId};
use http::StatusCode;
use std::sync::Arc;
use tokio::time::Instant;

/// The status recorded for a request its caller abandoned before the response head (nginx's
/// "client closed request").
const CALLER_GONE: u16 = 499;

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

    /// The provider path (the respond stage asks the adapter about it).
    pub fn as_str(&self) -> &str {
        self.uri.path().get(self.start..).unwrap_or("/")
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
    use crate::telemetry::record::tests::Collect;
    use http::HeaderValue;

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
            crate::error::Category::ProviderUnavailable,
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
                    "provider_unavailable",
                    "upstream_body_failed",
                    4
                ),
                ("whole".to_owned(), 201, "none", "none", 7),
            ]
        );
    }

    #[test]
    fn endpoints_are_read_without_copies() {
        let uri: http::Uri = "/acme/v1/things?q=secret".parse().unwrap();
        assert_eq!(Endpoint::new(&uri, "/v1/things").as_str(), "/v1/things");
    }
}
