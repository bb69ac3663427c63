//! Sending the unified layer's provider calls and reading their answers.
//!
//! Each [`ProviderCall`] an adapter makes leaves like a caller's request would: through the
//! SOQL guard (for a provider that speaks SOQL, with the caller's allow-lists) and the exchange
//! (the connection's credential, the 401 refresh-and-replay, the provider-auth health), with a
//! request id and trace context and no header of the caller's. A URL the provider handed out is
//! followed only on the connection's own hosts. The answer is read whole, up to
//! [`MAX_ANSWER_BYTES`], then classified by the adapter before it is read as a page or record.

use crate::error::{Category, GatewayError};
use crate::forward::exchange::{self, Outbound};
use crate::stages::body::RequestBody;
use crate::stages::{hygiene, soql};
use crate::state::{AppState, ConnectionRuntime};
use crate::telemetry::ids::RequestId;
use bytes::Bytes;
use gatehouse_adapters::unified::{Answer, CallTarget, ProviderCall, UnifiedError};
use gatehouse_guards::policy::Policy;
use http::{HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Limited};

/// The largest provider answer read. A page of 2,000 Salesforce rows with every mapped field
/// is a few MiB; past this cap the answer is refused rather than held in memory.
pub(crate) const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// How much of a malformed answer is kept for the audit record.
pub(crate) const KEPT_BODY_BYTES: usize = 64 * 1024;

/// Who sends, for whom: what every call of one unified request shares.
pub(crate) struct Sender<'a> {
    pub state: &'a AppState,
    pub connection: &'a ConnectionRuntime,
    pub request_id: &'a RequestId,
    pub caller: &'a str,
    pub policy: &'a Policy,
    /// The request's trace context: every call continues the same trace.
    pub trace: HeaderValue,
}

/// A provider answer, read whole.
pub(crate) struct Answered {
    pub status: http::StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// A provider error reported inside a successful answer (Ashby's HTTP 200
    /// `success:false`), as the caller's envelope. The adapter still reads such a page first:
    /// some of these errors mean "walk again from the start" (`UnifiedError::ResyncNeeded`)
    /// rather than a failure.
    pub reported: Option<GatewayError>,
}

impl Answered {
    pub fn answer(&self) -> Answer<'_> {
        Answer {
            status: self.status.as_u16(),
            headers: &self.headers,
            body: &self.body,
        }
    }
}

impl Sender<'_> {
    /// Sends `call` and reads its answer; a provider error becomes the caller's envelope with
    /// the provider's error inside.
    pub async fn send(&self, call: ProviderCall) -> Result<Answered, GatewayError> {
        let connection = self.connection;
        let (path, query) = resolve(connection, &call.target)?;
        let mut body = match call.body {
            Some(bytes) => RequestBody::Buffered(Bytes::from(bytes)),
            None => RequestBody::Empty,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in call.headers {
            headers.insert(name, value);
        }
        headers.insert(hygiene::TRACEPARENT, self.trace.clone());
        let asked = soql::Asked {
            request_id: self.request_id.as_str(),
            caller: self.caller,
            policy: self.policy,
            method: &call.method,
            path: &path,
            query: query.as_deref(),
            headers: &headers,
            keyset_walk: true,
        };
        let view = connection.soql_view();
        let state = self.state;
        let rewritten =
            soql::guard(view, &state.metrics, &state.credentials, asked, &mut body).await?;
        let query = rewritten.or(query);
        let (headers, _) = hygiene::outbound(headers, self.request_id);
        let outbound = Outbound {
            method: &call.method,
            path: &path,
            query: query.as_deref(),
            headers,
            body,
        };
        let response = exchange::exchange(state, connection, outbound).await?;
        let (head, body) = response.into_parts();
        let body = read_whole(connection.provider.name(), body).await?;
        let mut answered = Answered {
            status: head.status,
            headers: head.headers,
            body,
            reported: None,
        };
        let provider = connection.provider.as_ref();
        if let Some(error) =
            provider.classify_error(answered.status, &answered.headers, &answered.body)
        {
            let error = GatewayError::from_provider(provider.name(), &error, &answered.body);
            if !answered.status.is_success() {
                return Err(error);
            }
            answered.reported = Some(error);
        }
        Ok(answered)
    }
}

