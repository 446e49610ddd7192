//! Arrow batches and schemas as values, and schema messages byte for byte.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod columns;
    pub(crate) mod embedded;
    pub(crate) mod fixtures;
}

use std::sync::Arc;

use arrow_schema::Schema;
use common::columns::{check_column, check_column_with};
use common::embedded::{embedded_batch, embedded_schema};
use common::fixtures::fixture;
use vgirpc_wire::types::serialize_schema;

#[test]
fn embedded_arrow_columns() {
    check_column_with("record_batch", embedded_batch(), false);
    // Schemas serialize byte-identically, so the whole batch matches.
    check_column("schema", embedded_schema());
    check_column("schema", Arc::new(embedded_schema()));
}

#[test]
fn empty_schema_is_the_appendix_c_blob() {
    assert_eq!(
        serialize_schema(&Schema::empty()),
        fixture("empty_schema.bin")
    );
    assert_eq!(fixture("empty_schema.bin").len(), 56);
}

/// Field and schema metadata and dictionary ids survive byte for byte.
#[test]
fn schema_with_metadata_is_byte_identical() {
    let bytes = fixture("schema_with_metadata.bin");
    let schema = vgirpc_wire::types::deserialize_schema(&bytes).unwrap();
    assert_eq!(schema.metadata()["vgi_rpc.protocol"], "demo");
    assert_eq!(schema.field(0).metadata()["comment"], "field metadata");
    assert_eq!(serialize_schema(&schema), bytes);
}
