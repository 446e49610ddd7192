//! Outgoing HTTP(S) for vgi-rpc, shared by the client and the HTTP
//! server: one TLS setup ([`TlsSettings`]: the system's roots, extra CAs,
//! a client certificate; HTTP/1.1 and HTTP/2 by ALPN), the client over it
//! ([`Outgoing`]), the fetcher of externalized objects
//! ([`Fetcher`], configured by [`FetchConfig`] with the reference's
//! defaults): a `HEAD`, then one `GET` or parallel `Range` requests with
//! hedging, retries with backoff, a deadline, a size cap and zstd;
//! the judgement both sides make before compressing a large body
//! ([`worth_compressing`]); and the OAuth protected-resource metadata
//! document (RFC 9728) the server publishes and the client reads
//! ([`OAuthResourceMetadata`]).
//!
//! ```
//! use vgirpc_fetch::{FetchConfig, FetchError, Fetcher, Outgoing, TlsSettings};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), FetchError> {
//! let config = FetchConfig::default().with_allowed_locations(["https://bucket.example/vgi/"]);
//! let fetcher = Fetcher::new(config, Outgoing::new(&TlsSettings::new())?);
//! // Refused before any request is made.
//! let refused = fetcher.fetch("http://169.254.169.254/latest/meta-data/").await;
//! assert!(matches!(refused, Err(FetchError::NotAllowed { .. })));
//! # Ok(())
//! # }
//! ```

mod compression;
mod error;
mod fetch;
mod location;
mod outgoing;
mod presigned;
mod resource_metadata;
mod tls;

pub use compression::{SMALL_BODY, worth_compressing, worth_compressing_pieces};
pub use error::FetchError;
pub use fetch::{FetchConfig, Fetcher};
pub use location::is_under;
pub use outgoing::{DEFAULT_TIMEOUT, Outgoing, Reply, block_on, with_causes};
pub use resource_metadata::{OAuthResourceMetadata, RESOURCE_METADATA_PATH};
pub use tls::{Connector, TlsSettings};
