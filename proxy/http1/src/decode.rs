//! The response decoders: a response head off the front of the bytes received, then its body,
//! one step at a time. No I/O here: [`crate::Conn`] reads the transport and hands these the
//! buffer, so what they accept depends only on the bytes, never on how the bytes were split
//! into reads (the property tests and the fuzz target check exactly that).

use crate::length::{content_length, digits};
use crate::{Error, InvalidContentLength};
use bytes::{Buf, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use std::time::Duration;

/// The most header fields a response head may carry.
pub const MAX_HEADERS: usize = 100;

/// Longest chunk-size line (size, extensions, CRLF) accepted.
pub(crate) const MAX_CHUNK_LINE: usize = 1024;

/// A final response head, and how its body is delimited.
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) body: BodyDecoder,
    /// Whether the connection may carry another request once the body is read.
    pub(crate) keep_alive: bool,
    /// The provider's `Keep-Alive: timeout=N`, if it gave one.
    pub(crate) idle_timeout: Option<Duration>,
}

/// Parses a complete final response head off the front of `read` (skipping interim
/// responses); `None` while it is incomplete. The head's headers go into `storage`'s map
/// (cleared first), which is taken only when a head is returned.
pub(crate) fn parse_head(
    read: &mut BytesMut,
    max_head: usize,
    method: &Method,
    storage: &mut HeaderMap,
) -> Result<Option<Head>, Error> {
    loop {
        // Uninitialised slots: filling 100 empty fields first would cost more than the parse.
        let mut fields = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        // Only the first `max_head` bytes are looked at: a head that has not ended by then is
        // too large, whatever follows (else the error would depend on how much had arrived).
        let window = &read[..read.len().min(max_head)];
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            window,
            &mut fields,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if window.len() >= max_head => {
                return Err(Error::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(Error::HeadTooLarge),
            Err(_) => return Err(Error::Malformed("unparseable response head")),
        };
        let code = response.code.ok_or(Error::Malformed("no status code"))?;
        let status =
            StatusCode::from_u16(code).map_err(|_| Error::Malformed("invalid status code"))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::Malformed("unexpected protocol switch"));
        }
        if status.is_informational() {
            read.advance(len);
            continue;
        }
        let version = match response.version {
            Some(1) => Version::HTTP_11,
            _ => Version::HTTP_10,
        };
        // Names are made now; values are kept as offsets and shared out of the head's bytes.
        let base = read.as_ptr() as usize;
        let mut names = Vec::with_capacity(response.headers.len());
        let mut idle_timeout = None;
        for field in response.headers.iter() {
            // Read here, from the raw field, because the caller strips this hop-by-hop header
            // before anyone else would look (and a length check is cheaper than a lookup).
            if field.name.len() == KEEP_ALIVE.len() && field.name.eq_ignore_ascii_case(KEEP_ALIVE) {
                idle_timeout = idle_timeout.or_else(|| keep_alive_timeout(field.value));
            }
            let name = HeaderName::from_bytes(field.name.as_bytes())
                .map_err(|_| Error::Malformed("invalid header name"))?;
            let start = field.value.as_ptr() as usize - base;
            names.push((name, start, start + field.value.len()));
        }
        let bytes = read.split_to(len).freeze();
        // The request's map, emptied, holds the response's headers (see `Conn::send`).
        let mut headers = std::mem::take(storage);
        headers.clear();
        headers.reserve(names.len());
        for (name, start, end) in names {
            let value = HeaderValue::from_maybe_shared(bytes.slice(start..end))
                .map_err(|_| Error::Malformed("invalid header value"))?;
            headers.append(name, value);
        }
        let mut head = Head::frame(status, version, headers, method, max_head)?;
        head.idle_timeout = idle_timeout;
        return Ok(Some(head));
    }
}

const KEEP_ALIVE: &str = "keep-alive";

