//! What this test process costs, from its `/proc` status.

/// `Threads:` of this process's `/proc` status.
pub(crate) fn threads() -> usize {
    status_field("Threads:")
}

/// `VmRSS:` of this process's `/proc` status, in KiB.
pub(crate) fn rss_kib() -> usize {
    status_field("VmRSS:")
}

fn status_field(name: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}
