//! Listeners and lifecycle: the data plane (plain HTTP or TLS, optionally with client
//! certificates), the admin port, policy hot reload, and graceful shutdown (stop accepting,
//! let in-flight requests finish within `shutdown_grace`).

use crate::config::reload;
use crate::stages::caller::PeerIdentity;
use crate::state::{AppState, StartError};
use crate::{admin, pipeline};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub struct Server {
    state: Arc<AppState>,
    data: TcpListener,
    admin: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Server {
    pub async fn bind(state: Arc<AppState>) -> Result<Server, StartError> {
        let server = &state.config.server;
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Listen { addr, source })
        };
        let data = bind(server.listen).await?;
        let admin = bind(server.admin_listen).await?;
        let tls = match &server.tls {
            Some(tls) => Some(crate::listen::tls::acceptor(tls).map_err(StartError::Tls)?),
            None => None,
        };
        Ok(Server {
            state,
            data,
            admin,
            tls,
        })
    }

    pub fn data_addr(&self) -> Option<SocketAddr> {
        self.data.local_addr().ok()
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.local_addr().ok()
    }

    /// Serves until `shutdown` resolves, then drains.
    ///
    /// The data plane runs on `server.workers` threads, each with its own single-threaded event
    /// loop accepting from the shared listening socket (while it is not ahead of the other
    /// workers in open connections, see [`crate::listen::balance`]) and its own provider connection pool:
    /// a request is parsed, checked, forwarded and answered on one thread, with no cross-thread
    /// wake-ups. The admin port, policy reload and credential refreshes run on the calling
    /// runtime.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            state,
            data,
            admin,
            tls,
        } = self;
        let reload_task = tokio::spawn(reload::watch_policy(state.clone()));
        let admin_task = tokio::spawn(serve_admin(state.clone(), admin));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut workers = Vec::new();
        match data.into_std() {
            Ok(listener) => {
                for index in 0..state.config.server.worker_count() {
                    // Counted by the accept balance until it stops, or fails to start.
                    let presence = state.metrics.connections.present(index);
                    match listener.try_clone() {
                        Ok(clone) => workers.push(spawn_worker(
                            index,
                            presence,
                            clone,
                            state.clone(),
                            tls.clone(),
                            stop_rx.clone(),
                        )),
                        Err(err) => {
                            tracing::error!(error = %err, "cannot share the listening socket with a worker")
                        }
                    }
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot hand the listening socket to the workers")
            }
        }
        shutdown.await;
        state.accepting.store(false, Ordering::Release);
        let grace = state.config.server.shutdown_grace;
        tracing::info!(
            grace_ms = grace.as_millis() as u64,
            "shutting down: draining in-flight requests"
        );
        let _ = stop_tx.send(true);
        for worker in workers.into_iter().flatten() {
            let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        }
        reload_task.abort();
        admin_task.abort();
    }
}

fn spawn_worker(
    index: usize,
    presence: crate::listen::balance::Presence,
    listener: std::net::TcpListener,
    state: Arc<AppState>,
    tls: Option<TlsAcceptor>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new().name(format!("gatehouse-worker-{index}")).spawn(move || {
        crate::listen::worker::enter(index);
        crate::telemetry::log::buffer_this_thread();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            // Idle: nothing to run until the next event, so write the batch of log lines now.
            .on_thread_park(crate::telemetry::log::flush_this_thread)
            .build();
        match runtime {
            Ok(runtime) => runtime.block_on(worker_loop(index, presence, listener, state, tls, stop)),
            Err(err) => tracing::error!(error = %err, worker = index, "cannot start a worker event loop"),
        }
        crate::telemetry::log::flush_this_thread();
    });
    match spawned {
        Ok(handle) => Some(handle),
        Err(err) => {
            tracing::error!(error = %err, worker = index, "cannot start a worker thread");
            None
        }
    }
}

