//! The response body that completes the request's record: at its end, when it breaks, or when
//! the caller's connection drops it half-sent. It lives in the one box the response body
//! already takes, so recording at the end costs no allocation of its own.

use crate::body::{BoxError, ProxyBody};
use crate::pipeline::recorder::Recorder;
use bytes::{Buf, Bytes};
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::task::{Context, Poll};

/// `response` goes to the caller; `recorder` completes the request's record when its body ends.
pub(crate) fn recorded<B>(response: Response<B>, mut recorder: Recorder) -> Response<ProxyBody>
where
    B: Body<Data = Bytes, Error = BoxError> + Send + Unpin + 'static,
{
    let (head, body) = response.into_parts();
    recorder.head_sent(head.status);
    if body.is_end_stream() {
        // The caller's connection will not poll a body that has ended already.
        recorder.finish();
    }
    Response::from_parts(
        head,
        RecordedBody {
            inner: body,
            recorder,
        }
        .boxed_unsync(),
    )
}

/// A response body that records its request when it ends (see [`recorded`]).
pub(crate) struct RecordedBody<B> {
    inner: B,
    recorder: Recorder,
}

impl<B> Body for RecordedBody<B>
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.recorder.sent(data.remaining() as u64);
                }
                // The caller's connection stops polling once the body says it has ended.
                if this.inner.is_end_stream() {
                    this.recorder.finish();
                }
            }
            Poll::Ready(None) => this.recorder.finish(),
            Poll::Ready(Some(Err(error))) => {
                let (category, code) = crate::forward::upstream::body_failure(error.as_ref());
                let ctx = &this.recorder.ctx;
                tracing::warn!(
                    request_id = ctx.request_id.as_str(),
                    connection = ctx.connection.as_deref().map_or("none", |c| c.id.as_str()),
                    code,
                    cause = %error,
                    "provider response body failed after its head"
                );
                this.recorder.failed(category, code);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
