//! Request ids and W3C trace context: the id every request carries (the caller's
//! `x-request-id`, kept, or a new one) into the provider request, the response, the error body
//! and every log line; and the `traceparent` that continues the caller's trace (or starts one).

use http::{HeaderMap, HeaderName, HeaderValue};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// A request's id, kept as the header value it travels as: each use (provider request,
/// response, error body, log line) shares it instead of copying text.
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Visible ASCII by construction (checked, or generated).
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }

    pub fn header(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller's `x-request-id` if it is sane (1 to 128 visible ASCII characters), else a new
/// v4 UUID.
pub fn request_id(headers: &HeaderMap) -> RequestId {
    if let Some(v) = headers.get(X_REQUEST_ID) {
        let bytes = v.as_bytes();
        if !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(u8::is_ascii_graphic) {
            return RequestId(v.clone());
        }
    }
    // A v4 id from the thread's CSPRNG: `Uuid::new_v4` would ask the kernel for randomness on
    // every request.
    let mut text = uuid::Uuid::encode_buffer();
    let id = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut text)
        .as_bytes();
    RequestId(
        HeaderValue::from_bytes(id)
            .unwrap_or_else(|_| HeaderValue::from_static("00000000-0000-4000-8000-000000000000")),
    )
}

/// A W3C trace context for the outbound request: the caller's trace continues with a new
/// parent id (Gatehouse's hop); without a valid caller context a new trace starts.
pub fn traceparent(headers: &HeaderMap) -> HeaderValue {
    let incoming = headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent);
    // version "00" - 32 hex trace id - 16 hex parent id - 2 hex flags
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-01";
    match incoming {
        Some((trace_id, flags)) => {
            out[3..35].copy_from_slice(trace_id.as_bytes());
            out[53..55].copy_from_slice(flags.as_bytes());
        }
        None => hex_into(&mut out[3..35], &(rand::random::<u128>() | 1).to_be_bytes()),
    }
    hex_into(&mut out[36..52], &(rand::random::<u64>() | 1).to_be_bytes());
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| {
        HeaderValue::from_static("00-00000000000000000000000000000001-0000000000000001-00")
    })
}

/// Lower-case hex of `bytes` into `out` (twice as long).
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[(b >> 4) as usize];
        pair[1] = HEX[(b & 0xf) as usize];
    }
}

/// (trace-id, flags) of a valid version-00 traceparent.
fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.trim().split('-');
    let (version, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let ok = version == "00"
        && parts.next().is_none()
        && hex(trace_id, 32)
        && hex(parent_id, 16)
        && hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && parent_id.bytes().any(|b| b != b'0');
    ok.then_some((trace_id, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_kept_or_made() {
        let mut h = HeaderMap::new();
        let fresh = request_id(&h);
        let parsed = uuid::Uuid::parse_str(fresh.as_str()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(fresh.as_str(), parsed.hyphenated().to_string());
        assert_eq!(fresh.header(), fresh.as_str());
        assert_ne!(request_id(&h).as_str(), fresh.as_str());
        h.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h).as_str(), "abc-123");
        h.insert(X_REQUEST_ID, HeaderValue::from_static("has space"));
        assert_ne!(request_id(&h).as_str(), "has space");
        h.insert(X_REQUEST_ID, HeaderValue::from_static(""));
        assert_eq!(request_id(&h).as_str().len(), 36);
        h.insert(X_REQUEST_ID, HeaderValue::from_bytes(&[b'a'; 129]).unwrap());
        assert_eq!(request_id(&h).as_str().len(), 36);
    }

    #[test]
    fn traceparent_continues_the_callers_trace() {
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let out = traceparent(&h);
        let out = out.to_str().unwrap();
        assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(out.ends_with("-01"));
        assert!(!out.contains("00f067aa0ba902b7"));
        // Sampling flags are the caller's.
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        );
        assert!(traceparent(&h).to_str().unwrap().ends_with("-00"));
        h.insert(TRACEPARENT, HeaderValue::from_static("garbage"));
        let fresh = traceparent(&h);
        let (trace_id, flags) = parse_traceparent(fresh.to_str().unwrap()).unwrap();
        assert_eq!(flags, "01");
        let other = traceparent(&h);
        assert_ne!(
            parse_traceparent(other.to_str().unwrap()).unwrap().0,
            trace_id
        );
    }
}
