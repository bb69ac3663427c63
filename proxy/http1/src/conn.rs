//! HTTP/1.1 to providers, driven by the request itself.
//!
//! A provider connection is written and read by the task that serves the caller: the request
//! head and body go out from the pipeline's own future, and the response body is read by the
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
//!   `Connection: close`, with nothing unread behind it. Anything else closes it.

use crate::body::{BoxError, ProxyBody};
use crate::headers::InvalidContentLength;
use bytes::{Buf, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The transport under a provider connection: TCP, or TLS over TCP.
pub type Io = hyper_util::rt::TokioIo<
    hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>,
>;

/// The most header fields a response head may carry.
pub const MAX_HEADERS: usize = 100;

/// A request body piece this small is copied into one write with its framing (and, for the
/// first piece, the head); a larger one is written on its own.
const COALESCE_BYTES: usize = 16 * 1024;

/// Longest chunk-size line (size, extensions, CRLF) accepted.
const MAX_CHUNK_LINE: usize = 1024;

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

/// One HTTP/1.1 connection to a provider. The transport is boxed: a TLS stream is over a
/// kilobyte, and a connection moves several times per request (pool, request, response body,
/// pool).
pub struct Conn<S = Io> {
    io: Box<S>,
    read: BytesMut,
    write: Vec<u8>,
    max_head: usize,
}

impl<S> std::fmt::Debug for Conn<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("buffered", &self.read.len())
            .finish_non_exhaustive()
    }
}

