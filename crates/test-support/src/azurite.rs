//! Azurite, Azure Storage's emulator: its well-known account, and the one
//! management request tests need, creating a container, authorized with
//! Shared Key so no Azure SDK is needed.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The emulator's account, published by Microsoft for Azurite alone.
pub const ACCOUNT: &str = "devstoreaccount1";

/// The emulator account's key, published with it.
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const VERSION: &str = "2023-11-03";

/// Creates `container` under `blob_endpoint` (`http://127.0.0.1:PORT/devstoreaccount1`);
/// one that exists already is fine.
///
/// # Errors
///
/// The status line and body of any other answer, or the I/O error.
pub fn create_container(blob_endpoint: &str, container: &str) -> Result<(), String> {
    let rest = blob_endpoint
        .strip_prefix("http://")
        .ok_or_else(|| format!("{blob_endpoint} is not an http:// URL"))?;
    let (host, base) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = format!("{}/{container}", base.trim_end_matches('/'));
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    // The Shared Key string to sign for the Blob service, version
    // 2015-02-21 and later
    // (https://learn.microsoft.com/en-us/rest/api/storageservices/authorize-with-shared-key):
    // the verb, eleven standard headers (all empty here, a zero
    // Content-Length included), the x-ms-* headers sorted, then the
    // resource as /account/path with its query parameters one per line.
    // Path-style emulator URLs carry the account in the path too.
    let string_to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{VERSION}\n/{ACCOUNT}{path}\nrestype:container"
    );
    let key = STANDARD
        .decode(ACCOUNT_KEY)
        .map_err(|e| format!("the account key: {e}"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(string_to_sign.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    let request = format!(
        "PUT {path}?restype=container HTTP/1.1\r\nHost: {host}\r\nx-ms-date: {date}\r\nx-ms-version: {VERSION}\r\nAuthorization: SharedKey {ACCOUNT}:{signature}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut stream = TcpStream::connect(host).map_err(|e| format!("connecting to {host}: {e}"))?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .map_err(|e| e.to_string())?;
    match reply.get(9..12) {
        Some("201" | "409") => Ok(()),
        _ => Err(format!("creating container {container} answered {reply}")),
    }
}
