//! Azure Blob Storage, URLs authorized by a service SAS
//! (<https://learn.microsoft.com/en-us/rest/api/storageservices/create-service-sas>)
//! that `object_store` signs with the account key, HMAC-SHA256, locally.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use object_store::ClientConfigKey;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};

use crate::common::{Objects, install_crypto_provider, storage_glue};
use crate::{DEFAULT_EXPIRY, DEFAULT_PREFIX, StorageError};

/// Azurite's account, published by Microsoft for the emulator alone
/// (<https://learn.microsoft.com/en-us/azure/storage/common/storage-use-azurite#http-connection-strings>).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEV_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// Settings for [`AzureStorage`], read from `AZURE_*` variables first.
#[derive(Debug)]
#[must_use]
pub struct AzureStorageBuilder {
    inner: MicrosoftAzureBuilder,
    container: Option<String>,
    prefix: String,
    expiry: Duration,
    invalid: Option<String>,
}

impl AzureStorageBuilder {
    /// Settings from the environment alone: `AZURE_STORAGE_ACCOUNT_NAME`,
    /// `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_CONTAINER_NAME`,
    /// `AZURE_STORAGE_ENDPOINT` and the other variables `object_store`
    /// knows; what they leave unset is taken from
    /// `AZURE_STORAGE_CONNECTION_STRING`, as the Azure SDKs spell it.
    pub fn from_env() -> Self {
        let mut builder = Self {
            inner: MicrosoftAzureBuilder::from_env(),
            container: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            expiry: DEFAULT_EXPIRY,
            invalid: None,
        };
        if let Ok(text) = std::env::var("AZURE_STORAGE_CONNECTION_STRING")
            && !text.is_empty()
        {
            builder = builder.apply_connection_string(&text, false);
        }
        builder
    }

    /// The container objects go to.
    pub fn with_container(mut self, container: impl Into<String>) -> Self {
        self.container = Some(container.into());
        self
    }

    /// The storage account.
    pub fn with_account(mut self, account: impl Into<String>) -> Self {
        self.inner = self.inner.with_account(account);
        self
    }

    /// The account key (base64, as the portal shows it), which signs the
    /// SAS of every URL.
    pub fn with_access_key(mut self, key: impl Into<String>) -> Self {
        self.inner = self.inner.with_access_key(key);
        self
    }

    /// The blob service's URL instead of
    /// `https://{account}.blob.core.windows.net`, such as Azurite's
    /// `http://127.0.0.1:10000/devstoreaccount1` (the account as the first
    /// path segment); `http://` is then allowed.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        let endpoint: String = endpoint.into();
        self.inner = self
            .inner
            .with_endpoint(endpoint.trim_end_matches('/').to_owned())
            .with_allow_http(true);
        self
    }

    /// Account, key and endpoint from a connection string
    /// (<https://learn.microsoft.com/en-us/azure/storage/common/storage-configure-connection-string>),
    /// replacing what was set before. One carrying only a
    /// `SharedAccessSignature` is refused at [`build`](Self::build): new
    /// URLs need the account key to be signed.
    pub fn with_connection_string(self, text: &str) -> Self {
        self.apply_connection_string(text, true)
    }

    /// The prefix of every key written (default [`DEFAULT_PREFIX`]); give
    /// the container a lifecycle rule on it, since nothing deletes the
    /// objects.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long issued URLs work (default [`DEFAULT_EXPIRY`]).
    pub fn with_expiry(mut self, expiry: Duration) -> Self {
        self.expiry = expiry;
        self
    }

    /// The store, with a runtime of its own for its requests.
    ///
    /// # Errors
    ///
    /// [`StorageError::Config`] when no container or account is named or a
    /// connection string is malformed; [`StorageError::Runtime`] when no
    /// thread can start.
    pub fn build(self) -> Result<AzureStorage, StorageError> {
        install_crypto_provider();
        if let Some(invalid) = self.invalid {
            return Err(StorageError::Config(invalid));
        }
        let mut inner = self.inner;
        if let Some(container) = self.container {
            inner = inner.with_container_name(container);
        }
        let container = inner
            .get_config_value(&AzureConfigKey::ContainerName)
            .ok_or_else(|| {
                StorageError::Config("no container named (set AZURE_CONTAINER_NAME)".into())
            })?;
        let account = inner
            .get_config_value(&AzureConfigKey::AccountName)
            .unwrap_or_default();
        let store = inner
            .build()
            .map_err(|e| StorageError::Config(e.to_string()))?;
        Ok(AzureStorage {
            objects: Objects::new(Arc::new(store), self.prefix, self.expiry)?,
            account,
            container,
        })
    }

    /// Sets what `text` names, over earlier settings when `overwrite`, else
    /// only where nothing is set yet.
    fn apply_connection_string(mut self, text: &str, overwrite: bool) -> Self {
        let settings = match ConnectionString::parse(text) {
            Ok(settings) => settings,
            Err(message) => {
                self.invalid = Some(message);
                return self;
            }
        };
        let mut set = |key: AzureConfigKey, value: Option<String>| {
            if let Some(value) = value
                && (overwrite || self.inner.get_config_value(&key).is_none())
            {
                self.inner = std::mem::take(&mut self.inner).with_config(key, value);
            }
        };
        let plain_http = settings
            .blob_endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        set(AzureConfigKey::AccountName, settings.account);
        set(AzureConfigKey::AccessKey, settings.key);
        set(AzureConfigKey::Endpoint, settings.blob_endpoint);
        if plain_http {
            set(
                AzureConfigKey::Client(ClientConfigKey::AllowHttp),
                Some("true".to_owned()),
            );
        }
        self
    }
}

