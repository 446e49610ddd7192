//! The log-shipping configurations in docs/access-log/ fit the records we
//! write. Neither Vector nor Fluent Bit installs from the registries this
//! project uses, so the test reads what each configuration expects (fields,
//! their types, the time format, the line limit, the filter) and checks it
//! against records a server writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chrono::NaiveDateTime;
use serde_json::Value;
use vgirpc::transport::Call;
use vgirpc::wire::request::Request;
use vgirpc::{AuthContext, Peer, RpcError, Server, TransportKind};
use vgirpc_access_log::{AccessLog, AccessLogConfig};

/// Service used by these tests.
#[vgirpc::service]
pub trait Logged {
    /// Echo.
    fn echo(&self, value: String) -> Result<String, RpcError>;
    /// Always fails.
    fn fail(&self, value: String) -> Result<String, RpcError>;
}

struct Impl;

impl Logged for Impl {
    fn echo(&self, value: String) -> Result<String, RpcError> {
        Ok(value)
    }
    fn fail(&self, value: String) -> Result<String, RpcError> {
        Err(RpcError::value_error(format!("bad {value}")))
    }
}

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/access-log")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(docs().join(name)).unwrap()
}

/// Records of a successful, a failed and an authenticated call.
fn records(name: &str) -> Vec<serde_json::Map<String, Value>> {
    let dir = std::env::temp_dir().join(format!("vgi-access-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.jsonl");
    let server = Server::new(LoggedServer::new(Impl)).unwrap();
    server.add_hook(AccessLog::open(AccessLogConfig::new(path.to_string_lossy())).unwrap());
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]));
    let anonymous = Peer::anonymous(TransportKind::Pipe);
    let alice =
        Peer::anonymous(TransportKind::Http).with_auth(AuthContext::authenticated("jwt", "alice"));
    for (method, peer) in [("echo", &anonymous), ("fail", &anonymous), ("echo", &alice)] {
        let params =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec!["x"]))])
                .unwrap();
        let request = Request {
            method: method.to_owned(),
            params,
            metadata: Request::metadata_for(method),
        };
        let Call::Answer(answer) = server.dispatch_from(request, peer) else {
            panic!("{method} is unary");
        };
        server.emit(answer.record.as_deref().unwrap());
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let records: Vec<_> = text
        .lines()
        .map(|line| match serde_json::from_str(line).unwrap() {
            Value::Object(record) => record,
            other => panic!("not an object: {other}"),
        })
        .collect();
    assert_eq!(records.len(), 3);
    records
}

fn max_record_bytes() -> u64 {
    AccessLogConfig::new("").max_record_bytes as u64
}

/// `key = value` of the first such line in `text`, unquoted.
fn toml_value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .unwrap_or_else(|| panic!("no {key} in the Vector configuration"))
}

/// The record fields a VRL program reads or writes (`.name`), outside its
/// string literals.
fn vrl_fields(source: &str) -> Vec<String> {
    let source: String = source.split('"').step_by(2).collect::<Vec<_>>().join(" ");
    let source = source.as_str();
    let mut fields = Vec::new();
    let bytes = source.as_bytes();
    for (i, _) in source.match_indices('.') {
        let after_word = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let name: String = source[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !after_word && !name.is_empty() && !fields.contains(&name) {
            fields.push(name);
        }
    }
    fields
}

#[test]
fn the_vector_configuration_fits_our_records() {
    let config = read("vector.toml");
    let records = records("vector");

    let max_line: u64 = toml_value(&config, "max_line_bytes").parse().unwrap();
    assert!(max_line >= max_record_bytes(), "max_line_bytes {max_line}");

    let source = config
        .split("'''")
        .nth(1)
        .expect("the remap program, between ''' quotes");
    let format = source
        .split("format: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("parse_timestamp's format");
    let logger = source
        .split(".logger == \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the logger the program keeps");
    // `.message` is the file source's line; `.failed` the program's own.
    let read_fields: Vec<String> = vrl_fields(source)
        .into_iter()
        .filter(|f| f != "message" && f != "failed")
        .collect();
    assert!(read_fields.len() >= 5, "{read_fields:?}");
    for record in &records {
        assert_eq!(record["logger"], logger);
        for field in &read_fields {
            assert!(record.contains_key(field), "no {field} in {record:?}");
        }
        let timestamp = record["timestamp"].as_str().unwrap();
        NaiveDateTime::parse_from_str(timestamp, format)
            .unwrap_or_else(|e| panic!("{timestamp} against {format}: {e}"));
        // The conversions the program applies succeed on these types.
        assert!(record["duration_ms"].is_number());
        assert!(record["authenticated"].is_boolean());
        assert!(record["status"].is_string());
    }
}

/// The sections of a Fluent Bit classic configuration, each as its name
/// and its keys.
fn sections(text: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut sections: Vec<(String, HashMap<String, String>)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.to_owned(), HashMap::new()));
        } else if let Some((key, value)) = line.split_once(char::is_whitespace) {
            let (_, keys) = sections.last_mut().expect("a key outside any section");
            keys.insert(key.to_owned(), value.trim().to_owned());
        }
    }
    sections
}

fn size(value: &str) -> u64 {
    let (digits, unit) = value.split_at(
        value
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(value.len()),
    );
    let n: u64 = digits.parse().unwrap();
    n * match unit {
        "" => 1,
        "K" | "k" => 1024,
        "M" | "m" => 1024 * 1024,
        other => panic!("size unit {other}"),
    }
}

#[test]
fn the_fluent_bit_configuration_fits_our_records() {
    let config = sections(&read("fluent-bit.conf"));
    let parsers = sections(&read("parsers.conf"));
    let records = records("fluent-bit");
    let section = |name: &str| {
        config
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, keys)| keys)
            .unwrap_or_else(|| panic!("no [{name}]"))
    };

    let service = section("SERVICE");
    assert_eq!(service["Parsers_File"], "parsers.conf");
    let input = section("INPUT");
    assert_eq!(input["Name"], "tail");
    assert!(size(&input["Buffer_Max_Size"]) >= max_record_bytes());
    let tag = &input["Tag"];
    let filter = section("FILTER");
    let output = section("OUTPUT");
    assert_eq!(&filter["Match"], tag);
    assert_eq!(&output["Match"], tag);

    let (_, parser) = parsers
        .iter()
        .find(|(n, keys)| n == "PARSER" && keys["Name"] == input["Parser"])
        .expect("the input's parser in parsers.conf");
    assert_eq!(parser["Format"], "json");
    // Fluent Bit's %L is the fraction of a second, here milliseconds.
    let format = parser["Time_Format"].replace("%L", "%3f");

    let (key, pattern) = filter["Regex"].split_once(' ').unwrap();
    let literal = pattern
        .trim_start_matches('^')
        .trim_end_matches('$')
        .replace('\\', "");
    for record in &records {
        let timestamp = record[&parser["Time_Key"]].as_str().unwrap();
        NaiveDateTime::parse_from_str(timestamp, &format)
            .unwrap_or_else(|e| panic!("{timestamp} against {format}: {e}"));
        assert_eq!(record[key], literal.as_str());
    }
}
