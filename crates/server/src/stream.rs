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
///
/// # Writing streams
///
/// A **producer** answers each client tick with one batch until it calls
/// [`OutputCollector::finish`](crate::OutputCollector::finish); an
/// **exchange** answers each batch the client sends with one batch. The
/// state is a type of yours implementing [`ProducerState`] or
/// [`ExchangeState`] (or their async forms, [`AsyncProducerState`] and
/// [`AsyncExchangeState`], whose step may await).
///
/// Give rows a type: a `#[derive(ArrowStruct)]` struct names the columns,
/// its `schema()` is the stream's schema, and
/// [`OutputCollector::emit_rows`](crate::OutputCollector::emit_rows) and
/// `ArrowStruct::rows_from_record_batch` convert between rows and batches.
/// (`emit_arrays` takes the columns as Arrow arrays, by position, for the
/// largest batches.)
///
/// Stateless transports (HTTP) carry the state to the client between
/// calls, so a state used over HTTP is itself an `ArrowStruct` whose
/// `impl` is marked `#[vgirpc::stream_state]`; a state without the mark
/// works over pipes and sockets, and over HTTP fails on its first
/// continuation with an error naming the fix.
///
/// ```
/// use vgirpc::{
///     AnnotatedBatch, ArrowStruct, CallContext, ExchangeState, OutputCollector, ProducerState,
///     RpcError, Server, Stream,
/// };
///
/// /// One row of the stock listing.
/// #[derive(Debug, Clone, PartialEq, ArrowStruct)]
/// pub struct Item {
///     pub sku: String,
///     pub count: i64,
/// }
///
/// /// One sale, in an exchange's input, and its answer.
/// #[derive(Debug, Clone, PartialEq, ArrowStruct)]
/// pub struct Sale {
///     pub amount: f64,
/// }
///
/// #[derive(Debug, Clone, PartialEq, ArrowStruct)]
/// pub struct Total {
///     pub total: f64,
/// }
///
/// #[vgirpc::service]
/// pub trait Shop {
///     /// The stock, two items per batch.
///     fn stock(&self) -> Result<Stream, RpcError>;
///     /// A running total of the sales sent.
///     fn till(&self) -> Result<Stream, RpcError>;
/// }
///
/// struct Store;
///
/// impl Shop for Store {
///     fn stock(&self) -> Result<Stream, RpcError> {
///         Ok(Stream::producer(Item::schema(), Listing { next: 0 }))
///     }
///
///     fn till(&self) -> Result<Stream, RpcError> {
///         Ok(Stream::exchange(Sale::schema(), Total::schema(), Till { total: 0.0 }))
///     }
/// }
///
/// #[derive(Debug, Clone, ArrowStruct)]
/// pub struct Listing {
///     pub next: i64,
/// }
///
/// #[vgirpc::stream_state]
/// impl ProducerState for Listing {
///     fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
///         let items = ["apple", "pear", "plum"];
///         let page: Vec<Item> = items
///             .iter()
///             .skip(self.next as usize)
///             .take(2)
///             .map(|sku| Item { sku: sku.to_string(), count: 10 })
///             .collect();
///         if page.is_empty() {
///             return out.finish();
///         }
///         self.next += page.len() as i64;
///         out.emit_rows(&page)
///     }
/// }
///
/// #[derive(Debug, Clone, ArrowStruct)]
/// pub struct Till {
///     pub total: f64,
/// }
///
/// #[vgirpc::stream_state]
/// impl ExchangeState for Till {
///     fn exchange(
///         &mut self,
///         input: &AnnotatedBatch,
///         out: &mut OutputCollector,
///         _ctx: &CallContext,
///     ) -> Result<(), RpcError> {
///         let sales = Sale::rows_from_record_batch(&input.batch)?;
///         let totals: Vec<Total> = sales
///             .iter()
///             .map(|sale| {
///                 self.total += sale.amount;
///                 Total { total: self.total }
///             })
///             .collect();
///         out.emit_rows(&totals)
///     }
/// }
///
/// // Called here through a pipe pair; any transport serves it the same way.
/// let (server_reads, client_writes) = std::io::pipe()?;
/// let (client_reads, server_writes) = std::io::pipe()?;
/// let server = Server::new(ShopServer::new(Store))?;
/// let serving = std::thread::spawn(move || {
///     server.serve(server_reads, server_writes, vgirpc::TransportKind::Pipe)
/// });
/// let mut shop = ShopClient::new(vgirpc::client::Client::from_io(client_reads, client_writes));
///
/// let mut listed = Vec::new();
/// for batch in shop.stock()? {
///     listed.extend(Item::rows_from_record_batch(&batch?)?);
/// }
/// assert_eq!(listed.len(), 3);
/// assert_eq!(listed[2], Item { sku: "plum".into(), count: 10 });
///
/// let mut till = shop.till()?;
/// let sales = Sale::rows_to_record_batch(&[Sale { amount: 2.5 }, Sale { amount: 1.0 }])?;
/// let totals = Total::rows_from_record_batch(&till.exchange(&sales)?)?;
/// assert_eq!(totals, [Total { total: 2.5 }, Total { total: 3.5 }]);
/// till.close()?;
/// drop(till);
///
/// shop.into_dynamic().close()?;
/// serving.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
