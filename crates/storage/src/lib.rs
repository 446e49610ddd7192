//! Object storage for vgi-rpc's externalized batches and client uploads,
//! on the `object_store` crate.
//!
//! Three backends, each an [`ExternalStorage`](vgirpc_http::ExternalStorage)
//! and an [`UploadUrlProvider`](vgirpc_http::UploadUrlProvider):
//!
//! * [`S3Storage`]: Amazon S3 and S3-compatible stores, SigV4 pre-signed
//!   URLs, configured from code or the `AWS_*` variables;
//! * [`GcsStorage`]: Google Cloud Storage, V4 signed URLs from a service
//!   account's key, configured from code or `GOOGLE_*`
//!   (`GOOGLE_APPLICATION_CREDENTIALS`, `STORAGE_EMULATOR_HOST`);
//! * [`AzureStorage`]: Azure Blob Storage, service SAS URLs signed with the
//!   account key, configured from code, `AZURE_STORAGE_ACCOUNT_NAME` and
//!   `AZURE_STORAGE_ACCOUNT_KEY`, or `AZURE_STORAGE_CONNECTION_STRING`.
//!
//! Each puts an externalized batch under a fresh key below a prefix
//! (`.arrow`, or `.arrow.zst` stored with `Content-Encoding: zstd`) and
//! hands clients a `GET` URL for it; as an upload URL provider it vends a
//! `PUT` + `GET` pair for requests too large to send inline. Every URL
//! expires after the configured time. Settings in code win over the
//! environment's.
//!
//! ```no_run
//! use std::time::Duration;
//! use vgirpc_http::{ExternalStorage, UploadUrlProvider};
//! use vgirpc_storage::{AzureStorage, GcsStorage, S3Storage};
//!
//! let s3 = S3Storage::builder("my-bucket")
//!     .with_endpoint("http://127.0.0.1:9000")
//!     .with_region("us-east-1")
//!     .with_credentials("key-id", "secret")
//!     .with_prefix("batches/")
//!     .with_expiry(Duration::from_secs(600))
//!     .build()?;
//! let url = s3.upload(b"arrow ipc stream".to_vec(), None)?;
//! let pair = s3.upload_url()?;
//! println!("{url}\n{}", pair.upload_url);
//!
//! let gcs = GcsStorage::builder("my-bucket")
//!     .with_service_account_path("service-account.json")
//!     .build()?;
//! let azure = AzureStorage::builder("my-container")
//!     .with_connection_string("AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net")
//!     .build()?;
//! println!("{}\n{}", gcs.location(), azure.location());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

mod azure;
mod common;
mod error;
mod gcs;
mod s3;

pub use azure::{AzureStorage, AzureStorageBuilder};
pub use error::StorageError;
pub use gcs::{GcsStorage, GcsStorageBuilder};
pub use s3::{S3Storage, S3StorageBuilder};

/// How long issued URLs work unless configured otherwise, as in the
/// reference.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(3600);

/// Where keys go unless configured otherwise, as in the reference.
pub const DEFAULT_PREFIX: &str = "vgi-rpc/";
