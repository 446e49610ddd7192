//! What a process costs, read from its `/proc/<pid>/status`.

/// Which process to read.
#[derive(Debug, Clone, Copy)]
pub enum Process {
    /// The test process itself.
    Current,
    /// A child the test started, by its id.
    Id(u32),
}

/// The number a field of `process`'s status starts with: `Threads:`, or
/// `VmRSS:` in KiB.
///
/// # Panics
///
/// When the status cannot be read or has no such numeric field: a test
/// asking for one cannot go on without it.
pub fn status_field(process: Process, name: &str) -> usize {
    let path = match process {
        Process::Current => "/proc/self/status".to_owned(),
        Process::Id(id) => format!("/proc/{id}/status"),
    };
    let status = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{path} has no numeric {name}"))
}
