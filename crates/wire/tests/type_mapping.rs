//! The Rust ↔ Arrow type mapping against bytes written by pyarrow.
//!
//! Fixtures come from `tests/fixtures/generate.py` (see its header for how to
//! regenerate them). Each test checks, for one Rust type and value:
//! - the declared Arrow type/schema equals the one pyarrow wrote;
//! - decoding pyarrow's row yields the expected Rust value;
//! - encoding the Rust value gives a batch equal to pyarrow's, also after a
//!   trip through IPC bytes;
//! - our schema serialization is byte-identical to pyarrow's schema message.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Debug;
use std::io::Cursor;
use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_ipc::reader::StreamReader;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use vgirpc_macros::{ArrowEnum, ArrowStruct};
use vgirpc_wire::WireError;
use vgirpc_wire::types::{
    ArrowStruct, ArrowValue, Decimal128, DictString, FixedBinary, LargeBinary, LargeString,
    column_field, from_column, read_ipc_stream, serialize_schema, to_column, write_ipc_stream,
};
use vgirpc_wire::value::{Value, array_value, batch_row_values, values_to_array};

// ---------------------------------------------------------------------------
// The conformance dataclasses (vgi_rpc/conformance/_types.py) in Rust
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, ArrowEnum)]
#[arrow(crate = "vgirpc_wire", rename_all = "SCREAMING_SNAKE_CASE")]
enum Status {
    Pending,
    Active,
    Closed,
}

#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
struct Point {
    x: f64,
    y: f64,
}

#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
struct BoundingBox {
    top_left: Point,
    bottom_right: Point,
    label: String,
}

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

type Dec = Decimal128<20, 4>;

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
struct ConformanceHeader {
    total_expected: i64,
    description: String,
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

fn when() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 4, 25)
        .unwrap()
        .and_hms_micro_opt(12, 0, 0, 123_456)
        .unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn midnight(y: i32, m: u32, d: u32) -> NaiveDateTime {
    date(y, m, d).and_hms_opt(0, 0, 0).unwrap()
}

fn dec(unscaled: i128) -> Dec {
    Decimal128(unscaled)
}

fn embedded_batch() -> RecordBatch {
    RecordBatch::try_from_iter_with_nullable(vec![
        (
            "a",
            Arc::new(Int64Array::from(vec![1, 2, 3])) as Arc<dyn Array>,
            true,
        ),
        ("b", Arc::new(StringArray::from(vec!["x", "y", "z"])), true),
    ])
    .unwrap()
}

fn embedded_schema() -> Schema {
    Schema::new(vec![
        Field::new("x", DataType::Int32, true),
        Field::new("y", DataType::Utf8, true),
    ])
}

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The schema message at the start of an IPC stream, framing included.
fn schema_message(stream: &[u8]) -> &[u8] {
    assert_eq!(stream[..4], [0xff; 4]);
    let len = i32::from_le_bytes(stream[4..8].try_into().unwrap());
    &stream[..8 + usize::try_from(len).unwrap()]
}

/// Reads an IPC stream with arrow-rs's own reader: one schema, one batch.
fn read_strict(bytes: &[u8]) -> (SchemaRef, RecordBatch) {
    let reader = StreamReader::try_new(Cursor::new(bytes), None).unwrap();
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 1);
    (schema, batches.into_iter().next().unwrap())
}

/// A single `value` column of type `T`, compared through IPC as well.
fn check_column<T: ArrowValue + PartialEq + Debug>(stem: &str, expected: T) {
    check_column_with(stem, expected, true);
}

