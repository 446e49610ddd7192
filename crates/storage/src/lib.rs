//! Object storage for vgi-rpc's externalized batches and client uploads,
//! on the `object_store` crate.
//!
//! [`S3Storage`] puts each externalized batch under a key prefix of one
//! bucket of S3 or an S3-compatible store and hands clients a pre-signed
//! `GET` URL; as an [`UploadUrlProvider`] it vends pre-signed `PUT` + `GET`
//! pairs for requests too large to send inline. Both expire after the
//! configured time. Configuration comes from code, from the `AWS_*`
//! variables the AWS SDKs read, or both (code wins).
//!
//! ```no_run
//! use std::time::Duration;
//! use vgirpc_http::{ExternalStorage, UploadUrlProvider};
//! use vgirpc_storage::S3Storage;
//!
//! let storage = S3Storage::builder("my-bucket")
//!     .with_endpoint("http://127.0.0.1:9000")
//!     .with_region("us-east-1")
//!     .with_credentials("key-id", "secret")
//!     .with_prefix("batches/")
//!     .with_expiry(Duration::from_secs(600))
//!     .build()?;
//! let url = storage.upload(b"arrow ipc stream".to_vec(), None)?;
//! let pair = storage.upload_url()?;
//! println!("{url}\n{}", pair.upload_url);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use http::Method;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use tokio::runtime::Runtime;
use vgirpc_http::{ExternalStorage, HttpError, UploadUrl, UploadUrlProvider};

/// How long issued URLs work unless configured otherwise, as in the
/// reference.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(3600);

/// Where keys go unless configured otherwise, as in the reference.
pub const DEFAULT_PREFIX: &str = "vgi-rpc/";

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The configuration cannot make a store.
    #[error("invalid storage configuration: {0}")]
    Config(String),
    /// The object store refused or failed the operation.
    #[error("object store operation on {key} failed")]
    Store {
        /// The object's key.
        key: String,
        /// What the store said.
        #[source]
        source: object_store::Error,
    },
    /// The runtime driving the store's requests could not start.
    #[error("cannot start the storage runtime")]
    Runtime(#[source] std::io::Error),
    /// The task running the operation ended without an answer.
    #[error("the storage operation was abandoned")]
    Abandoned,
}

impl From<StorageError> for HttpError {
    fn from(error: StorageError) -> Self {
        HttpError::Storage(Box::new(error))
    }
}

/// Settings for [`S3Storage`], read from `AWS_*` variables first.
#[derive(Debug)]
#[must_use]
pub struct S3StorageBuilder {
    inner: AmazonS3Builder,
    bucket: Option<String>,
    prefix: String,
    expiry: Duration,
}

impl S3StorageBuilder {
    /// Settings from the environment alone: `AWS_BUCKET` (or
    /// `AWS_BUCKET_NAME`), `AWS_REGION`, `AWS_ENDPOINT_URL`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    /// `AWS_ALLOW_HTTP` and the other variables `object_store` knows.
    pub fn from_env() -> Self {
        Self {
            inner: AmazonS3Builder::from_env(),
            bucket: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            expiry: DEFAULT_EXPIRY,
        }
    }

