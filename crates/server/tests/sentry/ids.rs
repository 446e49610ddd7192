//! The VGI ids, hashed into tags wherever a call carries them, and the
//! hash itself.

use arrow_array::{BinaryArray, Int64Array, StructArray};
use arrow_schema::Fields;
use vgirpc::sentry::{SentryConfig, short_hash, short_hash_of_length};

use super::*;

fn binary(value: Option<&[u8]>) -> ArrayRef {
    Arc::new(BinaryArray::from(vec![value]))
}

/// An `Open` request: the ids as fields of the one parameter.
fn open_request(attach_id: &[u8], transaction_id: Option<&[u8]>) -> ArrayRef {
    Arc::new(StructArray::from(vec![
        (
            Arc::new(Field::new("attach_id", DataType::Binary, false)),
            binary(Some(attach_id)),
        ),
        (
            Arc::new(Field::new("transaction_id", DataType::Binary, true)),
            binary(transaction_id),
        ),
    ]))
}

/// The `vgi.*` tags of the failed call `method` with `columns`.
fn id_tags(method: &str, columns: Vec<(&str, ArrayRef)>) -> (Option<String>, Option<String>) {
    let event = event(None, |server| call(server, &anonymous(), method, columns));
    let owned = |key| tag(&event, key).map(str::to_owned);
    (owned("vgi.attach_id"), owned("vgi.transaction_id"))
}

#[test]
fn a_top_level_attach_id_is_tagged_by_its_short_hash() {
    let id = b"\x4f\x3c\x2a\x1b\x9d\x8e\xff\x01\x02\x03\x04\x05\x06\x07\x08\x09";
    let (attach, transaction) = id_tags("attach", vec![("attach_id", binary(Some(id)))]);
    assert_eq!(attach, Some(short_hash(&id[..])));
    assert_eq!(transaction, None);
}

#[test]
fn ids_on_a_request_struct_are_found_one_level_down() {
    let (attach, transaction) = id_tags(
        "open",
        vec![(
            "request",
            open_request(b"\xab\xcd\xef\x01", Some(b"\x99\x88\x77\x66")),
        )],
    );
    assert_eq!(attach, Some(short_hash("abcdef01")));
    assert_eq!(transaction, Some(short_hash("99887766")));
    // A null id is no id.
    let (attach, transaction) = id_tags("open", vec![("request", open_request(b"\x01", None))]);
    assert_eq!(attach, Some(short_hash("01")));
    assert_eq!(transaction, None);
}

#[test]
fn ids_inside_bind_call_are_found_two_levels_down() {
    let inner = StructArray::from(vec![(
        Arc::new(Field::new("transaction_id", DataType::Utf8, false)),
        text("tx-1"),
    )]);
    let outer = StructArray::from(vec![(
        Arc::new(Field::new(
            "bind_call",
            DataType::Struct(Fields::from(vec![Field::new(
                "transaction_id",
                DataType::Utf8,
                false,
            )])),
            false,
        )),
        Arc::new(inner) as ArrayRef,
    )]);
    let (attach, transaction) = id_tags("bind", vec![("request", Arc::new(outer))]);
    assert_eq!(transaction, Some(short_hash("tx-1")));
    assert_eq!(attach, None);
}

#[test]
fn calls_without_ids_or_with_ids_of_other_types_are_not_tagged() {
    assert_eq!(
        id_tags("fail", vec![("value", text("x"))]),
        (None, None),
        "no id"
    );
    assert_eq!(
        id_tags(
            "attach_number",
            vec![("attach_id", Arc::new(Int64Array::from(vec![42])))]
        ),
        (None, None),
        "a number"
    );
}

#[test]
fn an_id_as_bytes_and_as_hex_text_gets_one_tag() {
    let id = b"\x12\x34\x56\x78\x9a\xbc";
    let (bytes, _) = id_tags("attach", vec![("attach_id", binary(Some(id)))]);
    let (hex, _) = id_tags("attach_hex", vec![("attach_id", text("123456789abc"))]);
    assert_eq!(bytes, hex);
    assert!(bytes.is_some());
}

#[test]
fn ids_are_span_data_too() {
    let items = items(SentryConfig::new().with_performance(), |server| {
        call(
            server,
            &anonymous(),
            "attach",
            vec![("attach_id", binary(Some(b"\xde\xad\xbe\xef")))],
        );
    });
    let (_, data) = trace(transactions(&items)[0]);
    assert_eq!(data["vgi.attach_id"], short_hash("deadbeef"));
}

#[test]
fn short_hash_is_a_sha256_prefix_with_bytes_as_their_hex() {
    // SHA-256 of "abc".
    assert_eq!(short_hash("abc"), "ba7816bf8f01");
    let hashed = short_hash(&[1u8, 2, 3][..]);
    assert_eq!(hashed.len(), 12);
    assert!(hashed.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    assert_eq!(short_hash_of_length("abc", 8), "ba7816bf");
    assert_eq!(short_hash_of_length(&b"x"[..], 8).len(), 8);
    let raw = vec![0x4f, 0x3c, 0x2a, 0x1b, 0x9d, 0x8e, 0xff, 0x01];
    assert_eq!(short_hash(&raw), short_hash("4f3c2a1b9d8eff01"));
    assert_eq!(
        short_hash(&raw[..]),
        short_hash(&"4f3c2a1b9d8eff01".to_owned())
    );
    assert_ne!(short_hash(&b"a"[..]), short_hash(&b"b"[..]));
}
