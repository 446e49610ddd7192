//! The HTTP transport, client side (WIRE_PROTOCOL §10, §12, and the sticky
//! sessions of `docs/sticky-sessions-spec.md`).
//!
//! Every call is one `POST`: `{base}{prefix}/{method}` for unary calls,
//! `/{method}/init` to start a stream and `/{method}/exchange` for each
//! later turn. Nothing ties one request to the next but the stream state
//! token the server hands out, which this transport keeps and sends back
//! itself: it never appears in the batches a caller sees. A producer's
//! batches arrive in responses that end with a fresh token until the
//! producer finishes, and the transport follows them one request at a time
//! as the caller asks for batches. Batches the server externalized are
//! fetched from their URL and returned in place of the pointer.
//!
//! Requests go through a hyper client that keeps connections alive and
//! reuses them; bodies are zstd-compressed both ways, except with a server
//! on this host (see [`HttpOptions::compress_loopback`]). The calls are
//! written once, as async code ([`AsyncClient::connect_http`] runs them on
//! the caller's runtime, concurrently). [`HttpTransport`] is the blocking
//! face of the same code: it drives each call on a one-thread tokio
//! runtime of its own. Used from inside another tokio runtime it still
//! works (each request waits on a helper thread), but async code should
//! prefer the async client.
//!
//! [`AsyncClient::connect_http`]: crate::AsyncClient::connect_http

mod blocking;
mod calls;
mod compress;
mod core;
mod external;
mod oauth;
mod options;
mod payload;
mod reply;
mod retry;
mod sticky;
mod tls;
mod upload;

pub use blocking::{HttpStream, HttpTransport};
pub use oauth::{
    BearerChallenge, OAuthResourceMetadata, fetch_oauth_metadata, fetch_oauth_metadata_blocking,
    oauth_metadata, oauth_metadata_blocking, parse_resource_metadata_url,
};
pub use options::HttpOptions;
pub use retry::RetryPolicy;
pub use sticky::{DetachedSession, StickySession};

pub(crate) use self::calls::Cursor;
pub(crate) use self::core::HttpCore;

/// The content type of every vgi-rpc request and response body.
const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
/// The only body codec: zstd both ways.
const ZSTD: &str = "zstd";
