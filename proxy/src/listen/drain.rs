//! Draining a worker's caller connections on shutdown: each connection is told to finish the
//! request it is serving and close, and the worker waits for all of them (within the grace).
//!
//! hyper-util's `GracefulShutdown` does the same job, but every wake-up of every connection
//! also polls a watch channel (a few hundred instructions per request on this path). Here a
//! connection registers its task's waker once, and each wake-up checks one flag.

use hyper_util::server::graceful::GracefulConnection;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

/// One worker's connections, for draining. Clones share them.
#[derive(Default, Clone)]
pub struct Drain {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    draining: AtomicBool,
    /// Watched connections (by id), with the waker of the task serving each, once polled.
    open: Mutex<Open>,
    /// Woken when the last watched connection ends.
    all_closed: Notify,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    wakers: HashMap<u64, Option<Waker>>,
}

impl Drain {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a connection as open from now (say, from its accept, before its first bytes
    /// are looked at), so that draining waits for it; it is served with [`Ticket::watch`].
    pub fn enter(&self) -> Ticket {
        let mut open = self.shared.open.lock();
        let id = open.next_id;
        open.next_id += 1;
        open.wakers.insert(id, None);
        Ticket {
            shared: self.shared.clone(),
            id,
        }
    }

    /// Serves `conn` to its end; once draining starts it is asked to shut down gracefully.
    #[cfg(test)]
    pub fn watch<C: GracefulConnection>(&self, conn: C) -> Watched<C> {
        self.enter().watch(conn)
    }

    /// How many watched connections are still open.
    pub fn open(&self) -> usize {
        self.shared.open.lock().wakers.len()
    }

    /// Tells every watched connection (and any watched later) to shut down gracefully, then
    /// waits until all have ended.
    pub async fn shutdown(&self) {
        self.shared.draining.store(true, Ordering::SeqCst);
        let wakers: Vec<Waker> = {
            let mut open = self.shared.open.lock();
            open.wakers.values_mut().filter_map(Option::take).collect()
        };
        for waker in wakers {
            waker.wake();
        }
        loop {
            let closed = self.shared.all_closed.notified();
            tokio::pin!(closed);
            // Registered before the count is read, so the last close in between still wakes.
            closed.as_mut().enable();
            if self.open() == 0 {
                return;
            }
            closed.await;
        }
    }
}

/// An open connection not yet being served; dropping it closes its count.
pub struct Ticket {
    shared: Arc<Shared>,
    id: u64,
}

impl Ticket {
    /// Serves `conn` to its end; once draining starts it is asked to shut down gracefully.
    pub fn watch<C: GracefulConnection>(self, conn: C) -> Watched<C> {
        Watched {
            conn: Box::pin(conn),
            ticket: self,
            registered: false,
            signalled: false,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let last = {
            let mut open = self.shared.open.lock();
            open.wakers.remove(&self.id);
            open.wakers.is_empty()
        };
        if last {
            self.shared.all_closed.notify_waiters();
        }
    }
}

/// A connection being served, under a [`Drain`].
pub struct Watched<C> {
    conn: Pin<Box<C>>,
    ticket: Ticket,
    registered: bool,
    signalled: bool,
}

impl<C: GracefulConnection> Watched<C> {
    /// Asks the connection to finish what it is serving and close, as draining would (for a
    /// connection that has been idle too long).
    pub fn graceful_shutdown(&mut self) {
        if !self.signalled {
            self.signalled = true;
            self.conn.as_mut().graceful_shutdown();
        }
    }
}

impl<C: GracefulConnection> Future for Watched<C> {
    type Output = C::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = &mut *self;
        if !this.signalled {
            if !this.registered {
                // The waker of the task that serves this connection does not change, so once
                // is enough. Stored before the flag is read: a drain that starts in between
                // either sees this waker or is seen below.
                let shared = &this.ticket.shared;
                if let Some(slot) = shared.open.lock().wakers.get_mut(&this.ticket.id) {
                    *slot = Some(cx.waker().clone());
                }
                this.registered = true;
            }
            if this.ticket.shared.draining.load(Ordering::SeqCst) {
                this.signalled = true;
                this.conn.as_mut().graceful_shutdown();
            }
        }
        this.conn.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Empty;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connection with a request in flight finishes it, then closes; an idle one closes at
    /// once; `shutdown` returns when both have ended.
    #[tokio::test(start_paused = true)]
    async fn draining_finishes_requests_in_flight_and_closes_idle_connections() {
        let drain = Arc::new(Drain::new());
        let slow = service_fn(|_req| async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok::<_, std::convert::Infallible>(http::Response::new(Empty::<bytes::Bytes>::new()))
        });
        let (mut busy, busy_server) = tokio::io::duplex(4096);
        let (mut idle, idle_server) = tokio::io::duplex(4096);
        for server in [busy_server, idle_server] {
            let conn = http1::Builder::new().serve_connection(TokioIo::new(server), slow);
            tokio::spawn(drain.watch(conn));
        }
        assert_eq!(drain.open(), 2);
        busy.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;

        let draining = tokio::spawn({
            let drain = drain.clone();
            async move { drain.shutdown().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The idle connection has been closed; the busy one is still serving.
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(1), idle.read_to_end(&mut buf));
        assert_eq!(
            closed.await.expect("idle connection still open").unwrap(),
            0
        );
        assert_eq!(drain.open(), 1);
        assert!(!draining.is_finished());

        // The request in flight is answered, with `connection: close`, and the drain ends.
        tokio::time::timeout(Duration::from_secs(10), busy.read_to_end(&mut buf))
            .await
            .expect("busy connection never closed")
            .unwrap();
        let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 200"), "{text}");
        assert!(text.contains("connection: close"), "{text}");
        draining.await.unwrap();
        assert_eq!(drain.open(), 0);
    }

    #[tokio::test]
    async fn shutdown_with_nothing_open_returns_at_once() {
        Drain::new().shutdown().await;
    }

    /// A connection accepted but not yet served (its first bytes still awaited) is counted:
    /// the drain waits for it, and a connection served after draining began is told to close
    /// at once.
    #[tokio::test(start_paused = true)]
    async fn an_accepted_connection_is_waited_for_before_it_is_served() {
        let drain = Arc::new(Drain::new());
        let ticket = drain.enter();
        let draining = tokio::spawn({
            let drain = drain.clone();
            async move { drain.shutdown().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!draining.is_finished());
        let (mut client, server) = tokio::io::duplex(4096);
        let service = service_fn(|_req| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Empty::<bytes::Bytes>::new()))
        });
        let conn = http1::Builder::new().serve_connection(TokioIo::new(server), service);
        tokio::spawn(ticket.watch(conn));
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(1), client.read_to_end(&mut buf))
            .await
            .expect("a connection served while draining is closed at once")
            .unwrap();
        tokio::time::timeout(Duration::from_secs(1), draining)
            .await
            .expect("the drain ends when its last connection does")
            .unwrap();
        // A ticket dropped without serving also ends its count.
        drop(drain.enter());
        assert_eq!(drain.open(), 0);
    }
}
