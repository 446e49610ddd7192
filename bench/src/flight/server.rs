//! The Flight server: `vgirpc-bench flight-server`, a process of its own
//! so its CPU time can be read from `/proc` as our worker's is.
//!
//! It answers exactly what the Flight workloads ask and nothing more; every
//! other Flight method is unimplemented.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use arrow_array::types::Float64Type;
use arrow_array::{Float64Array, Int64Array, RecordBatch};
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use futures::stream::{self, BoxStream, StreamExt as _, TryStreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use super::{ECHO, NOOP, encoder};
use crate::workloads::FACTOR;

type Replies<T> = BoxStream<'static, Result<T, Status>>;

/// The benchmark's Flight service.
#[derive(Debug)]
struct Bench {
    counter_schema: SchemaRef,
}

/// Parses a `do_get` ticket, `ROWS,BATCHES`.
fn parse_ticket(ticket: &[u8]) -> Result<(usize, usize), Status> {
    std::str::from_utf8(ticket)
        .ok()
        .and_then(|text| text.split_once(','))
        .and_then(|(rows, batches)| Some((rows.parse().ok()?, batches.parse().ok()?)))
        .ok_or_else(|| Status::invalid_argument("the ticket is not ROWS,BATCHES"))
}

/// Batch `k` of `rows` rows, `index = k*rows..`, `value = index * 10`: what
/// our worker's `produce_n` and `produce_large_batches` send.
fn counter_batch(schema: &SchemaRef, k: usize, rows: usize) -> Result<RecordBatch, FlightError> {
    let first = (k * rows) as i64;
    let index = Int64Array::from_iter_values(first..first + rows as i64);
    let value = Int64Array::from_iter_values((first..first + rows as i64).map(|i| i * 10));
    Ok(RecordBatch::try_new(
        Arc::clone(schema),
        vec![Arc::new(index), Arc::new(value)],
    )?)
}

/// `exchange_scale`'s answer: every value times [`FACTOR`], nulls kept.
fn scale(batch: &RecordBatch) -> Result<RecordBatch, FlightError> {
    let values = batch
        .column_by_name("value")
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
        .ok_or_else(|| {
            FlightError::Arrow(ArrowError::SchemaError(
                "the exchange input has no float64 column \"value\"".to_owned(),
            ))
        })?;
    let scaled = values.unary::<_, Float64Type>(|v| v * FACTOR);
    Ok(RecordBatch::try_new(
        batch.schema(),
        vec![Arc::new(scaled)],
    )?)
}

fn unimplemented<T>(method: &str) -> Result<T, Status> {
    Err(Status::unimplemented(format!(
        "{method} is not part of the benchmark"
    )))
}

#[tonic::async_trait]
impl FlightService for Bench {
    type HandshakeStream = Replies<HandshakeResponse>;
    type ListFlightsStream = Replies<FlightInfo>;
    type DoGetStream = Replies<FlightData>;
    type DoPutStream = Replies<PutResult>;
    type DoExchangeStream = Replies<FlightData>;
    type DoActionStream = Replies<arrow_flight::Result>;
    type ListActionsStream = Replies<ActionType>;

    async fn handshake(
        &self,
        _: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        unimplemented("handshake")
    }

    async fn list_flights(
        &self,
        _: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        unimplemented("list_flights")
    }

    async fn get_flight_info(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        unimplemented("get_flight_info")
    }

    async fn poll_flight_info(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        unimplemented("poll_flight_info")
    }

    async fn get_schema(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        unimplemented("get_schema")
    }

    /// The batches are made as the stream is polled, so the server holds
    /// one at a time however many the ticket asks for.
    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let (rows, batches) = parse_ticket(&request.into_inner().ticket)?;
        let schema = Arc::clone(&self.counter_schema);
        let source = stream::iter(0..batches).map(move |k| counter_batch(&schema, k, rows));
        let replies = encoder().build(source).map_err(Status::from);
        Ok(Response::new(replies.boxed()))
    }

    async fn do_put(
        &self,
        _: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        unimplemented("do_put")
    }

    /// Each input batch is answered as soon as it arrives, so the client
    /// can go back and forth on one call as our exchange sessions do.
    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        let input = request.into_inner().map_err(FlightError::from);
        let scaled = FlightRecordBatchStream::new_from_flight_data(input)
            .and_then(|batch| futures::future::ready(scale(&batch)));
        let replies = encoder().build(scaled).map_err(Status::from);
        Ok(Response::new(replies.boxed()))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let action = request.into_inner();
        match action.r#type.as_str() {
            NOOP => Ok(Response::new(stream::empty().boxed())),
            ECHO => {
                let reply = arrow_flight::Result { body: action.body };
                Ok(Response::new(stream::once(async { Ok(reply) }).boxed()))
            }
            other => Err(Status::invalid_argument(format!("no action {other:?}"))),
        }
    }

    async fn list_actions(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        unimplemented("list_actions")
    }
}

/// `vgirpc-bench flight-server`: serves on an ephemeral loopback port,
/// printing `PORT:<port>` once bound, until killed.
pub(crate) fn main(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("usage: flight-server (no arguments)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("the Flight server's runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("binding the Flight server")?;
        let port = listener.local_addr()?.port();
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let service = Bench {
            counter_schema: Arc::new(Schema::new(vec![
                Field::new("index", DataType::Int64, false),
                Field::new("value", DataType::Int64, false),
            ])),
        };
        // The 8 MB exchange batches go as one message each, past gRPC's
        // 4 MB default limit.
        let service = FlightServiceServer::new(service)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        println!("PORT:{port}");
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .context("serving Flight")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::answers::{check_counter_batch, check_scaled, float_batch, float_values};

    #[test]
    fn answers_pass_the_workload_checks() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("index", DataType::Int64, false),
            Field::new("value", DataType::Int64, false),
        ]));
        let batch = counter_batch(&schema, 3, 5).unwrap();
        assert!(check_counter_batch(&batch, 3, 5).is_ok());
        assert_eq!(parse_ticket(b"5,3").unwrap(), (5, 3));
        assert!(parse_ticket(b"5").is_err());

        let input = float_batch(vec![1.0, -2.5]).unwrap();
        let scaled = scale(&input).unwrap();
        assert!(check_scaled(float_values(&input).unwrap(), &scaled).is_ok());
    }
}
