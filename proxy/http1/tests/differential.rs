//! The same provider byte streams, read by our client and by hyper's HTTP/1.1 client, must
//! yield the same thing: status, headers, body (or a body error), or an error for the head,
//! and whether the connection could carry another request. Where we differ on purpose
//! (almost always by being stricter), the case says so and why, and the test checks that the
//! difference is still the one described.

use bytes::Bytes;
use gatehouse_http1::{Conn, Recycle, RequestBody};
use http::{header, HeaderMap, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Empty};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// What one client made of a provider's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Response {
        status: u16,
        /// Names and values (lossy text, for a readable failure).
        headers: Vec<(String, String)>,
        body: Body,
        reusable: bool,
    },
    /// No response: the head was refused, or the connection ended before one.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    Complete(Vec<u8>),
    /// The body ended in an error (the two clients word their errors differently).
    Failed,
    /// Still waiting for more when every byte was in and the provider held on.
    Waiting,
}

struct Case {
    name: &'static str,
    method: Method,
    reply: &'static [u8],
    /// The provider closes the connection after its reply (else it holds it open).
    closes: bool,
    /// How and why we differ from hyper here, if we do on purpose.
    differs: Option<(Stricter, &'static str)>,
}

/// The ways we read a provider's bytes more strictly than hyper does.
#[derive(Debug, Clone, Copy)]
enum Stricter {
    /// The same response, but we do not reuse the connection where hyper would.
    NoReuse,
    /// The same response without its `Content-Length`, and the connection not reused.
    DropsLengthAndNoReuse,
    /// We refuse a response hyper hands over.
    Refuses,
}

impl Stricter {
    /// Whether `ours` differs from `hyper`'s reading in exactly this way.
    fn holds(self, ours: &Outcome, hyper: &Outcome) -> bool {
        let Outcome::Response {
            status,
            headers,
            body,
            reusable,
        } = hyper
        else {
            return false;
        };
        match self {
            Stricter::Refuses => *ours == Outcome::Error,
            Stricter::NoReuse => {
                *reusable
                    && *ours
                        == Outcome::Response {
                            status: *status,
                            headers: headers.clone(),
                            body: body.clone(),
                            reusable: false,
                        }
            }
            Stricter::DropsLengthAndNoReuse => {
                let without: Vec<_> = headers
                    .iter()
                    .filter(|(name, _)| name != "content-length")
                    .cloned()
                    .collect();
                *reusable
                    && without.len() < headers.len()
                    && *ours
                        == Outcome::Response {
                            status: *status,
                            headers: without,
                            body: body.clone(),
                            reusable: false,
                        }
            }
        }
    }
}

const fn case(name: &'static str, reply: &'static [u8], closes: bool) -> Case {
    Case {
        name,
        method: Method::GET,
        reply,
        closes,
        differs: None,
    }
}

impl Case {
    fn head(mut self) -> Self {
        self.method = Method::HEAD;
        self
    }

