use super::*;
use crate::decode::MAX_CHUNK_LINE;
use crate::MAX_HEADERS;
use http::{HeaderValue, StatusCode, Version};
use http_body_util::{Empty, Full};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, DuplexStream};

fn full(bytes: impl Into<Bytes>) -> RequestBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn empty() -> RequestBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body read without a pool: its connection is closed at the end.
impl<S: Send> Recycle<S> for () {
    fn recycle(self, _conn: Conn<S>) {}
}

type Pool = Arc<Mutex<Vec<Conn<DuplexStream>>>>;

struct Back(Pool);

impl Recycle<DuplexStream> for Back {
    fn recycle(self, conn: Conn<DuplexStream>) {
        self.0.lock().unwrap().push(conn);
    }
}

fn host() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("p.example"));
    headers
}

/// What the provider received, the response (status, headers, body or body error) or the
/// error, and whether the connection was recycled.
type Exchanged = (String, Result<Response3, String>, bool);
type Response3 = (StatusCode, HeaderMap, Result<Bytes, String>);

/// Runs one exchange against a scripted provider: returns what the provider received,
/// the response (status, headers, body or body error) and whether the connection was
/// recycled. The provider writes `reply` in pieces of `piece` bytes.
async fn exchange(
    method: Method,
    mut headers: HeaderMap,
    body: RequestBody,
    reply: &'static [u8],
    piece: usize,
) -> Exchanged {
    let (client, mut server) = tokio::io::duplex(64 * 1024);
    let provider = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Read until the request looks complete (a blank line, and any body after it).
        loop {
            let n = server.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
            if n == 0 || request_done(&seen) {
                break;
            }
        }
        for part in reply.chunks(piece) {
            // The client may give up early (a head too large): that ends the reply.
            if server.write_all(part).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        // Keep the stream open so EOF is not mistaken for the end of a body.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        String::from_utf8_lossy(&seen).into_owned()
    });
    let pool: Pool = Arc::default();
    let conn = Conn::new(client, 8192);
    let outcome = match conn
        .send(&method, "/a?b=c", &mut headers, body, Back(pool.clone()))
        .await
    {
        Ok(response) => {
            let status = response.status();
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .map_err(|e| e.to_string());
            Ok((status, parts.headers, body))
        }
        Err(failed) => Err(failed.error.to_string()),
    };
    let seen = provider.await.unwrap();
    let recycled = !pool.lock().unwrap().is_empty();
    (seen, outcome, recycled)
}

/// [`exchange`] for a request without a body.
async fn answer(method: Method, reply: &'static [u8], piece: usize) -> Exchanged {
    exchange(method, host(), empty(), reply, piece).await
}

/// Sends a request with a body to a provider that answers 200 with no body: what the
/// provider received, and whether the connection was recycled.
async fn upload(method: Method, headers: HeaderMap, body: RequestBody) -> (String, bool) {
    let ok_reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    let (seen, outcome, recycled) = exchange(method, headers, body, ok_reply, 100).await;
    ok(outcome);
    (seen, recycled)
}