enum Framing {
    Length(u64),
    Chunked,
    None,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Conn<S> {
    pub fn new(io: S, max_head: usize) -> Self {
        Conn {
            io: Box::new(io),
            read: BytesMut::new(),
            write: Vec::new(),
            max_head,
        }
    }

    /// Whether an idle connection can carry another request: the provider has neither closed
    /// it nor sent anything unasked. Never waits.
    pub fn is_open(&mut self) -> bool {
        if !self.read.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0u8; 1];
        let mut buf = ReadBuf::new(&mut probe);
        matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut buf),
            Poll::Pending
        )
    }

    /// Sends one request and reads the response head. `target` is the origin-form path and
    /// query; `headers` must include `Host`. The response body owns the connection and hands
    /// it to `recycle` once read to the end, if it can be reused.
    ///
    /// Once a response head has arrived, `headers` is left empty: its storage now holds the
    /// response's headers. (The caller's server reuses a response's map for the next request
    /// on that connection, so one map serves every request and response of a connection
    /// instead of two being allocated and grown each time.) An error with nothing received
    /// (the only kind a request is sent again after) leaves `headers` as given.
    pub async fn send<R: Recycle<S>>(
        mut self,
        method: &Method,
        target: &str,
        headers: &mut HeaderMap,
        body: ProxyBody,
        recycle: R,
    ) -> Result<Response<ResponseBody<S, R>>, Failed> {
        let written = self.write_request(method, target, headers, body).await;
        if let Err(error) = written {
            // A provider may answer early (say, refusing an upload) and close; its answer
            // beats a write error. Only what has already arrived is looked at.
            return match self.early_response(method, headers) {
                Some(head) => Ok(head.into_response(self, recycle, false)),
                None => Err(Failed {
                    error,
                    nothing_received: self.read.is_empty(),
                }),
            };
        }
        match self.read_head(method, headers).await {
            Ok(head) => Ok(head.into_response(self, recycle, true)),
            Err((error, nothing_received)) => Err(Failed {
                error,
                nothing_received,
            }),
        }
    }

    async fn write_request(
        &mut self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        mut body: ProxyBody,
    ) -> Result<(), Error> {
        let framing = match crate::headers::content_length(headers) {
            Ok(Some(n)) => Framing::Length(n),
            Err(_) => return Err(Error::RequestBodyLength),
            Ok(None) if body.is_end_stream() => Framing::None,
            Ok(None) => Framing::Chunked,
        };
        let mut out = std::mem::take(&mut self.write);
        out.clear();
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in headers {
            if name == header::TRANSFER_ENCODING {
                continue;
            }
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let Framing::Chunked = framing {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
        out.extend_from_slice(b"\r\n");
        let result = self.write_body(&mut out, framing, &mut body).await;
        // An idle connection keeps a head-sized buffer, not the largest body it coalesced.
        if out.capacity() <= 4 * 1024 {
            self.write = out;
        }
        result
    }

    /// Writes the head already in `out`, then the body, framed.
    async fn write_body(
        &mut self,
        out: &mut Vec<u8>,
        framing: Framing,
        body: &mut ProxyBody,
    ) -> Result<(), Error> {
        let mut remaining = match framing {
            Framing::None => {
                self.io.write_all(out).await?;
                return Ok(self.io.flush().await?);
            }
            Framing::Length(n) => Some(n),
            Framing::Chunked => None,
        };
        let mut head_pending = true;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(Error::RequestBody)?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers are not forwarded
            };
            if data.is_empty() {
                continue;
            }
            if let Some(left) = remaining.as_mut() {
                *left = left
                    .checked_sub(data.len() as u64)
                    .ok_or(Error::RequestBodyLength)?;
            }
            // The framing (and, first time round, the head) is in `out`; a small piece joins
            // it in one write, a large one follows it.
            if !head_pending {
                out.clear();
            }
            head_pending = false;
            let chunked = remaining.is_none();
            chunk_start(out, chunked, data.len());
            if data.len() <= COALESCE_BYTES {
                out.extend_from_slice(&data);
                chunk_end(out, chunked);
                self.io.write_all(out).await?;
            } else {
                self.io.write_all(out).await?;
                self.io.write_all(&data).await?;
                out.clear();
                chunk_end(out, chunked);
                self.io.write_all(out).await?;
            }
        }
        let last: &[u8] = match remaining {
            Some(0) => b"",
            Some(_) => return Err(Error::RequestBodyLength),
            None => b"0\r\n\r\n",
        };
        if head_pending {
            // No data at all: the head (and the last chunk) are all there is.
            out.extend_from_slice(last);
            self.io.write_all(out).await?;
        } else if !last.is_empty() {
            self.io.write_all(last).await?;
        }
        Ok(self.io.flush().await?)
    }

    /// A whole response head already received, without waiting for more.
    fn early_response(&mut self, method: &Method, storage: &mut HeaderMap) -> Option<Head> {
        let mut cx = Context::from_waker(Waker::noop());
        // Whatever the kernel already holds; errors and would-block end the look.
        while let Poll::Ready(Ok(n)) = self.poll_fill(&mut cx) {
            if n == 0 {
                break;
            }
        }
        match self.parse_head(method, storage) {
            Ok(Some(head)) => Some(head),
            _ => None,
        }
    }

    async fn read_head(
        &mut self,
        method: &Method,
        storage: &mut HeaderMap,
    ) -> Result<Head, (Error, bool)> {
        let mut received = false;
        loop {
            if !self.read.is_empty() {
                received = true;
                match self.parse_head(method, storage) {
                    Ok(Some(head)) => return Ok(head),
                    Ok(None) => {}
                    Err(e) => return Err((e, false)),
                }
            }
            let n = std::future::poll_fn(|cx| self.poll_fill(cx))
                .await
                .map_err(|e| (Error::Io(e), !received))?;
            if n == 0 {
                let error = if received {
                    Error::Malformed("the connection closed in the middle of the head")
                } else {
                    Error::Closed
                };
                return Err((error, !received));
            }
        }
    }

    /// Parses a complete final response head off the front of the read buffer (skipping
    /// interim responses); `None` while it is incomplete. The head's headers go into
    /// `storage`'s map (cleared first), which is taken only when a head is returned.
    fn parse_head(
        &mut self,
        method: &Method,
        storage: &mut HeaderMap,
    ) -> Result<Option<Head>, Error> {
        loop {
            // Uninitialised slots: filling 100 empty fields first would cost more than the parse.
            let mut fields = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut []);
            let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut response,
                &self.read,
                &mut fields,
            );
            let len = match parsed {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if self.read.len() >= self.max_head => {
                    return Err(Error::HeadTooLarge)
                }
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(httparse::Error::TooManyHeaders) => return Err(Error::HeadTooLarge),
                Err(_) => return Err(Error::Malformed("unparseable response head")),
            };
            if len > self.max_head {
                return Err(Error::HeadTooLarge);
            }
            let code = response.code.ok_or(Error::Malformed("no status code"))?;
            let status =
                StatusCode::from_u16(code).map_err(|_| Error::Malformed("invalid status code"))?;
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(Error::Malformed("unexpected protocol switch"));
            }
            if status.is_informational() {
                self.read.advance(len);
                continue;
            }
            let version = match response.version {
                Some(1) => Version::HTTP_11,
                _ => Version::HTTP_10,
            };
            // Names are made now; values are kept as offsets and shared out of the head's bytes.
            let base = self.read.as_ptr() as usize;
            let mut names = Vec::with_capacity(response.headers.len());
            for field in response.headers.iter() {
                let name = HeaderName::from_bytes(field.name.as_bytes())
                    .map_err(|_| Error::Malformed("invalid header name"))?;
                let start = field.value.as_ptr() as usize - base;
                names.push((name, start, start + field.value.len()));
            }
            let bytes = self.read.split_to(len).freeze();
            // The request's map, emptied, holds the response's headers (see `send`).
            let mut headers = std::mem::take(storage);
            headers.clear();
            headers.reserve(names.len());
            for (name, start, end) in names {
                let value = HeaderValue::from_maybe_shared(bytes.slice(start..end))
                    .map_err(|_| Error::Malformed("invalid header value"))?;
                headers.append(name, value);
            }
            return Head::frame(status, version, headers, method).map(Some);
        }
    }

    /// Reads more from the provider into the read buffer: the byte count, 0 at end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.read.capacity() - self.read.len() < 1024 {
            self.read.reserve(8 * 1024);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read)
    }
}

