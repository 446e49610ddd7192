//! The conformance worker on a Unix socket: lifecycle and concurrency.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use vgirpc::wire::ipc::{StreamReader, StreamWriter, empty_schema, write_stream_bytes};
use vgirpc::wire::log::empty_batch;
use vgirpc::wire::metadata::Metadata;
use vgirpc::wire::request::Request;
use vgirpc_test_support::proc_status::{Process, status_field};
use vgirpc_test_support::string_call;

fn socket_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("vgi-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Starts the worker and waits for its `UNIX:<path>` line.
fn start(path: &Path, extra: &[&str]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vgi-conformance-worker"))
        .arg("--unix")
        .arg(path)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("worker starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim_end(), format!("UNIX:{}", path.display()));
    child
}

fn wait_exit(child: &mut Child, deadline: Duration) -> (std::process::ExitStatus, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, start.elapsed());
        }
        assert!(
            start.elapsed() < deadline,
            "worker still running after {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn echo(stream: &mut UnixStream, value: &str) -> String {
    stream
        .write_all(&string_call("echo_string", value))
        .unwrap();
    let mut reader = StreamReader::open(&mut *stream).unwrap();
    let answer = reader.next_batch().unwrap().unwrap();
    reader.drain().unwrap();
    let column = answer
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    column.value(0).to_owned()
}

/// This process's soft limit on open files.
fn open_file_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn idle_timeout_shuts_down_soon_after_the_last_client_leaves() {
    let path = socket_path("idle");
    let mut worker = start(&path, &["--idle-timeout", "1"]);
    let mut client = UnixStream::connect(&path).unwrap();
    assert_eq!(echo(&mut client, "hello"), "hello");
    drop(client);
    let (status, waited) = wait_exit(&mut worker, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(
        waited < Duration::from_secs(2),
        "took {waited:?}, limit is idle + 1 s"
    );
    assert!(!path.exists(), "socket file removed");
}

#[test]
fn sigterm_and_sigint_remove_the_socket_file() {
    for signal in ["-TERM", "-INT"] {
        let path = socket_path(&format!("sig{signal}"));
        let mut worker = start(&path, &[]);
        let mut client = UnixStream::connect(&path).unwrap();
        assert_eq!(echo(&mut client, "x"), "x");
        kill(&worker, signal);
        let (status, _) = wait_exit(&mut worker, Duration::from_secs(5));
        assert!(status.success(), "{signal}: {status:?}");
        assert!(!path.exists(), "{signal}: socket file removed");
    }
}

#[test]
fn a_stale_socket_file_does_not_block_a_new_worker() {
    let path = socket_path("stale");
    // A listener dropped without unlinking leaves the file a crashed worker would.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let mut worker = start(&path, &[]);
    let mut client = UnixStream::connect(&path).unwrap();
    assert_eq!(echo(&mut client, "fresh"), "fresh");
    kill(&worker, "-TERM");
    wait_exit(&mut worker, Duration::from_secs(5));
}

#[test]
fn sixteen_concurrent_clients_all_get_their_own_answers() {
    let path = socket_path("many");
    let mut worker = start(&path, &["--threaded"]);
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut stream = UnixStream::connect(&path).unwrap();
                for round in 0..20 {
                    let value = format!("client-{i}-round-{round}");
                    assert_eq!(echo(&mut stream, &value), value);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client succeeded");
    }
    kill(&worker, "-TERM");
    wait_exit(&mut worker, Duration::from_secs(5));
}

#[test]
fn a_client_vanishing_mid_stream_costs_only_that_client() {
    let path = socket_path("vanish");
    let mut worker = start(&path, &["--threaded"]);
    {
        let mut quitter = UnixStream::connect(&path).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "count",
            DataType::Int64,
            false,
        )]));
        let params =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1000]))])
                .unwrap();
        let request =
            write_stream_bytes(&schema, [(&params, &Request::metadata_for("produce_n"))]).unwrap();
        quitter.write_all(&request).unwrap();
        // Open the tick stream, send one tick, then hang up mid-stream.
        let ticks = empty_schema();
        let mut writer = StreamWriter::try_new(&mut quitter, &ticks).unwrap();
        writer
            .write(&empty_batch(&ticks), &Metadata::new())
            .unwrap();
    }
    let mut survivor = UnixStream::connect(&path).unwrap();
    assert_eq!(echo(&mut survivor, "still serving"), "still serving");
    kill(&worker, "-TERM");
    wait_exit(&mut worker, Duration::from_secs(5));
}

