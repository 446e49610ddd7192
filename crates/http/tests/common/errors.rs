//! Checks on what an error says, whether a Rust error or the error a
//! server answered with.

use std::fmt::{Debug, Display};

/// Fails unless `error`'s message contains `needle`, showing the whole
/// error: a message that changed wording still tells what went wrong.
#[track_caller]
pub(crate) fn assert_error_contains(error: &(impl Display + Debug), needle: &str) {
    let message = error.to_string();
    assert!(
        message.contains(needle),
        "the error does not contain {needle:?}: {message}\n{error:#?}"
    );
}
