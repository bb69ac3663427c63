//! End-to-end: connections that go quiet before (or while) HTTP is spoken are closed at their
//! deadlines, the cap on caller connections holds without locking out the admin port, and the
//! request-head limit is exact. Real sockets against the real binary.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::upstream::Upstream;
use gatehouse_e2e::{configs, raw_request, Gatehouse};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "svc-token-123";
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Of each kind of quiet connection.
const EACH: usize = 50;
/// How long every deadline under test is; the quiet connections must outlive none of them.
const DEADLINE: &str = "5s";
/// Well within [`DEADLINE`]: how long the server may take to accept what was opened.
const SETTLE: Duration = Duration::from_secs(3);
/// Far longer than any deadline: a connection still open after this was held.
const HELD: Duration = Duration::from_secs(20);

fn config(upstream: &Upstream, server: &str) -> String {
    let deadlines = format!(
        r#"workers = 2
protocol_detect_timeout = "{DEADLINE}"
tls_handshake_timeout = "{DEADLINE}"
header_read_timeout = "{DEADLINE}"
http2_idle_timeout = "{DEADLINE}"
http2_keep_alive_interval = "{DEADLINE}"
http2_keep_alive_timeout = "{DEADLINE}"
{server}"#
    );
    format!(
        "{}{}{}",
        configs::server(&deadlines),
        configs::testapi_connection("up", &upstream.http_url(), ""),
        configs::caller("svc", TOKEN, &["up"], &["GET"], &["/echo/**"])
    )
}

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// Opens `count` connections that each send `opening` and then nothing.
async fn quiet(addr: &str, count: usize, opening: &[u8]) -> Vec<TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..count {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        if !opening.is_empty() {
            stream.write_all(opening).await.expect("write");
        }
        streams.push(stream);
    }
    streams
}

/// Waits for the server to close every stream (reading and dropping whatever it sends first);
/// returns how many were still open after [`HELD`].
async fn still_open<S: AsyncRead + Unpin + Send + 'static>(streams: Vec<S>) -> usize {
    let waits: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut sink = Vec::new();
                tokio::time::timeout(HELD, stream.read_to_end(&mut sink))
                    .await
                    .is_err()
            })
        })
        .collect();
    let mut open = 0;
    for wait in waits {
        if wait.await.unwrap() {
            open += 1;
        }
    }
    open
}

