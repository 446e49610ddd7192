//! Methods may return any `Result` whose error converts into `RpcError`,
//! including aliases that fix the error type; the client sees each error
//! under a name it can match on.

use vgirpc::client::{Client, ClientError};
use vgirpc::{Server, TransportKind};

/// An error of the catalog's own.
#[derive(Debug, thiserror::Error)]
#[error("no entry called {0}")]
pub struct MissingEntry(String);

/// The catalog's alias, whose name ends in `Result` like the standard ones.
pub type CatalogResult<T> = Result<T, MissingEntry>;

/// A catalog whose methods fail in the ways real services do.
#[vgirpc::service]
pub trait Catalog {
    /// Reads a file.
    fn load(&self, path: String) -> std::io::Result<String>;
    /// Parses a number, with context.
    async fn parse(&self, text: String) -> anyhow::Result<i64>;
    /// Looks an entry up.
    fn lookup(&self, key: String) -> CatalogResult<String>;
}

struct Shelf;

impl Catalog for Shelf {
    fn load(&self, path: String) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    async fn parse(&self, text: String) -> anyhow::Result<i64> {
        use anyhow::Context as _;
        text.trim()
            .parse()
            .with_context(|| format!("reading {text:?} as a count"))
    }

    fn lookup(&self, key: String) -> CatalogResult<String> {
        Err(MissingEntry(key))
    }
}

fn catalog() -> (
    CatalogClient<impl vgirpc::client::Transport>,
    std::thread::JoinHandle<()>,
) {
    let (server_reads, client_writes) = std::io::pipe().unwrap();
    let (client_reads, server_writes) = std::io::pipe().unwrap();
    let server = Server::new(CatalogServer::new(Shelf)).unwrap();
    let serving = std::thread::spawn(move || {
        server
            .serve(server_reads, server_writes, TransportKind::Pipe)
            .unwrap();
    });
    (
        CatalogClient::new(Client::from_io(client_reads, client_writes)),
        serving,
    )
}

fn remote(err: ClientError) -> (String, String) {
    match err {
        ClientError::Remote {
            error_type,
            message,
            ..
        } => (error_type, message),
        other => panic!("expected an error from the server, got {other:?}"),
    }
}

#[test]
fn result_aliases_reach_the_client_with_sensible_error_types() {
    let (mut catalog, serving) = catalog();

    let (error_type, message) = remote(catalog.load("/no/such/catalog.txt".into()).unwrap_err());
    assert_eq!(error_type, "FileNotFoundError");
    assert!(message.contains("No such file"), "{message}");

    assert_eq!(catalog.parse(" 42 ".into()).unwrap(), 42);
    let (error_type, message) = remote(catalog.parse("many".into()).unwrap_err());
    assert_eq!(error_type, "RuntimeError");
    assert_eq!(
        message,
        "reading \"many\" as a count: invalid digit found in string"
    );

    let (error_type, message) = remote(catalog.lookup("atlas".into()).unwrap_err());
    assert_eq!(error_type, "MissingEntry");
    assert_eq!(message, "no entry called atlas");

    catalog.into_dynamic().close().unwrap();
    serving.join().unwrap();
}
