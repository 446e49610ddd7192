//! Client side of producer and exchange streams (WIRE_PROTOCOL §9).

use std::fmt;
use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use vgirpc_wire::ipc::{ReadLimits, StreamReader, StreamWriter};
use vgirpc_wire::log::empty_batch;
use vgirpc_wire::metadata::{self, Metadata};

use crate::ClientError;
use crate::client::{LogCallback, LogSink, open_response, read_data};
use crate::transport::Transport;

/// Where a stream call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Batches can be exchanged.
    Open,
    /// The server ended its output; only closing remains.
    Ended,
    /// Closed or cancelled by the client, or failed.
    Closed,
}

/// The output side: not yet opened (the server writes its output schema
/// only after it sees the client's first input message) or open.
enum Output<'c, R> {
    Pending(&'c mut R),
    Open(StreamReader<&'c mut R>),
    /// Opening failed: the connection is unusable.
    Broken,
}

/// The input side: the encoder's bytes go to the transport after every
/// message, so the encoder needs no borrow of the writer.
enum Input {
    NotStarted,
    Open(Box<StreamWriter<Vec<u8>>>),
    Finished,
}

/// A running stream call: a producer (call [`StreamCall::next_batch`] or
/// iterate) or an exchange (call [`StreamCall::exchange`]).
///
/// Input and output are two long-lived IPC streams driven in lockstep:
/// every input batch (a zero-row tick for producers) is answered by log
/// batches and one output batch. Dropping the call closes it, so the
/// connection is ready for the next call.
pub struct StreamCall<'c, T: Transport> {
    output: Output<'c, T::Reader>,
    writer: &'c mut T::Writer,
    on_log: &'c mut Option<LogCallback>,
    limits: ReadLimits,
    header: Option<RecordBatch>,
    input: Input,
    state: State,
}

impl<T: Transport> fmt::Debug for StreamCall<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamCall")
            .field("state", &self.state)
            .field("has_header", &self.header.is_some())
            .field("input_open", &matches!(self.input, Input::Open(_)))
            .finish_non_exhaustive()
    }
}

impl<'c, T: Transport> StreamCall<'c, T> {
    pub(crate) fn new(
        reader: &'c mut T::Reader,
        writer: &'c mut T::Writer,
        on_log: &'c mut Option<LogCallback>,
        limits: ReadLimits,
        header: Option<RecordBatch>,
    ) -> Self {
        Self {
            output: Output::Pending(reader),
            writer,
            on_log,
            limits,
            header,
            input: Input::NotStarted,
            state: State::Open,
        }
    }

    /// The stream header, for methods that declare one.
    pub fn header(&self) -> Option<&RecordBatch> {
        self.header.as_ref()
    }

    /// Whether the stream is over (ended by the server, closed, cancelled
    /// or failed).
    pub fn is_finished(&self) -> bool {
        self.state != State::Open
    }

    /// Producer streams: asks for the next batch; `Ok(None)` once the
    /// server has finished.
    ///
    /// After the end it keeps returning `Ok(None)`. A server error closes
    /// the stream; after it, and after [`close`] or [`cancel`], this fails
    /// with [`ClientError::StreamClosed`] (iteration simply stops).
    ///
    /// [`close`]: StreamCall::close
    /// [`cancel`]: StreamCall::cancel
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, ClientError> {
        match self.state {
            State::Open => {}
            State::Ended => return Ok(None),
            State::Closed => return Err(ClientError::StreamClosed),
        }
        let tick = empty_batch(&Arc::new(Schema::empty()));
        match self.round_trip(&tick, &Metadata::new())? {
            Some(batch) => Ok(Some(batch)),
            None => {
                // Our input stream ends too; the server is waiting for it.
                self.finish_input(None)?;
                self.state = State::Ended;
                Ok(None)
            }
        }
    }

    /// Exchange streams: sends `input` and returns the server's answer.
    ///
    /// The first input fixes the input stream's schema. A server error
    /// closes the stream and is returned; so is [`ClientError::StreamEnded`]
    /// if the server finished instead of answering.
    pub fn exchange(&mut self, input: &RecordBatch) -> Result<RecordBatch, ClientError> {
        if self.state != State::Open {
            return Err(ClientError::StreamClosed);
        }
        match self.round_trip(input, &Metadata::new())? {
            Some(batch) => Ok(batch),
            None => {
                self.close()?;
                Err(ClientError::StreamEnded)
            }
        }
    }

    /// Ends the stream: closes the input stream and reads the rest of the
    /// output, delivering its logs. Safe to call more than once.
    pub fn close(&mut self) -> Result<(), ClientError> {
        if self.state == State::Closed {
            return Ok(());
        }
        self.state = State::Closed;
        self.finish_input(None)?;
        self.drain_output()
    }

    /// Asks the server to stop: sends a zero-row batch marked
    /// `vgi_rpc.cancel`, which the server answers by running the stream's
    /// cancel hook and ending its output, then reads that output to its end.
    /// Safe to call more than once, and after [`StreamCall::close`] (then it
    /// does nothing).
    pub fn cancel(&mut self) -> Result<(), ClientError> {
        if self.state == State::Closed {
            return Ok(());
        }
        self.state = State::Closed;
        let cancel = Metadata::new().with(metadata::CANCEL, "1");
        self.finish_input(Some(&cancel))?;
        self.drain_output()
    }

