//! Booleans, integers, floats, strings, binaries, decimals and enums against
//! the columns pyarrow wrote, and the values they refuse.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod columns;
    pub(crate) mod decimal;
    pub(crate) mod fixtures;
    pub(crate) mod status;
}

use arrow_schema::DataType;
use common::columns::check_column;
use common::decimal::dec;
use common::status::Status;
use vgirpc_wire::WireError;
use vgirpc_wire::types::{
    ArrowValue, Decimal128, DictString, FixedBinary, LargeBinary, LargeString,
};
use vgirpc_wire::value::{Value, values_to_array};

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