    fn differs(mut self, how: Stricter, why: &'static str) -> Self {
        self.differs = Some((how, why));
        self
    }
}

fn corpus() -> Vec<Case> {
    vec![
        case(
            "content-length",
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\nx-a: 2\r\n\r\nhello",
            false,
        ),
        case("zero length", b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", false),
        case(
            "repeated equal lengths",
            b"HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\ncontent-length: 3\r\n\r\nabc",
            false,
        ),
        case(
            "chunked with extensions and trailers",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
              5;ext=1;q=\"a b\"\r\nhello\r\n1\r\n \r\n0005\r\nworld\r\n0\r\nx-t: 1\r\nx-u: 2\r\n\r\n",
            false,
        ),
        case(
            "chunked, upper-case hex",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
            false,
        ),
        case(
            "chunked, empty",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            false,
        ),
        case(
            "close-delimited HTTP/1.1",
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the close",
            true,
        ),
        case(
            "close-delimited HTTP/1.0",
            b"HTTP/1.0 200 OK\r\n\r\nuntil the close",
            true,
        ),
        case(
            "HTTP/1.0 keep-alive",
            b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok",
            false,
        )
        .differs(
            Stricter::NoReuse,
            "we never reuse an HTTP/1.0 connection: providers speak 1.1, and a 1.0 hop that \
             says keep-alive is usually a middlebox we would rather not trust with a second request",
        ),
        case(
            "HTTP/1.0 with a length, no keep-alive",
            b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok",
            false,
        ),
        case(
            "interim responses before the final one",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n\
              HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
            false,
        ),
        case(
            "HEAD with a length",
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n",
            false,
        )
        .head(),
        case(
            "HEAD with chunked",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
        )
        .head(),
        case("204", b"HTTP/1.1 204 No Content\r\n\r\n", false),
        case(
            "304 with a length and no body",
            b"HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n",
            false,
        ),
        case(
            "204 with a body behind it",
            b"HTTP/1.1 204 No Content\r\ncontent-length: 3\r\n\r\nabc",
            false,
        ),
        case(
            "bytes behind a sized body",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n",
            false,
        ),
        case(
            "connection: close",
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\ncontent-length: 1\r\n\r\nx",
            false,
        ),
        case(
            "keep-alive timeout",
            b"HTTP/1.1 200 OK\r\nkeep-alive: timeout=5, max=100\r\ncontent-length: 1\r\n\r\nx",
            false,
        ),
        case(
            "no reason phrase, bare LF",
            b"HTTP/1.1 200\ncontent-length: 2\n\nok",
            false,
        ),
        case(
            "length beside chunked",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 99\r\n\r\n\
              3\r\nabc\r\n0\r\n\r\n",
            false,
        )
        .differs(
            Stricter::DropsLengthAndNoReuse,
            "a length beside a transfer coding (RFC 9112 §6.1, a smuggling signal): we drop the \
             length from the headers and do not reuse the connection",
        ),
        case(
            "transfer coding not ending in chunked",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nraw bytes",
            true,
        ),
        case(
            "conflicting lengths",
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello",
            false,
        ),
        case(
            "conflicting lengths on one line",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\nx",
            false,
        ),
        case(
            "signed length",
            b"HTTP/1.1 200 OK\r\ncontent-length: +1\r\n\r\nx",
            false,
        ),
        case(
            "length past u64",
            b"HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551616\r\n\r\nx",
            false,
        ),
        case(
            "obs-fold",
            b"HTTP/1.1 200 OK\r\nx-a: 1\r\n 2\r\ncontent-length: 0\r\n\r\n",
            false,
        ),
        case(
            "space before the colon",
            b"HTTP/1.1 200 OK\r\nx-a : 1\r\ncontent-length: 0\r\n\r\n",
            false,
        ),
        case(
            "bad chunk size",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            false,
        ),
        case(
            "chunk size past u64",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1ffffffffffffffff\r\nab",
            false,
        ),
        case(
            "chunk data without CRLF",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n",
            false,
        ),
        case(
            "length cut short",
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
            true,
        ),
        case(
            "chunked cut short",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
            true,
        ),
        case(
            "length not yet all sent",
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
            false,
        ),
        case(
            "protocol switch",
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
            false,
        )
        .differs(
            Stricter::Refuses,
            "we never ask to upgrade, and a proxy cannot hand a caller's plain request a switched \
             protocol: a 101 is a provider fault, not a response to forward",
        ),
        case(
            "head over the limit",
            HUGE_HEAD,
            false,
        )
        .differs(
            Stricter::Refuses,
            "response heads are capped at max_header_bytes (8 KiB here); hyper allows ~400 KiB",
        ),
        case(
            "too many header fields",
            MANY_FIELDS,
            false,
        ),
        case(
            "chunk size with a space before the extension",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3 ;x=1\r\nabc\r\n0\r\n\r\n",
            false,
        ),
        case(
            "chunk size with a tab after it",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\t\r\nabc\r\n0\r\n\r\n",
            false,
        ),
        case(
            "chunk size in 0x form",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
            false,
        ),
        case(
            "chunk size with a sign",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n",
            false,
        ),
        case(
            "chunked twice",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            false,
        ),
        case(
            "chunked, then gzip on a second line",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: gzip\r\n\r\nraw",
            true,
        ),
        case(
            "trailer that is not a field",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n0\r\nnot a field\r\n\r\n",
            false,
        ),
        case(
            "obs-text in a value",
            b"HTTP/1.1 200 OK\r\nx-a: caf\xc3\xa9\r\ncontent-length: 0\r\n\r\n",
            false,
        ),
        case(
            "NUL in a value",
            b"HTTP/1.1 200 OK\r\nx-a: a\x00b\r\ncontent-length: 0\r\n\r\n",
            false,
        ),
        case(
            "bad character in a name",
            b"HTTP/1.1 200 OK\r\nx@a: 1\r\ncontent-length: 0\r\n\r\n",
            false,
        ),
        case(
            "HTTP/1.2",
            b"HTTP/1.2 200 OK\r\ncontent-length: 0\r\n\r\n",
            false,
        ),
        case("status out of range", b"HTTP/1.1 2000 OK\r\n\r\n", false),
        case("not HTTP", b"SSH-2.0-OpenSSH_9.6\r\n\r\n", false),
        case("close before anything", b"", true),
        case("close in the head", b"HTTP/1.1 200 OK\r\ncontent-", true),
        case("close after an interim response", b"HTTP/1.1 100 Continue\r\n\r\n", true),
    ]
}

/// `src` written into `out` at `at` (a `const` copy, for the byte strings below).
const fn put<const N: usize>(mut out: [u8; N], at: usize, src: &[u8]) -> [u8; N] {
    let mut i = 0;
    while i < src.len() {
        out[at + i] = src[i];
        i += 1;
    }
    out
}

/// A head of 9,000 bytes, over the 8 KiB limit the test's connections read with.
const HUGE_HEAD: &[u8] = {
    const PREFIX: &[u8] = b"HTTP/1.1 200 OK\r\nx-long: ";
    const SUFFIX: &[u8] = b"\r\ncontent-length: 0\r\n\r\n";
    const LEN: usize = PREFIX.len() + 9000 + SUFFIX.len();
    const BYTES: [u8; LEN] = put(put([b'a'; LEN], 0, PREFIX), LEN - SUFFIX.len(), SUFFIX);
    &BYTES
};

/// A head of 101 fields (`x: 1` each, then the length): one over both clients' limit.
const MANY_FIELDS: &[u8] = {
    const PREFIX: &[u8] = b"HTTP/1.1 200 OK\r\n";
    const FIELD: &[u8] = b"x: 1\r\n";
    const SUFFIX: &[u8] = b"content-length: 0\r\n\r\n";
    const LEN: usize = PREFIX.len() + 100 * FIELD.len() + SUFFIX.len();
    const BYTES: [u8; LEN] = {
        let mut out = put([0u8; LEN], 0, PREFIX);
        let mut f = 0;
        while f < 100 {
            out = put(out, PREFIX.len() + f * FIELD.len(), FIELD);
            f += 1;
        }
        put(out, LEN - SUFFIX.len(), SUFFIX)
    };
    &BYTES
};

/// A provider on one end of an in-memory connection: reads the request head, writes `reply`,
/// then closes or holds the connection until `release` fires.
fn provider(
    mut server: DuplexStream,
    reply: &'static [u8],
    closes: bool,
    release: tokio::sync::oneshot::Receiver<()>,
) {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match server.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let _ = server.write_all(reply).await;
        if !closes {
            let _ = release.await;
        }
    });
}

