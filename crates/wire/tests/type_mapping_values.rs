//! Rust values and the dynamic `Value`: derived structs and enums, many
//! rows with nulls in every family, and the values each type refuses.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod point;
    pub(crate) mod status;
}

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use common::point::Point;
use common::status::Status;
use vgirpc_macros::{ArrowEnum, ArrowStruct};
use vgirpc_wire::WireError;
use vgirpc_wire::types::{ArrowStruct, ArrowValue, Decimal128, DictString, LargeString};
use vgirpc_wire::value::{Value, array_value, values_to_array};

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
    mismatch::<Decimal128<20, 4>>(Value::Int(1));
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
