//! Requests the server itself makes: uploads to object storage, fetches
//! of the URLs in pointer batches, identity providers' documents. They go
//! through `vgirpc-fetch`'s client and block, because they run on the
//! threads that execute requests, never on the async reactor.

use bytes::Bytes;
use http::Method;
use vgirpc_fetch::{DEFAULT_TIMEOUT, Outgoing, block_on};

pub(crate) use vgirpc_fetch::Reply;

use crate::error::HttpError;

/// Sends one request and waits for the whole response, whose body may be at
/// most `max_body` bytes.
pub(crate) fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    max_body: usize,
) -> Result<Reply, HttpError> {
    let exchange = Outgoing::system().send(method, url, headers, body, max_body, DEFAULT_TIMEOUT);
    Ok(block_on(exchange)?)
}
