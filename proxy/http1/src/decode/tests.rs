use super::*;
use crate::fuzzing::{self, End, HeadSeen, Reading};
use proptest::prelude::*;
use std::fmt::Write as _;

#[test]
fn keep_alive_timeout_is_the_timeout_parameter_in_seconds() {
    let timeout = |v: &str| keep_alive_timeout(v.as_bytes());
    assert_eq!(timeout("timeout=5"), Some(Duration::from_secs(5)));
    assert_eq!(timeout("timeout=5, max=100"), Some(Duration::from_secs(5)));
    assert_eq!(
        timeout("max=100, Timeout = 30"),
        Some(Duration::from_secs(30))
    );
    assert_eq!(timeout("timeout=\"7\""), Some(Duration::from_secs(7)));
    assert_eq!(timeout("timeout=0"), Some(Duration::ZERO));
    for unreadable in [
        "",
        "max=5",
        "timeout",
        "timeout=",
        "timeout=-1",
        "timeout=5s",
    ] {
        assert_eq!(timeout(unreadable), None, "{unreadable:?}");
    }
}

#[test]
fn the_head_carries_the_providers_keep_alive_timeout() {
    let mut read = BytesMut::from(
        &b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=15, max=99\r\ncontent-length: 0\r\n\r\n"[..],
    );
    let head = parse_head(&mut read, 8192, &Method::GET, &mut HeaderMap::new())
        .unwrap()
        .unwrap();
    assert_eq!(head.idle_timeout, Some(Duration::from_secs(15)));
    // An interim response's header is not the final response's promise.
    let mut read = BytesMut::from(
        &b"HTTP/1.1 100 Continue\r\nkeep-alive: timeout=15\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
    );
    let head = parse_head(&mut read, 8192, &Method::GET, &mut HeaderMap::new())
        .unwrap()
        .unwrap();
    assert_eq!(head.idle_timeout, None);
}

/// A chunk-size line over the limit is refused whether it arrives whole or in pieces (it
/// used to be refused only when it arrived in pieces, so the outcome depended on the reads).
#[test]
fn a_long_chunk_line_is_refused_however_it_arrives() {
    let mut reply = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;".to_vec();
    reply.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE + 10));
    reply.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
    let whole = fuzzing::read(&Method::GET, [&reply[..]], false, 8192);
    let cut = fuzzing::read(&Method::GET, reply.chunks(100), false, 8192);
    assert_eq!(whole, cut);
    assert!(
        matches!(&whole.end, End::Failed(e) if e.contains("too long")),
        "{whole:?}"
    );
    // At the limit it is fine.
    let mut reply = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;".to_vec();
    reply.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE - 4));
    reply.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
    let reading = fuzzing::read(&Method::GET, reply.chunks(100), false, 8192);
    assert_eq!((reading.body, reading.end), (b"x".to_vec(), End::Complete));
}

/// A head still open at the limit is too large, whatever comes after the limit; found by the
/// fuzzer: a byte no head may hold, past the limit, made it "unparseable" when it arrived with
/// the rest and "too large" when the limit was reached first.
#[test]
fn a_head_over_the_limit_is_too_large_however_it_arrives() {
    let mut reply = b"HTTP/1.1 200 OK\r\nx-long: ".to_vec();
    reply.extend(std::iter::repeat_n(b'a', 200));
    reply.extend_from_slice(b"\x01\r\n\r\n");
    let whole = fuzzing::read(&Method::GET, [&reply[..]], true, 100);
    let cut = fuzzing::read(&Method::GET, reply.chunks(10), true, 100);
    assert_eq!(whole, cut);
    assert_eq!(whole.end, End::Failed(Error::HeadTooLarge.to_string()));
    // Within the limit, the same byte is what is wrong with the head.
    let reading = fuzzing::read(&Method::GET, [&reply[..]], true, 8192);
    assert!(
        matches!(&reading.end, End::Failed(e) if e.contains("unparseable")),
        "{reading:?}"
    );
}

/// The same for trailers (also found by the fuzzer) and chunk-size lines: a line over its
/// limit is too large or too long, whatever byte past the limit would also be wrong with it.
#[test]
fn lines_over_their_limits_are_judged_by_size_first_however_they_arrive() {
    let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    let mut trailer = chunked.clone();
    trailer.extend_from_slice(b"0\r\nx-t: ");
    trailer.extend(std::iter::repeat_n(b'a', 300));
    trailer.extend_from_slice(b"\x01\r\n\r\n");
    let mut chunk_line = chunked;
    chunk_line.extend_from_slice(b"1;");
    chunk_line.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE));
    chunk_line.extend_from_slice(b"\x01\r\nx\r\n0\r\n\r\n");
    for (reply, max_head, expected) in [
        (&trailer, 200, "too large"),
        (&chunk_line, 8192, "too long"),
    ] {
        let whole = fuzzing::read(&Method::GET, [&reply[..]], true, max_head);
        let cut = fuzzing::read(&Method::GET, reply.chunks(7), true, max_head);
        assert_eq!(whole, cut);
        assert!(
            matches!(&whole.end, End::Failed(e) if e.contains(expected)),
            "{whole:?}"
        );
    }
    // Within the limit, the byte is what is wrong.
    let reading = fuzzing::read(&Method::GET, [&trailer[..]], true, 8192);
    assert!(
        matches!(&reading.end, End::Failed(e) if e.contains("invalid trailer field")),
        "{reading:?}"
    );
}

