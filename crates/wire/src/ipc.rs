//! Arrow IPC stream framing with per-batch custom metadata.
//!
//! A vgi-rpc byte stream carries several IPC streams back to back
//! (WIRE_PROTOCOL §2): each is a schema message, dictionary and record batch
//! messages, and an end-of-stream marker. [`StreamReader`] reads exactly one
//! such stream and stops right after its EOS marker, so the next reader can
//! pick up where it left off; [`StreamWriter`] writes one.
//!
//! arrow-ipc's own stream reader and writer cannot attach metadata to an
//! individual record batch message, which vgi-rpc relies on for every log,
//! error and request batch, so the message framing lives here while Arrow
//! does the body encoding and decoding.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_buffer::Buffer;
use arrow_ipc::writer::{
    DictionaryTracker, EncodedData, IpcDataGenerator, IpcWriteContext, IpcWriteOptions,
    StreamEncoder,
};
use arrow_ipc::{MessageHeader, MetadataVersion};
use arrow_schema::{Schema, SchemaRef};
use bytes::Bytes;
use flatbuffers::FlatBufferBuilder;

use crate::metadata::Metadata;
use crate::{Result, WireError};

/// Marks a framed message; followed by the little-endian metadata length.
const CONTINUATION: u32 = 0xFFFF_FFFF;

/// The 8-byte end-of-stream marker (WIRE_PROTOCOL Appendix A).
pub const EOS: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];

/// Upper bounds on what a peer may make us allocate for one message.
///
/// Sizes are declared in the framing before the bytes arrive; without a cap
/// a single corrupt length prefix would make the reader try to allocate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest accepted flatbuffer message header.
    pub max_metadata_bytes: u32,
    /// Largest accepted message body.
    pub max_body_bytes: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_metadata_bytes: 64 * 1024 * 1024,
            max_body_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// One record batch together with the custom metadata of its IPC message.
#[derive(Debug, Clone)]
pub struct IpcBatch {
    /// The decoded batch.
    pub batch: RecordBatch,
    /// The message's custom metadata (empty when it carried none).
    pub metadata: Metadata,
}

/// What reading one framed message gave.
enum Frame<T> {
    /// A message, as its reader's `decode` turned it into a `T`.
    Message(T),
    EndOfStream,
    /// The byte stream ended cleanly before the first byte of a message.
    Eof,
}

fn read_fully<R: Read>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn read_exact_or_truncated<R: Read>(
    reader: &mut R,
    buf: &mut [u8],
    context: &'static str,
) -> Result<()> {
    if read_fully(reader, buf)? < buf.len() {
        return Err(WireError::Truncated { context });
    }
    Ok(())
}

/// Reads one framed message and hands it to `decode`.
///
/// The flatbuffer header is verified once, here, and `decode` gets the
/// verified view: verifying is a large share of the per-call CPU of a small
/// request, so it is not repeated.
fn read_frame<R: Read, T>(
    reader: &mut R,
    limits: &ReadLimits,
    take_body: TakeBody<R>,
    decode: impl FnOnce(arrow_ipc::Message<'_>, Buffer) -> Result<T>,
) -> Result<Frame<T>> {
    let header = match read_header(reader, limits)? {
        Frame::Message(header) => header,
        Frame::EndOfStream => return Ok(Frame::EndOfStream),
        Frame::Eof => return Ok(Frame::Eof),
    };
    let message = verify_header(&header)?;
    let body_len = body_length(&message, limits)?;
    let body = take_body(reader, body_len)?;
    decode(message, body).map(Frame::Message)
}

/// How a reader turns the next `len` bytes into a message body: copied
/// out of any [`Read`], or sliced out of bytes already in memory.
type TakeBody<R> = fn(&mut R, usize) -> Result<Buffer>;

/// Reads a message's length prefix and flatbuffer header, unverified.
fn read_header<R: Read>(reader: &mut R, limits: &ReadLimits) -> Result<Frame<Vec<u8>>> {
    let mut word = [0u8; 4];
    match read_fully(reader, &mut word)? {
        0 => return Ok(Frame::Eof),
        4 => {}
        _ => {
            return Err(WireError::Truncated {
                context: "message length prefix",
            });
        }
    }
    let mut len = u32::from_le_bytes(word);
    if len == CONTINUATION {
        read_exact_or_truncated(reader, &mut word, "message length prefix")?;
        len = u32::from_le_bytes(word);
    }
    if len == 0 {
        return Ok(Frame::EndOfStream);
    }
    if len > i32::MAX as u32 || len > limits.max_metadata_bytes {
        return Err(WireError::TooLarge {
            size: u64::from(len),
            limit: u64::from(limits.max_metadata_bytes),
        });
    }
    let header = read_claimed(reader, len as usize, "message header")?;
    Ok(Frame::Message(header))
}

fn verify_header(header: &[u8]) -> Result<arrow_ipc::Message<'_>> {
    arrow_ipc::root_as_message(header)
        .map_err(|e| WireError::Malformed(format!("invalid message flatbuffer: {e}")))
}

