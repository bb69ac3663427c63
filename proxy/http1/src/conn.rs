//! A provider connection: writes requests, reads response heads, and hands the connection
//! to the response body, which gives it back to its pool once read to the end.

use crate::decode::{self, BodyDecoder, Head, Step};
use crate::{BoxError, Error, Failed, Recycle, RequestBody};
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, Method, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// A request body piece this small is copied into one write with its framing (and, for the
/// first piece, the head); a larger one is written on its own.
const COALESCE_BYTES: usize = 16 * 1024;

/// How much sooner than a provider's advertised `Keep-Alive: timeout` a connection stops being
/// offered: the next request needs time to reach the provider, and its timer started when it
/// sent the last byte of the response, before that byte reached us.
const KEEP_ALIVE_MARGIN: Duration = Duration::from_secs(1);

/// One HTTP/1.1 connection to a provider. The transport is boxed: a TLS stream is over a
/// kilobyte, and a connection moves several times per request (pool, request, response body,
/// pool).
pub struct Conn<S> {
    io: Box<S>,
    read: BytesMut,
    write: Vec<u8>,
    max_head: usize,
    /// The provider's `Keep-Alive: timeout` on the latest response.
    idle_timeout: Option<Duration>,
}

impl<S> std::fmt::Debug for Conn<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("buffered", &self.read.len())
            .finish_non_exhaustive()
    }
}

/// How a request body is delimited.
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
            idle_timeout: None,
        }
    }

    /// How long this connection may stay idle before the provider is likely to close it: the
    /// `Keep-Alive: timeout=N` of the latest response, less a margin (a second, or half of a
    /// shorter timeout). `None` when the provider did not say.
    pub fn provider_idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
            .map(|t| t.saturating_sub(KEEP_ALIVE_MARGIN.min(t / 2)))
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
        body: RequestBody,
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
        mut body: RequestBody,
    ) -> Result<(), Error> {
        let framing = match crate::content_length(headers) {
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
        body: &mut RequestBody,
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
    /// interim responses); `None` while it is incomplete.
    fn parse_head(
        &mut self,
        method: &Method,
        storage: &mut HeaderMap,
    ) -> Result<Option<Head>, Error> {
        decode::parse_head(&mut self.read, self.max_head, method, storage)
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

impl Head {
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
        let mut conn = conn;
        conn.idle_timeout = self.idle_timeout;
        let mut body = ResponseBody {
            conn: Some(conn),
            decoder: self.body,
            keep_alive: self.keep_alive && request_complete,
            recycle: Some(recycle),
        };
        if body.decoder.exact_remaining() == Some(0) {
            body.finish();
        }
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.version_mut() = self.version;
        *response.headers_mut() = self.headers;
        response
    }
}

/// A provider's response body, read off the connection as the caller takes it.
pub struct ResponseBody<S, R> {
    conn: Option<Conn<S>>,
    decoder: BodyDecoder,
    keep_alive: bool,
    recycle: Option<R>,
}

impl<S, R> std::fmt::Debug for ResponseBody<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("decoder", &self.decoder)
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
        let conn = self.conn.take();
        let recycle = self.recycle.take();
        if let (Some(conn), Some(recycle)) = (conn, recycle) {
            if self.keep_alive && conn.read.is_empty() {
                recycle.recycle(conn);
            }
        }
    }

    fn fail(&mut self, error: Error) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.conn = None;
        self.recycle = None;
        Poll::Ready(Some(Err(Box::new(error))))
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
            // Decode what is buffered; read more only when nothing can be.
            match this.decoder.step(&mut conn.read) {
                Ok(Step::Data(data)) => {
                    if this.decoder.is_done() {
                        // Finished with this frame, so the caller's side sees the end at once.
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Step::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::More) => {}
                Err(e) => return this.fail(e),
            }
            match conn.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return this.fail(Error::Io(e)),
                Poll::Ready(Ok(0)) => match this.decoder.closed() {
                    // The provider closed: that is the end of this body, and of the connection.
                    Ok(()) => {
                        this.keep_alive = false;
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Err(e) => return this.fail(e),
                },
                Poll::Ready(Ok(_)) => {}
            }
        }
    }

    // Without its connection the body is over: read to the end, or failed.
    fn is_end_stream(&self) -> bool {
        self.conn.is_none() || self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        if self.conn.is_none() {
            return SizeHint::with_exact(0);
        }
        match self.decoder.exact_remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests;