fn check_column_with<T: ArrowValue + PartialEq + Debug>(
    stem: &str,
    expected: T,
    byte_equal_values: bool,
) {
    let bytes = fixture(&format!("col_{stem}.arrows"));
    let (schema, batch) = read_strict(&bytes);
    assert_eq!(batch.num_rows(), 1, "{stem}");
    assert_eq!(schema.fields().len(), 1, "{stem}");

    // Declared type.
    assert_eq!(
        *schema.field(0),
        column_field::<T>("value"),
        "{stem}: field"
    );

    // pyarrow → Rust.
    let decoded: T = from_column(batch.column(0).as_ref(), 0).unwrap();
    assert_eq!(decoded, expected, "{stem}: decoded value");

    // Rust → Arrow → Rust.
    let column = to_column(&expected).unwrap();
    assert_eq!(
        from_column::<T>(column.as_ref(), 0).unwrap(),
        expected,
        "{stem}: round trip"
    );
    let ours = RecordBatch::try_new(schema.clone(), vec![column]).unwrap();
    let (our_schema, reread) = read_strict(&write_ipc_stream(&schema, &ours).unwrap());
    assert_eq!(our_schema, schema, "{stem}: schema after ipc");
    assert_eq!(
        from_column::<T>(reread.column(0).as_ref(), 0).unwrap(),
        expected,
        "{stem}"
    );
    if byte_equal_values {
        // Values that embed IPC bytes can differ in layout from pyarrow's
        // while meaning the same; everything else must be equal as arrays.
        assert_eq!(ours, batch, "{stem}: encoded batch");
        assert_eq!(reread, batch, "{stem}: encoded batch after ipc");
    }

    // Schema serialization, byte for byte.
    assert_eq!(
        serialize_schema(&schema),
        schema_message(&bytes),
        "{stem}: schema bytes"
    );
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

// ---------------------------------------------------------------------------
// Columns
// ---------------------------------------------------------------------------

#[test]
fn scalar_columns() {
    check_column("bool", true);
    check_column("int8", i8::MIN);
    check_column("int16", i16::MIN);
    check_column("int32", i32::MAX);
    check_column("int64", i64::MIN);
    check_column("uint8", u8::MAX);
    check_column("uint16", u16::MAX);
    check_column("uint32", u32::MAX);
    check_column("uint64_above_i64_max", 18_000_000_000_000_000_000u64);
    check_column("float32", 1.5f32);
    check_column("float64", -2.25f64);
    check_column("utf8", String::from("héllo 🌍"));
    check_column("utf8_empty", String::new());
    check_column("large_utf8", LargeString::from("widewidewide"));
    check_column("binary", vec![0u8, 1, 0xff]);
    check_column(
        "large_binary",
        LargeBinary(b"\x00\x01\x02\x03\x00\x01\x02\x03".to_vec()),
    );
    check_column("fixed_binary8", FixedBinary(*b"12345678"));
    check_column("dict_string", DictString::from("hello"));
    check_column("enum_status", Status::Active);
}

#[test]
fn decimal_columns() {
    check_column("decimal_20_4", dec(123_456_789));
    check_column("decimal_20_4_negative", dec(-999_999_999_999_999_999));
    check_column("decimal_38_0", Decimal128::<38, 0>(-(10i128.pow(38) - 1)));
}

#[test]
fn temporal_columns() {
    check_column("date32", date(2026, 4, 25));
    check_column("date32_before_epoch", date(1900, 1, 1));
    check_column("timestamp_us", when());
    check_column("timestamp_us_utc", when().and_utc());
    check_column(
        "time64_us",
        NaiveTime::from_hms_micro_opt(12, 30, 45, 123_456).unwrap(),
    );
    check_column("duration_us", TimeDelta::microseconds(10_000_500));
    check_column(
        "duration_us_negative",
        TimeDelta::microseconds(-86_400_000_000 + 1),
    );
}

#[test]
fn optional_columns() {
    check_column("opt_int64_none", None::<i64>);
    check_column("opt_int64_some", Some(42i64));
    check_column("opt_utf8_none", None::<String>);
    check_column("opt_utf8_some", Some(String::from("present")));
    check_column("opt_timestamp_utc_some", Some(when().and_utc()));
    check_column_with("opt_dataclass_point_none", None::<Point>, true);
}

#[test]
fn list_columns() {
    check_column("list_int64", vec![1i64, 2, 3]);
    check_column("list_int64_empty", Vec::<i64>::new());
    check_column("list_opt_int64", vec![Some(1i64), None, Some(3)]);
    check_column(
        "list_utf8",
        vec![String::from("a"), String::new(), String::from("c")],
    );
    check_column("list_list_int64", vec![vec![1i64, 2], vec![], vec![3]]);
    check_column("list_binary", vec![b"ab".to_vec(), Vec::new()]);
    // `Vec<u8>` is binary, but a list of `Option<u8>` stays a list of uint8.
    check_column("list_uint8", vec![Some(1u8), Some(2), Some(255)]);
    check_column(
        "list_dict_string",
        vec![
            DictString::from("a"),
            DictString::from("b"),
            DictString::from("a"),
        ],
    );
    check_column("set_int64", BTreeSet::from([3i64, 1, 2]));
}

#[test]
fn map_columns() {
    check_column(
        "map_utf8_int64",
        BTreeMap::from([(String::from("a"), 1i64), (String::from("b"), 2)]),
    );
    check_column("map_utf8_int64_empty", BTreeMap::<String, i64>::new());
    check_column(
        "map_int64_opt_utf8",
        BTreeMap::from([(1i64, Some(String::from("one"))), (2, None)]),
    );
    check_column(
        "map_utf8_list_int64",
        BTreeMap::from([(String::from("k"), vec![1i64, 2])]),
    );
}

#[test]
fn hash_containers_share_the_layout() {
    assert_eq!(
        HashMap::<String, i64>::arrow_type(),
        BTreeMap::<String, i64>::arrow_type()
    );
    assert_eq!(HashSet::<i64>::arrow_type(), Vec::<i64>::arrow_type());
    let map: HashMap<String, i64> = HashMap::from([("a".into(), 1), ("b".into(), 2)]);
    let column = to_column(&map).unwrap();
    assert_eq!(
        from_column::<HashMap<String, i64>>(column.as_ref(), 0).unwrap(),
        map
    );
    let set: HashSet<i64> = HashSet::from([5, 6]);
    let column = to_column(&set).unwrap();
    assert_eq!(
        from_column::<HashSet<i64>>(column.as_ref(), 0).unwrap(),
        set
    );
}

/// Nested structs are Arrow structs (not IPC bytes) inside containers and
/// other structs.
#[test]
fn nested_struct_columns() {
    let p = |x, y| Point { x, y };
    assert_eq!(Vec::<Point>::column_type(), Vec::<Point>::arrow_type());
    check_column_nested("struct_point", p(0.5, -0.5));
    check_column("list_point", vec![p(1.0, 2.0), p(3.0, 4.0)]);
    check_column("list_opt_point", vec![Some(p(1.0, 2.0)), None]);
    check_column("opt_point_none", NestedOnly(None::<Point>));
    check_column_nested(
        "struct_bounding_box",
        BoundingBox {
            top_left: p(0.0, 10.0),
            bottom_right: p(5.0, 0.0),
            label: "box".into(),
        },
    );
}

/// A struct used as a plain Arrow `struct` column rather than IPC bytes.
#[derive(Debug, PartialEq)]
struct NestedOnly<T>(T);

impl<T: ArrowValue> ArrowValue for NestedOnly<T> {
    fn arrow_type() -> DataType {
        T::arrow_type()
    }
    fn nullable() -> bool {
        T::nullable()
    }
    fn to_value(&self) -> Value {
        self.0.to_value()
    }
    fn from_value(value: Value) -> vgirpc_wire::Result<Self> {
        T::from_value(value).map(Self)
    }
}

fn check_column_nested<T: ArrowValue + PartialEq + Debug>(stem: &str, expected: T) {
    check_column(stem, NestedOnly(expected));
}

#[test]
fn struct_as_parameter_column_is_ipc_in_binary() {
    let point = Point { x: 1.5, y: -2.0 };
    check_column_with("dataclass_point", point.clone(), false);
    // The binary value holds exactly what Python's serialize_to_bytes() gave.
    let (_, batch) = read_strict(&fixture("col_dataclass_point.arrows"));
    let Value::Bytes(inner) = array_value(batch.column(0).as_ref(), 0).unwrap() else {
        panic!("expected bytes");
    };
    assert_eq!(inner, fixture("dc_point.arrows"));
    assert_eq!(Point::from_ipc_bytes(&inner).unwrap(), point);
}

#[test]
fn embedded_arrow_columns() {
    check_column_with("record_batch", embedded_batch(), false);
    // Schemas serialize byte-identically, so the whole batch matches.
    check_column("schema", embedded_schema());
    check_column("schema", Arc::new(embedded_schema()));
}

// ---------------------------------------------------------------------------
// Dataclasses
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Derive details
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
struct Renamed {
    #[arrow(rename = "type")]
    kind: String,
    r#match: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
struct Generic<T> {
    inner: T,
    many: Vec<T>,
}

#[derive(Debug, Clone, Copy, PartialEq, ArrowEnum)]
#[arrow(crate = "vgirpc_wire")]
enum Plain {
    Alpha,
    #[arrow(rename = "b")]
    Beta,
}

#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
struct Empty {}

#[test]
fn derive_attributes() {
    let schema = Renamed::schema();
    assert_eq!(schema.field(0), &Field::new("type", DataType::Utf8, false));
    assert_eq!(schema.field(1), &Field::new("match", DataType::Int32, true));
    let value = Renamed {
        kind: "k".into(),
        r#match: None,
    };
    assert_eq!(
        value.to_value(),
        Value::Struct(vec![
            ("type".into(), Value::Str("k".into())),
            ("match".into(), Value::Null)
        ])
    );
    assert_eq!(
        Renamed::from_ipc_bytes(&value.to_ipc_bytes().unwrap()).unwrap(),
        value
    );
    // A missing nullable child reads as None; a missing required one fails.
    assert_eq!(
        Renamed::from_value(Value::Struct(vec![("type".into(), Value::Str("k".into()))])).unwrap(),
        value
    );

    assert_eq!(
        Generic::<u16>::arrow_type(),
        DataType::Struct(
            vec![
                Field::new("inner", DataType::UInt16, false),
                Field::new(
                    "many",
                    DataType::List(Arc::new(Field::new("item", DataType::UInt16, true))),
                    false
                ),
            ]
            .into()
        )
    );
    let g = Generic {
        inner: 1u16,
        many: vec![2, 3],
    };
    assert_eq!(
        Generic::<u16>::from_ipc_bytes(&g.to_ipc_bytes().unwrap()).unwrap(),
        g
    );

    assert_eq!(Plain::Alpha.to_value(), Value::Str("Alpha".into()));
    assert_eq!(Plain::Beta.to_value(), Value::Str("b".into()));
    assert_eq!(
        Plain::from_value(Value::Str("b".into())).unwrap(),
        Plain::Beta
    );
    assert_eq!(
        Plain::arrow_type(),
        DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8))
    );
    assert_eq!(Status::Pending.to_value(), Value::Str("PENDING".into()));

    assert_eq!(Empty::schema().fields().len(), 0);
    assert_eq!(
        Empty::from_ipc_bytes(&Empty {}.to_ipc_bytes().unwrap()).unwrap(),
        Empty {}
    );
}

