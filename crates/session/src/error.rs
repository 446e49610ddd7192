/// Why a session could not be opened or resumed.
///
/// Every variant but [`SessionError::Draining`] means the session is lost:
/// transports report them all to clients the same way, so that a stolen or
/// stale token cannot be used to learn whether a session exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// No live session has this id: it never existed here, or was closed
    /// and removed.
    #[error("session not found")]
    NotFound,
    /// The session outlived its TTL and has been evicted.
    #[error("session expired")]
    Expired,
    /// The session belongs to another principal.
    #[error("session belongs to another principal")]
    WrongOwner,
    /// The session closed while this request waited for its lock.
    #[error("session was closed while waiting for it")]
    Closed,
    /// The registry is draining and refuses new sessions.
    #[error("server is draining; new sessions are refused")]
    Draining,
}

impl SessionError {
    /// Whether the error means the session is gone (every variant except
    /// [`SessionError::Draining`]).
    pub fn is_lost(&self) -> bool {
        !matches!(self, SessionError::Draining)
    }
}
