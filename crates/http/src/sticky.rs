//! HTTP sticky sessions (the reference's `docs/sticky-sessions-spec.md`):
//! a method binds a live object to its caller with
//! [`CallContext::open_session`](vgirpc::CallContext::open_session), and
//! later requests presenting the `VGI-Session` token the response carried
//! find the very same object, in this worker's memory.
//!
//! The pieces: [`StickyConfig`] switches the feature on; the sticky layer
//! ([`crate::layer::sticky`]) resolves tokens, holds the session for the
//! request and writes the response headers; [`StickyCall`] is the
//! [`SessionHost`] it installs for the method; [`DrainHandle`] is the
//! operator's switch for graceful shutdown.

use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use vgirpc::transport::{SessionAction, SessionHost, StateGuard};
use vgirpc::{RpcError, SessionState};
use vgirpc_session::{Lease, Reaper, Registry, SessionError, SessionId};
use vgirpc_token::{Identity, SessionToken, TokenKey, unix_now};

use crate::error::HttpError;

/// Request and response header carrying the session token.
pub(crate) const SESSION: &str = "vgi-session";
/// Request header by which a client opts in to sessions being opened.
pub(crate) const SESSION_ACCEPT: &str = "vgi-session-accept";
/// Response header telling the client to forget its token.
pub(crate) const SESSION_CLOSE: &str = "vgi-session-close";
/// Prefix of the headers the client must replay for the session's lifetime.
const ECHO_PREFIX: &str = "vgi-echo-";
/// Path segment of the session teardown endpoint.
pub(crate) const SESSION_ENDPOINT: &str = "__session__";

/// What clients are told when a presented token leads nowhere; one text
/// for every cause, so a stale or stolen token reveals nothing.
const LOST: &str = "session not found, expired, or principal mismatch";

/// Locks a mutex, taking over the data if a panicking method poisoned it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sticky-session settings (`enable_sticky`, `sticky_default_ttl` and
/// `sticky_echo_headers` in the reference).
#[derive(Debug, Clone)]
pub struct StickyConfig {
    pub(crate) default_ttl: Duration,
    pub(crate) echo_headers: Vec<(String, String)>,
}

impl Default for StickyConfig {
    fn default() -> Self {
        Self {
            default_ttl: vgirpc_session::DEFAULT_TTL,
            echo_headers: Vec::new(),
        }
    }
}

impl StickyConfig {
    /// Sessions live 300 s unless opened with a TTL; no echo headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The TTL of sessions opened without one (advertised as
    /// `VGI-Sticky-Default-TTL`).
    pub fn with_default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// A header the client must send on every later request of a session,
    /// for routing it back here: the session-opening response carries
    /// `VGI-Echo-<name>: <value>` and the client replays `<name>: <value>`
    /// (the `fly` feature's helpers give Fly.io's `fly-force-instance-id`).
    pub fn with_echo_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.echo_headers.push((name.into(), value.into()));
        self
    }

    /// [`StickyConfig::with_echo_header`] for each pair.
    pub fn with_echo_headers<N, V>(mut self, headers: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: Into<String>,
        V: Into<String>,
    {
        for (name, value) in headers {
            self = self.with_echo_header(name, value);
        }
        self
    }

    /// The capability headers advertising the feature.
    /// `vgi-echo-<name>` for each echo header: what responses carry.
    pub(crate) fn echo_header_names(&self) -> impl Iterator<Item = String> + '_ {
        self.echo_headers
            .iter()
            .map(|(name, _)| format!("{ECHO_PREFIX}{}", name.to_ascii_lowercase()))
    }

    pub(crate) fn capability_headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("vgi-sticky-enabled", "true".to_owned()),
            (
                "vgi-sticky-default-ttl",
                self.default_ttl.as_secs().to_string(),
            ),
        ];
        if !self.echo_headers.is_empty() {
            let names: Vec<&str> = self.echo_headers.iter().map(|(n, _)| n.as_str()).collect();
            headers.push(("vgi-sticky-echo-headers", names.join(", ")));
        }
        headers
    }
}

/// The operator's handle on a sticky server's graceful drain.
///
/// While draining, [`open_session`](vgirpc::CallContext::open_session)
/// fails with `ServerDrainingError` and existing sessions go on serving;
/// [`DrainHandle::shutdown`] then closes whatever is left.
/// [`HttpServer::serve_until_signalled`](crate::HttpServer::serve_until_signalled)
/// wires them to SIGTERM and SIGINT; pre-fork style deployments wire them
/// into the worker's exit hook.
#[derive(Debug, Clone)]
pub struct DrainHandle {
    registry: Registry,
}

impl DrainHandle {
    /// Starts draining: new sessions are refused from now on.
    pub fn drain(&self) {
        self.registry.set_draining(true);
    }

    /// Whether the server is draining.
    pub fn is_draining(&self) -> bool {
        self.registry.is_draining()
    }

    /// Stops draining, so sessions open again (for test fixtures that
    /// drain one server repeatedly; production servers only ever drain).
    pub fn cancel_drain(&self) {
        self.registry.set_draining(false);
    }

