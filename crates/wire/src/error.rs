use arrow_schema::{ArrowError, DataType};

/// Everything that can go wrong while encoding or decoding vgi-rpc wire data.
///
/// Errors caused by bytes a peer sent (malformed IPC, wrong version, bad
/// metadata) are kept apart from conversion errors between Arrow values and
/// Rust types, so a server can map each to the right error batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Reading from or writing to the underlying byte stream failed.
    #[error("i/o error on the ipc byte stream")]
    Io(#[from] std::io::Error),
    /// The byte stream ended before the IPC stream was complete.
    #[error("ipc stream truncated: {context}")]
    Truncated {
        /// What was being read when the bytes ran out.
        context: &'static str,
    },
    /// The byte stream is not a valid Arrow IPC stream.
    #[error("malformed ipc stream: {0}")]
    Malformed(String),
    /// A message or body exceeded the configured size limit.
    #[error("ipc message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Declared size of the offending message.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Arrow rejected the data while decoding or encoding; its message
    /// is the detail a peer needs to fix what it sent.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// A value did not match the Arrow type it was declared with.
    #[error("type mismatch: expected {expected}, found {found}")]
    TypeMismatch {
        /// The Arrow or Rust type that was expected.
        expected: String,
        /// What was found instead.
        found: String,
    },
    /// A non-nullable value was null.
    #[error("unexpected null for {0}")]
    UnexpectedNull(String),
    /// A value was out of range for its target type.
    #[error("value out of range: {0}")]
    OutOfRange(String),
    /// An enum name did not match any variant.
    #[error("unknown variant {:?} for enum {enum_name}", crate::log::quoted(.name))]
    UnknownVariant {
        /// Name of the Rust enum.
        enum_name: &'static str,
        /// The name received on the wire.
        name: String,
    },
    /// A struct or request was missing a named field.
    #[error("missing field {0:?}")]
    MissingField(String),
    /// An Arrow type that the vgi-rpc type mapping does not cover.
    #[error("unsupported arrow type {0}")]
    UnsupportedType(DataType),
    /// A request violated the vgi-rpc protocol (missing method, bad row count).
    #[error("{0}")]
    Protocol(String),
    /// The request carried a missing or unsupported `vgi_rpc.request_version`.
    #[error("{0}")]
    Version(String),
}

/// Result alias used throughout the wire crate.
pub type Result<T, E = WireError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_s_long_variant_name_is_clipped_in_the_message() {
        let err = WireError::UnknownVariant {
            enum_name: "Status",
            name: "x".repeat(100_000),
        };
        let message = err.to_string();
        assert!(message.len() < 400, "{} bytes", message.len());
        assert!(message.contains("(100000 bytes)"), "{message}");
        let short = WireError::UnknownVariant {
            enum_name: "Status",
            name: "PAUSED".into(),
        };
        assert_eq!(
            short.to_string(),
            "unknown variant \"PAUSED\" for enum Status"
        );
    }
}
