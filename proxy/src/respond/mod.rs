//! The respond stage: what the caller gets back from a provider response. The provider's
//! headers cleaned (provider session cookies stay with Gatehouse), our request id added, the
//! response head spoken as HTTP/1.1 whatever version the provider spoke; the provider's body
//! streamed through as it arrives, except a small provider error body, which is read whole so
//! that its adapter can name the provider's error code for the record (the caller gets the same
//! bytes). The response body then completes the request's record when it ends
//! ([`RecordedBody`]).
//!
//! The provider's quota signals, the error taxonomy (a provider error body classified into the
//! shared envelope's category and code, the provider's own error kept verbatim) and unified
//! responses join here.

mod recorded;

pub(crate) use recorded::recorded;

use crate::body::BoxError;
use crate::error::{Category, GatewayError};
use crate::forward::upstream::UpstreamBody;
use crate::pipeline::recorder::RequestContext;
use crate::stages::hygiene::{self, X_REQUEST_ID};
use bytes::Bytes;
use http::{Response, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The largest provider error body read whole to find the provider's error code. Larger ones
/// (and those without a length) stream through unread.
pub(crate) const ERROR_BODY_READ_BYTES: u64 = 16 * 1024;

/// A provider response body on its way to the caller: streamed, or read whole.
pub(crate) enum Relayed {
    Streamed(UpstreamBody),
    Buffered(Option<Bytes>),
}

/// The caller's response to a provider response.
pub(crate) async fn to_caller(
    response: Response<UpstreamBody>,
    ctx: &mut RequestContext,
) -> Result<Response<Relayed>, GatewayError> {
    let (mut head, body) = response.into_parts();
    framing_for_caller(&mut head.headers)?;
    hygiene::sanitize_response(&mut head.headers);
    head.headers.insert(X_REQUEST_ID, ctx.request_id.header());
    // The provider's HTTP version is its hop's business: an HTTP/1.0 provider must not turn
    // the caller's HTTP/1.1 keep-alive connection into a closing one.
    head.version = Version::HTTP_11;
    let small = body
        .size_hint()
        .exact()
        .is_some_and(|n| n <= ERROR_BODY_READ_BYTES);
    if !(head.status.as_u16() >= 400 && small) {
        return Ok(Response::from_parts(head, Relayed::Streamed(body)));
    }
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return Err(error_body_failed(error)),
    };
    if let Some(connection) = ctx.connection.as_deref() {
        ctx.provider_error = connection
            .provider
            .error_code(head.status, &bytes)
            .map(String::into_boxed_str);
    }
    Ok(Response::from_parts(head, Relayed::Buffered(Some(bytes))))
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
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Relayed::Streamed(body) => body.is_end_stream(),
            Relayed::Buffered(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Relayed::Streamed(body) => body.size_hint(),
            Relayed::Buffered(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
