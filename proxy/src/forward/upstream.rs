//! Clients to providers: HTTP/1.1 and HTTP/2 by ALPN over rustls with verified certificates
//! (the public web roots plus an optional per-connection CA bundle for private or test CAs).
//! Trust roots are per connection, so clients are too.
//!
//! The data plane uses [`UpstreamClients`]: one small connection pool per data-plane worker,
//! so a worker's requests travel on connections its own event loop drives (no cross-thread
//! wake-ups), and checking a connection out is a pop from a short list rather than a lookup in
//! a shared, hashed, locked pool. Token-endpoint calls are rare and use the general pooled
//! client from [`build_client`].
//!
//! Pool rules:
//! - HTTP/1.1 connections are kept per (scheme, authority), most recently used first. A
//!   connection goes back to the pool when its response body has been read to the end; a
//!   response abandoned half-read takes its connection with it (it cannot be reused).
//! - An HTTP/2 connection (when the provider's TLS ALPN picks h2) is shared by all of the
//!   worker's requests to that authority.
//! - Idle connections older than `pool_idle_timeout`, or than the provider's own
//!   `Keep-Alive: timeout=N` less a margin, or closed by the provider, are dropped at checkout
//!   and by [`UpstreamClients::sweep`], which each worker runs periodically. Idle time is on
//!   tokio's clock.
//! - HTTP/1.1 exchanges are driven by the request's own task ([`gatehouse_http1`]); a pooled
//!   connection is probed at checkout, without waiting, for a close or unasked bytes.
//! - A request on a reused connection that got no byte of response (the provider closed the
//!   connection as the request went out) is sent again on another connection when that is
//!   safe: an idempotent method (RFC 9110 §9.2.2) with no body. Nothing else is retried here.

use crate::body::{BoxError, IdleTimer, ProxyBody};
use crate::config::{ConnectionConfig, ServerConfig};
use crate::error::{Category, GatewayError};
use crate::stages::route::UpstreamTarget;
use bytes::Bytes;
use gatehouse_http1 as h1;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::client::legacy::connect::{Connection as _, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use parking_lot::Mutex;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tower_service::Service;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The general pooled client, for token endpoints.
pub type UpstreamClient = Client<Connector, ProxyBody>;

/// The transport under a provider connection: TCP, or TLS over TCP.
type Io = TokioIo<hyper_rustls::MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>>;

/// An HTTP/1.1 connection to a provider.
type H1Conn = h1::Conn<Io>;

/// At most this many idle HTTP/1.1 connections per authority and worker.
const MAX_IDLE_PER_HOST: usize = 256;

/// The data plane's clients for one connection: a pool per worker, plus one for other threads.
pub struct UpstreamClients {
    connector: Connector,
    idle_timeout: Duration,
    body_idle_timeout: Duration,
    /// The connection's id, for the one log line a stalled body earns.
    connection: Arc<str>,
    max_header_bytes: usize,
    /// Index 0 serves threads that are not data-plane workers; worker `i` uses `i + 1`.
    pools: Box<[Arc<Pool>]>,
}

#[derive(Default)]
struct Pool {
    hosts: Mutex<Vec<HostPool>>,
}

/// Where pooled connections go: a scheme and an authority.
#[derive(PartialEq, Eq)]
struct HostKey {
    scheme: String,
    authority: String,
}

impl HostKey {
    fn is(&self, scheme: &str, authority: &str) -> bool {
        self.authority == authority && self.scheme == scheme
    }
}

struct HostPool {
    key: Arc<HostKey>,
    /// `Host` for HTTP/1.1 requests to this authority.
    host: HeaderValue,
    idle: VecDeque<Idle>,
    h2: Option<http2::SendRequest<ProxyBody>>,
}

struct Idle {
    conn: H1Conn,
    /// When it stops being offered: after `pool_idle_timeout`, or sooner if the provider said
    /// it closes idle connections sooner (a request sent into its close would fail).
    expires: Instant,
}

/// What went wrong before a response arrived.
#[derive(Debug)]
pub enum UpstreamError {
    /// No connection could be made (DNS, TCP, TLS).
    Connect(Box<dyn std::error::Error + Send + Sync>),
    /// The exchange failed on an established connection.
    Request(BoxError),
    /// A target that does not make a valid absolute URI (for HTTP/2, or to connect): a bug,
    /// not input, since targets are checked when they are made.
    Uri,
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Connect(_) => f.write_str("connect failed"),
            UpstreamError::Request(_) => f.write_str("request failed"),
            UpstreamError::Uri => f.write_str("the upstream URI is not a valid absolute URI"),
        }
    }
}

