//! Parameters: recorded as span data when asked, redacted, filtered to
//! what Sentry accepts and cut; chosen ones as tags.

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{Float64Array, Int64Array, StructArray};
use vgirpc::sentry::{ParamValue, Params, SentryConfig};

use super::*;

fn keys(safe: &[(String, Value)]) -> Vec<&str> {
    safe.iter().map(|(k, _)| k.as_str()).collect()
}

fn texts(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), ParamValue::Text((*v).to_owned())))
        .collect()
}

#[test]
fn primitives_of_every_kind_are_kept() {
    let safe = SentryConfig::new().safe_params(vec![
        ("table".into(), ParamValue::Text("orders".into())),
        ("limit".into(), ParamValue::Int(100)),
        ("include_archived".into(), ParamValue::Bool(false)),
        ("ratio".into(), ParamValue::Float(0.5)),
    ]);
    let expected: Vec<(String, Value)> = vec![
        ("table".into(), "orders".into()),
        ("limit".into(), 100.into()),
        ("include_archived".into(), false.into()),
        ("ratio".into(), 0.5.into()),
    ];
    assert_eq!(safe, expected);
}

#[test]
fn the_default_redactor_drops_credential_names() {
    let safe = SentryConfig::new().safe_params(texts(&[
        ("username", "alice"),
        ("password", "hunter2"),
        ("api_token", "xyz"),
        ("bearer_key", "abc"),
        ("Client_Secret", "s"),
        ("Authorization", "Bearer x"),
    ]));
    assert_eq!(keys(&safe), ["username"]);
}

#[test]
fn a_redactor_replaces_the_default_and_identity_records_all() {
    let own = SentryConfig::new()
        .with_param_redactor(|params| params.into_iter().filter(|(k, _)| k != "table").collect());
    let safe = own.safe_params(texts(&[("table", "orders"), ("password", "passes")]));
    assert_eq!(keys(&safe), ["password"]);
    let trusted = SentryConfig::new().with_param_redactor(|params| params);
    let safe = trusted.safe_params(texts(&[("password", "hunter2")]));
    assert_eq!(keys(&safe), ["password"]);
}

#[test]
fn long_strings_are_cut_to_max_param_value_bytes() {
    let config = SentryConfig::new().with_max_param_value_bytes(16);
    let long = "x".repeat(100);
    let safe = config.safe_params(texts(&[("predicate", &long)]));
    assert_eq!(safe[0].1, "x".repeat(16));
    // At a character boundary, never past the limit.
    let safe = SentryConfig::new().safe_params(texts(&[("q", &"é".repeat(700))]));
    assert_eq!(safe[0].1, "é".repeat(512));
}

#[test]
fn only_primitives_and_homogeneous_lists_are_safe_params() {
    let safe = SentryConfig::new().safe_params(vec![
        ("ok_string".into(), ParamValue::Text("x".into())),
        ("drop_bytes".into(), ParamValue::Bytes(vec![1])),
        (
            "ok_ints".into(),
            ParamValue::List(vec![ParamValue::Int(1), ParamValue::Int(2)]),
        ),
        (
            "ok_strings".into(),
            ParamValue::List(vec![
                ParamValue::Text("a".into()),
                ParamValue::Text("b".into()),
            ]),
        ),
        (
            "drop_mixed".into(),
            ParamValue::List(vec![ParamValue::Int(1), ParamValue::Text("two".into())]),
        ),
        ("drop_empty".into(), ParamValue::List(vec![])),
        (
            "drop_dict".into(),
            ParamValue::Struct(vec![("k".into(), ParamValue::Text("v".into()))]),
        ),
        ("drop_other".into(), ParamValue::Other),
    ]);
    assert_eq!(keys(&safe), ["ok_string", "ok_ints", "ok_strings"]);
    assert_eq!(safe[1].1, serde_json::json!([1, 2]));
    assert_eq!(safe[2].1, serde_json::json!(["a", "b"]));
}

fn scan(server: &Server) {
    call(
        server,
        &anonymous(),
        "scan",
        vec![
            ("table", text("orders")),
            ("limit", Arc::new(Int64Array::from(vec![100]))),
            (
                "include_archived",
                Arc::new(arrow_array::BooleanArray::from(vec![false])),
            ),
            ("ratio", Arc::new(Float64Array::from(vec![0.5]))),
            ("columns", string_list(&["a", "b"])),
        ],
    );
}

fn string_list(values: &[&str]) -> ArrayRef {
    let mut list = ListBuilder::new(StringBuilder::new());
    for value in values {
        list.values().append_value(value);
    }
    list.append(true);
    Arc::new(list.finish())
}

#[test]
fn recorded_parameters_reach_the_transaction_and_not_the_event() {
    let recorded = items(
        SentryConfig::new()
            .with_performance()
            .with_params_recorded(),
        scan,
    );
    let [transaction] = transactions(&recorded)[..] else {
        panic!("one transaction: {recorded:?}");
    };
    let (_, data) = trace(transaction);
    assert_eq!(data["rpc.param.table"], "orders");
    assert_eq!(data["rpc.param.limit"], 100);
    assert_eq!(data["rpc.param.include_archived"], false);
    assert_eq!(data["rpc.param.ratio"], 0.5);
    assert_eq!(data["rpc.param.columns"], serde_json::json!(["a", "b"]));

    let plain = items(SentryConfig::new().with_performance(), scan);
    let (_, data) = trace(transactions(&plain)[0]);
    assert!(
        data.keys().all(|k| !k.starts_with("rpc.param.")),
        "{data:?}"
    );
}

fn search(server: &Server, query: &str) {
    call(
        server,
        &anonymous(),
        "search",
        vec![
            ("table", text("orders")),
            ("query", text(query)),
            ("password", text("hunter2")),
            ("limit", Arc::new(Int64Array::from(vec![10]))),
        ],
    );
}

#[test]
fn tag_params_become_tags_clipped_to_200_characters() {
    let long = "t".repeat(300);
    let event = event(
        Some(
            SentryConfig::new()
                .with_tag_param("table")
                .with_tag_param("limit")
                .with_tag_param("query")
                .with_tag_param("missing"),
        ),
        |server| search(server, &long),
    );
    assert_eq!(tag(&event, "rpc.param.table"), Some("orders"));
    assert_eq!(tag(&event, "rpc.param.limit"), Some("10"));
    assert_eq!(tag(&event, "rpc.param.query").map(str::len), Some(200));
    assert_eq!(tag(&event, "rpc.param.missing"), None);
    // Only the named ones.
    assert_eq!(tag(&event, "rpc.param.password"), None);
}

#[test]
fn a_tag_param_that_is_not_a_primitive_is_not_tagged() {
    let request = StructArray::from(vec![
        (
            Arc::new(Field::new("attach_id", DataType::Binary, false)),
            Arc::new(arrow_array::BinaryArray::from(vec![&b"\x01"[..]])) as ArrayRef,
        ),
        (
            Arc::new(Field::new("transaction_id", DataType::Binary, true)),
            Arc::new(arrow_array::BinaryArray::from(vec![None::<&[u8]>])) as ArrayRef,
        ),
    ]);
    let event = event(
        Some(SentryConfig::new().with_tag_param("request")),
        |server| {
            call(
                server,
                &anonymous(),
                "open",
                vec![("request", Arc::new(request))],
            )
        },
    );
    assert_eq!(tag(&event, "rpc.param.request"), None);
}
