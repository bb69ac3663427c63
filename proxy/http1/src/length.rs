//! `Content-Length` (RFC 9110 §8.6), the one parser for lengths from callers and from
//! providers: framing is this crate's business, and a proxy that read a length one way on the
//! way in and another on the way out could be made to smuggle a request.

use http::header::{self, HeaderMap};

/// A message's `Content-Length`: `None` without one. Each value is ASCII digits only (no sign,
/// no spaces inside); several values, on one line or several, must all agree (`5, 5` is 5).
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, InvalidContentLength> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|b| *b == b',') {
            let n = digits(part.trim_ascii()).ok_or(InvalidContentLength::NotANumber)?;
            if length.is_some_and(|l| l != n) {
                return Err(InvalidContentLength::Conflicting);
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// Why a `Content-Length` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidContentLength {
    NotANumber,
    Conflicting,
}

impl std::fmt::Display for InvalidContentLength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InvalidContentLength::NotANumber => "Content-Length is not a number",
            InvalidContentLength::Conflicting => "Content-Length values disagree",
        })
    }
}

impl std::error::Error for InvalidContentLength {}

/// ASCII digits as a number; `None` for anything else, or past `u64`.
pub(crate) fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn content_length_is_digits_and_all_values_agree() {
        let length = |values: &[&'static str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(header::CONTENT_LENGTH, HeaderValue::from_static(v));
            }
            content_length(&h)
        };
        assert_eq!(length(&[]), Ok(None));
        assert_eq!(length(&["0"]), Ok(Some(0)));
        assert_eq!(length(&["42"]), Ok(Some(42)));
        assert_eq!(length(&["5, 5"]), Ok(Some(5)));
        assert_eq!(length(&["5", "5"]), Ok(Some(5)));
        assert_eq!(length(&["18446744073709551615"]), Ok(Some(u64::MAX)));
        for bad in [
            "",
            "+5",
            "-1",
            "5 5",
            "0x10",
            "1e3",
            "18446744073709551616",
            "5,",
        ] {
            assert_eq!(
                length(&[bad]),
                Err(InvalidContentLength::NotANumber),
                "{bad:?}"
            );
        }
        assert_eq!(length(&["5, 6"]), Err(InvalidContentLength::Conflicting));
        assert_eq!(length(&["5", "6"]), Err(InvalidContentLength::Conflicting));
    }
}
