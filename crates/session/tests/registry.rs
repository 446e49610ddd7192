//! The registry's contract: close hooks run exactly once, TTLs evict, one
//! call at a time per session, sessions in parallel, and drain.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use vgirpc_session::{Registry, SessionError, SessionState};

/// A counter whose close hook is observable from outside.
struct Counter {
    value: u64,
    /// Set while a call holds the state; two holders at once is a bug.
    busy: Arc<AtomicBool>,
    closes: Arc<AtomicUsize>,
}

impl SessionState for Counter {
    fn close(&mut self) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter() -> (Box<Counter>, Arc<AtomicUsize>) {
    let closes = Arc::new(AtomicUsize::new(0));
    let state = Box::new(Counter {
        value: 0,
        busy: Arc::new(AtomicBool::new(false)),
        closes: closes.clone(),
    });
    (state, closes)
}

/// Waits up to `limit` for `done`; the limit only bounds a failing run,
/// the assertion never depends on how fast things are.
fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    done()
}

#[test]
fn ttl_eviction_with_injected_time_closes_once() {
    let registry = Registry::new(Duration::from_secs(60));
    let start = Instant::now();
    let (state, closes) = counter();
    let id = registry
        .open_at(state, Some(Duration::from_secs(10)), "p", start)
        .unwrap()
        .id();

    assert_eq!(registry.evict_expired(start + Duration::from_secs(9)), 0);
    assert!(
        registry
            .resume_at(id, "p", start + Duration::from_secs(9))
            .is_ok()
    );
    assert_eq!(registry.evict_expired(start + Duration::from_secs(10)), 1);
    assert_eq!(closes.load(Ordering::SeqCst), 1);

    // Later sweeps and lookups find nothing more to close.
    assert_eq!(registry.evict_expired(start + Duration::from_secs(99)), 0);
    assert_eq!(
        registry
            .resume_at(id, "p", start + Duration::from_secs(11))
            .unwrap_err(),
        SessionError::NotFound
    );
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    assert!(registry.is_empty());
}

#[test]
fn resume_after_the_ttl_evicts_inline() {
    let registry = Registry::new(Duration::from_secs(5));
    let start = Instant::now();
    let (state, closes) = counter();
    let id = registry.open_at(state, None, "p", start).unwrap().id();
    let err = registry
        .resume_at(id, "p", start + Duration::from_secs(5))
        .unwrap_err();
    assert_eq!(err, SessionError::Expired);
    assert!(err.is_lost());
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    assert!(registry.is_empty());
}

#[test]
fn the_reaper_evicts_after_the_ttl_and_closes_once() {
    let registry = Registry::new(Duration::from_secs(300));
    let (state, closes) = counter();
    let opened = registry
        .open(state, Some(Duration::from_millis(50)), "p")
        .unwrap();
    let id = opened.id();
    drop(opened);
    let _reaper = registry.spawn_reaper(Duration::from_millis(10)).unwrap();

    assert!(
        eventually(Duration::from_secs(20), || closes.load(Ordering::SeqCst)
            > 0),
        "the reaper never evicted the session"
    );
    assert!(registry.is_empty());
    // Give the reaper many more ticks: the hook must not run again.
    thread::sleep(Duration::from_millis(200));
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    assert_eq!(
        registry.resume(id, "p").unwrap_err(),
        SessionError::NotFound
    );
}

#[test]
fn eviction_while_in_use_waits_for_the_call_to_finish() {
    let registry = Registry::new(Duration::from_secs(60));
    let start = Instant::now();
    let (state, closes) = counter();
    let lease = registry
        .open_at(state, Some(Duration::from_secs(1)), "p", start)
        .unwrap();
    assert_eq!(registry.evict_expired(start + Duration::from_secs(2)), 1);
    // The opening call still holds the state; it must not be closed under it.
    assert_eq!(closes.load(Ordering::SeqCst), 0);
    drop(lease);
    assert_eq!(closes.load(Ordering::SeqCst), 1);
}

#[test]
fn explicit_close_runs_the_hook_once_and_fails_queued_calls() {
    let registry = Registry::new(Duration::from_secs(60));
    let (state, closes) = counter();
    let opened = registry.open(state, None, "p").unwrap();
    let id = opened.id();
    drop(opened);

    let holder = registry.resume(id, "p").unwrap();
    let (queued_tx, queued_rx) = mpsc::channel();
    let waiter = {
        let registry = registry.clone();
        thread::spawn(move || {
            queued_tx.send(()).unwrap();
            registry.resume(id, "p").map(|lease| lease.id())
        })
    };
    queued_rx.recv().unwrap();
    holder.close();
    // Queued behind the holder it sees the close; arriving later it finds
    // no session. Either way the call is refused as lost.
    let refused = waiter.join().unwrap().unwrap_err();
    assert!(
        matches!(refused, SessionError::Closed | SessionError::NotFound),
        "{refused:?}"
    );
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    assert_eq!(
        registry.resume(id, "p").unwrap_err(),
        SessionError::NotFound
    );
    // Shutting down afterwards finds nothing left to close.
    assert_eq!(registry.shutdown(), 0);
    assert_eq!(closes.load(Ordering::SeqCst), 1);
}

