use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value as Json;
use vgirpc_wire::log::{Level, LogRecord};

use crate::auth::{self, AuthContext};
use crate::error::RpcError;
use crate::session::{self, SessionHost, SessionRef, SessionState};

/// The transport binding a server is serving on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// Standard input/output of a worker process (also the shared-memory side channel).
    Pipe,
    /// A Unix domain socket.
    Unix,
    /// Stateless HTTP.
    Http,
}

impl TransportKind {
    /// Lowercase name as used in logs (`pipe`, `unix`, `http`).
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Pipe => "pipe",
            TransportKind::Unix => "unix",
            TransportKind::Http => "http",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `bytes` (at most 16) random bytes as lowercase hex. Every call makes
/// one (a request id), so no formatting machinery per byte.
pub(crate) fn random_hex(bytes: usize) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut raw = [0u8; 16];
    let raw = &mut raw[..bytes];
    rand::fill(&mut *raw);
    let mut text = String::with_capacity(2 * bytes);
    for byte in raw.iter() {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

static SERVER_ID: OnceLock<String> = OnceLock::new();

/// This process's server identity: 12 random hex characters unless chosen
/// with [`set_server_id`], fixed for the lifetime of the process so every
/// log line of one worker agrees.
pub fn server_id() -> &'static str {
    SERVER_ID.get_or_init(|| random_hex(6))
}

/// Chooses this process's server identity, for example the platform's
/// machine id (`vgirpc_http::fly::auto_server_id`), so tokens and logs
/// name the machine. It must happen before anything reads the id (building
/// a [`Server`](crate::Server) does); afterwards the id in use is returned
/// as the error.
pub fn set_server_id(id: impl Into<String>) -> Result<(), &'static str> {
    SERVER_ID.set(id.into()).map_err(|_| server_id())
}

/// A fresh 16-hex-character request id.
pub fn new_request_id() -> String {
    random_hex(8)
}

/// What a transport knows about the sender of a request: the transport,
/// the caller's identity and, over HTTP, sticky-session support.
#[derive(Clone)]
pub struct Peer {
    /// The transport the request arrived on.
    pub transport: TransportKind,
    /// Who sent it.
    pub auth: Arc<AuthContext>,
    /// The transport's sticky-session support for this request, if any.
    pub session: Option<Arc<dyn SessionHost>>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("transport", &self.transport)
            .field("auth", &self.auth)
            .field("sticky", &self.session.is_some())
            .finish()
    }
}

impl Peer {
    /// An anonymous caller on `transport`, without sessions.
    pub fn anonymous(transport: TransportKind) -> Self {
        Self {
            transport,
            auth: auth::anonymous(),
            session: None,
        }
    }

    /// The same peer, identified as `auth`.
    pub fn with_auth(mut self, auth: impl Into<Arc<AuthContext>>) -> Self {
        self.auth = auth.into();
        self
    }

    /// The same peer, with sticky-session support.
    pub fn with_session(mut self, host: Option<Arc<dyn SessionHost>>) -> Self {
        self.session = host;
        self
    }
}

/// What a method knows about the call it is serving, and its channel for
/// client-directed log messages.
pub struct CallContext {
    request_id: String,
    method: String,
    transport: TransportKind,
    logs: Mutex<Vec<LogRecord>>,
    session: Option<Arc<dyn SessionHost>>,
    auth: Arc<AuthContext>,
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("request_id", &self.request_id)
            .field("method", &self.method)
            .field("transport", &self.transport)
            .field("sticky", &self.session.is_some())
            .field("principal", &self.auth.principal)
            .finish_non_exhaustive()
    }
}

impl CallContext {
    /// A context for one call of `method`.
    pub fn new(
        request_id: impl Into<String>,
        method: impl Into<String>,
        transport: TransportKind,
    ) -> Self {
        Self {
            request_id: request_id.into(),
            method: method.into(),
            transport,
            logs: Mutex::new(Vec::new()),
            session: None,
            auth: auth::anonymous(),
        }
    }

    /// A context for one call of `method` from `peer`.
    pub(crate) fn for_peer(
        request_id: impl Into<String>,
        method: impl Into<String>,
        peer: &Peer,
    ) -> Self {
        Self::new(request_id, method, peer.transport)
            .with_session_host(peer.session.clone())
            .with_auth(peer.auth.clone())
    }

    /// Names the caller (anonymous unless set).
    pub fn with_auth(mut self, auth: Arc<AuthContext>) -> Self {
        self.auth = auth;
        self
    }

    /// Who made this call, as the transport established it: the HTTP
    /// authenticator's result, a Unix-socket peer's credentials, or
    /// anonymous.
    pub fn auth(&self) -> &AuthContext {
        &self.auth
    }

    /// Installs a transport's sticky-session support for this call.
    pub fn with_session_host(mut self, host: Option<Arc<dyn SessionHost>>) -> Self {
        self.session = host;
        self
    }

