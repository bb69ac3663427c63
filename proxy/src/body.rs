//! Body types shared by the data plane and the admin port, and the idle deadline that both the
//! caller's request body and the provider's response body run under.

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response Gatehouse returns: a streamed upstream body or a small local one.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body's idle deadline: how long it may bring nothing. The timer is made on the first wait
/// (most bodies arrive with their head and never wait) and reset at the start of each later one.
pub(crate) struct IdleTimer {
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether the timer runs for the current wait.
    waiting: bool,
}

impl IdleTimer {
    pub fn new(idle: Duration) -> Self {
        IdleTimer {
            idle,
            timer: None,
            waiting: false,
        }
    }

    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Something arrived: the next wait starts a new deadline.
    pub fn arrived(&mut self) {
        self.waiting = false;
    }

    /// The body has nothing now: whether it has brought nothing for the whole idle time
    /// (registering `cx` for the deadline otherwise).
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.waiting {
            self.waiting = true;
            let deadline = tokio::time::Instant::now() + self.idle;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        self.timer
            .as_mut()
            .is_some_and(|timer| std::future::Future::poll(timer.as_mut(), cx).is_ready())
    }

    /// Whether the current wait has started (the body is being waited for now).
    pub fn is_waiting(&self) -> bool {
        self.waiting
    }
}

/// The caller went silent in the middle of its request body for `body_read_timeout`.
#[derive(Debug)]
pub(crate) struct BodyReadTimeout {
    pub after: Duration,
}

impl std::fmt::Display for BodyReadTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the caller sent nothing of its request body for {} ms",
            self.after.as_millis()
        )
    }
}

impl std::error::Error for BodyReadTimeout {}
