//! The body stage: the caller's request body on its way to the provider: buffered (and so
//! replayable after a 401) when it fits the replay cap, streamed otherwise; never longer than
//! the caller's limit. Buffering it is bounded by the request timeout, and a caller that leaves
//! its body silent for `body_read_timeout` (buffered or streaming) is told so
//! (`body_read_timeout`): a stalled upload is the caller's fault, not the provider's.

use crate::body::{full, BoxError, ProxyBody};
use crate::body::{BodyReadTimeout, IdleTimer};
use crate::error::{Category, GatewayError};
use bytes::{Buf, Bytes};
use futures_util::stream::{self, StreamExt};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, BodyStream, Limited, StreamBody};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub enum RequestBody {
    Empty,
    /// Whole body in memory: can be sent again after a refresh.
    Buffered(Bytes),
    /// Larger than the replay cap: sent once. The meter counts it as it goes.
    Streaming(Option<ProxyBody>, Arc<Meter>),
}

/// What a streamed caller body has brought so far, and whether the request is waiting on it
/// now (so that a request timeout that strikes then is blamed on the caller).
#[derive(Debug, Default)]
pub(crate) struct Meter {
    bytes: AtomicU64,
    waiting: AtomicBool,
}

impl Meter {
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn waiting(&self) -> bool {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// A request timeout that struck while the exchange waited on the caller's streamed body is the
/// caller's stall, not the provider's slowness.
pub(crate) fn blame_stalled_caller(error: GatewayError, bytes_in: &BytesIn) -> GatewayError {
    match bytes_in {
        BytesIn::Counted(meter)
            if error.category == Category::UpstreamTimeout && meter.waiting() =>
        {
            GatewayError::body_read_timeout()
        }
        _ => error,
    }
}

/// The caller's body with an idle deadline: it fails with [`BodyReadTimeout`] when nothing
/// arrives for `idle`.
struct Timed<B> {
    inner: B,
    stall: IdleTimer,
    /// Set once the body streams on to the provider.
    meter: Option<Arc<Meter>>,
}

impl<B> Timed<B> {
    fn meter(&mut self, read: u64) -> Arc<Meter> {
        let meter = Arc::new(Meter {
            bytes: AtomicU64::new(read),
            waiting: AtomicBool::new(false),
        });
        self.meter = Some(meter.clone());
        meter
    }
}

impl<B> Body for Timed<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.stall.arrived();
            if let Some(meter) = &this.meter {
                meter.waiting.store(false, Ordering::Relaxed);
                if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
                    let n = data.map_or(0, |d| d.remaining() as u64);
                    meter.bytes.fetch_add(n, Ordering::Relaxed);
                }
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let expired = this.stall.poll_expired(cx);
        if let Some(meter) = &this.meter {
            meter
                .waiting
                .store(this.stall.is_waiting(), Ordering::Relaxed);
        }
        if expired {
            let after = this.stall.idle();
            return Poll::Ready(Some(Err(Box::new(BodyReadTimeout { after }))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Reads the caller's body as far as the pipeline needs it: `limit` is the largest body the
/// policy allows this request. A caller that trickles its body must not hold the request open
/// for ever, so preparing it is bounded by the request timeout (most requests have no body and
/// need no timer).
pub(crate) async fn read<B>(
    body: B,
    content_length: Option<u64>,
    limit: u64,
    server: &crate::config::ServerConfig,
) -> Result<RequestBody, GatewayError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    if body.is_end_stream() {
        return Ok(RequestBody::Empty);
    }
    let prepare = RequestBody::prepare(
        body,
        content_length,
        limit,
        server.replay_buffer_bytes,
        server.body_read_timeout,
    );
    tokio::time::timeout(server.request_timeout, prepare)
        .await
        .map_err(|_| GatewayError::body_read_timeout())?
}

/// The caller's `Content-Length`, checked (RFC 9110: digits only, a list must agree).
pub(crate) fn content_length(headers: &http::HeaderMap) -> Result<Option<u64>, GatewayError> {
    use crate::stages::hygiene::InvalidContentLength;
    crate::stages::hygiene::content_length(headers).map_err(|e| match e {
        InvalidContentLength::NotANumber => {
            GatewayError::bad_request("invalid_content_length", "Content-Length is not a number")
        }
        InvalidContentLength::Conflicting => {
            GatewayError::bad_request("invalid_content_length", "Content-Length values disagree")
        }
    })
}

fn too_large(limit: u64) -> GatewayError {
    GatewayError::new(
        Category::PayloadTooLarge,
        "body_too_large",
        format!("request body exceeds the {limit}-byte limit"),
    )
}

fn read_failed(error: BoxError) -> GatewayError {
    if error.is::<BodyReadTimeout>() {
        return GatewayError::body_read_timeout();
    }
    GatewayError::bad_request("body_read_failed", "the request body could not be read")
}

impl RequestBody {
    /// `limit`: largest body the caller may send; `replay_cap`: largest body kept in memory;
    /// `idle`: longest the caller may leave its body silent.
    pub async fn prepare<B>(
        body: B,
        content_length: Option<u64>,
        limit: u64,
        replay_cap: u64,
        idle: Duration,
    ) -> Result<Self, GatewayError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        if let Some(len) = content_length {
            if len > limit {
                return Err(too_large(limit));
            }
            if len == 0 {
                return Ok(RequestBody::Empty);
            }
        }
        if body.is_end_stream() {
            return Ok(RequestBody::Empty);
        }
        let mut body = Timed {
            inner: body,
            stall: IdleTimer::new(idle),
            meter: None,
        };
        let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
        if matches!(content_length, Some(len) if len > replay_cap) {
            let meter = body.meter(0);
            let limited = Limited::new(body, limit_usize).boxed_unsync();
            return Ok(RequestBody::Streaming(Some(limited), meter));
        }
        // Unknown length or small: read up to the replay cap.
        let mut prefix: Vec<Bytes> = Vec::new();
        let mut read: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(read_failed)?;
            let Ok(data) = frame.into_data() else {
                continue;
            }; // trailers are not forwarded
            read += data.len() as u64;
            if read > limit {
                return Err(too_large(limit));
            }
            prefix.push(data);
            if read > replay_cap {
                // Too big to keep: send what we have, then the rest as it arrives.
                let remaining = usize::try_from(limit - read).unwrap_or(usize::MAX);
                let meter = body.meter(read);
                let rest = BodyStream::new(Limited::new(body, remaining));
                let head = stream::iter(
                    prefix
                        .into_iter()
                        .map(|b| Ok::<_, BoxError>(Frame::data(b))),
                );
                let chained = StreamBody::new(head.chain(rest));
                return Ok(RequestBody::Streaming(Some(chained.boxed_unsync()), meter));
            }
        }
        Ok(match prefix.len() {
            0 => RequestBody::Empty,
            1 => RequestBody::Buffered(prefix.pop().unwrap_or_default()),
            _ => RequestBody::Buffered(prefix.concat().into()),
        })
    }

    pub fn replayable(&self) -> bool {
        !matches!(self, RequestBody::Streaming(..))
    }

    /// How the record learns the body's size: known now, or counted as it streams.
    pub(crate) fn bytes_in(&self) -> BytesIn {
        match self {
            RequestBody::Empty => BytesIn::Known(0),
            RequestBody::Buffered(bytes) => BytesIn::Known(bytes.len() as u64),
            RequestBody::Streaming(_, meter) => BytesIn::Counted(meter.clone()),
        }
    }

    /// The body for one send. A streaming body can be taken once; afterwards it is empty.
    pub fn take(&mut self) -> ProxyBody {
        match self {
            RequestBody::Empty => crate::body::empty(),
            RequestBody::Buffered(bytes) => full(bytes.clone()),
            RequestBody::Streaming(body, _) => body.take().unwrap_or_else(crate::body::empty),
        }
    }

    pub fn len_hint(&self) -> Option<u64> {
        match self {
            RequestBody::Empty => Some(0),
            RequestBody::Buffered(b) => Some(b.len() as u64),
            RequestBody::Streaming(..) => None,
        }
    }
}

/// The caller's body bytes: known when the body was buffered, counted as they stream otherwise.
#[derive(Debug, Clone, Default)]
pub(crate) enum BytesIn {
    #[default]
    None,
    Known(u64),
    Counted(Arc<Meter>),
}

impl BytesIn {
    pub fn get(&self) -> u64 {
        match self {
            BytesIn::None => 0,
            BytesIn::Known(n) => *n,
            BytesIn::Counted(meter) => meter.bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    const IDLE: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn small_bodies_are_buffered_and_replayable() {
        let mut body = RequestBody::prepare(
            Full::new(Bytes::from_static(b"{\"a\":1}")),
            Some(7),
            100,
            64,
            IDLE,
        )
        .await
        .unwrap();
        assert!(body.replayable());
        for _ in 0..2 {
            let bytes = body.take().collect().await.unwrap().to_bytes();
            assert_eq!(&bytes[..], b"{\"a\":1}");
        }
    }

    #[tokio::test]
    async fn declared_length_over_limit_is_rejected_before_reading() {
        let err = RequestBody::prepare(
            Full::new(Bytes::from_static(b"x")),
            Some(101),
            100,
            64,
            IDLE,
        )
        .await
        .err()
        .unwrap();
        assert_eq!(err.category, Category::PayloadTooLarge);
    }

    #[tokio::test]
    async fn unknown_length_over_cap_streams_whole_body() {
        let chunks: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = (0..10)
            .map(|i| Ok(Frame::data(Bytes::from(vec![b'a' + i as u8; 10]))))
            .collect();
        let streamed = StreamBody::new(stream::iter(chunks));
        let mut body = RequestBody::prepare(streamed, None, 1000, 25, IDLE)
            .await
            .unwrap();
        assert!(!body.replayable());
        let bytes = body.take().collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), 100);
        assert_eq!(bytes[0], b'a');
        assert_eq!(bytes[99], b'j');
    }

    #[tokio::test]
    async fn unknown_length_over_limit_fails() {
        let chunks: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = (0..10)
            .map(|_| Ok(Frame::data(Bytes::from(vec![b'x'; 10]))))
            .collect();
        let streamed = StreamBody::new(stream::iter(chunks));
        let err = RequestBody::prepare(streamed, None, 50, 1000, IDLE)
            .await
            .err()
            .unwrap();
        assert_eq!(err.category, Category::PayloadTooLarge);
        // Over the replay cap, the limit is enforced while streaming.
        let chunks: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = (0..10)
            .map(|_| Ok(Frame::data(Bytes::from(vec![b'x'; 10]))))
            .collect();
        let mut body =
            RequestBody::prepare(StreamBody::new(stream::iter(chunks)), None, 50, 15, IDLE).await;
        match &mut body {
            Err(e) => assert_eq!(e.category, Category::PayloadTooLarge),
            Ok(b) => assert!(b.take().collect().await.is_err()),
        }
    }
}
