//! Access-log records from a real server: their fields, rotation and
//! atomicity under concurrency.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use serde_json::Value;
use vgirpc::{RpcError, Server, TransportKind};
use vgirpc_access_log::{AccessLog, AccessLogConfig, Interval, Rotation};
use vgirpc_test_support::string_call;

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

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vgi-access-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn serve(server: &Server, calls: &[(&str, &str)]) {
    let mut input = Vec::new();
    for (method, value) in calls {
        input.extend(string_call(method, value));
    }
    server
        .serve(Cursor::new(input), std::io::sink(), TransportKind::Pipe)
        .unwrap();
}

fn logged_server(config: AccessLogConfig) -> Server {
    let server = Server::new(LoggedServer::new(Impl)).unwrap();
    server.add_hook(AccessLog::open(config).unwrap());
    server
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is one JSON object"))
        .collect()
}

#[test]
fn records_carry_the_spec_fields() {
    let dir = scratch("fields");
    let path = dir.join("access.jsonl");
    let mut config = AccessLogConfig::new(path.to_str().unwrap());
    config.include_payloads = true;
    let server = logged_server(config);
    serve(&server, &[("echo", "hi"), ("fail", "x")]);
    let records = lines(&path);
    assert_eq!(records.len(), 2);
    let ok = &records[0];
    assert_eq!(ok["logger"], "vgi_rpc.access");
    assert_eq!(ok["level"], "INFO");
    assert_eq!(ok["method"], "echo");
    assert_eq!(ok["method_type"], "unary");
    assert_eq!(ok["status"], "ok");
    assert_eq!(ok["error_type"], "");
    assert_eq!(ok["protocol"], "Logged");
    assert_eq!(ok["protocol_hash"].as_str().unwrap().len(), 64);
    assert_eq!(ok["server_id"], vgirpc::server_id());
    assert_eq!(ok["input_batches"], 1);
    assert_eq!(ok["output_batches"], 1);
    let timestamp = ok["timestamp"].as_str().unwrap();
    assert_eq!(timestamp.len(), 24, "{timestamp}");
    assert!(timestamp.ends_with('Z'));
    assert!(ok["request_data"].as_str().is_some_and(|d| !d.is_empty()));
    let failed = &records[1];
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["error_type"], "ValueError");
    assert_eq!(failed["error_message"], "bad x");
}

#[test]
fn payloads_are_left_out_by_default_but_their_size_is_kept() {
    let dir = scratch("default");
    let path = dir.join("access.jsonl");
    let server = logged_server(AccessLogConfig::new(path.to_str().unwrap()));
    serve(&server, &[("echo", "hi")]);
    let record = &lines(&path)[0];
    assert!(record.get("request_data").is_none());
    assert_eq!(record["truncated"], true);
    assert!(record["original_request_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn oversized_records_shed_fields_but_keep_the_error_message() {
    let dir = scratch("shed");
    let path = dir.join("access.jsonl");
    let mut config = AccessLogConfig::new(path.to_str().unwrap());
    config.include_payloads = true;
    config.max_record_bytes = 700;
    let server = logged_server(config);
    let long = "y".repeat(400);
    serve(&server, &[("echo", &long), ("fail", &long)]);
    let records = lines(&path);
    assert_eq!(records[0]["truncated"], true);
    assert!(records[0].get("request_data").is_none());
    assert!(records[0]["original_request_bytes"].as_u64().unwrap() > 400);
    assert_eq!(records[1]["truncated"], "record_too_large");
    assert_eq!(records[1]["error_message"], format!("bad {long}"));
}

#[test]
fn size_rotation_keeps_every_line_whole_across_files() {
    let dir = scratch("size");
    let path = dir.join("access.jsonl");
    let mut config = AccessLogConfig::new(path.to_str().unwrap());
    config.rotation = Rotation::Size(4_000);
    config.backup_count = 1_000;
    let server = logged_server(config);
    let calls: Vec<(&str, String)> = (0..200).map(|i| ("echo", format!("call-{i}"))).collect();
    let calls: Vec<(&str, &str)> = calls.iter().map(|(m, v)| (*m, v.as_str())).collect();
    serve(&server, &calls);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() > 3, "rotated into several files: {files:?}");
    let mut total = 0;
    for file in &files {
        let size = std::fs::metadata(file).unwrap().len();
        assert!(size <= 4_000, "{} is {size} bytes", file.display());
        total += lines(file).len();
    }
    assert_eq!(total, 200, "nothing lost across rotation boundaries");
}

#[test]
fn backups_beyond_the_count_are_dropped() {
    let dir = scratch("backups");
    let path = dir.join("access.jsonl");
    let mut config = AccessLogConfig::new(path.to_str().unwrap());
    config.rotation = Rotation::Size(1_000);
    config.backup_count = 2;
    let server = logged_server(config);
    let calls = vec![("echo", "z"); 100];
    serve(&server, &calls);
    let count = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(count, 3, "the live file plus two backups");
}

#[test]
fn time_rotation_renames_with_the_period() {
    let dir = scratch("time");
    let path = dir.join("access.jsonl");
    let mut config = AccessLogConfig::new(path.to_str().unwrap());
    config.rotation = Rotation::Interval(Interval::Second);
    let server = logged_server(config);
    serve(&server, &[("echo", "first")]);
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    serve(&server, &[("echo", "second")]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(lines(&path).len(), 1);
    assert!("s".parse::<Interval>().is_ok());
    assert!("fortnight".parse::<Interval>().is_err());
}

#[test]
fn eight_threads_write_only_whole_lines() {
    let dir = scratch("threads");
    let path = dir.join("access-{pid}.jsonl");
    let server = logged_server(AccessLogConfig::new(path.to_str().unwrap()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let server = server.clone();
            std::thread::spawn(move || {
                let value = format!("{t}-{}", "w".repeat(2_000));
                let calls = vec![("echo", value.as_str()); 100];
                serve(&server, &calls);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let resolved = dir.join(format!("access-{}.jsonl", std::process::id()));
    assert_eq!(lines(&resolved).len(), 800);
}
