//! `GcsStorage` against gcp-storage-emulator: the one at `VGI_GCS_ENDPOINT`
//! (as `cargo xtask gcs` and `cargo xtask ci` start it), else one per test
//! started from `target/gcs-venv` on a free loopback port. Without either
//! the tests skip with a note, unless `VGI_REQUIRE_GCS` is set (as xtask
//! does), when they fail.
//!
//! The emulator runs under `conformance/gcs_emulator.py`, which adds the
//! `ETag` real GCS answers an upload with and serves `DELETE` on the object
//! path as GCS does. It serves signed URLs through its plain object path
//! (`/{bucket}/{object}`) but checks neither their signature nor their
//! expiry, keeps no `Content-Encoding` and answers no `HEAD`. So these
//! tests show that objects written through `object_store` come back through
//! the URLs issued for them, and check the signature and expiry the URLs
//! carry against the service account's public key themselves.

mod support;

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use http::Method;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::sha2::{Digest, Sha256};
use rsa::signature::Verifier;
use support::{Emulator, Spec, query_param, raw};
use vgirpc_http::{ExternalStorage, UploadUrlProvider, fetch_url};
use vgirpc_storage::GcsStorage;

/// Letters only: `object_store` percent-encodes every other character of
/// the bucket in its requests' paths, which real GCS decodes and the
/// emulator's routes do not match.
const BUCKET: &str = "vgitest";
const CLIENT_EMAIL: &str = "vgi-test@vgi-test.iam.gserviceaccount.com";

const EMULATOR: Spec = Spec {
    name: "GCS emulator",
    endpoint_env: "VGI_GCS_ENDPOINT",
    require_env: "VGI_REQUIRE_GCS",
    bin: "target/gcs-venv/bin/python",
    args: |port| {
        let launcher = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../conformance/gcs_emulator.py"
        );
        [launcher, "start", "--host", "127.0.0.1", "--port"]
            .into_iter()
            .map(str::to_owned)
            .chain([port.to_string(), "--no-store-on-disk".to_owned()])
            .collect()
    },
    endpoint: |port| format!("http://127.0.0.1:{port}"),
    install: "cargo xtask gcs",
};

/// The emulator, with the tests' bucket made (409 when it exists).
fn start() -> Option<Emulator> {
    let emulator = Emulator::start(&EMULATOR)?;
    let body = format!(r#"{{"name":"{BUCKET}"}}"#);
    let (status, reply) = raw(
        &format!("{}/storage/v1/b", emulator.endpoint),
        "POST",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert!(
        matches!(status, 200 | 409),
        "creating the bucket: {status} {}",
        String::from_utf8_lossy(&reply)
    );
    Some(emulator)
}

/// A service account made for this test run: its RSA key signs the URLs,
/// so nothing asks Google for a token or a signature.
fn service_account() -> &'static (String, rsa::PrivateKey) {
    static ACCOUNT: OnceLock<(String, rsa::PrivateKey)> = OnceLock::new();
    ACCOUNT.get_or_init(|| {
        let key = <rsa::PrivateKey as rsa::Generate>::generate();
        let pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).expect("PEM");
        let json = serde_json::json!({
            "type": "service_account",
            "client_email": CLIENT_EMAIL,
            "private_key_id": "vgi-test",
            "private_key": pem.as_str(),
        });
        (json.to_string(), key)
    })
}

fn storage(emulator: &Emulator, expiry: Duration) -> GcsStorage {
    GcsStorage::builder(BUCKET)
        .with_endpoint(&emulator.endpoint)
        .with_service_account_key(&service_account().0)
        .with_prefix("tests/")
        .with_expiry(expiry)
        .build()
        .expect("a store")
}

