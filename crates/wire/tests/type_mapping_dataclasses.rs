//! The conformance dataclasses (vgi_rpc/conformance/_types.py) against the
//! rows pyarrow wrote with `serialize_to_bytes()`, and damaged copies of
//! those rows.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod bounding_box;
    pub(crate) mod conformance_header;
    pub(crate) mod dates;
    pub(crate) mod decimal;
    pub(crate) mod embedded;
    pub(crate) mod fixtures;
    pub(crate) mod point;
    pub(crate) mod status;
}

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::io::Cursor;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_schema::{DataType, Schema};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use common::bounding_box::BoundingBox;
use common::conformance_header::ConformanceHeader;
use common::dates::{date, when};
use common::decimal::{Dec, dec};
use common::embedded::{embedded_batch, embedded_schema};
use common::fixtures::{fixture, schema_message};
use common::point::Point;
use common::status::Status;
use vgirpc_macros::ArrowStruct;
use vgirpc_wire::types::{
    ArrowStruct, Decimal128, DictString, FixedBinary, LargeBinary, LargeString, from_column,
    read_ipc_stream, serialize_schema, to_column,
};
use vgirpc_wire::value::batch_row_values;

#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
struct AllTypes {
    str_field: String,
    bytes_field: Vec<u8>,
    int_field: i64,
    float_field: f64,
    bool_field: bool,
    list_of_int: Vec<i64>,
    list_of_str: Vec<String>,
    dict_field: BTreeMap<String, i64>,
    enum_field: Status,
    nested_point: Point,
    optional_str: Option<String>,
    optional_int: Option<i64>,
    optional_nested: Option<Point>,
    list_of_nested: Vec<Point>,
    annotated_int32: i32,
    annotated_float32: f32,
    nested_list: Vec<Vec<i64>>,
    dict_str_str: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
struct WideTypes {
    int8_field: i8,
    int16_field: i16,
    int32_field: i32,
    uint8_field: u8,
    uint16_field: u16,
    uint32_field: u32,
    uint64_field: u64,
    float32_field: f32,
    date_field: NaiveDate,
    timestamp_field: NaiveDateTime,
    timestamp_utc_field: DateTime<Utc>,
    time_field: NaiveTime,
    duration_field: TimeDelta,
    decimal_field: Decimal128<20, 4>,
    large_string_field: LargeString,
    large_binary_field: LargeBinary,
    fixed_binary_field: FixedBinary<8>,
}

/// The reference declares `Annotated[T | None, ArrowType(...)]` fields
/// non-nullable (it only inspects the outer annotation) yet writes nulls into
/// them; `nullable = false` reproduces that schema.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
struct ContainerWideTypes {
    list_decimal: Vec<Dec>,
    list_date: Vec<NaiveDate>,
    list_timestamp: Vec<NaiveDateTime>,
    #[arrow(nullable = false)]
    optional_date: Option<NaiveDate>,
    #[arrow(nullable = false)]
    optional_decimal: Option<Dec>,
    #[arrow(nullable = false)]
    optional_timestamp: Option<NaiveDateTime>,
    dict_str_decimal: BTreeMap<String, Dec>,
    frozenset_int: BTreeSet<i64>,
    list_optional_int: Vec<Option<i64>>,
}

#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
struct DeepNested {
    list_of_lists_decimal: Vec<Vec<Dec>>,
    #[arrow(nullable = false)]
    optional_list_date: Option<Vec<NaiveDate>>,
    dict_encoded_string: DictString,
    list_of_dict_encoded: Vec<DictString>,
}

#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
struct EmbeddedArrow {
    batch: RecordBatch,
    schema: Schema,
}

#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
struct RichHeader {
    str_field: String,
    bytes_field: Vec<u8>,
    int_field: i64,
    float_field: f64,
    bool_field: bool,
    list_of_int: Vec<i64>,
    list_of_str: Vec<String>,
    dict_field: BTreeMap<String, i64>,
    enum_field: Status,
    nested_point: Point,
    optional_str: Option<String>,
    optional_int: Option<i64>,
    optional_nested: Option<Point>,
    list_of_nested: Vec<Point>,
    nested_list: Vec<Vec<i64>>,
    annotated_int32: i32,
    annotated_float32: f32,
    dict_str_str: BTreeMap<String, String>,
}

/// Mirrors the reference `build_rich_header(seed)`.
fn rich_header(seed: i64) -> RichHeader {
    let byte = |n: i64| u8::try_from(n % 256).unwrap();
    let f = |n: i64| n as f64;
    RichHeader {
        str_field: format!("seed-{seed}"),
        bytes_field: vec![byte(seed), byte(seed + 1), byte(seed + 2)],
        int_field: seed * 7,
        float_field: f(seed) * 1.5,
        bool_field: seed % 2 == 0,
        list_of_int: vec![seed, seed + 1, seed + 2],
        list_of_str: vec![format!("item-{seed}"), format!("item-{}", seed + 1)],
        dict_field: BTreeMap::from([("a".into(), seed), ("b".into(), seed + 1)]),
        enum_field: [Status::Pending, Status::Active, Status::Closed][(seed % 3) as usize],
        nested_point: Point {
            x: f(seed),
            y: f(seed * 2),
        },
        optional_str: (seed % 2 == 0).then(|| format!("opt-{seed}")),
        optional_int: (seed % 2 == 1).then_some(seed * 3),
        optional_nested: (seed % 3 == 0).then_some(Point { x: f(seed), y: 0.0 }),
        list_of_nested: vec![Point {
            x: f(seed),
            y: f(seed + 1),
        }],
        nested_list: vec![vec![seed, seed + 1], vec![seed + 2]],
        annotated_int32: i32::try_from(seed % 1000).unwrap(),
        annotated_float32: (f(seed) / 3.0) as f32,
        dict_str_str: BTreeMap::from([("key".into(), format!("val-{seed}"))]),
    }
}

fn midnight(y: i32, m: u32, d: u32) -> NaiveDateTime {
    date(y, m, d).and_hms_opt(0, 0, 0).unwrap()
}

/// A dataclass fixture: one row of `T`'s schema, as `serialize_to_bytes()`.
fn check_struct<T: ArrowStruct + PartialEq + Debug>(stem: &str, expected: T) {
    check_struct_with(stem, expected, true);
}

fn check_struct_with<T: ArrowStruct + PartialEq + Debug>(
    stem: &str,
    expected: T,
    byte_equal_values: bool,
) {
    let bytes = fixture(&format!("dc_{stem}.arrows"));
    let (schema, batches) = read_ipc_stream(&bytes).unwrap();
    assert_eq!(batches.len(), 1, "{stem}");
    let batch = &batches[0];

    // Declared schema, including nested field names and nullability.
    assert_eq!(T::schema(), schema, "{stem}: schema");
    assert_eq!(
        T::arrow_type(),
        DataType::Struct(schema.fields().clone()),
        "{stem}"
    );
    assert_eq!(T::column_type(), DataType::Binary, "{stem}");

    // pyarrow → Rust.
    assert_eq!(
        T::from_ipc_bytes(&bytes).unwrap(),
        expected,
        "{stem}: from_ipc_bytes"
    );
    assert_eq!(
        T::from_record_batch(batch, 0).unwrap(),
        expected,
        "{stem}: from_record_batch"
    );

    // Rust → IPC → compare with pyarrow's batch.
    let ours = expected.to_ipc_bytes().unwrap();
    let (our_schema, our_batches) = read_ipc_stream(&ours).unwrap();
    assert_eq!(our_schema, schema, "{stem}: written schema");
    assert_eq!(our_batches.len(), 1, "{stem}");
    if byte_equal_values {
        assert_eq!(our_batches[0], *batch, "{stem}: written batch");
    }
    assert_eq!(
        T::from_ipc_bytes(&ours).unwrap(),
        expected,
        "{stem}: own round trip"
    );

    let record_batch = expected.to_record_batch().unwrap();
    assert_eq!(
        T::from_record_batch(&record_batch, 0).unwrap(),
        expected,
        "{stem}"
    );
    if byte_equal_values {
        assert_eq!(
            batch_row_values(&record_batch, 0).unwrap(),
            batch_row_values(batch, 0).unwrap(),
            "{stem}: to_record_batch values"
        );
    }
    if byte_equal_values && batch.schema() == schema {
        assert_eq!(record_batch, *batch, "{stem}: to_record_batch");
    }

    // As a parameter: a binary column holding the IPC bytes.
    let column = to_column(&expected).unwrap();
    assert_eq!(column.data_type(), &DataType::Binary);
    assert_eq!(
        from_column::<T>(column.as_ref(), 0).unwrap(),
        expected,
        "{stem}: column"
    );

    assert_eq!(
        serialize_schema(&schema),
        schema_message(&bytes),
        "{stem}: schema bytes"
    );
}

#[test]
fn point_and_bounding_box() {
    check_struct("point", Point { x: 1.5, y: -2.0 });
    check_struct(
        "bounding_box",
        BoundingBox {
            top_left: Point { x: 0.0, y: 10.0 },
            bottom_right: Point { x: 5.0, y: 0.0 },
            label: "box".into(),
        },
    );
}

#[test]
fn all_types() {
    check_struct(
        "all_types",
        AllTypes {
            str_field: "hello".into(),
            bytes_field: b"\x00\xffbytes".to_vec(),
            int_field: -42,
            float_field: 3.25,
            bool_field: true,
            list_of_int: vec![1, 2, 3],
            list_of_str: vec!["a".into(), "b".into()],
            dict_field: BTreeMap::from([("one".into(), 1), ("two".into(), 2)]),
            enum_field: Status::Active,
            nested_point: Point { x: 1.0, y: 2.0 },
            optional_str: None,
            optional_int: Some(7),
            optional_nested: None,
            list_of_nested: vec![Point { x: 1.0, y: 2.0 }, Point { x: 3.0, y: 4.0 }],
            annotated_int32: -2_000_000_000,
            annotated_float32: 0.5,
            nested_list: vec![vec![1], vec![], vec![2, 3]],
            dict_str_str: BTreeMap::new(),
        },
    );
}

#[test]
fn wide_types() {
    check_struct(
        "wide_types",
        WideTypes {
            int8_field: -12,
            int16_field: -30000,
            int32_field: 2_000_000_000,
            uint8_field: 200,
            uint16_field: 60000,
            uint32_field: 4_000_000_000,
            uint64_field: 18_000_000_000_000_000_000,
            float32_field: 1.5,
            date_field: date(2026, 4, 25),
            timestamp_field: when(),
            timestamp_utc_field: when().and_utc(),
            time_field: NaiveTime::from_hms_micro_opt(12, 30, 45, 123_456).unwrap(),
            duration_field: TimeDelta::seconds(10) + TimeDelta::microseconds(500),
            decimal_field: dec(123_456_789),
            large_string_field: "wide string".into(),
            large_binary_field: LargeBinary(b"wide bytes".to_vec()),
            fixed_binary_field: FixedBinary(*b"12345678"),
        },
    );
}

#[test]
fn container_wide_types() {
    check_struct(
        "container_wide_types_nulls",
        ContainerWideTypes {
            list_decimal: vec![dec(10_000), dec(25_000), dec(-37_500)],
            list_date: vec![date(2026, 1, 1), date(2026, 4, 25)],
            list_timestamp: vec![midnight(2026, 1, 1), when()],
            optional_date: None,
            optional_decimal: Some(dec(990_000)),
            optional_timestamp: None,
            dict_str_decimal: BTreeMap::from([
                ("a".into(), dec(15_000)),
                ("b".into(), dec(25_000)),
            ]),
            frozenset_int: BTreeSet::from([1, 2, 3]),
            list_optional_int: vec![Some(1), None, Some(3), None, Some(5)],
        },
    );
    check_struct(
        "container_wide_types_present",
        ContainerWideTypes {
            list_decimal: vec![dec(1)],
            list_date: vec![date(1970, 1, 1)],
            list_timestamp: vec![midnight(1970, 1, 1)],
            optional_date: Some(date(2026, 4, 25)),
            optional_decimal: Some(dec(-123_456_789)),
            optional_timestamp: Some(when()),
            dict_str_decimal: BTreeMap::new(),
            frozenset_int: BTreeSet::new(),
            list_optional_int: vec![],
        },
    );
}

/// Python writes nulls into fields it declares non-nullable; arrow-rs's own
/// reader refuses them, ours must not.
#[test]
fn nulls_in_non_nullable_fields_are_tolerated() {
    let bytes = fixture("dc_container_wide_types_nulls.arrows");
    assert!(
        StreamReader::try_new(Cursor::new(&bytes), None)
            .unwrap()
            .next()
            .unwrap()
            .is_err()
    );
    let (schema, batches) = read_ipc_stream(&bytes).unwrap();
    assert!(
        !schema
            .field_with_name("optional_date")
            .unwrap()
            .is_nullable()
    );
    assert!(
        batches[0]
            .schema()
            .field_with_name("optional_date")
            .unwrap()
            .is_nullable()
    );

    // What we write declares the same non-nullable field and carries the null.
    let value = ContainerWideTypes::from_ipc_bytes(&bytes).unwrap();
    let (our_schema, _) = read_ipc_stream(&value.to_ipc_bytes().unwrap()).unwrap();
    assert_eq!(our_schema, schema);
    let batch = value.to_record_batch().unwrap();
    assert!(
        batch
            .schema()
            .field_with_name("optional_date")
            .unwrap()
            .is_nullable()
    );
    assert!(
        !batch
            .schema()
            .field_with_name("list_date")
            .unwrap()
            .is_nullable()
    );
}

#[test]
fn deep_nested() {
    check_struct(
        "deep_nested",
        DeepNested {
            list_of_lists_decimal: vec![vec![dec(10_000), dec(20_000)], vec![dec(35_000)], vec![]],
            optional_list_date: Some(vec![date(2026, 1, 1), date(2026, 4, 25)]),
            dict_encoded_string: "hello".into(),
            list_of_dict_encoded: ["a", "b", "a", "c", "a"].map(DictString::from).to_vec(),
        },
    );
    check_struct(
        "deep_nested_empty",
        DeepNested {
            list_of_lists_decimal: vec![],
            optional_list_date: None,
            dict_encoded_string: "".into(),
            list_of_dict_encoded: vec![],
        },
    );
}

#[test]
fn embedded_arrow() {
    // The nested IPC bytes are arrow-rs's layout, not pyarrow's; their
    // content is compared through the decoded value instead.
    check_struct_with(
        "embedded_arrow",
        EmbeddedArrow {
            batch: embedded_batch(),
            schema: embedded_schema(),
        },
        false,
    );
}

#[test]
fn headers() {
    check_struct(
        "conformance_header",
        ConformanceHeader {
            total_expected: 5,
            description: "five batches".into(),
        },
    );
    check_struct("rich_header_0", rich_header(0));
    check_struct("rich_header_7", rich_header(7));
}

/// Every prefix and many single-byte corruptions of real streams must give
/// an error or a value, never a panic.
#[test]
fn corrupted_ipc_bytes_do_not_panic() {
    let files = [
        "dc_rich_header_7.arrows",
        "dc_deep_nested.arrows",
        "dc_container_wide_types_nulls.arrows",
        "dc_embedded_arrow.arrows",
    ];
    for file in files {
        let bytes = fixture(file);
        for cut in 0..bytes.len() {
            let _ = RichHeader::from_ipc_bytes(&bytes[..cut]);
            let _ = read_ipc_stream(&bytes[..cut]);
        }
        for pos in 0..bytes.len() {
            for replacement in [0x00, 0xff] {
                let mut corrupt = bytes.clone();
                corrupt[pos] = replacement;
                let _ = read_ipc_stream(&corrupt);
                let _ = DeepNested::from_ipc_bytes(&corrupt);
                let _ = vgirpc_wire::types::deserialize_schema(&corrupt);
            }
        }
    }
    assert!(Point::from_ipc_bytes(b"").is_err());
    assert!(Point::from_ipc_bytes(b"not arrow at all").is_err());
    assert!(Point::from_ipc_bytes(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).is_err());
}
