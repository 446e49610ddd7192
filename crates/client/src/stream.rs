//! Client side of producer and exchange streams (WIRE_PROTOCOL §9, and
//! §10 over HTTP).

use std::fmt;
use std::ops::{Deref, DerefMut};

use arrow_array::RecordBatch;
use vgirpc_wire::ipc::ReadLimits;

use crate::ClientError;
use crate::log::LogCallback;
use crate::transport::sealed::StreamEngine;
use crate::transport::{CallIo, Transport};

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

/// A running stream call: a producer (call [`StreamCall::next_batch`] or
/// iterate) or an exchange (call [`StreamCall::exchange`]).
///
/// On a byte-stream connection input and output are two long-lived IPC
/// streams driven in lockstep: every input batch (a zero-row tick for
/// producers) is answered by log batches and one output batch. Over HTTP
/// each exchange is a request carrying the stream's state token, and a
/// producer's batches arrive in responses that continue with a fresh token
/// until the producer finishes; the token never shows in the batches
/// returned here. Dropping the call closes it, so the client is ready for
/// the next call.
pub struct StreamCall<'c, T: Transport + 'c> {
    engine: T::Stream<'c>,
    on_log: &'c mut Option<LogCallback>,
    limits: ReadLimits,
    header: Option<RecordBatch>,
    state: State,
}

impl<'c, T: Transport + 'c> fmt::Debug for StreamCall<'c, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamCall")
            .field("state", &self.state)
            .field("has_header", &self.header.is_some())
            .finish_non_exhaustive()
    }
}

impl<'c, T: Transport + 'c> StreamCall<'c, T> {
    pub(crate) fn new(
        engine: T::Stream<'c>,
        on_log: &'c mut Option<LogCallback>,
        limits: ReadLimits,
        header: Option<RecordBatch>,
    ) -> Self {
        Self {
            engine,
            on_log,
            limits,
            header,
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
        let mut io = io(self.on_log, self.limits);
        let answer = self.engine.tick(&mut io);
        match self.settle(answer)?.map(|batch| batch.batch) {
            Some(batch) => Ok(Some(batch)),
            None => {
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
        let mut io = io(self.on_log, self.limits);
        let answer = self.engine.exchange(input, &mut io);
        match self.settle(answer)?.map(|batch| batch.batch) {
            Some(batch) => Ok(batch),
            None => {
                self.close()?;
                Err(ClientError::StreamEnded)
            }
        }
    }

    /// Ends the stream: on a byte-stream connection closes the input stream
    /// and reads the rest of the output, delivering its logs (over HTTP
    /// there is nothing to tell the server). Safe to call more than once.
    pub fn close(&mut self) -> Result<(), ClientError> {
        self.finish(false)
    }

    /// Asks the server to stop: sends a zero-row batch marked
    /// `vgi_rpc.cancel`, which the server answers by running the stream's
    /// cancel hook and ending its output, then reads that output to its end.
    /// Safe to call more than once, and after [`StreamCall::close`] (then it
    /// does nothing).
    pub fn cancel(&mut self) -> Result<(), ClientError> {
        self.finish(true)
    }

    fn finish(&mut self, cancel: bool) -> Result<(), ClientError> {
        if self.state == State::Closed {
            return Ok(());
        }
        self.state = State::Closed;
        let mut io = io(self.on_log, self.limits);
        self.engine.finish(cancel, &mut io)
    }

    /// What a turn's failure does to the stream: a connection error leaves
    /// nothing to read or write; a server error ends the stream, and closing
    /// it completes the exchange of end markers so the client stays usable.
    fn settle<B>(
        &mut self,
        answer: Result<Option<B>, ClientError>,
    ) -> Result<Option<B>, ClientError> {
        match answer {
            Ok(answer) => Ok(answer),
            Err(err) if err.is_connection_error() => {
                self.state = State::Closed;
                Err(err)
            }
            Err(err) => {
                let _ = self.close();
                Err(err)
            }
        }
    }
}

fn io<'a>(on_log: &'a mut Option<LogCallback>, limits: ReadLimits) -> CallIo<'a> {
    CallIo {
        callback: on_log.as_mut(),
        collected: None,
        limits,
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
