//! What `#[vgirpc::service]` puts in a service's description beyond the
//! wire: each method's doc comment and its parameters' defaults, which the
//! HTTP describe page shows and `__describe__` leaves out.

use std::collections::BTreeMap;

use vgirpc::wire::describe::{MethodDescription, describe_batch};
use vgirpc::wire::metadata::PROTOCOL_HASH;
use vgirpc::{ArrowEnum, ArrowStruct, RpcError, Server, Service};

const LIMIT: i64 = 100;

/// Where a search starts.
#[derive(Debug, Clone, ArrowStruct)]
pub struct Origin {
    x: f64,
    y: f64,
}

/// How hard a search tries.
#[derive(Debug, Clone, Copy, ArrowEnum)]
pub enum Effort {
    Quick,
    Thorough,
}

/// A service documented the ways rustdoc reads.
#[vgirpc::service]
pub trait Catalog {
    /// Finds items.
    ///
    /// Matches `query` against every name:
    ///
    ///     find("pear") finds "pear" and "pearl".
    fn find(
        &self,
        query: String,
        #[default(LIMIT)] limit: i64,
        #[default(1)] ratio: f64,
        #[default("name")] field: String,
    ) -> Result<i64, RpcError>;

    /// Pages through items.
    fn page(
        &self,
        #[default(vec![2, 3])] pages: Vec<i64>,
        #[default(None)] cursor: Option<String>,
        #[default(Effort::Thorough)] effort: Effort,
        #[default(Origin { x: 0.5, y: -1.0 })] origin: Origin,
    ) -> Result<(), RpcError>;

    #[doc = concat!("Built ", "by a macro.")]
    fn built(&self) -> Result<(), RpcError>;

    fn bare(&self) -> Result<(), RpcError>;
}

struct Shelf;

impl Catalog for Shelf {
    fn find(
        &self,
        _query: String,
        limit: i64,
        _ratio: f64,
        _field: String,
    ) -> Result<i64, RpcError> {
        Ok(limit)
    }

    fn page(
        &self,
        _pages: Vec<i64>,
        _cursor: Option<String>,
        _effort: Effort,
        _origin: Origin,
    ) -> Result<(), RpcError> {
        Ok(())
    }

    fn built(&self) -> Result<(), RpcError> {
        Ok(())
    }

    fn bare(&self) -> Result<(), RpcError> {
        Ok(())
    }
}

fn method<'a>(service: &'a CatalogServer<Shelf>, name: &str) -> &'a MethodDescription {
    service.methods().iter().find(|m| m.name == name).unwrap()
}

#[test]
fn doc_comments_become_the_method_doc() {
    let service = CatalogServer::new(Shelf);
    assert_eq!(
        method(&service, "find").doc.as_deref(),
        Some(
            "Finds items.\n\nMatches `query` against every name:\n\n    \
             find(\"pear\") finds \"pear\" and \"pearl\"."
        )
    );
    assert_eq!(
        method(&service, "built").doc.as_deref(),
        Some("Built by a macro.")
    );
    assert_eq!(method(&service, "bare").doc, None);
}

#[test]
fn defaults_are_described_as_the_values_a_client_would_send() {
    let service = CatalogServer::new(Shelf);
    let texts = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect()
    };
    assert_eq!(
        method(&service, "find").param_defaults,
        texts(&[("limit", "100"), ("ratio", "1.0"), ("field", "\"name\"")])
    );
    assert_eq!(
        method(&service, "page").param_defaults,
        texts(&[
            ("pages", "[2, 3]"),
            ("cursor", "null"),
            ("effort", "\"Thorough\""),
            ("origin", "{x: 0.5, y: -1.0}"),
        ])
    );
    assert!(method(&service, "bare").param_defaults.is_empty());
}

#[test]
fn docs_and_defaults_leave_describe_and_the_hash_alone() {
    let server = Server::new(CatalogServer::new(Shelf)).unwrap();
    let undocumented: Vec<MethodDescription> = server
        .service()
        .methods()
        .iter()
        .cloned()
        .map(|mut m| {
            m.doc = None;
            m.param_defaults.clear();
            m
        })
        .collect();
    let (_, md) = describe_batch("Catalog", &undocumented, "s").unwrap();
    assert_eq!(md.get(PROTOCOL_HASH), Some(server.protocol_hash()));
}
