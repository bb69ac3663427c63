//! One connection from accept to close, with a deadline on every phase, so that nobody can
//! hold a connection (and its file descriptor) open by going quiet:
//!
//! | phase | deadline (`[server]`) | then |
//! | --- | --- | --- |
//! | TLS handshake | `tls_handshake_timeout` | closed |
//! | first bytes: HTTP/1.1 or the HTTP/2 preface | `protocol_detect_timeout` | closed |
//! | each HTTP/1.1 request head, and idle keep-alive | `header_read_timeout` | closed |
//! | HTTP/2, nothing received | `http2_keep_alive_interval`, then a ping answered within `http2_keep_alive_timeout` | closed |
//! | HTTP/2, no open stream | `http2_idle_timeout` | GOAWAY, closed |
//!
//! Telling HTTP/1.1 from HTTP/2 is done here, not by hyper-util's auto-detecting server, whose
//! detection has no deadline: a connection that sent `P` (which may begin the preface) and
//! then nothing was held for ever.

use crate::body::ProxyBody;
use crate::config::ServerConfig;
use crate::listen::drain::Ticket;
use crate::stages::caller::PeerIdentity;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::rt::Timer;
use hyper::service::{service_fn, Service};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use parking_lot::Mutex;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// What an HTTP/2 client with prior knowledge sends first.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A service that answers requests on a connection (the pipeline, or the admin API).
pub(crate) trait Handler:
    Service<
        Request<Incoming>,
        Response = Response<ProxyBody>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> Handler for S where
    S: Service<
            Request<Incoming>,
            Response = Response<ProxyBody>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// The deadlines of a connection's phases, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    pub protocol_detect: Duration,
    pub tls_handshake: Duration,
    pub http2_idle: Duration,
    /// Also how long an idle HTTP/2 connection that was sent GOAWAY may take to close.
    pub http2_keep_alive_timeout: Duration,
}

/// How one listener serves its connections: the HTTP/1.1 and HTTP/2 settings and deadlines.
pub(crate) struct Protocols {
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    deadlines: Deadlines,
}

impl Protocols {
    /// `timer` drives HTTP/1.1 header deadlines (a worker's coarse timer on the data plane).
    pub fn new(config: &ServerConfig, timer: impl Timer + Send + Sync + 'static) -> Self {
        let max_head = config.max_header_bytes;
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(timer)
            .header_read_timeout(config.header_read_timeout)
            // `max_buf_size` is hyper's read buffer, not a head limit: hyper refuses a head only
            // once the buffer holds that much and the head is still incomplete, and one read
            // can take the buffer from just under the size to well past it, so heads of up to
            // about twice the setting got through. `max_header_size` counts the head's bytes as
            // received (request line, header lines, the empty line) and refuses one byte more
            // with 431, whatever the reads were. The buffer must hold a whole head of that
            // size; hyper wants at least 8 KiB.
            .max_header_size(max_head)
            .max_buf_size(max_head.max(8192))
            .keep_alive(true);
        let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .keep_alive_interval(config.http2_keep_alive_interval)
            .keep_alive_timeout(config.http2_keep_alive_timeout)
            .max_header_list_size(u32::try_from(max_head).unwrap_or(u32::MAX));
        Self {
            http1,
            http2,
            deadlines: Deadlines {
                protocol_detect: config.protocol_detect_timeout,
                tls_handshake: config.tls_handshake_timeout,
                http2_idle: config.http2_idle_timeout,
                http2_keep_alive_timeout: config.http2_keep_alive_timeout,
            },
        }
    }
}

