//! The entry the fuzz target (`fuzz/fuzz_targets/response.rs`) calls, shared with the stable
//! property tests so that what the fuzzer checks also runs in every `cargo test`.
//!
//! [`response`] reads one provider byte stream three ways: whole, in pieces, and through a
//! real [`Conn`] over a scripted transport fed the same pieces. It panics if any of them
//! panics, if they disagree, or if a body comes out longer than its framing allows.

use crate::decode::{parse_head, Step};
use crate::{Conn, Error, Recycle, RequestBody};
use bytes::BytesMut;
use http::{HeaderMap, Method, Version};
use http_body::Body;
use http_body_util::BodyExt;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The head limit the fuzz entry reads with: small, so the limits are reached often.
pub const FUZZ_MAX_HEAD: usize = 1024;

/// What a provider's bytes read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The final response head, if one was read.
    pub head: Option<HeadSeen>,
    /// The body bytes, in order.
    pub body: Vec<u8>,
    pub end: End,
    /// The connection would go back to its pool.
    pub reusable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadSeen {
    pub status: u16,
    pub version: Version,
    /// Lower-case names and raw values, in the map's order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body's exact length when the framing gives one (`Some(0)` for a bodiless response).
    pub length: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The response was read to its end.
    Complete,
    /// The head or the body was refused; the message of the error.
    Failed(String),
    /// Every byte was read and the response is not over: the provider holds the connection.
    Waiting,
}

impl Reading {
    fn failed(head: Option<HeadSeen>, body: Vec<u8>, error: &Error) -> Reading {
        Reading {
            head,
            body,
            end: End::Failed(error.to_string()),
            reusable: false,
        }
    }
}

fn seen(headers: &HeaderMap, status: u16, version: Version, length: Option<u64>) -> HeadSeen {
    HeadSeen {
        status,
        version,
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        length,
    }
}

/// Reads a response to `method` with the decoders alone, taking `pieces` one at a time only
/// when the decoders ask for more, as [`Conn`] does. `closes`: after the last piece the
/// provider closes the connection (else it holds it open).
pub fn read<'a>(
    method: &Method,
    pieces: impl IntoIterator<Item = &'a [u8]>,
    closes: bool,
    max_head: usize,
) -> Reading {
    let mut pieces = pieces.into_iter().filter(|p| !p.is_empty());
    let mut read = BytesMut::new();
    let mut storage = HeaderMap::new();
    let mut received = false;
    let head = loop {
        if !read.is_empty() {
            received = true;
            match parse_head(&mut read, max_head, method, &mut storage) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(e) => return Reading::failed(None, Vec::new(), &e),
            }
        }
        match pieces.next() {
            Some(piece) => read.extend_from_slice(piece),
            None if closes && received => {
                let e = Error::Malformed("the connection closed in the middle of the head");
                return Reading::failed(None, Vec::new(), &e);
            }
            None if closes => return Reading::failed(None, Vec::new(), &Error::Closed),
            None => {
                return Reading {
                    head: None,
                    body: Vec::new(),
                    end: End::Waiting,
                    reusable: false,
                }
            }
        }
    };
    let mut decoder = head.body;
    let head_seen = seen(
        &head.headers,
        head.status.as_u16(),
        head.version,
        decoder.exact_remaining(),
    );
    let mut body = Vec::new();
    let complete = |body, reusable| Reading {
        head: Some(seen(
            &head.headers,
            head.status.as_u16(),
            head.version,
            head.body.exact_remaining(),
        )),
        body,
        end: End::Complete,
        reusable,
    };
    if decoder.exact_remaining() == Some(0) {
        return complete(body, head.keep_alive && read.is_empty());
    }
    loop {
        match decoder.step(&mut read) {
            Ok(Step::Data(data)) => {
                body.extend_from_slice(&data);
                if decoder.is_done() {
                    return complete(body, head.keep_alive && read.is_empty());
                }
                continue;
            }
            Ok(Step::End) => return complete(body, head.keep_alive && read.is_empty()),
            Ok(Step::More) => {}
            Err(e) => return Reading::failed(Some(head_seen), body, &e),
        }
        match pieces.next() {
            Some(piece) => read.extend_from_slice(piece),
            None if closes => {
                return match decoder.closed() {
                    Ok(()) => complete(body, false),
                    Err(e) => Reading::failed(Some(head_seen), body, &e),
                }
            }
            None => {
                return Reading {
                    head: Some(head_seen),
                    body,
                    end: End::Waiting,
                    reusable: false,
                }
            }
        }
    }
}

/// A provider that has written `pieces` (each one read at a time) and then closes or waits.
/// Writes go nowhere.
struct Script {
    pieces: VecDeque<Vec<u8>>,
    closes: bool,
}

