//! The hostile request bodies: each is bytes a peer could send, built
//! once and shared by every transport.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;

use arrow_array::{BinaryArray, DictionaryArray, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use flatbuffers::FlatBufferBuilder;
use vgirpc_wire::ipc::{StreamWriter, write_stream_bytes};
use vgirpc_wire::metadata::Metadata;
use vgirpc_wire::request::Request;

use crate::raw;

/// `exchange_scale(factor=2)` followed by one input batch of strings where
/// the method declares doubles, then the end of the input.
pub(crate) fn exchange_with_strings() -> Vec<u8> {
    let factor = raw::params(vec![(
        "factor",
        Arc::new(Float64Array::from(vec![2.0])) as _,
    )]);
    let mut bytes = raw::call("exchange_scale", &factor);
    let input = raw::params(vec![(
        "value",
        Arc::new(StringArray::from(vec!["zz"])) as _,
    )]);
    let mut writer = StreamWriter::try_new(Vec::new(), input.schema_ref()).expect("in memory");
    writer.write(&input, &Metadata::new()).expect("in memory");
    bytes.extend(writer.finish().expect("in memory"));
    bytes
}

/// An `echo_string` call whose parameter schema carries `blob_bytes` of
/// metadata under a key unique to `round`.
pub(crate) fn call_with_big_schema(round: usize, blob_bytes: usize) -> Vec<u8> {
    let metadata = HashMap::from([(format!("blob{round}"), "x".repeat(blob_bytes))]);
    let schema = Arc::new(Schema::new_with_metadata(
        vec![Field::new("value", DataType::Utf8, true)],
        metadata,
    ));
    let params = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec!["big schema"]))],
    )
    .expect("one row");
    write_stream_bytes(&schema, [(&params, &Request::metadata_for("echo_string"))])
        .expect("in memory")
}

/// A request whose record batch declares a body of `claimed` bytes; `sent`
/// of them follow, then the bytes stop.
pub(crate) fn body_claim(claimed: i64, sent: usize) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)]));
    let mut bytes = write_stream_bytes(&schema, std::iter::empty()).expect("in memory");
    bytes.truncate(bytes.len() - 8);

    let mut fbb = FlatBufferBuilder::new();
    let nodes = fbb.create_vector(&[arrow_ipc::FieldNode::new(1, 0)]);
    let buffers = fbb.create_vector(&[
        arrow_ipc::Buffer::new(0, 0),
        arrow_ipc::Buffer::new(0, 8),
        arrow_ipc::Buffer::new(8, claimed - 8),
    ]);
    let header = arrow_ipc::RecordBatch::create(
        &mut fbb,
        &arrow_ipc::RecordBatchArgs {
            length: 1,
            nodes: Some(nodes),
            buffers: Some(buffers),
            compression: None,
            variadicBufferCounts: None,
        },
    );
    let key = fbb.create_string(vgirpc_wire::metadata::METHOD);
    let value = fbb.create_string("echo_string");
    let method = arrow_ipc::KeyValue::create(
        &mut fbb,
        &arrow_ipc::KeyValueArgs {
            key: Some(key),
            value: Some(value),
        },
    );
    let custom_metadata = fbb.create_vector(&[method]);
    let message = arrow_ipc::Message::create(
        &mut fbb,
        &arrow_ipc::MessageArgs {
            version: arrow_ipc::MetadataVersion::V5,
            header_type: arrow_ipc::MessageHeader::RecordBatch,
            header: Some(header.as_union_value()),
            bodyLength: claimed,
            custom_metadata: Some(custom_metadata),
        },
    );
    fbb.finish(message, None);
    let mut flatbuffer = fbb.finished_data().to_vec();
    flatbuffer.resize(flatbuffer.len().next_multiple_of(8), 0);
    bytes.extend([0xFF, 0xFF, 0xFF, 0xFF]);
    bytes.extend(
        u32::try_from(flatbuffer.len())
            .expect("small")
            .to_le_bytes(),
    );
    bytes.extend(flatbuffer);
    bytes.extend(std::iter::repeat_n(0u8, sent));
    bytes
}

/// One zstd frame that expands to `expanded` zero bytes.
pub(crate) fn zstd_bomb(expanded: u64) -> Vec<u8> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd");
    encoder
        .set_pledged_src_size(Some(expanded))
        .expect("pledged size");
    let zeros = vec![0u8; 1 << 20];
    let mut left = expanded;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        encoder.write_all(&zeros[..n]).expect("in memory");
        left -= n as u64;
    }
    encoder.finish().expect("in memory")
}

/// An `echo_int` call whose `value` is `bytes` of binary instead of an
/// integer: a large body the worker must read whole and then refuse.
pub(crate) fn large_body(bytes: usize) -> Vec<u8> {
    let blob = vec![7u8; bytes];
    let params = raw::params(vec![(
        "value",
        Arc::new(BinaryArray::from(vec![blob.as_slice()])) as _,
    )]);
    drop(blob);
    raw::call("echo_int", &params)
}

/// A request stream whose record batch comes before the dictionary it
/// uses: a valid `echo_string` call with those two messages swapped.
pub(crate) fn dictionary_after_its_batch() -> Vec<u8> {
    let values: DictionaryArray<arrow_array::types::Int32Type> = vec!["a"].into_iter().collect();
    let params = raw::params(vec![("value", Arc::new(values) as _)]);
    let bytes = raw::call("echo_string", &params);
    let mut messages = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        if len == 0 {
            break;
        }
        let header = arrow_ipc::root_as_message(&bytes[at + 8..at + 8 + len]).expect("valid");
        let end = at + 8 + len + usize::try_from(header.bodyLength()).expect("non-negative");
        messages.push(&bytes[at..end]);
        at = end;
    }
    assert_eq!(messages.len(), 3, "schema, dictionary, batch");
    messages.swap(1, 2);
    let mut swapped = messages.concat();
    swapped.extend(&bytes[at..]);
    swapped
}

/// An `echo_string` call whose method name is `len` bytes long.
pub(crate) fn huge_method_name(len: usize) -> Vec<u8> {
    let params = raw::params(vec![("value", Arc::new(StringArray::from(vec!["x"])) as _)]);
    raw::call(&"m".repeat(len), &params)
}