#[test]
fn decimal_display() {
    assert_eq!(Decimal128::<20, 4>(123_456_789).to_string(), "12345.6789");
    assert_eq!(
        Decimal128::<20, 4>(-999_999_999_999_999_999).to_string(),
        "-99999999999999.9999"
    );
    assert_eq!(Decimal128::<20, 4>(-1).to_string(), "-0.0001");
    assert_eq!(Decimal128::<20, 4>(0).to_string(), "0.0000");
    assert_eq!(Decimal128::<10, 0>(-42).to_string(), "-42");
    assert_eq!(Decimal128::<10, -2>(12).to_string(), "1200");
    assert_eq!(Decimal128::<10, -2>(0).to_string(), "0");
}

// ---------------------------------------------------------------------------
// Value ↔ array, many rows
// ---------------------------------------------------------------------------

#[test]
fn multi_row_round_trips_with_nulls() {
    let point = DataType::Struct(
        vec![
            Field::new("x", DataType::Float64, false),
            Field::new("y", DataType::Float64, true),
        ]
        .into(),
    );
    let s = |v: &str| Value::Str(v.into());
    let cases: Vec<(DataType, Vec<Value>)> = vec![
        (
            DataType::Boolean,
            vec![Value::Bool(true), Value::Null, Value::Bool(false)],
        ),
        (
            DataType::UInt64,
            vec![Value::UInt(u64::MAX), Value::Null, Value::UInt(0)],
        ),
        (DataType::Int8, vec![Value::Int(-128), Value::Null]),
        (DataType::Float32, vec![Value::Float(0.25), Value::Null]),
        (DataType::LargeUtf8, vec![s("a"), Value::Null, s("")]),
        (
            DataType::LargeBinary,
            vec![Value::Bytes(vec![1]), Value::Null],
        ),
        (
            DataType::FixedSizeBinary(2),
            vec![Value::Bytes(vec![1, 2]), Value::Null],
        ),
        (
            DataType::Decimal128(5, 2),
            vec![Value::Decimal(-99_999), Value::Null],
        ),
        (DataType::Date32, vec![Value::Date32(-1), Value::Null]),
        (
            DataType::Time64(TimeUnit::Nanosecond),
            vec![Value::Time64(1), Value::Null],
        ),
        (
            DataType::Timestamp(TimeUnit::Second, Some("Europe/Paris".into())),
            vec![Value::Timestamp(-5), Value::Null],
        ),
        (
            DataType::Duration(TimeUnit::Millisecond),
            vec![Value::Duration(7), Value::Null],
        ),
        (
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            vec![s("x"), Value::Null, s("y"), s("x")],
        ),
        (
            DataType::LargeList(Arc::new(Field::new("item", DataType::Int64, true))),
            vec![
                Value::List(vec![Value::Int(1), Value::Null]),
                Value::Null,
                Value::List(vec![]),
            ],
        ),
        (
            Vec::<Option<Point>>::arrow_type(),
            vec![
                Value::List(vec![Value::Null, Point { x: 1.0, y: 2.0 }.to_value()]),
                Value::Null,
            ],
        ),
        (
            BTreeMap::<String, Option<String>>::arrow_type(),
            vec![
                Value::Map(vec![(s("k"), Value::Null), (s("j"), s("v"))]),
                Value::Null,
                Value::Map(vec![]),
            ],
        ),
        (
            point.clone(),
            vec![
                Value::Struct(vec![
                    ("x".into(), Value::Float(1.0)),
                    ("y".into(), Value::Null),
                ]),
                // A null struct may leave its non-nullable children unset.
                Value::Null,
            ],
        ),
    ];
    for (data_type, values) in cases {
        let array = values_to_array(&data_type, &values).unwrap();
        assert_eq!(array.data_type(), &data_type);
        assert_eq!(array.len(), values.len());
        for (row, expected) in values.iter().enumerate() {
            assert_eq!(
                &array_value(array.as_ref(), row).unwrap(),
                expected,
                "{data_type} row {row}"
            );
        }
    }
}

