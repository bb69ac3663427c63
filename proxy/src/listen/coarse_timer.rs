//! The timer behind hyper's header read timeout on caller connections: a per-worker table of
//! deadlines, checked every [`TICK`].
//!
//! hyper makes a new boxed timer for every request head it waits for, and drops it when the
//! head arrives; with tokio's timer that is an entry put into and taken out of the timer wheel
//! per request (several hundred instructions on the data path). Here a timer is a slot in a
//! small table: taken when hyper first waits on it, freed when hyper drops it, and fired by
//! the worker's tick. A deadline fires up to one tick late, which is little against the
//! header read timeout it serves (30 seconds by default). Time is tokio's, so tests can pause it.

use hyper::rt::{Sleep, Timer};
use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::time::Instant;

/// How often a worker fires due timers.
pub const TICK: Duration = Duration::from_secs(1);

/// One worker's timers. Clones share the table; the worker calls [`CoarseTimer::tick`] every
/// [`TICK`].
#[derive(Clone, Default)]
pub struct CoarseTimer {
    table: Arc<Mutex<Table>>,
}

#[derive(Default)]
struct Table {
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
}

struct Slot {
    deadline: Instant,
    waker: Waker,
    fired: bool,
}

impl CoarseTimer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires every timer whose deadline has passed.
    pub fn tick(&self) {
        let now = Instant::now();
        let mut due = Vec::new();
        {
            let mut table = self.table.lock();
            for slot in table.slots.iter_mut().flatten() {
                if !slot.fired && slot.deadline <= now {
                    slot.fired = true;
                    due.push(slot.waker.clone());
                }
            }
        }
        for waker in due {
            waker.wake();
        }
    }

    /// How many timers are waiting.
    #[cfg(test)]
    fn pending(&self) -> usize {
        let table = self.table.lock();
        table.slots.len() - table.free.len()
    }
}

impl Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(CoarseSleep {
            table: self.table.clone(),
            deadline: Instant::from_std(deadline),
            slot: None,
            done: false,
        })
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: std::time::Instant) {
        match sleep.as_mut().downcast_mut_pin::<CoarseSleep>() {
            Some(mut own) => own
                .as_mut()
                .get_mut()
                .reset(Instant::from_std(new_deadline)),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// One timer; it takes a slot in its worker's table while it is being waited on.
struct CoarseSleep {
    table: Arc<Mutex<Table>>,
    deadline: Instant,
    slot: Option<usize>,
    done: bool,
}

impl CoarseSleep {
    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.done = false;
        if let Some(i) = self.slot {
            if let Some(slot) = self.table.lock().slots[i].as_mut() {
                slot.deadline = deadline;
                slot.fired = false;
            }
        }
    }

    fn release(&mut self) {
        if let Some(i) = self.slot.take() {
            let mut table = self.table.lock();
            table.slots[i] = None;
            table.free.push(i);
        }
    }
}

impl Future for CoarseSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(());
        }
        let mut table = this.table.lock();
        match this.slot {
            Some(i) => match table.slots[i].as_mut() {
                Some(slot) if slot.fired => {}
                Some(slot) => {
                    if !slot.waker.will_wake(cx.waker()) {
                        slot.waker = cx.waker().clone();
                    }
                    return Poll::Pending;
                }
                None => {}
            },
            None => {
                let slot = Slot {
                    deadline: this.deadline,
                    waker: cx.waker().clone(),
                    fired: false,
                };
                let i = match table.free.pop() {
                    Some(i) => {
                        table.slots[i] = Some(slot);
                        i
                    }
                    None => {
                        table.slots.push(Some(slot));
                        table.slots.len() - 1
                    }
                };
                this.slot = Some(i);
                return Poll::Pending;
            }
        }
        drop(table);
        this.release();
        this.done = true;
        Poll::Ready(())
    }
}

impl Sleep for CoarseSleep {}

impl Drop for CoarseSleep {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Empty;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn ticking(timer: &CoarseTimer) -> tokio::task::JoinHandle<()> {
        let timer = timer.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            loop {
                every.tick().await;
                timer.tick();
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_fires_at_the_first_tick_after_its_deadline_and_frees_its_slot() {
        let timer = CoarseTimer::new();
        let ticker = ticking(&timer);
        // (Bounded waits: a timer that never fires fails the test instead of hanging it.)
        let bound = Duration::from_secs(60);
        let started = Instant::now();
        tokio::time::timeout(bound, timer.sleep(Duration::from_millis(2500)))
            .await
            .expect("never fired");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(2500), "{waited:?}");
        assert!(waited <= Duration::from_millis(2500) + TICK, "{waited:?}");
        assert_eq!(timer.pending(), 0);

        // Reset to a later deadline while waiting: it fires then, not before.
        let mut sleep = timer.sleep(Duration::from_secs(2));
        let early = tokio::time::timeout(Duration::from_millis(500), sleep.as_mut()).await;
        assert!(early.is_err());
        assert_eq!(timer.pending(), 1);
        timer.reset(&mut sleep, timer.now() + Duration::from_secs(5));
        let started = Instant::now();
        tokio::time::timeout(bound, sleep.as_mut())
            .await
            .expect("never fired");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(5), "{waited:?}");
        assert!(waited <= Duration::from_secs(5) + TICK, "{waited:?}");

        // Dropped while waiting: the slot is freed, and reused.
        let mut sleep = timer.sleep(Duration::from_secs(60));
        let _ = tokio::time::timeout(Duration::from_millis(10), sleep.as_mut()).await;
        assert_eq!(timer.pending(), 1);
        drop(sleep);
        assert_eq!(timer.pending(), 0);
        ticker.abort();
    }

    /// hyper with this timer: a caller that opens a connection and sends no head is cut off
    /// after the header read timeout; one that keeps sending requests in time is served.
    #[tokio::test(start_paused = true)]
    async fn hyper_header_read_timeout_closes_silent_connections() {
        let timer = CoarseTimer::new();
        let ticker = ticking(&timer);
        let serve = |io: tokio::io::DuplexStream| {
            let service = service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(Empty::<bytes::Bytes>::new()))
            });
            let conn = http1::Builder::new()
                .timer(timer.clone())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(io), service);
            tokio::spawn(conn)
        };
        let (mut silent, server) = tokio::io::duplex(4096);
        let silent_conn = serve(server);
        let (mut active, server) = tokio::io::duplex(4096);
        let active_conn = serve(server);

        let started = Instant::now();
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            active
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 512];
            let n = active.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        }
        // 12 s in: the silent connection is long closed, the active one still open.
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_millis(1), silent.read_to_end(&mut buf))
            .await
            .expect("the silent connection is still open")
            .unwrap();
        assert!(
            buf.is_empty() || buf.starts_with(b"HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&buf)
        );
        assert!(silent_conn.is_finished());
        assert!(started.elapsed() >= Duration::from_secs(12));
        assert!(!active_conn.is_finished());
        ticker.abort();
    }
}