/// The body length `message` declares, within `limits`.
fn body_length(message: &arrow_ipc::Message<'_>, limits: &ReadLimits) -> Result<usize> {
    let body_len = u64::try_from(message.bodyLength())
        .map_err(|_| WireError::Malformed("negative message body length".into()))?;
    if body_len > limits.max_body_bytes {
        return Err(WireError::TooLarge {
            size: body_len,
            limit: limits.max_body_bytes,
        });
    }
    usize::try_from(body_len)
        .map_err(|_| WireError::Malformed("message body too large for this platform".into()))
}

/// Reads a body of `len` bytes into memory of its own.
fn copy_body<R: Read>(reader: &mut R, len: usize) -> Result<Buffer> {
    Ok(Buffer::from_vec(read_claimed(reader, len, "message body")?))
}

/// Shares a body of `len` bytes with the in-memory stream it is part of.
fn slice_body(reader: &mut Cursor<Bytes>, len: usize) -> Result<Buffer> {
    let start = usize::try_from(reader.position()).unwrap_or(usize::MAX);
    let end = start
        .checked_add(len)
        .filter(|&end| end <= reader.get_ref().len())
        .ok_or(WireError::Truncated {
            context: "message body",
        })?;
    let body = reader.get_ref().slice(start..end);
    reader.set_position(end as u64);
    Ok(Buffer::from(body))
}

/// How much of a declared length is reserved before its bytes arrive.
///
/// Lengths come from the peer, so trusting one outright lets a few bytes
/// claim gigabytes. Up to this size the whole length is reserved at once,
/// which keeps ordinary bodies to one allocation and one read; beyond it
/// the buffer grows only as bytes come in, doubling each time, so what is
/// held stays within twice what the peer actually sent.
pub const EAGER_RESERVE_BYTES: usize = 16 * 1024 * 1024;

/// Reads exactly `len` bytes a peer announced, reserving memory as they
/// arrive rather than all at once (see [`EAGER_RESERVE_BYTES`]).
fn read_claimed<R: Read>(reader: &mut R, len: usize, context: &'static str) -> Result<Vec<u8>> {
    // Reading into spare capacity skips zeroing memory the read overwrites
    // anyway, a visible cost for multi-megabyte batches. The system
    // allocator's 16-byte alignment lets Arrow use the body's buffers in
    // place; were a buffer misaligned, Arrow would copy it, not fail.
    let mut bytes = Vec::with_capacity(len.min(EAGER_RESERVE_BYTES));
    while bytes.len() < len {
        if bytes.len() == bytes.capacity() {
            let more = (len - bytes.len()).min(bytes.capacity().max(EAGER_RESERVE_BYTES));
            bytes.try_reserve_exact(more).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::OutOfMemory,
                    format!("cannot hold the {len}-byte {context}"),
                )
            })?;
        }
        let room = (bytes.capacity() - bytes.len()).min(len - bytes.len());
        // `take` stops the read at the reserved room, so `read_to_end`
        // never grows the buffer by its own policy.
        let read = (&mut *reader).take(room as u64).read_to_end(&mut bytes)?;
        if read < room {
            return Err(WireError::Truncated { context });
        }
    }
    Ok(bytes)
}

