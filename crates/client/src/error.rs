use std::fmt;
use std::io;
use std::process::ExitStatus;

use vgirpc_wire::WireError;

/// `error_kind` of a sticky session the server no longer knows.
pub const SESSION_LOST: &str = "session_lost";
/// `error_kind` of a server that is shutting down and refuses new work.
pub const SERVER_DRAINING: &str = "server_draining";

/// Everything that can go wrong while calling a vgi-rpc server.
///
/// [`ClientError::Remote`] is the server's own answer (an EXCEPTION batch);
/// the other variants say why no answer could be had or understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server reported an error for the call.
    #[error("{error_type}: {message}")]
    Remote {
        /// Error type name (`ValueError`, `RuntimeError`, ...).
        error_type: String,
        /// The server's message.
        message: String,
        /// Remote traceback or cause chain, possibly empty.
        traceback: String,
        /// Stable machine-readable category (`session_lost`, ...), if any.
        error_kind: Option<String>,
        /// Correlation id the server attached, if any.
        request_id: Option<String>,
    },
    /// The worker process could not be started.
    #[error("cannot start worker `{command}`")]
    Spawn {
        /// The command line that was attempted.
        command: String,
        /// Why the operating system refused.
        #[source]
        source: io::Error,
    },
    /// The client was set up wrongly (an unusable URL, for example).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The server could not be reached.
    #[error("cannot connect to {target}")]
    Connect {
        /// The socket path or URL.
        target: String,
        /// Why the connection failed.
        #[source]
        source: io::Error,
    },
    /// The worker process died or closed its output during a call.
    #[error("{0}")]
    WorkerExited(WorkerExit),
    /// The server did not answer within the configured time.
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// An HTTP server answered with something that is not a vgi-rpc
    /// response (a proxy's error page, a `404` for a path it does not serve).
    #[error("HTTP {status}: {body}")]
    Http {
        /// The status code.
        status: u16,
        /// The start of the body, as text.
        body: String,
    },
    /// A batch the server externalized could not be fetched or read.
    #[error("cannot resolve the external batch at {url}: {message}")]
    External {
        /// Where the batch was to be fetched from.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A request too large to send inline could not go by an upload URL:
    /// none was vended, or the upload failed.
    #[error("cannot upload the request to {url}: {message}")]
    Upload {
        /// Where it was to be uploaded, without the query string (which
        /// carries a pre-signed URL's credentials).
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server closed the connection during a call.
    #[error("the server closed the connection")]
    ConnectionClosed,
    /// Reading from or writing to the connection failed.
    #[error("connection i/o failed")]
    Io(#[source] io::Error),
    /// The server sent bytes that are not a valid Arrow IPC stream.
    #[error("invalid response stream")]
    Wire(#[source] WireError),
    /// The server's answer broke the vgi-rpc protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The stream was already closed or cancelled by this client.
    #[error("ProtocolError: stream has been closed or cancelled")]
    StreamClosed,
    /// The server ended an exchange stream instead of answering an input.
    #[error("the server ended the stream")]
    StreamEnded,
    /// The shared-memory segment could not be created, or what the server
    /// left in it could not be read.
    #[error("shared memory: {0}")]
    SharedMemory(String),
    /// A value could not be converted between Rust and Arrow.
    #[error("cannot convert {context}")]
    Codec {
        /// What was being converted.
        context: String,
        /// The conversion failure.
        #[source]
        source: WireError,
    },
}

impl ClientError {
    /// The `error_kind` of a remote error.
    pub fn error_kind(&self) -> Option<&str> {
        match self {
            ClientError::Remote { error_kind, .. } => error_kind.as_deref(),
            _ => None,
        }
    }

    /// Whether the server lost (or never had) the sticky session the call
    /// relied on; the caller must open a new one.
    pub fn is_session_lost(&self) -> bool {
        self.error_kind() == Some(SESSION_LOST)
    }

    /// Whether the server is draining and refused the call; retrying on
    /// another server is safe.
    pub fn is_server_draining(&self) -> bool {
        self.error_kind() == Some(SERVER_DRAINING)
    }

    /// Whether the connection is unusable after this error, so the client
    /// must be dropped (as opposed to an error the server answered).
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            ClientError::WorkerExited(_)
                | ClientError::Connect { .. }
                | ClientError::Timeout(_)
                | ClientError::ConnectionClosed
                | ClientError::Io(_)
                | ClientError::Wire(_)
        )
    }

    /// Maps an error of the byte stream, keeping a worker's exit report.
    pub(crate) fn from_wire(err: WireError) -> Self {
        match err {
            WireError::Io(e) => Self::from_io(e),
            // A message cut short can only mean the peer went away: the
            // transports in this crate report their own end of file first.
            WireError::Truncated { .. } => ClientError::ConnectionClosed,
            other => ClientError::Wire(other),
        }
    }

    /// Maps an i/o error, unwrapping a [`WorkerExit`] carried inside it.
    pub(crate) fn from_io(err: io::Error) -> Self {
        if err
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<WorkerExit>().is_some())
        {
            if let Some(inner) = err.into_inner()
                && let Ok(exit) = inner.downcast::<WorkerExit>()
            {
                return ClientError::WorkerExited(*exit);
            }
            return ClientError::ConnectionClosed;
        }
        match err.kind() {
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted => ClientError::ConnectionClosed,
            _ => ClientError::Io(err),
        }
    }
}

/// Why a worker process stopped answering: its exit status (if it exited
/// in time to be observed) and the last lines it wrote to standard error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerExit {
    /// The worker's command line.
    pub command: String,
    /// Exit status, or `None` when the worker closed its output but was
    /// still running when the client gave up waiting.
    pub status: Option<ExitStatus>,
    /// The last lines of the worker's standard error (empty when stderr
    /// was discarded).
    pub stderr_tail: Vec<String>,
}

impl fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "worker `{}` exited ({status})", self.command)?,
            None => write!(f, "worker `{}` closed its output", self.command)?,
        }
        if !self.stderr_tail.is_empty() {
            write!(f, "; last stderr: {}", self.stderr_tail.join(" | "))?;
        }
        Ok(())
    }
}

impl std::error::Error for WorkerExit {}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(kind: Option<&str>) -> ClientError {
        ClientError::Remote {
            error_type: "RuntimeError".into(),
            message: "gone".into(),
            traceback: String::new(),
            error_kind: kind.map(str::to_owned),
            request_id: None,
        }
    }

    #[test]
    fn kinds_are_recognised() {
        assert!(remote(Some(SESSION_LOST)).is_session_lost());
        assert!(!remote(Some(SESSION_LOST)).is_server_draining());
        assert!(remote(Some(SERVER_DRAINING)).is_server_draining());
        assert!(!remote(None).is_session_lost());
        assert!(!ClientError::ConnectionClosed.is_session_lost());
        assert_eq!(remote(None).to_string(), "RuntimeError: gone");
    }

    #[test]
    fn a_worker_exit_survives_the_trip_through_io_errors() {
        let exit = WorkerExit {
            command: "w".into(),
            status: None,
            stderr_tail: vec!["boom".into()],
        };
        let io = io::Error::new(io::ErrorKind::UnexpectedEof, exit.clone());
        match ClientError::from_wire(WireError::Io(io)) {
            ClientError::WorkerExited(back) => assert_eq!(back, exit),
            other => panic!("expected WorkerExited, got {other:?}"),
        }
        let plain = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(matches!(
            ClientError::from_io(plain),
            ClientError::ConnectionClosed
        ));
        assert!(
            ClientError::from_wire(WireError::Truncated { context: "x" }).is_connection_error()
        );
    }
}
