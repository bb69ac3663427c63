//! From the caller's request target to the one upstream URL it may reach.
//!
//! A caller sends `/<connection-id>/<provider path>?<query>`. The upstream URL is always the
//! connection's configured scheme and authority plus its base path plus the provider path, so
//! nothing in the request (absolute-form targets, `..` segments, encoded slashes, a Host
//! header) can point Gatehouse at another host.

use crate::error::GatewayError;
use http::uri::{Authority, Scheme};
use http::Uri;
use percent_encoding::percent_decode_str;

/// The fixed part of a connection's upstream URL.
#[derive(Debug, Clone)]
pub struct UpstreamBase {
    pub scheme: Scheme,
    /// Host (lower case) and port as configured: what TLS verifies.
    pub authority: Authority,
    /// Base path without a trailing slash ("" for the root).
    pub base_path: String,
}

impl UpstreamBase {
    pub fn parse(base_url: &str) -> Result<Self, String> {
        let url =
            url::Url::parse(base_url).map_err(|e| format!("invalid base_url {base_url:?}: {e}"))?;
        let scheme = match url.scheme() {
            "https" => Scheme::HTTPS,
            "http" => Scheme::HTTP,
            other => {
                return Err(format!(
                    "base_url scheme must be http or https, not {other:?}"
                ))
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "base_url must not carry credentials; use [connections.credentials]".into(),
            );
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("base_url must not have a query or fragment".into());
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("base_url {base_url:?} has no host"))?
            .to_ascii_lowercase();
        let authority_text = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let authority = Authority::try_from(authority_text.as_str())
            .map_err(|e| format!("invalid base_url host: {e}"))?;
        let base_path = url.path().trim_end_matches('/').to_owned();
        Ok(Self {
            scheme,
            authority,
            base_path,
        })
    }

    /// `scheme://authority/base-path`, for messages and tests.
    #[cfg(test)]
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.base_path)
    }

    /// Where a checked provider path and query go at this base.
    pub fn join(
        &self,
        raw_path: &str,
        query: Option<&str>,
    ) -> Result<UpstreamTarget, GatewayError> {
        let mut pq = String::with_capacity(
            self.base_path.len() + raw_path.len() + query.map_or(0, |q| q.len() + 1),
        );
        pq.push_str(&self.base_path);
        pq.push_str(raw_path);
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        // The pieces were checked on the way in (the caller's target by the HTTP parser, the
        // base path at load, a rewritten query by its encoder). This check is what keeps the
        // request line whole whatever they hold: no space, control, DEL or fragment.
        // (Counted without stopping early, which the compiler can do many bytes at a time.)
        let bad = pq
            .bytes()
            .filter(|&b| b <= b' ' || b == 0x7f || b == b'#')
            .count();
        if !pq.starts_with('/') || bad != 0 {
            return Err(GatewayError::bad_request(
                "invalid_path",
                "request path is not a valid URI path",
            ));
        }
        Ok(UpstreamTarget {
            scheme: self.scheme.clone(),
            authority: self.authority.clone(),
            path_and_query: pq,
        })
    }
}

/// Where one request goes: a connection's configured scheme and authority (never anything from
/// the request), and the origin-form path and query that HTTP/1.1 puts on the request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTarget {
    pub scheme: Scheme,
    pub authority: Authority,
    pub path_and_query: String,
}

impl UpstreamTarget {
    /// The absolute URI, as HTTP/2 sends it (`:scheme`, `:authority`, `:path`).
    pub fn uri(&self) -> Option<Uri> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(self.path_and_query.as_str())
            .build()
            .ok()
    }
}

impl std::fmt::Display for UpstreamTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme, self.authority, self.path_and_query
        )
    }
}

/// The parts of a request target that the rest of the pipeline uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub connection: &'a str,
    /// Provider path as the caller encoded it (forwarded as-is), starting with '/'.
    pub raw_path: &'a str,
    /// The same path percent-decoded, for policy matching.
    pub decoded_path: std::borrow::Cow<'a, str>,
    pub query: Option<&'a str>,
}

