//! Each phase's deadline, on tokio's paused clock: a connection that goes quiet in that phase
//! is closed when (and not before) its deadline passes, while one that keeps talking is served.

use super::*;
use crate::listen::drain::Drain;
use http_body_util::{BodyExt, Empty};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const DETECT: Duration = Duration::from_secs(5);
const HANDSHAKE: Duration = Duration::from_secs(7);
const HEADER: Duration = Duration::from_secs(9);
const PING_INTERVAL: Duration = Duration::from_secs(4);
const PING_TIMEOUT: Duration = Duration::from_secs(3);
const IDLE: Duration = Duration::from_secs(20);

fn config() -> ServerConfig {
    ServerConfig {
        protocol_detect_timeout: DETECT,
        tls_handshake_timeout: HANDSHAKE,
        header_read_timeout: HEADER,
        http2_keep_alive_interval: PING_INTERVAL,
        http2_keep_alive_timeout: PING_TIMEOUT,
        http2_idle_timeout: IDLE,
        ..ServerConfig::default()
    }
}

fn protocols(config: &ServerConfig) -> Arc<Protocols> {
    Arc::new(Protocols::new(config, TokioTimer::new()))
}

/// Answers 200 `ok`; `/sleep/<s>` first waits that many seconds.
fn answer() -> impl Handler {
    service_fn(|request: Request<Incoming>| async move {
        let wait = request
            .uri()
            .path()
            .strip_prefix("/sleep/")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(wait)).await;
        Ok::<_, Infallible>(Response::new(crate::body::full("ok")))
    })
}

/// A loopback connection served by `serve_plain`: the client side.
async fn plain(protocols: Arc<Protocols>) -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let ticket = Drain::new().enter();
    tokio::spawn(async move { serve_plain(&protocols, server, answer(), ticket).await });
    client
}

/// A connection served as its first bytes tell, over an in-memory pipe: the client side.
/// Tests with several timers in play use this, since on tokio's paused clock the time may move
/// on before a real socket's readiness is seen.
fn detected(protocols: Arc<Protocols>) -> tokio::io::DuplexStream {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let ticket = Drain::new().enter();
    tokio::spawn(async move {
        let deadline = Instant::now() + protocols.deadlines.protocol_detect;
        serve_detected(&protocols, server, deadline, answer(), ticket).await
    });
    client
}

/// When the server closes `client`: `Ok` once it has, `Err` if it is still open after `wait`
/// (anything the server sent first, such as HTTP/2 settings or GOAWAY, is read and dropped).
async fn closed_within<I: AsyncRead + Unpin>(client: &mut I, wait: Duration) -> Result<(), ()> {
    let mut sink = Vec::new();
    match tokio::time::timeout(wait, client.read_to_end(&mut sink)).await {
        Ok(_) => Ok(()),
        Err(_) => Err(()),
    }
}