#[test]
fn struct_children_are_matched_by_name() {
    let data_type = Point::arrow_type();
    let shuffled = Value::Struct(vec![
        ("y".into(), Value::Float(2.0)),
        ("x".into(), Value::Float(1.0)),
    ]);
    let array = values_to_array(&data_type, &[shuffled]).unwrap();
    assert_eq!(
        Point::from_value(array_value(array.as_ref(), 0).unwrap()).unwrap(),
        Point { x: 1.0, y: 2.0 }
    );
}

// ---------------------------------------------------------------------------
// Rejections: clear errors, never a panic
// ---------------------------------------------------------------------------

#[test]
fn out_of_range_integers_are_rejected() {
    assert!(matches!(
        i8::from_value(Value::Int(200)),
        Err(WireError::OutOfRange(_))
    ));
    assert!(matches!(
        u8::from_value(Value::Int(-1)),
        Err(WireError::OutOfRange(_))
    ));
    assert!(matches!(
        u64::from_value(Value::Int(-1)),
        Err(WireError::OutOfRange(_))
    ));
    assert!(matches!(
        i64::from_value(Value::UInt(u64::MAX)),
        Err(WireError::OutOfRange(_))
    ));
    assert_eq!(i64::from_value(Value::UInt(5)).unwrap(), 5);
    assert_eq!(u16::from_value(Value::Int(65535)).unwrap(), 65535);
    for (data_type, value) in [
        (DataType::Int8, Value::Int(128)),
        (DataType::UInt8, Value::Int(-1)),
        (DataType::UInt32, Value::UInt(u64::from(u32::MAX) + 1)),
        (DataType::Int64, Value::UInt(u64::MAX)),
        (DataType::Decimal128(5, 2), Value::Decimal(100_000)),
    ] {
        let err = values_to_array(&data_type, &[value]).unwrap_err();
        assert!(
            matches!(err, WireError::OutOfRange(_)),
            "{data_type}: {err}"
        );
    }
    assert!(matches!(
        Decimal128::<5, 2>::from_value(Value::Decimal(-100_000)),
        Err(WireError::OutOfRange(_))
    ));
}

