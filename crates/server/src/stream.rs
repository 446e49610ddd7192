//! What a stream method returns: its schemas, its state and its header.

use std::fmt;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::state::{
    AsyncExchangeState, AsyncProducerState, AsyncStep, Exchange, ExchangeState, Producer,
    ProducerState, SyncStep,
};

/// Marker for streams without a header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoHeader;

pub(crate) enum StreamKind {
    Producer(Box<dyn Producer>),
    Exchange {
        input_schema: SchemaRef,
        state: Box<dyn Exchange>,
    },
}

/// What a stream method returns: the output schema, the state that
/// produces batches, and (for `Stream<H>`) the header sent before any data.
pub struct Stream<H = NoHeader> {
    pub(crate) kind: StreamKind,
    pub(crate) output_schema: SchemaRef,
    pub(crate) header: Option<H>,
}

impl<H> fmt::Debug for Stream<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            StreamKind::Producer(_) => "producer",
            StreamKind::Exchange { .. } => "exchange",
        };
        f.debug_struct("Stream")
            .field("kind", &kind)
            .field("output_schema", &self.output_schema)
            .field("has_header", &self.header.is_some())
            .finish()
    }
}

impl Stream<NoHeader> {
    /// A producer stream emitting batches of `output_schema`.
    pub fn producer(output_schema: SchemaRef, state: impl ProducerState) -> Self {
        Self::with_producer(output_schema, Box::new(SyncStep(state)))
    }

    /// A producer stream whose state awaits in each step.
    pub fn async_producer(output_schema: SchemaRef, state: impl AsyncProducerState) -> Self {
        Self::with_producer(output_schema, Box::new(AsyncStep(state)))
    }

    fn with_producer(output_schema: SchemaRef, state: Box<dyn Producer>) -> Self {
        Self {
            kind: StreamKind::Producer(state),
            output_schema,
            header: None,
        }
    }

    /// An exchange stream reading `input_schema` batches and answering each
    /// with an `output_schema` batch.
    pub fn exchange(
        input_schema: SchemaRef,
        output_schema: SchemaRef,
        state: impl ExchangeState,
    ) -> Self {
        Self::with_exchange(input_schema, output_schema, Box::new(SyncStep(state)))
    }

    /// An exchange stream whose state awaits in each step.
    pub fn async_exchange(
        input_schema: SchemaRef,
        output_schema: SchemaRef,
        state: impl AsyncExchangeState,
    ) -> Self {
        Self::with_exchange(input_schema, output_schema, Box::new(AsyncStep(state)))
    }

    fn with_exchange(
        input_schema: SchemaRef,
        output_schema: SchemaRef,
        state: Box<dyn Exchange>,
    ) -> Self {
        Self {
            kind: StreamKind::Exchange {
                input_schema,
                state,
            },
            output_schema,
            header: None,
        }
    }

    /// Attaches the header sent to the client before the first batch.
    pub fn with_header<H>(self, header: H) -> Stream<H> {
        Stream {
            kind: self.kind,
            output_schema: self.output_schema,
            header: Some(header),
        }
    }
}

impl<H> Stream<H> {
    /// Schema of the batches this stream emits.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// Whether the client drives it with input batches.
    pub fn is_exchange(&self) -> bool {
        matches!(self.kind, StreamKind::Exchange { .. })
    }

    /// The header sent before the first batch, if any.
    pub fn header(&self) -> Option<&H> {
        self.header.as_ref()
    }

    /// Swaps the typed header for its encoded batch, for dispatch.
    pub(crate) fn into_erased(self, header: Option<RecordBatch>) -> ErasedStream {
        Stream {
            kind: self.kind,
            output_schema: self.output_schema,
            header,
        }
    }
}

pub(crate) type ErasedStream = Stream<RecordBatch>;
