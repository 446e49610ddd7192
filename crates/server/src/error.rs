use std::fmt;

use vgirpc_wire::WireError;
use vgirpc_wire::log::ErrorInfo;

/// An error a service method reports to its caller.
///
/// It travels as an EXCEPTION batch: clients see the error type name, the
/// message and the chain of causes. Any [`std::error::Error`] converts into
/// it with `?`, named after its Rust type; the constructors name the
/// categories clients of other vgi-rpc ports match on.
pub struct RpcError {
    info: ErrorInfo,
}

impl RpcError {
    /// An error of type `error_type` (the name clients see) with `message`.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            info: ErrorInfo::new(error_type, message),
        }
    }

    /// An invalid argument value (`ValueError`).
    pub fn value_error(message: impl Into<String>) -> Self {
        Self::new("ValueError", message)
    }

    /// A failure while running (`RuntimeError`).
    pub fn runtime_error(message: impl Into<String>) -> Self {
        Self::new("RuntimeError", message)
    }

    /// A value of the wrong type or shape (`TypeError`).
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new("TypeError", message)
    }

    /// A sticky session token that cannot be honoured (`SessionLostError`,
    /// kind `session_lost`): unreadable, another principal's or another
    /// worker's, or naming a session that is gone.
    pub fn session_lost(message: impl Into<String>) -> Self {
        Self::new("SessionLostError", message).with_kind("session_lost")
    }

    /// A new sticky session refused because the server is draining
    /// (`ServerDrainingError`, kind `server_draining`).
    pub fn server_draining(message: impl Into<String>) -> Self {
        Self::new("ServerDrainingError", message).with_kind("server_draining")
    }

    /// A method or stream step that panicked (`PanicError`, kind
    /// `panic`), with the panic's message when it carried one. The panic
    /// is caught where user code is called, so the connection answers
    /// with this error and serves on.
    pub fn panicked(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Self::new("PanicError", format!("the method panicked: {message}")).with_kind("panic")
    }

    /// Tags the error with a stable machine-readable kind (`vgi_rpc.error_kind`).
    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.info.error_kind = Some(kind.into());
        self
    }

    /// Replaces the traceback text sent with the error.
    pub fn with_traceback(mut self, traceback: impl Into<String>) -> Self {
        self.info.traceback = traceback.into();
        self
    }

    /// Name of the error type.
    pub fn error_type(&self) -> &str {
        &self.info.error_type
    }

    /// The message, without the type name.
    pub fn message(&self) -> &str {
        &self.info.message
    }

    /// The stable error kind, if any.
    pub fn error_kind(&self) -> Option<&str> {
        self.info.error_kind.as_deref()
    }

    /// The wire representation.
    pub fn info(&self) -> &ErrorInfo {
        &self.info
    }
}

/// Renders an error and its sources, one per line, as the traceback text.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str("\ncaused by: ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.push('\n');
    text
}

fn short_type_name<E>() -> String {
    let full = std::any::type_name::<E>();
    let without_generics = full.split('<').next().unwrap_or(full);
    without_generics
        .rsplit("::")
        .next()
        .unwrap_or(without_generics)
        .to_owned()
}

/// The name clients see for an error of type `E`: I/O errors by their
/// kind, as the reference's `OSError` family names them; other errors by
/// their Rust type, with the module for the many types called `Error`.
fn error_type_name<E: std::error::Error + 'static>(err: &E) -> String {
    if let Some(io) = (err as &dyn std::any::Any).downcast_ref::<std::io::Error>() {
        return io_error_type(io.kind()).to_owned();
    }
    short_type_name::<E>()
}

