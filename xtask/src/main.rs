//! Project automation, run as `cargo xtask <command>` (see `.cargo/config.toml`).
//!
//! The conformance suite that defines correct vgi-rpc behaviour is written in
//! Python and ships with the reference implementation on PyPI.  Running it
//! against the Rust worker takes several fiddly steps — a Python new enough for
//! vgi-rpc, a pinned virtualenv, a release build of the worker, two different
//! test runners and a ledger of known failures — so they live here, in Rust,
//! where every contributor and CI already has a toolchain, instead of in shell
//! scripts that drift apart.
//!
//! Commands:
//!
//! * `conformance` — run the conformance suite against the worker; see
//!   [`conformance::Options`] for the flags.
//! * `ci` — formatting, lints, docs, tests, then `conformance`, stopping at the
//!   first failure.  This is what `.ci/run` and the GitHub workflow call.
//! * `bench` — our worker and the reference worker side by side; see
//!   [`mod@bench`] and `docs/benchmarks.md`.
//! * `pages` — the HTTP server's browser pages rendered by headless
//!   Chromium; see [`mod@pages`].
//! * `s3` — the S3 storage tests against the emulator; see [`mod@s3`].
//! * `gcs`, `azurite` — the GCS and Azure storage tests against their
//!   emulators; see [`mod@gcs`] and [`mod@azurite`].
//! * `reliability` — hostile input: the fuzz targets of `fuzz/`, then the
//!   attack matrix and soak against the running worker; see [`reliability`]
//!   and `docs/reliability.md`.

mod access_schema;
mod azurite;
mod bench;
mod ci;
mod cli_run;
mod client;
mod conformance;
mod emulator;
mod expectations;
mod gcs;
mod http;
mod layers;
mod oauth;
mod pages;
mod process;
mod pytest;
mod python;
mod reliability;
mod report;
mod s3;
mod s3_interop;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  conformance   run the vgi-rpc conformance suite against the Rust worker
                  --transport NAME   run only this transport (repeatable; default: all)
                  --client           run the client suite (the `client` transport):
                                     our client against both workers on every transport
                                     (`--transport oauth-token-proxy`: the reference's OAuth
                                     token-proxy test from its sdist, our worker as the Go one;
                                     `--transport s3-interop`: our client against the reference's
                                     server on S3 and the reference client uploading to ours)
                  --filter PATTERN   select tests: a glob for vgi-rpc-test, a -k
                                     expression for pytest (a plain word works for both)
                  --skip-build       use the worker binary that is already built
                  --debug            test debug builds instead of release builds
                  --worker CMD       test this worker command instead of building ours
                                     (also VGI_CONFORMANCE_WORKER)
  ci            layering, fmt, clippy, doc, test (all --locked), the examples,
                pages, reliability --quick, then conformance; stops at the first failure
  layers        check the crate graph against the layers of docs/ARCHITECTURE.md
  pages         the HTTP server's landing and describe pages in headless Chromium
                (installed with apt-get if /usr/bin/chromium is missing): every
                method of the conformance worker rendered; screenshots in target/pages/
  bench         our worker and the reference worker, same workloads, side by side
                  --quick            small sizes, one short run (seconds)
                  --runs N           runs per workload and server (default 5)
                  --transport NAME   pipe, unix, shm or http (repeatable; default: all)
                  --soak             long unary loop on our worker: peak RSS growth
                  --skip-build       use the binaries that are already built
                results: target/bench/; more options: target/release/vgirpc-bench --help
  s3            the S3 storage tests against moto's S3 server, installed from PyPI
                into target/moto-venv on first use and started on a free port
  gcs           the GCS storage tests against gcp-storage-emulator, installed from
                PyPI into target/gcs-venv on first use and started on a free port
  azurite       the Azure storage tests against Azurite's blob service, installed
                from npm into target/azurite on first use and started on a free port
  reliability   every fuzz target of fuzz/ on its committed corpus, one after another,
                then the attack matrix and the soak against the release worker
                  --runs N           executions per target (default 10000000)
                  --quick            replay the corpus and fuzz each target for 20 s;
                                     smaller attacks and a 10 s soak
                  --fuzz-only        skip the attack matrix and soak
                  --attacks-only     skip fuzzing
                  --target NAME      only this target (repeatable): ipc_reader, describe,
                                     shm, token, request, http
                  --seeds            regenerate fuzz/corpus/ from conformance traffic
                installs cargo-fuzz into target/tools on first use; failing inputs are
                saved under fuzz/artifacts/; attack results in target/reliability/;
                see docs/reliability.md
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    // Paths in commands and ledgers are relative to the workspace root.
    if let Err(err) = workspace_root().and_then(|root| Ok(std::env::set_current_dir(root)?)) {
        eprintln!("xtask: error: cannot enter the workspace root: {err:#}");
        return ExitCode::FAILURE;
    }
    let result = match args.next().as_deref() {
        Some("conformance") => conformance::Options::parse(args).and_then(|o| conformance::run(&o)),
        Some("ci") => match args.next() {
            None => ci::run(),
            Some(extra) => Err(anyhow::anyhow!("`ci` takes no arguments (got {extra:?})")),
        },
        Some("bench") => bench::run(&bench::Options::parse(args)),
        Some("layers") => layers::run(),
        Some("pages") => match args.next() {
            None => pages::run(),
            Some(extra) => Err(anyhow::anyhow!(
                "`pages` takes no arguments (got {extra:?})"
            )),
        },
        Some("reliability") => reliability::Options::parse(args).and_then(|o| reliability::run(&o)),
        Some("s3") => match args.next() {
            None => s3::run(),
            Some(extra) => Err(anyhow::anyhow!("`s3` takes no arguments (got {extra:?})")),
        },
        Some("gcs") => match args.next() {
            None => gcs::run(),
            Some(extra) => Err(anyhow::anyhow!("`gcs` takes no arguments (got {extra:?})")),
        },
        Some("azurite") => match args.next() {
            None => azurite::run(),
            Some(extra) => Err(anyhow::anyhow!(
                "`azurite` takes no arguments (got {extra:?})"
            )),
        },
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n\n{USAGE}")),
        None => Err(anyhow::anyhow!("no command given\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root, so commands behave the same from any directory.
fn workspace_root() -> Result<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    match manifest_dir.parent() {
        Some(root) => Ok(root.to_path_buf()),
        None => bail!(
            "xtask manifest dir {} has no parent",
            manifest_dir.display()
        ),
    }
}
