//! What every backend shares: key naming, the encoding attributes, the
//! runtime the blocking calls wait on, and the glue to the HTTP crate's
//! storage traits. A backend builds its `object_store` client and hands it
//! to [`Objects::new`]; [`storage_glue!`] then gives the backend's type its
//! public methods and trait implementations.

use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use http::Method;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use tokio::runtime::Runtime;
use vgirpc_http::UploadUrl;

use crate::StorageError;

/// A store that can also pre-sign URLs, which every backend's client is.
pub(crate) trait SignedStore: ObjectStore + Signer {}

impl<T: ObjectStore + Signer> SignedStore for T {}

/// One store, a key prefix and an expiry, with a small runtime of their own.
#[derive(Clone)]
pub(crate) struct Objects {
    store: Arc<dyn SignedStore>,
    runtime: Arc<Runtime>,
    prefix: String,
    expiry: Duration,
    location: String,
}

impl Objects {
    /// Starts the runtime and finds the store's [`location`](Self::location).
    pub(crate) fn new(
        store: Arc<dyn SignedStore>,
        prefix: String,
        expiry: Duration,
    ) -> Result<Self, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("vgirpc-storage")
            .enable_all()
            .build()
            .map_err(StorageError::Runtime)?;
        let mut objects = Self {
            store,
            runtime: Arc::new(runtime),
            prefix,
            expiry,
            location: String::new(),
        };
        // Where the keys live, as URLs name it: the signed URL of a key
        // directly under the prefix, cut before the key. Signing is local
        // for every backend configured with a key, so this costs no request.
        let probe = Path::from(format!("{}probe", objects.prefix));
        let url = objects.signed_url_for(Method::GET, &probe, objects.expiry)?;
        let path = url.split_once('?').map_or(url.as_str(), |(path, _)| path);
        objects.location = path.strip_suffix("probe").unwrap_or(path).to_owned();
        Ok(objects)
    }

    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    pub(crate) fn expiry(&self) -> Duration {
        self.expiry
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Stores `data` under a fresh key, its encoding recorded so that the
    /// store serves it with that `Content-Encoding`.
    pub(crate) fn put(
        &self,
        data: Vec<u8>,
        content_encoding: Option<&str>,
    ) -> Result<Path, StorageError> {
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

    pub(crate) fn signed_url_for(
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

    pub(crate) fn delete(&self, key: &Path) -> Result<(), StorageError> {
        let store = Arc::clone(&self.store);
        let path = key.clone();
        self.block_on(async move { store.delete(&path).await })?
            .map_err(|source| store_error(key, source))
    }

    /// An externalized batch: stored, then a `GET` URL for it.
    pub(crate) fn upload(
        &self,
        data: Vec<u8>,
        content_encoding: Option<&str>,
    ) -> Result<String, StorageError> {
        let key = self.put(data, content_encoding)?;
        self.signed_url_for(Method::GET, &key, self.expiry)
    }

    /// A `PUT` and a `GET` URL for one fresh key, both ending together.
    pub(crate) fn upload_url(&self) -> Result<UploadUrl, StorageError> {
        let key = self.fresh_key(".arrow");
        let expires_at = SystemTime::now() + self.expiry;
        Ok(UploadUrl {
            upload_url: self.signed_url_for(Method::PUT, &key, self.expiry)?,
            download_url: self.signed_url_for(Method::GET, &key, self.expiry)?,
            expires_at,
        })
    }

    /// 128 random bits under the prefix: unguessable, so a URL's holder
    /// cannot reach its neighbours by editing it, and never reused.
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

/// The HTTP client under `object_store` is built without a crypto provider
/// of its own: the process's is ring, as for every other TLS connection of
/// vgi-rpc. An error means one is installed already.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The methods and trait implementations every backend type has, on its
/// `objects: Objects` field.
macro_rules! storage_glue {
    ($backend:ident) => {
        impl $backend {
            /// The URL prefix of every object URL this storage issues: the
            /// one location a server should fetch pointer batches from
            /// (`ExternalConfig::with_allowed_locations`).
            pub fn location(&self) -> &str {
                self.objects.location()
            }

            /// The prefix of every key written.
            pub fn prefix(&self) -> &str {
                self.objects.prefix()
            }

            /// How long issued URLs work.
            pub fn expiry(&self) -> ::std::time::Duration {
                self.objects.expiry()
            }

            /// Stores `data` under a fresh key and returns the key.
            ///
            /// # Errors
            ///
            /// [`StorageError::Store`](crate::StorageError::Store) when the
            /// store refuses the write.
            pub fn put(
                &self,
                data: Vec<u8>,
                content_encoding: Option<&str>,
            ) -> Result<::object_store::path::Path, crate::StorageError> {
                self.objects.put(data, content_encoding)
            }

            /// A URL that lets its holder `method` the object at `key`
            /// until the configured expiry.
            ///
            /// # Errors
            ///
            /// [`StorageError::Store`](crate::StorageError::Store) when no
            /// credentials can be had to sign it.
            pub fn signed_url(
                &self,
                method: ::http::Method,
                key: &::object_store::path::Path,
            ) -> Result<String, crate::StorageError> {
                self.objects
                    .signed_url_for(method, key, self.objects.expiry())
            }

            /// As [`signed_url`](Self::signed_url), with an expiry of its own.
            ///
            /// # Errors
            ///
            /// [`StorageError::Store`](crate::StorageError::Store) when no
            /// credentials can be had to sign it.
            pub fn signed_url_for(
                &self,
                method: ::http::Method,
                key: &::object_store::path::Path,
                expiry: ::std::time::Duration,
            ) -> Result<String, crate::StorageError> {
                self.objects.signed_url_for(method, key, expiry)
            }

            /// Deletes the object at `key`; vgi-rpc itself never does.
            ///
            /// # Errors
            ///
            /// [`StorageError::Store`](crate::StorageError::Store) when the
            /// store refuses.
            pub fn delete(
                &self,
                key: &::object_store::path::Path,
            ) -> Result<(), crate::StorageError> {
                self.objects.delete(key)
            }
        }

        impl ::vgirpc_http::ExternalStorage for $backend {
            fn upload(
                &self,
                data: Vec<u8>,
                content_encoding: Option<&str>,
            ) -> Result<String, ::vgirpc_http::HttpError> {
                Ok(self.objects.upload(data, content_encoding)?)
            }
        }

        impl ::vgirpc_http::UploadUrlProvider for $backend {
            fn upload_url(&self) -> Result<::vgirpc_http::UploadUrl, ::vgirpc_http::HttpError> {
                Ok(self.objects.upload_url()?)
            }
        }
    };
}

pub(crate) use storage_glue;