#[test]
fn sessions_belong_to_their_owner() {
    let registry = Registry::default();
    let (state, _) = counter();
    let id = registry.open(state, None, "alice").unwrap().id();
    assert_eq!(
        registry.resume(id, "bob").unwrap_err(),
        SessionError::WrongOwner
    );
    assert!(registry.resume(id, "alice").is_ok());
}

#[test]
fn calls_on_one_session_never_overlap() {
    const THREADS: u64 = 8;
    const ROUNDS: u64 = 200;
    let registry = Registry::new(Duration::from_secs(60));
    let (state, _) = counter();
    let busy = state.busy.clone();
    let id = registry.open(state, None, "p").unwrap().id();

    let start = Arc::new(Barrier::new(THREADS as usize));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let registry = registry.clone();
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                for _ in 0..ROUNDS {
                    let mut lease = registry.resume(id, "p").unwrap();
                    let counter = lease.downcast_mut::<Counter>().unwrap();
                    assert!(
                        !counter.busy.swap(true, Ordering::SeqCst),
                        "two calls held one session at once"
                    );
                    // A read-yield-write increment loses updates as soon as
                    // two calls interleave.
                    let seen = counter.value;
                    thread::yield_now();
                    counter.value = seen + 1;
                    counter.busy.store(false, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let mut lease = registry.resume(id, "p").unwrap();
    assert_eq!(
        lease.downcast_mut::<Counter>().unwrap().value,
        THREADS * ROUNDS
    );
    assert!(!busy.load(Ordering::SeqCst));
}

#[test]
fn different_sessions_run_in_parallel() {
    let registry = Registry::new(Duration::from_secs(60));
    let ids: Vec<_> = (0..2)
        .map(|_| registry.open(counter().0, None, "p").unwrap().id())
        .collect();
    // Each thread holds its own session while waiting for the other to
    // hold its: if holding one blocked the other, neither would arrive.
    let both_held = Arc::new(Barrier::new(2));
    let (done_tx, done_rx) = mpsc::channel();
    for id in ids {
        let registry = registry.clone();
        let both_held = both_held.clone();
        let done_tx = done_tx.clone();
        thread::spawn(move || {
            let _lease = registry.resume(id, "p").unwrap();
            both_held.wait();
            done_tx.send(()).unwrap();
        });
    }
    for _ in 0..2 {
        done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("two sessions could not be held at the same time");
    }
}

#[test]
fn draining_refuses_new_sessions_but_serves_existing_ones() {
    let registry = Registry::new(Duration::from_secs(60));
    let (state, closes) = counter();
    let id = registry.open(state, None, "p").unwrap().id();
    registry.set_draining(true);
    assert!(registry.is_draining());
    let err = registry.open(counter().0, None, "p").unwrap_err();
    assert_eq!(err, SessionError::Draining);
    assert!(!err.is_lost());
    assert!(registry.resume(id, "p").is_ok());

    assert_eq!(registry.shutdown(), 1);
    assert_eq!(closes.load(Ordering::SeqCst), 1);
    registry.set_draining(false);
    assert!(registry.open(counter().0, None, "p").is_ok());
}

#[test]
fn dropping_the_registry_closes_what_is_left() {
    let registry = Registry::new(Duration::from_secs(60));
    let (idle, idle_closes) = counter();
    let (leased, leased_closes) = counter();
    drop(registry.open(idle, None, "p").unwrap());
    let lease = registry.open(leased, None, "p").unwrap();
    drop(registry);
    assert_eq!(idle_closes.load(Ordering::SeqCst), 1);
    assert_eq!(leased_closes.load(Ordering::SeqCst), 0);
    drop(lease);
    assert_eq!(leased_closes.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panicking_close_hook_is_contained() {
    struct Explodes;
    impl SessionState for Explodes {
        fn close(&mut self) {
            panic!("close failed");
        }
    }
    let registry = Registry::new(Duration::from_secs(60));
    let lease = registry.open(Box::new(Explodes), None, "p").unwrap();
    lease.close();
    assert!(registry.is_empty());
}