/// The `timeout` parameter of a `Keep-Alive` header value (`timeout=5, max=100`): how long, in
/// whole seconds, the provider keeps an idle connection open. `None` if it names none, or
/// gives one that is not a number (a value we cannot read is no promise).
pub fn keep_alive_timeout(value: &[u8]) -> Option<Duration> {
    value.split(|b| *b == b',').find_map(|param| {
        let (name, seconds) = split_once(param, b'=')?;
        if !name.trim_ascii().eq_ignore_ascii_case(b"timeout") {
            return None;
        }
        let seconds = seconds.trim_ascii();
        let seconds = seconds
            .strip_prefix(b"\"")
            .and_then(|s| s.strip_suffix(b"\""))
            .unwrap_or(seconds);
        digits(seconds).map(Duration::from_secs)
    })
}

fn split_once(bytes: &[u8], at: u8) -> Option<(&[u8], &[u8])> {
    let i = bytes.iter().position(|b| *b == at)?;
    Some((&bytes[..i], &bytes[i + 1..]))
}

/// Whether a comma-separated header (all its lines) lists `token`, case-insensitively.
fn lists(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

impl Head {
    /// Works out how the body is delimited and whether the connection survives it.
    fn frame(
        status: StatusCode,
        version: Version,
        mut headers: HeaderMap,
        method: &Method,
        max_trailers: usize,
    ) -> Result<Head, Error> {
        let mut keep_alive =
            version == Version::HTTP_11 && !lists(&headers, &header::CONNECTION, "close");
        let bodiless = method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let state = if bodiless {
            Decode::Length(0)
        } else if headers.contains_key(header::TRANSFER_ENCODING) {
            // A length beside a transfer coding is ignored, and must not reach the caller.
            if headers.remove(header::CONTENT_LENGTH).is_some() {
                keep_alive = false;
            }
            let last = headers
                .get_all(header::TRANSFER_ENCODING)
                .iter()
                .next_back()
                .and_then(|v| v.as_bytes().rsplit(|b| *b == b',').next())
                .map(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            if last == Some(true) {
                Decode::Chunked(Chunk::Size)
            } else {
                keep_alive = false;
                Decode::Eof
            }
        } else {
            let length = content_length(&headers).map_err(|e| match e {
                InvalidContentLength::NotANumber => Error::Malformed("invalid Content-Length"),
                InvalidContentLength::Conflicting => {
                    Error::Malformed("conflicting Content-Length values")
                }
            })?;
            match length {
                Some(n) => Decode::Length(n),
                None => {
                    keep_alive = false;
                    Decode::Eof
                }
            }
        };
        Ok(Head {
            status,
            version,
            headers,
            body: BodyDecoder {
                state,
                trailer_bytes: 0,
                max_trailers,
            },
            keep_alive,
            idle_timeout: None,
        })
    }
}

/// What one step of body decoding produced.
#[derive(Debug)]
pub(crate) enum Step {
    /// Body bytes, in the order they arrived.
    Data(Bytes),
    /// The body is complete.
    End,
    /// Nothing can be decoded until more bytes arrive.
    More,
}

/// Where a response body's decoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyDecoder {
    state: Decode,
    /// Bytes of trailer fields read past so far.
    trailer_bytes: usize,
    /// Trailer fields may take no more than a head may.
    max_trailers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decode {
    /// Bytes still to come.
    Length(u64),
    Chunked(Chunk),
    /// Until the provider closes the connection.
    Eof,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// Trailer lines, up to the empty line.
    Trailers,
}

impl BodyDecoder {
    /// Decodes what it can off the front of `read`: some body bytes, the end, or a request
    /// for more. After an error the body is broken and must not be stepped again.
    pub(crate) fn step(&mut self, read: &mut BytesMut) -> Result<Step, Error> {
        loop {
            match self.state {
                Decode::Done => return Ok(Step::End),
                Decode::Length(0) => {
                    self.state = Decode::Done;
                    return Ok(Step::End);
                }
                Decode::Length(left) if !read.is_empty() => {
                    let data = take(read, left);
                    let left = left - data.len() as u64;
                    // Done with the last byte, so the caller can see the end with this frame.
                    self.state = if left == 0 {
                        Decode::Done
                    } else {
                        Decode::Length(left)
                    };
                    return Ok(Step::Data(data));
                }
                Decode::Eof if !read.is_empty() => {
                    return Ok(Step::Data(take(read, u64::MAX)));
                }
                Decode::Chunked(Chunk::Data(left)) if !read.is_empty() => {
                    let data = take(read, left);
                    let left = left - data.len() as u64;
                    self.state = Decode::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(Step::Data(data));
                }
                Decode::Chunked(Chunk::Size) if !read.is_empty() => {
                    // Only a line's worth is looked at, so that a line over the limit is too
                    // long whatever it holds and however it arrived.
                    let window = &read[..read.len().min(MAX_CHUNK_LINE)];
                    match httparse::parse_chunk_size(window) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            read.advance(used);
                            self.state = Decode::Chunked(if size == 0 {
                                Chunk::Trailers
                            } else {
                                Chunk::Data(size)
                            });
                        }
                        Ok(httparse::Status::Partial) if window.len() >= MAX_CHUNK_LINE => {
                            return Err(Error::Malformed("chunk size line too long"));
                        }
                        Ok(httparse::Status::Partial) => return Ok(Step::More),
                        Err(_) => return Err(Error::Malformed("invalid chunk size")),
                    }
                }
                Decode::Chunked(Chunk::DataEnd) if read.len() >= 2 => {
                    if &read[..2] != b"\r\n" {
                        return Err(Error::Malformed("chunk data not followed by CRLF"));
                    }
                    read.advance(2);
                    self.state = Decode::Chunked(Chunk::Size);
                }
                Decode::Chunked(Chunk::Trailers) if !read.is_empty() => {
                    // A line's size is judged before what it holds, and a partial line by the
                    // least it can come to, so the verdict does not depend on the reads.
                    let Some(end) = read.windows(2).position(|w| w == b"\r\n") else {
                        let blank_line_starting = &read[..] == b"\r";
                        if !blank_line_starting
                            && self.trailer_bytes + read.len() + 1 > self.max_trailers
                        {
                            return Err(Error::HeadTooLarge);
                        }
                        return Ok(Step::More);
                    };
                    if end == 0 {
                        read.advance(2);
                        self.state = Decode::Done;
                        return Ok(Step::End);
                    }
                    self.trailer_bytes += end + 2;
                    if self.trailer_bytes > self.max_trailers {
                        return Err(Error::HeadTooLarge);
                    }
                    // Trailer fields are read past, not forwarded; but a line that is no
                    // field means the framing is not what it seems, so it is not read past.
                    if !is_field_line(&read[..end]) {
                        return Err(Error::Malformed("invalid trailer field"));
                    }
                    read.advance(end + 2);
                }
                _ => return Ok(Step::More),
            }
        }
    }

    /// The provider closed the connection with `read` decoded as far as it goes: the end of a
    /// body delimited by the close, and a body cut short otherwise.
    pub(crate) fn closed(&mut self) -> Result<(), Error> {
        match self.state {
            Decode::Eof | Decode::Done => {
                self.state = Decode::Done;
                Ok(())
            }
            _ => Err(Error::Incomplete),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == Decode::Done
    }

    /// Body bytes still to come, when the framing says.
    pub(crate) fn exact_remaining(&self) -> Option<u64> {
        match self.state {
            Decode::Length(n) => Some(n),
            Decode::Done => Some(0),
            _ => None,
        }
    }
}

/// Whether `line` is a header field (RFC 9110 §5.1): a token name, a colon, and a value of
/// visible characters, spaces, tabs and obs-text (no control bytes).
fn is_field_line(line: &[u8]) -> bool {
    let Some((name, value)) = split_once(line, b':') else {
        return false;
    };
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    !name.is_empty()
        && name.iter().all(tchar)
        && value
            .iter()
            .all(|b| *b == b'\t' || *b == b' ' || (*b >= 0x21 && *b != 0x7f))
}

/// Takes up to `limit` buffered bytes.
fn take(read: &mut BytesMut, limit: u64) -> Bytes {
    let n = usize::try_from(limit).unwrap_or(usize::MAX).min(read.len());
    read.split_to(n).freeze()
}

#[cfg(test)]
mod tests;
