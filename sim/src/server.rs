//! The loopback listeners (plain HTTP and HTTPS), the per-request pipeline
//! (record → faults → provider → slow body) and the `/__sim/` admin endpoints.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::config::{Resolved, SimConfig};
use crate::faults::{Decision, FaultRequest, Faults, SlowBody, TokenEndpointDown};
use crate::http::{empty, json, Resp, SimRequest};
use crate::oauth::TokenStore;
use crate::quota::Quota;
use crate::record::Recorder;
use crate::Provider;

/// Largest request body the simulators read (bigger ones get 413).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// State shared by one simulator's listeners and its handle.
pub(crate) struct Ctx {
    pub provider: Provider,
    pub config: SimConfig,
    pub resolved: Resolved,
    pub faults: Faults,
    pub recorder: Recorder,
    pub tokens: Arc<TokenStore>,
    pub quota: Arc<Quota>,
    pub daily: Arc<Quota>,
    pub http_base: String,
    pub https_base: String,
}

/// One provider's behaviour.
pub(crate) trait ProviderSim: Send + Sync + 'static {
    /// Answers a request (never panics; bad input gets the provider's real error).
    fn handle(&self, ctx: &Ctx, req: &SimRequest) -> Resp;
    /// Whether `path` is the token or authorize endpoint (for fault targeting).
    fn is_token_endpoint(&self, path: &str) -> bool;
    /// The provider's body for an injected 5xx.
    fn server_error(&self, status: u16) -> Resp;
    fn token_path(&self) -> &'static str;
    fn authorize_path(&self) -> &'static str;
}

pub(crate) struct App {
    pub ctx: Ctx,
    pub provider: Box<dyn ProviderSim>,
}

/// The connection is closed without a response (hyper drops it when the service errors).
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("simulated connection reset")
    }
}

impl std::error::Error for ResetConnection {}

/// Response body: whole, or trickled through a channel.
pub(crate) enum SimBody {
    Full(Option<Bytes>),
    Trickle(mpsc::Receiver<Bytes>),
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            SimBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            SimBody::Trickle(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, SimBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            SimBody::Full(None) => SizeHint::with_exact(0),
            SimBody::Trickle(_) => SizeHint::default(),
        }
    }
}

/// Accept loop for one port. Ends (with its connections) when `shutdown` flips.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
    base_url: String,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let base = base_url.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let is_tls = tls.is_some();
            let svc = hyper::service::service_fn(move |req| {
                let app = app.clone();
                let base = base.clone();
                async move { handle(app, req, is_tls, base).await }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = builder.serve_connection(TokioIo::new(stream), svc) => {}
                        _ = stop.changed() => {}
                    }
                }
                None => {
                    tokio::select! {
                        _ = builder.serve_connection(TokioIo::new(stream), svc) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        });
    }
}

async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    tls: bool,
    base_url: String,
) -> Result<Response<SimBody>, ResetConnection> {
    let (parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return Ok(finish(empty(413))),
    };
    let req = SimRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
        tls,
        base_url,
    };
    if req.path.starts_with("/__sim/") {
        return Ok(finish(admin(&app, &req)));
    }
    let ctx = &app.ctx;
    ctx.recorder.record(
        req.method.as_str(),
        &req.path_and_query(),
        &req.headers,
        &req.body,
        tls,
    );
    let is_token = app.provider.is_token_endpoint(&req.path);
    let (decision, latency, slow) = ctx.faults.decide(is_token);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let resp = match decision {
        Decision::Reset | Decision::TokenDown(TokenEndpointDown::Reset) => {
            if is_token {
                ctx.recorder.token_call(&grant_type_of(&req), false);
            }
            return Err(ResetConnection);
        }
        Decision::TokenDown(TokenEndpointDown::Unavailable) => app.provider.server_error(503),
        Decision::Error(status) => app.provider.server_error(status),
        Decision::Proceed => app.provider.handle(ctx, &req),
    };
    if is_token && req.method == http::Method::POST {
        ctx.recorder
            .token_call(&grant_type_of(&req), resp.status().is_success());
    }
    Ok(match slow {
        Some(s) if s.chunk_bytes > 0 => trickle(resp, s),
        _ => finish(resp),
    })
}

fn grant_type_of(req: &SimRequest) -> String {
    req.form()
        .into_iter()
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v)
        .unwrap_or_else(|| "<missing>".to_owned())
}

fn finish(resp: Resp) -> Response<SimBody> {
    resp.map(|b| SimBody::Full(Some(b)))
}

fn trickle(resp: Resp, slow: SlowBody) -> Response<SimBody> {
    let (parts, body) = resp.into_parts();
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut rest = body;
        while !rest.is_empty() {
            let n = slow.chunk_bytes.min(rest.len());
            let chunk = rest.split_to(n);
            if tx.send(chunk).await.is_err() {
                return;
            }
            if !rest.is_empty() {
                tokio::time::sleep(slow.interval).await;
            }
        }
    });
    let mut resp = Response::from_parts(parts, SimBody::Trickle(rx));
    resp.headers_mut().remove(http::header::CONTENT_LENGTH);
    resp
}

fn admin(app: &App, req: &SimRequest) -> Resp {
    use http::Method;
    let ctx = &app.ctx;
    let sub = req.path.trim_start_matches("/__sim/").trim_end_matches('/');
    match (&req.method, sub) {
        (&Method::GET, "received") => json(200, &json!(ctx.recorder.received())),
        (&Method::DELETE, "received") | (&Method::POST, "received/clear") => {
            ctx.recorder.clear();
            empty(204)
        }
        (&Method::GET, "token_calls") => json(200, &json!(ctx.recorder.token_calls())),
        (&Method::GET, "faults") => json(200, &json!(ctx.faults.snapshot())),
        (&Method::POST, "faults") => {
            let parsed: Result<FaultRequest, _> = if req.body.is_empty() {
                Ok(FaultRequest::default())
            } else {
                serde_json::from_slice(&req.body)
            };
            match parsed {
                Ok(f) => {
                    ctx.faults.apply(&f);
                    json(200, &json!(ctx.faults.snapshot()))
                }
                Err(e) => json(400, &json!({"error": e.to_string()})),
            }
        }
        (&Method::GET, "refresh_tokens") => {
            let client = req
                .query_param("client_id")
                .unwrap_or_else(|| crate::config::DEMO_CLIENT_ID.to_owned());
            json(
                200,
                &json!({"client_id": client, "refresh_tokens": ctx.tokens.current_refresh_tokens(&client)}),
            )
        }
        (&Method::POST, "refresh_tokens") => {
            let body = req.json().unwrap_or_default();
            let client = body["client_id"]
                .as_str()
                .unwrap_or(crate::config::DEMO_CLIENT_ID)
                .to_owned();
            let user = body["user"]
                .as_str()
                .unwrap_or(&ctx.config.authorize_user)
                .to_owned();
            let token = crate::issue_refresh(ctx, &client, &user);
            json(
                200,
                &json!({"client_id": client, "user": user, "refresh_token": token}),
            )
        }
        (&Method::GET, "info") => json(200, &crate::info_json(ctx, app.provider.as_ref())),
        _ => json(404, &json!({"error": "unknown simulator admin endpoint"})),
    }
}