impl std::error::Error for UpstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpstreamError::Connect(e) => Some(e.as_ref()),
            UpstreamError::Request(e) => Some(e.as_ref()),
            UpstreamError::Uri => None,
        }
    }
}

enum Checkout {
    H1(H1Conn, HeaderValue, Arc<HostKey>),
    H2(http2::SendRequest<ProxyBody>),
}

impl UpstreamClients {
    pub fn build(
        server: &ServerConfig,
        connection: &ConnectionConfig,
        workers: usize,
    ) -> Result<Self, String> {
        Ok(UpstreamClients {
            connector: connector(server, connection)?,
            idle_timeout: server.pool_idle_timeout,
            body_idle_timeout: server.response_body_idle_timeout,
            connection: Arc::from(connection.id.as_str()),
            max_header_bytes: server.max_header_bytes,
            pools: (0..=workers).map(|_| Arc::new(Pool::default())).collect(),
        })
    }

    fn pool(&self) -> &Arc<Pool> {
        let index = crate::listen::worker::current().map_or(0, |i| i + 1);
        &self.pools[index % self.pools.len()]
    }

    /// Sends a request to `target` on a pooled or new connection: HTTP/1.1 in origin form with
    /// `Host` set to the target's authority, or HTTP/2 with the absolute URI.
    pub async fn send(
        &self,
        method: &http::Method,
        target: &UpstreamTarget,
        mut headers: http::HeaderMap,
        mut body: ProxyBody,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let (scheme, authority) = (&target.scheme, &target.authority);
        let pool = self.pool();
        loop {
            let (checkout, reused) = match self.checkout(pool, scheme.as_str(), authority.as_str())
            {
                Some(c) => (c, true),
                None => (self.connect(pool, scheme, authority).await?, false),
            };
            match checkout {
                Checkout::H2(mut sender) => {
                    let mut request = Request::new(body);
                    *request.method_mut() = method.clone();
                    *request.uri_mut() = target.uri().ok_or(UpstreamError::Uri)?;
                    *request.headers_mut() = headers;
                    return match sender.send_request(request).await {
                        Ok(response) => Ok(response.map(|b| self.body(Received::H2(b)))),
                        Err(e) => Err(UpstreamError::Request(e.into())),
                    };
                }
                Checkout::H1(conn, host, key) => {
                    headers.insert(http::header::HOST, host);
                    let empty = body.is_end_stream();
                    let back = Return {
                        pool: pool.clone(),
                        key,
                        idle_timeout: self.idle_timeout,
                    };
                    match conn
                        .send(method, &target.path_and_query, &mut headers, body, back)
                        .await
                    {
                        Ok(response) => return Ok(response.map(|b| self.body(Received::H1(b)))),
                        // The provider closed a reused connection as this went out; sending
                        // again is safe only for what may be repeated and can be rebuilt.
                        Err(failed)
                            if reused
                                && failed.nothing_received
                                && empty
                                && method.is_idempotent() =>
                        {
                            body = crate::body::empty();
                        }
                        Err(failed) => return Err(UpstreamError::Request(Box::new(failed.error))),
                    }
                }
            }
        }
    }

    fn body(&self, received: Received) -> UpstreamBody {
        UpstreamBody {
            received,
            stall: IdleTimer::new(self.body_idle_timeout),
            connection: self.connection.clone(),
        }
    }

    fn checkout(&self, pool: &Pool, scheme: &str, authority: &str) -> Option<Checkout> {
        let mut hosts = pool.hosts.lock();
        let host = hosts.iter_mut().find(|h| h.key.is(scheme, authority))?;
        if let Some(h2) = &host.h2 {
            if !h2.is_closed() {
                return Some(Checkout::H2(h2.clone()));
            }
            host.h2 = None;
        }
        let now = Instant::now();
        while let Some(mut idle) = host.idle.pop_back() {
            if now < idle.expires && idle.conn.is_open() {
                return Some(Checkout::H1(idle.conn, host.host.clone(), host.key.clone()));
            }
        }
        None
    }

