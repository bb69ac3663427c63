//! Calls to a provider's token endpoint. It reuses the connection's upstream client (same
//! trust roots, same `ca_file`): the token URL is configuration, never taken from a request.

use crate::forward::upstream::UpstreamClient;
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
    if let Some(authorization) = request.authorization() {
        let mut value =
            HeaderValue::from_str(&authorization).map_err(|_| TransportFailure::Other)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use gatehouse_adapters::oauth::{token_request, ClientAuth, Grant, TokenParams};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A token endpoint that reads client credentials as RFC 6749 §2.3.1 has them: split the
    /// Basic value on its first `:`, then form-urldecode each half. 200 when they match.
    async fn strict_token_endpoint(id: &'static str, secret: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if socket.read(&mut byte).await.unwrap() == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let decoded = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    let value = value.trim().strip_prefix("Basic ")?;
                    name.eq_ignore_ascii_case("authorization").then_some(value)
                })
                .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|raw| {
                    let (user, password) = raw.split_once(':')?;
                    let decode = |s: &str| {
                        url::form_urlencoded::parse(format!("v={s}").as_bytes())
                            .next()
                            .map(|(_, v)| v.into_owned())
                    };
                    Some((decode(user)?, decode(password)?))
                });
            let ok = decoded == Some((id.to_owned(), secret.to_owned()));
            let (status, body) = if ok {
                ("200 OK", r#"{"access_token":"t","expires_in":60}"#)
            } else {
                ("401 Unauthorized", r#"{"error":"invalid_client"}"#)
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        });
        format!("http://{addr}/token")
    }

    #[tokio::test]
    async fn basic_client_secret_with_reserved_characters_reaches_a_strict_endpoint() {
        let (id, secret) = ("svc:gatehouse", "p+q%25r:s/= t");
        let url = strict_token_endpoint(id, secret).await;
        let config = crate::config::Config::from_str(
            std::path::Path::new("test.toml"),
            &format!(
                "[[connections]]\nid = \"t\"\nprovider = \"custom\"\nbase_url = \"{url}\"\n[connections.profile]\nname = \"t\"\n"
            ),
        )
        .unwrap();
        let client =
            crate::forward::upstream::build_client(&config.server, &config.connections[0]).unwrap();
        let request = token_request(
            &TokenParams {
                grant: Grant::ClientCredentials { sub: None },
                client_id: id,
                client_secret: Some(secret),
                scopes: &[],
                audience: None,
                client_auth: None,
            },
            ClientAuth::Basic,
        );
        let (status, body) = post_form(&client, &url, &request, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
}
