//! The benchmark's floor: the least a hyper-based reverse proxy can do. It forwards every
//! request to one upstream with nothing else: no caller identity, no policy, no credential, no
//! header hygiene, no request id, no log line, no metrics. It is built the way Gatehouse is
//! (one single-threaded tokio event loop per worker on a shared listener, hyper 1 HTTP/1.1 on
//! both sides, a per-worker keep-alive pool to the upstream), so `scripts/bench_proxy.py`
//! can show how much of the distance to nginx is the HTTP stack and how much is Gatehouse.
//!
//! Usage: `bench_bare_proxy LISTEN UPSTREAM WORKERS`, e.g.
//! `bench_bare_proxy 127.0.0.1:18083 127.0.0.1:18081 2`. Not a product: never deploy it.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::sync::Arc;

type Body = UnsyncBoxBody<Bytes, hyper::Error>;

struct Pool {
    upstream: String,
    idle: Mutex<Vec<http1::SendRequest<Incoming>>>,
}

impl Pool {
    async fn forward(
        &self,
        mut request: http::Request<Incoming>,
    ) -> Result<http::Response<Body>, String> {
        let mut sender = loop {
            let pooled = self.idle.lock().pop();
            match pooled {
                Some(mut s) => {
                    if s.ready().await.is_ok() {
                        break s;
                    }
                }
                None => {
                    let stream = tokio::net::TcpStream::connect(&self.upstream)
                        .await
                        .map_err(|e| e.to_string())?;
                    let _ = stream.set_nodelay(true);
                    let (s, connection) = http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(|e| e.to_string())?;
                    tokio::spawn(connection);
                    break s;
                }
            }
        };
        request.headers_mut().insert(
            http::header::HOST,
            http::HeaderValue::from_str(&self.upstream).map_err(|e| e.to_string())?,
        );
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        // The upstream's bodies are small and complete with the head: the connection is free
        // as soon as the response arrives.
        let (head, body) = response.into_parts();
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        self.idle.lock().push(sender);
        let body = http_body_util::Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync();
        Ok(http::Response::from_parts(head, body))
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18083".to_owned());
    let upstream = args.next().unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(2);
    let listener = std::net::TcpListener::bind(&listen)?;
    listener.set_nonblocking(true)?;
    let mut threads = Vec::new();
    for _ in 0..workers {
        let listener = listener.try_clone()?;
        let pool = Arc::new(Pool {
            upstream: upstream.clone(),
            idle: Mutex::new(Vec::new()),
        });
        threads.push(std::thread::spawn(move || -> std::io::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                loop {
                    let (stream, _) = listener.accept().await?;
                    let _ = stream.set_nodelay(true);
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| {
                            let pool = pool.clone();
                            async move {
                                Ok::<_, std::convert::Infallible>(
                                    match pool.forward(request).await {
                                        Ok(response) => response,
                                        Err(_) => {
                                            let mut r = http::Response::new(
                                                http_body_util::Empty::new()
                                                    .map_err(|never| match never {})
                                                    .boxed_unsync(),
                                            );
                                            *r.status_mut() = http::StatusCode::BAD_GATEWAY;
                                            r
                                        }
                                    },
                                )
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        }));
    }
    for thread in threads {
        thread
            .join()
            .map_err(|_| std::io::Error::other("worker panicked"))??;
    }
    Ok(())
}
