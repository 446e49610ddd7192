//! `S3Storage` against moto's S3 server: the one at `VGI_S3_ENDPOINT` (as
//! `cargo xtask s3` and `cargo xtask ci` start it), else one per test
//! started from `target/moto-venv` on a free loopback port. Without either
//! the tests skip with a note, unless `VGI_REQUIRE_S3` is set (as xtask
//! does), when they fail.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use vgirpc_http::{ExternalStorage, UploadUrlProvider, fetch_url};
use vgirpc_storage::S3Storage;

const REQUIRE_ENV: &str = "VGI_REQUIRE_S3";
const BUCKET: &str = "vgi-test";

/// A moto server, stopped when dropped if the test started it.
struct Moto {
    child: Option<Child>,
    endpoint: String,
}

impl Moto {
    fn start() -> Option<Self> {
        if let Some(endpoint) = std::env::var("VGI_S3_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty())
        {
            let moto = Self {
                child: None,
                endpoint,
            };
            moto.create_bucket();
            return Some(moto);
        }
        let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/moto-venv/bin/moto_server");
        if !bin.exists() {
            assert!(
                std::env::var_os(REQUIRE_ENV).is_none(),
                "{REQUIRE_ENV} is set but {} is missing (cargo xtask s3 installs it)",
                bin.display()
            );
            eprintln!(
                "skipped: no S3 emulator at {} (cargo xtask s3 installs it)",
                bin.display()
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let moto = Self {
            child: Some(child),
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        moto.create_bucket();
        Some(moto)
    }

    /// Creates the tests' bucket; moto answers 200 when it exists already.
    fn create_bucket(&self) {
        let (status, _) = raw(&format!("{}/{BUCKET}", self.endpoint), "PUT", b"");
        assert_eq!(status, 200, "creating the bucket");
    }

    fn storage(&self, expiry: Duration) -> S3Storage {
        S3Storage::builder(BUCKET)
            .with_endpoint(&self.endpoint)
            .with_region("us-east-1")
            .with_credentials("testing", "testing")
            .with_prefix("tests/")
            .with_expiry(expiry)
            .build()
            .expect("a store")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One HTTP/1.1 request to a loopback `url`, as a client that holds only
/// the URL would make it; the status and body.
fn raw(url: &str, method: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).expect("connecting");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
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

#[test]
fn externalized_batch_is_fetched_through_its_presigned_url() {
    let Some(moto) = Moto::start() else { return };
    let storage = moto.storage(Duration::from_secs(600));
    let data = b"an arrow stream, as far as storage cares".to_vec();
    let url = storage.upload(data.clone(), None).expect("upload");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert_eq!(
        storage.location(),
        format!("{}/vgi-test/tests/", moto.endpoint)
    );
    assert!(url.starts_with(storage.location()), "{url}");
    assert_eq!(fetch_url(&url).expect("fetch"), data);
}

#[test]
fn zstd_upload_is_served_with_its_encoding_and_decoded() {
    let Some(moto) = Moto::start() else { return };
    let storage = moto.storage(Duration::from_secs(600));
    let data = vec![7u8; 100_000];
    let compressed = zstd::encode_all(&data[..], 3).expect("compress");
    let url = storage
        .upload(compressed.clone(), Some("zstd"))
        .expect("upload");
    assert!(url.contains(".arrow.zst"), "{url}");
    assert_eq!(fetch_url(&url).expect("fetch"), data);
}

#[test]
fn upload_url_takes_a_put_and_serves_it_back() {
    let Some(moto) = Moto::start() else { return };
    let storage = moto.storage(Duration::from_secs(600));
    let pair = storage.upload_url().expect("upload url");
    assert_ne!(pair.upload_url, pair.download_url);
    assert!(pair.download_url.starts_with(storage.location()));
    assert!(pair.expires_at > std::time::SystemTime::now());
    let data = b"uploaded by the client itself".to_vec();
    let (status, _) = raw(&pair.upload_url, "PUT", &data);
    assert_eq!(status, 200);
    assert_eq!(fetch_url(&pair.download_url).expect("fetch"), data);
}

/// moto serves pre-signed URLs without checking their expiry, so the
/// refusal comes from the fetcher, which reads it from the URL.
#[test]
fn expired_url_is_refused_and_reported() {
    let Some(moto) = Moto::start() else { return };
    let storage = moto.storage(Duration::from_secs(1));
    let url = storage
        .upload(b"short-lived".to_vec(), None)
        .expect("upload");
    std::thread::sleep(Duration::from_millis(2100));
    assert!(url.contains("X-Amz-Expires=1&"), "{url}");
    let error = fetch_url(&url).expect_err("an expired URL");
    let text = error.to_string();
    assert!(text.contains("the pre-signed URL expired"), "{text}");
    assert!(!text.contains("X-Amz-Signature"), "{text}");
}

#[test]
fn deleted_object_is_reported() {
    let Some(moto) = Moto::start() else { return };
    let storage = moto.storage(Duration::from_secs(600));
    let key = storage.put(b"soon gone".to_vec(), None).expect("put");
    let url = storage.signed_url(Method::GET, &key).expect("sign");
    storage.delete(&key).expect("delete");
    let error = fetch_url(&url).expect_err("a deleted object").to_string();
    assert!(error.contains("404"), "{error}");
    assert!(error.contains("NoSuchKey"), "{error}");
}
