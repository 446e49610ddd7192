//! The records, enum and header types of the conformance service, mirroring
//! the reference's `vgi_rpc/conformance/_types.py` field for field.

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use vgirpc::{
    ArrowEnum, ArrowStruct, Decimal128, DictString, FixedBinary, LargeBinary, LargeString, RpcError,
};

/// A `decimal128(20, 4)` value.
pub type Dec = Decimal128<20, 4>;

/// Status enum; travels as the member name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ArrowEnum)]
#[arrow(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Not started.
    Pending,
    /// Running.
    Active,
    /// Done.
    Closed,
}

/// A 2D point.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// A bounding box of two nested points.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
pub struct BoundingBox {
    pub top_left: Point,
    pub bottom_right: Point,
    pub label: String,
}

/// Every container shape of the type mapping.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
pub struct AllTypes {
    pub str_field: String,
    pub bytes_field: Vec<u8>,
    pub int_field: i64,
    pub float_field: f64,
    pub bool_field: bool,
    pub list_of_int: Vec<i64>,
    pub list_of_str: Vec<String>,
    pub dict_field: BTreeMap<String, i64>,
    pub enum_field: Status,
    pub nested_point: Point,
    pub optional_str: Option<String>,
    pub optional_int: Option<i64>,
    pub optional_nested: Option<Point>,
    pub list_of_nested: Vec<Point>,
    pub annotated_int32: i32,
    pub annotated_float32: f32,
    pub nested_list: Vec<Vec<i64>>,
    pub dict_str_str: BTreeMap<String, String>,
}

/// Every primitive Arrow width.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
pub struct WideTypes {
    pub int8_field: i8,
    pub int16_field: i16,
    pub int32_field: i32,
    pub uint8_field: u8,
    pub uint16_field: u16,
    pub uint32_field: u32,
    pub uint64_field: u64,
    pub float32_field: f32,
    pub date_field: NaiveDate,
    pub timestamp_field: NaiveDateTime,
    pub timestamp_utc_field: DateTime<Utc>,
    pub time_field: NaiveTime,
    pub duration_field: TimeDelta,
    pub decimal_field: Dec,
    pub large_string_field: LargeString,
    pub large_binary_field: LargeBinary,
    pub fixed_binary_field: FixedBinary<8>,
}

/// Wide types inside containers.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
pub struct ContainerWideTypes {
    pub list_decimal: Vec<Dec>,
    pub list_date: Vec<NaiveDate>,
    pub list_timestamp: Vec<NaiveDateTime>,
    /// Declared non-nullable by the reference despite being optional.
    #[arrow(nullable = false)]
    pub optional_date: Option<NaiveDate>,
    /// Declared non-nullable by the reference despite being optional.
    #[arrow(nullable = false)]
    pub optional_decimal: Option<Dec>,
    /// Declared non-nullable by the reference despite being optional.
    #[arrow(nullable = false)]
    pub optional_timestamp: Option<NaiveDateTime>,
    pub dict_str_decimal: BTreeMap<String, Dec>,
    pub frozenset_int: BTreeSet<i64>,
    pub list_optional_int: Vec<Option<i64>>,
}

/// Deep nesting and dictionary-encoded strings.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
pub struct DeepNested {
    pub list_of_lists_decimal: Vec<Vec<Dec>>,
    /// Declared non-nullable by the reference despite being optional.
    #[arrow(nullable = false)]
    pub optional_list_date: Option<Vec<NaiveDate>>,
    pub dict_encoded_string: DictString,
    pub list_of_dict_encoded: Vec<DictString>,
}

/// An Arrow batch and schema carried as nested IPC.
#[derive(Debug, Clone, ArrowStruct)]
pub struct EmbeddedArrow {
    pub batch: RecordBatch,
    pub schema: Schema,
}

/// Header of the conformance header streams.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
pub struct ConformanceHeader {
    pub total_expected: i64,
    pub description: String,
}

/// A header exercising every type mapping, derived from a seed.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
pub struct RichHeader {
    pub str_field: String,
    pub bytes_field: Vec<u8>,
    pub int_field: i64,
    pub float_field: f64,
    pub bool_field: bool,
    pub list_of_int: Vec<i64>,
    pub list_of_str: Vec<String>,
    pub dict_field: BTreeMap<String, i64>,
    pub enum_field: Status,
    pub nested_point: Point,
    pub optional_str: Option<String>,
    pub optional_int: Option<i64>,
    pub optional_nested: Option<Point>,
    pub list_of_nested: Vec<Point>,
    pub nested_list: Vec<Vec<i64>>,
    pub annotated_int32: i32,
    pub annotated_float32: f32,
    pub dict_str_str: BTreeMap<String, String>,
}

impl RichHeader {
    /// The header every port derives from `seed`, value for value; a
    /// seed whose derived values do not fit in 64 bits is an
    /// `OverflowError`, as Python's integers meeting an int64 column are.
    pub fn from_seed(seed: i64) -> Result<Self, RpcError> {
        if seed.checked_mul(7).is_none() {
            return Err(RpcError::new(
                "OverflowError",
                format!("seed {seed} is too large: seed * 7 does not fit in an int64"),
            ));
        }
        let cycle = [Status::Pending, Status::Active, Status::Closed];
        let byte = |offset: i64| (seed + offset).rem_euclid(256) as u8;
        Ok(Self {
            str_field: format!("seed-{seed}"),
            bytes_field: vec![byte(0), byte(1), byte(2)],
            int_field: seed * 7,
            float_field: seed as f64 * 1.5,
            bool_field: seed % 2 == 0,
            list_of_int: vec![seed, seed + 1, seed + 2],
            list_of_str: vec![format!("item-{seed}"), format!("item-{}", seed + 1)],
            dict_field: BTreeMap::from([("a".to_owned(), seed), ("b".to_owned(), seed + 1)]),
            enum_field: cycle[seed.rem_euclid(3) as usize],
            nested_point: Point {
                x: seed as f64,
                y: (seed * 2) as f64,
            },
            optional_str: (seed % 2 == 0).then(|| format!("opt-{seed}")),
            optional_int: (seed.rem_euclid(2) == 1).then_some(seed * 3),
            optional_nested: (seed.rem_euclid(3) == 0).then_some(Point {
                x: seed as f64,
                y: 0.0,
            }),
            list_of_nested: vec![Point {
                x: seed as f64,
                y: (seed + 1) as f64,
            }],
            nested_list: vec![vec![seed, seed + 1], vec![seed + 2]],
            annotated_int32: seed.rem_euclid(1000) as i32,
            annotated_float32: (seed as f64 / 3.0) as f32,
            dict_str_str: BTreeMap::from([("key".to_owned(), format!("val-{seed}"))]),
        })
    }
}
