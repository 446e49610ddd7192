//! The checks every fuzz input must pass besides not panicking: no single
//! allocation above the budget, and no input slower than the time limit.
//!
//! The budget is `input length + 16 MiB`: a reader may reserve up to
//! 16 MiB up front for a message body whose length the peer declared, and
//! anything beyond that must be backed by bytes the peer actually sent.
//! libFuzzer's own `-malloc_limit_mb` needs a sanitizer's allocator hooks,
//! which `--sanitizer none` does not have, so the harness installs its own
//! global allocator that knows the current input's length.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What an input may allocate at once beyond its own length.
pub const ALLOCATION_MARGIN: usize = 16 * 1024 * 1024;

/// The slowest an input may be.
pub const TIME_LIMIT: Duration = Duration::from_millis(100);

/// The largest single allocation allowed right now; `usize::MAX` outside
/// an input, so start-up and libFuzzer's bookkeeping are not judged.
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The system allocator, refusing to serve any single allocation above
/// [`LIMIT`]: the process aborts with the size and a backtrace, which
/// libFuzzer reports as a crash and saves the input for.
#[derive(Debug)]
pub struct BudgetAllocator;

impl BudgetAllocator {
    fn check(size: usize) {
        let limit = LIMIT.load(Ordering::Relaxed);
        if size > limit {
            over_budget(size, limit);
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the only addition is a size check before allocating, which
// either returns or never returns (abort).
unsafe impl GlobalAlloc for BudgetAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::check(new_size);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[cold]
fn over_budget(size: usize, limit: usize) -> ! {
    // Lift the limit first: the report below allocates.
    LIMIT.store(usize::MAX, Ordering::Relaxed);
    let backtrace = std::backtrace::Backtrace::force_capture();
    let _ = writeln!(
        std::io::stderr(),
        "\n==== ALLOCATION OVER BUDGET: {size} bytes requested at once; the budget for this \
         input is {limit} bytes (input length + {ALLOCATION_MARGIN})\n{backtrace}"
    );
    std::process::abort();
}

/// Runs `work` on one fuzz input of `input_len` bytes under the budget and
/// the time limit.
///
/// A run over [`TIME_LIMIT`] is repeated once before it counts, so that a
/// moment without a CPU on a shared machine is not reported as a slow
/// input; an input that is slow twice aborts the process.
pub fn check_input(input_len: usize, work: impl Fn()) {
    let elapsed = timed(input_len, &work);
    if elapsed <= TIME_LIMIT {
        return;
    }
    let again = timed(input_len, &work);
    if again > TIME_LIMIT {
        let _ = writeln!(
            std::io::stderr(),
            "\n==== SLOW INPUT: {} ms and {} ms for {input_len} bytes (limit {} ms)",
            elapsed.as_millis(),
            again.as_millis(),
            TIME_LIMIT.as_millis()
        );
        std::process::abort();
    }
}

fn timed(input_len: usize, work: &impl Fn()) -> Duration {
    LIMIT.store(
        input_len.saturating_add(ALLOCATION_MARGIN),
        Ordering::Relaxed,
    );
    let started = Instant::now();
    work();
    let elapsed = started.elapsed();
    LIMIT.store(usize::MAX, Ordering::Relaxed);
    elapsed
}