impl AsyncRead for Script {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(mut piece) = self.pieces.pop_front() else {
            // Nothing more will come: a close reads as end of stream; otherwise wait (for ever,
            // since no waker is kept: the caller sees `Pending` and stops).
            return if self.closes {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            };
        };
        let n = piece.len().min(buf.remaining());
        buf.put_slice(&piece[..n]);
        if n < piece.len() {
            piece.drain(..n);
            self.pieces.push_front(piece);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Script {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct Pooled(Arc<AtomicBool>);

impl<S> Recycle<S> for Pooled {
    fn recycle(self, _conn: Conn<S>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn empty() -> RequestBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Reads a response to `method` through a [`Conn`], over a transport that yields `pieces`.
/// Never waits: the transport is always ready until its script runs out.
pub fn exchange<'a>(
    method: &Method,
    pieces: impl IntoIterator<Item = &'a [u8]>,
    closes: bool,
    max_head: usize,
) -> Reading {
    let script = Script {
        pieces: pieces
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(<[u8]>::to_vec)
            .collect(),
        closes,
    };
    let mut cx = Context::from_waker(Waker::noop());
    let pooled = Arc::new(AtomicBool::new(false));
    let mut headers = HeaderMap::new();
    let sent = Conn::new(script, max_head).send(
        method,
        "/",
        &mut headers,
        empty(),
        Pooled(pooled.clone()),
    );
    let response = match pin!(sent).poll(&mut cx) {
        Poll::Ready(Ok(response)) => response,
        Poll::Ready(Err(failed)) => return Reading::failed(None, Vec::new(), &failed.error),
        Poll::Pending => {
            return Reading {
                head: None,
                body: Vec::new(),
                end: End::Waiting,
                reusable: false,
            }
        }
    };
    let (parts, body) = response.into_parts();
    let head = seen(
        &parts.headers,
        parts.status.as_u16(),
        parts.version,
        body.size_hint().exact(),
    );
    let mut body = pin!(body);
    let mut bytes = Vec::new();
    let end = loop {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            Poll::Ready(Some(Err(e))) => break End::Failed(e.to_string()),
            Poll::Ready(None) => break End::Complete,
            Poll::Pending => break End::Waiting,
        }
    };
    Reading {
        head: Some(head),
        body: bytes,
        end,
        reusable: pooled.load(Ordering::SeqCst),
    }
}

/// Cuts `stream` into pieces of sizes drawn from `seed` (1 to 64 bytes each).
pub fn pieces(stream: &[u8], seed: u16) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 1;
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        // xorshift: cheap, and the same seed always cuts the same way.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize % 64 + 1).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        out.push(piece);
        rest = tail;
    }
    out
}

/// The fuzz entry. `data[0]` picks the method (bit 0: `HEAD`, else `GET`) and whether the
/// provider closes after its bytes (bit 1); `data[1..3]` seed the cuts; the rest is what the
/// provider sends. Panics on a broken promise.
pub fn response(data: &[u8]) {
    let Some((&[flags, a, b], stream)) = data.split_first_chunk::<3>() else {
        return;
    };
    let method = if flags & 1 == 1 {
        Method::HEAD
    } else {
        Method::GET
    };
    let closes = flags & 2 == 2;
    let split = pieces(stream, u16::from_le_bytes([a, b]));
    let whole = read(&method, [stream], closes, FUZZ_MAX_HEAD);
    let cut = read(&method, split.iter().copied(), closes, FUZZ_MAX_HEAD);
    check_framing(&whole, stream.len());
    // How the bytes were cut changes nothing, except that bytes behind a response that
    // have not arrived yet cannot keep its connection from reuse.
    assert_eq!(
        (&whole.head, &whole.body, &whole.end),
        (&cut.head, &cut.body, &cut.end),
        "whole and cut readings differ"
    );
    assert!(!whole.reusable || cut.reusable, "reuse depends on the cuts");
    let through_conn = exchange(&method, split.iter().copied(), closes, FUZZ_MAX_HEAD);
    assert_eq!(
        through_conn, cut,
        "the connection and the decoders disagree"
    );
}

/// A body never comes out longer than its framing or than what was sent, and a response
/// that is complete delivered all its framing promised.
pub fn check_framing(reading: &Reading, sent: usize) {
    assert!(reading.body.len() <= sent, "more body than bytes sent");
    let Some(head) = &reading.head else {
        assert!(reading.body.is_empty(), "a body without a head");
        return;
    };
    if let Some(length) = head.length {
        assert!(reading.body.len() as u64 <= length, "more body than framed");
        if reading.end == End::Complete {
            assert_eq!(
                reading.body.len() as u64,
                length,
                "a short body read as complete"
            );
        }
    }
    if reading.reusable {
        assert_eq!(
            reading.end,
            End::Complete,
            "a connection reused mid-response"
        );
        assert_eq!(
            head.version,
            Version::HTTP_11,
            "an HTTP/1.0 connection reused"
        );
    }
}
