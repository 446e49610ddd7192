//! Who is calling: a method reads its caller from `ctx.auth()`, whichever
//! transport brought the call. Over HTTP the caller is whoever the server's
//! authenticator says (here, a static bearer token); over a Unix socket it
//! is the peer process, as the kernel reports it (uid, gid, pid).
//!
//! ```text
//! cargo run --example auth
//! ```

use std::error::Error;

use vgirpc::client::Client;
use vgirpc::client::http::HttpOptions;
use vgirpc::transport::NoSideChannels;
use vgirpc::{AuthContext, CallContext, RpcError, Server};
use vgirpc_http::{HttpConfig, HttpServer, bearer_static};
use vgirpc_pipe::UnixConfig;

/// A service that cares who calls it.
#[vgirpc::service]
pub trait Vault {
    /// Who the server thinks the caller is.
    fn whoami(&self, ctx: &CallContext) -> Result<String, RpcError>;
    /// Only for administrators.
    fn secret(&self, ctx: &CallContext) -> Result<String, RpcError>;
}

struct Keeper;

impl Vault for Keeper {
    fn whoami(&self, ctx: &CallContext) -> Result<String, RpcError> {
        let auth = ctx.auth();
        Ok(if auth.authenticated {
            format!(
                "{} (domain {}, claims {:?})",
                auth.principal_or_empty(),
                auth.domain_or_empty(),
                auth.claims
            )
        } else {
            "anonymous".to_owned()
        })
    }

    fn secret(&self, ctx: &CallContext) -> Result<String, RpcError> {
        let admin = ctx.auth().claims.get("role").and_then(|role| role.as_str()) == Some("admin");
        if admin {
            Ok("the vault opens".to_owned())
        } else {
            Err(RpcError::new(
                "PermissionError",
                format!("{} is no administrator", ctx.auth().principal_or_empty()),
            ))
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let server = Server::new(VaultServer::new(Keeper))?;

    // HTTP: one known token; requests without it are refused with 401
    // before any method runs.
    let alice = AuthContext::authenticated("bearer", "alice").with_claim("role", "admin");
    let config = HttpConfig::new().with_authenticate(bearer_static([("s3cret".to_owned(), alice)]));
    let runtime = tokio::runtime::Runtime::new()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let http = {
        let _inside = runtime.enter();
        HttpServer::new(server.clone(), config)?
    };
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(http.serve(listener, async {
        let _ = http_stopped.await;
    }));

    let with_token = HttpOptions::new().bearer_token("s3cret");
    let mut vault = VaultClient::new(Client::connect_http_with(&url, with_token)?);
    println!("http, with the token: whoami() = {}", vault.whoami()?);
    println!("http, with the token: secret() = {}", vault.secret()?);
    let mut stranger = VaultClient::new(Client::connect_http(&url)?);
    println!(
        "http, no token:       whoami() -> {}",
        stranger.whoami().unwrap_err()
    );
    drop((vault, stranger));
    let _ = stop_http.send(());
    runtime.block_on(serving)??;

    // A Unix socket: the caller is this very process, vouched for by the
    // kernel, so it is authenticated in domain `unix` with its uid.
    let dir = std::env::temp_dir().join(format!("vgirpc-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let socket = dir.join("vault.sock");
    let config = UnixConfig::new(&socket);
    let (listening, ready) = std::sync::mpsc::channel();
    let (stop_unix, unix_stopped) = tokio::sync::oneshot::channel::<()>();
    let unix = std::thread::spawn(move || {
        let ready = move |_: &std::path::Path| {
            let _ = listening.send(());
        };
        let stop = async {
            let _ = unix_stopped.await;
        };
        vgirpc_pipe::serve_unix_until(&server, &config, NoSideChannels, ready, stop)
    });
    ready.recv()?;
    let mut vault = VaultClient::new(Client::connect_unix(&socket)?);
    println!("unix:                 whoami() = {}", vault.whoami()?);
    println!(
        "unix:                 secret() -> {}",
        vault.secret().unwrap_err()
    );
    drop(vault);
    let _ = stop_unix.send(());
    unix.join().map_err(|_| "the unix server panicked")??;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
