//! End-to-end: policy that means what it says (issue 13). The real binary in front of a
//! recording upstream: `*` and trailing slashes, dot segments with path parameters, double
//! encoding and lookalike dots, method overrides, methods never forwarded, header names that
//! servers merge, and provider cookies in either spelling.

// Test code: a failed unwrap is a failed test with its message, and the real processes and
// sockets these tests drive run on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use bytes::Bytes;
use gatehouse_e2e::upstream::Upstream;
use gatehouse_e2e::{configs, raw_request, Gatehouse};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

const TOKEN: &str = "svc-token-123";

fn config(upstream: &str, cookies: &str) -> String {
    let up = configs::testapi_connection(
        "up",
        &format!("{upstream}/base"),
        r#"credentials = { type = "bearer", token = "provider-secret-token" }"#,
    );
    let others = format!(
        r#"[[connections]]
id = "sf"
provider = "salesforce"
base_url = "{upstream}/sf"
credentials = {{ type = "bearer", token = "sf-secret-token" }}

[[connections]]
id = "cookies"
provider = "custom"
base_url = "{cookies}"
[connections.profile]
name = "cookieapi"
"#
    );
    let grants = [
        configs::grant(&["up"], &["*"], &["/any/**"], ""),
        configs::grant(&["up"], &["PROPFIND"], &["/dav/**"], ""),
        configs::grant(
            &["sf"],
            &["GET", "POST", "PATCH"],
            &["/services/data/*/sobjects/**"],
            "",
        ),
        configs::grant(&["cookies"], &["GET"], &["/**"], ""),
    ];
    let svc = configs::caller("svc", TOKEN, &["up"], &["GET"], &["/a/*", "/pub/**"]);
    format!(
        "{}{up}{others}{svc}{}",
        configs::server("request_timeout = \"5s\""),
        grants.concat()
    )
}

async fn start() -> (Upstream, Gatehouse) {
    let upstream = Upstream::start().await;
    let cookies = cookie_provider().await;
    let gh = Gatehouse::start(&config(&upstream.http_url(), &cookies));
    (upstream, gh)
}

/// A provider that sets its session cookie in both spellings on every answer.
async fn cookie_provider() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    http::Response::builder()
                        .header("content-type", "text/plain")
                        .header("set-cookie", "sid=provider-session")
                        .header("set-cookie2", "sid2=provider-session; Version=1")
                        .body(Full::new(Bytes::from_static(b"hello")))
                        .map_err(|e| e.to_string())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// Sends `method` to `path` on Gatehouse as the granted caller: status and error envelope.
async fn call(gh: &Gatehouse, method: &str, path: &str) -> (u16, serde_json::Value) {
    call_with(gh, method, path, &[]).await
}

