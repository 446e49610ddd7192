//! `cargo xtask pages`: the HTTP server's browser pages in a real browser.
//!
//! String checks in the crate's tests prove what the server sends; this
//! proves what a browser makes of it. The conformance worker serves HTTP,
//! our CLI asks it for its methods (`describe`, over the RPC protocol, so
//! the list does not come from the page under test), and headless
//! Chromium renders the describe and landing pages: every method must be
//! in the DOM it built, and the screenshots land in `target/pages/` for a
//! human to look at.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::conformance::{WORKER_BIN, WORKER_PACKAGE};
use crate::http::start_worker;
use crate::process::{cargo, ensure_debian_package, run_ok, shell_line, shell_quote, target_dir};

/// Where Debian's package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";
const CLI_PACKAGE: &str = "vgirpc-cli";
const CLI_BIN: &str = "vgi-rpc";
/// A page that takes longer than this to render is a failure, not a wait.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// Build the worker and the CLI, start the worker over HTTP, and check its
/// pages in Chromium (installed with apt-get first if missing).
pub(crate) fn run() -> Result<()> {
    let target = target_dir()?;
    let out = target.join("pages");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // Chromium resolves --screenshot against its own working directory.
    let out = out.canonicalize()?;

    println!("pages: building the conformance worker and the CLI");
    run_ok(cargo().args(["build", "-p", WORKER_PACKAGE, "-p", CLI_PACKAGE]))?;
    let worker = target.join("debug").join(WORKER_BIN);
    let cli = target.join("debug").join(CLI_BIN);

    ensure_chromium()?;

    println!("pages: starting the worker over HTTP");
    let (_worker, port) = start_worker(&shell_quote(&worker.to_string_lossy()), &[])?;
    let base = format!("http://127.0.0.1:{port}");

    let described = describe(&cli, &base)?;
    let methods: Vec<&String> = described["methods"]
        .as_object()
        .context("describe printed no `methods` object")?
        .keys()
        .collect();
    let protocol = described["protocol_name"].as_str().unwrap_or_default();
    let hash = described["protocol_hash"].as_str().unwrap_or_default();
    if methods.is_empty() || protocol.is_empty() || hash.is_empty() {
        bail!("describe of {base} names no methods, protocol or hash: {described}");
    }
    println!(
        "pages: {protocol} has {} methods, protocol hash {hash}",
        methods.len()
    );

    let browser = Browser { out: &out };
    let dom = browser.dump_dom(&format!("{base}/describe"), "describe.dom.html")?;
    let missing: Vec<&str> = methods
        .iter()
        .filter(|name| !dom.contains(&format!("<h2><code>{name}</code></h2>")))
        .map(|name| name.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the rendered describe page lacks {} of {} methods: {}",
            missing.len(),
            methods.len(),
            missing.join(", ")
        );
    }
    if !dom.contains(hash) {
        bail!("the rendered describe page lacks the protocol hash {hash}");
    }
    println!(
        "pages: the describe page shows all {} methods and the hash",
        methods.len()
    );

    let landing = browser.dump_dom(&format!("{base}/"), "landing.dom.html")?;
    if !landing.contains(&format!("<h1>{protocol}</h1>")) || !landing.contains("href=\"/describe\"")
    {
        bail!("the rendered landing page lacks the service name or the link to /describe");
    }
    println!("pages: the landing page names {protocol} and links the API");

    browser.screenshot(&format!("{base}/describe"), "describe.png", "1280,4000")?;
    browser.screenshot(&format!("{base}/"), "landing.png", "1280,800")?;
    println!("pages: all checks passed; screenshots in {}", out.display());
    Ok(())
}

/// Installs Debian's chromium package unless the browser is there.
fn ensure_chromium() -> Result<()> {
    ensure_debian_package(Path::new(CHROMIUM), "chromium")
}

/// The worker's `describe` as our CLI prints it in JSON.
fn describe(cli: &Path, base: &str) -> Result<serde_json::Value> {
    let words = [
        cli.to_string_lossy().into_owned(),
        "--url".to_owned(),
        base.to_owned(),
        "describe".to_owned(),
        "--format".to_owned(),
        "json".to_owned(),
    ];
    println!("+ {}", shell_line(&words));
    let output = Command::new(&words[0])
        .args(&words[1..])
        .stdin(Stdio::null())
        .output()
        .context("running the CLI")?;
    if !output.status.success() {
        bail!(
            "describe failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("parsing the CLI's describe JSON")
}

/// Headless Chromium, writing what it produces under `out`.
struct Browser<'a> {
    out: &'a Path,
}

impl Browser<'_> {
    /// The DOM Chromium builds for `url`, also kept in `out/file`.
    fn dump_dom(&self, url: &str, file: &str) -> Result<String> {
        let file = self.out.join(file);
        self.run(&["--dump-dom".to_owned(), url.to_owned()], Some(&file))?;
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))
    }

    /// A `size` (`width,height`) screenshot of `url` into `out/png`.
    fn screenshot(&self, url: &str, png: &str, size: &str) -> Result<()> {
        let png = self.out.join(png);
        self.run(
            &[
                format!("--screenshot={}", png.display()),
                format!("--window-size={size}"),
                "--hide-scrollbars".to_owned(),
                url.to_owned(),
            ],
            None,
        )?;
        let bytes = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        if bytes == 0 {
            bail!("chromium wrote no screenshot to {}", png.display());
        }
        println!("pages: wrote {} ({bytes} bytes)", png.display());
        Ok(())
    }

    /// Runs Chromium with `args`, its stdout into `stdout` when given; its
    /// stderr (a chatty log even when all is well) goes to a file beside
    /// it and is shown only on failure.
    fn run(&self, args: &[String], stdout: Option<&Path>) -> Result<()> {
        let mut words = vec![
            CHROMIUM.to_owned(),
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            // A profile of its own, not the user's.
            format!(
                "--user-data-dir={}",
                self.out.join("chromium-profile").display()
            ),
        ];
        words.extend_from_slice(args);
        let log = self.out.join("chromium.log");
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..])
            .stdin(Stdio::null())
            .stderr(File::create(&log)?);
        match stdout {
            Some(path) => {
                println!("+ {} > {}", shell_line(&words), path.display());
                cmd.stdout(File::create(path)?);
            }
            None => {
                println!("+ {}", shell_line(&words));
                cmd.stdout(Stdio::null());
            }
        }
        let mut child = cmd.spawn().context("starting chromium")?;
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if started.elapsed() > BROWSER_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "chromium did not finish within {BROWSER_TIMEOUT:?}; its log: {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if !status.success() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("chromium failed ({status}):\n{text}");
        }
        Ok(())
    }
}
