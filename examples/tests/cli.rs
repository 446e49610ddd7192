//! The `vgi-rpc` CLI against the calculator example, as a user would run
//! them: a struct parameter given as JSON comes back over pipe and HTTP.
//!
//! `cargo test` builds this package's examples; the CLI binary comes from
//! the same workspace build (`cargo test --workspace` builds it).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

/// `target/<profile>`, two levels above this test binary (`deps/cli-…`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf()
}

fn built(path: PathBuf, how: &str) -> PathBuf {
    assert!(path.exists(), "{} is missing: {how}", path.display());
    path
}

fn calculator() -> PathBuf {
    let name = format!("calculator{}", std::env::consts::EXE_SUFFIX);
    built(
        profile_dir().join("examples").join(name),
        "`cargo test -p vgirpc-examples` builds it",
    )
}

fn vgi_rpc(args: &[&str]) -> Output {
    let name = format!("vgi-rpc{}", std::env::consts::EXE_SUFFIX);
    let cli = built(
        profile_dir().join(name),
        "run `cargo test --workspace` (or `cargo build -p vgirpc-cli`) first",
    );
    Command::new(cli).args(args).output().expect("vgi-rpc runs")
}

fn worker_command() -> String {
    format!("{} worker", calculator().display())
}

fn succeeded(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "vgi-rpc failed: {stderr}");
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

/// The calculator serving HTTP on a free port; killed when dropped.
struct HttpCalculator {
    child: Child,
    url: String,
}

impl HttpCalculator {
    fn start() -> Self {
        let mut child = Command::new(calculator())
            .args(["http", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the calculator starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the calculator prints its URL");
        Self {
            child,
            url: line.trim().to_owned(),
        }
    }
}

impl Drop for HttpCalculator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `translate` of the point `{"x": 1.5, "y": -2}` moved by `extra`, over
/// `connection` (`--cmd …` or `--url …`), in JSON output.
fn translate(connection: [&str; 2], extra: &[&str]) -> String {
    let mut args = vec![
        connection[0],
        connection[1],
        "-f",
        "json",
        "call",
        "translate",
    ];
    args.push(r#"point={"x": 1.5, "y": -2}"#);
    args.extend_from_slice(extra);
    succeeded(&vgi_rpc(&args))
}

#[test]
fn a_struct_parameter_given_as_json_is_echoed_over_pipe_and_http() {
    let worker = worker_command();
    let http = HttpCalculator::start();
    for connection in [["--cmd", worker.as_str()], ["--url", http.url.as_str()]] {
        let echoed: serde_json::Value =
            serde_json::from_str(&translate(connection, &[])).expect("JSON output");
        assert_eq!(
            echoed,
            serde_json::json!({"result": {"x": 1.5, "y": -2.0}}),
            "over {}",
            connection[0]
        );
        let moved: serde_json::Value =
            serde_json::from_str(&translate(connection, &["dx=1", "dy=0.5"])).unwrap();
        assert_eq!(moved, serde_json::json!({"result": {"x": 2.5, "y": -1.5}}));
    }
}

#[test]
fn describe_names_the_fields_a_struct_parameter_takes() {
    let text = succeeded(&vgi_rpc(&[
        "--cmd",
        &worker_command(),
        "-f",
        "json",
        "describe",
    ]));
    let description: serde_json::Value = serde_json::from_str(&text).expect("JSON description");
    assert_eq!(
        description["methods"]["translate"]["struct_params"],
        serde_json::json!({"point": "x: double not null, y: double not null"})
    );
}

#[test]
fn a_malformed_struct_is_one_line_naming_the_parameter_and_exit_status_two() {
    let output = vgi_rpc(&[
        "--cmd",
        &worker_command(),
        "call",
        "translate",
        r#"point={"x": 1, "z": 2}"#,
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("parameter 'point' of translate")
            && stderr.contains("unknown struct field 'z'"),
        "{stderr}"
    );
}
