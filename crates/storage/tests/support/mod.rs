//! What the emulator tests share: finding or starting an emulator, and
//! plain HTTP requests made as a client holding only a URL would make them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a test reaches one emulator.
pub(crate) struct Spec {
    /// What the emulator is, for messages.
    pub(crate) name: &'static str,
    /// The variable naming a running emulator's endpoint (as xtask sets it).
    pub(crate) endpoint_env: &'static str,
    /// The variable that turns a skip into a failure.
    pub(crate) require_env: &'static str,
    /// The emulator's executable, relative to the workspace root.
    pub(crate) bin: &'static str,
    /// Its arguments to listen on loopback at a port.
    pub(crate) args: fn(u16) -> Vec<String>,
    /// The endpoint of one listening at a port.
    pub(crate) endpoint: fn(u16) -> String,
    /// The command that installs it.
    pub(crate) install: &'static str,
}

/// An emulator, stopped when dropped if the test started it.
pub(crate) struct Emulator {
    child: Option<Child>,
    pub(crate) endpoint: String,
}

impl Emulator {
    /// The emulator at `spec.endpoint_env`, else one started for this test
    /// on a free loopback port; `None` (the test skips) when neither can
    /// be had and `spec.require_env` is unset.
    pub(crate) fn start(spec: &Spec) -> Option<Self> {
        if let Some(endpoint) = std::env::var(spec.endpoint_env)
            .ok()
            .filter(|e| !e.is_empty())
        {
            return Some(Self {
                child: None,
                endpoint,
            });
        }
        let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(spec.bin);
        if !bin.exists() {
            assert!(
                std::env::var_os(spec.require_env).is_none(),
                "{} is set but {} is missing ({} installs it)",
                spec.require_env,
                bin.display(),
                spec.install
            );
            eprintln!(
                "skipped: no {} at {} ({} installs it)",
                spec.name,
                bin.display(),
                spec.install
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&bin)
            .args((spec.args)(port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let emulator = Self {
            child: Some(child),
            endpoint: (spec.endpoint)(port),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{} did not listen", spec.name);
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(emulator)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One HTTP/1.1 request to a loopback `url` with `headers`; the status and
/// body.
pub(crate) fn raw(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).expect("connecting");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("writing");
    stream.write_all(body).expect("writing");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("reading");
    let status = std::str::from_utf8(&reply[9..12])
        .expect("a status")
        .parse()
        .expect("a status");
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(reply.len(), |i| i + 4);
    (status, reply[split..].to_vec())
}

/// The value of query parameter `name` in `url`, still percent-encoded.
pub(crate) fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}