    async fn connect(
        &self,
        pool: &Pool,
        scheme: &Scheme,
        authority: &Authority,
    ) -> Result<Checkout, UpstreamError> {
        let mut connector = self.connector.clone();
        let target = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| UpstreamError::Uri)?;
        let stream = connector
            .call(target)
            .await
            .map_err(UpstreamError::Connect)?;
        let (scheme, authority) = (scheme.as_str(), authority.as_str());
        if stream.connected().is_negotiated_h2() {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(stream)
                .await
                .map_err(|e| UpstreamError::Request(e.into()))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            let mut hosts = pool.hosts.lock();
            host_entry(&mut hosts, scheme, authority).h2 = Some(sender.clone());
            return Ok(Checkout::H2(sender));
        }
        let conn = h1::Conn::new(TokioIo::new(stream), self.max_header_bytes.max(8192));
        let mut hosts = pool.hosts.lock();
        let entry = host_entry(&mut hosts, scheme, authority);
        Ok(Checkout::H1(conn, entry.host.clone(), entry.key.clone()))
    }

    /// Drops this worker's idle connections that have expired or were closed by the provider.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut hosts = self.pool().hosts.lock();
        for host in hosts.iter_mut() {
            host.idle
                .retain_mut(|idle| now < idle.expires && idle.conn.is_open());
            if host.h2.as_ref().is_some_and(|h2| h2.is_closed()) {
                host.h2 = None;
            }
        }
        hosts.retain(|h| !h.idle.is_empty() || h.h2.is_some());
    }

    /// Idle HTTP/1.1 connections this thread's pool holds.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.pool().hosts.lock().iter().map(|h| h.idle.len()).sum()
    }
}

fn host_entry<'a>(hosts: &'a mut Vec<HostPool>, scheme: &str, authority: &str) -> &'a mut HostPool {
    match hosts.iter().position(|h| h.key.is(scheme, authority)) {
        Some(i) => &mut hosts[i],
        None => {
            hosts.push(HostPool {
                key: Arc::new(HostKey {
                    scheme: scheme.to_owned(),
                    authority: authority.to_owned(),
                }),
                host: host_header(authority, scheme),
                idle: VecDeque::new(),
                h2: None,
            });
            let last = hosts.len() - 1;
            &mut hosts[last]
        }
    }
}

/// `Host` for HTTP/1.1: the authority without the scheme's default port.
fn host_header(authority: &str, scheme: &str) -> HeaderValue {
    let host = match (scheme, authority.rsplit_once(':')) {
        ("https", Some((h, "443"))) | ("http", Some((h, "80"))) => h,
        _ => authority,
    };
    HeaderValue::from_str(host).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// `scheme://authority` + the path and query of an origin-form `uri`.
/// Where an HTTP/1.1 connection goes back to once its response body has been read.
struct Return {
    pool: Arc<Pool>,
    key: Arc<HostKey>,
    /// The pool's `pool_idle_timeout`.
    idle_timeout: Duration,
}

impl h1::Recycle<Io> for Return {
    fn recycle(self, conn: H1Conn) {
        let idle_for = match conn.provider_idle_timeout() {
            Some(provider) => provider.min(self.idle_timeout),
            None => self.idle_timeout,
        };
        if idle_for.is_zero() {
            return; // the provider closes it at once: not worth a slot
        }
        let expires = Instant::now() + idle_for;
        let mut hosts = self.pool.hosts.lock();
        let host = host_entry(&mut hosts, &self.key.scheme, &self.key.authority);
        if host.idle.len() < MAX_IDLE_PER_HOST {
            host.idle.push_back(Idle { conn, expires });
        }
    }
}

/// A provider response body. Reading an HTTP/1.1 body to the end returns its connection to
/// the pool. A provider that goes silent in the middle of a body for `response_body_idle_timeout`
/// is cut off: the body ends in [`BodyStalled`] and its connection is closed, so neither the
/// caller's connection nor the provider's is held for ever.
pub struct UpstreamBody {
    received: Received,
    stall: IdleTimer,
    connection: Arc<str>,
}

enum Received {
    H1(h1::ResponseBody<Io, Return>),
    H2(Incoming),
    /// Cut off after a stall; the provider connection is gone.
    Stalled,
}

/// The provider sent nothing for too long in the middle of a response body.
#[derive(Debug)]
pub struct BodyStalled {
    pub after: Duration,
}

impl std::fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the provider sent nothing for {} ms in the middle of the response body",
            self.after.as_millis()
        )
    }
}

impl std::error::Error for BodyStalled {}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = match &mut this.received {
            Received::H1(body) => Pin::new(body).poll_frame(cx),
            Received::H2(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Received::Stalled => return Poll::Ready(None),
        };
        if polled.is_ready() {
            this.stall.arrived();
            return polled;
        }
        if this.stall.poll_expired(cx) {
            this.received = Received::Stalled;
            let after = this.stall.idle();
            tracing::warn!(
                connection = %this.connection,
                idle_ms = after.as_millis() as u64,
                "provider response body stalled; cut off"
            );
            return Poll::Ready(Some(Err(Box::new(BodyStalled { after }))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        match &self.received {
            Received::H1(body) => body.is_end_stream(),
            Received::H2(body) => body.is_end_stream(),
            Received::Stalled => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.received {
            Received::H1(body) => body.size_hint(),
            Received::H2(body) => body.size_hint(),
            Received::Stalled => SizeHint::with_exact(0),
        }
    }
}

fn tls_config(connection: &ConnectionConfig) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &connection.ca_file {
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?
        {
            let cert =
                cert.map_err(|e| format!("invalid certificate in {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("unusable certificate in {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("ca_file {} holds no certificate", path.display()));
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup failed: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

fn connector(server: &ServerConfig, connection: &ConnectionConfig) -> Result<Connector, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(server.connect_timeout));
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(connection)?)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http))
}

/// The general pooled client (token endpoints).
pub fn build_client(
    server: &ServerConfig,
    connection: &ConnectionConfig,
) -> Result<UpstreamClient, String> {
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(server.pool_idle_timeout)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector(server, connection)?))
}