    /// Correlation id of this request.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Identity of this server process.
    pub fn server_id(&self) -> &'static str {
        server_id()
    }

    /// Name of the method being called.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The transport the call arrived on.
    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// Sends a log message to the client.
    ///
    /// `Level::Exception` is reserved for errors; return an
    /// [`RpcError`](crate::RpcError) instead.
    pub fn log(&self, level: Level, message: impl Into<String>) {
        self.push(LogRecord::new(level, message));
    }

    /// Sends a log message with structured extras to the client.
    pub fn log_with<K, V>(
        &self,
        level: Level,
        message: impl Into<String>,
        extra: impl IntoIterator<Item = (K, V)>,
    ) where
        K: Into<String>,
        V: Into<Json>,
    {
        let mut record = LogRecord::new(level, message);
        for (k, v) in extra {
            record.extra.insert(k.into(), v.into());
        }
        self.push(record);
    }

    /// [`Level::Trace`] shorthand for [`CallContext::log`].
    pub fn trace(&self, message: impl Into<String>) {
        self.log(Level::Trace, message);
    }

    /// [`Level::Debug`] shorthand for [`CallContext::log`].
    pub fn debug(&self, message: impl Into<String>) {
        self.log(Level::Debug, message);
    }

    /// [`Level::Info`] shorthand for [`CallContext::log`].
    pub fn info(&self, message: impl Into<String>) {
        self.log(Level::Info, message);
    }

    /// [`Level::Warn`] shorthand for [`CallContext::log`].
    pub fn warn(&self, message: impl Into<String>) {
        self.log(Level::Warn, message);
    }

    /// [`Level::Error`] shorthand for [`CallContext::log`].
    pub fn error(&self, message: impl Into<String>) {
        self.log(Level::Error, message);
    }

    /// Opens a sticky session holding `state`, with the server's default
    /// TTL: later calls from the same client (presenting the session token
    /// the transport hands it) see `state` through [`CallContext::session`].
    ///
    /// `state` lives in this worker's memory until the session is closed,
    /// expires or the server drains, and its
    /// [`close`](SessionState::close) hook then runs exactly once. Calls on
    /// one session run one at a time.
    ///
    /// Fails with `RuntimeError` outside sticky HTTP, when the client did
    /// not opt in, or when a session is already bound to this call, and
    /// with `ServerDrainingError` while the server drains.
    pub fn open_session(&self, state: impl SessionState) -> Result<(), RpcError> {
        self.open(Box::new(state), None)
    }

    /// [`CallContext::open_session`] with a TTL of its own.
    pub fn open_session_with_ttl(
        &self,
        state: impl SessionState,
        ttl: Duration,
    ) -> Result<(), RpcError> {
        self.open(Box::new(state), Some(ttl))
    }

    fn open(&self, state: Box<dyn SessionState>, ttl: Option<Duration>) -> Result<(), RpcError> {
        match &self.session {
            Some(host) => host.open(state, ttl),
            None => Err(session::unavailable()),
        }
    }

    /// The state of the session bound to this call, if there is one and it
    /// is a `T`. It stays locked while the returned reference lives.
    pub fn session<T: SessionState>(&self) -> Option<SessionRef<'_, T>> {
        SessionRef::new(self.session.as_ref()?.state()?)
    }

    /// The id of the session this call opened, resumed or closed
    /// (24 hex characters), for logs.
    pub fn session_id(&self) -> Option<String> {
        self.session.as_ref()?.session_id()
    }

    /// Ends the session bound to this call: its close hook runs, and the
    /// client is told to forget the token. Calling it again does nothing.
    ///
    /// Fails with `RuntimeError` outside sticky HTTP, or while a
    /// [`SessionRef`] from this call is still alive.
    pub fn close_session(&self) -> Result<(), RpcError> {
        match &self.session {
            Some(host) => host.close(),
            None => Err(session::unavailable()),
        }
    }

    fn push(&self, record: LogRecord) {
        self.logs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(record);
    }

    /// Takes the log messages queued so far, in order.
    pub(crate) fn take_logs(&self) -> Vec<LogRecord> {
        std::mem::take(
            &mut *self
                .logs
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_id_is_stable_and_twelve_hex_chars() {
        let id = server_id();
        assert_eq!(id.len(), 12);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(id, server_id());
        assert_eq!(new_request_id().len(), 16);
        // Too late to choose one: the id in use is kept.
        assert_eq!(set_server_id("machine-1"), Err(id));
        assert_eq!(server_id(), id);
    }

    #[test]
    fn logs_keep_order_and_extras() {
        let ctx = CallContext::new("r", "m", TransportKind::Pipe);
        ctx.debug("one");
        ctx.log_with(Level::Info, "two", [("source", "test")]);
        let logs = ctx.take_logs();
        assert_eq!(logs.len(), 2);
        assert_eq!(logs[1].extra["source"], "test");
        assert!(ctx.take_logs().is_empty());
    }

    #[test]
    fn sessions_need_a_host() {
        struct Counter;
        impl SessionState for Counter {}
        let ctx = CallContext::new("r", "m", TransportKind::Pipe);
        let err = ctx.open_session(Counter).unwrap_err();
        assert_eq!(err.error_type(), "RuntimeError");
        assert_eq!(
            err.message(),
            "sticky sessions not available on this transport"
        );
        assert_eq!(ctx.close_session().unwrap_err().message(), err.message());
        assert!(ctx.session::<Counter>().is_none());
        assert!(ctx.session_id().is_none());
    }
}
