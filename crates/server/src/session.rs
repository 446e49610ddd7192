//! The core side of sticky sessions: what a method sees through
//! [`CallContext`](crate::CallContext), and the small [`SessionHost`]
//! interface a transport installs to provide it.
//!
//! Only a transport that can carry session tokens between calls (HTTP with
//! sticky sessions enabled) installs a host; everywhere else opening a
//! session fails with `RuntimeError: sticky sessions not available on this
//! transport`, as in the reference.

use std::any::Any;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

pub use vgirpc_session::SessionState;

use crate::error::RpcError;

/// What a call did with sticky sessions, as recorded in access logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionAction {
    /// Served by a sticky transport without touching a session.
    None,
    /// The method opened a session.
    Open,
    /// The call presented a live session's token.
    Resume,
    /// The method closed the session.
    Close,
}

impl SessionAction {
    /// The access-log spelling (`none`, `open`, `resume`, `close`).
    pub fn as_str(self) -> &'static str {
        match self {
            SessionAction::None => "none",
            SessionAction::Open => "open",
            SessionAction::Resume => "resume",
            SessionAction::Close => "close",
        }
    }
}

/// Exclusive access to the state of the session bound to a call, as a
/// [`SessionHost`] hands it out.
pub type StateGuard<'a> = Box<dyn DerefMut<Target = dyn SessionState> + 'a>;

/// Sticky-session support a transport installs into each call's context.
///
/// One host serves one request: it knows which session (if any) the request
/// resumed, holds that session's state for the duration of the request, and
/// tells the transport afterwards what to answer. The core only forwards the
/// [`CallContext`](crate::CallContext) session methods to it.
pub trait SessionHost: Send + Sync + 'static {
    /// Registers `state` as a new session bound to this request, living
    /// `ttl` or the host's default.
    fn open(&self, state: Box<dyn SessionState>, ttl: Option<Duration>) -> Result<(), RpcError>;

    /// Ends the session bound to this request, running its close hook.
    /// Idempotent.
    fn close(&self) -> Result<(), RpcError>;

    /// The bound session's state, if a session is bound.
    fn state(&self) -> Option<StateGuard<'_>>;

    /// The bound (or just closed) session's id, 24 hex characters.
    fn session_id(&self) -> Option<String>;

    /// What the request has done with sessions so far.
    fn action(&self) -> SessionAction;
}

/// The session state of a call as a `T`, locked for as long as this lives.
///
/// Drop it before calling
/// [`CallContext::close_session`](crate::CallContext::close_session).
pub struct SessionRef<'a, T> {
    guard: StateGuard<'a>,
    _type: PhantomData<&'a mut T>,
}

impl<'a, T: SessionState> SessionRef<'a, T> {
    /// Wraps `guard` if its state is a `T`.
    pub(crate) fn new(guard: StateGuard<'a>) -> Option<Self> {
        let state: &dyn Any = &**guard;
        state.is::<T>().then_some(Self {
            guard,
            _type: PhantomData,
        })
    }
}

impl<T: SessionState> Deref for SessionRef<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        let state: &dyn Any = &**self.guard;
        state.downcast_ref().expect("checked in SessionRef::new")
    }
}

impl<T: SessionState> DerefMut for SessionRef<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        let state: &mut dyn Any = &mut **self.guard;
        state.downcast_mut().expect("checked in SessionRef::new")
    }
}

impl<T: SessionState + std::fmt::Debug> std::fmt::Debug for SessionRef<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SessionRef").field(&**self).finish()
    }
}

/// The error for session calls on a transport without a host.
pub(crate) fn unavailable() -> RpcError {
    RpcError::runtime_error("sticky sessions not available on this transport")
}
