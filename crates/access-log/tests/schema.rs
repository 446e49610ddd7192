//! Our access-log records satisfy the reference's `access_log.schema.json`,
//! read from the reference package `cargo xtask conformance` installs (the
//! tests say so and pass when it is absent): records a server writes here,
//! and every record of the conformance runs' `*.access.jsonl` files.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use jsonschema::Validator;
use serde_json::Value;
use vgirpc::wire::ipc::write_stream_bytes;
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

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// The reference's schema, from the venv of the conformance runs.
fn reference_validator() -> Option<Validator> {
    let lib = target_dir().join("conformance-venv/lib");
    let path = std::fs::read_dir(&lib)
        .ok()?
        .flatten()
        .map(|python| {
            python
                .path()
                .join("site-packages/vgi_rpc/access_log.schema.json")
        })
        .find(|path| path.is_file());
    let Some(path) = path else {
        eprintln!(
            "no reference schema under {} (cargo xtask conformance installs it): not checked",
            lib.display()
        );
        return None;
    };
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    Some(jsonschema::validator_for(&schema).expect("the reference's schema compiles"))
}

/// Every line of `text` the schema refuses, with why.
fn invalid_lines(validator: &Validator, text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter_map(|(n, line)| {
            let record: Value = match serde_json::from_str(line) {
                Ok(record) => record,
                Err(err) => return Some(format!("line {}: not JSON: {err}", n + 1)),
            };
            let errors: Vec<String> = validator
                .iter_errors(&record)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            (!errors.is_empty()).then(|| format!("line {}: {}", n + 1, errors.join("; ")))
        })
        .collect()
}

fn request(method: &str, value: &str) -> Request {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]));
    let params =
        RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![value]))]).unwrap();
    Request {
        method: method.to_owned(),
        params,
        metadata: Request::metadata_for(method),
    }
}

#[test]
fn records_of_our_server_satisfy_the_reference_schema() {
    let Some(validator) = reference_validator() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("vgi-access-schema-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.jsonl");
    let server = Server::new(LoggedServer::new(Impl)).unwrap();
    server.add_hook(AccessLog::open(AccessLogConfig::new(path.to_string_lossy())).unwrap());

    let mut input = Vec::new();
    for (method, value) in [("echo", "a"), ("fail", "b"), ("nosuch", "c")] {
        let request = request(method, value);
        input.extend(
            write_stream_bytes(
                request.params.schema_ref(),
                [(&request.params, &request.metadata)],
            )
            .unwrap(),
        );
    }
    server
        .serve(Cursor::new(input), std::io::sink(), TransportKind::Pipe)
        .unwrap();
    // An authenticated caller with claims, as HTTP authenticators make them.
    let auth = AuthContext::authenticated("jwt", "alice").with_claim("tenant", "acme");
    let peer = Peer::anonymous(TransportKind::Http).with_auth(auth);
    for method in ["echo", "fail"] {
        if let vgirpc::transport::Call::Answer(answer) =
            server.dispatch_from(request(method, "d"), &peer)
        {
            server.emit(answer.record.as_deref().unwrap());
        }
    }

    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert_eq!(invalid_lines(&validator, &text), Vec::<String>::new());
    // The check has teeth: a record at another level is refused.
    let mut record: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    record["level"] = "DEBUG".into();
    assert_eq!(invalid_lines(&validator, &record.to_string()).len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn conformance_access_logs_satisfy_the_reference_schema() {
    let Some(validator) = reference_validator() else {
        return;
    };
    let dir = target_dir().join("conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".access.jsonl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        eprintln!(
            "no access logs in {}: run cargo xtask conformance",
            dir.display()
        );
        return;
    }
    let mut records = 0;
    let mut invalid = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        records += text.lines().count();
        invalid.extend(
            invalid_lines(&validator, &text)
                .into_iter()
                .map(|line| format!("{}: {line}", file.display())),
        );
    }
    eprintln!(
        "{records} records in {} access logs, {} invalid",
        files.len(),
        invalid.len()
    );
    assert!(records > 0, "the conformance access logs are empty");
    assert!(invalid.is_empty(), "{}", invalid.join("\n"));
}