#[test]
fn wrong_value_variants_are_type_mismatches() {
    fn mismatch<T: ArrowValue + Debug>(value: Value) {
        let err = T::from_value(value.clone()).unwrap_err();
        assert!(
            matches!(
                err,
                WireError::TypeMismatch { .. } | WireError::UnexpectedNull(_)
            ),
            "{} from {value:?}: {err}",
            std::any::type_name::<T>()
        );
    }
    mismatch::<bool>(Value::Int(1));
    mismatch::<bool>(Value::Null);
    mismatch::<i64>(Value::Float(1.0));
    mismatch::<f64>(Value::Int(1));
    mismatch::<String>(Value::Bytes(vec![]));
    mismatch::<Vec<u8>>(Value::Str("x".into()));
    mismatch::<Vec<i64>>(Value::Bytes(vec![1]));
    mismatch::<Vec<i64>>(Value::List(vec![Value::Str("x".into())]));
    mismatch::<BTreeMap<String, i64>>(Value::List(vec![]));
    mismatch::<BTreeSet<i64>>(Value::Map(vec![]));
    mismatch::<NaiveDate>(Value::Timestamp(0));
    mismatch::<NaiveDateTime>(Value::Date32(0));
    mismatch::<DateTime<Utc>>(Value::Str("2026-01-01".into()));
    mismatch::<NaiveTime>(Value::Duration(0));
    mismatch::<TimeDelta>(Value::Time64(0));
    mismatch::<LargeString>(Value::Bytes(vec![]));
    mismatch::<DictString>(Value::Int(0));
    mismatch::<Dec>(Value::Int(1));
    mismatch::<Status>(Value::Int(1));
    mismatch::<Status>(Value::Null);
    mismatch::<Point>(Value::List(vec![]));
    mismatch::<Point>(Value::Struct(vec![
        ("x".into(), Value::Float(1.0)),
        ("y".into(), Value::Null),
    ]));
    mismatch::<RecordBatch>(Value::Str("x".into()));
    mismatch::<Schema>(Value::Int(0));

    for (data_type, value) in [
        (DataType::Utf8, Value::Int(1)),
        (DataType::Boolean, Value::Str("true".into())),
        (DataType::Float64, Value::Int(1)),
        (Point::arrow_type(), Value::List(vec![])),
        (Vec::<i64>::arrow_type(), Value::Int(1)),
        (BTreeMap::<String, i64>::arrow_type(), Value::List(vec![])),
    ] {
        let err = values_to_array(&data_type, &[value]).unwrap_err();
        assert!(
            matches!(err, WireError::TypeMismatch { .. }),
            "{data_type}: {err}"
        );
    }
}

