//! Seed inputs for every fuzz target, recorded from real conformance
//! traffic.
//!
//! `seeds OUT` runs the client conformance suite (the Rust client calling
//! every `ConformanceService` method with the reference suites' arguments)
//! against this very program acting as the worker, over the pipe,
//! shared-memory and HTTP transports. As the worker it serves the
//! conformance service and records every byte the client sent and, on the
//! pipe, every byte it answered. The recordings are then cut into the
//! inputs each target takes and written to `OUT/<target>/`, from where
//! `cargo xtask reliability --seeds` minimizes them into `fuzz/corpus/`.
//!
//! `seeds tap DIR [--http]` is the worker side (the suite appends `--http`
//! for the HTTP transport).

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Cursor, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arrow_schema::SchemaRef;
use sha2::{Digest, Sha256};
use vgirpc::wire::describe::describe_schema;
use vgirpc::wire::ipc::{ReadLimits, StreamReader};
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::wire::shm::{FixedHeader, HEADER_SIZE, NUM_ALLOCS_AT, Table, encode_region};
use vgirpc::{Server, TransportKind};
use vgirpc_conformance::client_suite::{self, TransportKind as SuiteTransport};
use vgirpc_conformance::service::{Conformance, ConformanceServiceServer};
use vgirpc_fuzz::tokens::{self, Kind};
use vgirpc_http::{HttpConfig, HttpServer};
use vgirpc_token::{Identity, SESSION_ID_LEN, SessionToken};

/// Larger seeds slow every mutation down; the conformance traffic's
/// interesting structure fits well below this.
const MAX_SEED_BYTES: usize = 64 * 1024;

/// The time limit of one suite test.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [tap, dir, rest @ ..] if tap == "tap" => {
            let dir = PathBuf::from(dir);
            if rest.iter().any(|a| a == "--http") {
                tap_http(&dir)
            } else {
                tap_pipe(&dir)
            }
        }
        [out] => generate(Path::new(out)),
        _ => Err("usage: seeds OUT_DIR".into()),
    }
}

/// Records the suite's traffic into `OUT/capture`, then writes the seeds.
fn generate(out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let capture = out.join("capture");
    let _ = fs::remove_dir_all(out);
    fs::create_dir_all(&capture)?;
    let worker = client_suite::Server {
        name: "tap".into(),
        program: std::env::current_exe()?.display().to_string(),
        args: vec!["tap".into(), capture.display().to_string()],
    };
    for transport in [
        SuiteTransport::Pipe,
        SuiteTransport::Shm,
        SuiteTransport::Http,
    ] {
        let report = client_suite::run(&worker, transport, None, TEST_TIMEOUT);
        println!(
            "recorded {}: {} passed, {} failed, {} skipped",
            report.label(),
            report.passed(),
            report.failed(),
            report.skipped()
        );
    }
    let mut seeds = Seeds::new(out);
    for entry in fs::read_dir(&capture)? {
        let path = entry?.path();
        let bytes = fs::read(&path)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("http-") {
            seeds.http_connection(&bytes);
        } else if name.ends_with(".in") {
            seeds.pipe_requests(&bytes);
        } else {
            seeds.pipe_responses(&bytes);
        }
    }
    seeds.session_tokens();
    seeds.report();
    Ok(())
}

/// The seed directories, written as seeds are found (named by content,
/// so duplicates collapse).
struct Seeds {
    out: PathBuf,
    counts: std::collections::BTreeMap<&'static str, BTreeSet<String>>,
}

impl Seeds {
    fn new(out: &Path) -> Self {
        Self {
            out: out.to_path_buf(),
            counts: Default::default(),
        }
    }

    fn add(&mut self, target: &'static str, bytes: &[u8]) {
        if bytes.is_empty() || bytes.len() > MAX_SEED_BYTES {
            return;
        }
        let name = format!("{:x}", Sha256::digest(bytes));
        let dir = self.out.join(target);
        fs::create_dir_all(&dir).expect("create a seed directory");
        fs::write(dir.join(&name[..16]), bytes).expect("write a seed");
        self.counts.entry(target).or_default().insert(name);
    }

    fn report(&self) {
        for (target, seeds) in &self.counts {
            println!("{target}: {} seeds", seeds.len());
        }
    }

    /// A pipe connection as the client wrote it: each IPC stream, each
    /// request with the input streams that follow it, and segment images
    /// holding the data batches.
    fn pipe_requests(&mut self, bytes: &[u8]) {
        let streams = split_streams(bytes);
        let mut request: Vec<u8> = Vec::new();
        for stream in &streams {
            self.add("ipc_reader", &stream.bytes);
            if stream.is_request() && !request.is_empty() {
                self.add("request", &request);
                request.clear();
            }
            request.extend_from_slice(&stream.bytes);
            self.add("shm", &segment_image(&stream.bytes));
        }
        self.add("request", &request);
    }