/// Schema messages decoded on this thread, by their exact bytes. A
/// connection repeats the same few schemas call after call, and verifying
/// and converting one is a large part of decoding a small request.
///
/// The keys are bytes a peer chose, so the cache is bounded by what it
/// holds, not by how many entries: a schema message above
/// [`SCHEMA_CACHE_ENTRY_BYTES`] is decoded every time instead of kept, and
/// the cache starts over once it holds [`SCHEMA_CACHE_BYTES`].
struct SchemaCache;

/// Largest schema message kept; vgi-rpc's own schemas are a few hundred
/// bytes, so only a peer's oddities are decoded again each time.
const SCHEMA_CACHE_ENTRY_BYTES: usize = 64 * 1024;
/// Bytes of schema messages kept per thread.
const SCHEMA_CACHE_BYTES: usize = 1024 * 1024;

#[derive(Default)]
struct CachedSchemas {
    by_message: HashMap<Box<[u8]>, SchemaRef>,
    /// Sum of the key lengths, which also bounds the decoded schemas'
    /// names and metadata.
    bytes: usize,
}

thread_local! {
    static SCHEMAS: RefCell<CachedSchemas> = RefCell::new(CachedSchemas::default());
}

impl SchemaCache {
    fn get(header: &[u8]) -> Option<SchemaRef> {
        SCHEMAS.with_borrow(|schemas| schemas.by_message.get(header).cloned())
    }

    fn put(header: Vec<u8>, schema: &SchemaRef) {
        if header.len() > SCHEMA_CACHE_ENTRY_BYTES {
            return;
        }
        SCHEMAS.with_borrow_mut(|schemas| {
            if schemas.bytes + header.len() > SCHEMA_CACHE_BYTES {
                // Dropped rather than cleared, so the memory goes back too.
                *schemas = CachedSchemas::default();
            }
            schemas.bytes += header.len();
            schemas
                .by_message
                .insert(header.into_boxed_slice(), Arc::clone(schema));
        });
    }
}

/// Reads a schema message, through [`SchemaCache`].
fn read_schema<R: Read>(reader: &mut R, limits: &ReadLimits) -> Result<Frame<SchemaRef>> {
    let header = match read_header(reader, limits)? {
        Frame::Message(header) => header,
        Frame::EndOfStream => return Ok(Frame::EndOfStream),
        Frame::Eof => return Ok(Frame::Eof),
    };
    // Equal bytes are an equal message, body length included, and only
    // messages without a body are cached: nothing is left unread on a hit.
    if let Some(schema) = SchemaCache::get(&header) {
        return Ok(Frame::Message(schema));
    }
    let message = verify_header(&header)?;
    let body = copy_body(reader, body_length(&message, limits)?)?;
    let decoded = message.header_as_schema().ok_or_else(|| {
        WireError::Malformed(format!(
            "expected a schema message, got {:?}",
            message.header_type()
        ))
    })?;
    let schema = Arc::new(arrow_ipc::convert::try_fb_to_schema(decoded)?);
    if body.is_empty() {
        SchemaCache::put(header, &schema);
    }
    Ok(Frame::Message(schema))
}