#[test]
fn idle_connections_cost_no_thread_each_and_valid_clients_are_served_beside_them() {
    // Every connection is one descriptor here; leave some for the rest.
    let idle_count = 2_000.min(open_file_limit().saturating_sub(100));
    let path = socket_path("idle-many");
    let mut worker = start(&path, &["--threaded"]);
    let rss_start = status_field(Process::Id(worker.id()), "VmRSS:");
    // One call each proves the connection was accepted and served.
    let mut idle: Vec<UnixStream> = (0..idle_count)
        .map(|i| {
            let mut stream = UnixStream::connect(&path).unwrap();
            let value = format!("idle {i}");
            assert_eq!(echo(&mut stream, &value), value);
            stream
        })
        .collect();
    let mut valid = UnixStream::connect(&path).unwrap();
    assert_eq!(echo(&mut valid, "valid"), "valid");
    let threads = status_field(Process::Id(worker.id()), "Threads:");
    let rss_idle = status_field(Process::Id(worker.id()), "VmRSS:");
    for stream in idle.iter_mut().step_by(101) {
        assert_eq!(echo(stream, "still here"), "still here");
    }
    drop(idle);
    assert_eq!(echo(&mut valid, "after"), "after");
    eprintln!(
        "{idle_count} idle connections: {threads} worker threads; VmRSS {rss_start} KiB at start, \
         {rss_idle} KiB with them open, {} KiB after they closed",
        status_field(Process::Id(worker.id()), "VmRSS:")
    );
    // A thread per connection would be more than idle_count.
    assert!(
        threads < idle_count / 2,
        "{threads} threads for {idle_count} idle connections"
    );
    kill(&worker, "-TERM");
    wait_exit(&mut worker, Duration::from_secs(10));
}

#[test]
fn sigterm_lets_an_open_stream_finish_and_closes_idle_connections() {
    let path = socket_path("drain");
    let mut worker = start(&path, &["--threaded"]);
    let mut idle = UnixStream::connect(&path).unwrap();
    assert_eq!(echo(&mut idle, "idle"), "idle");

    let mut streaming = UnixStream::connect(&path).unwrap();
    streaming
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::Int64,
        false,
    )]));
    let params =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![3]))]).unwrap();
    let request =
        write_stream_bytes(&schema, [(&params, &Request::metadata_for("produce_n"))]).unwrap();
    streaming.write_all(&request).unwrap();
    let ticks = empty_schema();
    let mut input = StreamWriter::try_new(streaming.try_clone().unwrap(), &ticks).unwrap();
    let mut output = None;
    let mut tick = |input: &mut StreamWriter<UnixStream>| {
        input.write(&empty_batch(&ticks), &Metadata::new()).unwrap();
        let output = output
            .get_or_insert_with(|| StreamReader::open(streaming.try_clone().unwrap()).unwrap());
        output.next_batch().unwrap()
    };
    let first = tick(&mut input).expect("the first batch");
    assert_eq!(first.batch.num_rows(), 1);

    kill(&worker, "-TERM");
    // The worker stops accepting as soon as it starts draining.
    let start = Instant::now();
    while UnixStream::connect(&path).is_ok() {
        assert!(start.elapsed() < Duration::from_secs(10), "still accepting");
        std::thread::sleep(Duration::from_millis(10));
    }
    idle.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        idle.read_to_end(&mut rest).unwrap(),
        0,
        "idle connection closed"
    );

    for index in 1..3 {
        let batch = tick(&mut input).expect("the stream goes on after SIGTERM");
        let column = batch
            .batch
            .column_by_name("index")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(column.value(0), index);
    }
    assert!(
        tick(&mut input).is_none(),
        "the stream ends after its count"
    );
    input.finish().unwrap();

    let (status, _) = wait_exit(&mut worker, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(!path.exists(), "socket file removed");
}
