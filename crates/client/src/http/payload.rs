//! Request bodies held in pieces: a large batch's Arrow buffers go to the
//! socket as they are, shared with the batch, instead of being copied into
//! one buffer first (an 8 MB exchange turn cost the client two copies of
//! its input before: encoding into a growing vector, and its regrowths).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use arrow_array::RecordBatch;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use vgirpc_wire::ipc::{Chunks, StreamWriter};
use vgirpc_wire::metadata::Metadata;

use crate::ClientError;

/// A complete request body. Cloning it (to send it again) shares its pieces.
#[derive(Debug, Clone, Default)]
pub(super) struct Payload {
    /// In order, none of them empty.
    pieces: Vec<Bytes>,
    len: usize,
}

impl Payload {
    /// One IPC stream holding `batch` with `md` on its message.
    pub(super) fn of_batch(batch: &RecordBatch, md: &Metadata) -> Result<Self, ClientError> {
        let codec = |source| ClientError::Codec {
            context: "a request body".into(),
            source,
        };
        let mut chunks = Chunks::new();
        let mut writer = StreamWriter::try_new(&mut chunks, batch.schema_ref()).map_err(codec)?;
        writer.write_shared(batch, md).map_err(codec)?;
        writer.finish().map_err(codec)?;
        let len = chunks.len();
        Ok(Self {
            pieces: chunks.into_pieces(),
            len,
        })
    }

    /// Bytes in all pieces.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The body in one piece, joined only when it is held in several:
    /// what compression and uploads need.
    pub(super) fn contiguous(&self) -> Bytes {
        match self.pieces.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => Bytes::from(many.concat()),
        }
    }

    /// The pieces in order, as they go out.
    pub(super) fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }

    /// The body as hyper sends it, its length known up front so that it
    /// goes with a `Content-Length` rather than in chunked encoding.
    pub(super) fn body(&self) -> PayloadBody {
        PayloadBody {
            pieces: self.pieces.clone().into_iter(),
            remaining: self.len as u64,
        }
    }
}

impl From<Bytes> for Payload {
    fn from(bytes: Bytes) -> Self {
        let len = bytes.len();
        let pieces = if bytes.is_empty() {
            vec![]
        } else {
            vec![bytes]
        };
        Self { pieces, len }
    }
}

/// The [`Body`] of one sending of a [`Payload`]: its pieces, one frame each.
#[derive(Debug)]
pub(crate) struct PayloadBody {
    pieces: std::vec::IntoIter<Bytes>,
    remaining: u64,
}

impl Body for PayloadBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(this.pieces.next().map(|piece| {
            this.remaining -= piece.len() as u64;
            Ok(Frame::data(piece))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Float64Array;
    use arrow_schema::{DataType, Field, Schema};
    use http_body_util::BodyExt;
    use vgirpc_wire::ipc::{read_stream_bytes, write_stream_bytes};

    use super::*;

    fn batch(rows: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
        let values = Float64Array::from_iter_values((0..rows).map(|i| i as f64 * 0.5));
        RecordBatch::try_new(schema, vec![Arc::new(values)]).unwrap()
    }

    async fn sent(payload: &Payload) -> Bytes {
        payload.body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn a_large_batch_is_sent_from_its_own_buffers_and_reads_back() {
        let batch = batch(1 << 20);
        let md = Metadata::new().with("vgi_rpc.method", "scale");
        let payload = Payload::of_batch(&batch, &md).unwrap();
        let column = batch.column(0).to_data().buffers()[0].clone();
        assert!(
            payload
                .pieces
                .iter()
                .any(|piece| piece.as_ptr() == column.as_ptr()),
            "the column's buffer is a piece of the body, not a copy"
        );
        let body = sent(&payload).await;
        assert_eq!(body.len(), payload.len());
        assert_eq!(body, payload.contiguous());
        assert_eq!(
            &body[..],
            &write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap()[..]
        );
        let (_, read) = read_stream_bytes(&body).unwrap();
        assert_eq!(read[0].batch, batch);
        assert_eq!(read[0].metadata.get("vgi_rpc.method"), Some("scale"));
    }

    #[tokio::test]
    async fn every_sending_sends_the_whole_body_with_its_length_known() {
        let payload = Payload::of_batch(&batch(3), &Metadata::new()).unwrap();
        for _ in 0..2 {
            let body = payload.body();
            assert_eq!(body.size_hint().exact(), Some(payload.len() as u64));
            assert_eq!(sent(&payload).await.len(), payload.len());
        }
        let empty = Payload::from(Bytes::new());
        assert!(empty.body().is_end_stream());
        assert_eq!(empty.contiguous(), Bytes::new());
    }
}
