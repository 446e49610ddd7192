//! What the sticky-session tests share: a service keeping a counter in
//! its session, a server to run it, and the requests that open, resume and
//! lose sessions.

pub(crate) mod server;
pub(crate) mod session;
pub(crate) mod tally;