    /// What the worker answered on a pipe: every stream for the reader,
    /// `__describe__` answers for the describe parser.
    fn pipe_responses(&mut self, bytes: &[u8]) {
        let describe = describe_schema();
        for stream in split_streams(bytes) {
            self.add("ipc_reader", &stream.bytes);
            if stream.schema.fields() == describe.fields() {
                self.add("describe", &stream.bytes);
            }
        }
    }

    /// An HTTP connection as the client wrote it: each request as sent,
    /// uncompressed too, and the state tokens the requests carry.
    fn http_connection(&mut self, bytes: &[u8]) {
        for request in split_http(bytes) {
            self.add("http", &request.raw);
            let body = if request.zstd {
                match zstd::decode_all(request.body.as_slice()) {
                    Ok(body) => {
                        self.add("http", &request.plain(&body));
                        body
                    }
                    Err(_) => continue,
                }
            } else {
                request.body.clone()
            };
            for stream in split_streams(&body) {
                self.add("ipc_reader", &stream.bytes);
                if let Some(token) = stream
                    .first
                    .as_ref()
                    .and_then(|md| md.get(metadata::STREAM_STATE))
                {
                    self.state_token(token);
                }
            }
        }
    }

    /// Token seeds for one captured state token: as sent, its plaintext,
    /// and its plaintext for the tampering checks (anonymous identity, as
    /// the suite's HTTP server does not authenticate).
    fn state_token(&mut self, token: &str) {
        self.add("token", &[&[0, 0][..], token.as_bytes()].concat());
        if let Some(plaintext) = tokens::unseal(Kind::State, token, &Identity::Anonymous) {
            self.add("token", &[&[1, 0][..], &plaintext].concat());
            self.add("token", &[&[3, 0][..], &plaintext].concat());
        }
    }

    /// Session tokens as a sticky worker hands them out.
    fn session_tokens(&mut self) {
        let identity = Identity::Anonymous;
        for (server_id, expires_at) in [("worker-1", 1_700_003_600), ("", 0)] {
            let token = SessionToken {
                created_at: 1_700_000_000,
                server_id: server_id.into(),
                session_id: [0x5a; SESSION_ID_LEN],
                expires_at,
            };
            let sealed = token.seal(&tokens::key(), &identity).expect("short id");
            self.add("token", &[&[0, 0][..], sealed.as_bytes()].concat());
            if let Some(plaintext) = tokens::unseal(Kind::Session, &sealed, &identity) {
                self.add("token", &[&[2, 0][..], &plaintext].concat());
            }
        }
    }
}

/// One IPC stream cut out of a byte stream.
struct Stream {
    bytes: Vec<u8>,
    schema: SchemaRef,
    /// The first batch's metadata, if the stream has a batch.
    first: Option<Metadata>,
}

impl Stream {
    fn is_request(&self) -> bool {
        self.first
            .as_ref()
            .is_some_and(|md| md.contains(metadata::METHOD))
    }
}

/// The IPC streams of a byte stream, up to the first that does not read.
fn split_streams(bytes: &[u8]) -> Vec<Stream> {
    let mut cursor = Cursor::new(bytes);
    let mut streams = Vec::new();
    loop {
        let start = cursor.position() as usize;
        let Ok(Some(mut reader)) = StreamReader::try_open(&mut cursor, ReadLimits::default())
        else {
            return streams;
        };
        let schema = reader.schema().clone();
        let mut first = None;
        loop {
            match reader.next_batch() {
                Ok(Some(batch)) => {
                    first.get_or_insert(batch.metadata);
                }
                Ok(None) => break,
                Err(_) => return streams,
            }
        }
        let end = cursor.position() as usize;
        streams.push(Stream {
            bytes: bytes[start..end].to_vec(),
            schema,
            first,
        });
    }
}

/// A segment image as the shm target reads it (fixed header, entries,
/// data region) holding the stream's non-empty batches, each in its own
/// region; empty when the stream has none.
fn segment_image(stream: &[u8]) -> Vec<u8> {
    let Ok(mut reader) = StreamReader::open(stream) else {
        return Vec::new();
    };
    let mut regions = Vec::new();
    while let Ok(Some(batch)) = reader.next_batch() {
        if batch.batch.num_rows() > 0
            && let Ok(region) = encode_region(&batch.batch)
        {
            regions.push(region);
        }
    }
    if regions.is_empty() {
        return Vec::new();
    }
    let data_len: usize = regions.iter().map(|r| r.len() + 64).sum();
    let segment_size = HEADER_SIZE + data_len as u64;
    let mut table = Table::empty(segment_size);
    let mut data = vec![0u8; data_len];
    for region in &regions {
        let offset = table
            .allocate(region.len() as u64, 64)
            .expect("the data region was sized for every batch");
        let start = (offset - HEADER_SIZE) as usize;
        data[start..start + region.len()].copy_from_slice(region);
    }
    let mut image = FixedHeader::new(segment_size).encode().to_vec();
    let at = NUM_ALLOCS_AT as usize;
    image[at..at + 4].copy_from_slice(&(regions.len() as u32).to_le_bytes());
    image.extend_from_slice(&table.encode_entries());
    image.extend_from_slice(&data);
    image
}