/// Reads a provider body whole, refusing one over [`MAX_ANSWER_BYTES`].
async fn read_whole(
    provider: &str,
    body: crate::forward::upstream::UpstreamBody,
) -> Result<Bytes, GatewayError> {
    let too_large = || {
        GatewayError::new(
            Category::ProviderUnavailable,
            "provider_answer_too_large",
            format!(
                "{provider} answered with more than {} MiB; ask for a smaller page_size",
                MAX_ANSWER_BYTES / (1024 * 1024)
            ),
        )
    };
    if http_body::Body::size_hint(&body)
        .exact()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    match Limited::new(body, MAX_ANSWER_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(error) => {
            let (category, code) = crate::forward::upstream::body_failure(error.as_ref());
            Err(GatewayError::new(
                category,
                code,
                format!("{provider}'s answer broke off before its end"),
            )
            .with_source(crate::respond::BodyFailed(error)))
        }
    }
}

/// The path and query, relative to the connection's base path, a call goes to. A provider's
/// own URL (absolute, or host-relative) must lie on the connection's hosts and under its base
/// path; anything else is refused before it is sent.
pub(crate) fn resolve(
    connection: &ConnectionRuntime,
    target: &CallTarget,
) -> Result<(String, Option<String>), GatewayError> {
    let elsewhere = || {
        GatewayError::new(
            Category::ProviderUnavailable,
            "provider_link_elsewhere",
            format!(
                "{} handed out a next-page link that leaves connection {}'s own hosts; it was not followed",
                connection.provider.name(),
                connection.id
            ),
        )
    };
    match target {
        CallTarget::Relative { path, query } => {
            if !path.starts_with('/') {
                return Err(elsewhere());
            }
            Ok((path.clone(), query.clone()))
        }
        CallTarget::Absolute(url) => connection.own_path_of(url).ok_or_else(elsewhere),
        CallTarget::HostRelative(path_and_query) => {
            // Read against the base's own origin, so that the URL parser's normalising (dot
            // segments, `//host` forms) can be seen: a link that it changes is refused.
            let base = &connection.base;
            let origin = format!("{}://{}", base.scheme, base.authority);
            if !path_and_query.starts_with('/') || path_and_query.starts_with("//") {
                return Err(elsewhere());
            }
            let joined = url::Url::parse(&origin)
                .and_then(|o| o.join(path_and_query))
                .map_err(|_| elsewhere())?;
            let (path, query) = connection
                .own_path_of(joined.as_str())
                .ok_or_else(elsewhere)?;
            let rebuilt = match &query {
                Some(q) => format!("{}{path}?{q}", base.base_path),
                None => format!("{}{path}", base.base_path),
            };
            if rebuilt != *path_and_query {
                return Err(elsewhere());
            }
            Ok((path, query))
        }
    }
}

/// A provider answer the adapter could not read, with (the start of) its body kept for the
/// audit record. The body is never in the caller's envelope nor in the log line.
#[derive(Debug)]
pub(crate) struct MalformedAnswer {
    pub reason: String,
    pub status: u16,
    pub body: Bytes,
}

impl std::fmt::Display for MalformedAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "malformed provider answer (status {}, {} bytes kept): {}",
            self.status,
            self.body.len(),
            self.reason
        )
    }
}

impl std::error::Error for MalformedAnswer {}

