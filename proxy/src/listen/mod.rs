//! Accepting callers: the listeners and workers (`server`), one connection's phases and their
//! deadlines (`conn`), how many connections may be open (`limit`), TLS and client certificates
//! (`tls`), spreading connections over workers (`balance`), the per-worker coarse timer that
//! drives hyper's header timeouts (`coarse_timer`), graceful shutdown (`drain`) and which worker
//! the current thread is (`worker`).

pub(crate) mod balance;
pub(crate) mod coarse_timer;
pub(crate) mod conn;
pub(crate) mod drain;
pub(crate) mod limit;
pub(crate) mod server;
pub(crate) mod tls;
pub(crate) mod worker;
