//! The respond stage: what the caller gets back from a provider response. Today: the
//! provider's headers cleaned (provider session cookies stay with Gatehouse) and our request
//! id added, with the provider's body streamed through as it arrives.
//!
//! The provider's quota signals, the error taxonomy (a provider error body classified into the
//! shared envelope's category and code, the provider's own error kept verbatim) and unified
//! responses join here.

use crate::body::ProxyBody;
use crate::forward::upstream::UpstreamBody;
use crate::stages::hygiene::{self, RequestId, X_REQUEST_ID};
use http::Response;
use http_body_util::BodyExt;

/// The caller's response to a provider response.
pub(crate) fn to_caller(
    response: Response<UpstreamBody>,
    request_id: &RequestId,
) -> Response<ProxyBody> {
    let (mut head, body) = response.into_parts();
    hygiene::sanitize_response(&mut head.headers);
    head.headers.insert(X_REQUEST_ID, request_id.header());
    Response::from_parts(head, body.boxed_unsync())
}
