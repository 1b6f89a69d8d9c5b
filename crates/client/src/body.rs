//! The request body: empty, or chunks handed over by the task reading an upload.

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame, SizeHint};
use tokio::sync::mpsc;

/// What the reader of an upload hands the body.
#[derive(Debug)]
pub(crate) enum UploadChunk {
    /// More bytes.
    Data(Bytes),
    /// The upload is whole.
    End,
    /// Reading the upload failed: abort the body.
    Failed(std::io::Error),
}

/// A request body. A streamed body ends normally only at an explicit [`UploadChunk::End`]: a
/// channel closed without it (the reader was dropped part-way) is an error, which makes hyper
/// abort the request instead of ending it, so the runtime never stores part of a file as if
/// it were the whole.
#[derive(Debug)]
pub(crate) enum ClientBody {
    /// No body.
    Empty,
    /// Chunks from the upload's reader.
    Stream(mpsc::Receiver<UploadChunk>),
    /// The stream has ended.
    Ended,
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let ClientBody::Stream(rx) = this else {
            return Poll::Ready(None);
        };
        match rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(UploadChunk::Data(bytes))) => {
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Some(UploadChunk::End)) => {
                *this = ClientBody::Ended;
                Poll::Ready(None)
            }
            Poll::Ready(Some(UploadChunk::Failed(e))) => {
                *this = ClientBody::Ended;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                *this = ClientBody::Ended;
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "the upload was abandoned before its end",
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        !matches!(self, ClientBody::Stream(_))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Stream(_) => SizeHint::default(),
            ClientBody::Empty | ClientBody::Ended => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    #[tokio::test]
    async fn a_stream_ends_only_at_an_explicit_end() {
        let (tx, rx) = mpsc::channel(4);
        tx.send(UploadChunk::Data(Bytes::from_static(b"ab")))
            .await
            .unwrap();
        tx.send(UploadChunk::End).await.unwrap();
        let whole = ClientBody::Stream(rx).collect().await.unwrap().to_bytes();
        assert_eq!(&whole[..], b"ab");

        let (tx, rx) = mpsc::channel(4);
        tx.send(UploadChunk::Data(Bytes::from_static(b"ab")))
            .await
            .unwrap();
        drop(tx);
        assert!(ClientBody::Stream(rx).collect().await.is_err());
    }
}
