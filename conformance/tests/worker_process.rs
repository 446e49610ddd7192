//! The conformance worker as a process: what a launching client relies on.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use vgirpc::wire::ipc::{StreamReader, StreamWriter, empty_schema, write_stream_bytes};
use vgirpc::wire::metadata::Metadata;
use vgirpc::wire::request::Request;
use vgirpc_test_support::string_call;

fn spawn_worker() -> Child {
    Command::new(env!("CARGO_BIN_EXE_vgi-conformance-worker"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Info level shows how the worker stopped.
        .env("VGI_RPC_LOG", "info")
        .spawn()
        .expect("worker starts")
}

fn wait_with_deadline(child: &mut Child, deadline: Duration) -> std::process::ExitStatus {
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
fn answers_then_exits_cleanly_when_stdin_closes() {
    let mut worker = spawn_worker();
    let mut stdin = worker.stdin.take().unwrap();
    stdin
        .write_all(&string_call("echo_string", "ping"))
        .unwrap();
    stdin.flush().unwrap();
    let mut stdout = worker.stdout.take().unwrap();
    let mut reader = StreamReader::open(&mut stdout).unwrap();
    let answer = reader.next_batch().unwrap().unwrap();
    let column = answer
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(column.value(0), "ping");
    reader.drain().unwrap();
    drop(stdin);
    let status = wait_with_deadline(&mut worker, Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing but IPC responses on stdout");
}

#[test]
fn exits_cleanly_on_sigterm_and_sigint() {
    for signal in ["-TERM", "-INT"] {
        let mut worker = spawn_worker();
        // Let it install its handlers and block on stdin.
        std::thread::sleep(Duration::from_millis(200));
        let sent = Command::new("kill")
            .args([signal, &worker.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = wait_with_deadline(&mut worker, Duration::from_secs(5));
        assert!(status.success(), "{signal}: {status:?}");
    }
}

#[test]
fn sigterm_during_a_stream_lets_it_finish_then_exits_cleanly() {
    let mut worker = spawn_worker();
    let mut stdin = worker.stdin.take().unwrap();
    let mut stdout = worker.stdout.take().unwrap();
    let params = RecordBatch::new_empty(empty_schema());
    let request = write_stream_bytes(
        &empty_schema(),
        [(&params, &Request::metadata_for("exchange_accumulate"))],
    )
    .unwrap();
    stdin.write_all(&request).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Float64,
        true,
    )]));
    let mut input = StreamWriter::try_new(&mut stdin, &schema).unwrap();
    let send = |input: &mut StreamWriter<&mut std::process::ChildStdin>, value: f64| {
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Float64Array::from(vec![value]))],
        )
        .unwrap();
        input.write(&batch, &Metadata::new()).unwrap();
        input.get_mut().flush().unwrap();
    };
    send(&mut input, 1.0);
    let mut output = StreamReader::open(&mut stdout).unwrap();
    let sum = |batch: vgirpc::wire::ipc::IpcBatch| {
        batch
            .batch
            .column_by_name("running_sum")
            .unwrap()
            .as_primitive::<Float64Type>()
            .value(0)
    };
    assert_eq!(sum(output.next_batch().unwrap().unwrap()), 1.0);

    let sent = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // The stream is in flight: the worker keeps it open as long as the
    // client does.
    std::thread::sleep(Duration::from_secs(2));
    assert!(worker.try_wait().unwrap().is_none(), "exited mid-stream");
    send(&mut input, 2.0);
    assert_eq!(sum(output.next_batch().unwrap().unwrap()), 3.0);
    input.finish().unwrap().flush().unwrap();
    assert!(output.next_batch().unwrap().is_none(), "the stream ends");

    let status = wait_with_deadline(&mut worker, Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the stream's end");
    // serve_stdio returned to main, which logged why before exiting.
    let mut log = String::new();
    worker
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("pipe worker stopped") && log.contains("Signal"),
        "{log}"
    );
}
