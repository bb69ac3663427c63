//! Fixed-window request quotas (the simulator's model of each provider's allocation).

use std::time::Duration;
// tokio's clock, so tests that pause time move the simulators' expiries and windows too.
use tokio::time::Instant;

use parking_lot::Mutex;

#[derive(Clone, Copy, Debug)]
pub(crate) struct QuotaState {
    pub used: u64,
    pub limit: u64,
    pub window: Duration,
}

impl QuotaState {
    pub(crate) fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

pub(crate) struct Quota {
    state: Mutex<Inner>,
}

struct Inner {
    limit: u64,
    window: Duration,
    started: Instant,
    used: u64,
}

impl Quota {
    pub(crate) fn new(limit: u64, window: Duration) -> Self {
        Self {
            state: Mutex::new(Inner {
                limit,
                window,
                started: Instant::now(),
                used: 0,
            }),
        }
    }

    fn roll(st: &mut Inner) {
        if st.started.elapsed() >= st.window {
            st.started = Instant::now();
            st.used = 0;
        }
    }

    /// Takes `n` units; `Err` (without taking) when that would pass the limit.
    pub(crate) fn take(&self, n: u64) -> Result<QuotaState, QuotaState> {
        let mut st = self.state.lock();
        Self::roll(&mut st);
        let snap = |st: &Inner| QuotaState {
            used: st.used,
            limit: st.limit,
            window: st.window,
        };
        if st.used + n > st.limit {
            return Err(snap(&st));
        }
        st.used += n;
        Ok(snap(&st))
    }

    pub(crate) fn peek(&self) -> QuotaState {
        let mut st = self.state.lock();
        Self::roll(&mut st);
        QuotaState {
            used: st.used,
            limit: st.limit,
            window: st.window,
        }
    }

    /// Uses up the rest of the current window.
    pub(crate) fn exhaust(&self) {
        let mut st = self.state.lock();
        Self::roll(&mut st);
        st.used = st.limit;
    }

    /// Starts a fresh window now.
    pub(crate) fn reset(&self) {
        let mut st = self.state.lock();
        st.started = Instant::now();
        st.used = 0;
    }

    pub(crate) fn set_limit(&self, limit: u64, window: Option<Duration>) {
        let mut st = self.state.lock();
        st.limit = limit;
        if let Some(w) = window {
            st.window = w;
        }
    }
}
