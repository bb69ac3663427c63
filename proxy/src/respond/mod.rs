//! The respond stage: what the caller gets back from a provider response. The provider's
//! headers cleaned (provider session cookies stay with Gatehouse), our request id added, the
//! response head spoken as HTTP/1.1 whatever version the provider spoke; the provider's body
//! passed through byte for byte as it arrives. Two kinds of answer are read before their head
//! goes on:
//!
//! - A provider error (any status that is not 2xx), and a success its adapter says may hold
//!   errors (Ashby's 200 `success:false`, a Salesforce composite call): read up to
//!   [`ERROR_BODY_READ_BYTES`] and classified by the adapter into the error taxonomy. An
//!   error gets `x-gatehouse-error-category`, `x-gatehouse-error-code` (the provider's code,
//!   when it named one) and `x-gatehouse-retryable`, and its category goes to the request's
//!   record (metrics, access log). The body stays the provider's, unchanged. A body past the
//!   cap streams on: an error status is then classified from its status and headers alone,
//!   and a success is not inspected (it goes on as the success its status says).
//! - A JSON success the adapter says names other pages by URL in its body: read up to
//!   [`links::PAGE_REWRITE_BYTES`] so that its page links can be rewritten through Gatehouse
//!   ([`links`]). `Link` headers are rewritten without reading anything.
//!
//! An ordinary success pays for two adapter questions and a header lookup; its body is never
//! read. The response body then completes the request's record when it ends ([`RecordedBody`]).

mod links;
mod recorded;

pub(crate) use recorded::recorded;

use crate::body::BoxError;
use crate::error::{Category, GatewayError};
use crate::forward::upstream::UpstreamBody;
use crate::pipeline::recorder::RequestContext;
use crate::stages::hygiene::{self, X_REQUEST_ID};
use bytes::{Bytes, BytesMut};
use gatehouse_adapters::{PageLinks, ProviderError};
use http::{header, HeaderValue, Method, Response, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The largest provider answer read whole to classify it (an error, or a success that may hold
/// errors). Larger ones stream through unread (see the module docs for what they are then).
pub(crate) const ERROR_BODY_READ_BYTES: u64 = 16 * 1024;

/// A provider response body on its way to the caller: streamed, read whole, or read in part
/// (its first bytes, then the rest as it arrives).
pub(crate) enum Relayed {
    Streamed(UpstreamBody),
    Buffered(Option<Bytes>),
    Prefixed(Option<Bytes>, UpstreamBody),
}

/// What reading the start of a body came to.
enum Read {
    /// Not read: the body goes on as it arrives.
    Unread(UpstreamBody),
    /// The whole body, within the cap.
    Whole(Bytes),
    /// The cap was passed: what was read, and the rest still to come.
    Over(Bytes, UpstreamBody),
}

/// The caller's response to a provider response.
pub(crate) async fn to_caller(
    response: Response<UpstreamBody>,
    ctx: &mut RequestContext,
) -> Result<Response<Relayed>, GatewayError> {
    let (mut head, body) = response.into_parts();
    framing_for_caller(&mut head.headers)?;
    hygiene::sanitize_response(&mut head.headers);
    crate::error::unmark(&mut head.headers);
    head.headers.insert(X_REQUEST_ID, ctx.request_id.header());
    // The provider's HTTP version is its hop's business: an HTTP/1.0 provider must not turn
    // the caller's HTTP/1.1 keep-alive connection into a closing one.
    head.version = Version::HTTP_11;
    let Some(connection) = ctx.connection.as_deref() else {
        return Ok(Response::from_parts(head, Relayed::Streamed(body)));
    };
    let provider = connection.provider.as_ref();
    let path = ctx.endpoint.as_ref().map_or("/", |e| e.as_str());
    let success = head.status.is_success();
    let inspect = !success || provider.success_may_hold_errors(&ctx.method, path);
    let links = if success {
        provider.page_links(&ctx.method, path)
    } else {
        PageLinks::NONE
    };
    if links.link_header {
        links::rewrite_link_headers(&mut head.headers, connection);
    }
    // A body in a content coding (`gzip`, when the caller asked the provider for one) is not
    // JSON to read: an error is then classified from its status and headers, and its links stay.
    let encoded = head
        .headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    let rewrite = !links.body_fields.is_empty() && links::is_json(&head.headers) && !encoded;
    let cap = if encoded {
        0
    } else if rewrite {
        links::PAGE_REWRITE_BYTES
    } else if inspect {
        ERROR_BODY_READ_BYTES
    } else {
        0
    };
    let too_big = body.size_hint().exact().is_some_and(|n| n > cap);
    let read = if cap == 0 || too_big || ctx.method == Method::HEAD || body.is_end_stream() {
        Read::Unread(body)
    } else {
        read_up_to(body, cap).await.map_err(error_body_failed)?
    };
    let error = match &read {
        _ if !inspect => None,
        Read::Whole(bytes) => provider.classify_error(head.status, &head.headers, bytes),
        // Unread or cut at the cap: an error status still says what it is.
        _ if !success => provider.classify_error(head.status, &head.headers, &[]),
        _ => None,
    };
    let relayed = match read {
        Read::Unread(body) => Relayed::Streamed(body),
        Read::Over(prefix, rest) => Relayed::Prefixed(Some(prefix), rest),
        Read::Whole(bytes) if rewrite => {
            match links::rewrite_json_links(&bytes, links.body_fields, connection) {
                Some(rewritten) => {
                    head.headers
                        .insert(header::CONTENT_LENGTH, HeaderValue::from(rewritten.len()));
                    Relayed::Buffered(Some(Bytes::from(rewritten)))
                }
                None => Relayed::Buffered(Some(bytes)),
            }
        }
        Read::Whole(bytes) => Relayed::Buffered(Some(bytes)),
    };
    if rewrite && !matches!(relayed, Relayed::Buffered(_)) {
        tracing::warn!(
            request_id = ctx.request_id.as_str(),
            connection = connection.id.as_str(),
            limit_bytes = links::PAGE_REWRITE_BYTES,
            "a page too large to rewrite its page links went to the caller unchanged"
        );
    }
    if let Some(error) = error {
        record_provider_error(&mut head.headers, ctx, error);
    }
    Ok(Response::from_parts(head, relayed))
}

/// A classified provider error: the three headers for the caller (and the provider's
/// `Retry-After`, or the adapter's reading of its window when the provider gave none), and the
/// category and code for the request's record.
fn record_provider_error(
    headers: &mut http::HeaderMap,
    ctx: &mut RequestContext,
    error: ProviderError,
) {
    crate::error::mark(
        headers,
        error.category,
        error.code.as_deref(),
        error.retryable,
    );
    if let Some(after) = error.retry_after {
        if error.retryable && !headers.contains_key(header::RETRY_AFTER) {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(after.as_secs().max(1)),
            );
        }
    }
    ctx.category = Some(error.category);
    ctx.code = "provider_error";
    ctx.provider_error = error.code.map(String::into_boxed_str);
}

/// Reads `body` until its end or until more than `cap` bytes have come.
async fn read_up_to(mut body: UpstreamBody, cap: u64) -> Result<Read, BoxError> {
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        // Trailers (rare from HTTP/1.1 providers) are not relayed either way.
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        if buffer.len() as u64 > cap {
            return Ok(Read::Over(buffer.freeze(), body));
        }
    }
    Ok(Read::Whole(buffer.freeze()))
}