fn chunk_start(out: &mut Vec<u8>, chunked: bool, len: usize) {
    if chunked {
        use std::io::Write as _;
        let _ = write!(out, "{len:x}\r\n");
    }
}

fn chunk_end(out: &mut Vec<u8>, chunked: bool) {
    if chunked {
        out.extend_from_slice(b"\r\n");
    }
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

struct Head {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    decode: Decode,
    keep_alive: bool,
}

impl Head {
    /// Works out how the body is delimited and whether the connection survives it.
    fn frame(
        status: StatusCode,
        version: Version,
        mut headers: HeaderMap,
        method: &Method,
    ) -> Result<Head, Error> {
        let mut keep_alive =
            version == Version::HTTP_11 && !lists(&headers, &header::CONNECTION, "close");
        let bodiless = method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let decode = if bodiless {
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
            let length = crate::headers::content_length(&headers).map_err(|e| match e {
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
            decode,
            keep_alive,
        })
    }

    fn into_response<S, R>(
        self,
        conn: Conn<S>,
        recycle: R,
        request_complete: bool,
    ) -> Response<ResponseBody<S, R>>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
        R: Recycle<S>,
    {
        let mut body = ResponseBody {
            conn: Some(conn),
            decode: self.decode,
            keep_alive: self.keep_alive && request_complete,
            recycle: Some(recycle),
            trailer_bytes: 0,
        };
        if let Decode::Length(0) = body.decode {
            body.finish();
        }
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.version_mut() = self.version;
        *response.headers_mut() = self.headers;
        response
    }
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

/// A provider's response body, read off the connection as the caller takes it.
pub struct ResponseBody<S, R> {
    conn: Option<Conn<S>>,
    decode: Decode,
    keep_alive: bool,
    recycle: Option<R>,
    trailer_bytes: usize,
}

impl<S, R> std::fmt::Debug for ResponseBody<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("decode", &self.decode)
            .field("keep_alive", &self.keep_alive)
            .finish_non_exhaustive()
    }
}

impl<S, R> ResponseBody<S, R>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    R: Recycle<S>,
{
    /// The body is complete: the connection goes back if it can be reused (nothing unread
    /// behind the response), and is closed otherwise.
    fn finish(&mut self) {
        self.decode = Decode::Done;
        let conn = self.conn.take();
        let recycle = self.recycle.take();
        if let (Some(conn), Some(recycle)) = (conn, recycle) {
            if self.keep_alive && conn.read.is_empty() {
                recycle.recycle(conn);
            }
        }
    }

    fn fail(&mut self, error: Error) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.decode = Decode::Done;
        self.conn = None;
        self.recycle = None;
        Poll::Ready(Some(Err(Box::new(error))))
    }

    /// Takes up to `limit` buffered bytes as a data frame.
    fn take(conn: &mut Conn<S>, limit: u64) -> Bytes {
        let n = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .min(conn.read.len());
        conn.read.split_to(n).freeze()
    }
}

