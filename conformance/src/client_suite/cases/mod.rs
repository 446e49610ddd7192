//! The test cases, by category, in suite order.

use vgirpc::client::Transport;

use super::case::TestCase;

mod describe;
mod headers;
mod recovery;
mod sessions;
mod streams;
mod types;
mod unary;

/// Every test, in suite order.
pub(super) fn tests<T: Transport>() -> Vec<TestCase<T>> {
    let mut tests = unary::tests();
    tests.extend(types::tests());
    tests.extend(streams::tests());
    tests.extend(recovery::tests());
    tests.extend(headers::tests());
    tests.extend(sessions::tests());
    tests.extend(describe::tests());
    tests
}