/// One HTTP/1.1 request cut out of a connection.
struct HttpRequest {
    raw: Vec<u8>,
    head: String,
    body: Vec<u8>,
    zstd: bool,
}

impl HttpRequest {
    /// The same request with `body` sent uncompressed.
    fn plain(&self, body: &[u8]) -> Vec<u8> {
        let mut head = String::new();
        for line in self.head.split("\r\n").filter(|l| !l.is_empty()) {
            let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
            if name != "content-encoding" && name != "content-length" {
                head.push_str(line);
                head.push_str("\r\n");
            }
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        [head.as_bytes(), body].concat()
    }
}

/// The requests of a connection that sent bodies with `Content-Length`.
fn split_http(mut bytes: &[u8]) -> Vec<HttpRequest> {
    let mut requests = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end + 4]).into_owned();
        let header = |wanted: &str| {
            head.split("\r\n").find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case(wanted)
                    .then(|| value.trim().to_owned())
            })
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let Some(raw) = bytes.get(..end + 4 + length) else {
            break;
        };
        requests.push(HttpRequest {
            raw: raw.to_vec(),
            body: raw[end + 4..].to_vec(),
            zstd: header("content-encoding").is_some_and(|v| v.contains("zstd")),
            head,
        });
        bytes = &bytes[end + 4 + length..];
    }
    requests
}

/// A reader that copies what it reads into a file.
struct TeeRead<R> {
    inner: R,
    copy: fs::File,
}

impl<R: Read> Read for TeeRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A writer that copies what it writes into a file.
struct TeeWrite<W> {
    inner: W,
    copy: fs::File,
}

impl<W: Write> Write for TeeWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn conformance() -> Server {
    Server::new(ConformanceServiceServer::new(Conformance)).expect("the conformance service")
}

/// The pipe worker (with shared memory when the client offers it),
/// recording both directions.
fn tap_pipe(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let id = std::process::id();
    let reader = TeeRead {
        inner: io::stdin().lock(),
        copy: fs::File::create(dir.join(format!("pipe-{id}.in")))?,
    };
    let writer = TeeWrite {
        inner: io::stdout().lock(),
        copy: fs::File::create(dir.join(format!("pipe-{id}.out")))?,
    };
    conformance().serve_with(
        reader,
        writer,
        TransportKind::Pipe,
        &vgirpc_pipe::ShmSideChannels,
    )?;
    Ok(())
}

/// The HTTP worker behind a recording proxy: the suite talks to the
/// proxy, which forwards to the real server and records each connection's
/// requests. Tokens are sealed with the harness key and never expire, so
/// the recorded exchange requests stay valid seeds.
fn tap_http(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let config = HttpConfig::new()
        .with_token_key(tokens::key())
        .with_token_ttl(0);
    let server = {
        let _entered = runtime.enter();
        HttpServer::new(conformance(), config)?
    };
    let inner = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let inner_addr = inner.local_addr()?;
    runtime.spawn(server.serve(inner, std::future::pending()));

    let proxy = TcpListener::bind("127.0.0.1:0")?;
    println!("PORT:{}", proxy.local_addr()?.port());
    io::stdout().flush()?;
    let connections = Arc::new(AtomicUsize::new(0));
    let id = std::process::id();
    for client in proxy.incoming() {
        let client = client?;
        let upstream = TcpStream::connect(inner_addr)?;
        let n = connections.fetch_add(1, Ordering::Relaxed);
        let copy = fs::File::create(dir.join(format!("http-{id}-{n}.in")))?;
        let (client_read, upstream_write) = (client.try_clone()?, upstream.try_clone()?);
        std::thread::spawn(move || {
            let mut tee = TeeRead {
                inner: client_read,
                copy,
            };
            let mut upstream_write = upstream_write;
            let _ = io::copy(&mut tee, &mut upstream_write);
            let _ = upstream_write.shutdown(Shutdown::Write);
        });
        std::thread::spawn(move || {
            let (mut upstream, mut client) = (upstream, client);
            let _ = io::copy(&mut upstream, &mut client);
            let _ = client.shutdown(Shutdown::Write);
        });
    }
    Ok(())
}
