//! The subprocess transport against fake workers that misbehave: every
//! failure must surface as an error naming the exit status, never a hang.

use std::process::Command;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use vgirpc_client::{Client, ClientError, StderrMode, SubprocessOptions, SubprocessTransport};
use vgirpc_wire::ipc::StreamWriter;
use vgirpc_wire::metadata::Metadata;

/// Runs `f` on another thread and fails the test if it takes over 20 s.
fn within_deadline<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the client hung on a dead worker")
}

fn sh(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.arg("-c").arg(script);
    command
}

fn capture() -> SubprocessOptions {
    SubprocessOptions::default().stderr(StderrMode::Capture)
}

fn params() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]));
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["hi"]))]).unwrap()
}

fn exit_code(err: &ClientError) -> Option<i32> {
    match err {
        ClientError::WorkerExited(exit) => exit.status.and_then(|s| s.code()),
        _ => None,
    }
}

#[test]
fn a_worker_that_exits_mid_request_is_reported_with_its_status() {
    let err = within_deadline(|| {
        let mut client =
            Client::spawn_with(sh("head -c 100 >/dev/null; exit 3"), capture()).unwrap();
        client.call("echo_string", &params()).unwrap_err()
    });
    assert_eq!(exit_code(&err), Some(3), "{err:?}");
    assert!(err.to_string().contains("exit status: 3"), "{err}");
    assert!(err.is_connection_error());
}

#[test]
fn the_last_stderr_lines_explain_the_exit() {
    let err = within_deadline(|| {
        let script = "echo starting >&2; echo 'fatal: no config' >&2; exit 7";
        let mut client = Client::spawn_with(sh(script), capture()).unwrap();
        client.call("echo_string", &params()).unwrap_err()
    });
    assert_eq!(exit_code(&err), Some(7), "{err:?}");
    let ClientError::WorkerExited(exit) = &err else {
        unreachable!()
    };
    assert_eq!(exit.stderr_tail, ["starting", "fatal: no config"]);
    assert!(err.to_string().contains("fatal: no config"), "{err}");
}

/// A worker that answers a producer stream with one batch, then dies.
#[test]
fn a_worker_that_exits_mid_stream_is_reported() {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![7]))]).unwrap();
    let mut output = StreamWriter::try_new(Vec::new(), &schema).unwrap();
    output.write(&batch, &Metadata::new()).unwrap();
    // No end-of-stream marker: the worker dies with the stream open.
    let bytes = std::mem::take(output.get_mut());
    let dir = std::env::temp_dir().join(format!("vgirpc-client-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let canned = dir.join("mid-stream.arrows");
    std::fs::write(&canned, bytes).unwrap();

    let script = format!("head -c 1 >/dev/null; cat '{}'; exit 5", canned.display());
    let (first, err) = within_deadline(move || {
        let mut client = Client::spawn_with(sh(&script), capture()).unwrap();
        let mut stream = client
            .stream("produce", &vgirpc_client::no_params())
            .unwrap();
        let first = stream.next_batch().unwrap();
        let err = stream.next_batch().unwrap_err();
        (first, err)
    });
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(first, Some(batch));
    assert_eq!(exit_code(&err), Some(5), "{err:?}");
}

#[test]
fn close_kills_a_worker_that_ignores_end_of_input() {
    let elapsed = within_deadline(|| {
        let options = capture().close_timeout(Duration::from_millis(200));
        let mut transport = SubprocessTransport::spawn_with(sh("exec sleep 30"), options).unwrap();
        let start = Instant::now();
        vgirpc_client::Connection::close(&mut transport).unwrap();
        let status = transport.try_exit_status().expect("the worker was reaped");
        assert!(!status.success());
        start.elapsed()
    });
    assert!(elapsed < Duration::from_secs(5), "close took {elapsed:?}");
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    let err = Client::spawn(Command::new("/nonexistent/vgi-worker")).unwrap_err();
    assert!(matches!(err, ClientError::Spawn { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/vgi-worker"), "{err}");
}

#[test]
fn a_kill_handle_unblocks_a_call_to_a_silent_worker() {
    let err = within_deadline(|| {
        // Keeps its stdout open and never answers.
        let mut client = Client::spawn_with(sh("exec sleep 30"), capture()).unwrap();
        let killer = client.transport().kill_handle();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            killer.kill();
        });
        client.call("echo_string", &params()).unwrap_err()
    });
    match &err {
        ClientError::WorkerExited(exit) => {
            let status = exit.status.expect("the killed worker was reaped");
            assert!(!status.success());
        }
        other => panic!("expected WorkerExited, got {other:?}"),
    }
}