/// Asserts that `client` stays open until just before `deadline` and is closed just after.
async fn closed_at<I: AsyncRead + Unpin>(client: &mut I, deadline: Duration, what: &str) {
    let started = Instant::now();
    let margin = Duration::from_millis(500);
    assert_eq!(
        closed_within(client, deadline - margin).await,
        Err(()),
        "{what}: closed before its deadline"
    );
    assert_eq!(
        closed_within(client, margin * 3).await,
        Ok(()),
        "{what}: still open {:?} after it started",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn one_byte_that_may_begin_the_preface_is_closed_at_the_detect_deadline() {
    let mut client = plain(protocols(&config())).await;
    client.write_all(b"P").await.unwrap();
    closed_at(&mut client, DETECT, "`P` and nothing more").await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_sends_nothing_is_closed_at_the_detect_deadline() {
    let mut client = plain(protocols(&config())).await;
    closed_at(&mut client, DETECT, "silent connection").await;
}

#[tokio::test(start_paused = true)]
async fn the_preface_and_then_nothing_is_closed_when_its_pings_go_unanswered() {
    let mut client = detected(protocols(&config()));
    client.write_all(PREFACE).await.unwrap();
    // Nothing read from the peer for the interval: pinged; no answer within the timeout.
    // (Reading our side does not answer pings; only an HTTP/2 peer would.)
    let mut sink = Vec::new();
    let started = Instant::now();
    let _ = tokio::time::timeout(IDLE, client.read_to_end(&mut sink)).await;
    let took = started.elapsed();
    assert!(
        took >= PING_INTERVAL + PING_TIMEOUT
            && took < PING_INTERVAL + PING_TIMEOUT + Duration::from_secs(2),
        "closed after {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_h2_connection_that_answers_pings_but_opens_no_stream_is_closed_when_idle() {
    let client = detected(protocols(&config()));
    // A real HTTP/2 client (with prior knowledge) answers the pings sent every interval; the
    // connection stays up only as long as the idle timeout allows.
    let started = Instant::now();
    let (_sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(client))
        .await
        .unwrap();
    let ended = tokio::time::timeout(IDLE * 3, connection).await;
    assert!(ended.is_ok(), "an idle HTTP/2 connection was never closed");
    let took = started.elapsed();
    assert!(
        took >= IDLE && took < IDLE + Duration::from_secs(2),
        "closed after {took:?}"
    );
}

/// A stream open longer than the idle timeout keeps its connection; once it is done, the
/// idle timeout counts from its end.
#[tokio::test(start_paused = true)]
async fn an_open_stream_holds_off_the_idle_timeout() {
    let client = detected(protocols(&config()));
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(client))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let slow = IDLE.as_secs() * 2;
    let request = Request::get(format!("http://gatehouse/sleep/{slow}"))
        .body(Empty::new())
        .unwrap();
    let started = Instant::now();
    let response = sender
        .send_request(request)
        .await
        .expect("answered on the open connection");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    assert!(started.elapsed() >= IDLE * 2);
    let answered = Instant::now();
    let ended = tokio::time::timeout(IDLE * 3, connection).await;
    assert!(ended.is_ok(), "never closed after its stream ended");
    let idle = answered.elapsed();
    assert!(
        idle >= IDLE && idle < IDLE + Duration::from_secs(2),
        "closed {idle:?} after the stream"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_head_that_stalls_is_closed_at_the_header_deadline() {
    let mut client = detected(protocols(&config()));
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    closed_at(&mut client, HEADER, "half a head").await;
}

#[tokio::test(start_paused = true)]
async fn a_keep_alive_connection_is_closed_after_idling_for_the_header_deadline() {
    let mut client = detected(protocols(&config()));
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = [0u8; 64];
    let n = client.read(&mut response).await.unwrap();
    assert!(response[..n].starts_with(b"HTTP/1.1 200"));
    // The rest of the response (its body) may still be in flight; drain it as `closed_at` does.
    closed_at(&mut client, HEADER, "idle keep-alive").await;
}

/// `PO`, `PU`, `PA` split after the `P`: HTTP/1.1 after all, and served from the bytes the
/// detection read.
#[tokio::test(start_paused = true)]
async fn a_request_whose_first_byte_came_alone_is_served() {
    let mut client = plain(protocols(&config())).await;
    client.write_all(b"P").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    client
        .write_all(b"OST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    client.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("ok"), "{text}");
}

/// A whole head of exactly `max_header_bytes`, as sent, passes; one byte more is refused with
/// 431, and so is a head well over the limit that hyper's buffer alone would have let through.
#[tokio::test(start_paused = true)]
async fn the_head_limit_is_exact() {
    let max = 10_000;
    let config = ServerConfig {
        max_header_bytes: max,
        ..config()
    };
    let protocols = protocols(&config);
    for (size, expected) in [
        (max, "HTTP/1.1 200"),
        (max + 1, "HTTP/1.1 431"),
        (max * 3 / 2, "HTTP/1.1 431"),
        (max - 1, "HTTP/1.1 200"),
    ] {
        let mut client = plain(protocols.clone()).await;
        let head = head_of(size);
        assert_eq!(head.len(), size);
        client.write_all(&head).await.unwrap();
        let mut response = Vec::new();
        let _ = client.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with(expected), "a {size}-byte head: {text}");
    }
}

/// A request head of exactly `size` bytes, padded in one header.
fn head_of(size: usize) -> Vec<u8> {
    let start = "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-pad: ";
    let end = "\r\n\r\n";
    let pad = size - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
}

mod tls {
    //! The TLS phases: handshake, then ALPN or the first bytes.

    use super::*;
    use rustls_pki_types::{CertificateDer, ServerName};

    struct Pki {
        acceptor: TlsAcceptor,
        roots: rustls::RootCertStore,
        _dir: tempfile::TempDir,
    }

    fn pki() -> Pki {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        let acceptor = crate::listen::tls::acceptor(&crate::config::TlsConfig {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            client_ca: None,
        })
        .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(cert.der().to_vec()))
            .unwrap();
        Pki {
            acceptor,
            roots,
            _dir: dir,
        }
    }

    /// A connection served by `serve_tls`; the client side, before any handshake.
    fn served(pki: &Pki) -> tokio::io::DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let protocols = protocols(&config());
        let acceptor = pki.acceptor.clone();
        let ticket = Drain::new().enter();
        tokio::spawn(async move {
            serve_tls(&protocols, &acceptor, server, |_peer| answer(), ticket).await
        });
        client
    }

    async fn handshake(
        pki: &Pki,
        alpn: &[&[u8]],
    ) -> tokio_rustls::client::TlsStream<tokio::io::DuplexStream> {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(pki.roots.clone())
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), served(pki))
            .await
            .expect("handshake")
    }

    #[tokio::test(start_paused = true)]
    async fn a_handshake_that_never_starts_is_closed_at_its_deadline() {
        let pki = pki();
        let mut client = served(&pki);
        closed_at(&mut client, HANDSHAKE, "no ClientHello").await;
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_handshake_each_protocol_has_its_deadline() {
        let pki = pki();
        // No ALPN: the first bytes tell, within the detect deadline.
        let mut client = handshake(&pki, &[]).await;
        closed_at(&mut client, DETECT, "TLS without ALPN, then nothing").await;
        // ALPN http/1.1: the request head is awaited for the header deadline.
        let mut client = handshake(&pki, &[b"http/1.1"]).await;
        closed_at(&mut client, HEADER, "TLS http/1.1, then nothing").await;
        // ALPN h2 and then not even the preface: idle, told to go away, and (since it cannot
        // be told before its handshake) cut off a ping timeout later.
        let mut client = handshake(&pki, &[b"h2"]).await;
        closed_at(&mut client, IDLE + PING_TIMEOUT, "TLS h2, then nothing").await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_over_tls_is_served() {
        let pki = pki();
        let mut client = handshake(&pki, &[b"http/1.1"]).await;
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        let _ = client.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response);
        assert!(
            text.starts_with("HTTP/1.1 200") && text.ends_with("ok"),
            "{text}"
        );
    }
}