    /// The bucket objects go to.
    pub fn with_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    /// An S3-compatible endpoint (an emulator, MinIO, R2) instead of AWS.
    /// Buckets are then addressed by path, and `http://` is allowed.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.inner = self
            .inner
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(true);
        self
    }

    /// The bucket's region (signatures name it).
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.inner = self.inner.with_region(region);
        self
    }

    /// Static credentials instead of the environment's or the instance's.
    pub fn with_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.inner = self
            .inner
            .with_access_key_id(access_key_id)
            .with_secret_access_key(secret_access_key);
        self
    }

    /// The prefix of every key written (default [`DEFAULT_PREFIX`]); give
    /// the bucket a lifecycle rule on it, since nothing deletes the objects.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long issued URLs work (default [`DEFAULT_EXPIRY`]; S3 allows up
    /// to 7 days).
    pub fn with_expiry(mut self, expiry: Duration) -> Self {
        self.expiry = expiry;
        self
    }

    /// The store, with a runtime of its own for its requests.
    ///
    /// # Errors
    ///
    /// [`StorageError::Config`] when no bucket is named or the settings
    /// are inconsistent; [`StorageError::Runtime`] when no thread can start.
    pub fn build(self) -> Result<S3Storage, StorageError> {
        // The HTTP client under object_store is built without a crypto
        // provider of its own: the process's is ring, as for every other
        // TLS connection of vgi-rpc. An error means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut inner = self.inner;
        if let Some(bucket) = self.bucket {
            inner = inner.with_bucket_name(bucket);
        }
        let bucket = inner
            .get_config_value(&object_store::aws::AmazonS3ConfigKey::Bucket)
            .ok_or_else(|| StorageError::Config("no bucket named (set AWS_BUCKET)".into()))?;
        let store = inner
            .build()
            .map_err(|e| StorageError::Config(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("vgirpc-storage")
            .enable_all()
            .build()
            .map_err(StorageError::Runtime)?;
        let mut storage = S3Storage {
            store: Arc::new(store),
            runtime: Arc::new(runtime),
            bucket,
            prefix: self.prefix,
            expiry: self.expiry,
            location: String::new(),
        };
        // Where the keys live, as URLs name it: the signed URL of a key
        // directly under the prefix, cut before the key.
        let probe = Path::from(format!("{}probe", storage.prefix));
        let url = storage.signed_url(Method::GET, &probe)?;
        let path = url.split_once('?').map_or(url.as_str(), |(path, _)| path);
        storage.location = path.strip_suffix("probe").unwrap_or(path).to_owned();
        Ok(storage)
    }
}

/// Externalized batches and upload URLs in one S3 (or S3-compatible)
/// bucket, every URL pre-signed with SigV4 for a limited time.
///
/// The blocking calls of [`ExternalStorage`] and [`UploadUrlProvider`] run
/// the requests on a small runtime of the store's own, so they may be made
/// from any thread, inside another runtime's blocking pool too.
#[derive(Clone)]
pub struct S3Storage {
    store: Arc<AmazonS3>,
    runtime: Arc<Runtime>,
    bucket: String,
    prefix: String,
    expiry: Duration,
    location: String,
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("expiry", &self.expiry)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl S3Storage {
    /// Settings for `bucket`, starting from the `AWS_*` environment.
    pub fn builder(bucket: impl Into<String>) -> S3StorageBuilder {
        S3StorageBuilder::from_env().with_bucket(bucket)
    }

    /// The bucket written to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The URL prefix of every object URL this storage issues, e.g.
    /// `https://bucket.s3.us-east-1.amazonaws.com/vgi-rpc/`: the one
    /// location a server should fetch pointer batches from
    /// (`ExternalConfig::with_allowed_locations`).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Stores `data` under a fresh key and returns the key.
    ///
    /// # Errors
    ///
    /// [`StorageError::Store`] when the store refuses the write.
    pub fn put(&self, data: Vec<u8>, content_encoding: Option<&str>) -> Result<Path, StorageError> {
        let suffix = if content_encoding == Some("zstd") {
            ".arrow.zst"
        } else {
            ".arrow"
        };
        let key = self.fresh_key(suffix);
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, "application/octet-stream".into());
        if let Some(encoding) = content_encoding {
            attributes.insert(Attribute::ContentEncoding, encoding.to_owned().into());
        }
        let options = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        let store = Arc::clone(&self.store);
        let path = key.clone();
        self.block_on(async move { store.put_opts(&path, PutPayload::from(data), options).await })?
            .map_err(|source| store_error(&key, source))?;
        Ok(key)
    }

    /// A URL that lets its holder `method` the object at `key` until the
    /// configured expiry.
    ///
    /// # Errors
    ///
    /// [`StorageError::Store`] when no credentials can be had to sign it.
    pub fn signed_url(&self, method: Method, key: &Path) -> Result<String, StorageError> {
        self.signed_url_for(method, key, self.expiry)
    }

    /// As [`signed_url`](Self::signed_url), with an expiry of its own.
    ///
    /// # Errors
    ///
    /// [`StorageError::Store`] when no credentials can be had to sign it.
    pub fn signed_url_for(
        &self,
        method: Method,
        key: &Path,
        expiry: Duration,
    ) -> Result<String, StorageError> {
        let store = Arc::clone(&self.store);
        let path = key.clone();
        let url = self
            .block_on(async move { store.signed_url(method, &path, expiry).await })?
            .map_err(|source| store_error(key, source))?;
        Ok(url.to_string())
    }

    /// Deletes the object at `key`; vgi-rpc itself never does.
    ///
    /// # Errors
    ///
    /// [`StorageError::Store`] when the store refuses.
    pub fn delete(&self, key: &Path) -> Result<(), StorageError> {
        let store = Arc::clone(&self.store);
        let path = key.clone();
        self.block_on(async move { store.delete(&path).await })?
            .map_err(|source| store_error(key, source))
    }

    fn fresh_key(&self, suffix: &str) -> Path {
        Path::from(format!(
            "{}{:032x}{suffix}",
            self.prefix,
            rand::random::<u128>()
        ))
    }

    /// Runs `future` on the store's runtime and waits for it. Spawning
    /// rather than `block_on` keeps this usable on threads that are inside
    /// some runtime's context, where `block_on` panics.
    fn block_on<F>(&self, future: F) -> Result<F::Output, StorageError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().map_err(|_| StorageError::Abandoned)
    }
}

fn store_error(key: &Path, source: object_store::Error) -> StorageError {
    StorageError::Store {
        key: key.to_string(),
        source,
    }
}

impl ExternalStorage for S3Storage {
    fn upload(&self, data: Vec<u8>, content_encoding: Option<&str>) -> Result<String, HttpError> {
        let key = self.put(data, content_encoding)?;
        Ok(self.signed_url(Method::GET, &key)?)
    }
}

impl UploadUrlProvider for S3Storage {
    fn upload_url(&self) -> Result<UploadUrl, HttpError> {
        let key = self.fresh_key(".arrow");
        let expires_at = SystemTime::now() + self.expiry;
        Ok(UploadUrl {
            upload_url: self.signed_url(Method::PUT, &key)?,
            download_url: self.signed_url(Method::GET, &key)?,
            expires_at,
        })
    }
}
