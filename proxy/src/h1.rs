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

/// A request body's first piece goes out in the same write as the head when it is this small.
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
    pub async fn send<R: Recycle<S>>(
        mut self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: ProxyBody,
        recycle: R,
    ) -> Result<Response<ResponseBody<S, R>>, Failed> {
        let written = self.write_request(method, target, headers, body).await;
        if let Err(error) = written {
            // A provider may answer early (say, refusing an upload) and close; its answer
            // beats a write error. Only what has already arrived is looked at.
            return match self.early_response(method) {
                Some(head) => Ok(head.into_response(self, recycle, false)),
                None => Err(Failed {
                    error,
                    nothing_received: self.read.is_empty(),
                }),
            };
        }
        match self.read_head(method).await {
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
        let framing = match headers.get(header::CONTENT_LENGTH) {
            Some(value) => {
                Framing::Length(parse_length(value.as_bytes()).ok_or(Error::RequestBodyLength)?)
            }
            None if body.is_end_stream() => Framing::None,
            None => Framing::Chunked,
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
            if head_pending && data.len() <= COALESCE_BYTES {
                chunk_start(out, remaining.is_none(), data.len());
                out.extend_from_slice(&data);
                chunk_end(out, remaining.is_none());
                self.io.write_all(out).await?;
            } else {
                if head_pending {
                    self.io.write_all(out).await?;
                }
                out.clear();
                chunk_start(out, remaining.is_none(), data.len());
                self.io.write_all(out).await?;
                self.io.write_all(&data).await?;
                out.clear();
                chunk_end(out, remaining.is_none());
                self.io.write_all(out).await?;
            }
            head_pending = false;
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
    fn early_response(&mut self, method: &Method) -> Option<Head> {
        let mut cx = Context::from_waker(Waker::noop());
        // Whatever the kernel already holds; errors and would-block end the look.
        while let Poll::Ready(Ok(n)) = self.poll_fill(&mut cx) {
            if n == 0 {
                break;
            }
        }
        match self.parse_head(method) {
            Ok(Some(head)) => Some(head),
            _ => None,
        }
    }

    async fn read_head(&mut self, method: &Method) -> Result<Head, (Error, bool)> {
        let mut received = false;
        loop {
            if !self.read.is_empty() {
                received = true;
                match self.parse_head(method) {
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
    /// interim responses); `None` while it is incomplete.
    fn parse_head(&mut self, method: &Method) -> Result<Option<Head>, Error> {
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
            let mut headers = HeaderMap::with_capacity(names.len());
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

/// A `Content-Length` value: ASCII digits only.
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
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
            let mut length = None;
            for value in headers.get_all(header::CONTENT_LENGTH) {
                for part in value.as_bytes().split(|b| *b == b',') {
                    let n = parse_length(part.trim_ascii())
                        .ok_or(Error::Malformed("invalid Content-Length"))?;
                    if length.is_some_and(|l| l != n) {
                        return Err(Error::Malformed("conflicting Content-Length values"));
                    }
                    length = Some(n);
                }
            }
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

/// Unused in production (the pool recycles); lets a body be read without a pool.
impl<S: Send> Recycle<S> for () {
    fn recycle(self, _conn: Conn<S>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, DuplexStream};

    type Pool = Arc<Mutex<Vec<Conn<DuplexStream>>>>;

    struct Back(Pool);

    impl Recycle<DuplexStream> for Back {
        fn recycle(self, conn: Conn<DuplexStream>) {
            self.0.lock().unwrap().push(conn);
        }
    }

    fn host() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("p.example"));
        headers
    }

    /// What the provider received, the response (status, headers, body or body error) or the
    /// error, and whether the connection was recycled.
    type Exchanged = (String, Result<Response3, String>, bool);
    type Response3 = (StatusCode, HeaderMap, Result<Bytes, String>);

    /// Runs one exchange against a scripted provider: returns what the provider received,
    /// the response (status, headers, body or body error) and whether the connection was
    /// recycled. The provider writes `reply` in pieces of `piece` bytes.
    async fn exchange(
        method: Method,
        headers: HeaderMap,
        body: ProxyBody,
        reply: &'static [u8],
        piece: usize,
    ) -> Exchanged {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let provider = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Read until the request looks complete (a blank line, and any body after it).
            loop {
                let n = server.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
                if n == 0 || request_done(&seen) {
                    break;
                }
            }
            for part in reply.chunks(piece) {
                // The client may give up early (a head too large): that ends the reply.
                if server.write_all(part).await.is_err() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            // Keep the stream open so EOF is not mistaken for the end of a body.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            String::from_utf8_lossy(&seen).into_owned()
        });
        let pool: Pool = Arc::default();
        let conn = Conn::new(client, 8192);
        let outcome = match conn
            .send(&method, "/a?b=c", &headers, body, Back(pool.clone()))
            .await
        {
            Ok(response) => {
                let status = response.status();
                let (parts, body) = response.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .map_err(|e| e.to_string());
                Ok((status, parts.headers, body))
            }
            Err(failed) => Err(failed.error.to_string()),
        };
        let seen = provider.await.unwrap();
        let recycled = !pool.lock().unwrap().is_empty();
        (seen, outcome, recycled)
    }

    /// [`exchange`] for a request without a body.
    async fn answer(method: Method, reply: &'static [u8], piece: usize) -> Exchanged {
        exchange(method, host(), crate::body::empty(), reply, piece).await
    }

    /// Sends a request with a body to a provider that answers 200 with no body: what the
    /// provider received, and whether the connection was recycled.
    async fn upload(method: Method, headers: HeaderMap, body: ProxyBody) -> (String, bool) {
        let ok_reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        let (seen, outcome, recycled) = exchange(method, headers, body, ok_reply, 100).await;
        ok(outcome);
        (seen, recycled)
    }

    /// A body of unknown length, in these pieces.
    fn streamed(pieces: &[&'static str]) -> ProxyBody {
        let frames = pieces
            .iter()
            .map(|s| Ok::<_, BoxError>(Frame::data(Bytes::from_static(s.as_bytes()))))
            .collect::<Vec<_>>();
        http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
    }

    fn request_done(seen: &[u8]) -> bool {
        let text = String::from_utf8_lossy(seen);
        let Some((head, rest)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let head = head.to_ascii_lowercase();
        if head.contains("transfer-encoding: chunked") {
            return rest.ends_with("0\r\n\r\n");
        }
        match head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
        {
            Some(n) => rest.len() >= n.trim().parse::<usize>().unwrap(),
            None => true,
        }
    }

    fn ok(outcome: Result<Response3, String>) -> (StatusCode, HeaderMap, Bytes) {
        let (status, headers, body) = outcome.expect("a response");
        (status, headers, body.expect("a whole body"))
    }

    #[tokio::test]
    async fn a_get_goes_out_in_origin_form_and_a_sized_body_recycles_the_connection() {
        for piece in [1, 3, 1000] {
            let (seen, outcome, recycled) = answer(
                Method::GET,
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello",
                piece,
            )
            .await;
            assert_eq!(seen, "GET /a?b=c HTTP/1.1\r\nhost: p.example\r\n\r\n");
            let (status, headers, body) = ok(outcome);
            assert_eq!(status, 200);
            assert_eq!(body, "hello", "piece {piece}");
            assert_eq!(headers.get_all("x-a").iter().count(), 2);
            assert!(recycled, "piece {piece}");
        }
    }

    #[tokio::test]
    async fn chunked_responses_are_decoded_and_trailers_read_past() {
        let reply: &[u8] =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 99\r\n\r\n\
            5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nx-trailer: t\r\n\r\n";
        for piece in [1, 2, 7, 1000] {
            let (_, outcome, recycled) = answer(Method::GET, reply, piece).await;
            let (_, headers, body) = ok(outcome);
            assert_eq!(body, "hello world", "piece {piece}");
            assert!(
                !headers.contains_key(header::CONTENT_LENGTH),
                "a length beside chunked must not reach the caller"
            );
            // A length beside a transfer coding: the connection is not trusted again.
            assert!(!recycled);
        }
        let clean: &[u8] =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let (_, outcome, recycled) = answer(Method::GET, clean, 4).await;
        assert_eq!(ok(outcome).2, "abc");
        assert!(recycled);
    }

    #[tokio::test]
    async fn interim_responses_are_skipped() {
        let (_, outcome, recycled) = answer(Method::GET, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
            5,
        )
        .await;
        let (status, headers, body) = ok(outcome);
        assert_eq!((status, body.as_ref()), (StatusCode::CREATED, &b"ok"[..]));
        assert!(!headers.contains_key("link"));
        assert!(recycled);
    }

    #[tokio::test]
    async fn bodiless_responses_and_close_delimited_bodies() {
        let (_, outcome, recycled) = answer(
            Method::HEAD,
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n",
            100,
        )
        .await;
        let (_, headers, body) = ok(outcome);
        assert!(body.is_empty());
        assert_eq!(headers[header::CONTENT_LENGTH], "10");
        assert!(recycled);
        let (_, outcome, recycled) =
            answer(Method::GET, b"HTTP/1.1 204 No Content\r\n\r\n", 100).await;
        assert!(ok(outcome).2.is_empty());
        assert!(recycled);
        // HTTP/1.0 without a length: the body runs to the close, and the connection is done.
        let (client, mut server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = server.read(&mut buf).await;
            server
                .write_all(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
                .await
                .unwrap();
        });
        let response = Conn::new(client, 8192)
            .send(&Method::GET, "/", &host(), crate::body::empty(), ())
            .await
            .unwrap();
        assert_eq!(response.version(), Version::HTTP_10);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "until the end");
    }

    #[tokio::test]
    async fn connection_close_and_bytes_behind_a_response_keep_it_from_reuse() {
        let cases: [&'static [u8]; 2] = [
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 1\r\n\r\nx",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n",
        ];
        for reply in cases {
            let (_, outcome, recycled) = answer(Method::GET, reply, 1000).await;
            assert_eq!(ok(outcome).2, "x");
            assert!(!recycled, "{reply:?}");
        }
    }

    #[tokio::test]
    async fn malformed_responses_are_typed_errors() {
        let cases: [(&'static [u8], &str); 6] = [
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\nx",
                "conflicting",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
                "invalid Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: +1\r\n\r\nx",
                "invalid Content-Length",
            ),
            (
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
                "protocol switch",
            ),
            (b"SSH-2.0-OpenSSH\r\n\r\n", "unparseable"),
            (b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", "unparseable"),
        ];
        for (reply, expected) in cases {
            let (_, outcome, _) = answer(Method::GET, reply, 1000).await;
            let error = outcome.expect_err("a malformed response");
            assert!(error.contains(expected), "{error} for {reply:?}");
        }
    }

    fn long_chunk_line() -> &'static [u8] {
        let mut reply = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;".to_vec();
        reply.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE + 10));
        reply.leak()
    }

    #[tokio::test]
    async fn broken_bodies_are_errors_and_close_the_connection() {
        let cases: [(&'static [u8], &str); 3] = [
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
                "invalid chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabX\r\n",
                "CRLF",
            ),
            (long_chunk_line(), "too long"),
        ];
        for (reply, expected) in cases {
            let (_, outcome, recycled) = answer(Method::GET, reply, 1000).await;
            let (_, _, body) = outcome.expect("a head");
            let error = body.expect_err("a broken body");
            assert!(error.contains(expected), "{error}");
            assert!(!recycled);
        }
        // A length the provider does not deliver: the close is an error, not an end.
        let (client, mut server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = server.read(&mut buf).await;
            let _ = server
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort")
                .await;
        });
        let response = Conn::new(client, 8192)
            .send(&Method::GET, "/", &host(), crate::body::empty(), ())
            .await
            .unwrap();
        let error = response.into_body().collect().await.unwrap_err();
        assert!(error.to_string().contains("ended early"), "{error}");
    }

    #[tokio::test]
    async fn oversized_heads_are_refused() {
        let mut reply = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..MAX_HEADERS + 1 {
            reply.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        reply.extend_from_slice(b"\r\n");
        let reply: &'static [u8] = reply.leak();
        let (_, outcome, _) = answer(Method::GET, reply, 1000).await;
        assert!(outcome.unwrap_err().contains("too large"));
        let mut long = b"HTTP/1.1 200 OK\r\nx-long: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 9000));
        let long: &'static [u8] = long.leak();
        let (_, outcome, _) = answer(Method::GET, long, 1000).await;
        assert!(outcome.unwrap_err().contains("too large"));
    }

    #[tokio::test]
    async fn request_bodies_are_framed_by_length_or_chunked() {
        let mut headers = host();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        let (seen, _) = upload(Method::POST, headers, crate::body::full("hello")).await;
        assert_eq!(
            seen,
            "POST /a?b=c HTTP/1.1\r\nhost: p.example\r\ncontent-length: 5\r\n\r\nhello"
        );
        // Unknown length: chunked, in the pieces the caller sent; a stray header is dropped.
        let body = streamed(&["ab", "", "cde"]);
        let mut headers = host();
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
        let (seen, _) = upload(Method::POST, headers, body).await;
        assert_eq!(
            seen,
            "POST /a?b=c HTTP/1.1\r\nhost: p.example\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_streamed_body_without_data_still_sends_its_head_and_last_chunk() {
        let body = streamed(&[""]);
        let (seen, outcome, recycled) = exchange(
            Method::POST,
            host(),
            body,
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            100,
        )
        .await;
        ok(outcome);
        assert!(recycled);
        assert_eq!(
            seen,
            "POST /a?b=c HTTP/1.1\r\nhost: p.example\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_body_that_breaks_its_length_is_an_error() {
        for (declared, sent) in [("3", "hello"), ("9", "hello")] {
            let mut headers = host();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static(declared));
            let (client, mut server) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while server.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            });
            let failed = Conn::new(client, 8192)
                .send(&Method::POST, "/", &headers, crate::body::full(sent), ())
                .await
                .unwrap_err();
            assert!(
                matches!(failed.error, Error::RequestBodyLength),
                "{declared}: {:?}",
                failed.error
            );
        }
    }

    #[tokio::test]
    async fn a_large_body_streams_after_the_head() {
        let big = Bytes::from(vec![b'z'; COALESCE_BYTES * 3]);
        let mut headers = host();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(big.len()));
        let (seen, recycled) = upload(Method::PUT, headers, crate::body::full(big.clone())).await;
        assert!(recycled);
        let (_, body) = seen.split_once("\r\n\r\n").unwrap();
        assert_eq!(body.len(), big.len());
    }

    #[tokio::test]
    async fn a_close_before_any_response_is_reported_as_nothing_received() {
        let (client, mut server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = server.read(&mut buf).await;
            drop(server);
        });
        let failed = Conn::new(client, 8192)
            .send(&Method::GET, "/", &host(), crate::body::empty(), ())
            .await
            .unwrap_err();
        assert!(matches!(failed.error, Error::Closed));
        assert!(failed.nothing_received);
        // Half a head, then a close: something was received, so it is not safe to resend.
        let (client, mut server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = server.read(&mut buf).await;
            let _ = server.write_all(b"HTTP/1.1 200 OK\r\n").await;
        });
        let failed = Conn::new(client, 8192)
            .send(&Method::GET, "/", &host(), crate::body::empty(), ())
            .await
            .unwrap_err();
        assert!(!failed.nothing_received, "{:?}", failed.error);
    }

    #[tokio::test]
    async fn idle_probe_sees_a_close_and_unasked_bytes() {
        let (client, server) = tokio::io::duplex(1024);
        let mut conn = Conn::new(client, 8192);
        assert!(conn.is_open());
        drop(server);
        assert!(!conn.is_open());
        let (client, mut server) = tokio::io::duplex(1024);
        let mut conn = Conn::new(client, 8192);
        server.write_all(b"HTTP/1.1 408 Timeout\r\n").await.unwrap();
        assert!(!conn.is_open());
    }

    /// Runs one GET against a provider that writes `reply` in `piece`-byte writes, then closes
    /// (`close`) or holds the connection open until the client is done. Returns the body (or
    /// the error) and whether the connection was recycled.
    fn decode(reply: Vec<u8>, piece: usize, close: bool) -> (Result<Bytes, String>, bool) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, mut server) = tokio::io::duplex(1 << 20);
            let (done, hold) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = server.read(&mut buf).await;
                for part in reply.chunks(piece.max(1)) {
                    if server.write_all(part).await.is_err() {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                if !close {
                    let _ = hold.await;
                }
            });
            let pool: Pool = Arc::default();
            let exchange = async {
                let response = Conn::new(client, 8192)
                    .send(
                        &Method::GET,
                        "/",
                        &host(),
                        crate::body::empty(),
                        Back(pool.clone()),
                    )
                    .await
                    .map_err(|f| f.error.to_string())?;
                let body = response.into_body().collect().await;
                body.map(|c| c.to_bytes()).map_err(|e| e.to_string())
            };
            let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), exchange)
                .await
                .expect("the exchange ends");
            drop(done);
            let recycled = !pool.lock().unwrap().is_empty();
            (outcome, recycled)
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Any body, framed by length, by chunks of any sizes, or by the close, read in pieces
        /// of any size, comes out exactly; only the close-delimited one costs the connection.
        #[test]
        fn well_framed_bodies_decode_exactly(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            chunks in proptest::collection::vec(1usize..700, 1..12),
            framing in 0u8..3,
            piece in 1usize..300,
        ) {
            let mut reply = Vec::new();
            match framing {
                0 => {
                    reply.extend_from_slice(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
                    reply.extend_from_slice(&body);
                }
                1 => {
                    reply.extend_from_slice(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
                    let mut rest = &body[..];
                    let mut sizes = chunks.iter().cycle();
                    while !rest.is_empty() {
                        let n = (*sizes.next().unwrap()).min(rest.len());
                        reply.extend_from_slice(format!("{n:X}\r\n").as_bytes());
                        reply.extend_from_slice(&rest[..n]);
                        reply.extend_from_slice(b"\r\n");
                        rest = &rest[n..];
                    }
                    reply.extend_from_slice(b"0\r\n\r\n");
                }
                _ => {
                    reply.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
                    reply.extend_from_slice(&body);
                }
            }
            let (outcome, recycled) = decode(reply, piece, framing == 2);
            proptest::prop_assert_eq!(outcome.map(|b| b.to_vec()), Ok(body));
            proptest::prop_assert_eq!(recycled, framing != 2);
        }

        /// Whatever a provider sends, the client answers with a response or a typed error, and
        /// never panics or hangs.
        #[test]
        fn provider_garbage_never_panics(
            prefix in 0u8..3,
            garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            piece in 1usize..64,
        ) {
            let mut reply = match prefix {
                0 => Vec::new(),
                1 => b"HTTP/1.1 200 OK\r\n".to_vec(),
                _ => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec(),
            };
            reply.extend_from_slice(&garbage);
            let _ = decode(reply, piece, true);
        }
    }

    #[test]
    fn lengths_are_digits_only() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"18446744073709551615"), None, "20 digits");
        assert_eq!(
            parse_length(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        for bad in [&b""[..], b" 1", b"1 ", b"+1", b"0x1", b"1e3"] {
            assert_eq!(parse_length(bad), None, "{bad:?}");
        }
    }
}
