//! One body type for everything the proxy sends, whatever produced it.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;

pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// Any hyper-compatible body, boxed.
pub fn boxed<B>(b: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    b.map_err(Into::into).boxed()
}

/// `value` as pretty-printed JSON, serialized on a blocking thread in chunks of
/// [`JSON_CHUNK`] bytes that are sent as the reader takes them. At most two chunks wait in
/// memory; a reader that goes away stops the serialization.
pub fn json_stream(value: impl serde::Serialize + Send + 'static) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, BoxError>>(2);
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            buf: Vec::with_capacity(JSON_CHUNK),
            tx: tx.clone(),
        };
        let result = serde_json::to_writer_pretty(&mut out, &value)
            .map_err(BoxError::from)
            .and_then(|()| out.flush_chunk().map_err(BoxError::from));
        if let Err(e) = result {
            // The reader is gone (nothing to tell), or serialization failed: cut the body.
            let _ = tx.blocking_send(Err(e));
        }
    });
    boxed(http_body_util::StreamBody::new(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ))
}

/// The size of the chunks [`json_stream`] sends.
pub const JSON_CHUNK: usize = 64 * 1024;

struct ChunkWriter {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<http_body::Frame<Bytes>, BoxError>>,
}

impl ChunkWriter {
    fn flush_chunk(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(JSON_CHUNK));
        self.tx
            .blocking_send(Ok(http_body::Frame::data(Bytes::from(chunk))))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "reader went away"))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= JSON_CHUNK {
            self.flush_chunk()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A plain-text response (errors the proxy generates itself).
pub fn text(status: http::StatusCode, msg: impl Into<String>) -> http::Response<Body> {
    let mut r = http::Response::new(full(msg.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}

/// `inner`, failing once `deadline` passes before it ends: a route's timeout covers the whole
/// response, as Envoy's does, not only the wait for its headers. A response that stalls
/// mid-body is cut (the client sees the stream reset) instead of hanging forever.
pub fn with_deadline(inner: Body, deadline: tokio::time::Instant) -> Body {
    Deadline {
        inner,
        sleep: Box::pin(tokio::time::sleep_until(deadline)),
    }
    .boxed()
}

struct Deadline {
    inner: Body,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        if let Poll::Ready(frame) = std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(
                "response timeout: the route's timeout passed while the body was streaming".into(),
            )));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::{BodyExt, StreamBody};
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_deadline_cuts_a_stalled_body_and_spares_a_finished_one() {
        let soon = || tokio::time::Instant::now() + Duration::from_millis(50);
        let done = with_deadline(full("whole"), soon()).collect().await;
        assert_eq!(done.expect("finished in time").to_bytes(), "whole");

        // One frame, then nothing ever again.
        let frames = tokio_stream::iter([Ok::<_, BoxError>(http_body::Frame::data(
            Bytes::from_static(b"part"),
        ))])
        .chain(tokio_stream::pending());
        let stalled = boxed(StreamBody::new(frames));
        let err = with_deadline(stalled, soon())
            .collect()
            .await
            .expect_err("cut at the deadline");
        assert!(err.to_string().contains("response timeout"), "{err}");
    }

    #[tokio::test]
    async fn json_streams_in_chunks_and_equals_the_whole_document() {
        let value: Vec<String> = (0..20_000).map(|i| format!("service-{i}")).collect();
        let expected = serde_json::to_vec_pretty(&value).expect("serializes");
        assert!(
            expected.len() > 3 * JSON_CHUNK,
            "the test needs several chunks"
        );
        let mut body = json_stream(value);
        let mut got = Vec::new();
        let mut frames = 0;
        while let Some(frame) = body.frame().await {
            let data = frame
                .expect("no error")
                .into_data()
                .expect("data frames only");
            assert!(data.len() <= JSON_CHUNK + 64 * 1024, "chunks stay small");
            got.extend_from_slice(&data);
            frames += 1;
        }
        assert!(frames > 3, "sent in {frames} frames");
        assert_eq!(got, expected);
    }
}
