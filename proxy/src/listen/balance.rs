//! Spreading caller connections over the data-plane workers.
//!
//! All workers accept from one listening socket, and the kernel hands a new connection to
//! whichever worker asks first. Callers keep their connections open (a sidecar's clients pool
//! a handful), so a burst of connects can land on one worker and leave the others idle for the
//! connections' whole life: one core's throughput for the whole proxy. To prevent that, a
//! worker that already holds more than [`SLACK`] connections above the least-loaded worker
//! stops accepting until the counts change; the least-loaded worker never stops, so some worker
//! always accepts. Every worker counts from the start, so connections that arrive while one is
//! still starting wait for it; a worker that failed to start, or has stopped, drops out (see
//! [`Balance::present`]) and holds nobody back at its zero.
//!
//! The per-worker counts are also the `gatehouse_worker_connections{worker}` gauge.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// How many connections a worker may hold above the least-loaded one and still accept.
pub const SLACK: i64 = 1;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: String,
}

pub struct Balance {
    open: Box<[Gauge]>,
    /// Which workers are starting or accepting.
    present: Box<[AtomicBool]>,
    /// Woken whenever a count changes, for workers waiting to accept again.
    changed: Notify,
}

impl Balance {
    pub fn register(registry: &mut Registry, workers: usize) -> Arc<Self> {
        let family = Family::<WorkerLabels, Gauge>::default();
        registry.register(
            crate::telemetry::names::WORKER_CONNECTIONS.name,
            crate::telemetry::names::WORKER_CONNECTIONS.help,
            family.clone(),
        );
        let open = (0..workers.max(1))
            .map(|w| {
                family
                    .get_or_create(&WorkerLabels {
                        worker: w.to_string(),
                    })
                    .clone()
            })
            .collect();
        Arc::new(Self {
            open,
            present: (0..workers.max(1)).map(|_| AtomicBool::new(true)).collect(),
            changed: Notify::new(),
        })
    }

    /// Open connections of `worker`.
    pub fn open(&self, worker: usize) -> i64 {
        self.open.get(worker).map_or(0, Gauge::get)
    }

    /// Whether `worker` should take the next connection.
    pub fn may_accept(&self, worker: usize) -> bool {
        let least = self
            .open
            .iter()
            .zip(self.present.iter())
            .filter(|(_, present)| present.load(Ordering::Acquire))
            .map(|(open, _)| open.get())
            .min()
            .unwrap_or(0);
        self.open(worker) <= least + SLACK
    }

    /// `worker` counts until the returned guard is dropped: the guard goes with the worker's
    /// thread from before it is spawned (a failed spawn drops it) to the end of its accept loop.
    pub fn present(self: &Arc<Self>, worker: usize) -> Presence {
        Presence {
            balance: self.clone(),
            worker,
        }
    }

    /// Resolves at the next change of any count. Enable it (`Notified::enable`) before reading
    /// the counts so that a change in between is not missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Counts a connection `worker` accepted, until the returned slot is dropped.
    pub fn opened(self: &Arc<Self>, worker: usize) -> Slot {
        if let Some(gauge) = self.open.get(worker) {
            gauge.inc();
        }
        self.changed.notify_waiters();
        Slot {
            balance: self.clone(),
            worker,
        }
    }
}

/// A worker that is starting or accepting; see [`Balance::present`].
pub struct Presence {
    balance: Arc<Balance>,
    worker: usize,
}

impl Drop for Presence {
    fn drop(&mut self) {
        if let Some(flag) = self.balance.present.get(self.worker) {
            flag.store(false, Ordering::Release);
        }
        self.balance.changed.notify_waiters();
    }
}

/// One open connection, counted against its worker while it lives.
pub struct Slot {
    balance: Arc<Balance>,
    worker: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(gauge) = self.balance.open.get(self.worker) {
            gauge.dec();
        }
        self.balance.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_ahead_of_the_least_loaded_by_more_than_the_slack_waits() {
        let balance = Balance::register(&mut Registry::default(), 3);
        let a = balance.opened(0);
        assert!(
            balance.may_accept(0),
            "one above the least is within the slack"
        );
        let b = balance.opened(0);
        assert!(!balance.may_accept(0));
        assert!(balance.may_accept(1) && balance.may_accept(2));
        let _c = balance.opened(1);
        let _d = balance.opened(2);
        assert!(balance.may_accept(0), "the others caught up");
        drop((a, b));
        assert_eq!(balance.open(0), 0);
        assert!(balance.may_accept(0));
        assert!(balance.may_accept(1), "1 is one above the least");
    }

    #[test]
    fn the_least_loaded_worker_always_accepts() {
        let balance = Balance::register(&mut Registry::default(), 4);
        let mut slots = Vec::new();
        for round in 0..50usize {
            // Whoever is allowed takes the connection, the lowest index first.
            let worker = (0..4)
                .find(|&w| balance.may_accept(w))
                .expect("someone accepts");
            slots.push(balance.opened(worker));
            let counts: Vec<i64> = (0..4).map(|w| balance.open(w)).collect();
            let spread = counts.iter().max().unwrap() - counts.iter().min().unwrap();
            assert!(spread <= SLACK + 1, "round {round}: {counts:?}");
        }
    }

    #[test]
    fn a_worker_that_is_not_accepting_holds_nobody_back() {
        let balance = Balance::register(&mut Registry::default(), 3);
        let _zero = balance.present(0);
        let one = balance.present(1);
        let two = balance.present(2);
        // Worker 2 is still starting: the others wait for it after one connection each.
        let _a = balance.opened(0);
        let _b = balance.opened(1);
        assert!(balance.may_accept(0) && balance.may_accept(1));
        let _c = balance.opened(0);
        assert!(
            !balance.may_accept(0),
            "two against a starting worker's none"
        );
        // Worker 2 failed to start; worker 1 stops later.
        drop(two);
        assert!(balance.may_accept(0), "two against one");
        let _d = balance.opened(0);
        assert!(!balance.may_accept(0), "three against one");
        drop(one);
        assert!(
            balance.may_accept(0),
            "the only worker left is never held back"
        );
    }

    #[tokio::test]
    async fn a_change_wakes_a_waiting_worker() {
        let balance = Balance::register(&mut Registry::default(), 2);
        let changed = balance.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let other = balance.clone();
        let slot = tokio::spawn(async move { other.opened(1) });
        tokio::time::timeout(std::time::Duration::from_secs(5), changed)
            .await
            .expect("woken by the change");
        drop(slot.await);
    }
}
