//! Writing one IPC stream, with custom metadata on each batch message.

use std::io::{self, IoSlice, Write};

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::writer::{
    DictionaryTracker, EncodedData, IpcDataGenerator, IpcWriteContext, IpcWriteOptions,
    StreamEncoder,
};
use arrow_ipc::{MessageHeader, MetadataVersion};
use arrow_schema::SchemaRef;

use super::chunks::Chunks;
use super::encoded_schemas;
use super::frame::{CONTINUATION, EOS};
use super::rewrite::attach_custom_metadata;
use crate::metadata::Metadata;
use crate::{Result, WireError};

/// Writes one IPC stream; [`StreamWriter::finish`] writes the EOS marker.
pub struct StreamWriter<W: Write> {
    writer: W,
    schema: SchemaRef,
    generator: IpcDataGenerator,
    tracker: DictionaryTracker,
    context: IpcWriteContext,
    options: IpcWriteOptions,
    /// Encoder for large batches, made when the first one comes: it lists
    /// a message as buffers that share the batch's own Arrow buffers, so a
    /// multi-megabyte body reaches `writer` without first being copied
    /// into one message buffer. Small batches skip it, as its per-buffer
    /// bookkeeping costs more than copying a few bytes.
    large: Option<StreamEncoder>,
    /// Dictionaries are tracked by one encoder per stream, so streams that
    /// have them always use the copying one.
    has_dictionaries: bool,
}

/// Smallest batch (by Arrow memory size) written through the large-batch
/// encoder.
pub(super) const LARGE_BATCH_BYTES: usize = 256 * 1024;

impl<W: Write> std::fmt::Debug for StreamWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

pub(super) fn write_options() -> IpcWriteOptions {
    IpcWriteOptions::try_new(8, false, MetadataVersion::V5).expect("8-byte alignment is valid")
}

impl<W: Write> StreamWriter<W> {
    /// Starts an IPC stream on `writer` by writing the schema message.
    pub fn try_new(mut writer: W, schema: &SchemaRef) -> Result<Self> {
        let options = write_options();
        let generator = IpcDataGenerator::default();
        let mut tracker = DictionaryTracker::new(false);
        // Only schemas without dictionaries are kept.
        let has_dictionaries = match encoded_schemas::cached(schema) {
            Some(message) => {
                writer.write_all(&message)?;
                false
            }
            None => {
                let encoded = generator.schema_to_bytes_with_dictionary_tracker(
                    schema,
                    &mut tracker,
                    &options,
                );
                let has_dictionaries = schema
                    .flattened_fields()
                    .iter()
                    .any(|f| matches!(f.data_type(), arrow_schema::DataType::Dictionary(..)));
                if has_dictionaries {
                    arrow_ipc::writer::write_message(&mut writer, encoded, &options)?;
                } else {
                    let mut message = Vec::new();
                    arrow_ipc::writer::write_message(&mut message, encoded, &options)?;
                    writer.write_all(&message)?;
                    encoded_schemas::keep(schema, message);
                }
                has_dictionaries
            }
        };
        Ok(Self {
            writer,
            schema: schema.clone(),
            generator,
            tracker,
            context: IpcWriteContext::default(),
            options,
            large: None,
            has_dictionaries,
        })
    }

    /// Schema of this stream.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Writes `batch`, attaching `metadata` to its message when non-empty.
    pub fn write(&mut self, batch: &RecordBatch, metadata: &Metadata) -> Result<()> {
        self.write_with(batch, metadata, EncodedMessage::write_to)
    }

    /// [`StreamWriter::write`], a large batch's message going to `writer`
    /// through `emit`.
    fn write_with(
        &mut self,
        batch: &RecordBatch,
        metadata: &Metadata,
        emit: fn(&EncodedMessage, &mut W) -> Result<()>,
    ) -> Result<()> {
        if batch.schema_ref().fields() != self.schema.fields() {
            return Err(WireError::TypeMismatch {
                expected: format!("batch with schema {}", self.schema),
                found: format!("{}", batch.schema()),
            });
        }
        if !self.has_dictionaries && batch.get_array_memory_size() >= LARGE_BATCH_BYTES {
            return self.write_large(batch, metadata, emit);
        }
        let (dictionaries, mut encoded) =
            self.generator
                .encode(batch, &mut self.tracker, &self.options, &mut self.context)?;
        for dictionary in dictionaries {
            arrow_ipc::writer::write_message(&mut self.writer, dictionary, &self.options)?;
        }
        if !metadata.is_empty() {
            encoded = EncodedData {
                ipc_message: attach_custom_metadata(&encoded.ipc_message, metadata)?,
                arrow_data: encoded.arrow_data,
            };
        }
        arrow_ipc::writer::write_message(&mut self.writer, encoded, &self.options)?;
        Ok(())
    }

    fn write_large(
        &mut self,
        batch: &RecordBatch,
        metadata: &Metadata,
        emit: fn(&EncodedMessage, &mut W) -> Result<()>,
    ) -> Result<()> {
        let encoder = match &mut self.large {
            Some(encoder) => encoder,
            None => self.large.insert(StreamEncoder::try_new_with_options(
                &self.schema,
                self.options.clone(),
            )?),
        };
        let mut messages = EncodedMessages::new(encoder.encode(batch)?);
        while let Some(mut message) = messages.next_message()? {
            match message.header_type {
                // The encoder's first output repeats the schema, which
                // `try_new` has written already.
                MessageHeader::Schema => continue,
                MessageHeader::RecordBatch if !metadata.is_empty() => {
                    message.header = attach_custom_metadata(&message.header, metadata)?;
                }
                _ => {}
            }
            emit(&message, &mut self.writer)?;
        }
        Ok(())
    }

