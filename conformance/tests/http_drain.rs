//! The HTTP worker's graceful drain as a process: SIGTERM refuses new
//! sticky sessions, keeps serving the open one for the grace period, then
//! closes it and exits.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use vgirpc::wire::ipc::{StreamReader, write_stream_bytes};
use vgirpc::wire::log::{ErrorInfo, LogRecord};
use vgirpc::wire::metadata;
use vgirpc::wire::request::Request;

/// Far longer than the few local calls made during it.
const GRACE: Duration = Duration::from_secs(5);

struct Answer {
    headers: Vec<(String, String)>,
    result: Result<i64, ErrorInfo>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One unary call over a fresh HTTP/1.1 connection.
fn call(port: u16, method: &str, param: (&str, i64), token: Option<&str>) -> Answer {
    let schema = Arc::new(Schema::new(vec![Field::new(
        param.0,
        DataType::Int64,
        true,
    )]));
    let batch =
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![param.1]))]).unwrap();
    let body = write_stream_bytes(
        batch.schema_ref(),
        [(&batch, &Request::metadata_for(method))],
    )
    .unwrap();
    let mut head = format!(
        "POST /{method} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/vnd.apache.arrow.stream\r\nContent-Length: {}\r\n\
         VGI-Session-Accept: true\r\n",
        body.len()
    );
    if let Some(token) = token {
        head.push_str(&format!("VGI-Session: {token}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    let mut reader = BufReader::new(stream);
    let mut headers = Vec::new();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut body = Vec::new();
    reader.read_to_end(&mut body).unwrap();
    let mut stream = StreamReader::try_open(body.as_slice(), Default::default())
        .unwrap()
        .unwrap();
    while let Some(batch) = stream.next_batch().unwrap() {
        if batch.metadata.get(metadata::LOG_LEVEL) == Some("EXCEPTION") {
            let record = LogRecord::from_metadata(&batch.metadata).unwrap();
            let result = Err(ErrorInfo::from_log_record(&record));
            return Answer { headers, result };
        }
        if batch.batch.num_rows() == 1 {
            let column = batch.batch.column(0);
            let value = column.as_any().downcast_ref::<Int64Array>().unwrap();
            let result = Ok(value.value(0));
            return Answer { headers, result };
        }
    }
    panic!("no result in the answer");
}

fn wait_with_deadline(child: &mut Child, deadline: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < deadline,
            "worker did not exit within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_drains_serves_the_grace_period_then_exits() {
    let mut worker = Command::new(env!("CARGO_BIN_EXE_vgi-conformance-worker"))
        .args(["--http", "--drain-grace-seconds"])
        .arg(GRACE.as_secs().to_string())
        .env("VGI_RPC_LOG", "info")
        // Plain log lines, to search them.
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker starts");
    let mut ready = String::new();
    BufReader::new(worker.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let port: u16 = ready.trim().strip_prefix("PORT:").unwrap().parse().unwrap();

    let opened = call(port, "open_counter", ("initial", 10), None);
    assert_eq!(opened.result, Ok(10));
    let token = opened.header("vgi-session").unwrap().to_owned();

    let status = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = Instant::now();

    // The worker drains as soon as it has seen the signal; until then a
    // new session may still open, which changes nothing below.
    let refused = loop {
        match call(port, "open_counter", ("initial", 1), None).result {
            Err(refused) => break refused,
            Ok(_) => {
                assert!(
                    signalled.elapsed() < Duration::from_secs(60),
                    "the worker never started draining"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    assert_eq!(refused.error_type, "ServerDrainingError");
    assert_eq!(refused.error_kind.as_deref(), Some("server_draining"));

    let added = call(port, "increment_counter", ("by", 5), Some(&token));
    assert_eq!(added.result, Ok(15));

    let status = wait_with_deadline(&mut worker, Duration::from_secs(60));
    assert!(status.success(), "{status}");
    assert!(signalled.elapsed() >= GRACE);
    let mut stderr = String::new();
    worker
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("sticky counter closed") && stderr.contains("value=15"),
        "the open session was not closed on exit:\n{stderr}"
    );
}
