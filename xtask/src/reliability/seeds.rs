//! `cargo xtask reliability --seeds`: the committed corpus, regenerated
//! from conformance traffic.
//!
//! The `seeds` example of `fuzz/` records what the client conformance
//! suite sends (and, on the pipe, what the worker answers) and cuts it into
//! each target's inputs; libFuzzer's merge (what `cargo fuzz cmin` runs)
//! then keeps the smallest set that covers the same code, which replaces
//! `fuzz/corpus/<target>/`.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};

use super::fuzz::Fuzzer;
use crate::process::{cargo, run_ok};

pub(crate) fn regenerate(fuzzer: &Fuzzer, targets: &[&str]) -> Result<()> {
    let raw = fuzzer.dir.join("seeds");
    println!(
        "\n==> reliability: recording conformance traffic into {}",
        raw.display()
    );
    run_ok(
        cargo()
            .args([
                "run",
                "--manifest-path",
                "fuzz/Cargo.toml",
                "--example",
                "seeds",
            ])
            .arg("--target-dir")
            .arg(&fuzzer.dir)
            .arg("--")
            .arg(&raw),
    )?;
    for &target in targets {
        println!("\n==> reliability: minimizing the {target} corpus");
        let corpus = Path::new("fuzz/corpus").join(target);
        if corpus.exists() {
            fs::remove_dir_all(&corpus)
                .with_context(|| format!("clearing {}", corpus.display()))?;
        }
        fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
        run_ok(
            Command::new(fuzzer.binary(target))
                .arg("-merge=1")
                .arg("-max_len=65536")
                .arg(&corpus)
                .arg(raw.join(target)),
        )?;
        let count = fs::read_dir(&corpus)?.count();
        println!("{target}: {count} inputs kept in {}", corpus.display());
    }
    Ok(())
}