    /// Closes every live session, running each state's close hook, and
    /// returns how many there were. Sessions in the middle of a call close
    /// when the call finishes.
    pub fn shutdown(&self) -> usize {
        self.registry.shutdown()
    }
}

/// A sticky server's sessions and the means to mint their tokens.
pub(crate) struct Sticky {
    registry: Registry,
    key: TokenKey,
    server_id: String,
    /// `VGI-Echo-*` headers for session-opening responses.
    echo: HeaderMap,
    _reaper: Reaper,
}

impl std::fmt::Debug for Sticky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sticky")
            .field("registry", &self.registry)
            .field("server_id", &self.server_id)
            .finish_non_exhaustive()
    }
}

impl Sticky {
    pub(crate) fn new(config: &StickyConfig, key: TokenKey) -> Result<Self, HttpError> {
        let server_id = vgirpc::server_id().to_owned();
        if server_id.len() > usize::from(u8::MAX) {
            return Err(HttpError::Config(format!(
                "server id {server_id:?} is longer than the 255 bytes a session token can carry"
            )));
        }
        let mut echo = HeaderMap::new();
        for (name, value) in &config.echo_headers {
            let header = HeaderName::from_bytes(format!("{ECHO_PREFIX}{name}").as_bytes());
            let (Ok(header), Ok(header_value)) = (header, HeaderValue::from_str(value)) else {
                return Err(HttpError::Config(format!(
                    "invalid sticky echo header {name:?}: {value:?}"
                )));
            };
            echo.append(header, header_value);
        }
        let registry = Registry::new(config.default_ttl);
        let reaper = registry
            .spawn_reaper(vgirpc_session::DEFAULT_TICK)
            .map_err(HttpError::Io)?;
        Ok(Self {
            registry,
            key,
            server_id,
            echo,
            _reaper: reaper,
        })
    }

    pub(crate) fn drain_handle(&self) -> DrainHandle {
        DrainHandle {
            registry: self.registry.clone(),
        }
    }

    /// The registry, whose size the metrics read at each scrape.
    #[cfg(feature = "prometheus")]
    pub(crate) fn sessions(&self) -> Registry {
        self.registry.clone()
    }

    /// The `VGI-Echo-*` headers of a session-opening response.
    pub(crate) fn echo_headers(&self) -> &HeaderMap {
        &self.echo
    }

    /// Opens `token` for `identity` and takes its session, waiting while
    /// another request holds it. Blocks; run it off the reactor.
    ///
    /// Every failure is `SessionLostError`: the precise reason goes to the
    /// log only.
    pub(crate) fn resume(&self, token: &str, identity: &Identity) -> Result<Lease, RpcError> {
        let opened = SessionToken::open(token, &self.key, identity, unix_now()).map_err(|err| {
            tracing::info!(%err, "rejected a session token");
            RpcError::session_lost(match err {
                vgirpc_token::TokenError::Malformed
                | vgirpc_token::TokenError::UnsupportedVersion { .. } => "malformed session token",
                vgirpc_token::TokenError::Expired { .. } => LOST,
                _ => "session token verification failed",
            })
        })?;
        if opened.server_id != self.server_id {
            tracing::info!(
                token_server = %opened.server_id,
                "session token belongs to another worker"
            );
            return Err(RpcError::session_lost(
                "session token was issued by a different worker (server_id mismatch)",
            ));
        }
        let id = SessionId::from_bytes(opened.session_id);
        self.registry
            .resume(id, &owner(identity))
            .map_err(|err: SessionError| {
                tracing::info!(%err, session_id = %id, "session token names no live session");
                RpcError::session_lost(LOST)
            })
    }

    /// Seals the token naming the session `lease` holds, for `identity`.
    fn mint(&self, lease: &Lease, identity: &Identity) -> String {
        let now = unix_now();
        // Rounded up, so the token never expires before the session does.
        let ttl_secs = lease.ttl().as_secs() + u64::from(lease.ttl().subsec_nanos() > 0);
        SessionToken {
            created_at: now,
            server_id: self.server_id.clone(),
            session_id: *lease.id().as_bytes(),
            expires_at: now.saturating_add(ttl_secs),
        }
        .seal(&self.key, identity)
        .expect("the server id length was checked when the server was built")
    }
}

/// The registry key of a caller: sessions are partitioned by principal, a
/// second line of defence behind the token's identity binding.
fn owner(identity: &Identity) -> String {
    match identity {
        Identity::Anonymous => "\0anonymous".to_owned(),
        Identity::Authenticated { domain, principal } => format!("{domain}\0{principal}"),
    }
}

/// What a request did with sessions, for the response headers.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// A token to hand out (`VGI-Session`), when the request opened a session.
    pub(crate) minted: Option<String>,
    /// Whether to tell the client to forget its token (`VGI-Session-Close`).
    pub(crate) closed: bool,
}

/// Everything about a request's session except the state itself.
struct Progress {
    id: Option<SessionId>,
    action: SessionAction,
    minted: Option<String>,
    closed: bool,
}

