//! HTTP/1.1 to providers, driven by the request itself.
//!
//! A provider connection is written and read by the task that serves the caller: the request
//! head and body go out from the caller's own future, and the response body is read by the
//! caller's connection as it writes the response. There is no connection task, no channel and
//! no hand-over between tasks, which is most of what a general-purpose client spends per
//! request. HTTP/2 (when a provider's ALPN picks it) stays with hyper, whose multiplexing
//! needs a connection task anyway.
//!
//! What it does, by RFC 9112:
//! - Requests are framed by the headers it is given: `Content-Length` if present (the body
//!   must match it exactly), no body if the body is empty, otherwise chunked. Trailers of a
//!   caller's body are not forwarded.
//! - Response heads are parsed by `httparse`, at most `max_head` bytes and [`MAX_HEADERS`]
//!   fields. Interim (1xx) responses are skipped; a protocol switch (101) is refused.
//! - Response bodies (§6.3): none for `HEAD`, 1xx, 204 and 304; chunked when it is the final
//!   transfer coding (the length is then ignored and dropped); a `Content-Length` otherwise,
//!   whose values must all agree; else until the provider closes.
//! - A connection is reused only after a complete, well-framed HTTP/1.1 response with no
//!   `Connection: close`, with nothing unread behind it. Anything else closes it. A provider's
//!   `Keep-Alive: timeout=N` is kept with the connection ([`Conn::provider_idle_timeout`]) so
//!   a pool can stop offering it before the provider closes it.
//!
//! The decoders (`decode`) work on bytes already received and never do I/O, so they can be
//! fuzzed and property-tested on their own; [`Conn`] feeds them from the transport.
//!
//! The crate knows HTTP/1.1 and nothing about policy, providers or the transport: the caller
//! brings a connected stream (TCP, TLS) and the pool.

mod conn;
mod decode;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod length;

pub use conn::{Conn, ResponseBody};
pub use decode::{keep_alive_timeout, MAX_HEADERS};
pub use length::{content_length, InvalidContentLength};

use bytes::Bytes;
use std::io;

/// The error a body (the caller's, or a response's) fails with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body to send: any body of bytes, boxed.
pub type RequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// What went wrong on an HTTP/1.1 exchange.
#[derive(Debug)]
pub enum Error {
    /// Reading or writing the connection failed.
    Io(io::Error),
    /// The provider closed the connection before a whole response head arrived.
    Closed,
    /// The provider's response cannot be parsed or framed.
    Malformed(&'static str),
    /// The response head is larger than the limit, or has too many fields.
    HeadTooLarge,
    /// The caller's request body failed (cut short, or over its limit).
    RequestBody(BoxError),
    /// The request body did not match its `Content-Length`.
    RequestBodyLength,
    /// The provider closed the connection before the response body was complete.
    Incomplete,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "connection error: {e}"),
            Error::Closed => f.write_str("the provider closed the connection before responding"),
            Error::Malformed(what) => write!(f, "malformed response: {what}"),
            Error::HeadTooLarge => f.write_str("the response head is too large"),
            Error::RequestBody(e) => write!(f, "the request body failed: {e}"),
            Error::RequestBodyLength => {
                f.write_str("the request body does not match its Content-Length")
            }
            Error::Incomplete => f.write_str("the response body ended early"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::RequestBody(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// A failed exchange, and whether it can safely be sent again on another connection.
#[derive(Debug)]
pub struct Failed {
    pub error: Error,
    /// No byte of a response arrived: the provider may have closed the connection while it
    /// was idle, before it saw this request.
    pub nothing_received: bool,
}

/// Where a connection goes when its response has been read to the end.
pub trait Recycle<S>: Send {
    fn recycle(self, conn: Conn<S>);
}
