//! Header hygiene between caller and provider.
//!
//! Callers never hold provider credentials, so whatever `Authorization`, `Cookie` or
//! `Proxy-Authorization` they send is removed before the connection's own credential is set.
//! Hop-by-hop headers (RFC 9110 §7.6.1) and any header named in `Connection` are dropped in
//! both directions. Headers that make some server run another method or route elsewhere
//! (method overrides, `Forwarded`/`X-Forwarded-*`, `X-Original-URL`, `X-Rewrite-URL`) are
//! dropped from requests, and a request with `_` in a header name is refused. Framing is set by whoever writes the message (hyper towards callers,
//! [`crate::h1`] or hyper towards providers), and never carries both `Content-Length` and
//! `Transfer-Encoding`.

use crate::error::GatewayError;
use http::header::{self, HeaderMap, HeaderName};

pub use gatehouse_http1::{content_length, InvalidContentLength};

use crate::telemetry::ids::traceparent;
pub use crate::telemetry::ids::{RequestId, TRACEPARENT, X_REQUEST_ID};

/// Hop-by-hop headers (RFC 9110 §7.6.1), plus the legacy `Proxy-Connection`.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::PROXY_AUTHENTICATE
        || name == header::PROXY_AUTHORIZATION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// Removes hop-by-hop headers, headers named in `Connection`, and those `also` picks: one scan