impl<S, R> Body for ResponseBody<S, R>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    R: Recycle<S> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            // Decode what is buffered; fall through to read more only when nothing can be.
            match this.decode {
                Decode::Done => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Decode::Length(0) => {
                    this.finish();
                    continue;
                }
                Decode::Length(left) if !conn.read.is_empty() => {
                    let data = Self::take(conn, left);
                    let left = left - data.len() as u64;
                    this.decode = Decode::Length(left);
                    if left == 0 {
                        // Finished with this frame, so the caller's side sees the end at once.
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Decode::Eof if !conn.read.is_empty() => {
                    let data = Self::take(conn, u64::MAX);
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Decode::Chunked(Chunk::Data(left)) if !conn.read.is_empty() => {
                    let data = Self::take(conn, left);
                    let left = left - data.len() as u64;
                    this.decode = Decode::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Decode::Chunked(Chunk::Size) if !conn.read.is_empty() => {
                    match httparse::parse_chunk_size(&conn.read) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            conn.read.advance(used);
                            this.decode = Decode::Chunked(if size == 0 {
                                Chunk::Trailers
                            } else {
                                Chunk::Data(size)
                            });
                            continue;
                        }
                        Ok(httparse::Status::Partial) if conn.read.len() > MAX_CHUNK_LINE => {
                            return this.fail(Error::Malformed("chunk size line too long"));
                        }
                        Ok(httparse::Status::Partial) => {}
                        Err(_) => return this.fail(Error::Malformed("invalid chunk size")),
                    }
                }
                Decode::Chunked(Chunk::DataEnd) if conn.read.len() >= 2 => {
                    if &conn.read[..2] != b"\r\n" {
                        return this.fail(Error::Malformed("chunk data not followed by CRLF"));
                    }
                    conn.read.advance(2);
                    this.decode = Decode::Chunked(Chunk::Size);
                    continue;
                }
                Decode::Chunked(Chunk::Trailers) if !conn.read.is_empty() => {
                    if let Some(end) = conn.read.windows(2).position(|w| w == b"\r\n") {
                        // Trailer fields are read past, not forwarded.
                        conn.read.advance(end + 2);
                        this.trailer_bytes += end + 2;
                        if end == 0 {
                            this.finish();
                            return Poll::Ready(None);
                        }
                        if this.trailer_bytes > conn.max_head {
                            return this.fail(Error::HeadTooLarge);
                        }
                        continue;
                    }
                    if conn.read.len() + this.trailer_bytes > conn.max_head {
                        return this.fail(Error::HeadTooLarge);
                    }
                }
                _ => {}
            }
            match conn.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return this.fail(Error::Io(e)),
                Poll::Ready(Ok(0)) if this.decode == Decode::Eof => {
                    // The provider closed: that is the end of this body, and of the connection.
                    this.keep_alive = false;
                    this.finish();
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(0)) => return this.fail(Error::Incomplete),
                Poll::Ready(Ok(_)) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decode == Decode::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.decode {
            Decode::Length(n) => SizeHint::with_exact(n),
            Decode::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests;
