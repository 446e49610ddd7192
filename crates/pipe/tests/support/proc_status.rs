//! What this test process costs, from its `/proc` status.

use vgirpc_test_support::proc_status::{Process, status_field};

/// `Threads:` of this process's `/proc` status.
pub(crate) fn threads() -> usize {
    status_field(Process::Current, "Threads:")
}

/// `VmRSS:` of this process's `/proc` status, in KiB.
pub(crate) fn rss_kib() -> usize {
    status_field(Process::Current, "VmRSS:")
}
