//! Structs as Arrow struct columns inside other values, as IPC bytes in a
//! parameter column, and as the rows of a batch.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod bounding_box;
    pub(crate) mod columns;
    pub(crate) mod conformance_header;
    pub(crate) mod fixtures;
    pub(crate) mod point;
}

use std::fmt::Debug;

use arrow_array::RecordBatch;
use arrow_schema::DataType;
use common::bounding_box::BoundingBox;
use common::columns::{check_column, check_column_with, read_strict};
use common::conformance_header::ConformanceHeader;
use common::fixtures::fixture;
use common::point::Point;
use vgirpc_wire::WireError;
use vgirpc_wire::types::{ArrowStruct, ArrowValue, write_ipc_stream};
use vgirpc_wire::value::{Value, array_value, values_to_array};

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