async fn call_with(
    gh: &Gatehouse,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client()
        .request(method, format!("{}{path}", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {TOKEN}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, body["error"].clone())
}

/// Sends a raw request line (for targets and methods a client will not produce): the response.
async fn raw(gh: &Gatehouse, method: &[u8], target: &[u8]) -> String {
    let mut request = Vec::new();
    request.extend_from_slice(method);
    request.push(b' ');
    request.extend_from_slice(target);
    request.extend_from_slice(
        format!(" HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    raw_request(gh.data_url(), &request).await
}

fn targets(upstream: &Upstream) -> Vec<String> {
    upstream.received().into_iter().map(|r| r.target).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn star_is_one_non_empty_segment_and_a_trailing_slash_must_be_granted() {
    let (upstream, gh) = start().await;
    // `/a/` is the collection on many providers; a grant on `/a/*` is for one item.
    let (status, err) = call(&gh, "GET", "/up/a/").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (403, Some("path_not_granted"))
    );
    assert_eq!(call(&gh, "GET", "/up/a/1").await.0, 200);
    let (status, err) = call(&gh, "GET", "/up/a/1/").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (403, Some("path_not_granted"))
    );
    // `**` covers its subtree, slash or not.
    assert_eq!(call(&gh, "GET", "/up/pub/").await.0, 200);
    assert_eq!(call(&gh, "GET", "/up/pub/x/").await.0, 200);
    assert_eq!(
        targets(&upstream),
        vec!["/base/a/1", "/base/pub/", "/base/pub/x/"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dot_segments_with_parameters_double_encoding_and_lookalike_dots_are_refused() {
    let (upstream, gh) = start().await;
    let attempts: [&[u8]; 8] = [
        b"/up/pub/..;/admin",
        b"/up/pub/%2e%2e;/admin",
        b"/up/pub/..%3bjsessionid=1/admin",
        b"/up/pub/;x/admin",
        b"/up/pub/%252e%252e/admin",
        b"/up/pub/%EF%BC%8E%EF%BC%8E/admin",
        // U+FF0E FULLWIDTH FULL STOP twice, as raw UTF-8 on the request line.
        "/up/pub/\u{ff0e}\u{ff0e}/admin".as_bytes(),
        b"/up/pub/%u002e%u002e/admin",
    ];
    for target in attempts {
        let response = raw(&gh, b"GET", target).await;
        assert!(
            response.starts_with("HTTP/1.1 400"),
            "{}: {response}",
            String::from_utf8_lossy(target)
        );
        // hyper may refuse raw UTF-8 itself; everything it lets through, Gatehouse refuses.
        if target.is_ascii() {
            assert!(
                response.contains("\"code\":\"path_traversal\""),
                "{response}"
            );
        }
    }
    assert!(
        targets(&upstream).is_empty(),
        "nothing reached the provider: {:?}",
        targets(&upstream)
    );
    // A parameter on an ordinary segment, and a literal '%', still pass.
    assert_eq!(call(&gh, "GET", "/up/pub/a;v=1/b").await.0, 200);
    assert_eq!(call(&gh, "GET", "/up/pub/100%25").await.0, 200);
    assert_eq!(
        targets(&upstream),
        vec!["/base/pub/a;v=1/b", "/base/pub/100%25"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_and_connect_are_never_forwarded_and_other_methods_must_be_named() {
    let (upstream, gh) = start().await;
    // Even under `methods = ["*"]`: a TRACE echo would hand the injected credential back.
    let (status, err) = call(&gh, "TRACE", "/up/any/x").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (403, Some("method_not_forwarded"))
    );
    let response = raw(&gh, b"CONNECT", b"/up/any/x").await;
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(response.contains("method_not_forwarded"), "{response}");
    // `*` is the shared set; PROPFIND needs a grant that names it (this caller's is for
    // `/dav/**` only, so the path is what is not granted).
    let (status, err) = call(&gh, "PROPFIND", "/up/any/x").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (403, Some("path_not_granted"))
    );
    let (status, err) = call(&gh, "MKCOL", "/up/any/x").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (403, Some("method_not_granted"))
    );
    assert_eq!(call(&gh, "PROPFIND", "/up/dav/x").await.0, 200);
    assert_eq!(call(&gh, "DELETE", "/up/any/x").await.0, 200);
    let got = upstream.received();
    let seen: Vec<(&str, &str)> = got
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![("PROPFIND", "/base/dav/x"), ("DELETE", "/base/any/x")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_or_lower_case_method_is_refused_before_it_is_logged() {
    let (upstream, gh) = start().await;
    let huge = vec![b'A'; 60_000];
    for method in [huge.as_slice(), b"get", b"Delete"] {
        let response = raw(&gh, method, b"/up/any/x").await;
        assert!(response.starts_with("HTTP/1.1 400"), "{response:.300}");
        assert!(
            response.contains("\"code\":\"invalid_method\""),
            "{response:.300}"
        );
    }
    assert!(upstream.received().is_empty());
    // The access log shows `invalid`, never the method itself.
    let mut logged = 0;
    for _ in 0..50 {
        let logs = gh.logs();
        assert!(
            logs.iter()
                .all(|l| l.len() < 4096 && !l.contains("AAAAAAAAAA")),
            "a log line carries the method"
        );
        logged = logs
            .iter()
            .filter(|l| l.contains("\"method\":\"invalid\"") && l.contains("\"status\":400"))
            .count();
        if logged == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(logged, 3, "{:#?}", gh.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn method_overrides_cannot_widen_a_grant() {
    let (upstream, gh) = start().await;
    // Override headers are dropped: the provider runs the method the policy saw.
    let overrides = [
        ("x-http-method-override", "DELETE"),
        ("x-http-method", "DELETE"),
        ("x-method-override", "DELETE"),
    ];
    assert_eq!(call_with(&gh, "GET", "/up/pub/x", &overrides).await.0, 200);
    let got = upstream.received();
    assert_eq!(got.len(), 1);
    for (name, _) in overrides {
        assert_eq!(got[0].header(name), None, "{name} reached the provider");
    }
    // Salesforce runs `POST ?_HttpMethod=DELETE` as a DELETE, which this caller may not send.
    let record = "/sf/services/data/v60.0/sobjects/Account/001";
    for query in [
        "_HttpMethod=DELETE",
        "_httpmethod=DELETE",
        "a=1&%5FHttpMethod=DELETE",
    ] {
        let (status, err) = call(&gh, "POST", &format!("{record}?{query}")).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (403, Some("method_not_granted")),
            "{query}"
        );
    }
    let (status, err) = call(&gh, "POST", &format!("{record}?_HttpMethod=patch")).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("invalid_method_override"))
    );
    assert_eq!(
        upstream.received().len(),
        1,
        "no override reached the provider"
    );
    // A granted override passes, as sent.
    assert_eq!(
        call(&gh, "POST", &format!("{record}?_HttpMethod=PATCH"))
            .await
            .0,
        200
    );
    // A provider whose profile names no override parameter gets the query as it is.
    assert_eq!(
        call(&gh, "GET", "/up/pub/x?_HttpMethod=DELETE").await.0,
        200
    );
    assert_eq!(
        targets(&upstream)[1..],
        [
            "/sf/services/data/v60.0/sobjects/Account/001?_HttpMethod=PATCH",
            "/base/pub/x?_HttpMethod=DELETE"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_that_servers_merge_or_reroute_on_do_not_pass() {
    let (upstream, gh) = start().await;
    // `X_Api_Key` is `X-Api-Key` to a CGI-style server: refused, and named.
    let (status, err) = call_with(&gh, "GET", "/up/pub/x", &[("X_Api_Key", "mine")]).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("header_name_underscore"))
    );
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("x_api_key") && !message.contains("mine"),
        "{message}"
    );
    assert!(upstream.received().is_empty());
    // Forwarding and rewrite headers are dropped.
    let rerouting = [
        ("x-forwarded-host", "evil.example"),
        ("forwarded", "host=evil.example"),
        ("x-original-url", "/admin"),
        ("x-rewrite-url", "/admin"),
        ("x-custom", "kept"),
    ];
    assert_eq!(call_with(&gh, "GET", "/up/pub/x", &rerouting).await.0, 200);
    let got = upstream.received();
    for (name, _) in &rerouting[..4] {
        assert_eq!(got[0].header(name), None, "{name} reached the provider");
    }
    assert_eq!(got[0].header("x-custom"), Some("kept"));
    // Provider cookies, in either spelling, stay with Gatehouse.
    let response = client()
        .get(format!("{}/cookies/x", gh.data_url()))
        .header("proxy-authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("set-cookie").is_none());
    assert!(response.headers().get("set-cookie2").is_none());
    assert_eq!(response.text().await.unwrap_or_default(), "hello");
}
