use super::*;
use http::HeaderMap;
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A loopback HTTP/1.1 provider that counts the connections it accepts. `/close` answers
/// with `Connection: close`; `/big` streams 64 KiB; everything else echoes `Host` and the
/// request target.
async fn provider() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let mut response = match req.uri().path() {
                        "/big" => Response::new(crate::body::full(vec![b'x'; 64 * 1024])),
                        path => {
                            let host = req
                                .headers()
                                .get("host")
                                .and_then(|h| h.to_str().ok())
                                .unwrap_or("-");
                            let target = req.uri().to_string();
                            let mut r =
                                Response::new(crate::body::full(format!("{host} {target}")));
                            if path == "/close" {
                                r.headers_mut()
                                    .insert("connection", HeaderValue::from_static("close"));
                            }
                            r
                        }
                    };
                    response
                        .headers_mut()
                        .insert("x-served", HeaderValue::from_static("1"));
                    Ok::<_, std::convert::Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), accepted)
}

fn clients(base: &str, idle: Duration) -> UpstreamClients {
    let connection: ConnectionConfig = toml::from_str(&format!(
        "id = 'p'\nprovider = 'custom'\nbase_url = '{base}'\n"
    ))
    .unwrap();
    let server = ServerConfig {
        pool_idle_timeout: idle,
        ..ServerConfig::default()
    };
    UpstreamClients::build(&server, &connection, 1).unwrap()
}

/// The target of an absolute URL, made as the pipeline makes one: a configured base joined
/// with a path and query.
fn target(url: &str) -> UpstreamTarget {
    let uri: Uri = url.parse().unwrap();
    let origin = format!(
        "{}://{}",
        uri.scheme_str().unwrap(),
        uri.authority().unwrap()
    );
    let base = crate::stages::route::UpstreamBase::parse(&origin).unwrap();
    base.join(uri.path(), uri.query()).unwrap()
}

async fn get(clients: &UpstreamClients, url: &str) -> Response<UpstreamBody> {
    let to = target(url);
    let sent = clients.send(
        &http::Method::GET,
        &to,
        HeaderMap::new(),
        crate::body::empty(),
    );
    sent.await.unwrap()
}

