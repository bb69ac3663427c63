//! End-to-end: the real binary in front of a loopback upstream. Routing, header hygiene,
//! policy, SSRF shapes, body limits, slow and dead upstreams, metrics, hot reload, shutdown.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use gatehouse_e2e::upstream::Upstream;
use gatehouse_e2e::{configs, raw_request, token_hash, Gatehouse};
use std::time::Duration;

const TOKEN: &str = "svc-token-123";
const OTHER_TOKEN: &str = "other-token-456";

fn config(upstream: &str, extra_server: &str) -> String {
    let server = configs::server(&format!(
        "request_timeout = \"800ms\"\nmax_body_bytes = 4096\nreplay_buffer_bytes = 1024\nshutdown_grace = \"5s\"\n{extra_server}"
    ));
    let up = configs::testapi_connection(
        "up",
        &format!("{upstream}/base"),
        r#"credentials = { type = "bearer", token = "provider-secret-token" }"#,
    );
    let dead = configs::testapi_connection("dead", "http://127.0.0.1:9", "");
    let svc = format!(
        "[[callers]]\nid = \"svc\"\ntoken_sha256 = \"{}\"\n{}",
        token_hash(TOKEN),
        configs::grant(
            &["up", "dead"],
            &["GET", "POST"],
            &["/echo/**", "/slow/*", "/status/*", "/bytes/*", "/"],
            "max_body_bytes = 2048"
        )
    );
    let readonly = configs::caller(
        "readonly",
        OTHER_TOKEN,
        &["up"],
        &["GET"],
        &["/echo/public"],
    );
    format!("{server}{up}{dead}{svc}{readonly}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// Sends a request with an optional `Proxy-Authorization` value; returns status and envelope.
async fn call(method: reqwest::Method, url: &str, auth: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = client().request(method, url);
    if let Some(auth) = auth {
        request = request.header("proxy-authorization", auth);
    }
    error_of(request.send().await.expect("send")).await
}

async fn error_of(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, body["error"].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn forwards_with_clean_headers_and_injected_credential() {
    let upstream = Upstream::start().await;
    let gh = Gatehouse::start(&config(&upstream.http_url(), ""));
    let response = client()
        .get(format!("{}/up/echo/a%20b?x=1&y=%2F", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .header("authorization", "Bearer caller-should-not-pass")
        .header("cookie", "session=caller")
        .header("connection", "x-hop")
        .header("x-hop", "drop-me")
        .header("x-custom", "keep-me")
        .header("x-request-id", "req-abc")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-abc");
    assert!(
        response.headers().get("set-cookie").is_none(),
        "provider cookies stay with gatehouse"
    );
    let got = upstream.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(
        r.target, "/base/echo/a%20b?x=1&y=%2F",
        "path and query forwarded verbatim under the base path"
    );
    assert_eq!(
        r.header("authorization"),
        Some("Bearer provider-secret-token")
    );
    assert_eq!(r.header("cookie"), None);
    assert_eq!(r.header("proxy-authorization"), None);
    assert_eq!(r.header("x-hop"), None);
    assert_eq!(r.header("x-custom"), Some("keep-me"));
    assert_eq!(r.header("x-request-id"), Some("req-abc"));
    assert_eq!(r.header("host"), Some(upstream.addr.to_string().as_str()));
    let tp = r.header("traceparent").expect("traceparent forwarded");
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && !tp.contains("00f067aa0ba902b7")
    );

    // A POST body arrives intact (buffered path) and a chunked one too (streamed path).
    let body = vec![b'z'; 1500];
    let response = client()
        .post(format!("{}/up/echo/post", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .body(body.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    let chunked = format!(
        "POST /up/echo/chunked HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n258\r\n{}\r\n258\r\n{}\r\n0\r\n\r\n",
        "1".repeat(600),
        "2".repeat(600)
    );
    let raw = raw_request(gh.data_url(), chunked.as_bytes()).await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let got = upstream.received();
    assert_eq!(got[1].body, body);
    assert_eq!(got[2].body.len(), 1200);
    assert!(
        got[2].header("content-length").is_none() || got[2].header("transfer-encoding").is_none()
    );

    // Plain-text HTTP/2 (prior knowledge) is served as well as HTTP/1.1.
    let h2c = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");
    let response = h2c
        .get(format!("{}/up/echo/h2c", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("h2c request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(upstream.received()[3].target, "/base/echo/h2c");
}

#[tokio::test(flavor = "multi_thread")]
async fn caller_identity_and_policy_deny_by_default() {
    let upstream = Upstream::start().await;
    let gh = Gatehouse::start(&config(&upstream.http_url(), ""));
    let url = |p: &str| format!("{}{p}", gh.data_url());

    let (status, err) = call(reqwest::Method::GET, &url("/up/echo/x"), None).await;
    assert_eq!(
        (status, err["category"].as_str()),
        (407, Some("unauthenticated"))
    );
    assert_eq!(err["code"], "missing_credentials");
    assert!(err["request_id"].as_str().is_some_and(|id| !id.is_empty()));

    let (status, err) = call(
        reqwest::Method::GET,
        &url("/up/echo/x"),
        Some("Bearer wrong"),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (407, Some("unknown_caller"))
    );

    let ro = format!("Bearer {OTHER_TOKEN}");
    let ok = client()
        .get(url("/up/echo/public"))
        .header("proxy-authorization", &ro)
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 200);
    let (status, err) = call(reqwest::Method::GET, &url("/up/echo/private"), Some(&ro)).await;
    assert_eq!(
        (status, err["category"].as_str(), err["code"].as_str()),
        (403, Some("forbidden"), Some("path_not_granted"))
    );
    assert_eq!(err["connection"], "up");
    assert_eq!(err["provider"], "testapi");
    let (status, err) = call(reqwest::Method::POST, &url("/up/echo/public"), Some(&ro)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (403, Some("method_not_granted"))
    );
    let (status, err) = call(reqwest::Method::GET, &url("/dead/"), Some(&ro)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (403, Some("connection_not_granted"))
    );
    let (status, err) = call(reqwest::Method::GET, &url("/nope/echo"), Some(&ro)).await;
    assert_eq!((status, err["category"].as_str()), (404, Some("not_found")));

    // Only the allowed request reached the provider.
    assert_eq!(upstream.received().len(), 1);
    // Error bodies never echo what the caller sent as a secret.
    for line in gh.logs() {
        assert!(
            !line.contains("wrong")
                && !line.contains(OTHER_TOKEN)
                && !line.contains("provider-secret-token"),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ssrf_shapes_never_reach_another_host() {
    let upstream = Upstream::start().await;
    let elsewhere = Upstream::start().await;
    let gh = Gatehouse::start(&config(&upstream.http_url(), ""));
    let auth = format!("Proxy-Authorization: Bearer {TOKEN}\r\n");
    let other = elsewhere.addr.to_string();
    let attempts = [
        format!(
            "GET http://{other}/echo HTTP/1.1\r\nHost: {other}\r\n{auth}Connection: close\r\n\r\n"
        ),
        format!("GET /up/../../echo HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"),
        format!(
            "GET /up/echo/%2e%2e/%2e%2e/x HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
        ),
        format!(
            "GET /up/echo%2f..%2f..%2fx HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
        ),
        format!("GET /up//{other}/echo HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"),
        format!("GET /up/echo\\..\\x HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"),
    ];
    for attempt in &attempts {
        let raw = raw_request(gh.data_url(), attempt.as_bytes()).await;
        assert!(
            raw.starts_with("HTTP/1.1 400"),
            "expected 400 for {attempt:?}, got {raw}"
        );
        assert!(raw.contains("\"category\":\"bad_request\""), "{raw}");
    }
    // A spoofed Host header is ignored: the request goes to the configured upstream.
    let spoof =
        format!("GET /up/echo/host HTTP/1.1\r\nHost: {other}\r\n{auth}Connection: close\r\n\r\n");
    let raw = raw_request(gh.data_url(), spoof.as_bytes()).await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert_eq!(upstream.received().len(), 1);
    assert_eq!(
        upstream.received()[0].header("host"),
        Some(upstream.addr.to_string().as_str())
    );
    assert!(
        elsewhere.received().is_empty(),
        "no request may reach a host that is not configured"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_are_refused() {
    let upstream = Upstream::start().await;
    let gh = Gatehouse::start(&config(&upstream.http_url(), ""));
    // Over the grant's 2048 with a declared length: refused before the body is read.
    let (status, err) = error_of(
        client()
            .post(format!("{}/up/echo/big", gh.data_url()))
            .header("proxy-authorization", format!("Bearer {TOKEN}"))
            .body(vec![b'x'; 3000])
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        (status, err["category"].as_str()),
        (413, Some("payload_too_large"))
    );
    // Chunked, no declared length, over the limit: refused while reading.
    let chunk = "y".repeat(1000);
    let mut req = format!("POST /up/echo/big HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    for _ in 0..3 {
        req.push_str(&format!("3e8\r\n{chunk}\r\n"));
    }
    req.push_str("0\r\n\r\n");
    let raw = raw_request(gh.data_url(), req.as_bytes()).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(
        upstream.received().iter().all(|r| r.body.len() <= 2048),
        "nothing over the limit reached the provider whole"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_dead_upstreams_get_typed_errors() {
    let upstream = Upstream::start().await;
    let gh = Gatehouse::start(&config(&upstream.http_url(), ""));
    let auth = format!("Bearer {TOKEN}");
    let (status, err) = call(
        reqwest::Method::GET,
        &format!("{}/up/slow/3000", gh.data_url()),
        Some(&auth),
    )
    .await;
    assert_eq!(
        (status, err["category"].as_str()),
        (504, Some("upstream_timeout"))
    );
    assert_eq!(err["retryable"], true);
    let (status, err) = call(
        reqwest::Method::GET,
        &format!("{}/dead/", gh.data_url()),
        Some(&auth),
    )
    .await;
    assert_eq!(
        (status, err["category"].as_str()),
        (502, Some("provider_unavailable"))
    );
    // A caller that announces a body and trickles it gets a typed error, not a stuck request.
    let trickle = format!("POST /up/echo/slow-body HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\nConnection: close\r\n\r\n0123456789");
    let raw = raw_request(gh.data_url(), trickle.as_bytes()).await;
    assert!(
        raw.starts_with("HTTP/1.1 400") && raw.contains("body_read_timeout"),
        "{raw}"
    );
    // A caller that hangs up while its request waits on the provider is still counted and
    // logged: status 499, category caller_cancelled.
    {
        use tokio::io::AsyncWriteExt;
        let mut stream =
            tokio::net::TcpStream::connect(gh.data_url().trim_start_matches("http://"))
                .await
                .expect("connect");
        let request = format!(
            "GET /up/slow/3000 HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer {TOKEN}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cancelled = r#"gatehouse_requests_total{connection="up",provider="testapi",caller="svc",method="GET",status_class="4xx",category="caller_cancelled"} 1"#;
    let logged = |gh: &Gatehouse| {
        gh.logs()
            .iter()
            .any(|l| l.contains(r#""status":499"#) && l.contains("caller_cancelled"))
    };
    let mut seen = false;
    for _ in 0..50 {
        if gh.metrics().await.contains(cancelled) && logged(&gh) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen,
        "no 499 in the metrics and access log: {}",
        gh.metrics().await
    );
    // Provider errors pass through untouched.
    let response = client()
        .get(format!("{}/up/status/418", gh.data_url()))
        .header("proxy-authorization", &auth)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 418);

    let metrics = gh.metrics().await;
    assert!(metrics.contains(r#"gatehouse_requests_total{connection="up",provider="testapi",caller="svc",method="GET",status_class="5xx",category="upstream_timeout"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"category="provider_unavailable""#));
    assert!(metrics.contains("gatehouse_request_duration_seconds_bucket"));
    assert!(!metrics.contains("provider-secret-token") && !metrics.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_tls_is_verified_against_the_connection_ca() {
    let upstream = Upstream::start_tls().await;
    let ca = upstream.ca_pem.clone().expect("tls upstream has a CA");
    let policy = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[[connections]]
id = "trusted"
provider = "custom"
base_url = "{url}"
ca_file = "ca.pem"
[connections.profile]
name = "tlsapi"

[[connections]]
id = "untrusted"
provider = "custom"
base_url = "{url}"
[connections.profile]
name = "tlsapi"

[[callers]]
id = "svc"
token_sha256 = "{hash}"
[[callers.grants]]
connections = ["trusted", "untrusted"]
methods = ["GET"]
paths = ["/**"]
"#,
        url = upstream.https_url(),
        hash = token_hash(TOKEN)
    );
    // ca_file is relative to the working directory the harness uses (the config's folder).
    let gh = Gatehouse::start_with(&policy, &[("ca.pem", &ca)], &[]);
    let auth = format!("Bearer {TOKEN}");
    let ok = client()
        .get(format!("{}/trusted/echo", gh.data_url()))
        .header("proxy-authorization", &auth)
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 200);
    let (status, err) = call(
        reqwest::Method::GET,
        &format!("{}/untrusted/echo", gh.data_url()),
        Some(&auth),
    )
    .await;
    assert_eq!(
        (status, err["category"].as_str()),
        (502, Some("provider_unavailable")),
        "an unknown CA must fail verification"
    );
    assert_eq!(upstream.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_drains_in_flight_requests() {
    let upstream = Upstream::start().await;
    let mut gh = Gatehouse::start(&config(&upstream.http_url(), ""));
    let url = format!("{}/up/slow/600", gh.data_url());
    let in_flight = tokio::spawn(async move {
        client()
            .get(url)
            .header("proxy-authorization", format!("Bearer {TOKEN}"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    // Let the request reach the upstream, then ask Gatehouse to stop.
    for _ in 0..100 {
        if !upstream.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gh.signal("TERM");
    let status = in_flight
        .await
        .expect("join")
        .expect("in-flight request completed");
    assert_eq!(
        status, 200,
        "the in-flight request finishes during the drain"
    );
    let exit = tokio::task::spawn_blocking(move || {
        let status = gh.wait_exit(Duration::from_secs(10));
        (status, gh)
    })
    .await
    .expect("join");
    assert!(
        exit.0.is_some_and(|s| s.success()),
        "gatehouse exits cleanly after draining"
    );
    // New connections are refused once it has stopped.
    assert!(client()
        .get(format!("{}/up/echo/x", exit.1.data_url()))
        .send()
        .await
        .is_err());
}

fn policy_file(paths: &str) -> String {
    format!(
        r#"
[[callers]]
id = "svc"
token_sha256 = "{hash}"
[[callers.grants]]
connections = ["up"]
methods = ["GET"]
paths = [{paths}]
"#,
        hash = token_hash(TOKEN)
    )
}

fn config_with_policy_file(upstream: &str) -> String {
    format!(
        "policy = \"policy.toml\"\n{}{}",
        configs::server("policy_poll_interval = \"100ms\""),
        configs::testapi_connection("up", upstream, "")
    )
}

async fn status_of(gh: &Gatehouse, path: &str) -> u16 {
    client()
        .get(format!("{}{path}", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn eventually(gh: &Gatehouse, path: &str, want: u16) -> bool {
    for _ in 0..100 {
        if status_of(gh, path).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_hot_reload_keeps_last_good_policy_on_a_broken_file() {
    let upstream = Upstream::start().await;
    let gh = Gatehouse::start_with(
        &config_with_policy_file(&upstream.http_url()),
        &[("policy.toml", &policy_file("\"/a\""))],
        &[],
    );
    assert_eq!(status_of(&gh, "/up/a").await, 200);
    assert_eq!(status_of(&gh, "/up/b").await, 403);

    // A good change is picked up by polling.
    std::fs::write(gh.dir().join("policy.toml"), policy_file("\"/b\"")).expect("write policy");
    assert!(eventually(&gh, "/up/b", 200).await, "new policy applied");
    assert_eq!(status_of(&gh, "/up/a").await, 403);

    // A broken file (unknown connection, bad pattern) is rejected; the last good policy stays.
    std::fs::write(
        gh.dir().join("policy.toml"),
        policy_file("\"no-slash\"").replace("[\"up\"]", "[\"ghost\"]"),
    )
    .expect("write");
    let mut rejected = false;
    for _ in 0..100 {
        if gh
            .metrics()
            .await
            .contains(r#"gatehouse_policy_reloads_total{outcome="error"}"#)
        {
            rejected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rejected, "the broken policy was seen and rejected");
    assert_eq!(
        status_of(&gh, "/up/b").await,
        200,
        "last good policy still in force"
    );
    let logs = gh.logs().join("\n");
    assert!(
        logs.contains("policy.toml: callers[0].grants[0].connections[0]"),
        "error names its location:\n{logs}"
    );
    assert!(logs.contains("policy.toml: callers[0].grants[0].paths[0]"));
    // Every line is JSON with each key once (the rejection line once had two `message`s).
    for line in gh.logs() {
        assert!(
            gatehouse_e2e::duplicate_keys(&line).is_empty(),
            "duplicate keys in {line}"
        );
    }

    // Not syntactically TOML either: still rejected.
    std::fs::write(gh.dir().join("policy.toml"), "[[callers]\nid = ").expect("write");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(status_of(&gh, "/up/b").await, 200);

    // SIGHUP reloads at once (the poll would too; the point is that the signal is handled
    // and never kills the process).
    std::fs::write(gh.dir().join("policy.toml"), policy_file("\"/a\", \"/b\"")).expect("write");
    gh.signal("HUP");
    assert!(eventually(&gh, "/up/a", 200).await);
    assert_eq!(status_of(&gh, "/up/b").await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_command_lists_every_error_with_its_location() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("gatehouse.toml"),
        r#"
policy = "policy.toml"
[[connections]]
id = "Bad"
provider = "nope"
base_url = "https://x.example"
"#,
    )
    .expect("write");
    std::fs::write(
        dir.path().join("policy.toml"),
        "[[callers]]\nid = \"a\"\ntoken_sha256 = \"zz\"\n",
    )
    .expect("write");
    let (code, out, _) =
        gatehouse_e2e::run_cli(&["check", "--config", "gatehouse.toml"], dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("gatehouse.toml: connections[0].id"), "{out}");
    assert!(
        out.contains("gatehouse.toml: connections[0].provider"),
        "{out}"
    );
    assert!(
        out.contains("policy.toml: callers[0].token_sha256"),
        "{out}"
    );
    assert!(out.contains("3 error(s)"), "{out}");

    std::fs::write(dir.path().join("gatehouse.toml"), "[server]\nlisten = 5\n").expect("write");
    let (code, out, _) =
        gatehouse_e2e::run_cli(&["check", "--config", "gatehouse.toml"], dir.path());
    assert_eq!(code, 1);
    assert!(out.contains("gatehouse.toml:2:"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kept_alive_connections_are_spread_over_the_workers() {
    let upstream = Upstream::start().await;
    let gh = Gatehouse::start(&config(&upstream.http_url(), "workers = 2"));
    // Twelve callers connecting at once (a pool warming up), each then holding its keep-alive
    // connection (a client per connection): left to the kernel, a burst like this tends to land
    // on whichever worker wakes first.
    let url = format!("{}/up/echo/x", gh.data_url());
    let mut connecting = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let url = url.clone();
        connecting.spawn(async move {
            let client = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client");
            let response = client
                .get(url)
                .header("proxy-authorization", format!("Bearer {TOKEN}"))
                .send()
                .await
                .expect("send");
            assert_eq!(response.status(), 200);
            response.bytes().await.expect("body");
            client
        });
    }
    let clients = connecting.join_all().await;
    let metrics = gh.metrics().await;
    let open = |worker: &str| -> i64 {
        let prefix = format!("gatehouse_worker_connections{{worker=\"{worker}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no gauge for worker {worker}:\n{metrics}"))
    };
    let (a, b) = (open("0"), open("1"));
    assert_eq!(a + b, 12, "{metrics}");
    assert!((a - b).abs() <= 2, "worker 0 holds {a}, worker 1 holds {b}");
    drop(clients);
}

/// Runs `promtool check metrics` on a scrape. promtool comes with Debian's `prometheus`
/// package, which `.ci/run` installs; without it this test fails and says so (it never skips).
fn promtool_check(scrape: &str) -> (bool, String) {
    use std::io::Write;
    let spawned = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = spawned.unwrap_or_else(|e| {
        panic!("promtool not runnable ({e}): install Debian's prometheus package")
    });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.trim().is_empty(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_pass_promtool_with_every_family_present() {
    let upstream = Upstream::start().await;
    let gh = Gatehouse::start(&config(&upstream.http_url(), ""));
    // Traffic of each kind, so the request families have series: allowed, denied, failed.
    assert_eq!(status_of(&gh, "/up/echo/x").await, 200);
    assert_eq!(status_of(&gh, "/up/nowhere").await, 403);
    assert_eq!(status_of(&gh, "/dead/echo/x").await, 502);
    // The provider-side failure is in the log at warn, with its code, the request id and the
    // cause chain (here: nothing listens on the dead connection's port).
    let mut warned = None;
    for _ in 0..50 {
        warned = gh
            .logs()
            .into_iter()
            .find(|l| l.contains("provider exchange failed"));
        if warned.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = warned.expect("a warn line for the failed exchange");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "WARN", "{line}");
    assert_eq!(v["code"], "upstream_connect_refused", "{line}");
    assert_eq!(v["connection"], "dead", "{line}");
    assert!(
        v["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{line}"
    );
    assert!(
        v["cause"]
            .as_str()
            .is_some_and(|c| c.to_lowercase().contains("refused")),
        "{line}"
    );
    let scrape = gh.metrics().await;
    let (clean, lint) = promtool_check(&scrape);
    assert!(
        clean,
        "promtool check metrics:\n{lint}\n--- scrape:\n{scrape}"
    );
    for family in [
        "gatehouse_requests_total{",
        "gatehouse_request_duration_seconds_bucket{",
        "gatehouse_requests_in_flight ",
        "gatehouse_worker_connections{",
    ] {
        assert!(scrape.contains(family), "{family} missing:\n{scrape}");
    }
}