fn custom_metadata(message: &arrow_ipc::Message<'_>) -> Metadata {
    message
        .custom_metadata()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|kv| Some((kv.key()?.to_owned(), kv.value().unwrap_or("").to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// How many dictionaries a stream on `schema` must send before its first
/// batch.
fn dictionary_fields(schema: &Schema) -> usize {
    if !schema
        .fields()
        .iter()
        .any(|f| has_dictionary(f.data_type()))
    {
        return 0;
    }
    schema
        .flattened_fields()
        .iter()
        .filter(|f| matches!(f.data_type(), arrow_schema::DataType::Dictionary(..)))
        .count()
}

fn has_dictionary(data_type: &arrow_schema::DataType) -> bool {
    use arrow_schema::DataType;
    match data_type {
        DataType::Dictionary(..) => true,
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => has_dictionary(f.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| has_dictionary(f.data_type())),
        DataType::Union(fields, _) => fields.iter().any(|(_, f)| has_dictionary(f.data_type())),
        DataType::RunEndEncoded(_, values) => has_dictionary(values.data_type()),
        _ => false,
    }
}

/// Reads one IPC stream: its schema, then batches until the EOS marker.
#[derive(Debug)]
pub struct StreamReader<R> {
    reader: R,
    schema: SchemaRef,
    /// All-nullable variant of `schema`, built on first need: some peers
    /// write nulls into fields they declare non-nullable.
    relaxed: Option<SchemaRef>,
    dictionaries: HashMap<i64, ArrayRef>,
    /// Dictionary-encoded fields in `schema`: each needs its dictionary
    /// before the first batch that uses it.
    expected_dictionaries: usize,
    limits: ReadLimits,
    take_body: TakeBody<R>,
    finished: bool,
}

impl StreamReader<Cursor<Bytes>> {
    /// [`StreamReader::try_open`] over bytes already in memory, such as a
    /// request body: each message body becomes a slice of `reader`'s
    /// bytes instead of a copy, so the batches share that memory.
    pub fn try_open_bytes(reader: Cursor<Bytes>, limits: ReadLimits) -> Result<Option<Self>> {
        Self::try_open_with(reader, limits, slice_body)
    }
}

impl<R: Read> StreamReader<R> {
    /// Opens the next IPC stream, failing if the byte stream is at its end.
    pub fn open(reader: R) -> Result<Self> {
        Self::try_open(reader, ReadLimits::default())?.ok_or(WireError::Truncated {
            context: "schema message",
        })
    }

    /// Opens the next IPC stream; `Ok(None)` means the byte stream ended
    /// cleanly where a new IPC stream would start (the peer hung up).
    pub fn try_open(reader: R, limits: ReadLimits) -> Result<Option<Self>> {
        Self::try_open_with(reader, limits, copy_body)
    }

    fn try_open_with(
        mut reader: R,
        limits: ReadLimits,
        take_body: TakeBody<R>,
    ) -> Result<Option<Self>> {
        let schema = match read_schema(&mut reader, &limits)? {
            Frame::Eof => return Ok(None),
            Frame::EndOfStream => {
                return Err(WireError::Malformed(
                    "end-of-stream marker where a schema message was expected".into(),
                ));
            }
            Frame::Message(schema) => schema,
        };
        Ok(Some(Self {
            reader,
            expected_dictionaries: dictionary_fields(&schema),
            schema,
            relaxed: None,
            dictionaries: HashMap::new(),
            limits,
            take_body,
            finished: false,
        }))
    }

    /// Schema of this IPC stream.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Whether the EOS marker has been read.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Next batch with its custom metadata, or `None` after the EOS marker.
    pub fn next_batch(&mut self) -> Result<Option<IpcBatch>> {
        if self.finished {
            return Ok(None);
        }
        loop {
            let schema = &self.schema;
            let relaxed = &mut self.relaxed;
            let dictionaries = &mut self.dictionaries;
            let expected_dictionaries = self.expected_dictionaries;
            let frame = read_frame(
                &mut self.reader,
                &self.limits,
                self.take_body,
                |message, body| {
                    let version = message.version();
                    match message.header_type() {
                        MessageHeader::RecordBatch => {
                            if dictionaries.len() < expected_dictionaries {
                                return Err(WireError::Malformed(format!(
                                    "IPC stream did not have the expected number \
                                 ({expected_dictionaries}) of dictionaries at the start \
                                 of the stream"
                                )));
                            }
                            let fb = message.header_as_record_batch().ok_or_else(|| {
                                WireError::Malformed("record batch message without header".into())
                            })?;
                            let batch = crate::types::embedded::decode_record_batch(
                                schema,
                                relaxed,
                                fb,
                                &body,
                                dictionaries,
                                version,
                            )?;
                            Ok(Some(IpcBatch {
                                batch,
                                metadata: custom_metadata(&message),
                            }))
                        }
                        MessageHeader::DictionaryBatch => {
                            let fb = message.header_as_dictionary_batch().ok_or_else(|| {
                                WireError::Malformed("dictionary message without header".into())
                            })?;
                            crate::types::embedded::decode_dictionary(
                                schema,
                                fb,
                                &body,
                                dictionaries,
                                version,
                            )?;
                            Ok(None)
                        }
                        other => Err(WireError::Malformed(format!(
                            "unexpected {other:?} message inside an ipc stream"
                        ))),
                    }
                },
            )?;
            match frame {
                Frame::Eof => {
                    return Err(WireError::Truncated {
                        context: "ipc stream ended without an end-of-stream marker",
                    });
                }
                Frame::EndOfStream => {
                    self.finished = true;
                    return Ok(None);
                }
                Frame::Message(Some(batch)) => return Ok(Some(batch)),
                // A dictionary: the batch that uses it follows.
                Frame::Message(None) => {}
            }
        }
    }

    /// Reads and discards batches up to and including the EOS marker, so the
    /// byte stream is positioned at the next IPC stream.
    pub fn drain(&mut self) -> Result<()> {
        while self.next_batch()?.is_some() {}
        Ok(())
    }

    /// Mutable access to the underlying reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Gives back the underlying reader.
    pub fn into_inner(self) -> R {
        self.reader
    }
}

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
const LARGE_BATCH_BYTES: usize = 256 * 1024;

impl<W: Write> std::fmt::Debug for StreamWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn write_options() -> IpcWriteOptions {
    IpcWriteOptions::try_new(8, false, MetadataVersion::V5).expect("8-byte alignment is valid")
}

impl<W: Write> StreamWriter<W> {
    /// Starts an IPC stream on `writer` by writing the schema message.
    pub fn try_new(mut writer: W, schema: &SchemaRef) -> Result<Self> {
        let options = write_options();
        let generator = IpcDataGenerator::default();
        let mut tracker = DictionaryTracker::new(false);
        let encoded =
            generator.schema_to_bytes_with_dictionary_tracker(schema, &mut tracker, &options);
        arrow_ipc::writer::write_message(&mut writer, encoded, &options)?;
        Ok(Self {
            writer,
            schema: schema.clone(),
            generator,
            tracker,
            context: IpcWriteContext::default(),
            options,
            large: None,
            has_dictionaries: schema
                .flattened_fields()
                .iter()
                .any(|f| matches!(f.data_type(), arrow_schema::DataType::Dictionary(..))),
        })
    }

    /// Schema of this stream.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Writes `batch`, attaching `metadata` to its message when non-empty.
    pub fn write(&mut self, batch: &RecordBatch, metadata: &Metadata) -> Result<()> {
        if batch.schema_ref().fields() != self.schema.fields() {
            return Err(WireError::TypeMismatch {
                expected: format!("batch with schema {}", self.schema),
                found: format!("{}", batch.schema()),
            });
        }
        if !self.has_dictionaries && batch.get_array_memory_size() >= LARGE_BATCH_BYTES {
            return self.write_large(batch, metadata);
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

    fn write_large(&mut self, batch: &RecordBatch, metadata: &Metadata) -> Result<()> {
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
            message.write_to(&mut self.writer)?;
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
    fn write_to<W: Write>(&self, writer: &mut W) -> Result<()> {
        let padded = self.header.len().next_multiple_of(8);
        let padded_len = u32::try_from(padded)
            .map_err(|_| WireError::Malformed("message header too large".into()))?;
        writer.write_all(&CONTINUATION.to_le_bytes())?;
        writer.write_all(&padded_len.to_le_bytes())?;
        writer.write_all(&self.header)?;
        writer.write_all(&[0u8; 8][..padded - self.header.len()])?;
        for piece in &self.body {
            writer.write_all(piece.as_slice())?;
        }
        Ok(())
    }
}

/// Rebuilds an encoded record batch message with `metadata` as its custom
/// metadata; the body is untouched, so only the small header is rewritten.
fn attach_custom_metadata(ipc_message: &[u8], metadata: &Metadata) -> Result<Vec<u8>> {
    let message = arrow_ipc::root_as_message(ipc_message)
        .map_err(|e| WireError::Malformed(format!("arrow produced an invalid message: {e}")))?;
    let batch = message
        .header_as_record_batch()
        .ok_or_else(|| WireError::Malformed("expected a record batch message".into()))?;

    let mut fbb = FlatBufferBuilder::with_capacity(ipc_message.len() + 64 * metadata.len());
    let nodes = batch.nodes().map(|nodes| {
        let nodes: Vec<_> = nodes.iter().copied().collect();
        fbb.create_vector(&nodes)
    });
    let buffers = batch.buffers().map(|buffers| {
        let buffers: Vec<_> = buffers.iter().copied().collect();
        fbb.create_vector(&buffers)
    });
    let compression = batch.compression().map(|c| {
        arrow_ipc::BodyCompression::create(
            &mut fbb,
            &arrow_ipc::BodyCompressionArgs {
                codec: c.codec(),
                method: c.method(),
            },
        )
    });
    let variadic = batch.variadicBufferCounts().map(|counts| {
        let counts: Vec<i64> = counts.iter().collect();
        fbb.create_vector(&counts)
    });
    let header = arrow_ipc::RecordBatch::create(
        &mut fbb,
        &arrow_ipc::RecordBatchArgs {
            length: batch.length(),
            nodes,
            buffers,
            compression,
            variadicBufferCounts: variadic,
        },
    );
    let entries: Vec<_> = metadata
        .iter()
        .map(|(k, v)| {
            let key = fbb.create_string(k);
            let value = fbb.create_string(v);
            arrow_ipc::KeyValue::create(
                &mut fbb,
                &arrow_ipc::KeyValueArgs {
                    key: Some(key),
                    value: Some(value),
                },
            )
        })
        .collect();
    let custom_metadata = fbb.create_vector(&entries);
    let rebuilt = arrow_ipc::Message::create(
        &mut fbb,
        &arrow_ipc::MessageArgs {
            version: message.version(),
            header_type: MessageHeader::RecordBatch,
            header: Some(header.as_union_value()),
            bodyLength: message.bodyLength(),
            custom_metadata: Some(custom_metadata),
        },
    );
    fbb.finish(rebuilt, None);
    Ok(fbb.finished_data().to_vec())
}

/// Writes a complete IPC stream holding `batches` to a byte vector.
pub fn write_stream_bytes<'a>(
    schema: &SchemaRef,
    batches: impl IntoIterator<Item = (&'a RecordBatch, &'a Metadata)>,
) -> Result<Vec<u8>> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    for (batch, metadata) in batches {
        writer.write(batch, metadata)?;
    }
    writer.finish()
}

/// Reads every batch of one complete IPC stream held in `bytes`.
pub fn read_stream_bytes(bytes: &[u8]) -> Result<(SchemaRef, Vec<IpcBatch>)> {
    let mut reader = StreamReader::open(bytes)?;
    let mut batches = Vec::new();
    while let Some(batch) = reader.next_batch()? {
        batches.push(batch);
    }
    Ok((reader.schema().clone(), batches))
}

/// The empty schema (`pa.schema([])`), used for errors, ticks and void results.
pub fn empty_schema() -> SchemaRef {
    Arc::new(Schema::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field};

    fn sample() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("x"), None])),
            ],
        )
        .unwrap()
    }

    /// Batches that exercise every way a body is laid out: nulls, slices
    /// (offsets Arrow must rebase), strings, dictionaries (one repeated,
    /// one replaced), nesting, and no rows at all.
    fn varied_batches() -> Vec<RecordBatch> {
        use arrow_array::builder::{Int32Builder, ListBuilder};
        use arrow_array::{Array, DictionaryArray, StructArray, types::Int32Type};
        let mut list = ListBuilder::new(Int32Builder::new());
        for row in [vec![Some(1), None], vec![], vec![Some(3), Some(4), Some(5)]] {
            list.values().extend(row);
            list.append(true);
        }
        let list = list.finish();
        let ints = Int64Array::from(vec![Some(10), None, Some(30)]);
        let point = StructArray::from(vec![(
            Arc::new(Field::new("x", DataType::Int64, true)),
            Arc::new(ints.clone()) as ArrayRef,
        )]);
        let dict = |values: &[&str]| {
            Arc::new(
                values
                    .iter()
                    .copied()
                    .collect::<DictionaryArray<Int32Type>>(),
            ) as ArrayRef
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("l", list.data_type().clone(), true),
            Field::new("p", point.data_type().clone(), true),
            Field::new(
                "d",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
        ]));
        let strings = StringArray::from(vec![Some("alpha"), None, Some("gamma")]);
        let batch = |d: ArrayRef| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(ints.clone()),
                    Arc::new(strings.clone()),
                    Arc::new(list.clone()),
                    Arc::new(point.clone()),
                    d,
                ],
            )
            .unwrap()
        };
        let full = batch(dict(&["a", "b", "a"]));
        vec![
            full.clone(),
            full.slice(1, 2),
            batch(dict(&["c", "c", "d"])),
            full.slice(0, 0),
        ]
    }

    /// Batches on both sides of `LARGE_BATCH_BYTES`, without dictionaries,
    /// so the large ones take the encoder that shares Arrow's buffers.
    fn large_and_small_batches() -> Vec<RecordBatch> {
        let rows = 3 * LARGE_BATCH_BYTES / 8;
        let values: Int64Array = (0..rows as i64)
            .map(|i| (i % 7 != 0).then_some(i))
            .collect();
        let text: StringArray = (0..rows)
            .map(|i| (i % 5 != 0).then(|| "v".repeat(i % 9)))
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let full = RecordBatch::try_new(schema, vec![Arc::new(values), Arc::new(text)]).unwrap();
        assert!(full.get_array_memory_size() >= LARGE_BATCH_BYTES);
        vec![
            full.clone(),
            full.slice(3, 5),
            full.slice(rows / 3, rows / 2),
            full.slice(0, 0),
        ]
    }

    /// Our framing of `batches` without metadata is byte for byte Arrow's.
    fn assert_framed_like_arrow(batches: &[RecordBatch]) {
        let schema = batches[0].schema();
        let mut theirs = arrow_ipc::writer::StreamWriter::try_new_with_options(
            Vec::new(),
            &schema,
            write_options(),
        )
        .unwrap();
        let mut ours = StreamWriter::try_new(Vec::new(), &schema).unwrap();
        for batch in batches {
            theirs.write(batch).unwrap();
            ours.write(batch, &Metadata::new()).unwrap();
        }
        theirs.finish().unwrap();
        assert_eq!(ours.finish().unwrap(), theirs.into_inner().unwrap());
    }

    /// Each batch comes back whole, with the metadata written with it.
    fn assert_round_trip_with_metadata(batches: &[RecordBatch]) {
        let tagged: Vec<_> = batches
            .iter()
            .enumerate()
            .map(|(i, b)| (b, Metadata::new().with("round", i.to_string())))
            .collect();
        let bytes =
            write_stream_bytes(&batches[0].schema(), tagged.iter().map(|(b, m)| (*b, m))).unwrap();
        let (_, read) = read_stream_bytes(&bytes).unwrap();
        assert_eq!(read.len(), batches.len());
        for (i, (got, sent)) in read.iter().zip(batches).enumerate() {
            assert_eq!(&got.batch, sent, "batch {i}");
            assert_eq!(got.metadata.get("round"), Some(i.to_string().as_str()));
        }
    }

    #[test]
    fn batches_are_framed_exactly_as_arrow_frames_them() {
        assert_framed_like_arrow(&varied_batches());
        assert_framed_like_arrow(&large_and_small_batches());
    }

    #[test]
    fn batches_keep_their_metadata_and_values() {
        assert_round_trip_with_metadata(&varied_batches());
        assert_round_trip_with_metadata(&large_and_small_batches());
    }

    #[test]
    fn repeated_schemas_are_decoded_once_per_thread() {
        let batch = sample();
        let bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &Metadata::new())]).unwrap();
        let first = StreamReader::open(bytes.as_slice()).unwrap();
        let second = StreamReader::open(bytes.as_slice()).unwrap();
        assert!(Arc::ptr_eq(first.schema(), second.schema()));
        // Past the cache's bound every schema still reads correctly.
        for width in 1..=300 {
            let fields: Vec<_> = (0..width % 5 + 1)
                .map(|i| Field::new(format!("c{i}_{width}"), DataType::Int64, true))
                .collect();
            let schema = Arc::new(Schema::new(fields));
            let bytes = write_stream_bytes(&schema, std::iter::empty()).unwrap();
            let (read, batches) = read_stream_bytes(&bytes).unwrap();
            assert_eq!(read, schema);
            assert!(batches.is_empty());
        }
        assert!(SCHEMAS.with_borrow(|schemas| schemas.bytes) <= SCHEMA_CACHE_BYTES);
    }

    #[test]
    fn in_memory_bodies_are_shared_not_copied() {
        let values: Vec<i64> = (0..4096).collect();
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(values))],
        )
        .unwrap();
        let md = Metadata::new().with("k", "v");
        let mut bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap();
        bytes.extend(write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap());
        let bytes = Bytes::from(bytes);
        let range = bytes.as_ptr_range();
        let mut cursor = Cursor::new(bytes.clone());
        for _ in 0..2 {
            let mut reader = StreamReader::try_open_bytes(cursor, ReadLimits::default())
                .unwrap()
                .unwrap();
            let read = reader.next_batch().unwrap().unwrap();
            assert_eq!(read.batch, batch);
            assert_eq!(read.metadata, md);
            let data = read.batch.column(0).to_data().buffers()[0].as_ptr();
            assert!(range.contains(&data), "the column is a slice of the input");
            assert!(reader.next_batch().unwrap().is_none());
            cursor = reader.into_inner();
        }
        let cut = Cursor::new(bytes.slice(..bytes.len() / 2 - 100));
        let mut reader = StreamReader::try_open_bytes(cut, ReadLimits::default())
            .unwrap()
            .unwrap();
        assert!(matches!(
            reader.next_batch(),
            Err(WireError::Truncated { .. })
        ));
    }

    #[test]
    fn metadata_survives_a_round_trip() {
        let batch = sample();
        let md = Metadata::new()
            .with("vgi_rpc.method", "echo")
            .with("k", "v");
        let bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap();
        let (schema, batches) = read_stream_bytes(&bytes).unwrap();
        assert_eq!(schema, batch.schema());
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].batch, batch);
        assert_eq!(batches[0].metadata, md);
    }

    #[test]
    fn streams_follow_each_other_on_one_byte_stream() {
        let batch = sample();
        let empty = Metadata::new();
        let mut bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &empty)]).unwrap();
        let second_md = Metadata::new().with("n", "2");
        bytes.extend(write_stream_bytes(batch.schema_ref(), [(&batch, &second_md)]).unwrap());
        let mut cursor = std::io::Cursor::new(bytes);
        let mut first = StreamReader::open(&mut cursor).unwrap();
        assert!(first.next_batch().unwrap().unwrap().metadata.is_empty());
        assert!(first.next_batch().unwrap().is_none());
        let mut second = StreamReader::open(&mut cursor).unwrap();
        assert_eq!(second.next_batch().unwrap().unwrap().metadata, second_md);
        second.drain().unwrap();
        assert!(
            StreamReader::try_open(&mut cursor, ReadLimits::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn truncated_stream_is_reported_not_panicked() {
        let batch = sample();
        let bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &Metadata::new())]).unwrap();
        for cut in 1..bytes.len() {
            let result = read_stream_bytes(&bytes[..cut]);
            assert!(result.is_err(), "cut at {cut} should fail");
        }
    }

    #[test]
    fn corrupted_bytes_are_errors_not_panics() {
        let batch = sample();
        let md = Metadata::new().with("vgi_rpc.method", "echo");
        let bytes = write_stream_bytes(batch.schema_ref(), [(&batch, &md)]).unwrap();
        for position in 0..bytes.len() {
            for value in [0x00, 0x7F, 0xFF] {
                let mut corrupt = bytes.clone();
                corrupt[position] = value;
                // Any outcome but a panic is acceptable: some flips land in
                // padding or values and still decode.
                let _ = read_stream_bytes(&corrupt);
            }
        }
    }

    #[test]
    fn oversized_length_prefix_is_rejected_before_allocating() {
        let mut bytes = vec![0xFF, 0xFF, 0xFF, 0xFF];
        bytes.extend(0x7FFF_FFF0u32.to_le_bytes());
        let limits = ReadLimits {
            max_metadata_bytes: 1024,
            ..ReadLimits::default()
        };
        let err = StreamReader::try_open(bytes.as_slice(), limits).unwrap_err();
        assert!(matches!(err, WireError::TooLarge { .. }), "{err:?}");
    }

    #[test]
    fn garbage_is_malformed() {
        let mut bytes = vec![0xFF, 0xFF, 0xFF, 0xFF, 16, 0, 0, 0];
        bytes.extend([0xAB; 16]);
        let err = read_stream_bytes(&bytes).unwrap_err();
        assert!(matches!(err, WireError::Malformed(_)), "{err:?}");
    }
}
