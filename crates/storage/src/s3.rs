//! Amazon S3 and S3-compatible stores (MinIO, R2, moto), URLs pre-signed
//! with SigV4.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};

use crate::common::{Objects, install_crypto_provider, storage_glue};
use crate::{DEFAULT_EXPIRY, DEFAULT_PREFIX, StorageError};

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
        install_crypto_provider();
        let mut inner = self.inner;
        if let Some(bucket) = self.bucket {
            inner = inner.with_bucket_name(bucket);
        }
        let bucket = inner
            .get_config_value(&AmazonS3ConfigKey::Bucket)
            .ok_or_else(|| StorageError::Config("no bucket named (set AWS_BUCKET)".into()))?;
        let store = inner
            .build()
            .map_err(|e| StorageError::Config(e.to_string()))?;
        Ok(S3Storage {
            objects: Objects::new(Arc::new(store), self.prefix, self.expiry)?,
            bucket,
        })
    }
}

/// Externalized batches and upload URLs in one S3 (or S3-compatible)
/// bucket, every URL pre-signed with SigV4 for a limited time.
///
/// The blocking calls of [`ExternalStorage`](vgirpc_http::ExternalStorage)
/// and [`UploadUrlProvider`](vgirpc_http::UploadUrlProvider) run the
/// requests on a small runtime of the store's own, so they may be made from
/// any thread, inside another runtime's blocking pool too.
#[derive(Clone)]
pub struct S3Storage {
    objects: Objects,
    bucket: String,
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage")
            .field("bucket", &self.bucket)
            .field("prefix", &self.objects.prefix())
            .field("expiry", &self.objects.expiry())
            .field("location", &self.objects.location())
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
}

storage_glue!(S3Storage);
