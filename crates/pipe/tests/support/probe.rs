//! The service the Unix-socket tests call: it echoes, panics, names its
//! caller, and holds calls for as long as the test wants.

use vgirpc::{CallContext, RpcError, Server};

/// Service used by these tests.
#[vgirpc::service]
pub(crate) trait Probe {
    /// Returns `value`.
    fn echo(&self, value: String) -> Result<String, RpcError>;
    /// Returns `value` once the server's hold lets it.
    fn held(&self, value: String) -> Result<String, RpcError>;
    /// Panics with `value`.
    fn panics(&self, value: String) -> Result<String, RpcError>;
    /// The caller as `domain:principal:pid`, with `value` ignored.
    fn whoami(&self, ctx: &CallContext, value: String) -> Result<String, RpcError>;
}

/// What a `held` call waits on, given its value.
type Hold = Box<dyn Fn(&str) + Send + Sync>;

struct ProbeImpl {
    hold: Hold,
}

impl Probe for ProbeImpl {
    fn echo(&self, value: String) -> Result<String, RpcError> {
        Ok(value)
    }

    fn held(&self, value: String) -> Result<String, RpcError> {
        (self.hold)(&value);
        Ok(value)
    }

    fn panics(&self, value: String) -> Result<String, RpcError> {
        panic!("{value}");
    }

    fn whoami(&self, ctx: &CallContext, _value: String) -> Result<String, RpcError> {
        let auth = ctx.auth();
        let pid = auth.claims.get("pid").map(ToString::to_string);
        Ok(format!(
            "{}:{}:{}",
            auth.domain_or_empty(),
            auth.principal_or_empty(),
            pid.unwrap_or_default()
        ))
    }
}

/// A server for [`Probe`] whose `held` calls return as soon as `hold`
/// does.
pub(crate) fn probe_server_holding(hold: impl Fn(&str) + Send + Sync + 'static) -> Server {
    Server::new(ProbeServer::new(ProbeImpl {
        hold: Box::new(hold),
    }))
    .unwrap()
}

/// A server for [`Probe`] whose `held` calls return at once.
pub(crate) fn probe_server() -> Server {
    probe_server_holding(|_| {})
}
