//! End-to-end: the response side, against a raw provider that misbehaves on purpose. A body
//! that breaks after its head is recorded as a failure; a caller that stalls its own body is
//! told so; access lines name provider, endpoint, trace, error codes and bytes, each key once;
//! provider framing (length lists, HTTP/1.0, transfer codings) reaches the caller clean.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::raw_provider::{write, RawProvider, Step};
use gatehouse_e2e::{configs, duplicate_keys, Gatehouse};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "response-side-token";
const READONLY: &str = "response-side-readonly";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The provider's answers, by path.
fn script(path: &str) -> Vec<Step> {
    let partial = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial";
    match path {
        "/early-close" => vec![write(partial), Step::Close],
        "/bad-chunk" => vec![
            write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"),
            Step::Hold,
        ],
        "/stall" => vec![write(partial), Step::Hold],
        "/upload" => vec![Step::Hold],
        "/missing" => vec![write(
            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 26\r\n\r\n{\"error\":\"no_such_record\"}",
        )],
        "/list-length" => vec![write("HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\nhello")],
        "/http10" => vec![
            write("HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"),
            Step::Close,
        ],
        "/gzip-chunked" => vec![write(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        )],
        "/gzip" => vec![
            write("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nabc"),
            Step::Close,
        ],
        _ => vec![write("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")],
    }
}

fn config(provider: &RawProvider, extra_server: &str) -> String {
    let url = provider.url();
    let server = configs::server(&format!(
        "request_timeout = \"5s\"\nreplay_buffer_bytes = 1024\n{extra_server}"
    ));
    let bearer =
        |token: &str| format!("credentials = {{ type = \"bearer\", token = \"{token}\" }}");
    let raw = configs::testapi_connection("raw", &url, &bearer("provider-secret"));
    let sf = format!(
        "[[connections]]\nid = \"sf\"\nprovider = \"salesforce\"\nbase_url = \"{url}\"\n{}\n",
        bearer("sf-secret")
    );
    let dead = configs::testapi_connection("dead", "http://127.0.0.1:9", "");
    let all = ["raw", "sf", "dead"];
    let svc = configs::caller("svc", TOKEN, &all, &["GET", "POST", "HEAD"], &["/**"]);
    let readonly = configs::caller("readonly", READONLY, &["raw"], &["GET"], &["/public"]);
    format!("{server}{raw}{sf}{dead}{svc}{readonly}")
}

async fn start(extra_server: &str) -> (RawProvider, Gatehouse) {
    let provider = RawProvider::start(script).await;
    let gh = Gatehouse::start(&config(&provider, extra_server));
    (provider, gh)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

fn get(gh: &Gatehouse, path: &str, id: &str) -> reqwest::RequestBuilder {
    client()
        .get(format!("{}{path}", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .header("x-request-id", id)
}

/// The access line of request `id`, parsed, once it has been written (a request is recorded
/// when its response body ends, and workers write their lines in batches).
async fn access_line(gh: &Gatehouse, id: &str) -> (String, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for line in gh.logs() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["target"] == "gatehouse::access" && v["request_id"] == id {
                return (line, v);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no access line for {id}; log:\n{}",
            gh.logs().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_breaks_after_its_head_is_recorded_as_a_failure() {
    let (_provider, gh) = start(r#"response_body_idle_timeout = "300ms""#).await;
    for (path, category, code) in [
        (
            "/early-close",
            "provider_unavailable",
            "upstream_body_failed",
        ),
        ("/bad-chunk", "provider_unavailable", "upstream_body_failed"),
        ("/stall", "upstream_timeout", "upstream_body_stalled"),
    ] {
        let id = format!("broken{}", path.replace('/', "-"));
        // The caller sees the break: in the body, or (when the break comes with the head's
        // first write) as a response cut off before its head was flushed.
        match get(&gh, &format!("/raw{path}"), &id).send().await {
            Ok(response) => {
                assert_eq!(response.status(), 200, "{path}: the head went out as sent");
                assert!(response.bytes().await.is_err(), "{path}: a body cut short");
            }
            Err(e) => assert!(e.is_request(), "{path}: {e}"),
        }
        let (_, line) = access_line(&gh, &id).await;
        assert_eq!(line["status"], 200, "{path}: {line}");
        assert_eq!(line["category"], category, "{path}: {line}");
        assert_eq!(line["code"], code, "{path}: {line}");
        let sent = line["bytes_out"].as_u64().unwrap();
        assert!(
            (5..=7).contains(&sent),
            "{path}: bytes before the break: {line}"
        );
    }
    let response = get(&gh, "/raw/whole", "whole").send().await.unwrap();
    assert_eq!(response.bytes().await.unwrap(), "hello");
    let (_, line) = access_line(&gh, "whole").await;
    assert_eq!(
        (&line["category"], &line["code"], &line["bytes_out"]),
        (&"none".into(), &"none".into(), &5.into())
    );
    let metrics = gh.metrics().await;
    let failed = metrics.lines().find(|l| {
        l.starts_with("gatehouse_requests_total{")
            && l.contains(r#"connection="raw""#)
            && l.contains(r#"status_class="2xx""#)
            && l.contains(r#"category="provider_unavailable""#)
    });
    assert!(
        failed.is_some_and(|l| l.ends_with(" 2")),
        "two broken bodies in the metrics: {metrics}"
    );
    assert!(
        gh.logs().iter().any(
            |l| l.contains("provider response body failed after its head")
                && l.contains("broken-early-close")
        ),
        "the break's cause is logged"
    );
}

/// Sends `head` and then `body_start` on a raw connection and leaves the body unfinished;
/// returns what came back and how long the answer took.
async fn stall_body(gh: &Gatehouse, body_start: &[u8]) -> (String, Duration) {
    let addr = gh.data_url().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /raw/upload HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer {TOKEN}\r\nX-Request-Id: stalled-{}\r\nTransfer-Encoding: chunked\r\n\r\n",
        body_start.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body_start).await.unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains("}}") {
        match tokio::time::timeout(Duration::from_secs(8), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_that_stalls_its_own_body_is_told_it_is_its_fault() {
    let (_provider, gh) = start(r#"body_read_timeout = "500ms""#).await;
    // Over the replay cap: the body is already streaming to the provider when it stalls.
    let mut streamed = format!("{:x}\r\n", 2000).into_bytes();
    streamed.extend_from_slice(&[b'a'; 2000]);
    streamed.extend_from_slice(b"\r\n");
    // Under it: the body is being buffered when it stalls.
    let buffered = b"5\r\nhello\r\n".to_vec();
    for body in [streamed, buffered] {
        let (raw, took) = stall_body(&gh, &body).await;
        assert!(
            raw.starts_with("HTTP/1.1 400") && raw.contains("\"code\":\"body_read_timeout\""),
            "{raw}"
        );
        assert!(
            took < Duration::from_secs(3),
            "told after body_read_timeout, not request_timeout: {took:?}"
        );
        let (_, line) = access_line(&gh, &format!("stalled-{}", body.len())).await;
        assert_eq!(
            (&line["category"], &line["code"]),
            (&"bad_request".into(), &"body_read_timeout".into()),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn access_lines_say_where_a_request_went_and_name_each_key_once() {
    let (_provider, gh) = start("").await;
    // Success, with a body in and a trace id from the caller.
    let response = client()
        .post(format!("{}/raw/v1/things?secret=1", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .header("x-request-id", "ok-line")
        .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
        .body("12345678")
        .send()
        .await
        .unwrap();
    assert_eq!(response.bytes().await.unwrap(), "hello");
    // A provider error: its own code is read, and the caller gets its bytes as sent.
    let response = get(&gh, "/raw/missing", "provider-error-line")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["x-gatehouse-error-category"],
        "not_found"
    );
    assert_eq!(
        response.headers()["x-gatehouse-error-code"],
        "no_such_record"
    );
    assert_eq!(response.headers()["x-gatehouse-retryable"], "false");
    assert_eq!(
        response.bytes().await.unwrap(),
        r#"{"error":"no_such_record"}"#
    );
    // Refused by policy.
    let response = client()
        .get(format!("{}/raw/private", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {READONLY}"))
        .header("x-request-id", "policy-line")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Blocked by the SOQL guard.
    let response = get(&gh, "/sf/services/data/v60.0/query", "soql-line")
        .query(&[("q", "SELECT Id, Name FROM Account")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // The provider cannot be reached.
    let response = get(&gh, "/dead/v1/things", "upstream-line")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);

    let (line, ok) = access_line(&gh, "ok-line").await;
    assert!(duplicate_keys(&line).is_empty(), "{line}");
    assert_eq!(ok["provider"], "testapi");
    assert_eq!(ok["endpoint"], "/v1/things", "the provider path, no query");
    assert_eq!(ok["trace_id"], TRACE);
    assert_eq!(ok["bytes_in"], 8);
    assert_eq!(ok["bytes_out"], 5);
    assert_eq!(ok["provider_error"], "none");
    for (id, status, category, code, provider_error) in [
        // A provider error counts by its category; the finer code says it was the provider's.
        (
            "provider-error-line",
            404,
            "not_found",
            "provider_error",
            "no_such_record",
        ),
        ("policy-line", 403, "forbidden", "path_not_granted", "none"),
        ("soql-line", 403, "guard_blocked", "soql_blocked", "none"),
        (
            "upstream-line",
            502,
            "provider_unavailable",
            "upstream_connect_refused",
            "none",
        ),
    ] {
        let (line, v) = access_line(&gh, id).await;
        assert_eq!(duplicate_keys(&line), Vec::<String>::new(), "{line}");
        assert_eq!(v["status"], status, "{line}");
        assert_eq!(v["category"], category, "{line}");
        assert_eq!(v["code"], code, "{line}");
        assert_eq!(v["provider_error"], provider_error, "{line}");
        assert!(
            v["trace_id"].as_str().is_some_and(|t| !t.is_empty()),
            "{line}"
        );
        assert!(v["bytes_out"].as_u64().is_some_and(|n| n > 0), "{line}");
        for key in [
            "provider",
            "endpoint",
            "bytes_in",
            "duration_ms",
            "connection",
            "caller",
        ] {
            assert!(v.get(key).is_some(), "{key} missing: {line}");
        }
    }
}

/// One HTTP/1.1 response off a raw connection: its head (lower-cased) and body.
async fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before a response: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let mut body = buf[head_end..].to_vec();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let done = |body: &[u8]| match length {
        Some(n) => body.len() >= n,
        None => body.ends_with(b"0\r\n\r\n"),
    };
    while !done(&body) {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("the body in time")
            .unwrap();
        assert!(n > 0, "closed in the middle of the body");
        body.extend_from_slice(&chunk[..n]);
    }
    (head, body)
}

async fn raw_get(stream: &mut TcpStream, path: &str) -> (String, Vec<u8>) {
    let request = format!(
        "GET /raw{path} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer {TOKEN}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream).await
}

async fn caller_connection() -> (RawProvider, Gatehouse, TcpStream) {
    let (provider, gh) = start("").await;
    let addr = gh.data_url().trim_start_matches("http://").to_owned();
    let stream = TcpStream::connect(&addr).await.unwrap();
    (provider, gh, stream)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_length_sent_as_a_list_goes_on_as_one_value() {
    let (_provider, _gh, mut stream) = caller_connection().await;
    let (head, body) = raw_get(&mut stream, "/list-length").await;
    let lengths: Vec<&str> = head
        .lines()
        .filter(|l| l.starts_with("content-length:"))
        .collect();
    assert_eq!(lengths, vec!["content-length: 5"], "{head}");
    assert_eq!(body, b"hello");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http10_provider_answer_keeps_the_callers_http11_connection_alive() {
    let (_provider, _gh, mut stream) = caller_connection().await;
    for round in 0..2 {
        let (head, body) = raw_get(&mut stream, "/http10").await;
        assert!(head.starts_with("http/1.1 200"), "round {round}: {head}");
        assert!(!head.contains("connection: close"), "round {round}: {head}");
        assert_eq!(body, b"ok", "round {round}");
    }
}

/// Transfer codings other than chunked are refused with a typed error, not relayed as if the
/// body were plain.
#[tokio::test(flavor = "multi_thread")]
async fn transfer_codings_other_than_chunked_are_refused_with_a_typed_error() {
    let (_provider, gh, mut stream) = caller_connection().await;
    for path in ["/gzip-chunked", "/gzip"] {
        let (head, body) = raw_get(&mut stream, path).await;
        let body = String::from_utf8_lossy(&body);
        assert!(head.starts_with("http/1.1 502"), "{path}: {head}");
        assert!(body.contains("upstream_transfer_coding"), "{path}: {body}");
    }
    // Over HTTP/2 too, where no transfer coding could be relayed at all.
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2
        .get(format!("{}/raw/gzip-chunked", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
}
