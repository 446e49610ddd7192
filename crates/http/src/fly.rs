//! Sticky sessions on Fly.io.
//!
//! fly-proxy may route each request to any Machine of an app, but honours
//! a `fly-force-instance-id: <machine id>` request header. Configured as a
//! sticky echo header, the session-opening response tells the client to
//! send it on every later request of the session, which then reaches the
//! Machine holding the session with no load-balancer configuration.
//!
//! Both helpers return `None` off Fly (no `FLY_MACHINE_ID`), so one
//! configuration serves every deployment:
//!
//! ```no_run
//! use vgirpc_http::{HttpConfig, StickyConfig, fly};
//!
//! if let Some(id) = fly::auto_server_id() {
//!     // Token, log and describe server ids then name the Machine.
//!     vgirpc::set_server_id(id).expect("set before any server is built");
//! }
//! let config = HttpConfig::new()
//!     .with_sticky(StickyConfig::new().with_echo_headers(fly::sticky_echo_headers()));
//! ```

/// Environment variable in which Fly.io names the current Machine.
pub const FLY_MACHINE_ID: &str = "FLY_MACHINE_ID";

/// The request header fly-proxy routes by.
pub const FORCE_INSTANCE_HEADER: &str = "fly-force-instance-id";

/// The current Fly Machine's id, if running on Fly.
pub fn machine_id() -> Option<String> {
    std::env::var(FLY_MACHINE_ID)
        .ok()
        .filter(|id| !id.is_empty())
}

/// The Machine id to use as the server id on Fly, so session tokens and
/// logs name the Machine; `None` elsewhere (keep the random id).
pub fn auto_server_id() -> Option<String> {
    machine_id()
}

/// `fly-force-instance-id: <machine id>` as a sticky echo header on Fly;
/// `None` (nothing to echo) elsewhere.
pub fn sticky_echo_headers() -> Option<(String, String)> {
    machine_id().map(|id| (FORCE_INSTANCE_HEADER.to_owned(), id))
}
