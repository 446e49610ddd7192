//! `--http`: the worker as an HTTP server, with the flags (and defaults) of
//! the reference's `tests/serve_conformance_http*.py` servers, so one binary
//! plays the plain, strict-cap, shared-key, storage and reject-all servers.
//!
//! Like the reference's servers it enables sticky sessions by default, with
//! a fixed echo header for the suite's echo test, and serves the test-only
//! drain switch `POST`/`DELETE /__test_drain__`.

mod auth_flags;
mod flags;
mod test_drain;
mod values;

use std::process::ExitCode;
use std::time::Duration;

use vgirpc::Server;
use vgirpc_http::{HttpServer, ShutdownSignals, Stopped, TlsReload};

pub(crate) use flags::{HttpFlags, HttpOptions};
use test_drain::TestDrainLayer;

/// Usage lines of the HTTP flags.
pub(crate) const USAGE: &str = "\
  --http               serve HTTP; prints PORT:<port> when ready
  --host HOST          bind address (default 127.0.0.1)
  --port PORT          port (default 0: any free port)
  --token-key HEX      shared stream-token key (default $VGI_TOKEN_KEY, else random)
  --fake-storage URL   externalize into the reference's fake storage service
                       and vend upload URLs from it
  --s3-storage         externalize into S3 and vend pre-signed upload URLs, as
                       AWS_BUCKET, AWS_ENDPOINT_URL, AWS_REGION and the AWS_*
                       credentials say
  --externalize-threshold N  batch size that triggers externalization (default 4096)
  --compression none|zstd    compression of externalized batches (default none)
  --max-request-bytes N      advertised request cap (default: the threshold
                             with storage, else none)
  --max-response-bytes N     HTTP body cap
  --max-externalized-response-bytes N  external upload cap per response
  --auth reject-all    refuse every request except the health check
  --http-pkce          serve as the Go conformance worker's browser-login server
                       (implies --http): prefix /vgi, every request refused
                       without a token, OAuth metadata for client my-client-id
                       (secret my-client-secret), the login routes and the
                       token proxy under /vgi/_oauth/
  --idp-url URL        its authorization server (default http://127.0.0.1:9999)
  --resource URL       its resource URL (default http://127.0.0.1:8000/vgi)
  --jwks FILE|URL      accept bearer JWTs signed by these keys (needs --issuer
                       and --audience; a URL is refreshed)
  --issuer ISS         accepted JWT issuer (repeatable)
  --audience AUD       accepted JWT audience (repeatable)
  --principal-claim C  JWT claim naming the caller (default sub)
  --jwt-leeway SEC     clock skew allowed on exp and nbf (default 0)
  --mtls-header NAME   accept the URL-encoded PEM client certificate a proxy
                       puts in header NAME (the proxy must strip clients' copies)
  --mtls-native        accept the client certificate verified by --client-ca
  --xfcc               accept Envoy's x-forwarded-client-cert (the proxy must
                       strip clients' copies)
  --resource-metadata URL  publish RFC 9728 metadata for resource URL, the
                       --issuer values as its authorization servers
                       (authenticators are tried in the order listed here)
  --no-sticky          disable sticky sessions (enabled by default)
  --no-sticky-echo     do not advertise the sticky echo header
                       (default: x-vgi-conformance-echo: conformance-fixed-marker)
  --drain-grace-seconds SEC  on SIGTERM/SIGINT, serve open sticky sessions
                       this long before exiting (default 0)
  --drain-timeout SEC  then wait this long for the requests in flight (default 30)
  --max-decompressed-bytes N  cap on a zstd request body's decoded size
                       (default 16x --max-request-bytes, else 256 MiB)
  --max-connections N  connections served at once (default 1000)
  --header-read-timeout SEC|none  time for a request head (default 10)
  --body-read-timeout SEC|none    longest pause in a request body (default 30)
  --keep-alive-timeout SEC|none   idle time before a connection closes (default 75)
  --cors-origin ORIGIN let browser apps of ORIGIN call the server (repeatable;
                       `*` for any origin)
  --cors-max-age SEC   how long browsers cache a preflight (default 7200)
  --tls-cert FILE      serve HTTPS with this PEM certificate chain (leaf first);
                       reloaded with --tls-key on SIGHUP
  --tls-key FILE       the certificate's PEM private key
  --client-ca FILE     verify client certificates against these PEM CAs
  --require-client-cert  refuse clients without one (default: optional)
  --no-http2           HTTP/1.1 only (default: h2 by ALPN with TLS, h2c by
                       prior knowledge without, beside HTTP/1.1)
  --metrics-path PATH  serve Prometheus metrics at PATH, without authentication
                       (default: no metrics endpoint)
  --describe           accepted for compatibility; __describe__ is always served";

/// Threads for calls that do not run in place; each HTTP/1.1 connection
/// or HTTP/2 stream has at most one call running, so beyond this many
/// calls at once the others wait.
const MAX_BLOCKING_THREADS: usize = 64;

/// Serves `server` over HTTP until SIGTERM or SIGINT, draining sticky
/// sessions for the grace period first.
pub(crate) fn run(server: &Server, options: &HttpOptions) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Calls beyond the in-place ones block a runtime thread, and each
        // such thread keeps its allocator's caches: the bound keeps memory
        // under load bounded too.
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("vgi-conformance-worker: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let HttpOptions {
        host,
        port,
        reject_all,
        token_key,
        config,
        drain_grace,
    } = options;
    let port = *port;
    let mut config = config.clone();
    if let Some(key) = token_key {
        config = config.with_token_key(key.clone());
    }
    if *reject_all {
        config = config.with_authenticate(vgirpc_http::reject_all());
    }
    let result = runtime.block_on(async {
        let http = HttpServer::new(server.clone(), config).map_err(|e| e.to_string())?;
        let drain = http.drain_handle();
        if let Some(reload) = http.tls_reload() {
            tokio::spawn(reload_on_sighup(reload));
        }
        let http = http.layer(TestDrainLayer(drain));
        // Before the ready line: a signal right after it must drain, not kill.
        let signals = ShutdownSignals::install().map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            // The harness reads exactly this one line; nothing else goes to stdout.
            writeln!(stdout, "PORT:{port}")
                .and_then(|()| stdout.flush())
                .map_err(|e| e.to_string())?;
        }
        http.serve_until_signalled(listener, signals, *drain_grace)
            .await
            .map_err(|e| e.to_string())
    });
    // Requests still running get a moment; the process is leaving anyway.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(Stopped::Graceful) => ExitCode::SUCCESS,
        // A second signal cut the grace period short, as the reference's
        // exit status 1 reports.
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("vgi-conformance-worker: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the TLS certificate and key again on every `SIGHUP`, as a
/// certificate renewal expects; a failed reload keeps the old ones.
async fn reload_on_sighup(reload: TlsReload) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; the TLS certificate will not be reloaded");
        return;
    };
    while hangups.recv().await.is_some() {
        match reload.reload() {
            Ok(()) => tracing::info!("reloaded the TLS certificate"),
            Err(err) => tracing::error!(%err, "TLS certificate reload failed; keeping the old one"),
        }
    }
}