/// The value of one series in a scrape, 0 when absent.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Scrapes until `done` holds or [`SETTLE`] has passed; returns the last scrape.
async fn scrape_until(gh: &Gatehouse, done: impl Fn(&str) -> bool) -> String {
    let until = std::time::Instant::now() + SETTLE;
    loop {
        let scrape = gh.metrics().await;
        if done(&scrape) || std::time::Instant::now() > until {
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn open_caller_connections(scrape: &str) -> f64 {
    scrape
        .lines()
        .filter(|line| line.starts_with("gatehouse_worker_connections{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn echo_status(gh: &Gatehouse) -> u16 {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/up/echo/after", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

/// `P` (which may begin the HTTP/2 preface), the whole preface, and half a request head: 50 of
/// each fill the cap; the next connections are closed at once and counted, while the admin
/// port still answers; then every quiet connection is closed by its deadline and a normal
/// request goes through.
#[tokio::test(flavor = "multi_thread")]
async fn quiet_plain_connections_are_closed_and_the_cap_holds() {
    let upstream = Upstream::start().await;
    let cap = 3 * EACH;
    let gh = Gatehouse::start(&config(&upstream, &format!("max_connections = {cap}")));
    let data = addr(gh.data_url());

    let mut held = quiet(&data, EACH, b"P").await;
    held.extend(quiet(&data, EACH, PREFACE).await);
    held.extend(quiet(&data, EACH, b"GET /up/echo/x HTTP/1.1\r\nhost: x\r\n").await);
    // Over the cap: closed by the server at once (long before any deadline would).
    let over = quiet(&data, 5, b"").await;

    // The admin port answers with the data plane full.
    let refused_series = "gatehouse_connections_refused_total{reason=\"max_connections\"}";
    let scrape = scrape_until(&gh, |scrape| {
        open_caller_connections(scrape) == cap as f64 && sample(scrape, refused_series) >= 5.0
    })
    .await;
    assert_eq!(
        open_caller_connections(&scrape),
        cap as f64,
        "the data plane holds exactly the cap\n{scrape}"
    );
    let refused = sample(&scrape, refused_series);
    assert!(refused >= 5.0, "refusals not counted\n{scrape}");
    assert_eq!(
        still_open(over).await,
        0,
        "connections over the cap were kept"
    );

    assert_eq!(
        still_open(held).await,
        0,
        "quiet connections outlived their deadlines"
    );
    assert_eq!(
        echo_status(&gh).await,
        200,
        "a normal request after the flood"
    );
    let scrape = scrape_until(&gh, |scrape| open_caller_connections(scrape) == 0.0).await;
    assert_eq!(
        open_caller_connections(&scrape),
        0.0,
        "closed connections still counted"
    );
}

/// Over TLS: connections that never start the handshake, that finish it and say nothing (no
/// ALPN, `h2`, `http/1.1`), all closed at their deadlines; then an HTTPS request works.
#[tokio::test(flavor = "multi_thread")]
async fn quiet_tls_connections_are_closed() {
    let upstream = Upstream::start().await;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let gh = Gatehouse::start_with(
        &config(
            &upstream,
            "max_connections = 1000\n[server.tls]\ncert = \"server.pem\"\nkey = \"server.key\"",
        ),
        &[
            ("server.pem", &cert.pem()),
            ("server.key", &key.serialize_pem()),
        ],
        &[],
    );
    let data = addr(gh.data_url());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();

    let no_hello = quiet(&data, EACH, b"").await;
    let mut handshaken = Vec::new();
    for alpn in [&[][..], &[&b"h2"[..]][..], &[&b"http/1.1"[..]][..]] {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        for _ in 0..EACH {
            let tcp = TcpStream::connect(&data).await.unwrap();
            let name = rustls_pki_types_name();
            handshaken.push(connector.connect(name, tcp).await.expect("handshake"));
        }
    }
    let all = (4 * EACH) as f64;
    let scrape = scrape_until(&gh, |scrape| open_caller_connections(scrape) == all).await;
    assert_eq!(open_caller_connections(&scrape), all, "{scrape}");

    assert_eq!(
        still_open(no_hello).await,
        0,
        "handshakes never started were kept"
    );
    assert_eq!(
        still_open(handshaken).await,
        0,
        "connections silent after the handshake were kept"
    );

    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let base = gh
        .data_url()
        .replace("http://127.0.0.1", "https://localhost");
    let status = client
        .get(format!("{base}/up/echo/after"))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("send")
        .status();
    assert_eq!(status, 200);
}

fn rustls_pki_types_name() -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::try_from("localhost").unwrap()
}

/// A request head of exactly `max_header_bytes` reaches the provider; one byte more is
/// refused with 431 (hyper's read buffer let heads of about 1.75 times the limit through).
#[tokio::test(flavor = "multi_thread")]
async fn the_request_head_limit_is_exact() {
    let upstream = Upstream::start().await;
    let max = 4096;
    let gh = Gatehouse::start(&config(&upstream, &format!("max_header_bytes = {max}")));
    let head = |size: usize| {
        let start = format!(
            "GET /up/echo/head HTTP/1.1\r\nhost: x\r\nproxy-authorization: Bearer {TOKEN}\r\nconnection: close\r\nx-pad: "
        );
        let end = "\r\n\r\n";
        let head = format!("{start}{}{end}", "a".repeat(size - start.len() - end.len()));
        assert_eq!(head.len(), size);
        head
    };
    for (size, status) in [(max, "200"), (max + 1, "431"), (max * 7 / 4 - 1, "431")] {
        let response = raw_request(gh.data_url(), head(size).as_bytes()).await;
        let line = response.lines().next().unwrap_or_default();
        assert!(
            line.starts_with(&format!("HTTP/1.1 {status}")),
            "a {size}-byte head (limit {max}): {line}"
        );
    }
    assert_eq!(
        upstream.received().len(),
        1,
        "only the head within the limit was forwarded"
    );
}