/// over the (few) names present instead of a lookup for every name that might be. The names to
/// remove are gathered on the stack; a request with more than a handful is rare and still
/// handled, by scanning again.
fn strip(headers: &mut HeaderMap, also: impl Fn(&HeaderName) -> bool) {
    const BATCH: usize = 8;
    loop {
        let mut doomed: [Option<HeaderName>; BATCH] = Default::default();
        let mut count = 0;
        let mut connection = false;
        for name in headers.keys() {
            connection |= name == header::CONNECTION;
            if is_hop_by_hop(name) || also(name) {
                if count == BATCH {
                    break;
                }
                doomed[count] = Some(name.clone());
                count += 1;
            }
        }
        if connection {
            // The names `Connection` lists go too (before `Connection` itself is removed).
            let listed: Vec<HeaderName> = headers
                .get_all(header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
                .collect();
            for name in listed {
                headers.remove(name);
            }
        }
        for name in doomed.into_iter().flatten() {
            headers.remove(name);
        }
        if count < BATCH {
            return;
        }
    }
}

/// Caller headers that tell some server to run another method or route to another place than
/// the request line says: method overrides (the policy decided on the request's own method),
/// the forwarding family (which describes the caller's own hops, not Gatehouse's request, and
/// which frameworks trust for the host, scheme and prefix of the URL they build) and the IIS /
/// Symfony path rewrites. Stripped rather than refused: frameworks that pass an inbound
/// request's headers on copy them innocently, and without them the provider sees exactly the
/// request the policy allowed.
fn is_rerouting(name: &HeaderName) -> bool {
    let name = name.as_str();
    matches!(
        name,
        "x-http-method-override"
            | "x-http-method"
            | "x-method-override"
            | "forwarded"
            | "x-real-ip"
            | "x-original-url"
            | "x-rewrite-url"
            | "x-original-host"
            | "x-host"
    ) || name.starts_with("x-forwarded-")
}

/// Refuses a caller header whose name holds `_`. CGI-style servers (and nginx, PHP, WSGI
/// behind them) turn `-` into `_`, so `X_Api_Key` and `X-Api-Key` become one variable, and a
/// caller could sit its own value beside (or over) the credential Gatehouse injects. Refused,
/// not stripped: a caller that means `-` learns at once which header to fix, where a silently
/// dropped header would fail at the provider, far from the cause. Hyper has already refused
/// names that are not tokens.
pub fn refuse_ambiguous_names(headers: &HeaderMap) -> Result<(), GatewayError> {
    match headers
        .keys()
        .find(|name| name.as_str().bytes().any(|b| b == b'_'))
    {
        None => Ok(()),
        Some(name) => {
            // Names are ASCII, so a byte cut is a character cut; the cap keeps a huge name out
            // of the envelope.
            let shown = &name.as_str()[..name.as_str().len().min(64)];
            Err(GatewayError::bad_request(
                "header_name_underscore",
                format!(
                    "header {shown:?} has '_' in its name, which some servers read as '-'; send it with '-'"
                ),
            ))
        }
    }
}

/// Prepares caller headers for the provider. `Host` is removed: the client sets it from the
/// upstream URI, which is always the connection's configured authority.
pub fn sanitize_request(headers: &mut HeaderMap) {
    // A body re-framed by hyper must not keep a stale length beside chunked framing; hyper
    // derives the length again.
    let reframed = headers.contains_key(header::TRANSFER_ENCODING);
    strip(headers, |name| {
        name == header::AUTHORIZATION
            || name == header::COOKIE
            || name == header::HOST
            // Gatehouse has already taken the body (hyper answered any `100-continue` to the
            // caller); asking the provider again would only add a round trip.
            || name == header::EXPECT
            || (reframed && name == header::CONTENT_LENGTH)
            || is_rerouting(name)
    });
}

/// The headers a request leaves with: the caller's, cleaned ([`sanitize_request`]), plus our
/// request id and the W3C trace context (the caller's, continued, or a new one); and the trace
/// id it leaves with, for the request's record.
pub fn outbound(
    mut headers: HeaderMap,
    request_id: &RequestId,
) -> (HeaderMap, Option<crate::telemetry::record::TraceId>) {
    sanitize_request(&mut headers);
    headers.insert(X_REQUEST_ID, request_id.header());
    let trace = traceparent(&headers);
    let trace_id = crate::telemetry::record::TraceId::of(&trace);
    headers.insert(TRACEPARENT, trace);
    (headers, trace_id)
}

/// Prepares provider headers for the caller. Provider session cookies stay with Gatehouse, in
/// either spelling (`Set-Cookie2`, RFC 2965, is obsolete but still honoured by some clients).
pub fn sanitize_response(headers: &mut HeaderMap) {
    strip(headers, |name| {
        name == header::SET_COOKIE || name.as_str() == "set-cookie2"
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn request_loses_caller_credentials_and_hop_by_hop() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer caller-held"),
            ("proxy-authorization", "Bearer gatehouse-token"),
            ("cookie", "sid=1"),
            ("connection", "x-secret-hop, keep-alive"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("host", "evil.example"),
            ("expect", "100-continue"),
            ("accept", "application/json"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        sanitize_request(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["accept"]);

        // Chunked framing beside a length: both go, hyper frames the body again.
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("transfer-encoding", "chunked"),
            ("content-length", "10"),
            ("proxy-connection", "keep-alive"),
            ("content-type", "application/json"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        sanitize_request(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["content-type"]);
        // A length alone stays.
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        sanitize_request(&mut h);
        assert!(h.contains_key(header::CONTENT_LENGTH));
    }

    #[test]
    fn more_doomed_names_than_one_batch_all_go() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("accept", "application/json"),
            ("authorization", "Bearer caller-held"),
            ("proxy-authorization", "Bearer gatehouse-token"),
            ("cookie", "sid=1"),
            ("host", "evil.example"),
            ("expect", "100-continue"),
            ("te", "trailers"),
            ("trailer", "x-t"),
            ("upgrade", "websocket"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
            ("content-length", "10"),
            ("x-hop-a", "1"),
            ("x-hop-b", "1"),
            ("connection", "x-hop-a, x-hop-b"),
            ("content-type", "application/json"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        sanitize_request(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["accept", "content-type"]);
    }

    #[test]
    fn request_loses_method_overrides_and_rerouting_headers() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-http-method-override", "DELETE"),
            ("x-http-method", "DELETE"),
            ("x-method-override", "DELETE"),
            ("forwarded", "host=evil.example;proto=http"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-prefix", "/admin"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-real-ip", "10.0.0.1"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
            ("x-original-host", "evil.example"),
            ("x-host", "evil.example"),
            ("x-forwarded", "kept: not a name any server reads"),
            ("accept", "application/json"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        sanitize_request(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["accept", "x-forwarded"]);
    }

    #[test]
    fn underscore_names_are_refused_and_named() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("fine"));
        assert!(refuse_ambiguous_names(&h).is_ok());
        h.insert("x_api_key", HeaderValue::from_static("mine"));
        let err = refuse_ambiguous_names(&h).unwrap_err();
        assert_eq!(err.code, "header_name_underscore");
        assert_eq!(err.category, crate::error::Category::BadRequest);
        assert!(err.message.contains("\"x_api_key\""), "{}", err.message);
        assert!(!err.message.contains("mine"), "values never echo");
        let mut h = HeaderMap::new();
        let long = format!("x_{}", "a".repeat(5000));
        h.insert(
            HeaderName::from_bytes(long.as_bytes()).unwrap(),
            HeaderValue::from_static("1"),
        );
        assert!(refuse_ambiguous_names(&h).unwrap_err().message.len() < 200);
    }

    #[test]
    fn response_loses_set_cookie2_too() {
        let mut h = HeaderMap::new();
        h.insert(
            "set-cookie2",
            HeaderValue::from_static("sid=provider; Version=1"),
        );
        h.insert(header::SET_COOKIE, HeaderValue::from_static("sid=provider"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        sanitize_response(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["content-type"]);
    }

    #[test]
    fn response_loses_set_cookie() {
        let mut h = HeaderMap::new();
        h.insert(header::SET_COOKIE, HeaderValue::from_static("sid=provider"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        sanitize_response(&mut h);
        assert!(h.get(header::SET_COOKIE).is_none());
        assert!(h.get(header::CONTENT_TYPE).is_some());
    }
}
