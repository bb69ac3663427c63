//! Which data-plane worker the current thread is (see `server`). State that every request
//! touches (provider connection pools, request statistics, the log buffer) is kept per worker
//! and picked by this index, so workers never contend for it or bounce its cache lines.

use std::cell::Cell;

thread_local! {
    static WORKER: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Marks the current thread as data-plane worker `index`.
pub fn enter(index: usize) {
    WORKER.with(|w| w.set(Some(index)));
}

/// The current thread's worker index; `None` on the control runtime and in tests.
pub fn current() -> Option<usize> {
    WORKER.with(|w| w.get())
}
