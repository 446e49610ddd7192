//! Options, lists, sets and maps against the columns pyarrow wrote.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod columns;
    pub(crate) mod dates;
    pub(crate) mod fixtures;
    pub(crate) mod point;
}

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use common::columns::{check_column, check_column_with};
use common::dates::when;
use common::point::Point;
use vgirpc_wire::types::{ArrowValue, DictString, from_column, to_column};

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
