//! Reading framed messages from an async byte stream (feature `tokio`).
//!
//! Async readers cannot be handed to the blocking [`StreamReader`]: it
//! would block the runtime's thread in the middle of a message. So the
//! async side only frames: it reads whole messages, still encoded, into a
//! buffer, and decoding then runs over that buffer without waiting (for a
//! whole stream, [`StreamReader::try_open_bytes`] shares its bodies
//! without a copy). The same limits hold: a declared length beyond
//! [`ReadLimits`] is refused before anything is reserved for it, and
//! memory grows only as the bytes arrive.
//!
//! [`StreamReader`]: super::StreamReader
//! [`StreamReader::try_open_bytes`]: super::StreamReader::try_open_bytes

use arrow_ipc::MessageHeader;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::frame::{CONTINUATION, EAGER_RESERVE_BYTES, ReadLimits, body_length, verify_header};
use crate::{Result, WireError};

/// What the message [`read_message`] appended is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramedKind {
    /// A schema message: the start of a stream.
    Schema,
    /// A dictionary batch, which precedes the record batch that uses it.
    Dictionary,
    /// A record batch.
    RecordBatch,
    /// The end-of-stream marker.
    EndOfStream,
}

/// Reads the next framed message from `reader` and appends its bytes,
/// framing included, to `out`. `Ok(None)` when the byte stream ended
/// cleanly before the message began.
pub async fn read_message<R: AsyncRead + Unpin>(
    reader: &mut R,
    limits: &ReadLimits,
    out: &mut Vec<u8>,
) -> Result<Option<FramedKind>> {
    let mut word = [0u8; 4];
    let first = reader.read(&mut word).await?;
    if first == 0 {
        return Ok(None);
    }
    read_exact(reader, &mut word[first..], "message length prefix").await?;
    out.extend_from_slice(&word);
    let mut len = u32::from_le_bytes(word);
    if len == CONTINUATION {
        read_exact(reader, &mut word, "message length prefix").await?;
        out.extend_from_slice(&word);
        len = u32::from_le_bytes(word);
    }
    if len == 0 {
        return Ok(Some(FramedKind::EndOfStream));
    }
    if len > i32::MAX as u32 || len > limits.max_metadata_bytes {
        return Err(WireError::TooLarge {
            size: u64::from(len),
            limit: u64::from(limits.max_metadata_bytes),
        });
    }
    let header_start = out.len();
    append_claimed(reader, out, len as usize, "message header").await?;
    let message = verify_header(&out[header_start..])?;
    let kind = match message.header_type() {
        MessageHeader::Schema => FramedKind::Schema,
        MessageHeader::DictionaryBatch => FramedKind::Dictionary,
        MessageHeader::RecordBatch => FramedKind::RecordBatch,
        other => {
            return Err(WireError::Malformed(format!(
                "unexpected IPC message type {other:?}"
            )));
        }
    };
    let body_len = body_length(&message, limits)?;
    append_claimed(reader, out, body_len, "message body").await?;
    Ok(Some(kind))
}

/// Reads one whole IPC stream, schema to end-of-stream marker, appending
/// its bytes to `out`. `Ok(false)` when the byte stream ended cleanly
/// before the stream began.
pub async fn read_stream<R: AsyncRead + Unpin>(
    reader: &mut R,
    limits: &ReadLimits,
    out: &mut Vec<u8>,
) -> Result<bool> {
    let mut first = true;
    loop {
        match read_message(reader, limits, out).await? {
            None if first => return Ok(false),
            None => {
                return Err(WireError::Truncated {
                    context: "stream before its end-of-stream marker",
                });
            }
            Some(FramedKind::EndOfStream) => return Ok(true),
            Some(_) => first = false,
        }
    }
}

async fn read_exact<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    context: &'static str,
) -> Result<()> {
    match reader.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(WireError::Truncated { context })
        }
        Err(e) => Err(e.into()),
    }
}

/// Appends exactly `len` announced bytes to `out`, reserving as they
/// arrive beyond [`EAGER_RESERVE_BYTES`], as the blocking reader does.
async fn append_claimed<R: AsyncRead + Unpin>(
    reader: &mut R,
    out: &mut Vec<u8>,
    len: usize,
    context: &'static str,
) -> Result<()> {
    let end = out.len().checked_add(len).ok_or(WireError::TooLarge {
        size: len as u64,
        limit: usize::MAX as u64,
    })?;
    while out.len() < end {
        let wanted = end - out.len();
        if out.capacity() == out.len() {
            let more = wanted.min(out.capacity().max(EAGER_RESERVE_BYTES));
            out.try_reserve(more).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::OutOfMemory,
                    format!("cannot hold the {len}-byte {context}"),
                )
            })?;
        }
        let room = (out.capacity() - out.len()).min(wanted);
        let read = (&mut *reader).take(room as u64).read_to_end(out).await?;
        if read < room {
            return Err(WireError::Truncated { context });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;
    use crate::ipc::{StreamReader, write_stream_bytes};
    use crate::metadata::Metadata;

    fn two_streams() -> Vec<u8> {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![7]))])
            .unwrap();
        let md = Metadata::new().with("k", "v");
        let mut bytes = write_stream_bytes(&schema, [(&batch, &md), (&batch, &md)]).unwrap();
        bytes.extend(write_stream_bytes(&schema, []).unwrap());
        bytes
    }

    #[tokio::test]
    async fn streams_are_framed_one_at_a_time_and_decode_as_written() {
        let bytes = two_streams();
        let mut input = bytes.as_slice();
        let mut first = Vec::new();
        assert!(
            read_stream(&mut input, &ReadLimits::default(), &mut first)
                .await
                .unwrap()
        );
        let mut second = Vec::new();
        assert!(
            read_stream(&mut input, &ReadLimits::default(), &mut second)
                .await
                .unwrap()
        );
        assert_eq!([first.as_slice(), &second].concat(), bytes);
        let mut end = Vec::new();
        assert!(
            !read_stream(&mut input, &ReadLimits::default(), &mut end)
                .await
                .unwrap()
        );

        let mut reader = StreamReader::open(first.as_slice()).unwrap();
        let batch = reader.next_batch().unwrap().unwrap();
        assert_eq!(batch.metadata.get("k"), Some("v"));
        assert!(reader.next_batch().unwrap().is_some());
        assert!(reader.next_batch().unwrap().is_none());
    }

    #[tokio::test]
    async fn cut_streams_and_oversized_claims_are_errors() {
        let bytes = two_streams();
        for cut in [3, 9, 40, bytes.len() / 2] {
            let mut input = &bytes[..cut];
            let result = read_stream(&mut input, &ReadLimits::default(), &mut Vec::new()).await;
            assert!(
                matches!(result, Err(WireError::Truncated { .. })),
                "cut at {cut}: {result:?}"
            );
        }
        let tight = ReadLimits {
            max_metadata_bytes: 16,
            max_body_bytes: 0,
        };
        let mut input = bytes.as_slice();
        let result = read_stream(&mut input, &tight, &mut Vec::new()).await;
        assert!(
            matches!(result, Err(WireError::TooLarge { .. })),
            "{result:?}"
        );
        // A claimed 2 GiB body behind 100 bytes reserves what arrived, not
        // what was claimed.
        let mut out = Vec::new();
        let mut input = &[0u8; 100][..];
        let result = append_claimed(&mut input, &mut out, 1 << 31, "message body").await;
        assert!(
            matches!(result, Err(WireError::Truncated { .. })),
            "{result:?}"
        );
        assert!(
            out.capacity() <= 2 * EAGER_RESERVE_BYTES,
            "{}",
            out.capacity()
        );
    }
}