    /// Writes the EOS marker and gives back the underlying writer.
    pub fn finish(mut self) -> Result<W> {
        self.writer.write_all(&EOS)?;
        Ok(self.writer)
    }

    /// Mutable access to the underlying writer, e.g. to flush between batches.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }
}

impl StreamWriter<&mut Chunks> {
    /// [`StreamWriter::write`] that keeps a large batch's Arrow buffers as
    /// pieces of the output, shared with the batch instead of copied.
    pub fn write_shared(&mut self, batch: &RecordBatch, metadata: &Metadata) -> Result<()> {
        self.write_with(batch, metadata, |message, chunks| {
            let framed_header = message.framed_header()?;
            chunks.write_all(&framed_header)?;
            for piece in &message.body {
                chunks.push_buffer(piece);
            }
            Ok(())
        })
    }
}

/// The messages in the buffer list [`StreamEncoder`] produces, each cut into
/// its small flatbuffer header (copied, so it can be rewritten) and its
/// body (slices of the encoder's buffers, not copied).
struct EncodedMessages {
    buffers: std::vec::IntoIter<Buffer>,
    /// The unread part of the buffer being cut.
    current: Buffer,
}

/// One encoded IPC message.
struct EncodedMessage {
    header_type: MessageHeader,
    /// The flatbuffer `Message`, possibly followed by padding.
    header: Vec<u8>,
    body: Vec<Buffer>,
}

impl EncodedMessages {
    fn new(buffers: Vec<Buffer>) -> Self {
        Self {
            buffers: buffers.into_iter(),
            current: Buffer::from_vec(Vec::<u8>::new()),
        }
    }

    fn next_message(&mut self) -> Result<Option<EncodedMessage>> {
        let mut word = [0u8; 4];
        if !self.fill(&mut word)? {
            return Ok(None);
        }
        let mut len = u32::from_le_bytes(word);
        if len == CONTINUATION {
            self.expect(&mut word)?;
            len = u32::from_le_bytes(word);
        }
        let mut header = vec![0u8; len as usize];
        self.expect(&mut header)?;
        let message = arrow_ipc::root_as_message(&header)
            .map_err(|e| WireError::Malformed(format!("arrow produced an invalid message: {e}")))?;
        let header_type = message.header_type();
        let body_len = usize::try_from(message.bodyLength())
            .map_err(|_| WireError::Malformed("arrow produced a negative body length".into()))?;
        let body = self.take(body_len)?;
        Ok(Some(EncodedMessage {
            header_type,
            header,
            body,
        }))
    }

    /// Copies the next `out.len()` bytes into `out`; `false` if the list
    /// ended before the first of them.
    fn fill(&mut self, out: &mut [u8]) -> Result<bool> {
        let mut filled = 0;
        while filled < out.len() {
            if self.current.is_empty() {
                match self.buffers.next() {
                    Some(next) => self.current = next,
                    None if filled == 0 => return Ok(false),
                    None => return Err(cut_short()),
                }
                continue;
            }
            let n = self.current.len().min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&self.current.as_slice()[..n]);
            self.current = self.current.slice(n);
            filled += n;
        }
        Ok(true)
    }

    fn expect(&mut self, out: &mut [u8]) -> Result<()> {
        if out.is_empty() || self.fill(out)? {
            Ok(())
        } else {
            Err(cut_short())
        }
    }

    /// The next `len` bytes as slices of the encoder's buffers.
    fn take(&mut self, mut len: usize) -> Result<Vec<Buffer>> {
        let mut pieces = Vec::new();
        while len > 0 {
            if self.current.is_empty() {
                self.current = self.buffers.next().ok_or_else(cut_short)?;
                continue;
            }
            let n = self.current.len().min(len);
            pieces.push(self.current.slice_with_length(0, n));
            self.current = self.current.slice(n);
            len -= n;
        }
        Ok(pieces)
    }
}

fn cut_short() -> WireError {
    WireError::Malformed("arrow's encoder produced a truncated message".into())
}

impl EncodedMessage {
    /// Writes the framed message: prefix, header padded to 8 bytes, body.
    ///
    /// All of it goes in vectored writes: a `Vec` then grows once to the
    /// whole message instead of doubling (and copying) its way up to it,
    /// and a socket takes it in one `writev` rather than a call per buffer.
    fn write_to<W: Write>(&self, writer: &mut W) -> Result<()> {
        let framed_header = self.framed_header()?;
        let mut slices = Vec::with_capacity(1 + self.body.len());
        slices.push(IoSlice::new(&framed_header));
        slices.extend(self.body.iter().map(|piece| IoSlice::new(piece.as_slice())));
        write_all_vectored(writer, &mut slices)?;
        Ok(())
    }

    /// Everything before the body: continuation marker, length, and the
    /// header padded to 8 bytes.
    fn framed_header(&self) -> Result<Vec<u8>> {
        let padded = self.header.len().next_multiple_of(8);
        let padded_len = u32::try_from(padded)
            .map_err(|_| WireError::Malformed("message header too large".into()))?;
        let mut framed = Vec::with_capacity(8 + padded);
        framed.extend_from_slice(&CONTINUATION.to_le_bytes());
        framed.extend_from_slice(&padded_len.to_le_bytes());
        framed.extend_from_slice(&self.header);
        framed.resize(8 + padded, 0);
        Ok(framed)
    }
}

/// `Write::write_all` for a list of slices (the standard library's own is
/// not stable yet).
fn write_all_vectored<W: Write>(writer: &mut W, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match writer.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