#[test]
fn unknown_enum_variant_is_rejected() {
    match Status::from_value(Value::Str("BOGUS".into())) {
        Err(WireError::UnknownVariant { enum_name, name }) => {
            assert_eq!(enum_name, "Status");
            assert_eq!(name, "BOGUS");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Wire names are matched exactly: the Rust ident is not accepted.
    assert!(matches!(
        Status::from_value(Value::Str("Active".into())),
        Err(WireError::UnknownVariant { .. })
    ));
    assert!(matches!(
        Plain::from_value(Value::Str("Beta".into())),
        Err(WireError::UnknownVariant { .. })
    ));
}

#[test]
fn fixed_binary_length_is_checked() {
    assert!(matches!(
        FixedBinary::<8>::from_value(Value::Bytes(vec![1, 2, 3])),
        Err(WireError::OutOfRange(_))
    ));
    assert!(matches!(
        values_to_array(&DataType::FixedSizeBinary(8), &[Value::Bytes(vec![0; 9])]),
        Err(WireError::OutOfRange(_))
    ));
    assert!(FixedBinary::<4>::try_from(&b"abcd"[..]).is_ok());
    assert!(FixedBinary::<4>::try_from(&b"abc"[..]).is_err());
}

#[test]
fn temporal_ranges_are_checked() {
    assert!(matches!(
        NaiveTime::from_value(Value::Time64(86_400_000_000)),
        Err(WireError::OutOfRange(_))
    ));
    assert!(matches!(
        NaiveTime::from_value(Value::Time64(-1)),
        Err(WireError::OutOfRange(_))
    ));
    assert!(matches!(
        NaiveDate::from_value(Value::Date32(i32::MAX)),
        Err(WireError::OutOfRange(_))
    ));
    assert!(matches!(
        NaiveDateTime::from_value(Value::Timestamp(i64::MAX)),
        Err(WireError::OutOfRange(_))
    ));
}

#[test]
fn struct_field_errors() {
    assert!(matches!(
        Point::from_value(Value::Struct(vec![("x".into(), Value::Float(1.0))])),
        Err(WireError::MissingField(name)) if name == "Point.y"
    ));
    // A batch of another struct's schema lacks the fields.
    let header = ConformanceHeader {
        total_expected: 1,
        description: "d".into(),
    };
    assert!(matches!(
        Point::from_ipc_bytes(&header.to_ipc_bytes().unwrap()),
        Err(WireError::MissingField(_))
    ));
    // Two rows where one is expected.
    let two_rows = RecordBatch::try_new(
        Point::schema(),
        vec![
            values_to_array(&DataType::Float64, &[Value::Float(1.0), Value::Float(2.0)]).unwrap(),
            values_to_array(&DataType::Float64, &[Value::Float(1.0), Value::Float(2.0)]).unwrap(),
        ],
    )
    .unwrap();
    let bytes = write_ipc_stream(&Point::schema(), &two_rows).unwrap();
    assert!(matches!(
        Point::from_ipc_bytes(&bytes),
        Err(WireError::Protocol(_))
    ));
    assert_eq!(
        Point::from_record_batch(&two_rows, 1).unwrap(),
        Point { x: 2.0, y: 2.0 }
    );
    assert!(matches!(
        Point::from_record_batch(&two_rows, 2),
        Err(WireError::OutOfRange(_))
    ));
    assert!(matches!(
        array_value(two_rows.column(0).as_ref(), 5),
        Err(WireError::OutOfRange(_))
    ));
    // Writing a batch under a schema of another shape is refused.
    assert!(write_ipc_stream(&ConformanceHeader::schema(), &two_rows).is_err());
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

#[test]
fn rows_of_a_struct_make_one_batch_and_come_back() {
    let points = [
        Point { x: 1.0, y: 2.0 },
        Point { x: -3.5, y: 0.0 },
        Point { x: 7.0, y: 8.25 },
    ];
    let batch = Point::rows_to_record_batch(&points).unwrap();
    assert_eq!(batch.num_rows(), 3);
    assert_eq!(batch.schema(), Point::schema());
    assert_eq!(Point::rows_from_record_batch(&batch).unwrap(), points);

    let none = Point::rows_to_record_batch(&[]).unwrap();
    assert_eq!((none.num_rows(), none.num_columns()), (0, 2));
    assert!(Point::rows_from_record_batch(&none).unwrap().is_empty());
}