/// Splits and checks the request target. Over HTTP/2 the URI always carries the
/// `:scheme`/`:authority` pseudo-headers, which (like Host) are ignored; over HTTP/1 a target
/// with a scheme or authority is absolute-form, which a reverse proxy refuses.
pub fn parse_target(uri: &Uri, version: http::Version) -> Result<Target<'_>, GatewayError> {
    let http1 = version < http::Version::HTTP_2;
    if http1 && (uri.scheme().is_some() || uri.authority().is_some()) {
        return Err(GatewayError::bad_request(
            "absolute_form",
            "absolute-form request targets are not accepted; send /<connection>/<path>",
        ));
    }
    let path = uri.path();
    let rest = path.strip_prefix('/').ok_or_else(|| {
        GatewayError::bad_request("invalid_path", "request path must start with '/'")
    })?;
    let (connection, raw_path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if connection.is_empty() {
        return Err(GatewayError::new(
            crate::error::Category::NotFound,
            "no_connection",
            "request path must start with /<connection-id>/",
        ));
    }
    let decoded_path = check_provider_path(raw_path)?;
    Ok(Target {
        connection,
        raw_path,
        decoded_path,
        query: uri.query(),
    })
}

/// One pass over the bytes: starts with '/', nothing percent-encoded, no backslash or control
/// character, no `.` or `..` segment, no empty segment before another '/' (a trailing '/' is fine).
fn is_plain(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut start = 1;
    for i in 1..=bytes.len() {
        match bytes.get(i) {
            Some(b'%' | b'\\') => return false,
            Some(c) if c.is_ascii_control() => return false,
            Some(b'/') | None => {
                let segment = &bytes[start..i];
                if segment == b"." || segment == b".." || (segment.is_empty() && i < bytes.len()) {
                    return false;
                }
                start = i + 1;
            }
            Some(_) => {}
        }
    }
    true
}

