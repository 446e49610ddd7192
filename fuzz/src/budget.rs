//! The checks every fuzz input must pass besides not panicking: nothing
//! allocated beyond the budget while it runs, and no input slower than the
//! time limit.
//!
//! The budget is `input length + 17 MiB` of memory held at once, over what
//! was held before the input: a reader may reserve up to 16 MiB up front
//! for a message body whose length the peer declared, 1 MiB covers the
//! rest of an input's working set, and anything beyond that must be backed
//! by bytes the peer actually sent.
//! libFuzzer's own `-malloc_limit_mb` needs a sanitizer's allocator hooks,
//! which `--sanitizer none` does not have, so the harness installs a
//! counting global allocator (the `cap` crate) whose limit follows the
//! current input's length.

use std::io::Write as _;
use std::time::{Duration, Instant};

use cap::Cap;

/// What an input may hold at once beyond its own length.
pub const ALLOCATION_MARGIN: usize = 17 * 1024 * 1024;

/// The slowest an input may be.
pub const TIME_LIMIT: Duration = Duration::from_millis(100);

/// The system allocator, counting what is allocated and refusing to go
/// past a limit. Outside an input the limit is off, so start-up and
/// libFuzzer's bookkeeping are not judged; during one it is what was
/// allocated before plus the budget, so the input's whole working set
/// (any single allocation included) must fit. A refused allocation aborts
/// with its size ("memory allocation of N bytes failed"), which libFuzzer
/// reports as a crash and saves the input for.
#[global_allocator]
static ALLOCATOR: Cap<std::alloc::System> = Cap::new(std::alloc::System, usize::MAX);

/// Runs `work` on one fuzz input of `input_len` bytes under the budget and
/// the time limit.
///
/// An input counts as slow only if [`TIMED_RUNS`] runs in a row all take
/// longer than [`TIME_LIMIT`]: on a shared machine one run can lose its
/// CPU for longer than the limit, several in a row rarely do, while an
/// input that is really slow is slow every time. A slow input aborts the
/// process with its times.
pub fn check_input(input_len: usize, work: impl Fn()) {
    let mut times = Vec::with_capacity(TIMED_RUNS);
    while times.len() < TIMED_RUNS {
        let elapsed = timed(input_len, &work);
        if elapsed <= TIME_LIMIT {
            return;
        }
        times.push(elapsed.as_millis().to_string());
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n==== SLOW INPUT: {} ms for {input_len} bytes (limit {} ms)",
        times.join(" ms, "),
        TIME_LIMIT.as_millis()
    );
    std::process::abort();
}

/// Runs of an input over the time limit before it counts as slow.
const TIMED_RUNS: usize = 3;

fn timed(input_len: usize, work: &impl Fn()) -> Duration {
    let budget = input_len.saturating_add(ALLOCATION_MARGIN);
    ALLOCATOR
        .set_limit(ALLOCATOR.allocated().saturating_add(budget))
        .expect("the limit is above what is allocated");
    let started = Instant::now();
    work();
    let elapsed = started.elapsed();
    ALLOCATOR.set_limit(usize::MAX).expect("no limit");
    elapsed
}