    /// Writes one input batch and reads the answer: logs, then one data
    /// batch (`None` when the output ended instead).
    fn round_trip(
        &mut self,
        input: &RecordBatch,
        md: &Metadata,
    ) -> Result<Option<RecordBatch>, ClientError> {
        if let Err(err) = self.write_input(input, md) {
            self.state = State::Closed;
            return Err(err);
        }
        let answer = self.read_answer();
        match answer {
            Ok(batch) => Ok(batch),
            Err(err) if err.is_connection_error() => {
                // Nothing more can be read or written on this connection.
                self.state = State::Closed;
                Err(err)
            }
            Err(err) => {
                // A server error ends the stream; closing completes the
                // exchange of EOS markers so the connection stays usable.
                let _ = self.close();
                Err(err)
            }
        }
    }

    fn write_input(&mut self, batch: &RecordBatch, md: &Metadata) -> Result<(), ClientError> {
        if matches!(self.input, Input::NotStarted) {
            let writer = StreamWriter::try_new(Vec::new(), batch.schema_ref())
                .map_err(ClientError::from_wire)?;
            self.input = Input::Open(Box::new(writer));
        }
        let Input::Open(input) = &mut self.input else {
            return Err(ClientError::StreamClosed);
        };
        input.write(batch, md).map_err(codec_error)?;
        let bytes = std::mem::take(input.get_mut());
        self.send(&bytes)
    }

    /// Ends the input stream once, optionally with a last (cancel) batch.
    ///
    /// With no input stream yet, a whole one is written on the empty schema:
    /// the server always reads exactly one input stream per call.
    fn finish_input(&mut self, last: Option<&Metadata>) -> Result<(), ClientError> {
        let mut input = match std::mem::replace(&mut self.input, Input::Finished) {
            Input::Finished => return Ok(()),
            Input::Open(input) => *input,
            Input::NotStarted => StreamWriter::try_new(Vec::new(), &Arc::new(Schema::empty()))
                .map_err(ClientError::from_wire)?,
        };
        if let Some(md) = last {
            let schema = input.schema().clone();
            input
                .write(&empty_batch(&schema), md)
                .map_err(codec_error)?;
        }
        let bytes = input.finish().map_err(ClientError::from_wire)?;
        self.send(&bytes)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.write_all(bytes).map_err(ClientError::from_io)?;
        self.writer.flush().map_err(ClientError::from_io)
    }

    fn open_output(&mut self) -> Result<(), ClientError> {
        self.output = match std::mem::replace(&mut self.output, Output::Broken) {
            Output::Pending(reader) => Output::Open(open_response(reader, self.limits)?),
            other => other,
        };
        Ok(())
    }

    fn read_answer(&mut self) -> Result<Option<RecordBatch>, ClientError> {
        self.open_output()?;
        let Output::Open(reader) = &mut self.output else {
            return Err(ClientError::ConnectionClosed);
        };
        let mut sink = LogSink {
            callback: &mut *self.on_log,
            collected: None,
        };
        Ok(read_data(reader, &mut sink)?.map(|b| b.batch))
    }

    /// Reads the output stream to its end, delivering logs; server errors
    /// found there are dropped (the stream is being abandoned anyway).
    fn drain_output(&mut self) -> Result<(), ClientError> {
        self.open_output()?;
        let Output::Open(reader) = &mut self.output else {
            return Err(ClientError::ConnectionClosed);
        };
        let mut sink = LogSink {
            callback: &mut *self.on_log,
            collected: None,
        };
        loop {
            match read_data(reader, &mut sink) {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(ClientError::Remote { .. }) => {}
                Err(err) => return Err(err),
            }
        }
    }
}

fn codec_error(source: vgirpc_wire::WireError) -> ClientError {
    match source {
        vgirpc_wire::WireError::Io(e) => ClientError::from_io(e),
        source => ClientError::Codec {
            context: "a stream input batch".into(),
            source,
        },
    }
}

impl<T: Transport> Iterator for StreamCall<'_, T> {
    type Item = Result<RecordBatch, ClientError>;

    /// Producer streams: the next batch, or the error that ended the stream.
    fn next(&mut self) -> Option<Self::Item> {
        if self.state != State::Open {
            return None;
        }
        self.next_batch().transpose()
    }
}

impl<T: Transport> Drop for StreamCall<'_, T> {
    fn drop(&mut self) {
        // Completing the stream keeps the connection usable; a failure here
        // means the connection is already broken and the next call says so.
        let _ = self.close();
    }
}

/// A stream call with its header decoded into `H` (`()` for methods
/// without a header): what the typed clients generated by
/// `#[vgirpc::service]` return for stream methods.
///
/// It dereferences to the [`StreamCall`] it wraps and iterates like it.
pub struct TypedStream<'c, T: Transport, H = ()> {
    header: H,
    call: StreamCall<'c, T>,
}

impl<T: Transport, H: fmt::Debug> fmt::Debug for TypedStream<'_, T, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedStream")
            .field("header", &self.header)
            .field("call", &self.call)
            .finish()
    }
}

impl<'c, T: Transport, H> TypedStream<'c, T, H> {
    /// Wraps a call whose header was decoded into `header`.
    pub fn new(header: H, call: StreamCall<'c, T>) -> Self {
        Self { header, call }
    }

    /// The decoded header.
    pub fn header(&self) -> &H {
        &self.header
    }

    /// The header and the dynamic call.
    pub fn into_parts(self) -> (H, StreamCall<'c, T>) {
        (self.header, self.call)
    }
}

impl<'c, T: Transport, H> Deref for TypedStream<'c, T, H> {
    type Target = StreamCall<'c, T>;

    fn deref(&self) -> &Self::Target {
        &self.call
    }
}

impl<T: Transport, H> DerefMut for TypedStream<'_, T, H> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.call
    }
}

impl<T: Transport, H> Iterator for TypedStream<'_, T, H> {
    type Item = Result<RecordBatch, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.call.next()
    }
}
