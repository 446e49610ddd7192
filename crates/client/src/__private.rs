//! Support code for the typed clients `#[vgirpc::service]` generates; not a
//! stable API.

use std::sync::Arc;

pub use arrow_array::{ArrayRef, RecordBatch};
pub use arrow_schema::Field;
use arrow_schema::Schema;
use vgirpc_wire::types::{ArrowStruct, ArrowValue, from_column, to_column};

use crate::ClientError;
use crate::async_client::{AsyncStream, AsyncTypedStream};
use crate::client::{CallResult, no_params};
use crate::stream::{StreamCall, TypedStream};
use crate::transport::Transport;

/// Encodes parameter `name` of `method` as its one-row column.
///
/// The field matches what the server declares (`vgirpc::__private::param_field`).
pub fn param<T: ArrowValue>(
    method: &str,
    name: &str,
    value: &T,
) -> Result<(Field, ArrayRef), ClientError> {
    let column = to_column(value).map_err(|source| ClientError::Codec {
        context: format!("parameter '{name}' of {method}()"),
        source,
    })?;
    Ok((Field::new(name, T::column_type(), T::nullable()), column))
}

/// Assembles the one-row parameter batch.
pub fn params(method: &str, columns: Vec<(Field, ArrayRef)>) -> Result<RecordBatch, ClientError> {
    if columns.is_empty() {
        return Ok(no_params());
    }
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| ClientError::Codec {
        context: format!("the parameters of {method}()"),
        source: e.into(),
    })
}

/// Decodes the `result` column of a unary response.
pub fn unary_result<T: ArrowValue>(method: &str, result: CallResult) -> Result<T, ClientError> {
    let batch = &result.batch;
    let column = batch.column_by_name("result").ok_or_else(|| {
        ClientError::Protocol(format!("the response to {method}() has no 'result' column"))
    })?;
    if batch.num_rows() != 1 {
        return Err(ClientError::Protocol(format!(
            "the response to {method}() has {} rows, expected 1",
            batch.num_rows()
        )));
    }
    from_column::<T>(column.as_ref(), 0).map_err(|source| ClientError::Codec {
        context: format!("the result of {method}()"),
        source,
    })
}

/// Accepts the response of a method without a return value.
pub fn unary_void(method: &str, result: CallResult) -> Result<(), ClientError> {
    if result.batch.num_columns() == 0 {
        Ok(())
    } else {
        Err(ClientError::Protocol(format!(
            "{method}() returns nothing, but the response has columns {}",
            result.batch.schema()
        )))
    }
}

/// A headerless stream as a typed stream.
pub fn untyped<T: Transport>(call: StreamCall<'_, T>) -> TypedStream<'_, T> {
    TypedStream::new((), call)
}

/// Decodes the header of a stream into `H`.
pub fn typed_header<'c, T: Transport, H: ArrowStruct>(
    method: &str,
    call: StreamCall<'c, T>,
) -> Result<TypedStream<'c, T, H>, ClientError> {
    let batch = call.header().ok_or_else(|| {
        ClientError::Protocol(format!("{method}() declares a header but none was read"))
    })?;
    let header = H::from_record_batch(batch, 0).map_err(|source| ClientError::Codec {
        context: format!("the header of {method}()"),
        source,
    })?;
    Ok(TypedStream::new(header, call))
}

/// A headerless async stream as a typed stream.
pub fn async_untyped(stream: AsyncStream) -> AsyncTypedStream {
    AsyncTypedStream::new((), stream)
}

/// Decodes the header of an async stream into `H`.
pub fn async_typed_header<H: ArrowStruct>(
    method: &str,
    stream: AsyncStream,
) -> Result<AsyncTypedStream<H>, ClientError> {
    let batch = stream.header().ok_or_else(|| {
        ClientError::Protocol(format!("{method}() declares a header but none was read"))
    })?;
    let header = H::from_record_batch(batch, 0).map_err(|source| ClientError::Codec {
        context: format!("the header of {method}()"),
        source,
    })?;
    Ok(AsyncTypedStream::new(header, stream))
}