/// Serves a plain-text connection: HTTP/1.1, or HTTP/2 with prior knowledge (h2c).
pub(crate) async fn serve_plain<S: Handler>(
    protocols: &Protocols,
    stream: TcpStream,
    service: S,
    ticket: Ticket,
) {
    let deadline = Instant::now() + protocols.deadlines.protocol_detect;
    let mut first = [0u8; 4];
    let peeked = tokio::time::timeout_at(deadline, stream.peek(&mut first)).await;
    let Ok(Ok(n @ 1..)) = peeked else {
        return;
    };
    if !PREFACE.starts_with(&first[..n]) {
        // The common case, told by peeking: nothing is consumed, so hyper reads the socket
        // itself, without a wrapper on every read.
        return serve_http1(protocols, stream, service, ticket).await;
    }
    serve_detected(protocols, stream, deadline, service, ticket).await;
}

/// Serves a connection as its first bytes (read by `deadline`) tell: HTTP/2 if they are the
/// preface, else HTTP/1.1.
async fn serve_detected<I, S: Handler>(
    protocols: &Protocols,
    mut io: I,
    deadline: Instant,
    service: S,
    ticket: Ticket,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok((opening, prefix)) = tokio::time::timeout_at(deadline, read_opening(&mut io)).await
    else {
        return;
    };
    serve_opened(protocols, opening, Rewind::new(prefix, io), service, ticket).await;
}

/// Serves a TLS connection: HTTP/2 or HTTP/1.1 as ALPN chose, else by its first bytes.
/// `service_for` makes the service once the client certificate (if any) is known.
pub(crate) async fn serve_tls<I, S: Handler>(
    protocols: &Protocols,
    acceptor: &TlsAcceptor,
    stream: I,
    service_for: impl FnOnce(PeerIdentity) -> S,
    ticket: Ticket,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handshake =
        tokio::time::timeout(protocols.deadlines.tls_handshake, acceptor.accept(stream)).await;
    let Ok(Ok(tls)) = handshake else {
        return;
    };
    let (peer, h2) = {
        let session = tls.get_ref().1;
        (
            crate::listen::tls::peer_identity(session),
            session.alpn_protocol().map(|p| p == b"h2"),
        )
    };
    let service = service_for(peer);
    match h2 {
        Some(true) => serve_http2(protocols, tls, service, ticket).await,
        Some(false) => serve_http1(protocols, tls, service, ticket).await,
        None => {
            let deadline = Instant::now() + protocols.deadlines.protocol_detect;
            serve_detected(protocols, tls, deadline, service, ticket).await;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    Http1,
    Http2,
    /// Closed or failed before the protocol could be told.
    Closed,
}

async fn serve_opened<I, S: Handler>(
    protocols: &Protocols,
    opening: Opening,
    io: I,
    service: S,
    ticket: Ticket,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match opening {
        Opening::Http1 => serve_http1(protocols, io, service, ticket).await,
        Opening::Http2 => serve_http2(protocols, io, service, ticket).await,
        Opening::Closed => {}
    }
}

/// Reads a connection's first bytes until they are the whole HTTP/2 preface or cannot begin
/// it. The bytes read are returned, to be replayed to the protocol that serves them.
async fn read_opening<I: AsyncRead + Unpin>(io: &mut I) -> (Opening, Prefix) {
    let mut prefix = Prefix::default();
    loop {
        match io.read(&mut prefix.bytes[prefix.end..]).await {
            Ok(0) | Err(_) => return (Opening::Closed, prefix),
            Ok(n) => prefix.end += n,
        }
        let seen = &prefix.bytes[..prefix.end];
        if !PREFACE.starts_with(seen) {
            return (Opening::Http1, prefix);
        }
        if seen.len() == PREFACE.len() {
            return (Opening::Http2, prefix);
        }
    }
}

async fn serve_http1<I, S: Handler>(protocols: &Protocols, io: I, service: S, ticket: Ticket)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = protocols.http1.serve_connection(TokioIo::new(io), service);
    let _ = ticket.watch(conn).await;
}

async fn serve_http2<I, S: Handler>(protocols: &Protocols, io: I, service: S, ticket: Ticket)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let streams = Streams::new();
    let service = counted(service, streams.clone());
    let mut conn = ticket.watch(protocols.http2.serve_connection(TokioIo::new(io), service));
    // Keep-alive pings only show that the peer is alive; a peer that answers them but never
    // opens a stream would otherwise hold the connection for ever.
    tokio::select! {
        _ = &mut conn => return,
        () = streams.idle_for(protocols.deadlines.http2_idle) => {}
    }
    conn.graceful_shutdown();
    // GOAWAY is sent; the connection ends once it is flushed. A peer that does not let it
    // end (and opens no stream) is cut off.
    tokio::select! {
        _ = &mut conn => {}
        () = streams.idle_for(protocols.deadlines.http2_keep_alive_timeout) => {}
    }
}