/// Checks `url`'s V4 signature as Google would
/// (<https://cloud.google.com/storage/docs/authentication/signatures>):
/// the canonical request (method, path, query without the signature,
/// headers, signed-header list, `UNSIGNED-PAYLOAD`) hashed into the string
/// to sign, verified with RSA PKCS#1 v1.5 SHA-256 against the account's
/// public key. `object_store` signs for the `host` of the real service
/// whatever the endpoint, as Google's libraries do for emulators.
fn verify_v4_signature(method: &str, url: &str) {
    let (base, query) = url.split_once('?').expect("a query");
    let path = &base["http://".len()..];
    let path = &path[path.find('/').expect("a path")..];
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with("X-Goog-Signature="))
        .collect();
    pairs.sort_unstable();
    let signed_headers = query_param(url, "X-Goog-SignedHeaders").expect("signed headers");
    assert_eq!(signed_headers, "host", "{url}");
    let canonical = format!(
        "{method}\n{path}\n{}\nhost:storage.googleapis.com\n\nhost\nUNSIGNED-PAYLOAD",
        pairs.join("&")
    );
    let date = query_param(url, "X-Goog-Date").expect("a date");
    let scope = format!("{}/auto/storage/goog4_request", &date[..8]);
    let to_sign = format!(
        "GOOG4-RSA-SHA256\n{date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let signature = query_param(url, "X-Goog-Signature").expect("a signature");
    let signature = Signature::try_from(unhex(signature).as_slice()).expect("a signature");
    let key = VerifyingKey::<Sha256>::new(service_account().1.to_public_key());
    key.verify(to_sign.as_bytes(), &signature)
        .unwrap_or_else(|e| panic!("the signature of {url} does not verify: {e}"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn externalized_batch_is_fetched_through_its_signed_url() {
    let Some(emulator) = start() else { return };
    let storage = storage(&emulator, Duration::from_secs(600));
    let data = b"an arrow stream, as far as storage cares".to_vec();
    let url = storage.upload(data.clone(), None).expect("upload");
    assert_eq!(
        query_param(&url, "X-Goog-Algorithm"),
        Some("GOOG4-RSA-SHA256")
    );
    assert_eq!(
        storage.location(),
        format!("{}/{BUCKET}/tests/", emulator.endpoint)
    );
    assert!(url.starts_with(storage.location()), "{url}");
    verify_v4_signature("GET", &url);
    assert_eq!(fetch_url(&url).expect("fetch"), data);
}

/// The emulator drops the `Content-Encoding` the upload sends, so the
/// object comes back as the zstd frame it was stored as.
#[test]
fn zstd_upload_is_stored_as_its_frame() {
    let Some(emulator) = start() else { return };
    let storage = storage(&emulator, Duration::from_secs(600));
    let data = vec![7u8; 100_000];
    let compressed = zstd::encode_all(&data[..], 3).expect("compress");
    let url = storage
        .upload(compressed.clone(), Some("zstd"))
        .expect("upload");
    assert!(url.contains(".arrow.zst?"), "{url}");
    let fetched = fetch_url(&url).expect("fetch");
    assert_eq!(fetched, compressed);
    assert_eq!(zstd::decode_all(&fetched[..]).expect("a zstd frame"), data);
}

#[test]
fn upload_url_takes_a_put_and_serves_it_back() {
    let Some(emulator) = start() else { return };
    let storage = storage(&emulator, Duration::from_secs(600));
    let pair = storage.upload_url().expect("upload url");
    assert_ne!(pair.upload_url, pair.download_url);
    assert!(pair.download_url.starts_with(storage.location()));
    verify_v4_signature("PUT", &pair.upload_url);
    verify_v4_signature("GET", &pair.download_url);
    let data = b"uploaded by the client itself".to_vec();
    let (status, _) = raw(&pair.upload_url, "PUT", &[], &data);
    assert_eq!(status, 200);
    assert_eq!(fetch_url(&pair.download_url).expect("fetch"), data);
}

/// The emulator serves expired URLs, so the expiry is read from the URL:
/// signed now for one second, in `X-Goog-Date` and `X-Goog-Expires`, which
/// the signature covers; the server's fetcher refuses the URL once it has
/// passed.
#[test]
fn url_expires_when_configured() {
    let Some(emulator) = start() else { return };
    let storage = storage(&emulator, Duration::from_secs(1));
    let before = SystemTime::now();
    let url = storage
        .upload(b"short-lived".to_vec(), None)
        .expect("upload");
    assert_eq!(query_param(&url, "X-Goog-Expires"), Some("1"), "{url}");
    let date = query_param(&url, "X-Goog-Date").expect("a date");
    let signed_at = SystemTime::UNIX_EPOCH + Duration::from_secs(unix_seconds(date));
    let slack = Duration::from_secs(2);
    assert!(
        signed_at + slack >= before && signed_at <= SystemTime::now(),
        "{date}"
    );
    verify_v4_signature("GET", &url);
    // The emulator would serve it still; the fetcher refuses it first.
    std::thread::sleep(Duration::from_millis(2100));
    let error = fetch_url(&url).expect_err("an expired URL").to_string();
    assert!(error.contains("the pre-signed URL expired"), "{error}");
    assert!(!error.contains("X-Goog-Signature"), "{error}");
    let pair = storage.upload_url().expect("upload url");
    let lifetime = pair
        .expires_at
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    assert!(lifetime <= Duration::from_secs(1), "{lifetime:?}");
    assert!(
        GcsStorage::builder(BUCKET)
            .with_endpoint(&emulator.endpoint)
            .with_service_account_key(&service_account().0)
            .with_expiry(Duration::from_secs(8 * 24 * 3600))
            .build()
            .expect_err("beyond 7 days")
            .to_string()
            .contains("7 days")
    );
}

/// Seconds since the epoch of a `YYYYMMDDTHHMMSSZ` time.
fn unix_seconds(date: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| date[r].parse::<i64>().expect("digits");
    let (year, month, day) = (n(0..4), n(4..6), n(6..8));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    u64::try_from(days * 86_400 + n(9..11) * 3600 + n(11..13) * 60 + n(13..15)).expect("after 1970")
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
    assert!(error.contains(key.as_ref()), "{error}");
}
