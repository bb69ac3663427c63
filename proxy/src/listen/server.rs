//! Listeners and lifecycle: the data plane (plain HTTP or TLS, optionally with client
//! certificates), the admin port, policy hot reload, and graceful shutdown (stop accepting,
//! let in-flight requests finish within `shutdown_grace`).

use crate::config::reload;
use crate::listen::conn::{self, Protocols};
use crate::listen::limit::{self, ConnectionLimit};
use crate::stages::caller::PeerIdentity;
use crate::state::{AppState, StartError};
use crate::telemetry::metrics::Refused;
use crate::{admin, pipeline};
use hyper::service::service_fn;
use hyper_util::rt::TokioTimer;
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
    /// Caller connections open at once over all workers.
    callers: Arc<ConnectionLimit>,
}

impl Server {
    pub async fn bind(state: Arc<AppState>) -> Result<Server, StartError> {
        let server = &state.config.server;
        let callers = ConnectionLimit::new(caller_cap(server.max_connections));
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
            callers,
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
            callers,
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
                        Ok(clone) => workers.push(spawn_worker(Worker {
                            index,
                            presence,
                            listener: clone,
                            state: state.clone(),
                            tls: tls.clone(),
                            callers: callers.clone(),
                            stop: stop_rx.clone(),
                        })),
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

/// What a worker thread starts with.
struct Worker {
    index: usize,
    /// Counts the worker for the accept balance while it runs.
    presence: crate::listen::balance::Presence,
    /// The data-plane socket, shared by every worker.
    listener: std::net::TcpListener,
    state: Arc<AppState>,
    tls: Option<TlsAcceptor>,
    /// Caller connections open across all workers, against `server.max_connections`.
    callers: Arc<ConnectionLimit>,
    stop: tokio::sync::watch::Receiver<bool>,
}

fn spawn_worker(worker: Worker) -> Option<std::thread::JoinHandle<()>> {
    let index = worker.index;
    let spawned = std::thread::Builder::new().name(format!("gatehouse-worker-{index}")).spawn(move || {
        crate::listen::worker::enter(index);
        crate::telemetry::log::buffer_this_thread();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            // Idle: nothing to run until the next event, so write the batch of log lines now.
            .on_thread_park(crate::telemetry::log::flush_this_thread)
            .build();
        match runtime {
            Ok(runtime) => runtime.block_on(worker_loop(worker)),
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

async fn worker_loop(worker: Worker) {
    let Worker {
        index,
        presence,
        listener,
        state,
        tls,
        callers,
        mut stop,
    } = worker;
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
    let protocols = Arc::new(Protocols::new(&state.config.server, timer.clone()));
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
                        accept_failed(&state, &err, "data plane").await;
                        continue;
                    }
                };
                let Some(permit) = admit(&state, &callers, Refused::MaxConnections, "caller connections at server.max_connections") else {
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let slot = balance.opened(index);
                let state = local.clone();
                let protocols = protocols.clone();
                // Counted from the accept, so draining waits for a connection whose first
                // bytes are still being looked at.
                let ticket = drain.enter();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _held = (slot, permit);
                    match tls {
                        None => {
                            let service = service(state, PeerIdentity::default());
                            conn::serve_plain(&protocols, stream, service, ticket).await;
                        }
                        Some(acceptor) => {
                            let service_for = |peer| service(state, peer);
                            conn::serve_tls(&protocols, &acceptor, stream, service_for, ticket).await;
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

/// The admin port, on the control runtime: the same deadlines as the data plane, and an
/// allowance of connections of its own, so that neither a full data plane nor a flood of
/// idle admin connections locks operators out.
async fn serve_admin(state: Arc<AppState>, listener: TcpListener) {
    let protocols = Arc::new(Protocols::new(&state.config.server, TokioTimer::new()));
    let allowance = ConnectionLimit::new(limit::ADMIN_CONNECTIONS);
    // Admin connections are not drained (the port closes with the process); tickets are
    // what serving a connection takes.
    let drain = crate::listen::drain::Drain::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                accept_failed(&state, &err, "admin").await;
                continue;
            }
        };
        let Some(permit) = admit(
            &state,
            &allowance,
            Refused::AdminMaxConnections,
            "admin connections at their allowance",
        ) else {
            continue;
        };
        let state = state.clone();
        let protocols = protocols.clone();
        let ticket = drain.enter();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(admin::handle(state, request).await) }
            });
            conn::serve_plain(&protocols, stream, service, ticket).await;
        });
    }
}

/// Raises the open-file limit and returns the caller-connection cap that fits in it.
fn caller_cap(configured: usize) -> usize {
    let files = limit::raise_file_limit();
    let shown =
        |limit: Option<u64>| limit.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    let cap = limit::fitting_max_connections(configured, files.soft);
    tracing::info!(
        soft = %shown(files.soft),
        hard = %shown(files.hard),
        max_connections = cap,
        "open-file limit"
    );
    if cap < configured {
        tracing::warn!(
            configured,
            max_connections = cap,
            open_files = %shown(files.soft),
            "server.max_connections lowered to fit the open-file limit; raise the hard limit (ulimit -Hn, systemd LimitNOFILE) to allow more"
        );
    }
    cap
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

/// A place for a new connection under `limit`, or `None`. A connection without one is closed
/// at once rather than left in the listen backlog (the peer sees it end and can go elsewhere
/// instead of hanging); it is counted as `refused`, and the first refusal of a run is logged.
fn admit(
    state: &AppState,
    limit: &Arc<ConnectionLimit>,
    refused: Refused,
    at_limit: &'static str,
) -> Option<limit::Permit> {
    let permit = limit.try_acquire();
    if permit.is_none() {
        state.metrics.refused(refused);
        if limit.first_refusal() {
            tracing::warn!(
                max = limit.max(),
                "{at_limit}: new connections are closed until some end"
            );
        }
    }
    permit
}

/// An accept that failed (out of file descriptors and the like): counted, logged, and backed
/// off instead of spinning on the error.
async fn accept_failed(state: &AppState, err: &std::io::Error, listener: &'static str) {
    if limit::out_of_files(err) {
        state.metrics.refused(Refused::FileLimit);
    }
    tracing::warn!(error = %err, listener, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}
