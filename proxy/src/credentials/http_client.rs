//! Calls to a provider's token endpoint. It reuses the connection's upstream client (same
//! trust roots, same `ca_file`): the token URL is configuration, never taken from a request.

use crate::forward::upstream::UpstreamClient;
use base64::Engine;
use bytes::Bytes;
use gatehouse_adapters::oauth::TokenRequest;
use http::{header, HeaderValue, Request};
use http_body_util::{BodyExt, Limited};
use std::time::Duration;

/// A token response larger than this is garbage, not a token.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Why no HTTP answer came back. Codes are safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportFailure {
    Timeout,
    Connect,
    Other,
}

impl TransportFailure {
    pub fn code(self) -> &'static str {
        match self {
            TransportFailure::Timeout => "timeout",
            TransportFailure::Connect => "connect_error",
            TransportFailure::Other => "transport_error",
        }
    }
}

pub(crate) async fn post_form(
    client: &UpstreamClient,
    url: &str,
    request: &TokenRequest,
    timeout: Duration,
) -> Result<(u16, Bytes), TransportFailure> {
    let mut builder = Request::post(url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json");
    if let Some((user, password)) = &request.basic_auth {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
            .map_err(|_| TransportFailure::Other)?;
        value.set_sensitive(true);
        builder = builder.header(header::AUTHORIZATION, value);
    }
    let http_request = builder
        .body(crate::body::full(request.body()))
        .map_err(|_| TransportFailure::Other)?;
    let exchange = async {
        let response = client.request(http_request).await.map_err(|e| {
            if e.is_connect() {
                TransportFailure::Connect
            } else {
                TransportFailure::Other
            }
        })?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|_| TransportFailure::Other)?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| TransportFailure::Timeout)?
}