/// Rejects paths that could climb out of the base path or smuggle a separator, and returns
/// the decoded form.
fn check_provider_path(raw: &str) -> Result<std::borrow::Cow<'_, str>, GatewayError> {
    // The common case, nothing encoded: the decoded path is the path itself once it is known
    // to hold no dot segment and no empty one. (`http::Uri` has already refused control
    // characters and anything else outside the URI grammar.)
    if is_plain(raw) {
        return Ok(std::borrow::Cow::Borrowed(raw));
    }
    let traversal = || {
        GatewayError::bad_request(
            "path_traversal",
            "dot segments and encoded separators are not allowed in the path",
        )
    };
    let lower = raw.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || raw.contains('\\') || lower.contains("%00")
    {
        return Err(traversal());
    }
    let mut decoded = String::with_capacity(raw.len());
    for (i, segment) in raw.split('/').enumerate() {
        if i == 0 {
            continue; // before the leading '/'
        }
        let text = percent_decode_str(segment).decode_utf8().map_err(|_| {
            GatewayError::bad_request(
                "invalid_path",
                "path is not valid UTF-8 after percent-decoding",
            )
        })?;
        if text == "." || text == ".." {
            return Err(traversal());
        }
        if text.chars().any(char::is_control) {
            return Err(GatewayError::bad_request(
                "invalid_path",
                "control characters are not allowed in the path",
            ));
        }
        decoded.push('/');
        decoded.push_str(&text);
    }
    // `//` makes an empty segment that some servers collapse and others treat as a root.
    if raw.contains("//") {
        return Err(GatewayError::bad_request(
            "invalid_path",
            "empty path segments ('//') are not allowed",
        ));
    }
    if decoded.is_empty() {
        decoded.push('/');
    }
    Ok(std::borrow::Cow::Owned(decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Result<Target<'_>, GatewayError> {
        // Leak is fine in tests: the Uri must outlive the Target.
        let uri: &'static Uri = Box::leak(Box::new(s.parse::<Uri>().expect("test uri parses")));
        parse_target(uri, http::Version::HTTP_11)
    }

    #[test]
    fn splits_connection_path_and_query() {
        let t = target("/acme-sf/services/data/v60.0/query?q=SELECT+Id+FROM+Account").unwrap();
        assert_eq!(t.connection, "acme-sf");
        assert_eq!(t.raw_path, "/services/data/v60.0/query");
        assert_eq!(t.query, Some("q=SELECT+Id+FROM+Account"));
        assert_eq!(target("/crm").unwrap().raw_path, "/");
        assert_eq!(target("/crm/a/").unwrap().decoded_path, "/a/");
        // Nothing encoded: the decoded path is the raw one, not a copy.
        for plain in ["/", "/a", "/a/", "/a/b.c/..d/.e"] {
            assert!(is_plain(plain), "{plain}");
        }
        for other in [
            "", "a", "//", "/a//b", "/.", "/a/..", "/a/./b", "/a%20", "/a\\b",
        ] {
            assert!(!is_plain(other), "{other}");
        }
        assert!(matches!(
            target("/crm/services/data/v60.0/query")
                .unwrap()
                .decoded_path,
            std::borrow::Cow::Borrowed("/services/data/v60.0/query")
        ));
    }

    #[test]
    fn rejects_ssrf_shapes() {
        for bad in [
            "http://evil.example/crm/x",
            "/crm/../other/x",
            "/crm/a/%2e%2e/b",
            "/crm/a/%2E./b",
            "/crm/a%2fb",
            "/crm/a%5Cb",
            "/crm/a//b",
            "/crm/.",
            "/crm/a/./b",
            "/crm/a/../b",
            "/crm/a%00b",
        ] {
            assert!(target(bad).is_err(), "{bad} must be rejected");
        }
    }

    #[test]
    fn http2_authority_is_not_absolute_form() {
        let uri: Uri = "https://gatehouse.local/crm/x".parse().unwrap();
        assert_eq!(
            parse_target(&uri, http::Version::HTTP_2).unwrap().raw_path,
            "/x"
        );
        assert!(parse_target(&uri, http::Version::HTTP_11).is_err());
    }

    #[test]
    fn decodes_for_policy_but_forwards_raw() {
        let t = target("/crm/sobjects/Acc%6Funt").unwrap();
        assert_eq!(t.raw_path, "/sobjects/Acc%6Funt");
        assert_eq!(t.decoded_path, "/sobjects/Account");
    }

    #[test]
    fn join_keeps_the_configured_authority() {
        let base = UpstreamBase::parse("https://API.example.com:8443/v1/").unwrap();
        assert_eq!(base.authority.as_str(), "api.example.com:8443");
        let target = base.join("/candidates", Some("page=2")).unwrap();
        assert_eq!(target.path_and_query, "/v1/candidates?page=2");
        assert_eq!(
            target.to_string(),
            "https://api.example.com:8443/v1/candidates?page=2"
        );
        assert_eq!(
            target.uri().unwrap().to_string(),
            "https://api.example.com:8443/v1/candidates?page=2"
        );
        // A path that looks like a network-path reference still goes to the configured host.
        let base = UpstreamBase::parse("http://127.0.0.1:1").unwrap();
        let target = base.join("//evil.example/x", None).unwrap();
        assert_eq!(target.authority.as_str(), "127.0.0.1:1");
        assert_eq!(target.path_and_query, "//evil.example/x");
        assert_eq!(
            target.uri().unwrap().authority().unwrap().as_str(),
            "127.0.0.1:1"
        );
    }

    #[test]
    fn join_refuses_what_would_break_the_request_line() {
        let base = UpstreamBase::parse("http://127.0.0.1:1").unwrap();
        for (path, query) in [
            ("/a b", None),
            ("/a\r\nhost: evil", None),
            ("/a", Some("q=1 HTTP/1.1")),
            ("/a\x7f", None),
            ("/a#frag", None),
            ("/a", Some("b\tc")),
        ] {
            let err = base.join(path, query).unwrap_err();
            assert_eq!(err.code, "invalid_path", "{path:?} {query:?}");
        }
        assert!(base
            .join("/sobjects/Acc%6Funt", Some("q=SELECT+Id"))
            .is_ok());
        assert!(
            base.join("/caf\u{e9}", None).is_ok(),
            "non-ASCII passes as it came"
        );
    }

    #[test]
    fn base_url_rules() {
        assert!(UpstreamBase::parse("ftp://x").is_err());
        assert!(UpstreamBase::parse("https://user:pw@x").is_err());
        assert!(UpstreamBase::parse("https://x/?a=1").is_err());
        assert!(UpstreamBase::parse("not a url").is_err());
    }
}