/// A body of unknown length, in these pieces.
fn streamed(pieces: &[&'static str]) -> RequestBody {
    let frames = pieces
        .iter()
        .map(|s| Ok::<_, BoxError>(Frame::data(Bytes::from_static(s.as_bytes()))))
        .collect::<Vec<_>>();
    http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
}

fn request_done(seen: &[u8]) -> bool {
    let text = String::from_utf8_lossy(seen);
    let Some((head, rest)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let head = head.to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        return rest.ends_with("0\r\n\r\n");
    }
    match head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
    {
        Some(n) => rest.len() >= n.trim().parse::<usize>().unwrap(),
        None => true,
    }
}

fn ok(outcome: Result<Response3, String>) -> (StatusCode, HeaderMap, Bytes) {
    let (status, headers, body) = outcome.expect("a response");
    (status, headers, body.expect("a whole body"))
}

#[tokio::test]
async fn a_get_goes_out_in_origin_form_and_a_sized_body_recycles_the_connection() {
    for piece in [1, 3, 1000] {
        let (seen, outcome, recycled) = answer(
            Method::GET,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello",
            piece,
        )
        .await;
        assert_eq!(seen, "GET /a?b=c HTTP/1.1\r\nhost: p.example\r\n\r\n");
        let (status, headers, body) = ok(outcome);
        assert_eq!(status, 200);
        assert_eq!(body, "hello", "piece {piece}");
        assert_eq!(headers.get_all("x-a").iter().count(), 2);
        assert!(recycled, "piece {piece}");
    }
}

#[tokio::test]
async fn chunked_responses_are_decoded_and_trailers_read_past() {
    let reply: &[u8] =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 99\r\n\r\n\
        5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nx-trailer: t\r\n\r\n";
    for piece in [1, 2, 7, 1000] {
        let (_, outcome, recycled) = answer(Method::GET, reply, piece).await;
        let (_, headers, body) = ok(outcome);
        assert_eq!(body, "hello world", "piece {piece}");
        assert!(
            !headers.contains_key(header::CONTENT_LENGTH),
            "a length beside chunked must not reach the caller"
        );
        // A length beside a transfer coding: the connection is not trusted again.
        assert!(!recycled);
    }
    let clean: &[u8] =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let (_, outcome, recycled) = answer(Method::GET, clean, 4).await;
    assert_eq!(ok(outcome).2, "abc");
    assert!(recycled);
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let (_, outcome, recycled) = answer(Method::GET, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        5,
    )
    .await;
    let (status, headers, body) = ok(outcome);
    assert_eq!((status, body.as_ref()), (StatusCode::CREATED, &b"ok"[..]));
    assert!(!headers.contains_key("link"));
    assert!(recycled);
}

#[tokio::test]
async fn bodiless_responses_and_close_delimited_bodies() {
    let (_, outcome, recycled) = answer(
        Method::HEAD,
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n",
        100,
    )
    .await;
    let (_, headers, body) = ok(outcome);
    assert!(body.is_empty());
    assert_eq!(headers[header::CONTENT_LENGTH], "10");
    assert!(recycled);
    let (_, outcome, recycled) = answer(Method::GET, b"HTTP/1.1 204 No Content\r\n\r\n", 100).await;
    assert!(ok(outcome).2.is_empty());
    assert!(recycled);
    // HTTP/1.0 without a length: the body runs to the close, and the connection is done.
    let client = replies_and_closes(b"HTTP/1.0 200 OK\r\n\r\nuntil the end");
    let mut headers = host();
    headers.insert("x-request-only", HeaderValue::from_static("1"));
    let response = Conn::new(client, 8192)
        .send(&Method::GET, "/", &mut headers, empty(), ())
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_10);
    // The request's map now carries the response's headers (none here): it was emptied and
    // taken, and none of the request's fields leak into the response.
    assert!(headers.is_empty());
    assert!(response.headers().is_empty());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "until the end");
}

#[tokio::test]
async fn connection_close_and_bytes_behind_a_response_keep_it_from_reuse() {
    let cases: [&'static [u8]; 2] = [
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n",
    ];
    for reply in cases {
        let (_, outcome, recycled) = answer(Method::GET, reply, 1000).await;
        assert_eq!(ok(outcome).2, "x");
        assert!(!recycled, "{reply:?}");
    }
}

#[tokio::test]
async fn malformed_responses_are_typed_errors() {
    let cases: [(&'static [u8], &str); 6] = [
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\nx",
            "conflicting",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "invalid Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: +1\r\n\r\nx",
            "invalid Content-Length",
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "protocol switch",
        ),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "unparseable"),
        (b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", "unparseable"),
    ];
    for (reply, expected) in cases {
        let (_, outcome, _) = answer(Method::GET, reply, 1000).await;
        let error = outcome.expect_err("a malformed response");
        assert!(error.contains(expected), "{error} for {reply:?}");
    }
}

fn long_chunk_line() -> &'static [u8] {
    let mut reply = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;".to_vec();
    reply.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE + 10));
    reply.leak()
}

