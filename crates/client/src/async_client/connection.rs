//! The pipe protocol over an async byte stream (a Unix socket, a worker's
//! stdin and stdout): one call at a time per connection, framed by the
//! async reader and decoded from memory; with a shared-memory segment of
//! the connection's own as side channel, if it has one.

use std::io::{Cursor, Read};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use vgirpc_wire::ipc::async_frame::{FramedKind, read_message, read_stream};
use vgirpc_wire::ipc::{IpcBatch, ReadLimits, StreamReader, StreamWriter};
use vgirpc_wire::log::empty_batch;
use vgirpc_wire::metadata::{self, Metadata};

use crate::ClientError;
use crate::client::sort;
use crate::log::ServerLog;
use crate::pipe::byte_stream_data;
use crate::shm::ShmSegment;
use crate::transport::CallIo;

/// Bytes buffered from the server per read: enough for a small response in
/// one system call.
const READ_BUFFER_BYTES: usize = 64 * 1024;

type Reader = BufReader<Box<dyn AsyncRead + Send + Unpin>>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// One connection to a server, used by one call at a time.
pub(crate) struct Connection {
    reader: Reader,
    writer: Writer,
    /// The side channel: one segment per connection, since a segment
    /// serves one call at a time.
    segment: Option<ShmSegment>,
    /// Keeps a spawned worker alive while its connection is in use.
    _owner: Option<Arc<dyn Send + Sync>>,
}

impl Connection {
    pub(crate) fn new(
        reader: impl AsyncRead + Send + Unpin + 'static,
        writer: impl AsyncWrite + Send + Unpin + 'static,
        owner: Option<Arc<dyn Send + Sync>>,
    ) -> Self {
        Self {
            reader: BufReader::with_capacity(READ_BUFFER_BYTES, Box::new(reader)),
            writer: Box::new(writer),
            segment: None,
            _owner: owner,
        }
    }

    /// Passes batches through `segment` from now on.
    pub(crate) fn with_segment(mut self, segment: ShmSegment) -> Self {
        self.segment = Some(segment);
        self
    }

    /// Sends a request and reads its whole response; the result batch, with
    /// the logs before it in `logs`.
    pub(crate) async fn unary(
        &mut self,
        method: &str,
        params: &RecordBatch,
        limits: ReadLimits,
        logs: &mut Vec<ServerLog>,
    ) -> Result<IpcBatch, ClientError> {
        self.send_request(method, params).await?;
        let data = self.read_answer(limits, logs).await?;
        data.ok_or_else(|| {
            ClientError::Protocol(format!(
                "the response to {method}() ended without a result batch"
            ))
        })
    }

    /// Reads one whole response stream and returns its data batch, if any.
    async fn read_answer(
        &mut self,
        limits: ReadLimits,
        logs: &mut Vec<ServerLog>,
    ) -> Result<Option<IpcBatch>, ClientError> {
        let mut bytes = Vec::new();
        if !read_stream(&mut self.reader, &limits, &mut bytes)
            .await
            .map_err(ClientError::from_wire)?
        {
            return Err(ClientError::ConnectionClosed);
        }
        // The whole stream is in memory, so bodies are shared, not copied.
        let mut reader = StreamReader::try_open_bytes(Cursor::new(Bytes::from(bytes)), limits)
            .map_err(ClientError::from_wire)?
            .ok_or(ClientError::ConnectionClosed)?;
        let mut io = collecting(logs, limits);
        while let Some(batch) = reader.next_batch().map_err(ClientError::from_wire)? {
            if let Some(received) = sort(batch, &mut io)? {
                return byte_stream_data(received, self.segment.as_ref()).map(Some);
            }
        }
        Ok(None)
    }

    pub(crate) async fn send_request(
        &mut self,
        method: &str,
        params: &RecordBatch,
    ) -> Result<(), ClientError> {
        let mut md = crate::trace::request_metadata(method);
        if let Some(segment) = &self.segment {
            segment.begin_call(&mut md)?;
        }
        let bytes = vgirpc_wire::ipc::write_stream_bytes(params.schema_ref(), [(params, &md)])
            .map_err(ClientError::from_wire)?;
        self.write(&bytes).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer
            .write_all(bytes)
            .await
            .map_err(ClientError::from_io)?;
        self.writer.flush().await.map_err(ClientError::from_io)
    }

    /// Starts a stream call; with `header`, reads the header stream first.
    pub(crate) async fn open_stream(
        &mut self,
        method: &str,
        params: &RecordBatch,
        header: bool,
        limits: ReadLimits,
        logs: &mut Vec<ServerLog>,
    ) -> Result<Option<IpcBatch>, ClientError> {
        self.send_request(method, params).await?;
        if !header {
            return Ok(None);
        }
        let header = self.read_answer(limits, logs).await?;
        header.map(Some).ok_or_else(|| {
            ClientError::Protocol(format!(
                "the header stream of {method}() ended without a header batch"
            ))
        })
    }
}

/// The two IPC streams of a running stream call over one connection.
#[derive(Default)]
pub(crate) struct StreamSides {
    input: Option<StreamWriter<Vec<u8>>>,
    output: Option<StreamReader<Frames>>,
    input_done: bool,
    output_done: bool,
}

