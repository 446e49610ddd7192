//! For transport authors: what a transport hands the server and gets back.
//!
//! A service author needs none of this. A transport reads a request, gives
//! it to [`Server::dispatch_from`](crate::Server::dispatch_from) and writes
//! the [`Call`] that comes back: a finished [`Answer`], or an
//! [`OpenStream`] whose [`ActiveStream`] it drives turn by turn
//! ([`Step`]). Byte-stream transports can leave all of that to
//! [`Server::serve_one`](crate::Server::serve_one) and only say which
//! [`SideChannels`] they offer and when a connection is [`Served`].
//! Stateless transports (HTTP) keep a stream between requests as a
//! [`SavedStream`] and bind sticky sessions through a [`SessionHost`].

pub use crate::active_stream::{ActiveStream, Step};
pub use crate::answer::{Answer, FailureKind, error_batch};
pub use crate::connection::Served;
pub use crate::persist::SavedStream;
pub use crate::server::{Call, OpenStream};
pub use crate::session::{SessionAction, SessionHost, StateGuard};
pub use crate::side::{NoSideChannels, SideChannel, SideChannels};