#[tokio::test]
async fn broken_bodies_are_errors_and_close_the_connection() {
    let cases: [(&'static [u8], &str); 3] = [
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            "invalid chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabX\r\n",
            "CRLF",
        ),
        (long_chunk_line(), "too long"),
    ];
    for (reply, expected) in cases {
        let (_, outcome, recycled) = answer(Method::GET, reply, 1000).await;
        let (_, _, body) = outcome.expect("a head");
        let error = body.expect_err("a broken body");
        assert!(error.contains(expected), "{error}");
        assert!(!recycled);
    }
    // A length the provider does not deliver: the close is an error, not an end.
    let client = replies_and_closes(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort");
    let response = Conn::new(client, 8192)
        .send(&Method::GET, "/", &mut host(), empty(), ())
        .await
        .unwrap();
    let error = response.into_body().collect().await.unwrap_err();
    assert!(error.to_string().contains("ended early"), "{error}");
}

#[tokio::test]
async fn oversized_heads_are_refused() {
    let mut reply = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..MAX_HEADERS + 1 {
        reply.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
    }
    reply.extend_from_slice(b"\r\n");
    let reply: &'static [u8] = reply.leak();
    let (_, outcome, _) = answer(Method::GET, reply, 1000).await;
    assert!(outcome.unwrap_err().contains("too large"));
    let mut long = b"HTTP/1.1 200 OK\r\nx-long: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 9000));
    let long: &'static [u8] = long.leak();
    let (_, outcome, _) = answer(Method::GET, long, 1000).await;
    assert!(outcome.unwrap_err().contains("too large"));
}

#[tokio::test]
async fn request_bodies_are_framed_by_length_or_chunked() {
    let mut headers = host();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
    let (seen, _) = upload(Method::POST, headers, full("hello")).await;
    assert_eq!(
        seen,
        "POST /a?b=c HTTP/1.1\r\nhost: p.example\r\ncontent-length: 5\r\n\r\nhello"
    );
    // Unknown length: chunked, in the pieces the caller sent; a stray header is dropped.
    let body = streamed(&["ab", "", "cde"]);
    let mut headers = host();
    headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
    let (seen, _) = upload(Method::POST, headers, body).await;
    assert_eq!(
        seen,
        "POST /a?b=c HTTP/1.1\r\nhost: p.example\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
    );
}

#[tokio::test]
async fn a_streamed_body_without_data_still_sends_its_head_and_last_chunk() {
    let body = streamed(&[""]);
    let (seen, outcome, recycled) = exchange(
        Method::POST,
        host(),
        body,
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        100,
    )
    .await;
    ok(outcome);
    assert!(recycled);
    assert_eq!(
        seen,
        "POST /a?b=c HTTP/1.1\r\nhost: p.example\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
    );
}

#[tokio::test]
async fn a_body_that_breaks_its_length_is_an_error() {
    for (declared, sent) in [("3", "hello"), ("9", "hello")] {
        let mut headers = host();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static(declared));
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while server.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        });
        let failed = Conn::new(client, 8192)
            .send(&Method::POST, "/", &mut headers, full(sent), ())
            .await
            .unwrap_err();
        assert!(
            matches!(failed.error, Error::RequestBodyLength),
            "{declared}: {:?}",
            failed.error
        );
    }
}

#[tokio::test]
async fn a_large_body_streams_after_the_head() {
    let big = Bytes::from(vec![b'z'; COALESCE_BYTES * 3]);
    let mut headers = host();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(big.len()));
    let (seen, recycled) = upload(Method::PUT, headers, full(big.clone())).await;
    assert!(recycled);
    let (_, body) = seen.split_once("\r\n\r\n").unwrap();
    assert_eq!(body.len(), big.len());
}

#[tokio::test]
async fn a_close_before_any_response_is_reported_as_nothing_received() {
    let client = replies_and_closes(b"");
    let mut headers = host();
    let failed = Conn::new(client, 8192)
        .send(&Method::GET, "/", &mut headers, empty(), ())
        .await
        .unwrap_err();
    assert!(matches!(failed.error, Error::Closed));
    assert!(failed.nothing_received);
    // Nothing received: the request may be sent again, and its headers are still there.
    assert_eq!(headers, host());
    // Half a head, then a close: something was received, so it is not safe to resend.
    let client = replies_and_closes(b"HTTP/1.1 200 OK\r\n");
    let failed = Conn::new(client, 8192)
        .send(&Method::GET, "/", &mut host(), empty(), ())
        .await
        .unwrap_err();
    assert!(!failed.nothing_received, "{:?}", failed.error);
}

#[tokio::test]
async fn idle_probe_sees_a_close_and_unasked_bytes() {
    let (client, server) = tokio::io::duplex(1024);
    let mut conn = Conn::new(client, 8192);
    assert!(conn.is_open());
    drop(server);
    assert!(!conn.is_open());
    let (client, mut server) = tokio::io::duplex(1024);
    let mut conn = Conn::new(client, 8192);
    server.write_all(b"HTTP/1.1 408 Timeout\r\n").await.unwrap();
    assert!(!conn.is_open());
}

/// A provider that reads (the start of) one request, writes `reply` (maybe nothing), and
/// closes the connection.
fn replies_and_closes(reply: &'static [u8]) -> DuplexStream {
    let (client, mut server) = tokio::io::duplex(1024);
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        let _ = server.read(&mut buf).await;
        let _ = server.write_all(reply).await;
    });
    client
}