impl StreamSides {
    /// Sends `input` (a zero-row tick for producers) and reads the answer:
    /// logs, then one data batch, or `None` when the output ended.
    pub(crate) async fn round_trip(
        &mut self,
        connection: &mut Connection,
        input: &RecordBatch,
        limits: ReadLimits,
        logs: &mut Vec<ServerLog>,
    ) -> Result<Option<IpcBatch>, ClientError> {
        if self.input_done {
            return Err(ClientError::StreamClosed);
        }
        let writer = match &mut self.input {
            Some(writer) => writer,
            None => self.input.insert(
                StreamWriter::try_new(Vec::new(), input.schema_ref())
                    .map_err(ClientError::from_wire)?,
            ),
        };
        let stored = match &connection.segment {
            Some(segment) => segment.offload(input)?,
            None => None,
        };
        match stored {
            Some((pointer, md)) => writer.write(&pointer, &md),
            None => writer.write(input, &Metadata::new()),
        }
        .map_err(ClientError::from_wire)?;
        let bytes = std::mem::take(writer.get_mut());
        connection.write(&bytes).await?;
        self.next_data(connection, limits, logs).await
    }

    /// Reads output messages up to the next data batch (or the end).
    async fn next_data(
        &mut self,
        connection: &mut Connection,
        limits: ReadLimits,
        logs: &mut Vec<ServerLog>,
    ) -> Result<Option<IpcBatch>, ClientError> {
        if self.output_done {
            return Ok(None);
        }
        let output = match &mut self.output {
            Some(output) => output,
            None => {
                let mut frames = Frames::default();
                match frame(connection, &limits, &mut frames.bytes).await? {
                    FramedKind::Schema => {}
                    _ => {
                        return Err(ClientError::Protocol(
                            "the output stream has no schema".into(),
                        ));
                    }
                }
                self.output.insert(
                    StreamReader::try_open(frames, limits)
                        .map_err(ClientError::from_wire)?
                        .ok_or(ClientError::ConnectionClosed)?,
                )
            }
        };
        loop {
            // A batch's dictionaries come before it; frame up to the batch
            // so that decoding never runs out of bytes.
            let kind = loop {
                match frame(connection, &limits, &mut output.get_mut().bytes).await? {
                    FramedKind::Dictionary => {}
                    kind => break kind,
                }
            };
            let batch = output.next_batch().map_err(ClientError::from_wire)?;
            output.get_mut().compact();
            let Some(batch) = batch else {
                debug_assert_eq!(kind, FramedKind::EndOfStream);
                self.output_done = true;
                return Ok(None);
            };
            if let Some(received) = sort(batch, &mut collecting(logs, limits))? {
                return byte_stream_data(received, connection.segment.as_ref()).map(Some);
            }
        }
    }

    /// Ends the input stream (with a cancel batch when `cancel`) and reads
    /// the output to its end, so the connection is ready for the next call.
    pub(crate) async fn finish(
        &mut self,
        connection: &mut Connection,
        cancel: bool,
        limits: ReadLimits,
        logs: &mut Vec<ServerLog>,
    ) -> Result<(), ClientError> {
        if !self.input_done {
            self.input_done = true;
            let mut writer = match self.input.take() {
                Some(writer) => writer,
                None => StreamWriter::try_new(Vec::new(), &Arc::new(Schema::empty()))
                    .map_err(ClientError::from_wire)?,
            };
            if cancel {
                let md = Metadata::new().with(metadata::CANCEL, "1");
                let schema = writer.schema().clone();
                writer
                    .write(&empty_batch(&schema), &md)
                    .map_err(ClientError::from_wire)?;
            }
            let bytes = writer.finish().map_err(ClientError::from_wire)?;
            connection.write(&bytes).await?;
        }
        loop {
            match self.next_data(connection, limits, logs).await {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                // The stream is being abandoned; its errors no longer matter.
                Err(ClientError::Remote { .. }) => {}
                Err(err) => return Err(err),
            }
        }
    }
}

/// Frames the next message of the output stream into `bytes`.
async fn frame(
    connection: &mut Connection,
    limits: &ReadLimits,
    bytes: &mut Vec<u8>,
) -> Result<FramedKind, ClientError> {
    read_message(&mut connection.reader, limits, bytes)
        .await
        .map_err(ClientError::from_wire)?
        .ok_or(ClientError::ConnectionClosed)
}

/// Messages framed from the connection, read back by the blocking decoder;
/// it only ever asks for bytes already framed, so it never waits.
#[derive(Default)]
pub(crate) struct Frames {
    bytes: Vec<u8>,
    read: usize,
}

impl Frames {
    /// Drops what was read, so a long stream keeps one message in memory.
    fn compact(&mut self) {
        if self.read == self.bytes.len() {
            self.bytes.clear();
            self.read = 0;
        }
    }
}

impl Read for Frames {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.bytes[self.read..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.read += n;
        Ok(n)
    }
}

/// A call's I/O that collects logs (callbacks run afterwards, outside it).
fn collecting(logs: &mut Vec<ServerLog>, limits: ReadLimits) -> CallIo<'_> {
    CallIo::collecting(logs, limits)
}
