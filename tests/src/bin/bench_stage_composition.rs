//! What composing the request stages as a tower stack would cost, next to composing them by
//! hand as `pipeline::run` does. Both run the same seven stages (route, caller, policy, body,
//! guards, exchange, respond), each a trivial check that writes one fact about the request;
//! only the composition differs:
//!
//! - by hand: one `async fn` calls each stage in turn, and the stages read and write a context
//!   on the stack (what the pipeline does);
//! - tower: each stage is a `Layer`, facts travel in the request's extensions (the type map
//!   tower middleware shares data through), and the stack is boxed as a `BoxCloneService`
//!   (what a stack does to get a nameable type), called with `ready().await` then `call`.
//!
//! The figure is the composition's own cost per request; the README's design notes quote it.
//! Run: `cargo run --release -p gatehouse-e2e --bin bench_stage_composition`

// A benchmark measures the wall clock, and a failed setup may panic.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use futures_util::FutureExt;
use std::hint::black_box;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::util::BoxCloneService;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

type Request = http::Request<()>;

#[derive(Default)]
struct Facts {
    connection: u32,
    caller: u32,
    allowed: bool,
    body_limit: u64,
    guarded: bool,
    status: u16,
}

#[inline(never)]
fn route(req: &Request) -> u32 {
    req.uri().path().len() as u32
}
#[inline(never)]
fn caller(req: &Request) -> u32 {
    req.headers().len() as u32
}
#[inline(never)]
fn policy(connection: u32, caller: u32) -> bool {
    black_box(connection) != black_box(caller) + 1000
}
#[inline(never)]
fn body(req: &Request) -> u64 {
    req.headers()
        .get(http::header::CONTENT_LENGTH)
        .map_or(0, |v| v.len() as u64)
        + 1
}
#[inline(never)]
fn guard(req: &Request) -> bool {
    req.uri().query().is_none()
}
#[inline(never)]
fn exchange(facts_sum: u64) -> u16 {
    200 + (black_box(facts_sum) % 2) as u16
}

async fn by_hand(req: &Request) -> u16 {
    let mut f = Facts {
        connection: route(req),
        ..Facts::default()
    };
    f.caller = caller(req);
    f.allowed = policy(f.connection, f.caller);
    f.body_limit = body(req);
    f.guarded = guard(req);
    f.status = exchange(u64::from(f.connection) + f.body_limit + u64::from(f.guarded));
    f.status + u16::from(f.allowed) - 1
}

/// One stage as a layer: computes its fact from the request and its extensions, stores it in
/// the extensions, calls the inner service.
#[derive(Clone, Copy)]
struct StageLayer(u8);

#[derive(Clone)]
struct Stage<S> {
    which: u8,
    inner: S,
}

impl<S> Layer<S> for StageLayer {
    type Service = Stage<S>;
    fn layer(&self, inner: S) -> Stage<S> {
        Stage {
            which: self.0,
            inner,
        }
    }
}

#[derive(Clone, Copy)]
struct Connection(u32);
#[derive(Clone, Copy)]
struct Caller(u32);
#[derive(Clone, Copy)]
struct Allowed(bool);
#[derive(Clone, Copy)]
struct BodyLimit(u64);
#[derive(Clone, Copy)]
struct Guarded(bool);

impl<S> Service<Request> for Stage<S>
where
    S: Service<Request, Response = u16>,
{
    type Response = u16;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> S::Future {
        match self.which {
            0 => {
                let c = route(&req);
                req.extensions_mut().insert(Connection(c));
            }
            1 => {
                let c = caller(&req);
                req.extensions_mut().insert(Caller(c));
            }
            2 => {
                let connection = req.extensions().get::<Connection>().map_or(0, |c| c.0);
                let who = req.extensions().get::<Caller>().map_or(0, |c| c.0);
                req.extensions_mut()
                    .insert(Allowed(policy(connection, who)));
            }
            3 => {
                let limit = body(&req);
                req.extensions_mut().insert(BodyLimit(limit));
            }
            _ => {
                let guarded = guard(&req);
                req.extensions_mut().insert(Guarded(guarded));
            }
        }
        self.inner.call(req)
    }
}

fn tower_stack() -> BoxCloneService<Request, u16, std::convert::Infallible> {
    let exchange_and_respond = tower::service_fn(|req: Request| async move {
        let e = req.extensions();
        let connection = e.get::<Connection>().map_or(0, |c| c.0);
        let limit = e.get::<BodyLimit>().map_or(0, |b| b.0);
        let guarded = e.get::<Guarded>().is_some_and(|g| g.0);
        let allowed = e.get::<Allowed>().is_some_and(|a| a.0);
        let status = exchange(u64::from(connection) + limit + u64::from(guarded));
        Ok::<u16, std::convert::Infallible>(status + u16::from(allowed) - 1)
    });
    let stack = ServiceBuilder::new()
        .layer(StageLayer(0))
        .layer(StageLayer(1))
        .layer(StageLayer(2))
        .layer(StageLayer(3))
        .layer(StageLayer(4))
        .service(exchange_and_respond);
    BoxCloneService::new(stack)
}

fn request() -> Request {
    http::Request::builder()
        .method("GET")
        .uri("/crm/services/data/v60.0/sobjects/Account/001")
        .header("proxy-authorization", "Bearer x")
        .header("accept", "application/json")
        .body(())
        .unwrap()
}

/// ns per request over `rounds` requests (every future here is ready at once).
fn measure(rounds: u64, mut one: impl FnMut() -> u16) -> f64 {
    let started = Instant::now();
    let mut sum = 0u64;
    for _ in 0..rounds {
        sum += u64::from(black_box(one()));
    }
    black_box(sum);
    started.elapsed().as_nanos() as f64 / rounds as f64
}

fn main() {
    const ROUNDS: u64 = 2_000_000;
    let template = request();
    let stack = tower_stack();
    let mut hand = Vec::new();
    let mut towered = Vec::new();
    // Interleaved rounds, so both see the same machine; the median of each is reported.
    for _ in 0..7 {
        hand.push(measure(ROUNDS, || {
            // The pipeline owns the caller's request; building it is common to both.
            let req = black_box(template.clone());
            by_hand(&req).now_or_never().unwrap_or(0)
        }));
        towered.push(measure(ROUNDS, || {
            let req = black_box(template.clone());
            let mut service = stack.clone();
            async move {
                let ready = service.ready().await.ok()?;
                ready.call(req).await.ok()
            }
            .now_or_never()
            .flatten()
            .unwrap_or(0)
        }));
    }
    hand.sort_by(f64::total_cmp);
    towered.sort_by(f64::total_cmp);
    let (h, t) = (hand[hand.len() / 2], towered[towered.len() / 2]);
    println!(
        "seven stages, composition cost per request (median of 7 interleaved rounds of {ROUNDS}):"
    );
    println!("  by hand (pipeline::run's shape): {h:6.1} ns");
    println!("  tower layers, extensions, BoxCloneService: {t:6.1} ns");
    println!("  difference: {:6.1} ns per request", t - h);
}