fn headers_of(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_owned(), value)
        })
        .collect()
}

/// How long a client may wait on a provider that has said all it will: with paused time this
/// passes at once when nothing else can happen.
const PATIENCE: Duration = Duration::from_secs(5);

async fn collect<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes>,
{
    match tokio::time::timeout(PATIENCE, body.collect()).await {
        Ok(Ok(collected)) => Body::Complete(collected.to_bytes().to_vec()),
        Ok(Err(_)) => Body::Failed,
        Err(_) => Body::Waiting,
    }
}

struct Pooled(Arc<AtomicBool>);

impl<S> Recycle<S> for Pooled {
    fn recycle(self, _conn: Conn<S>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn ours(case: &Case) -> Outcome {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (hold, release) = tokio::sync::oneshot::channel();
    provider(server, case.reply, case.closes, release);
    let pooled = Arc::new(AtomicBool::new(false));
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("p.example"));
    let empty: RequestBody = Empty::new().map_err(|never| match never {}).boxed_unsync();
    let sent = Conn::new(client, 8192).send(
        &case.method,
        "/",
        &mut headers,
        empty,
        Pooled(pooled.clone()),
    );
    let outcome = match tokio::time::timeout(PATIENCE, sent).await {
        Ok(Ok(response)) => {
            let (parts, body) = response.into_parts();
            let body = collect(body).await;
            Outcome::Response {
                status: parts.status.as_u16(),
                headers: headers_of(&parts.headers),
                body,
                reusable: pooled.load(Ordering::SeqCst),
            }
        }
        Ok(Err(_)) | Err(_) => Outcome::Error,
    };
    drop(hold);
    outcome
}

async fn hyper(case: &Case) -> Outcome {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (hold, release) = tokio::sync::oneshot::channel();
    provider(server, case.reply, case.closes, release);
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(client)).await
    else {
        return Outcome::Error;
    };
    tokio::spawn(connection);
    let request = Request::builder()
        .method(case.method.clone())
        .uri("/")
        .header(header::HOST, "p.example")
        .body(Empty::<Bytes>::new());
    let Ok(request) = request else {
        return Outcome::Error;
    };
    let outcome = match tokio::time::timeout(PATIENCE, sender.send_request(request)).await {
        Ok(Ok(response)) => {
            let (parts, body) = response.into_parts();
            let body = collect(body).await;
            // Reusable: hyper's connection is ready for another request (a connection it
            // means to close ends instead).
            let ready = tokio::time::timeout(PATIENCE, sender.ready()).await;
            Outcome::Response {
                status: parts.status.as_u16(),
                headers: headers_of(&parts.headers),
                reusable: matches!(body, Body::Complete(_)) && matches!(ready, Ok(Ok(()))),
                body,
            }
        }
        Ok(Err(_)) | Err(_) => Outcome::Error,
    };
    drop(hold);
    outcome
}

#[tokio::test(start_paused = true)]
async fn our_client_reads_provider_bytes_as_hyper_does_except_where_stricter() {
    let mut report = Vec::new();
    let mut differences = 0;
    for case in corpus() {
        let (ours, theirs) = (ours(&case).await, hyper(&case).await);
        match case.differs {
            None if ours == theirs => {}
            Some((how, _)) if how.holds(&ours, &theirs) => differences += 1,
            None => report.push(format!(
                "{}: unexpected difference\n  ours:  {ours:?}\n  hyper: {theirs:?}",
                case.name
            )),
            Some((how, why)) => report.push(format!(
                "{}: expected {how:?} ({why})\n  ours:  {ours:?}\n  hyper: {theirs:?}",
                case.name
            )),
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
    assert!(differences > 0, "the expected differences are exercised");
}