/// The caller's error for an adapter's refusal to read an answer or serve a request.
pub(crate) fn unified_error(
    connection: &ConnectionRuntime,
    error: UnifiedError,
    answered: Option<&Answered>,
) -> GatewayError {
    let provider = connection.provider.name();
    match error {
        UnifiedError::Malformed(reason) => {
            let (status, body) = answered.map_or((0, Bytes::new()), |a| {
                let kept = a.body.len().min(KEPT_BODY_BYTES);
                (a.status.as_u16(), a.body.slice(..kept))
            });
            GatewayError::new(
                Category::ProviderUnavailable,
                "malformed_provider_answer",
                format!("{provider} answered with something its API does not document"),
            )
            .with_source(MalformedAnswer {
                reason,
                status,
                body,
            })
        }
        UnifiedError::Unsupported { .. } => {
            GatewayError::new(Category::NotFound, "model_not_served", error.to_string())
        }
        UnifiedError::BadRemoteId(_) => {
            GatewayError::new(Category::NotFound, "unknown_record_id", error.to_string())
        }
        UnifiedError::BadWalkState => {
            GatewayError::bad_request("invalid_cursor", error.to_string())
        }
        // Handled by the walk (one walk again from the start); seen here only when the
        // provider says it again on the fresh walk.
        UnifiedError::ResyncNeeded => GatewayError::new(
            Category::ProviderUnavailable,
            "provider_resync_failed",
            format!("{provider} asked for a full walk, and again on the full walk"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    async fn connection(base_url: &str, extra: &str) -> std::sync::Arc<ConnectionRuntime> {
        let text = format!(
            "[[connections]]\nid = \"crm\"\nprovider = \"salesforce\"\nbase_url = \"{base_url}\"\n{extra}\ncredentials = {{ type = \"bearer\", token = \"t\" }}\n"
        );
        let config = Config::from_str(Path::new("test.toml"), &text).unwrap();
        let state = AppState::build(config).await.unwrap();
        state.connections.get("crm").unwrap().clone()
    }

    fn absolute(url: &str) -> CallTarget {
        CallTarget::Absolute(url.to_owned())
    }

    #[tokio::test]
    async fn a_next_page_link_is_followed_only_on_the_connections_own_hosts() {
        let conn = connection(
            "https://acme.my.example.com/api",
            "allowed_hosts = [\"acme2.my.example.com\"]",
        )
        .await;
        let own = |target: CallTarget| resolve(&conn, &target).map_err(|e| e.code);
        assert_eq!(
            own(absolute("https://acme.my.example.com/api/v1/q?after=2")),
            Ok(("/v1/q".to_owned(), Some("after=2".to_owned())))
        );
        assert_eq!(
            own(absolute("https://acme2.my.example.com/api/v1/q")),
            Ok(("/v1/q".to_owned(), None))
        );
        assert_eq!(
            own(CallTarget::HostRelative("/api/v1/query/01g-500".into())),
            Ok(("/v1/query/01g-500".to_owned(), None))
        );
        for elsewhere in [
            absolute("https://evil.example.com/api/v1/q"),
            absolute("http://acme.my.example.com/api/v1/q"),
            absolute("https://acme.my.example.com:8443/api/v1/q"),
            absolute("https://user@acme.my.example.com/api/v1/q"),
            absolute("https://acme.my.example.com/other/v1/q"),
            absolute("not a url"),
            CallTarget::HostRelative("/other/v1/q".into()),
            CallTarget::HostRelative("//evil.example.com/api/v1/q".into()),
            CallTarget::HostRelative("/api/../admin".into()),
            CallTarget::HostRelative("/api/v1/./q".into()),
            CallTarget::HostRelative("https://evil.example.com/api/v1".into()),
            CallTarget::Relative {
                path: "v1/q".into(),
                query: None,
            },
        ] {
            assert_eq!(
                own(elsewhere.clone()),
                Err("provider_link_elsewhere"),
                "{elsewhere:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_malformed_answer_keeps_a_bounded_body_for_the_audit_and_never_sends_it() {
        let conn = connection("https://acme.my.example.com", "").await;
        let answered = Answered {
            status: http::StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from(format!("<html>{}", "x".repeat(KEPT_BODY_BYTES * 2))),
            reported: None,
        };
        let error = unified_error(
            &conn,
            UnifiedError::Malformed("expected value at line 1".into()),
            Some(&answered),
        );
        assert_eq!(error.category, Category::ProviderUnavailable);
        assert_eq!(error.code, "malformed_provider_answer");
        let kept = std::error::Error::source(&error)
            .and_then(|s| s.downcast_ref::<MalformedAnswer>())
            .unwrap();
        assert_eq!(kept.body.len(), KEPT_BODY_BYTES);
        assert!(kept.body.starts_with(b"<html>"));
        // Neither the log line nor the caller's envelope carries the body.
        assert!(!error.cause_chain().unwrap().contains("<html>"));
        let response = error.into_response(&crate::error::ErrorContext::default());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(!String::from_utf8_lossy(&body).contains("<html>"));
    }
}