/// Each error in `err`'s cause chain, looking inside `io::Error`s too (their `source()` skips
/// the error they wrap: a TLS failure arrives as an `io::Error` around a `rustls::Error`).
fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    let mut next = Some(err);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => current.source(),
            },
            None => current.source(),
        };
        Some(current)
    })
}

fn io_kind_in(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    causes(err).find_map(|e| e.downcast_ref::<std::io::Error>().map(std::io::Error::kind))
}

/// Why no connection could be made, as a stable code and a message for the caller (the cause
/// itself, with addresses and certificate details, goes to the log only).
fn connect_failure(err: &(dyn std::error::Error + 'static)) -> (&'static str, &'static str) {
    if causes(err).any(|e| e.is::<rustls::Error>()) {
        return (
            "upstream_tls_failed",
            "the TLS handshake with the provider failed (certificate verification or protocol)",
        );
    }
    // hyper-util's connector reports resolution failures as "dns error" (its error type is
    // private, so its text is what there is to go on).
    if causes(err).any(|e| e.to_string().starts_with("dns error")) {
        return (
            "upstream_dns_failed",
            "the provider's host name could not be resolved",
        );
    }
    match io_kind_in(err) {
        Some(std::io::ErrorKind::ConnectionRefused) => (
            "upstream_connect_refused",
            "the provider refused the connection",
        ),
        Some(std::io::ErrorKind::TimedOut) => (
            "upstream_connect_timeout",
            "connecting to the provider timed out",
        ),
        _ => (
            "upstream_connect_failed",
            "could not connect to the provider",
        ),
    }
}

/// The category and code of a provider response body that failed after its head: stalled
/// (`response_body_idle_timeout`), or broken (a bad chunk, an early close, a reset).
pub(crate) fn body_failure(err: &(dyn std::error::Error + 'static)) -> (Category, &'static str) {
    if causes(err).any(|e| e.is::<BodyStalled>()) {
        (Category::UpstreamTimeout, "upstream_body_stalled")
    } else {
        (Category::ProviderUnavailable, "upstream_body_failed")
    }
}

impl From<UpstreamError> for GatewayError {
    /// The taxonomy of provider-side failures before a response head arrived. The error is kept
    /// as the source, so the log line carries the whole cause chain.
    fn from(err: UpstreamError) -> Self {
        let (category, code, message) = match &err {
            UpstreamError::Connect(inner) => {
                let (code, message) = connect_failure(inner.as_ref());
                (Category::ProviderUnavailable, code, message)
            }
            UpstreamError::Uri => (
                Category::Internal,
                "upstream_uri",
                "the provider address could not be built",
            ),
            UpstreamError::Request(inner) => {
                let inner: &(dyn std::error::Error + 'static) = inner.as_ref();
                // The caller's own streamed body went silent: its fault, not the provider's.
                if causes(inner).any(|e| e.is::<crate::body::BodyReadTimeout>()) {
                    return GatewayError::body_read_timeout().with_source(err);
                }
                if causes(inner).any(|e| e.is::<http_body_util::LengthLimitError>()) {
                    (
                        Category::PayloadTooLarge,
                        "body_too_large",
                        "request body exceeds the allowed size",
                    )
                } else if causes(inner).any(|e| {
                    matches!(
                        e.downcast_ref::<h1::Error>(),
                        Some(h1::Error::Malformed(_) | h1::Error::HeadTooLarge)
                    )
                }) {
                    (
                        Category::ProviderUnavailable,
                        "upstream_malformed_response",
                        "the provider sent a response that is not valid HTTP/1.1",
                    )
                } else {
                    (
                        Category::ProviderUnavailable,
                        "upstream_failed",
                        "the exchange with the provider failed before a response arrived",
                    )
                }
            }
        };
        GatewayError::new(category, code, message).with_source(err)
    }
}

#[cfg(test)]
mod tests;