/// The provider's framing headers, made the caller's: `Transfer-Encoding` is this hop's (the
/// caller's connection frames the body itself), and a `Content-Length` the provider sent as a
/// list of equal values (`5, 5`, or on several lines) goes on as one value. A transfer coding
/// other than chunked (`gzip`) is refused: Gatehouse never offers one (it sends no `TE`), and
/// an HTTP/2 caller has no way to receive one, so relaying its bytes would hand the caller an
/// encoded body it cannot know is encoded.
fn framing_for_caller(headers: &mut http::HeaderMap) -> Result<(), GatewayError> {
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        let other = headers
            .get_all(http::header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .any(|t| !t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        headers.remove(http::header::TRANSFER_ENCODING);
        if other {
            return Err(GatewayError::new(
                Category::ProviderUnavailable,
                "upstream_transfer_coding",
                "the provider sent its body in a transfer coding other than chunked, which Gatehouse does not accept",
            ));
        }
    }
    let mut lengths = headers.get_all(http::header::CONTENT_LENGTH).iter();
    let (Some(first), second) = (lengths.next(), lengths.next()) else {
        return Ok(());
    };
    if second.is_some() || first.as_bytes().contains(&b',') {
        match gatehouse_http1::content_length(headers) {
            Ok(Some(n)) => {
                headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(n));
            }
            // A bodiless response (HEAD, 204, 304) whose length is not one number: no length
            // is better than one the caller cannot read.
            _ => {
                headers.remove(http::header::CONTENT_LENGTH);
            }
        }
    }
    Ok(())
}

/// A provider error body that broke before its end: nothing has gone to the caller yet, so
/// the caller gets an envelope instead.
fn error_body_failed(error: BoxError) -> GatewayError {
    let (category, code) = crate::forward::upstream::body_failure(error.as_ref());
    let message = match category {
        Category::UpstreamTimeout => "the provider stalled in the middle of its error response",
        _ => "the provider's error response broke off before its end",
    };
    GatewayError::new(category, code, message).with_source(BodyFailed(error))
}

/// A provider response body that failed, as an error with its cause.
#[derive(Debug)]
pub(crate) struct BodyFailed(pub BoxError);

impl std::fmt::Display for BodyFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("provider response body failed")
    }
}

impl std::error::Error for BodyFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

impl Body for Relayed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Relayed::Streamed(body) => Pin::new(body).poll_frame(cx),
            Relayed::Buffered(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Relayed::Prefixed(prefix, rest) => match prefix.take() {
                Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                None => Pin::new(rest).poll_frame(cx),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Relayed::Streamed(body) => body.is_end_stream(),
            Relayed::Buffered(bytes) => bytes.is_none(),
            Relayed::Prefixed(prefix, rest) => prefix.is_none() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Relayed::Streamed(body) => body.size_hint(),
            Relayed::Buffered(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Relayed::Prefixed(prefix, rest) => {
                let first = prefix.as_ref().map_or(0, |b| b.len() as u64);
                let hint = rest.size_hint();
                let mut sum = SizeHint::new();
                sum.set_lower(hint.lower().saturating_add(first));
                if let Some(upper) = hint.upper() {
                    sum.set_upper(upper.saturating_add(first));
                }
                sum
            }
        }
    }
}
