use std::error::Error as StdError;

/// Everything that can go wrong in the HTTP transport outside a single
/// request's answer (those become HTTP statuses and error batches instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Binding, accepting or talking to a socket failed.
    #[error("http transport i/o failed")]
    Io(#[from] std::io::Error),
    /// The configuration is inconsistent.
    #[error("invalid http configuration: {0}")]
    Config(String),
    /// The service's `on_serve_start` hook refused to start.
    #[error("the service refused to start")]
    Start(#[source] vgirpc::ServeError),
    /// An outgoing request (external storage, pointer fetch) failed.
    #[error("request to {url} failed: {reason}")]
    Outgoing {
        /// The URL the request went to, without its query string.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// An outgoing request or fetch failed.
    #[error(transparent)]
    Fetch(#[from] vgirpc_fetch::FetchError),
    /// A storage backend failed.
    #[error("external storage failed")]
    Storage(#[source] Box<dyn StdError + Send + Sync>),
}

impl HttpError {
    pub(crate) fn outgoing(url: &str, reason: impl Into<String>) -> Self {
        // Pre-signed URLs carry credentials in their query string.
        let url = url.split(['?', '#']).next().unwrap_or(url).to_owned();
        HttpError::Outgoing {
            url,
            reason: reason.into(),
        }
    }
}
