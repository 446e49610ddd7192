//! `cargo xtask reliability`: what hostile input must not do to us.
//!
//! Each kind of check is a step of its own module, run in order; the
//! first that fails stops the run with a non-zero exit: [`fuzz`], every
//! coverage-guided fuzz target of `fuzz/` for a number of executions on
//! the committed corpus, then [`attack`], the attack matrix and the soak
//! against the running worker. See `docs/reliability.md`.

mod attack;
mod fuzz;
mod seeds;

use anyhow::{Result, bail};

/// Executions per fuzz target of a full run.
const DEFAULT_RUNS: u64 = 10_000_000;

/// `cargo xtask reliability` options.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// `--runs N`: executions per fuzz target.
    runs: u64,
    /// `--quick`: replay the corpus and fuzz each target briefly (CI).
    quick: bool,
    /// `--target NAME` (repeatable): only these fuzz targets.
    targets: Vec<String>,
    /// `--seeds`: regenerate the committed corpus from conformance traffic
    /// instead of fuzzing.
    seeds: bool,
    /// `--fuzz-only` / `--attacks-only`: run one of the two steps.
    fuzz: bool,
    attacks: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            runs: DEFAULT_RUNS,
            quick: false,
            targets: Vec::new(),
            seeds: false,
            fuzz: true,
            attacks: true,
        }
    }
}

impl Options {
    pub(crate) fn parse(mut args: impl Iterator<Item = String>) -> Result<Self> {
        let mut options = Self::default();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    (flag.to_owned(), Some(value.to_owned()))
                }
                _ => (arg.clone(), None),
            };
            let mut value = || match inline.clone().or_else(|| args.next()) {
                Some(value) => Ok(value),
                None => Err(anyhow::anyhow!("{flag} needs a value")),
            };
            match flag.as_str() {
                "--runs" => {
                    let text = value()?;
                    options.runs = text
                        .replace('_', "")
                        .parse()
                        .map_err(|_| anyhow::anyhow!("--runs wants a count, got {text:?}"))?;
                }
                "--target" => options.targets.push(value()?),
                "--quick" if inline.is_none() => options.quick = true,
                "--seeds" if inline.is_none() => options.seeds = true,
                "--fuzz-only" if inline.is_none() => options.attacks = false,
                "--attacks-only" if inline.is_none() => options.fuzz = false,
                _ => bail!("unknown reliability option {arg:?} (see `cargo xtask help`)"),
            }
        }
        Ok(options)
    }

    /// What `cargo xtask ci` runs.
    pub(crate) fn for_ci() -> Self {
        Self {
            quick: true,
            ..Self::default()
        }
    }
}

/// Runs every step; stops at the first failure.
pub(crate) fn run(options: &Options) -> Result<()> {
    if options.fuzz || options.seeds {
        let targets = fuzz::selected(&options.targets)?;
        let fuzzer = fuzz::Fuzzer::prepare(&targets)?;
        if options.seeds {
            return seeds::regenerate(&fuzzer, &targets);
        }
        let budget = if options.quick {
            fuzz::Budget::Quick
        } else {
            fuzz::Budget::Runs(options.runs)
        };
        println!("\n==> reliability: fuzz ({})", budget.describe());
        fuzzer.run_all(&targets, budget)?;
    }
    if options.attacks && options.targets.is_empty() {
        println!("\n==> reliability: attack matrix and soak");
        attack::run(options.quick)?;
    }
    println!("\nreliability: all steps passed");
    Ok(())
}