fn io_error_type(kind: std::io::ErrorKind) -> &'static str {
    use std::io::ErrorKind;
    match kind {
        ErrorKind::NotFound => "FileNotFoundError",
        ErrorKind::PermissionDenied => "PermissionError",
        ErrorKind::AlreadyExists => "FileExistsError",
        ErrorKind::TimedOut => "TimeoutError",
        ErrorKind::ConnectionRefused => "ConnectionRefusedError",
        ErrorKind::ConnectionReset => "ConnectionResetError",
        ErrorKind::ConnectionAborted => "ConnectionAbortedError",
        ErrorKind::BrokenPipe => "BrokenPipeError",
        ErrorKind::Interrupted => "InterruptedError",
        ErrorKind::IsADirectory => "IsADirectoryError",
        ErrorKind::NotADirectory => "NotADirectoryError",
        _ => "OSError",
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for RpcError {
    fn from(err: E) -> Self {
        Self::new(error_type_name(&err), err.to_string()).with_traceback(error_chain(&err))
    }
}

#[cfg(feature = "anyhow")]
impl RpcError {
    /// An `anyhow::Error` as a `RuntimeError` (the type of the error at
    /// the root of its chain, when that is an I/O error, names it
    /// instead), with the whole chain as the message's traceback.
    ///
    /// `anyhow::Error` is not a [`std::error::Error`], so `?` cannot
    /// convert it; methods returning `anyhow::Result<T>` are converted by
    /// `#[service]` through this.
    pub fn from_anyhow(err: anyhow::Error) -> Self {
        let error_type = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io_error_type(io.kind()),
            None => "RuntimeError",
        };
        let root: &(dyn std::error::Error + 'static) = err.as_ref();
        Self::new(error_type, format!("{err:#}")).with_traceback(error_chain(root))
    }
}

impl fmt::Debug for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcError")
            .field("error_type", &self.info.error_type)
            .field("message", &self.info.message)
            .field("error_kind", &self.info.error_kind)
            .finish()
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.info, f)
    }
}

/// Runs user code (a method, a stream step), turning a panic into the
/// error the client receives, so one bad call never ends the connection
/// or the worker.
pub(crate) fn catch_panic<T>(
    user_code: impl FnOnce() -> Result<T, RpcError>,
) -> Result<T, RpcError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(user_code))
        .unwrap_or_else(|payload| Err(RpcError::panicked(payload.as_ref())))
}

/// Why serving a connection stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The byte stream could not be read or written.
    #[error("connection i/o failed")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that are not a valid vgi-rpc stream; the
    /// connection cannot be resynchronised.
    #[error("peer sent an invalid stream")]
    Wire(#[from] WireError),
    /// The service's `on_serve_start` hook refused to start.
    #[error("on_serve_start hook failed: {0}")]
    StartHook(String),
}

impl ServeError {
    /// Whether the peer went away (closed or reset the connection) rather
    /// than sending something invalid: the normal end of a connection.
    pub fn is_disconnect(&self) -> bool {
        match self {
            ServeError::Io(e) | ServeError::Wire(WireError::Io(e)) => is_disconnect(e),
            _ => false,
        }
    }
}

pub(crate) fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn std_errors_convert_with_their_type_name_and_chain() {
        let err: RpcError = Outer(std::io::Error::other("inner")).into();
        assert_eq!(err.error_type(), "Outer");
        assert_eq!(err.message(), "outer");
        assert!(err.info().traceback.contains("caused by: inner"));
    }

    #[test]
    fn io_errors_are_named_by_their_kind() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err: RpcError = missing.into();
        assert_eq!(err.error_type(), "FileNotFoundError");
        assert_eq!(err.message(), "no such file");
        let err: RpcError = std::io::Error::other("disk on fire").into();
        assert_eq!(err.error_type(), "OSError");
    }

    #[cfg(feature = "anyhow")]
    #[test]
    fn anyhow_errors_keep_their_context_chain() {
        use anyhow::Context as _;
        let failed: anyhow::Result<()> =
            Err(Outer(std::io::Error::other("inner"))).context("loading the catalog");
        let err = RpcError::from_anyhow(failed.unwrap_err());
        assert_eq!(err.error_type(), "RuntimeError");
        assert_eq!(err.message(), "loading the catalog: outer: inner");
        let gone = anyhow::Error::new(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "denied",
        ));
        assert_eq!(RpcError::from_anyhow(gone).error_type(), "PermissionError");
    }

    #[test]
    fn kinds_are_carried() {
        let err = RpcError::runtime_error("gone").with_kind("session_lost");
        assert_eq!(err.error_kind(), Some("session_lost"));
        assert_eq!(err.to_string(), "RuntimeError: gone");
        let lost = RpcError::session_lost("gone");
        assert_eq!(
            (lost.error_type(), lost.error_kind()),
            ("SessionLostError", Some("session_lost"))
        );
        let draining = RpcError::server_draining("later");
        assert_eq!(
            (draining.error_type(), draining.error_kind()),
            ("ServerDrainingError", Some("server_draining"))
        );
    }
}
