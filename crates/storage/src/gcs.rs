//! Google Cloud Storage, URLs signed with the V4 scheme
//! (<https://cloud.google.com/storage/docs/access-control/signed-urls>,
//! `GOOG4-RSA-SHA256`) by the service account's own RSA key, so signing
//! needs no request to Google.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use object_store::ClientConfigKey;
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};

use crate::common::{Objects, install_crypto_provider, storage_glue};
use crate::{DEFAULT_EXPIRY, DEFAULT_PREFIX, StorageError};

/// The longest a V4 signed URL may live.
const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Settings for [`GcsStorage`], read from `GOOGLE_*` variables first.
#[derive(Debug)]
#[must_use]
pub struct GcsStorageBuilder {
    inner: GoogleCloudStorageBuilder,
    bucket: Option<String>,
    prefix: String,
    expiry: Duration,
}

impl GcsStorageBuilder {
    /// Settings from the environment alone: `GOOGLE_BUCKET` (or
    /// `GOOGLE_BUCKET_NAME`), the service account as
    /// `GOOGLE_SERVICE_ACCOUNT` (a file) or `GOOGLE_SERVICE_ACCOUNT_KEY`
    /// (its JSON), else `GOOGLE_APPLICATION_CREDENTIALS`; and
    /// `STORAGE_EMULATOR_HOST`, which the Google SDKs read, for an emulator.
    pub fn from_env() -> Self {
        let builder = Self {
            inner: GoogleCloudStorageBuilder::from_env(),
            bucket: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            expiry: DEFAULT_EXPIRY,
        };
        match std::env::var("STORAGE_EMULATOR_HOST") {
            Ok(host) if !host.is_empty() => builder.with_endpoint(host),
            _ => builder,
        }
    }

    /// The bucket objects go to.
    pub fn with_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    /// Another endpoint than `https://storage.googleapis.com` (an
    /// emulator): `http://host:port`, or `host:port` as
    /// `STORAGE_EMULATOR_HOST` may spell it. `http://` is then allowed.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        let endpoint = endpoint.into();
        let url = if endpoint.contains("://") {
            endpoint
        } else {
            format!("http://{endpoint}")
        };
        self.inner = self
            .inner
            .with_base_url(url.trim_end_matches('/'))
            .with_config(GoogleConfigKey::Client(ClientConfigKey::AllowHttp), "true");
        self
    }

    /// The service account key, as the JSON file Google issues holds it
    /// (`client_email` and `private_key` are what signing needs).
    pub fn with_service_account_key(mut self, json: impl Into<String>) -> Self {
        self.inner = self.inner.with_service_account_key(json);
        self
    }

    /// The service account key file.
    pub fn with_service_account_path(mut self, path: impl Into<String>) -> Self {
        self.inner = self.inner.with_service_account_path(path);
        self
    }

    /// The prefix of every key written (default [`DEFAULT_PREFIX`]); give
    /// the bucket a lifecycle rule on it, since nothing deletes the objects.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long issued URLs work (default [`DEFAULT_EXPIRY`], at most 7
    /// days).
    pub fn with_expiry(mut self, expiry: Duration) -> Self {
        self.expiry = expiry;
        self
    }

    /// The store, with a runtime of its own for its requests.
    ///
    /// # Errors
    ///
    /// [`StorageError::Config`] when no bucket is named, the expiry is
    /// beyond 7 days or the credentials cannot be read;
    /// [`StorageError::Runtime`] when no thread can start.
    pub fn build(self) -> Result<GcsStorage, StorageError> {
        install_crypto_provider();
        if self.expiry > MAX_EXPIRY {
            return Err(StorageError::Config(format!(
                "GCS signed URLs live at most 7 days, not {} s",
                self.expiry.as_secs()
            )));
        }
        let mut inner = self.inner;
        if let Some(bucket) = self.bucket {
            inner = inner.with_bucket_name(bucket);
        }
        let bucket = inner
            .get_config_value(&GoogleConfigKey::Bucket)
            .ok_or_else(|| StorageError::Config("no bucket named (set GOOGLE_BUCKET)".into()))?;
        let store = inner
            .build()
            .map_err(|e| StorageError::Config(e.to_string()))?;
        Ok(GcsStorage {
            objects: Objects::new(Arc::new(store), self.prefix, self.expiry)?,
            bucket,
        })
    }
}

/// Externalized batches and upload URLs in one Google Cloud Storage
/// bucket, every URL a V4 signed URL for a limited time.
///
/// Signing takes a service account's private key; with other credentials
/// (a user's, the instance's) `object_store` asks the IAM `signBlob` API,
/// one request per URL. The blocking calls run on a small runtime of the
/// store's own, as for [`S3Storage`](crate::S3Storage).
#[derive(Clone)]
pub struct GcsStorage {
    objects: Objects,
    bucket: String,
}

impl fmt::Debug for GcsStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsStorage")
            .field("bucket", &self.bucket)
            .field("prefix", &self.objects.prefix())
            .field("expiry", &self.objects.expiry())
            .field("location", &self.objects.location())
            .finish_non_exhaustive()
    }
}

impl GcsStorage {
    /// Settings for `bucket`, starting from the `GOOGLE_*` environment.
    pub fn builder(bucket: impl Into<String>) -> GcsStorageBuilder {
        GcsStorageBuilder::from_env().with_bucket(bucket)
    }

    /// The bucket written to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

storage_glue!(GcsStorage);