/// One request's [`SessionHost`]: the session it resumed or opened, held
/// exclusively until the response is written.
pub(crate) struct StickyCall {
    sticky: Arc<Sticky>,
    identity: Identity,
    /// The client sent `VGI-Session-Accept: true`.
    accept_opens: bool,
    /// The bound session; its own lock, so that reading the session id
    /// never waits for a method holding the state.
    lease: Mutex<Option<Lease>>,
    progress: Mutex<Progress>,
}

impl std::fmt::Debug for StickyCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The minted token stays out of logs: it is the client's key.
        let progress = lock(&self.progress);
        f.debug_struct("StickyCall")
            .field("accept_opens", &self.accept_opens)
            .field("session_id", &progress.id)
            .field("action", &progress.action)
            .field("closed", &progress.closed)
            .finish_non_exhaustive()
    }
}

impl StickyCall {
    /// The host of a request that resumed `lease`, or of one without a
    /// session token.
    pub(crate) fn new(
        sticky: Arc<Sticky>,
        identity: Identity,
        accept_opens: bool,
        lease: Option<Lease>,
    ) -> Self {
        let progress = Progress {
            id: lease.as_ref().map(Lease::id),
            action: if lease.is_some() {
                SessionAction::Resume
            } else {
                SessionAction::None
            },
            minted: None,
            closed: false,
        };
        Self {
            sticky,
            identity,
            accept_opens,
            lease: Mutex::new(lease),
            progress: Mutex::new(progress),
        }
    }

    /// Gives the session back to the registry (the next queued request on
    /// it may proceed) and says what to tell the client.
    pub(crate) fn finish(&self) -> Outcome {
        drop(lock(&self.lease).take());
        let progress = lock(&self.progress);
        Outcome {
            minted: progress.minted.clone(),
            closed: progress.closed,
        }
    }
}

/// A method's view of the bound state, through the lease lock.
struct LeaseGuard<'a>(MutexGuard<'a, Option<Lease>>);

impl std::ops::Deref for LeaseGuard<'_> {
    type Target = dyn SessionState;

    fn deref(&self) -> &Self::Target {
        self.0
            .as_ref()
            .expect("checked by StickyCall::state")
            .state()
    }
}

impl std::ops::DerefMut for LeaseGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0
            .as_mut()
            .expect("checked by StickyCall::state")
            .state_mut()
    }
}

impl SessionHost for StickyCall {
    fn open(&self, state: Box<dyn SessionState>, ttl: Option<Duration>) -> Result<(), RpcError> {
        if !self.accept_opens {
            return Err(RpcError::runtime_error(
                "client did not opt in to sticky sessions (missing VGI-Session-Accept: true \
                 header: open the call inside a session scope such as \
                 HttpConnection.with_session_token())",
            ));
        }
        let mut slot = match self.lease.try_lock() {
            Ok(slot) => slot,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // The method is holding the bound state: a session is active.
            Err(TryLockError::WouldBlock) => return Err(already_active()),
        };
        if slot.is_some() {
            return Err(already_active());
        }
        let owner = owner(&self.identity);
        let lease = self
            .sticky
            .registry
            .open(state, ttl, &owner)
            .map_err(|err| match err {
                SessionError::Draining => {
                    RpcError::server_draining("server is draining; new sessions are rejected")
                }
                other => RpcError::runtime_error(format!("cannot open a session: {other}")),
            })?;
        let token = self.sticky.mint(&lease, &self.identity);
        let mut progress = lock(&self.progress);
        progress.id = Some(lease.id());
        progress.action = SessionAction::Open;
        progress.minted = Some(token);
        // Reopened after a close in the same call: the client must keep
        // the new token, not drop it along with the old one.
        progress.closed = false;
        *slot = Some(lease);
        Ok(())
    }

    fn close(&self) -> Result<(), RpcError> {
        let lease = match self.lease.try_lock() {
            Ok(mut slot) => slot.take(),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().take(),
            Err(TryLockError::WouldBlock) => {
                return Err(RpcError::runtime_error(
                    "close_session() called while the session state is borrowed; drop the \
                     SessionRef first",
                ));
            }
        };
        if let Some(lease) = lease {
            lease.close();
        }
        // Like the reference: closing tells the client to forget its token
        // even when nothing was bound, which makes close idempotent.
        let mut progress = lock(&self.progress);
        progress.action = SessionAction::Close;
        progress.closed = true;
        Ok(())
    }

    fn state(&self) -> Option<StateGuard<'_>> {
        let slot = lock(&self.lease);
        slot.is_some()
            .then(|| Box::new(LeaseGuard(slot)) as StateGuard<'_>)
    }

    fn session_id(&self) -> Option<String> {
        lock(&self.progress).id.map(|id| id.to_hex())
    }

    fn action(&self) -> SessionAction {
        lock(&self.progress).action
    }
}

fn already_active() -> RpcError {
    RpcError::runtime_error("a sticky session is already active for this request")
}

/// The request's session host, for the endpoints to install in its calls.
#[derive(Clone)]
pub(crate) struct BoundSession(pub(crate) Arc<dyn SessionHost>);

impl std::fmt::Debug for BoundSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundSession")
            .field("session_id", &self.0.session_id())
            .finish_non_exhaustive()
    }
}
