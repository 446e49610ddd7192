//! The whole response to one request, its body collected.

use std::ops::Deref;

use bytes::Bytes;
use http::Response;

/// A whole response. A type of its own so that the helper modules can each
/// add the reading their tests need; the rest is the response's own.
pub(crate) struct Reply(pub(crate) Response<Bytes>);

impl Deref for Reply {
    type Target = Response<Bytes>;

    fn deref(&self) -> &Response<Bytes> {
        &self.0
    }
}