/// Runs one GET against a provider that writes `reply` in `piece`-byte writes, then closes
/// (`close`) or holds the connection open until the client is done. Returns the body (or
/// the error) and whether the connection was recycled.
fn decode(reply: Vec<u8>, piece: usize, close: bool) -> (Result<Bytes, String>, bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let (done, hold) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let _ = server.read(&mut buf).await;
            for part in reply.chunks(piece.max(1)) {
                if server.write_all(part).await.is_err() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            if !close {
                let _ = hold.await;
            }
        });
        let pool: Pool = Arc::default();
        let exchange = async {
            let response = Conn::new(client, 8192)
                .send(&Method::GET, "/", &mut host(), empty(), Back(pool.clone()))
                .await
                .map_err(|f| f.error.to_string())?;
            let body = response.into_body().collect().await;
            body.map(|c| c.to_bytes()).map_err(|e| e.to_string())
        };
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), exchange)
            .await
            .expect("the exchange ends");
        drop(done);
        let recycled = !pool.lock().unwrap().is_empty();
        (outcome, recycled)
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Any body, framed by length, by chunks of any sizes, or by the close, read in pieces
    /// of any size, comes out exactly; only the close-delimited one costs the connection.
    #[test]
    fn well_framed_bodies_decode_exactly(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
        chunks in proptest::collection::vec(1usize..700, 1..12),
        framing in 0u8..3,
        piece in 1usize..300,
    ) {
        let mut reply = Vec::new();
        match framing {
            0 => {
                reply.extend_from_slice(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
                reply.extend_from_slice(&body);
            }
            1 => {
                reply.extend_from_slice(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
                let mut rest = &body[..];
                let mut sizes = chunks.iter().cycle();
                while !rest.is_empty() {
                    let n = (*sizes.next().unwrap()).min(rest.len());
                    reply.extend_from_slice(format!("{n:X}\r\n").as_bytes());
                    reply.extend_from_slice(&rest[..n]);
                    reply.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                reply.extend_from_slice(b"0\r\n\r\n");
            }
            _ => {
                reply.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
                reply.extend_from_slice(&body);
            }
        }
        let (outcome, recycled) = decode(reply, piece, framing == 2);
        proptest::prop_assert_eq!(outcome.map(|b| b.to_vec()), Ok(body));
        proptest::prop_assert_eq!(recycled, framing != 2);
    }

    /// Whatever a provider sends, the client answers with a response or a typed error, and
    /// never panics or hangs.
    #[test]
    fn provider_garbage_never_panics(
        prefix in 0u8..3,
        garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        piece in 1usize..64,
    ) {
        let mut reply = match prefix {
            0 => Vec::new(),
            1 => b"HTTP/1.1 200 OK\r\n".to_vec(),
            _ => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec(),
        };
        reply.extend_from_slice(&garbage);
        let _ = decode(reply, piece, true);
    }
}

/// Reads one response with `keep_alive` as its `Keep-Alive` header and returns the recycled
/// connection's idle timeout for the pool.
async fn idle_timeout_after(keep_alive: Option<&str>) -> Option<std::time::Duration> {
    let mut reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n".to_vec();
    if let Some(value) = keep_alive {
        reply.extend_from_slice(format!("keep-alive: {value}\r\n").as_bytes());
    }
    reply.extend_from_slice(b"\r\n");
    let (client, mut server) = tokio::io::duplex(4096);
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        let _ = server.read(&mut buf).await;
        let _ = server.write_all(&reply).await;
        let _ = server.read(&mut buf).await; // hold the connection open
    });
    let pool: Pool = Arc::default();
    let response = Conn::new(client, 8192)
        .send(&Method::GET, "/", &mut host(), empty(), Back(pool.clone()))
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();
    let conn = pool.lock().unwrap().pop().expect("recycled");
    conn.provider_idle_timeout()
}

#[tokio::test]
async fn the_providers_keep_alive_timeout_is_kept_less_a_margin() {
    use std::time::Duration;
    assert_eq!(idle_timeout_after(None).await, None);
    assert_eq!(idle_timeout_after(Some("max=100")).await, None);
    // A second less than the provider said, so a request is not sent into its close...
    assert_eq!(
        idle_timeout_after(Some("timeout=5, max=100")).await,
        Some(Duration::from_secs(4))
    );
    // ...or half of a timeout too short to lose a whole second.
    assert_eq!(
        idle_timeout_after(Some("timeout=1")).await,
        Some(Duration::from_millis(500))
    );
    assert_eq!(
        idle_timeout_after(Some("timeout=0")).await,
        Some(Duration::ZERO)
    );
}
