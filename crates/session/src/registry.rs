use std::any::Any;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::error::SessionError;
use crate::id::SessionId;

/// The reference's default session lifetime.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// TTLs are capped at a century so that `now + ttl` never overflows.
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A live object kept for a session: a database cursor, a loaded model,
/// an open file, or just a counter.
///
/// [`SessionState::close`] is the cleanup hook. The registry calls it
/// exactly once per session, when the session ends by explicit close, TTL
/// eviction, drain shutdown or the registry being dropped, and never while
/// a call is using the state. A crashed or aborted process calls nothing.
pub trait SessionState: Any + Send {
    /// Releases what the state holds. The default does nothing, leaving
    /// cleanup to `Drop`.
    fn close(&mut self) {}
}

/// Locks a mutex, taking over the data if a panicking thread poisoned it:
/// the registry's invariants hold between statements, so the data is sound.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs a state's close hook; a panicking hook is logged, not propagated,
/// so that one bad state cannot take down the reaper or a request.
fn run_close_hook(id: SessionId, mut state: Box<dyn SessionState>) {
    if catch_unwind(AssertUnwindSafe(|| state.close())).is_err() {
        tracing::error!(session_id = %id, "a session state's close hook panicked");
    }
}

/// Where a session's state is at the moment.
enum Slot {
    /// Waiting in the registry for the next call.
    Idle(Box<dyn SessionState>),
    /// Out with a [`Lease`]; `evicted` once the session was ended meanwhile,
    /// so that the lease closes the state when it comes back.
    Leased { evicted: bool },
    /// Ended; the close hook has run or is running.
    Closed,
}

struct Entry {
    id: SessionId,
    owner: String,
    ttl: Duration,
    expires_at: Instant,
    slot: Mutex<Slot>,
    /// Signalled whenever `slot` changes, for calls queued on the session.
    changed: Condvar,
}

impl Entry {
    /// Ends the session: an idle state is handed back for closing, a
    /// leased one is marked so its lease closes it on return.
    fn end(&self) -> Option<Box<dyn SessionState>> {
        let mut slot = lock(&self.slot);
        let state = match std::mem::replace(&mut *slot, Slot::Closed) {
            Slot::Idle(state) => Some(state),
            Slot::Leased { .. } => {
                *slot = Slot::Leased { evicted: true };
                None
            }
            Slot::Closed => None,
        };
        drop(slot);
        self.changed.notify_all();
        state
    }

    /// Ends the session and runs the close hook here if the state is idle.
    fn end_and_close(&self) {
        if let Some(state) = self.end() {
            run_close_hook(self.id, state);
        }
    }
}

struct Inner {
    default_ttl: Duration,
    draining: AtomicBool,
    entries: Mutex<HashMap<SessionId, Arc<Entry>>>,
}

impl Inner {
    /// Removes `entry` from the map, unless another entry took its id.
    fn remove(&self, entry: &Arc<Entry>) {
        let mut entries = lock(&self.entries);
        if entries
            .get(&entry.id)
            .is_some_and(|e| Arc::ptr_eq(e, entry))
        {
            entries.remove(&entry.id);
        }
    }

    /// Ends every session; returns how many there were.
    fn end_all(&self) -> usize {
        // Taken out under the map lock, closed after releasing it: close
        // hooks may be slow and must not stall other sessions' calls.
        let entries: Vec<_> = lock(&self.entries).drain().map(|(_, e)| e).collect();
        for entry in &entries {
            entry.end_and_close();
        }
        entries.len()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A registry that goes away still honours the close contract.
        self.end_all();
    }
}

/// The live sessions of one worker process, keyed by [`SessionId`].
///
/// Cheap to clone; clones share the sessions. The registry lock guards the
/// map only and is never held while a call runs: each session has its own
/// lock, taken by [`Registry::resume`] and held by the returned [`Lease`],
/// so calls on one session run one at a time while different sessions run
/// in parallel.
///
/// Methods ending in `_at` take the current time so TTL behaviour can be
/// tested without waiting; the others read the clock.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("default_ttl", &self.inner.default_ttl)
            .field("draining", &self.is_draining())
            .field("sessions", &self.len())
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(DEFAULT_TTL)
    }
}