/// Counts a connection's open HTTP/2 streams: from the request's arrival until its response
/// body is done (or the stream is reset), so a long download counts as activity.
fn counted<S: Handler>(
    inner: S,
    streams: Arc<Streams>,
) -> impl Service<
    Request<Incoming>,
    Response = Response<Counted>,
    Error = Infallible,
    Future = impl std::future::Future<Output = Result<Response<Counted>, Infallible>> + Send,
> + Send
       + 'static {
    service_fn(move |request| {
        let stream = streams.begin();
        let response = inner.call(request);
        async move {
            let response = response.await;
            response.map(|response| {
                response.map(|body| Counted {
                    body,
                    _stream: stream,
                })
            })
        }
    })
}

/// The open streams of one HTTP/2 connection, and since when it has had none.
struct Streams {
    state: Mutex<StreamCount>,
    /// Woken when the last open stream ends.
    all_ended: Notify,
}

struct StreamCount {
    open: usize,
    idle_since: Instant,
}

impl Streams {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(StreamCount {
                open: 0,
                idle_since: Instant::now(),
            }),
            all_ended: Notify::new(),
        })
    }

    fn begin(self: &Arc<Self>) -> StreamGuard {
        self.state.lock().open += 1;
        StreamGuard {
            streams: self.clone(),
        }
    }

    /// Resolves once no stream has been open for `timeout`, counted from the later of this
    /// call and the end of the last stream.
    async fn idle_for(&self, timeout: Duration) {
        let called = Instant::now();
        loop {
            let ended = self.all_ended.notified();
            tokio::pin!(ended);
            // Registered before the count is read, so a stream ending in between still wakes.
            ended.as_mut().enable();
            let idle_since = {
                let state = self.state.lock();
                (state.open == 0).then_some(state.idle_since)
            };
            let Some(idle_since) = idle_since else {
                ended.await;
                continue;
            };
            let deadline = idle_since.max(called) + timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = &mut ended => {}
            }
        }
    }
}

struct StreamGuard {
    streams: Arc<Streams>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let last = {
            let mut state = self.streams.state.lock();
            state.open = state.open.saturating_sub(1);
            if state.open == 0 {
                state.idle_since = Instant::now();
            }
            state.open == 0
        };
        if last {
            self.streams.all_ended.notify_waiters();
        }
    }
}

/// A response body that counts as an open stream until it is done or dropped.
pub(crate) struct Counted {
    body: ProxyBody,
    _stream: StreamGuard,
}

impl http_body::Body for Counted {
    type Data = <ProxyBody as http_body::Body>::Data;
    type Error = <ProxyBody as http_body::Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The bytes read to tell the protocol (at most the preface's length).
#[derive(Default)]
struct Prefix {
    bytes: [u8; PREFACE.len()],
    start: usize,
    end: usize,
}

/// A connection whose first bytes were already read: they are read again first.
struct Rewind<I> {
    prefix: Prefix,
    io: I,
}

impl<I> Rewind<I> {
    fn new(prefix: Prefix, io: I) -> Self {
        Self { prefix, io }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let prefix = &mut this.prefix;
        if prefix.start < prefix.end && buf.remaining() > 0 {
            let n = (prefix.end - prefix.start).min(buf.remaining());
            buf.put_slice(&prefix.bytes[prefix.start..prefix.start + n]);
            prefix.start += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
