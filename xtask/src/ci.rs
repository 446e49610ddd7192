//! `cargo xtask ci`: every check a change must pass, in the order that fails fastest.
//!
//! Cheap static checks come first so a formatting slip is reported in
//! seconds, not after a release build and the conformance suite.

use std::process::Command;

use anyhow::{Context as _, Result};

use crate::process::{cargo, run_ok, target_dir};
use crate::python::{self, Venv};
use crate::{azurite, conformance, gcs, layers, pages, reliability, s3};

/// A cargo invocation: step name, arguments, extra environment.
type Step = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

const STEPS: &[Step] = &[
    ("fmt", &["fmt", "--all", "--", "--check"], &[]),
    (
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    ),
    (
        "doc",
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    ),
    // The reference venv exists by now (see `run`): tests that call the
    // reference Python client must run, not skip.
    (
        "test",
        &["test", "--workspace"],
        &[("VGI_REQUIRE_REFERENCE", "1")],
    ),
    // What the README's first command shows, as a user would run it, and
    // the other examples.
    (
        "example quickstart",
        &["run", "-p", "vgirpc-examples", "--example", "quickstart"],
        &[],
    ),
    (
        "example calculator",
        &["run", "-p", "vgirpc-examples", "--example", "calculator"],
        &[],
    ),
    (
        "example auth",
        &["run", "-p", "vgirpc-examples", "--example", "auth"],
        &[],
    ),
    (
        "example streams",
        &["run", "-p", "vgirpc-examples", "--example", "streams"],
        &[],
    ),
    (
        "test (otel and sentry features)",
        &["test", "-p", "vgirpc", "--features", "otel,sentry"],
        &[],
    ),
    (
        "clippy (otel and sentry features)",
        &[
            "clippy",
            "-p",
            "vgirpc",
            "--features",
            "otel,sentry",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    ),
    // Built alone, the client has no HTTP transport (the workspace build
    // turns it on for the CLI).
    (
        "clippy (client without http)",
        &[
            "clippy",
            "-p",
            "vgirpc-client",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    ),
    // The transport crates build the server core without its client.
    (
        "clippy (server core without the client)",
        &[
            "clippy",
            "-p",
            "vgirpc",
            "--no-default-features",
            "--lib",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    ),
    // Every crate packages: manifests complete, path dependencies
    // versioned, the files a publish would upload. Not rebuilt from the
    // tarballs here: cargo keys both the unpacked sources and their build
    // cache by crate version alone, so a run after a change that kept the
    // version would build stale copies; the steps above build the sources.
    // The harnesses (`publish = false`) are left out: they depend on the
    // unpublished test support as a normal dependency, which has no
    // registry version to name.
    (
        "package",
        &[
            "package",
            "--workspace",
            "--exclude",
            "vgirpc-bench",
            "--exclude",
            "vgirpc-conformance",
            "--exclude",
            "vgirpc-examples",
            "--exclude",
            "vgirpc-reliability",
            "--exclude",
            "vgirpc-test-support",
            "--exclude",
            "xtask",
            "--allow-dirty",
            "--no-verify",
        ],
        &[],
    ),
    (
        "test (fly feature)",
        &["test", "-p", "vgirpc-http", "--features", "fly", "--doc"],
        &[],
    ),
];

/// The storage emulators the `test` step's storage tests run against.
struct StorageEmulators {
    moto: s3::Moto,
    gcs: gcs::Gcs,
    azurite: azurite::Azurite,
}

impl StorageEmulators {
    fn start() -> Result<Self> {
        println!("\n==> ci: S3 emulator");
        let moto = s3::venv()
            .and_then(|v| s3::Moto::start(&v, "vgi-test"))
            .context("ci step `S3 emulator` failed")?;
        println!("\n==> ci: GCS emulator");
        let gcs = gcs::venv()
            .and_then(|v| gcs::Gcs::start(&v, gcs::BUCKET))
            .context("ci step `GCS emulator` failed")?;
        println!("\n==> ci: Azure emulator");
        let azurite = azurite::install()
            .and_then(|bin| azurite::Azurite::start(&bin, "vgi-test"))
            .context("ci step `Azure emulator` failed")?;
        Ok(Self { moto, gcs, azurite })
    }

    /// Their endpoints, and the tests told to fail rather than skip.
    fn pass_to(&self, cmd: &mut Command) {
        cmd.env("VGI_S3_ENDPOINT", self.moto.endpoint())
            .env("VGI_REQUIRE_S3", "1")
            .env("VGI_GCS_ENDPOINT", self.gcs.endpoint())
            .env("VGI_REQUIRE_GCS", "1")
            .env("VGI_AZURE_ENDPOINT", self.azurite.endpoint())
            .env("VGI_REQUIRE_AZURE", "1");
    }
}

/// Run the layering check, [`STEPS`], the pages in a browser, a quick
/// fuzzing pass, then the conformance suite; stop at the first failure.
/// Every cargo step but `fmt` runs `--locked`: CI builds exactly the
/// committed `Cargo.lock`.
pub(crate) fn run() -> Result<()> {
    println!("\n==> ci: layering");
    layers::run().context("ci step `layering` failed")?;
    let mut venv = None;
    let mut emulators = None;
    for &(name, args, env) in STEPS {
        if name == "test" {
            println!("\n==> ci: reference Python venv");
            let python = python::find_or_build().context("ci step `reference venv` failed")?;
            venv = Some(
                Venv::ensure(&target_dir()?.join("conformance-venv"), &python)
                    .context("ci step `reference venv` failed")?,
            );
            emulators = Some(StorageEmulators::start()?);
        }
        println!("\n==> ci: {name}");
        let (subcommand, rest) = args.split_first().context("a ci step without a command")?;
        let mut cmd = cargo();
        cmd.arg(subcommand);
        if *subcommand != "fmt" {
            cmd.arg("--locked");
        }
        cmd.args(rest).envs(env.iter().copied());
        // The storage tests must reach the emulators, not skip; they stop
        // at the end of this step.
        let running = emulators.take_if(|_| name == "test");
        if let Some(running) = &running {
            running.pass_to(&mut cmd);
        }
        run_ok(&mut cmd).with_context(|| format!("ci step `{name}` failed"))?;
        if name == "example streams"
            && let Some(venv) = &venv
        {
            // The typed client calling the reference's Python worker.
            println!("\n==> ci: example reference");
            let mut cmd = cargo();
            cmd.args([
                "run",
                "--locked",
                "-p",
                "vgirpc-examples",
                "--example",
                "reference",
                "--",
            ])
            .arg(venv.bin("vgi-rpc-conformance"))
            .arg("--describe");
            run_ok(&mut cmd).context("ci step `example reference` failed")?;
        }
    }
    println!("\n==> ci: pages");
    pages::run().context("ci step `pages` failed")?;
    println!("\n==> ci: reliability (quick)");
    reliability::run(&reliability::Options::for_ci()).context("ci step `reliability` failed")?;
    println!("\n==> ci: conformance");
    conformance::run(&conformance::Options::for_ci()).context("ci step `conformance` failed")?;
    println!("\nci: all steps passed");
    Ok(())
}
