//! From the caller's request target to the one upstream URL it may reach.
//!
//! A caller sends `/<connection-id>/<provider path>?<query>`. The upstream URL is always the
//! connection's configured scheme and authority plus its base path plus the provider path, so
//! nothing in the request (absolute-form targets, `..` segments, encoded slashes, a Host
//! header) can point Gatehouse at another host.

use crate::error::GatewayError;
use gatehouse_guards::policy::{is_dot_segment, is_valid_method};
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
        if !pq.starts_with('/') || breaks_request_line(pq.as_bytes()) {
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

/// Whether `bytes` hold a space, a control character, DEL or `#`: anything that would end or
/// split an HTTP/1.1 request line. Every request's whole path and query pass through here.
fn breaks_request_line(bytes: &[u8]) -> bool {
    use crate::swar::{any_byte, has_below, has_byte};
    any_byte(
        bytes,
        |x| has_below(x, 0x21) | has_byte(x, 0x7f) | has_byte(x, b'#'),
        |b| b <= b' ' || b == 0x7f || b == b'#',
    )
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

/// One pass over the bytes: starts with '/', nothing percent-encoded, ASCII only, no backslash
/// or control character, no dot segment (with or without `;params`), no empty segment before
/// another '/' (a trailing '/' is fine).
fn is_plain(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut start = 1;
    for i in 1..=bytes.len() {
        match bytes.get(i) {
            // Non-ASCII goes the long way, where lookalikes of '.' and '/' are looked for.
            Some(b'%' | b'\\' | 0x80..) => return false,
            Some(c) if c.is_ascii_control() => return false,
            Some(b'/') | None => {
                let segment = &raw[start..i];
                if is_dot_segment(segment) || (segment.is_empty() && i < bytes.len()) {
                    return false;
                }
                start = i + 1;
            }
            Some(_) => {}
        }
    }
    true
}

/// Characters that some server folds into `.`, `/`, `\`, `;`, `%`, `?` or `#` before it routes:
/// every character whose Unicode compatibility form (NFKC, which Java, .NET and Python
/// frameworks apply to paths) contains one of them, listed from the Unicode 14 tables, plus
/// the slashes that Windows "best fit" code-page conversion maps to `/` (U+2215 DIVISION
/// SLASH, U+2044 FRACTION SLASH) and the big solidi. Refused rather than folded: Gatehouse
/// forwards the path as sent, so what it matched must be what every server reads. No
/// provider API path needs them.
const LOOKALIKES: &[char] = &[
    '\u{037e}',
    '\u{2024}',
    '\u{2025}',
    '\u{2026}',
    '\u{2044}',
    '\u{2047}',
    '\u{2048}',
    '\u{2049}',
    '\u{2100}',
    '\u{2101}',
    '\u{2105}',
    '\u{2106}',
    '\u{2215}',
    '\u{2488}',
    '\u{2489}',
    '\u{248a}',
    '\u{248b}',
    '\u{248c}',
    '\u{248d}',
    '\u{248e}',
    '\u{248f}',
    '\u{2490}',
    '\u{2491}',
    '\u{2492}',
    '\u{2493}',
    '\u{2494}',
    '\u{2495}',
    '\u{2496}',
    '\u{2497}',
    '\u{2498}',
    '\u{2499}',
    '\u{249a}',
    '\u{249b}',
    '\u{29f8}',
    '\u{29f9}',
    '\u{33c2}',
    '\u{33c7}',
    '\u{33d8}',
    '\u{fe14}',
    '\u{fe16}',
    '\u{fe19}',
    '\u{fe30}',
    '\u{fe52}',
    '\u{fe54}',
    '\u{fe56}',
    '\u{fe5f}',
    '\u{fe68}',
    '\u{fe6a}',
    '\u{ff03}',
    '\u{ff05}',
    '\u{ff0e}',
    '\u{ff0f}',
    '\u{ff1b}',
    '\u{ff1f}',
    '\u{ff3c}',
    '\u{1f100}',
];

/// Whether decoded text still holds a percent escape (`%2e`, or IIS's `%u002e`): a server that
/// decodes twice would read something else than the policy matched.
fn still_encoded(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        let hex = |from: usize, n: usize| {
            bytes
                .get(from..from + n)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        };
        b == b'%'
            && (hex(i + 1, 2) || (matches!(bytes.get(i + 1), Some(b'u' | b'U')) && hex(i + 2, 4)))
    })
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
        // `..;x` too: servlet containers strip `;params` first, then resolve the `..`.
        if is_dot_segment(&text) {
            return Err(traversal());
        }
        if still_encoded(&text) {
            return Err(GatewayError::bad_request(
                "path_traversal",
                "the path is percent-encoded twice (%25 followed by an escape); send it encoded once",
            ));
        }
        if text.contains(LOOKALIKES) {
            return Err(GatewayError::bad_request(
                "path_traversal",
                "the path holds a character that some servers read as '.', '/', '\\', ';', '%', '?' or '#' (a full-width dot, for one)",
            ));
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

/// Refuses a method that is not a short upper-case token before anything records it: hyper
/// takes any token as a method, and one of 60,000 bytes would otherwise become a log line.
/// Which methods may be forwarded is the policy's call ([`gatehouse_guards::policy`]).
pub fn check_method(method: &http::Method) -> Result<(), GatewayError> {
    if is_valid_method(method.as_str()) {
        return Ok(());
    }
    Err(GatewayError::bad_request(
        "invalid_method",
        format!(
            "the request method must be 1 to {} upper-case token characters (GET, POST, ...)",
            gatehouse_guards::policy::MAX_METHOD_LEN
        ),
    ))
}

/// The method as metrics, logs and errors may show it: itself when [`check_method`] accepts it,
/// else `invalid`, which no accepted request can carry (accepted methods are upper case).
pub fn recorded_method(method: &http::Method) -> http::Method {
    if is_valid_method(method.as_str()) {
        method.clone()
    } else {
        http::Method::from_bytes(b"invalid").unwrap_or_default()
    }
}

/// The method the provider would run instead of the request's own, when it honours a
/// method-override query parameter named `param` (the connection's profile knows which, if
/// any). Names are compared after decoding and without regard to case, and `;` counts as a
/// separator as well as `&`, so no spelling a provider might accept slips past. Several
/// occurrences that disagree, or a value that is not a method, are refused: there is no telling
/// which the provider would act on.
pub fn method_override(
    query: Option<&str>,
    param: Option<&str>,
) -> Result<Option<String>, GatewayError> {
    let (Some(query), Some(param)) = (query, param) else {
        return Ok(None);
    };
    let mut found: Option<String> = None;
    for pair in query.split(['&', ';']) {
        // The name is decoded first and alone: a value (a whole SOQL query, say) is decoded
        // only for the parameter asked about.
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Encoded, a name is between one and three bytes per byte of its decoded form: most
        // names (`q`, `fields`) are settled by their length without decoding.
        if !(param.len()..=3 * param.len()).contains(&name.len())
            || !form_decoded(name).eq_ignore_ascii_case(param)
        {
            continue;
        }
        let value = form_decoded(value);
        if !is_valid_method(&value) {
            return Err(GatewayError::bad_request(
                "invalid_method_override",
                format!(
                    "the {param} parameter must name an upper-case method (PATCH, DELETE, ...)"
                ),
            ));
        }
        match &found {
            Some(seen) if *seen != value => {
                return Err(GatewayError::bad_request(
                    "invalid_method_override",
                    format!(
                        "the {param} parameter is given more than once, with different methods"
                    ),
                ))
            }
            Some(_) => {}
            None => found = Some(value.into_owned()),
        }
    }
    Ok(found)
}

/// One `application/x-www-form-urlencoded` name or value (`+` is a space, `%XX` a byte),
/// borrowed when there is nothing to decode.
fn form_decoded(part: &str) -> std::borrow::Cow<'_, str> {
    // `parse` reads `part` as one name with no `=`: `part` has no `&` (the caller split on
    // it), and a name stops at its first `=`, which the caller split off too.
    form_urlencoded::parse(part.as_bytes())
        .next()
        .map(|(name, _)| name)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Category;

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
    fn dot_segments_with_path_parameters_are_refused() {
        for bad in [
            "/crm/pub/..;/admin",
            "/crm/pub/%2e%2e;/admin",
            "/crm/pub/%2E%2E%3B/admin",
            "/crm/pub/..%3bjsessionid=1/admin",
            "/crm/pub/.;x/admin",
            "/crm/pub/;x/admin",
            "/crm/pub/%3B/admin",
        ] {
            let err = target(bad).expect_err(bad);
            assert_eq!(err.code, "path_traversal", "{bad}");
        }
        // A parameter on an ordinary segment is the provider's business.
        assert_eq!(target("/crm/a;v=1/b").unwrap().decoded_path, "/a;v=1/b");
        assert_eq!(target("/crm/a/...").unwrap().decoded_path, "/a/...");
    }

    #[test]
    fn double_encoding_and_lookalike_dots_are_refused() {
        for bad in [
            "/crm/pub/%252e%252e/admin",
            "/crm/pub/%25%32%65%25%32%65/admin",
            "/crm/pub/%252f",
            "/crm/pub/%u002e%u002e/admin",
            "/crm/pub/%EF%BC%8E%EF%BC%8E/admin", // U+FF0E FULLWIDTH FULL STOP, twice
            "/crm/pub/%EF%BC%8F",                // U+FF0F FULLWIDTH SOLIDUS
            "/crm/pub/%E2%80%A5/admin",          // U+2025 TWO DOT LEADER, NFKC ".."
            "/crm/pub/%EF%B9%92%EF%B9%92",       // U+FE52 SMALL FULL STOP
            "/crm/pub/a%E2%88%95b",              // U+2215 DIVISION SLASH
        ] {
            let err = target(bad).expect_err(bad);
            assert_eq!(err.code, "path_traversal", "{bad}");
        }
        // A literal '%' that no second decoding would change, and other non-ASCII, pass.
        assert_eq!(target("/crm/a/100%25").unwrap().decoded_path, "/a/100%");
        assert_eq!(target("/crm/a/%25zz").unwrap().decoded_path, "/a/%zz");
        assert_eq!(target("/crm/caf%C3%A9").unwrap().decoded_path, "/caf\u{e9}");
        // Overlong UTF-8 for '.' is not UTF-8 at all.
        assert_eq!(
            target("/crm/pub/%C0%AE%C0%AE/admin").unwrap_err().code,
            "invalid_path"
        );
    }

    #[test]
    fn raw_non_ascii_lookalikes_are_refused_too() {
        // hyper hands over request targets with raw UTF-8 bytes; build such a Uri the same way.
        let uri = Uri::from_maybe_shared(bytes_of("/crm/pub/\u{ff0e}\u{ff0e}/admin"))
            .expect("a Uri may hold raw UTF-8 in its path");
        let err = parse_target(&uri, http::Version::HTTP_11).unwrap_err();
        assert_eq!(err.code, "path_traversal");
        assert!(!is_plain("/pub/\u{ff0e}\u{ff0e}/admin"));
        assert!(!is_plain("/pub/..;/admin"));
        assert!(!is_plain("/pub/;/admin"));
        assert!(is_plain("/pub/a;b/admin"));
    }

    fn bytes_of(s: &str) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn methods_are_short_upper_case_tokens() {
        for good in ["GET", "PATCH", "PROPFIND", "M-SEARCH", "TRACE"] {
            let m = http::Method::from_bytes(good.as_bytes()).unwrap();
            assert!(check_method(&m).is_ok(), "{good}");
            assert_eq!(recorded_method(&m), m);
        }
        let long = "A".repeat(60_000);
        for bad in ["get", "Delete", long.as_str(), &"B".repeat(33)] {
            let m = http::Method::from_bytes(bad.as_bytes()).unwrap();
            let err = check_method(&m).unwrap_err();
            assert_eq!(
                (err.category, err.code),
                (Category::BadRequest, "invalid_method")
            );
            assert!(err.message.len() < 200);
            assert_eq!(recorded_method(&m).as_str(), "invalid");
        }
    }

    #[test]
    fn a_byte_that_would_break_the_request_line_is_found_anywhere() {
        let clean = "/services/data/v60.0/query?q=SELECT+Id+FROM+Account";
        assert!(!breaks_request_line(clean.as_bytes()));
        for bad in [b' ', b'\t', b'\n', b'\r', 0x00, 0x1f, 0x7f, b'#'] {
            for at in 0..clean.len() {
                let mut bytes = clean.as_bytes().to_vec();
                bytes[at] = bad;
                assert!(breaks_request_line(&bytes), "{bad:#x} at {at}");
            }
        }
        // Non-ASCII bytes are not controls (the router decides about them).
        assert!(!breaks_request_line("/caf\u{e9}/\u{ff}".as_bytes()));
    }

    #[test]
    fn method_override_parameter() {
        let over = |q: &str| method_override(Some(q), Some("_HttpMethod"));
        assert_eq!(
            over("_HttpMethod=DELETE").unwrap().as_deref(),
            Some("DELETE")
        );
        assert_eq!(
            over("a=1&_httpmethod=PATCH").unwrap().as_deref(),
            Some("PATCH")
        );
        assert_eq!(
            over("%5FHttpMethod=DELETE").unwrap().as_deref(),
            Some("DELETE")
        );
        // Every byte of the name encoded: the longest spelling still counts.
        assert_eq!(
            over("q=1&%5F%48%74%74%70%4D%65%74%68%6F%64=DELETE")
                .unwrap()
                .as_deref(),
            Some("DELETE")
        );
        assert_eq!(
            over("_HttpMethod=%44ELETE").unwrap().as_deref(),
            Some("DELETE")
        );
        assert_eq!(
            over("a=1;_HttpMethod=DELETE").unwrap().as_deref(),
            Some("DELETE")
        );
        assert_eq!(
            over("_HttpMethod=PATCH&_HttpMethod=PATCH")
                .unwrap()
                .as_deref(),
            Some("PATCH")
        );
        assert_eq!(over("q=SELECT+Id+FROM+Account").unwrap(), None);
        assert_eq!(over("HttpMethod=DELETE").unwrap(), None);
        for bad in [
            "_HttpMethod=PATCH&_HttpMethod=DELETE",
            "_HttpMethod=delete",
            "_HttpMethod=",
            "_HttpMethod",
        ] {
            assert_eq!(
                over(bad).unwrap_err().code,
                "invalid_method_override",
                "{bad}"
            );
        }
        // Without a parameter in the profile, the query means nothing special.
        assert_eq!(
            method_override(Some("_HttpMethod=DELETE"), None).unwrap(),
            None
        );
        assert_eq!(method_override(None, Some("_HttpMethod")).unwrap(), None);
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
