/// Why an outgoing request or a fetch failed. Every URL is shown without
/// its query string, where pre-signed URLs carry their credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The TLS settings cannot be used (a PEM that does not parse, a key
    /// that does not match its certificate).
    #[error("TLS: {0}")]
    Tls(String),
    /// The URL is not one this fetcher may or can request.
    #[error("{url}: {reason}")]
    NotAllowed {
        /// The URL, without its query.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A pre-signed URL whose expiry has passed, refused before any
    /// request.
    #[error("{url}: the pre-signed URL expired {ago} s ago")]
    Expired {
        /// The URL, without its query.
        url: String,
        /// Seconds since it expired.
        ago: u64,
    },
    /// No connection could be made.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL, without its query.
        url: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The server's certificate was not trusted, or the TLS handshake
    /// failed otherwise; not retried.
    #[error("{url}: TLS handshake failed: {reason}")]
    Handshake {
        /// The URL, without its query.
        url: String,
        /// What rustls said.
        reason: String,
    },
    /// The connection failed during the request.
    #[error("request to {url} failed: {reason}")]
    Transport {
        /// The URL, without its query.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// No answer came in time.
    #[error("request to {url} timed out after {after:?}")]
    Timeout {
        /// The URL, without its query.
        url: String,
        /// The time allowed.
        after: std::time::Duration,
    },
    /// The server refused (403, 404, ...) or failed (5xx, after retries).
    #[error("{url}: server answered {status}{detail}")]
    Status {
        /// The URL, without its query.
        url: String,
        /// The status of the last answer.
        status: http::StatusCode,
        /// ` (Code: Message)` from an S3-style error body, or nothing.
        detail: String,
    },
    /// The object is larger than the cap, by its `Content-Length` or by
    /// what arrived.
    #[error("{url}: {what} is above the fetch cap of {cap} bytes")]
    TooLarge {
        /// The URL, without its query.
        url: String,
        /// `Content-Length N`, or what exceeded the cap.
        what: String,
        /// The cap.
        cap: usize,
    },
    /// Fewer bytes arrived than announced, or a range came back wrong.
    #[error("{url}: truncated body: {detail}")]
    Truncated {
        /// The URL, without its query.
        url: String,
        /// How much arrived of how much.
        detail: String,
    },
    /// The body's `Content-Encoding` is unknown or did not decode.
    #[error("{url}: {reason}")]
    Encoding {
        /// The URL, without its query.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// `url` without its query string and fragment.
pub(crate) fn shown(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

impl FetchError {
    /// Whether trying again may succeed: a failure to connect, a lost
    /// connection, a timeout, a 5xx.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            FetchError::Connect { .. } | FetchError::Transport { .. } => true,
            FetchError::Timeout { .. } => true,
            FetchError::Status { status, .. } => status.is_server_error(),
            _ => false,
        }
    }
}