#[test]
fn the_fuzz_entry_holds_on_its_seed_inputs() {
    let seeds: [&[u8]; 6] = [
        b"\x00\x01\x00HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc",
        b"\x02\x07\x00HTTP/1.0 200 OK\r\n\r\nuntil the close",
        b"\x00\x33\x01HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nt: 1\r\n\r\n",
        b"\x01\x05\x00HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n",
        b"\x02\x09\x00HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        b"\x02\x11\x00HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffff\r\nab",
    ];
    for seed in seeds {
        fuzzing::response(seed);
    }
    // The entry really reads: a body comes out of the first seed.
    let reading = fuzzing::read(&Method::GET, [&seeds[0][3..]], false, 8192);
    assert_eq!(
        (reading.body, reading.end),
        (b"abc".to_vec(), End::Complete)
    );
}

/// Heads that reach the decoders' deeper states, to be followed by arbitrary bytes.
fn prefix() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![
        Just(&b""[..]),
        Just(&b"HTTP/1.1 200 OK\r\n"[..]),
        Just(&b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"[..]),
        Just(&b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n"[..]),
        Just(&b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"[..]),
        Just(&b"HTTP/1.1 103 Early Hints\r\n\r\n"[..]),
    ]
}

/// Bytes that mean something to the decoders, so arbitrary streams hit real states.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..8),
        Just(b"\r\n".to_vec()),
        Just(b"0\r\n\r\n".to_vec()),
        Just(b";".to_vec()),
        Just(b"HTTP/1.1 ".to_vec()),
        Just(b"content-length: 3\r\n".to_vec()),
        Just(b"transfer-encoding: chunked\r\n".to_vec()),
        "[0-9a-fA-F]{1,17}".prop_map(String::into_bytes),
    ]
}

/// A stable stand-in for the fuzz target, in the default suite: [`fuzzing::response`] on
/// arbitrary streams. Each case reads the stream whole, in arbitrary cuts and through a
/// connection, and checks they agree and never yield more body than framed.
fn arbitrary_stream() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 3]>(),
        prefix(),
        proptest::collection::vec(token(), 0..40),
    )
        .prop_map(|(control, prefix, tokens)| {
            let mut data = control.to_vec();
            data.extend_from_slice(prefix);
            data.extend(tokens.into_iter().flatten());
            data
        })
}

