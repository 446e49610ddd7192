//! Reading one IPC stream: its schema, then batches with their custom
//! metadata, up to the end-of-stream marker.

use std::borrow::BorrowMut;
use std::collections::HashMap;
use std::io::{Cursor, Read};

use arrow_array::ArrayRef;
use arrow_ipc::MessageHeader;
use arrow_schema::{Schema, SchemaRef};
use bytes::Bytes;

use super::frame::{Frame, IpcBatch, ReadLimits, Source, read_frame};
use super::schema_cache::read_schema;
use crate::metadata::Metadata;
use crate::{Result, WireError};

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
    source: Source<R>,
    finished: bool,
}

impl<R: BorrowMut<Cursor<Bytes>> + Read> StreamReader<R> {
    /// [`StreamReader::try_open`] over bytes already in memory, such as a
    /// request body: each message body becomes a slice of `reader`'s
    /// bytes instead of a copy, so the batches share that memory. The
    /// cursor may be borrowed (`&mut Cursor<Bytes>`), to read the streams
    /// that follow this one from where it ends.
    pub fn try_open_bytes(reader: R, limits: ReadLimits) -> Result<Option<Self>> {
        Self::try_open_with(reader, limits, Source::slicing())
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
        Self::try_open_with(reader, limits, Source::copying())
    }

    fn try_open_with(mut reader: R, limits: ReadLimits, source: Source<R>) -> Result<Option<Self>> {
        let schema = match read_schema(&mut reader, &limits, source)? {
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
            source,
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
                self.source,
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
                            let batch = without_panics(|| {
                                crate::types::embedded::decode_record_batch(
                                    schema,
                                    relaxed,
                                    fb,
                                    &body,
                                    dictionaries,
                                    version,
                                )
                            })?;
                            Ok(Some(IpcBatch {
                                batch,
                                metadata: custom_metadata(&message),
                            }))
                        }
                        MessageHeader::DictionaryBatch => {
                            let fb = message.header_as_dictionary_batch().ok_or_else(|| {
                                WireError::Malformed("dictionary message without header".into())
                            })?;
                            without_panics(|| {
                                crate::types::embedded::decode_dictionary(
                                    schema,
                                    fb,
                                    &body,
                                    dictionaries,
                                    version,
                                )
                            })?;
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

/// Runs arrow's decoding of a peer's message, turning a panic into an
/// error: arrow checks most of what it reads, but where it does not (it
/// has unwrapped a negative width before) the bytes came from a peer, and
/// one bad message must cost its stream, never the process.
fn without_panics<T>(decode: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).unwrap_or_else(|_| {
        Err(WireError::Malformed(
            "arrow could not decode the message (it panicked)".into(),
        ))
    })
}