/// What a connection string says about the blob service.
#[derive(Debug, Default, PartialEq, Eq)]
struct ConnectionString {
    account: Option<String>,
    key: Option<String>,
    blob_endpoint: Option<String>,
}

impl ConnectionString {
    /// `Key=Value` pairs separated by `;`; a value may itself hold `=`
    /// (base64 keys end in it), so each pair splits at its first one.
    fn parse(text: &str) -> Result<Self, String> {
        let mut protocol = "https";
        let mut suffix = None;
        let mut settings = Self::default();
        let mut shared_access_signature = false;
        for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| {
                format!(
                    "connection string setting {name:?} has no value",
                    name = pair
                )
            })?;
            match name {
                "DefaultEndpointsProtocol" => protocol = value,
                "AccountName" => settings.account = Some(value.to_owned()),
                "AccountKey" => settings.key = Some(value.to_owned()),
                "BlobEndpoint" => settings.blob_endpoint = Some(value.to_owned()),
                "EndpointSuffix" => suffix = Some(value),
                "SharedAccessSignature" => shared_access_signature = true,
                "UseDevelopmentStorage" if value.eq_ignore_ascii_case("true") => {
                    settings.account = Some(DEV_ACCOUNT.to_owned());
                    settings.key = Some(DEV_ACCOUNT_KEY.to_owned());
                    settings.blob_endpoint = Some(DEV_BLOB_ENDPOINT.to_owned());
                }
                // Other services' endpoints and settings say nothing of blobs.
                _ => {}
            }
        }
        if settings.key.is_none() && shared_access_signature {
            return Err(
                "a connection string with a SharedAccessSignature and no AccountKey cannot sign URLs"
                    .to_owned(),
            );
        }
        if settings.blob_endpoint.is_none()
            && let (Some(account), Some(suffix)) = (&settings.account, suffix)
        {
            settings.blob_endpoint = Some(format!("{protocol}://{account}.blob.{suffix}"));
        }
        Ok(settings)
    }
}

/// Externalized batches and upload URLs in one Azure Blob Storage
/// container, every URL carrying a service SAS for a limited time.
///
/// A client `PUT`ting to an upload URL must send `x-ms-blob-type:
/// BlockBlob`, which Azure's Put Blob requires and a SAS cannot supply.
/// The blocking calls run on a small runtime of the store's own, as for
/// [`S3Storage`](crate::S3Storage).
#[derive(Clone)]
pub struct AzureStorage {
    objects: Objects,
    account: String,
    container: String,
}

impl fmt::Debug for AzureStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureStorage")
            .field("account", &self.account)
            .field("container", &self.container)
            .field("prefix", &self.objects.prefix())
            .field("expiry", &self.objects.expiry())
            .field("location", &self.objects.location())
            .finish_non_exhaustive()
    }
}

impl AzureStorage {
    /// Settings for `container`, starting from the `AZURE_*` environment.
    pub fn builder(container: impl Into<String>) -> AzureStorageBuilder {
        AzureStorageBuilder::from_env().with_container(container)
    }

    /// The storage account.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The container written to.
    pub fn container(&self) -> &str {
        &self.container
    }
}

storage_glue!(AzureStorage);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_string_names_account_key_and_endpoint() {
        let text = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5==;EndpointSuffix=core.windows.net";
        assert_eq!(
            ConnectionString::parse(text).unwrap(),
            ConnectionString {
                account: Some("acct".into()),
                key: Some("a2V5==".into()),
                blob_endpoint: Some("https://acct.blob.core.windows.net".into()),
            }
        );
        let local = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(local.blob_endpoint.as_deref(), Some(DEV_BLOB_ENDPOINT));
        let explicit =
            ConnectionString::parse("AccountName=a;AccountKey=k;BlobEndpoint=http://h:1/a;")
                .unwrap();
        assert_eq!(explicit.blob_endpoint.as_deref(), Some("http://h:1/a"));
    }

    #[test]
    fn connection_string_without_a_key_is_refused() {
        let error =
            ConnectionString::parse("BlobEndpoint=https://h;SharedAccessSignature=sv=x&sig=y")
                .unwrap_err();
        assert!(error.contains("cannot sign"), "{error}");
        assert!(ConnectionString::parse("AccountName").is_err());
    }
}
