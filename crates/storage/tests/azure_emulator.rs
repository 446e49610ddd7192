//! `AzureStorage` against Azurite's blob service: the one at
//! `VGI_AZURE_ENDPOINT` (its blob endpoint with the account,
//! `http://127.0.0.1:PORT/devstoreaccount1`, as `cargo xtask azurite` and
//! `cargo xtask ci` start it), else one per test started from
//! `target/azurite` on a free loopback port. Without either the tests skip
//! with a note, unless `VGI_REQUIRE_AZURE` is set (as xtask does), when
//! they fail.
//!
//! Azurite checks a SAS as Azure does: its signature against the account
//! key, its permissions and its expiry.

mod support;

use std::time::{Duration, SystemTime};

use http::Method;
use support::{Emulator, Spec, query_param, raw};
use vgirpc_fetch::{Outgoing, TlsSettings};
use vgirpc_http::{ExternalStorage, UploadUrlProvider, fetch_url};
use vgirpc_storage::AzureStorage;
use vgirpc_test_support::azurite;

const CONTAINER: &str = "vgi-test";

const AZURITE: Spec = Spec {
    name: "Azure emulator",
    endpoint_env: "VGI_AZURE_ENDPOINT",
    require_env: "VGI_REQUIRE_AZURE",
    bin: "target/azurite/node_modules/.bin/azurite-blob",
    args: |port| {
        let port = port.to_string();
        [
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port,
            "--inMemoryPersistence",
        ]
        .map(str::to_owned)
        .to_vec()
    },
    endpoint: |port| format!("http://127.0.0.1:{port}/{}", azurite::ACCOUNT),
    install: "cargo xtask azurite",
};

fn start() -> Option<Emulator> {
    let emulator = Emulator::start(&AZURITE)?;
    azurite::create_container(&emulator.endpoint, CONTAINER).expect("the container");
    Some(emulator)
}

fn storage(emulator: &Emulator, expiry: Duration) -> AzureStorage {
    AzureStorage::builder(CONTAINER)
        .with_endpoint(&emulator.endpoint)
        .with_account(azurite::ACCOUNT)
        .with_access_key(azurite::ACCOUNT_KEY)
        .with_prefix("tests/")
        .with_expiry(expiry)
        .build()
        .expect("a store")
}

#[test]
fn externalized_batch_is_fetched_through_its_sas_url() {
    let Some(emulator) = start() else { return };
    let storage = storage(&emulator, Duration::from_secs(600));
    let data = b"an arrow stream, as far as storage cares".to_vec();
    let url = storage.upload(data.clone(), None).expect("upload");
    assert_eq!(query_param(&url, "sp"), Some("r"), "{url}");
    assert!(query_param(&url, "sig").is_some(), "{url}");
    assert_eq!(
        storage.location(),
        format!("{}/vgi-test/tests/", emulator.endpoint)
    );
    assert!(url.starts_with(storage.location()), "{url}");
    assert_eq!(fetch_url(&url).expect("fetch"), data);
}

#[test]
fn connection_string_configures_the_store() {
    let Some(emulator) = start() else { return };
    let text = format!(
        "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={};",
        azurite::ACCOUNT,
        azurite::ACCOUNT_KEY,
        emulator.endpoint
    );
    let storage = AzureStorage::builder(CONTAINER)
        .with_connection_string(&text)
        .build()
        .expect("a store");
    assert_eq!(storage.account(), azurite::ACCOUNT);
    let url = storage
        .upload(b"configured".to_vec(), None)
        .expect("upload");
    assert_eq!(fetch_url(&url).expect("fetch"), b"configured");
}

#[test]
fn zstd_upload_is_served_with_its_encoding_and_decoded() {
    let Some(emulator) = start() else { return };
    let storage = storage(&emulator, Duration::from_secs(600));
    let data = vec![7u8; 100_000];
    let compressed = zstd::encode_all(&data[..], 3).expect("compress");
    let url = storage
        .upload(compressed.clone(), Some("zstd"))
        .expect("upload");
    assert!(url.contains(".arrow.zst?"), "{url}");
    assert_eq!(fetch_url(&url).expect("fetch"), data);
}

/// Put Blob needs `x-ms-blob-type`, which a SAS cannot carry: a client
/// sends it with its `PUT`, and one that does not is refused.
#[test]
fn upload_url_takes_a_put_and_serves_it_back() {
    let Some(emulator) = start() else { return };
    let storage = storage(&emulator, Duration::from_secs(600));
    let pair = storage.upload_url().expect("upload url");
    assert_ne!(pair.upload_url, pair.download_url);
    assert!(pair.download_url.starts_with(storage.location()));
    assert!(pair.expires_at > SystemTime::now());
    assert_eq!(query_param(&pair.upload_url, "sp"), Some("w"));
    let data = b"uploaded by the client itself".to_vec();
    let (status, body) = raw(&pair.upload_url, "PUT", &[], &data);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let block_blob = [("x-ms-blob-type", "BlockBlob")];
    let (status, body) = raw(&pair.upload_url, "PUT", &block_blob, &data);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    assert_eq!(fetch_url(&pair.download_url).expect("fetch"), data);
    // Each URL is good for its own method only.
    let (status, _) = raw(&pair.download_url, "PUT", &block_blob, b"overwrite");
    assert_eq!(status, 403);
}

/// What our client does after a `413`: its uploader sends the blob type.
#[test]
fn the_clients_uploader_puts_through_an_upload_url() {
    let Some(emulator) = start() else { return };
    let storage = storage(&emulator, Duration::from_secs(600));
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

/// The same URL works, then is refused once its `se` has passed: Azurite
/// checks the expiry itself (its answer does not say why), and so does
/// the server's fetcher.
#[test]
fn expired_url_is_refused_and_reported() {
    let Some(emulator) = start() else { return };
    // The expiry is written in whole seconds, and a busy machine may take
    // a second to upload and fetch: 3 s leaves the first fetch in time.
    let storage = storage(&emulator, Duration::from_secs(3));
    let url = storage
        .upload(b"short-lived".to_vec(), None)
        .expect("upload");
    assert_eq!(fetch_url(&url).expect("fetch while valid"), b"short-lived");
    std::thread::sleep(Duration::from_millis(4100));
    let (status, body) = raw(&url, "GET", &[], &[]);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("AuthorizationFailure"), "{body}");
    // The server's fetcher reads `se` and refuses the URL before asking,
    // saying why, which the store's answer does not.
    let error = fetch_url(&url).expect_err("an expired URL").to_string();
    assert!(error.contains("the pre-signed URL expired"), "{error}");
    assert!(!error.contains("sig="), "{error}");
}

#[test]
fn deleted_object_is_reported() {
    let Some(emulator) = start() else { return };
    let storage = storage(&emulator, Duration::from_secs(600));
    let key = storage.put(b"soon gone".to_vec(), None).expect("put");
    let url = storage.signed_url(Method::GET, &key).expect("sign");
    storage.delete(&key).expect("delete");
    let error = fetch_url(&url).expect_err("a deleted object").to_string();
    assert!(error.contains("404"), "{error}");
    assert!(error.contains("BlobNotFound"), "{error}");
}
