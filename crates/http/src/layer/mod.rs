//! The tower layers around the vgi-rpc endpoints, outermost first:
//!
//! 1. [`request_id`]: echo or mint `X-Request-ID`;
//! 2. [`capabilities`]: capability headers on every response;
//! 3. [`resource_metadata`]: the RFC 9728 document, and its URL in every
//!    `401` challenge (when the authenticator publishes metadata);
//! 4. [`auth`]: authenticate, or answer `401` before the body is read;
//! 5. [`limit`]: read the body, refusing oversized ones with `413`;
//! 6. [`compression`]: zstd request and response bodies;
//! 7. [`sticky`]: sticky sessions, on sticky servers only (they need the
//!    authenticated identity, and hold the session while the endpoint runs).
//!
//! With browser logins, [`oauth`] sits between 2 and 3: it answers the
//! login routes, and turns the `401`s of browsers into logins.

pub(crate) mod auth;
pub(crate) mod capabilities;
pub(crate) mod compression;
pub(crate) mod limit;
pub(crate) mod oauth;
pub(crate) mod request_id;
pub(crate) mod resource_metadata;
pub(crate) mod sticky;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use http::Response;

use crate::body::ResponseBody;

/// The future every layer returns.
pub(crate) type BoxFuture =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

/// Takes the inner service for one call, leaving a clone ready for the next
/// (the inner service was polled ready; its clone may not have been).
pub(crate) fn take<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}
