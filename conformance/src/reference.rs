//! Where the reference Python implementation is installed for tests that
//! call it: the venv `cargo xtask conformance` (and `cargo xtask ci`,
//! before the tests) builds in `target/conformance-venv`.

use std::path::{Path, PathBuf};

/// Set (as `cargo xtask ci` does) to make a missing venv fail the tests
/// that need it rather than skip their reference half.
pub const REQUIRE_REFERENCE_ENV: &str = "VGI_REQUIRE_REFERENCE";

/// The reference venv's `bin` directory, holding `python` and
/// `vgi-rpc-conformance`, or `None` (after saying so on stderr) when it
/// has not been built.
///
/// # Panics
///
/// When the venv is missing and [`REQUIRE_REFERENCE_ENV`] is set.
pub fn venv_bin() -> Option<PathBuf> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/conformance-venv/bin");
    if bin.join("vgi-rpc-conformance").exists() {
        return Some(bin);
    }
    assert!(
        std::env::var_os(REQUIRE_REFERENCE_ENV).is_none(),
        "the reference venv is missing at {}",
        bin.display()
    );
    eprintln!("{} not found; checking our own side only", bin.display());
    None
}