/// One well-formed response, as a provider might send it.
#[derive(Debug, Clone)]
struct Model {
    head: bool,
    interim: Vec<u16>,
    http10: bool,
    status: u16,
    headers: Vec<(&'static str, String)>,
    close: bool,
    keep_alive: Option<u32>,
    framing: Framing,
    body: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Framing {
    Length,
    Chunked {
        sizes: Vec<usize>,
        extensions: bool,
        trailers: Vec<String>,
        also_length: bool,
    },
    Close,
}

fn model() -> impl Strategy<Value = Model> {
    let framing = prop_oneof![
        Just(Framing::Length),
        (
            proptest::collection::vec(1usize..600, 1..8),
            any::<bool>(),
            proptest::collection::vec("[a-z]{1,8}: [ -~]{0,20}", 0..3),
            proptest::bool::weighted(0.2),
        )
            .prop_map(
                |(sizes, extensions, trailers, also_length)| Framing::Chunked {
                    sizes,
                    extensions,
                    trailers,
                    also_length,
                }
            ),
        Just(Framing::Close),
    ];
    (
        proptest::bool::weighted(0.15),
        proptest::collection::vec(prop_oneof![Just(100u16), Just(102), Just(103)], 0..3),
        proptest::bool::weighted(0.15),
        prop_oneof![
            Just(200u16),
            Just(201),
            Just(204),
            Just(304),
            Just(404),
            Just(503)
        ],
        proptest::collection::vec(
            (
                prop_oneof![
                    Just("x-a"),
                    Just("x-b"),
                    Just("content-type"),
                    Just("set-cookie")
                ],
                "[!-~]([ -~]{0,30}[!-~])?",
            ),
            0..6,
        ),
        proptest::bool::weighted(0.2),
        proptest::option::weighted(0.3, 0u32..100),
        framing,
        proptest::collection::vec(any::<u8>(), 0..2000),
    )
        .prop_map(
            |(head, interim, http10, status, headers, close, keep_alive, framing, body)| Model {
                head,
                interim,
                http10,
                status,
                headers,
                close,
                keep_alive,
                framing,
                body,
            },
        )
}

impl Model {
    fn method(&self) -> Method {
        if self.head {
            Method::HEAD
        } else {
            Method::GET
        }
    }

    fn bodiless(&self) -> bool {
        self.head || self.status == 204 || self.status == 304
    }

    /// The provider closes after this response (else it holds the connection open).
    fn closes(&self) -> bool {
        matches!(self.framing, Framing::Close)
    }

    /// The header lines of the final head, in the order sent.
    fn header_lines(&self) -> Vec<(String, String)> {
        let mut lines: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect();
        if self.close {
            lines.push(("connection".into(), "close".into()));
        }
        if let Some(t) = self.keep_alive {
            lines.push(("keep-alive".into(), format!("timeout={t}, max=100")));
        }
        match &self.framing {
            Framing::Length => lines.push(("content-length".into(), self.body.len().to_string())),
            Framing::Chunked { also_length, .. } => {
                lines.push(("transfer-encoding".into(), "chunked".into()));
                if *also_length {
                    lines.push(("content-length".into(), "7".into()));
                }
            }
            Framing::Close => {}
        }
        lines
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        for code in &self.interim {
            let _ = write!(out, "HTTP/1.1 {code} Interim\r\nx-interim: 1\r\n\r\n");
        }
        let version = if self.http10 { "1.0" } else { "1.1" };
        let _ = write!(out, "HTTP/{version} {} Whatever\r\n", self.status);
        for (name, value) in self.header_lines() {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        if self.bodiless() {
            return out;
        }
        match &self.framing {
            Framing::Length | Framing::Close => out.extend_from_slice(&self.body),
            Framing::Chunked {
                sizes,
                extensions,
                trailers,
                ..
            } => {
                let mut rest = &self.body[..];
                for size in sizes.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let n = (*size).min(rest.len());
                    let ext = if *extensions { ";name=value;flag" } else { "" };
                    out.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..n]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                out.extend_from_slice(b"0\r\n");
                for trailer in trailers {
                    out.extend_from_slice(trailer.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    /// What reading this response must give, worked out from the model alone.
    fn expected(&self) -> Reading {
        let chunked_with_length = matches!(
            self.framing,
            Framing::Chunked {
                also_length: true,
                ..
            }
        );
        let mut map = HeaderMap::new();
        for (name, value) in self.header_lines() {
            // A length beside chunked framing is dropped (for a bodiless response, no framing
            // is read at all, so nothing is).
            if name == "content-length" && chunked_with_length && !self.bodiless() {
                continue;
            }
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(&value).unwrap(),
            );
        }
        let length = if self.bodiless() {
            Some(0)
        } else {
            match self.framing {
                Framing::Length => Some(self.body.len() as u64),
                _ => None,
            }
        };
        let framed_for_reuse = self.bodiless()
            || matches!(self.framing, Framing::Length)
            || matches!(
                self.framing,
                Framing::Chunked {
                    also_length: false,
                    ..
                }
            );
        Reading {
            head: Some(HeadSeen {
                status: self.status,
                version: if self.http10 {
                    Version::HTTP_10
                } else {
                    Version::HTTP_11
                },
                headers: map
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                    .collect(),
                length,
            }),
            body: if self.bodiless() {
                Vec::new()
            } else {
                self.body.clone()
            },
            end: End::Complete,
            reusable: !self.http10 && !self.close && framed_for_reuse,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes, cut anywhere: no panic, no more body than framed, and the same
    /// reading however they were cut and whether read by the decoders or a connection.
    #[test]
    fn arbitrary_streams_in_any_cuts_agree_and_stay_within_their_framing(
        data in arbitrary_stream(),
    ) {
        fuzzing::response(&data);
    }

    /// A well-formed response, cut anywhere, reads as the model that wrote it: status,
    /// headers, body and whether its connection can be reused, by the decoders and through
    /// a connection alike.
    #[test]
    fn well_formed_responses_read_as_their_model(model in model(), seed in any::<u16>()) {
        let bytes = model.bytes();
        let method = model.method();
        let cuts = fuzzing::pieces(&bytes, seed);
        let expected = model.expected();
        let reading = fuzzing::read(&method, cuts.iter().copied(), model.closes(), 8192);
        prop_assert_eq!(&reading, &expected);
        let through_conn = fuzzing::exchange(&method, cuts.iter().copied(), model.closes(), 8192);
        prop_assert_eq!(&through_conn, &expected);
        fuzzing::check_framing(&reading, bytes.len());
    }
}