impl Registry {
    /// An empty registry whose sessions live `default_ttl` unless opened
    /// with a TTL of their own.
    pub fn new(default_ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                default_ttl: default_ttl.min(MAX_TTL),
                draining: AtomicBool::new(false),
                entries: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The TTL of sessions opened without one.
    pub fn default_ttl(&self) -> Duration {
        self.inner.default_ttl
    }

    /// Registers `state` as a new session of `owner` (an opaque principal
    /// key), living `ttl` or the default TTL.
    ///
    /// The session starts out leased to the caller, which is still serving
    /// the call that opened it; dropping the lease makes it available.
    pub fn open(
        &self,
        state: Box<dyn SessionState>,
        ttl: Option<Duration>,
        owner: &str,
    ) -> Result<Lease, SessionError> {
        self.open_at(state, ttl, owner, Instant::now())
    }

    /// [`Registry::open`] at time `now`.
    pub fn open_at(
        &self,
        state: Box<dyn SessionState>,
        ttl: Option<Duration>,
        owner: &str,
        now: Instant,
    ) -> Result<Lease, SessionError> {
        if self.is_draining() {
            return Err(SessionError::Draining);
        }
        let ttl = ttl.unwrap_or(self.inner.default_ttl).min(MAX_TTL);
        let entry = Arc::new(Entry {
            id: SessionId::random(),
            owner: owner.to_owned(),
            ttl,
            expires_at: now + ttl,
            slot: Mutex::new(Slot::Leased { evicted: false }),
            changed: Condvar::new(),
        });
        lock(&self.inner.entries).insert(entry.id, entry.clone());
        Ok(Lease {
            entry,
            registry: Arc::downgrade(&self.inner),
            state: Some(state),
        })
    }

    /// Takes the session `id` of `owner` for one call, waiting while
    /// another call holds it.
    ///
    /// An expired session is evicted (and closed) here rather than waiting
    /// for the reaper, so a miss looks the same either way.
    pub fn resume(&self, id: SessionId, owner: &str) -> Result<Lease, SessionError> {
        self.resume_at(id, owner, Instant::now())
    }

    /// [`Registry::resume`] at time `now`.
    pub fn resume_at(
        &self,
        id: SessionId,
        owner: &str,
        now: Instant,
    ) -> Result<Lease, SessionError> {
        let entry = lock(&self.inner.entries)
            .get(&id)
            .cloned()
            .ok_or(SessionError::NotFound)?;
        if entry.owner != owner {
            return Err(SessionError::WrongOwner);
        }
        if entry.expires_at <= now {
            self.inner.remove(&entry);
            entry.end_and_close();
            return Err(SessionError::Expired);
        }
        let mut slot = lock(&entry.slot);
        loop {
            match std::mem::replace(&mut *slot, Slot::Leased { evicted: false }) {
                Slot::Idle(state) => {
                    drop(slot);
                    return Ok(Lease {
                        entry,
                        registry: Arc::downgrade(&self.inner),
                        state: Some(state),
                    });
                }
                held @ Slot::Leased { .. } => {
                    *slot = held;
                    slot = entry
                        .changed
                        .wait(slot)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                Slot::Closed => {
                    *slot = Slot::Closed;
                    return Err(SessionError::Closed);
                }
            }
        }
    }

    /// Ends every session whose TTL has run out by `now` and returns how
    /// many it ended. A session in use is closed when its call finishes.
    pub fn evict_expired(&self, now: Instant) -> usize {
        let expired: Vec<_> = {
            let mut entries = lock(&self.inner.entries);
            let ids: Vec<_> = entries
                .values()
                .filter(|e| e.expires_at <= now)
                .map(|e| e.id)
                .collect();
            ids.iter().filter_map(|id| entries.remove(id)).collect()
        };
        for entry in &expired {
            entry.end_and_close();
        }
        expired.len()
    }

    /// Ends every session (drain shutdown) and returns how many it ended.
    /// Sessions in use are closed when their calls finish.
    pub fn shutdown(&self) -> usize {
        self.inner.end_all()
    }

    /// Sets or clears the drain flag. While it is set [`Registry::open`]
    /// fails with [`SessionError::Draining`]; existing sessions go on.
    pub fn set_draining(&self, draining: bool) {
        self.inner.draining.store(draining, Ordering::SeqCst);
    }

    /// Whether the drain flag is set.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        lock(&self.inner.entries).len()
    }

    /// Whether there are no live sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A weak handle for the reaper, which must not keep the registry alive.
    pub(crate) fn downgrade(&self) -> WeakRegistry {
        WeakRegistry(Arc::downgrade(&self.inner))
    }
}

/// A registry reference that does not keep it alive.
pub(crate) struct WeakRegistry(Weak<Inner>);

impl WeakRegistry {
    pub(crate) fn upgrade(&self) -> Option<Registry> {
        self.0.upgrade().map(|inner| Registry { inner })
    }
}

/// One call's exclusive hold on a session and its state.
///
/// Dropping the lease gives the state back to the registry and lets the
/// next queued call on the session proceed; if the session was ended while
/// leased (evicted, drained), dropping it runs the close hook instead.
pub struct Lease {
    entry: Arc<Entry>,
    registry: Weak<Inner>,
    /// Always `Some` until the lease is dropped or closed.
    state: Option<Box<dyn SessionState>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.entry.id)
            .field("ttl", &self.entry.ttl)
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.entry.id
    }

    /// The TTL the session was opened with.
    pub fn ttl(&self) -> Duration {
        self.entry.ttl
    }

    /// The session's state.
    pub fn state(&self) -> &dyn SessionState {
        self.state.as_deref().expect("a live lease holds its state")
    }

    /// The session's state, mutably.
    pub fn state_mut(&mut self) -> &mut dyn SessionState {
        self.state
            .as_deref_mut()
            .expect("a live lease holds its state")
    }

    /// The state as a `T`, if it is one.
    pub fn downcast_mut<T: SessionState>(&mut self) -> Option<&mut T> {
        let state: &mut dyn Any = self.state_mut();
        state.downcast_mut()
    }

    /// Ends the session: removes it from the registry, wakes the calls
    /// queued on it (they fail with [`SessionError::Closed`]) and runs the
    /// close hook on this thread.
    pub fn close(mut self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.remove(&self.entry);
        }
        *lock(&self.entry.slot) = Slot::Closed;
        self.entry.changed.notify_all();
        if let Some(state) = self.state.take() {
            run_close_hook(self.entry.id, state);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
        let mut slot = lock(&self.entry.slot);
        // Only `Leased` is possible while a lease is out; treating anything
        // else as ended keeps the close hook from ever being skipped.
        let evicted = !matches!(&*slot, Slot::Leased { evicted: false });
        let to_close = if evicted {
            *slot = Slot::Closed;
            Some(state)
        } else {
            *slot = Slot::Idle(state);
            None
        };
        drop(slot);
        self.entry.changed.notify_all();
        if let Some(state) = to_close {
            run_close_hook(self.entry.id, state);
        }
    }
}
