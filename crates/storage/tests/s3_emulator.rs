//! `S3Storage` against moto's S3 server: the one at `VGI_S3_ENDPOINT` (as
//! `cargo xtask s3` and `cargo xtask ci` start it), else one per test
//! started from `target/moto-venv` on a free loopback port. Without either
//! the tests skip with a note, unless `VGI_REQUIRE_S3` is set (as xtask
//! does), when they fail.

mod support;

use std::time::Duration;

use http::Method;
use support::{Emulator, Spec, query_param, raw};
use vgirpc_fetch::{Outgoing, TlsSettings};
use vgirpc_http::{ExternalStorage, UploadUrlProvider, fetch_url};
use vgirpc_storage::S3Storage;

const BUCKET: &str = "vgi-test";

const MOTO: Spec = Spec {
    name: "S3 emulator",
    endpoint_env: "VGI_S3_ENDPOINT",
    require_env: "VGI_REQUIRE_S3",
    bin: "target/moto-venv/bin/moto_server",
    args: |port| {
        vec![
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ]
    },
    endpoint: |port| format!("http://127.0.0.1:{port}"),
    install: "cargo xtask s3",
};

/// moto, with the tests' bucket made (moto answers 200 when it exists).
fn start() -> Option<Emulator> {
    let moto = Emulator::start(&MOTO)?;
    let (status, _) = raw(&format!("{}/{BUCKET}", moto.endpoint), "PUT", &[], b"");
    assert_eq!(status, 200, "creating the bucket");
    Some(moto)
}

fn storage(moto: &Emulator, expiry: Duration) -> S3Storage {
    S3Storage::builder(BUCKET)
        .with_endpoint(&moto.endpoint)
        .with_region("us-east-1")
        .with_credentials("testing", "testing")
        .with_prefix("tests/")
        .with_expiry(expiry)
        .build()
        .expect("a store")
}

#[test]
fn externalized_batch_is_fetched_through_its_presigned_url() {
    let Some(moto) = start() else { return };
    let storage = storage(&moto, Duration::from_secs(600));
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
    let Some(moto) = start() else { return };
    let storage = storage(&moto, Duration::from_secs(600));
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
    let Some(moto) = start() else { return };
    let storage = storage(&moto, Duration::from_secs(600));
    let pair = storage.upload_url().expect("upload url");
    assert_ne!(pair.upload_url, pair.download_url);
    assert!(pair.download_url.starts_with(storage.location()));
    assert!(pair.expires_at > std::time::SystemTime::now());
    let data = b"uploaded by the client itself".to_vec();
    let (status, _) = raw(&pair.upload_url, "PUT", &[], &data);
    assert_eq!(status, 200);
    assert_eq!(fetch_url(&pair.download_url).expect("fetch"), data);
}

/// What our client does after a `413`, headers and all.
#[test]
fn the_clients_uploader_puts_through_an_upload_url() {
    let Some(moto) = start() else { return };
    let storage = storage(&moto, Duration::from_secs(600));
    let pair = storage.upload_url().expect("upload url");
    let outgoing = Outgoing::new(&TlsSettings::new()).expect("outgoing client");
    let data = b"a request too large for the server".to_vec();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(outgoing.put(
            &pair.upload_url,
            data.clone().into(),
            "application/vnd.apache.arrow.stream",
            Duration::from_secs(10),
        ))
        .expect("put through the upload URL");
    assert_eq!(fetch_url(&pair.download_url).expect("fetch"), data);
}

/// moto serves pre-signed URLs without checking their expiry, so the
/// refusal comes from the fetcher, which reads it from the URL.
#[test]
fn expired_url_is_refused_and_reported() {
    let Some(moto) = start() else { return };
    let storage = storage(&moto, Duration::from_secs(1));
    let url = storage
        .upload(b"short-lived".to_vec(), None)
        .expect("upload");
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(query_param(&url, "X-Amz-Expires"), Some("1"), "{url}");
    let error = fetch_url(&url).expect_err("an expired URL");
    let text = error.to_string();
    assert!(text.contains("the pre-signed URL expired"), "{text}");
    assert!(!text.contains("X-Amz-Signature"), "{text}");
}

#[test]
fn deleted_object_is_reported() {
    let Some(moto) = start() else { return };
    let storage = storage(&moto, Duration::from_secs(600));
    let key = storage.put(b"soon gone".to_vec(), None).expect("put");
    let url = storage.signed_url(Method::GET, &key).expect("sign");
    storage.delete(&key).expect("delete");
    let error = fetch_url(&url).expect_err("a deleted object").to_string();
    assert!(error.contains("404"), "{error}");
    assert!(error.contains("NoSuchKey"), "{error}");
}