async fn text(response: Response<UpstreamBody>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn sequential_requests_share_one_connection_with_origin_form_and_host() {
    let (base, accepted) = provider().await;
    let clients = clients(&base, Duration::from_secs(90));
    let authority = base.trim_start_matches("http://");
    for _ in 0..3 {
        let body = text(get(&clients, &format!("{base}/a/b?c=d")).await).await;
        assert_eq!(body, format!("{authority} /a/b?c=d"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(clients.idle_count(), 1);
}

#[tokio::test]
async fn a_body_left_unread_takes_its_connection_along() {
    let (base, accepted) = provider().await;
    let clients = clients(&base, Duration::from_secs(90));
    let response = get(&clients, &format!("{base}/big")).await;
    drop(response);
    assert_eq!(clients.idle_count(), 0);
    text(get(&clients, &format!("{base}/x")).await).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    // Read to the end, a big body gives its connection back.
    let big = text(get(&clients, &format!("{base}/big")).await).await;
    assert_eq!(big.len(), 64 * 1024);
    assert_eq!(clients.idle_count(), 1);
    text(get(&clients, &format!("{base}/x")).await).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_the_provider_closed_is_replaced() {
    let (base, accepted) = provider().await;
    let clients = clients(&base, Duration::from_secs(90));
    text(get(&clients, &format!("{base}/close")).await).await;
    for _ in 0..2 {
        text(get(&clients, &format!("{base}/x")).await).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// What a one-shot provider does after answering the first request on a connection.
#[derive(Clone, Copy)]
enum ThenClose {
    /// Closes a moment later, as an idle timeout on its side would.
    Soon,
    /// Reads the next request and closes without answering it (its idle timeout fired just
    /// as a reused connection's request arrived).
    OnNextRequest,
}

/// A loopback provider that counts the connections it accepts and serves each with `serve`.
async fn counting_provider<F, Fut>(serve: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream));
        }
    });
    (base, accepted)
}

/// A provider that answers one request per connection with a keep-alive response, then
/// closes the connection as `then` says.
async fn one_shot_provider(then: ThenClose) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    counting_provider(move |mut stream| async move {
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await;
        match then {
            ThenClose::Soon => tokio::time::sleep(Duration::from_millis(20)).await,
            ThenClose::OnNextRequest => {
                let _ = stream.read(&mut buf).await;
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_connection_the_provider_closes_while_idle_is_not_reused() {
    let (base, accepted) = one_shot_provider(ThenClose::Soon).await;
    let clients = clients(&base, Duration::from_secs(90));
    for round in 1..=3 {
        let response = get(&clients, &format!("{base}/x")).await;
        assert_eq!(text(response).await, "ok");
        assert_eq!(clients.idle_count(), 1, "round {round}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each request found the previous connection closed and opened a new one.
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    clients.sweep();
    assert_eq!(
        clients.idle_count(),
        0,
        "the sweep noticed the last close too"
    );
}

#[tokio::test]
async fn an_idempotent_request_the_provider_drops_on_a_reused_connection_is_sent_again() {
    let (base, accepted) = one_shot_provider(ThenClose::OnNextRequest).await;
    let clients = clients(&base, Duration::from_secs(90));
    assert_eq!(text(get(&clients, &format!("{base}/x")).await).await, "ok");
    assert_eq!(text(get(&clients, &format!("{base}/x")).await).await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_post_the_provider_drops_is_not_sent_again() {
    let (base, accepted) = one_shot_provider(ThenClose::OnNextRequest).await;
    let clients = clients(&base, Duration::from_secs(90));
    assert_eq!(text(get(&clients, &format!("{base}/x")).await).await, "ok");
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("2"));
    let to = target(&format!("{base}/x"));
    let sent = clients.send(&http::Method::POST, &to, headers, crate::body::full("hi"));
    let Err(err) = sent.await else {
        panic!("a dropped POST was answered")
    };
    let err = GatewayError::from(err);
    assert_eq!(err.code, "upstream_failed", "{err}");
    assert!(
        err.cause_chain().is_some_and(|c| c.contains("closed")),
        "{:?}",
        err.cause_chain()
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "not resent");
}

/// A TLS provider without HTTP/2 (ALPN offers only http/1.1) on a loopback port, under a
/// fresh test CA: the CA, the acceptor, the listener and the provider's base URL.
async fn http1_tls_provider() -> (
    gatehouse_sim::TestCa,
    tokio_rustls::TlsAcceptor,
    tokio::net::TcpListener,
    String,
) {
    let ca = gatehouse_sim::TestCa::generate().unwrap();
    let config = ca
        .server_config_with_alpn(vec![b"http/1.1".to_vec()])
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (ca, acceptor, listener, format!("https://localhost:{port}"))
}

#[tokio::test]
async fn http1_over_tls_reuses_its_connection_and_sees_the_provider_close_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A provider without HTTP/2: ALPN offers only http/1.1. It answers two requests per
    // connection with keep-alive responses, then closes the connection (close_notify).
    let (ca, acceptor, listener, base) = http1_tls_provider().await;
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                for _ in 0..2 {
                    let mut buf = [0u8; 4096];
                    if tls.read(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\ntls")
                        .await;
                }
                let _ = tls.shutdown().await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let connection: ConnectionConfig = toml::from_str(&format!(
        "id = 'p'\nprovider = 'custom'\nbase_url = '{base}'\nca_file = '{}'\n",
        ca_file.display()
    ))
    .unwrap();
    let clients = UpstreamClients::build(&ServerConfig::default(), &connection, 1).unwrap();
    for round in 1..=2 {
        assert_eq!(text(get(&clients, &format!("{base}/x")).await).await, "tls");
        assert_eq!(clients.idle_count(), 1, "round {round}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one TLS connection for both"
    );
    // The provider has closed it by now: the next request finds out at checkout.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(text(get(&clients, &format!("{base}/x")).await).await, "tls");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// A provider that sends a head and the first 5 bytes of the body on each connection, then
/// `pieces` more bytes `gap` apart, and never the last `missing` bytes it declared.
async fn dripping_provider(pieces: usize, gap: Duration, missing: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\nfirst",
                    5 + pieces + missing
                );
                let _ = stream.write_all(head.as_bytes()).await;
                for _ in 0..pieces {
                    tokio::time::sleep(gap).await;
                    let _ = stream.write_all(b".").await;
                }
                // Never closes: a stall, not an end.
                std::future::pending::<()>().await;
            });
        }
    });
    base
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stalls_is_cut_off_and_its_connection_closed() {
    let base = dripping_provider(0, Duration::ZERO, 1).await;
    let clients = clients(&base, Duration::from_secs(90));
    let response = get(&clients, &format!("{base}/x")).await;
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first");
    let started = tokio::time::Instant::now();
    let error = body.frame().await.unwrap().unwrap_err();
    assert!(error.is::<BodyStalled>(), "{error}");
    // Cut off at the configured idle time (the default, 60 s), not before.
    assert_eq!(
        started.elapsed(),
        ServerConfig::default().response_body_idle_timeout
    );
    assert!(body.is_end_stream());
    assert!(body.frame().await.is_none());
    assert_eq!(
        clients.idle_count(),
        0,
        "a stalled connection is not pooled"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_body_that_keeps_coming_is_not_cut_off() {
    // Five more bytes, each 50 s after the last: 250 s in all, every gap under the 60 s limit.
    let base = dripping_provider(5, Duration::from_secs(50), 0).await;
    let clients = clients(&base, Duration::from_secs(90));
    let response = get(&clients, &format!("{base}/x")).await;
    let started = tokio::time::Instant::now();
    assert_eq!(text(response).await, "first.....");
    assert!(started.elapsed() >= Duration::from_secs(250));
    assert_eq!(clients.idle_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn expired_idle_connections_are_swept_and_not_reused() {
    let (base, accepted) = provider().await;
    let clients = clients(&base, Duration::from_millis(20));
    text(get(&clients, &format!("{base}/x")).await).await;
    assert_eq!(clients.idle_count(), 1);
    tokio::time::sleep(Duration::from_millis(40)).await;
    clients.sweep();
    assert_eq!(clients.idle_count(), 0);
    text(get(&clients, &format!("{base}/x")).await).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// A loopback provider that answers every request on a connection with `Keep-Alive:
/// timeout=5` and never closes a connection itself, counting the connections it accepts.
async fn keep_alive_provider() -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while stream.read(&mut buf).await.is_ok_and(|n| n > 0) {
                    let reply = b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (base, accepted)
}

#[tokio::test(start_paused = true)]
async fn a_connection_is_not_reused_past_the_providers_keep_alive_timeout() {
    let (base, accepted) = keep_alive_provider().await;
    // The pool alone would keep it for 90 s; the provider said 5 s.
    let clients = clients(&base, Duration::from_secs(90));
    assert_eq!(text(get(&clients, &format!("{base}/x")).await).await, "ok");
    // Inside the provider's timeout less the margin (a second): reused.
    tokio::time::sleep(Duration::from_millis(3900)).await;
    assert_eq!(text(get(&clients, &format!("{base}/x")).await).await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // Past it: swept, though the provider has not closed it (here it never does).
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_eq!(clients.idle_count(), 1);
    clients.sweep();
    assert_eq!(clients.idle_count(), 0);
    // And not offered at checkout either, without a sweep.
    assert_eq!(text(get(&clients, &format!("{base}/x")).await).await, "ok");
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_eq!(text(get(&clients, &format!("{base}/x")).await).await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

/// A GET of `{base}/x` that must fail; its error as the caller's envelope would carry it.
async fn failed_get(base: &str, success_means: &str) -> GatewayError {
    let clients = clients(base, Duration::from_secs(90));
    let to = target(&format!("{base}/x"));
    let sent = clients.send(
        &http::Method::GET,
        &to,
        HeaderMap::new(),
        crate::body::empty(),
    );
    match sent.await {
        Ok(_) => panic!("{success_means}"),
        Err(err) => GatewayError::from(err),
    }
}

#[tokio::test]
async fn an_unreachable_provider_is_a_connect_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = failed_get(&base, "a closed port answered").await;
    assert_eq!(err.code, "upstream_connect_refused", "{err}");
    assert_eq!(err.category, Category::ProviderUnavailable);
    let chain = err.cause_chain().unwrap_or_default();
    assert!(chain.starts_with("connect failed: "), "{chain}");
    assert!(chain.to_lowercase().contains("refused"), "{chain}");
}

#[test]
fn host_header_drops_default_ports_only() {
    assert_eq!(
        host_header("api.example.com:443", "https"),
        "api.example.com"
    );
    assert_eq!(
        host_header("api.example.com:8443", "https"),
        "api.example.com:8443"
    );
    assert_eq!(host_header("127.0.0.1:80", "http"), "127.0.0.1");
    assert_eq!(host_header("127.0.0.1:443", "http"), "127.0.0.1:443");
    assert_eq!(host_header("[::1]:8080", "http"), "[::1]:8080");
    assert_eq!(host_header("api.example.com", "https"), "api.example.com");
}

#[test]
fn targets_keep_their_parts_and_become_absolute_uris_for_http2() {
    let t = target("https://h.example:8443/a/b?c=d");
    assert_eq!(t.scheme, Scheme::HTTPS);
    assert_eq!(t.authority, Authority::from_static("h.example:8443"));
    assert_eq!(t.path_and_query, "/a/b?c=d");
    assert_eq!(t.uri().unwrap(), "https://h.example:8443/a/b?c=d");
    let root = target("https://h.example/");
    assert_eq!(root.path_and_query, "/");
    assert_eq!(root.uri().unwrap(), "https://h.example/");
}

#[tokio::test]
async fn a_provider_certificate_nobody_trusts_is_a_tls_failure_with_its_cause() {
    // A provider whose certificate comes from a CA the connection was not given.
    let (_untrusted_ca, acceptor, listener, base) = http1_tls_provider().await;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = acceptor.accept(stream).await;
        }
    });
    let err = failed_get(&base, "an untrusted certificate was accepted").await;
    assert_eq!(err.code, "upstream_tls_failed", "{err}");
    let chain = err.cause_chain().unwrap_or_default();
    assert!(chain.contains("certificate"), "{chain}");
}

/// What a raw provider sends after answering `/first`: at once behind the answer, or a moment
/// later (when the connection is idle in the pool).
#[derive(Clone, Copy)]
enum Late {
    Now,
    After(Duration),
}

/// A misbehaving provider: it answers `/first` with `reply`, then sends `extra` (bytes nobody
/// asked for, shaped as the answer to the next request); any other request gets `honest`. A
/// pool that reused the first connection would hand `extra` to the next request.
async fn misbehaving_provider(
    reply: &'static [u8],
    extra: &'static [u8],
    late: Late,
) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    counting_provider(move |mut stream| async move {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !request.contains(" /first ") {
                let honest = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhonest";
                let _ = stream.write_all(honest).await;
                continue;
            }
            match late {
                Late::Now => {
                    let mut all = reply.to_vec();
                    all.extend_from_slice(extra);
                    let _ = stream.write_all(&all).await;
                }
                Late::After(wait) => {
                    let _ = stream.write_all(reply).await;
                    tokio::time::sleep(wait).await;
                    let _ = stream.write_all(extra).await;
                }
            }
        }
    })
    .await
}

const SMUGGLED: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nsmuggled";

async fn send_method(
    clients: &UpstreamClients,
    method: &http::Method,
    url: &str,
) -> Response<UpstreamBody> {
    let to = target(url);
    clients
        .send(method, &to, HeaderMap::new(), crate::body::empty())
        .await
        .unwrap()
}

/// The first exchange gets `reply` (and the provider's late bytes), the second must get the
/// honest answer on a new connection.
async fn late_bytes_never_reach_the_next_request(
    method: http::Method,
    reply: &'static [u8],
    late: Late,
) {
    let (base, accepted) = misbehaving_provider(reply, SMUGGLED, late).await;
    let clients = clients(&base, Duration::from_secs(90));
    let first = send_method(&clients, &method, &format!("{base}/first")).await;
    let _ = first.into_body().collect().await;
    if let Late::After(wait) = late {
        tokio::time::sleep(wait * 3).await;
    }
    let second = get(&clients, &format!("{base}/second")).await;
    assert_eq!(text(second).await, "honest");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "a new connection");
}

/// Each case with the late bytes sent at once and a moment later (into the idle pool).
async fn late_bytes_in_both_timings(method: http::Method, reply: &'static [u8]) {
    for late in [Late::Now, Late::After(Duration::from_millis(50))] {
        late_bytes_never_reach_the_next_request(method.clone(), reply, late).await;
    }
}

#[tokio::test]
async fn a_body_after_204_is_never_read_as_the_next_response() {
    late_bytes_in_both_timings(http::Method::GET, b"HTTP/1.1 204 No Content\r\n\r\n").await;
}

#[tokio::test]
async fn a_body_after_304_is_never_read_as_the_next_response() {
    let reply = b"HTTP/1.1 304 Not Modified\r\ncontent-length: 8\r\n\r\n";
    late_bytes_in_both_timings(http::Method::GET, reply).await;
}

#[tokio::test]
async fn a_body_after_a_head_response_is_never_read_as_the_next_response() {
    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n";
    late_bytes_in_both_timings(http::Method::HEAD, reply).await;
}

#[tokio::test]
async fn a_second_unsolicited_response_is_never_read_as_the_next_response() {
    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    late_bytes_in_both_timings(http::Method::GET, reply).await;
}
