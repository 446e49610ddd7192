//! The crate's one error type.

use vgirpc_http::HttpError;

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