async fn worker_loop(
    index: usize,
    presence: crate::listen::balance::Presence,
    listener: std::net::TcpListener,
    state: Arc<AppState>,
    tls: Option<TlsAcceptor>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(error = %err, "worker cannot use the listening socket");
            return;
        }
    };
    let drain = crate::listen::drain::Drain::new();
    // hyper's header read timeout, fired by this loop's tick (see `coarse_timer`).
    let timer = crate::listen::coarse_timer::CoarseTimer::new();
    let mut timer_tick = tokio::time::interval(crate::listen::coarse_timer::TICK);
    timer_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let builder = Arc::new(http_builder(&state, &timer));
    let http1 = Arc::new(http1_builder(&state, &timer));
    let local = Arc::new(WorkerHandle(state.clone()));
    // Idle provider connections of this worker that expired or were closed are let go.
    let sweep_every = (state.config.server.pool_idle_timeout / 2)
        .clamp(Duration::from_secs(1), Duration::from_secs(30));
    let mut sweep = tokio::time::interval(sweep_every);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let balance = state.metrics.connections.clone();
    loop {
        // Take the next connection only if this worker is not ahead of the others (see
        // `balance`); otherwise wait for the counts to change. The wait is registered before the
        // counts are read, so a change in between still wakes it.
        let changed = balance.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let may_accept = balance.may_accept(index);
        tokio::select! {
            _ = timer_tick.tick() => timer.tick(),
            _ = sweep.tick() => {
                for connection in state.connections.values() {
                    connection.clients.sweep();
                }
            }
            _ = &mut changed, if !may_accept => {}
            accepted = listener.accept(), if may_accept => {
                let (stream, _peer) = match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let slot = balance.opened(index);
                let state = local.clone();
                let builder = builder.clone();
                let http1 = http1.clone();
                // Counted from the accept, so draining waits for a connection whose first
                // bytes are still being looked at.
                let ticket = drain.enter();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    match tls {
                        None => {
                            let service = service(state, PeerIdentity::default());
                            // Plain text is HTTP/1.1 unless the client opens with the HTTP/2
                            // preface (h2c prior knowledge). Telling them apart up front, by
                            // peeking, spares every HTTP/1.1 read the auto-detecting wrapper.
                            match opening(&stream).await {
                                Opening::Http1 => {
                                    let conn = http1.serve_connection(TokioIo::new(stream), service);
                                    let _ = ticket.watch(conn).await;
                                }
                                Opening::MaybeHttp2 => {
                                    let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                                    let _ = ticket.watch(conn).await;
                                }
                                Opening::Silent => {}
                            }
                        }
                        Some(acceptor) => {
                            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
                            let Ok(Ok(tls_stream)) = handshake else { return };
                            let peer = crate::listen::tls::peer_identity(tls_stream.get_ref().1);
                            let service = service(state, peer);
                            let conn = builder.serve_connection(TokioIo::new(tls_stream), service).into_owned();
                            let _ = ticket.watch(conn).await;
                        }
                    }
                });
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    drop(presence);
    drop(listener);
    if tokio::time::timeout(state.config.server.shutdown_grace, drain.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace elapsed with requests still in flight");
    }
}

enum Opening {
    /// The first bytes rule out the HTTP/2 preface (`PRI * HTTP/2.0`).
    Http1,
    /// The preface, or too few bytes to tell: the auto-detecting server decides.
    MaybeHttp2,
    /// Closed, failed, or silent for the whole header timeout: the connection is dropped.
    Silent,
}

/// Looks at a plain-text connection's first bytes without consuming them.
async fn opening(stream: &tokio::net::TcpStream) -> Opening {
    let mut first = [0u8; 4];
    match tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 && !b"PRI ".starts_with(&first[..n]) => Opening::Http1,
        Ok(Ok(n)) if n > 0 => Opening::MaybeHttp2,
        _ => Opening::Silent,
    }
}

/// How long a caller has to send a request head (also the idle limit between keep-alive
/// requests).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

fn http1_builder(
    state: &AppState,
    timer: &crate::listen::coarse_timer::CoarseTimer,
) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(timer.clone())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(state.config.server.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
}

fn http_builder(
    state: &AppState,
    timer: &crate::listen::coarse_timer::CoarseTimer,
) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(timer.clone())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(state.config.server.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(state.config.server.max_header_bytes as u32);
    builder
}

/// One worker's own handle on the shared state. Requests clone the handle, whose reference
/// count no other worker touches, rather than the state's, which every worker would bounce
/// between cores.
struct WorkerHandle(Arc<AppState>);

fn service(
    state: Arc<WorkerHandle>,
    peer: PeerIdentity,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<crate::body::ProxyBody>,
    Error = std::convert::Infallible,
    Future = impl Future<
        Output = Result<http::Response<crate::body::ProxyBody>, std::convert::Infallible>,
    > + Send,
> + Clone {
    service_fn(move |request| {
        let state = state.clone();
        let peer = peer.clone();
        async move { Ok::<_, std::convert::Infallible>(pipeline::handle(&state.0, peer, request).await) }
    })
}

async fn serve_admin(state: Arc<AppState>, listener: TcpListener) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let state = state.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(admin::handle(state, request).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
