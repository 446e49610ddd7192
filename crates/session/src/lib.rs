//! Sticky sessions for vgi-rpc: the per-worker registry of live objects
//! that HTTP sticky sessions bind to a client.
//!
//! A method opens a session with some state (a database cursor, a loaded
//! model, a counter); later calls presenting the session's token get the
//! very same object back. The objects stay in this process's memory: they
//! are never serialized, replicated or persisted. This crate is that
//! memory and its rules, and knows nothing of HTTP or tokens:
//!
//! * a [`Registry`] keyed by 12-byte [`SessionId`]s, each session owned by
//!   one principal;
//! * a per-session lock: [`Registry::resume`] hands out one [`Lease`] at a
//!   time per session, so calls on one session run one after another while
//!   different sessions run in parallel;
//! * TTL eviction, by a [`Reaper`] thread or inline on resume, explicit
//!   close ([`Lease::close`]) and drain shutdown ([`Registry::shutdown`]),
//!   each running the state's [`SessionState::close`] hook exactly once;
//! * a drain flag that refuses new sessions while existing ones go on.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use vgirpc_session::{Registry, SessionError, SessionState};
//!
//! struct Counter(i64);
//! impl SessionState for Counter {}
//!
//! let registry = Registry::new(Duration::from_secs(300));
//! let opened = registry.open(Box::new(Counter(7)), None, "alice").unwrap();
//! let id = opened.id();
//! drop(opened); // the opening call is done; the session waits for the next
//!
//! let mut lease = registry.resume(id, "alice").unwrap();
//! lease.downcast_mut::<Counter>().unwrap().0 += 10;
//! drop(lease);
//!
//! // Another principal cannot use it, and it is gone once its TTL runs out.
//! assert_eq!(registry.resume(id, "mallory").unwrap_err(), SessionError::WrongOwner);
//! let later = Instant::now() + Duration::from_secs(301);
//! assert_eq!(registry.evict_expired(later), 1);
//! assert_eq!(registry.resume(id, "alice").unwrap_err(), SessionError::NotFound);
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod error;
mod id;
mod reaper;
mod registry;

pub use error::SessionError;
pub use id::{SESSION_ID_LEN, SessionId};
pub use reaper::{DEFAULT_TICK, Reaper};
pub use registry::{DEFAULT_TTL, Lease, Registry, SessionState};
