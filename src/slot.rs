//! One server's set of sessions inside a pool: which session takes a call, when a new one
//! starts, how failures back off, and which sessions the reaper closes.
//!
//! All decisions are made under the slot's lock, which is never held during I/O: sessions
//! start on a starter thread and close on their own worker threads.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::config::{PoolSettings, ServerConfig};
use crate::error::{CloseReason, Error, Phase};
use crate::protocol::Tool;
use crate::reaper::{self, Verdict};
use crate::session::Session;
use crate::stats::{Counters, Gauges};

/// How often the reaper looks again at a retiring session that is still in use.
const RETIRE_RECHECK: Duration = Duration::from_millis(250);

/// What every slot of a pool shares.
pub(crate) struct Core {
    pub closed: AtomicBool,
    /// Sessions taken out of their set and closing in the background, kept so that
    /// `Pool::close` can wait for them too.
    retired: Mutex<Vec<Session>>,
    children: AtomicUsize,
    max_children: Option<usize>,
    reaper: Mutex<Option<Sender<()>>>,
}

impl Core {
    pub(crate) fn new(max_children: Option<usize>, reaper: Sender<()>) -> Core {
        Core {
            closed: AtomicBool::new(false),
            retired: Mutex::new(Vec::new()),
            children: AtomicUsize::new(0),
            max_children,
            reaper: Mutex::new(Some(reaper)),
        }
    }

    /// Counts one more child process, unless the pool-wide cap is reached. Children still
    /// closing (retired, not yet reaped) count too.
    fn reserve_child(&self) -> bool {
        let max = self.max_children.unwrap_or(usize::MAX);
        let closing = self.closing();
        self.children
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n + closing < max).then_some(n + 1)
            })
            .is_ok()
    }

    fn release_child(&self) {
        self.children.fetch_sub(1, Ordering::AcqRel);
    }

    /// Retired sessions whose child is not reaped yet (forgetting the others).
    fn closing(&self) -> usize {
        let mut retired = self.retired.lock();
        retired.retain(|s| !s.is_finished());
        retired.len()
    }

    /// Child processes alive or starting: reserved, plus those still closing.
    pub(crate) fn children(&self) -> usize {
        self.closing() + self.children.load(Ordering::Acquire)
    }

    /// The one way a session leaves the pool: closed in the background by its own worker,
    /// its reservation moved to the retired list, where it counts against the cap until its
    /// child is reaped and where `Pool::close` finds it to wait for.
    fn retire(&self, session: Session) {
        session.close_in_background();
        let mut retired = self.retired.lock();
        retired.retain(|s| !s.is_finished());
        retired.push(session);
        self.release_child();
    }

    /// The sessions still closing in the background.
    pub(crate) fn take_retired(&self) -> Vec<Session> {
        std::mem::take(&mut *self.retired.lock())
    }

    /// Asks the reaper to recompute its next deadline.
    pub(crate) fn wake_reaper(&self) {
        if let Some(tx) = self.reaper.lock().as_ref() {
            let _ = tx.try_send(());
        }
    }

    /// Disconnects the reaper's wake channel: the reaper ends.
    pub(crate) fn stop_reaper(&self) {
        self.reaper.lock().take();
    }
}

struct Entry {
    session: Session,
    expires: Instant,
    last_ping: Instant,
}

#[derive(Default)]
struct State {
    sessions: Vec<Entry>,
    starting: usize,
    failures_in_row: u32,
    last_failure: Option<Error>,
    failure_seq: u64,
    next_spawn_at: Option<Instant>,
    failing_until: Option<Instant>,
}

impl State {
    fn usable(&self) -> usize {
        self.sessions
            .iter()
            .filter(|e| !e.session.is_retiring())
            .count()
    }

    /// The usable session with the fewest leases, if it has room.
    fn pick(&self, max_in_flight: usize) -> Option<usize> {
        self.sessions
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.session.is_retiring() && e.session.is_alive())
            .map(|(i, e)| (i, e.session.leases().load(Ordering::SeqCst)))
            .filter(|&(_, leases)| leases < max_in_flight)
            .min_by_key(|&(_, leases)| leases)
            .map(|(i, _)| i)
    }
}

/// The tool list of the server, the session it came from, and that session's count of
/// `tools/list_changed` notifications when it was fetched.
struct ToolCache {
    source: u64,
    epoch: u64,
    tools: Arc<Vec<Tool>>,
}

/// A session lent to one call. Dropping it gives the session back.
pub(crate) struct Lease<'a> {
    pub session: Session,
    /// Served by a session that was already live (no wait for a start).
    pub hit: bool,
    slot: &'a Arc<Slot>,
    core: &'a Arc<Core>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.slot.give_back(self.core, &self.session);
    }
}

/// Counts a caller inside `Slot::acquire` for as long as it is there.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One server's sessions.
pub(crate) struct Slot {
    pub name: String,
    pub config: ServerConfig,
    pub settings: PoolSettings,
    pub counters: Counters,
    state: Mutex<State>,
    changed: Condvar,
    waiting: AtomicUsize,
    tools: Mutex<Option<ToolCache>>,
}

impl Slot {
    pub(crate) fn new(config: ServerConfig, settings: PoolSettings) -> Slot {
        Slot {
            name: config.name.clone(),
            config,
            settings,
            counters: Counters::default(),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            waiting: AtomicUsize::new(0),
            tools: Mutex::new(None),
        }
    }

    /// Lends a live session with room, starting one when needed, waiting at most until the
    /// queue timeout or `deadline`.
    pub(crate) fn acquire<'a>(
        self: &'a Arc<Self>,
        core: &'a Arc<Core>,
        deadline: Instant,
    ) -> Result<Lease<'a>, Error> {
        let start = Instant::now();
        let queue_until = deadline.min(start + self.settings.queue_timeout);
        let mut waited_for_start = false;
        let mut st = self.state.lock();
        let failures_seen = st.failure_seq;
        // Counted before the first look at the sessions' leases: a lease returned after that
        // look sees this count and wakes us (both sides use SeqCst), so no wakeup is lost.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        loop {
            if core.closed.load(Ordering::Acquire) {
                return Err(Error::PoolClosed);
            }
            self.prune(&mut st, core);
            let now = Instant::now();
            if let Some(i) = st.pick(self.settings.max_in_flight) {
                let session = st.sessions[i].session.clone();
                let leases = session.leases().fetch_add(1, Ordering::AcqRel);
                if leases > 0 {
                    // Busy: grow toward the maximum for the callers that follow.
                    self.start_one(&mut st, core, now);
                }
                return Ok(Lease {
                    session,
                    hit: !waited_for_start,
                    slot: self,
                    core,
                });
            }
            if st.failure_seq != failures_seen {
                if let Some(e) = &st.last_failure {
                    return Err(e.duplicate());
                }
            }
            if let Some(until) = st.failing_until {
                if now < until {
                    return Err(self.failing(&st, until - now));
                }
                log::info!("[{}] cool-down over; trying to start it again", self.name);
                st.failing_until = None;
            }
            let started = self.start_one(&mut st, core, now);
            waited_for_start |= started || st.starting > 0;
            if now >= queue_until {
                let waited = now - start;
                return Err(if st.starting > 0 {
                    Error::Timeout {
                        phase: Phase::Handshake,
                        after: waited,
                    }
                } else {
                    Error::PoolBusy {
                        server: self.name.clone(),
                        waited,
                    }
                });
            }
            let mut wake_at = queue_until;
            if st.starting == 0 {
                if let Some(t) = st.next_spawn_at {
                    wake_at = wake_at.min(t.max(now));
                }
                if st.usable() < self.settings.max_sessions && !core.closed.load(Ordering::Acquire)
                {
                    // Blocked by the pool-wide cap: another server's session may free a slot,
                    // and that server's slot cannot wake this one.
                    wake_at = wake_at.min(now + Duration::from_millis(20));
                }
            }
            self.changed.wait_until(&mut st, wake_at);
        }
    }

    fn failing(&self, st: &State, retry_in: Duration) -> Error {
        let last_error = match &st.last_failure {
            Some(e) => e.duplicate(),
            None => Error::Handshake {
                reason: "(no error recorded)".into(),
                stderr_tail: String::new(),
            },
        };
        Error::ServerFailing {
            server: self.name.clone(),
            last_error: Box::new(last_error),
            retry_in,
        }
    }

    /// Starts one session on a starter thread if the set may grow now. One start at a time.
    fn start_one(self: &Arc<Self>, st: &mut State, core: &Arc<Core>, now: Instant) -> bool {
        if st.starting > 0
            || st.usable() >= self.settings.max_sessions
            || st.failing_until.is_some()
            || st.next_spawn_at.is_some_and(|t| now < t)
            || core.closed.load(Ordering::Acquire)
            || !core.reserve_child()
        {
            return false;
        }
        st.starting += 1;
        let (slot, core2) = (self.clone(), core.clone());
        let spawned = thread::Builder::new()
            .name(format!("mcp-start-{}", self.name))
            .spawn(move || slot.started(&core2, slot.start_session(&core2)));
        if let Err(e) = spawned {
            st.starting -= 1;
            core.release_child();
            log::error!("[{}] cannot start a starter thread: {e}", self.name);
            return false;
        }
        true
    }

    /// Runs on the starter thread when a start finished.
    fn started(&self, core: &Core, result: Result<Session, Error>) {
        let mut st = self.state.lock();
        let now = Instant::now();
        // `starting` drops only once the session is in the set, retired or failed, so
        // `Pool::close` waiting for starts never misses a child.
        st.starting -= 1;
        match result {
            Ok(session) => {
                if core.closed.load(Ordering::Acquire) {
                    core.retire(session);
                    drop(st);
                    self.changed.notify_all();
                    return;
                }
                if st.failures_in_row > 0 {
                    log::info!(
                        "[{}] started again after {} failures",
                        self.name,
                        st.failures_in_row
                    );
                }
                st.failures_in_row = 0;
                st.next_spawn_at = None;
                st.last_failure = None;
                let expires = now + self.lifetime();
                st.sessions.push(Entry {
                    session,
                    expires,
                    last_ping: now,
                });
                core.wake_reaper();
            }
            Err(e) => {
                st.failures_in_row += 1;
                let n = st.failures_in_row;
                let backoff = self
                    .settings
                    .backoff_base
                    .saturating_mul(1u32 << (n - 1).min(20))
                    .min(self.settings.backoff_max);
                st.next_spawn_at = Some(now + backoff);
                if n >= self.settings.failure_threshold {
                    st.failing_until = Some(now + self.settings.cooldown);
                    log::warn!(
                        "[{}] marked failing after {n} failed starts (cool-down {:?}): {e}",
                        self.name,
                        self.settings.cooldown
                    );
                } else {
                    log::warn!(
                        "[{}] start failed ({n} in a row, next try in {backoff:?}): {e}",
                        self.name
                    );
                }
                st.last_failure = Some(e);
                st.failure_seq += 1;
                core.wake_reaper();
            }
        }
        drop(st);
        self.changed.notify_all();
    }

    /// The lifetime of a new session: the maximum less a random jitter.
    fn lifetime(&self) -> Duration {
        let max = self.settings.max_lifetime;
        let jitter = self.settings.lifetime_jitter.min(max / 10);
        let mut h = RandomState::new().build_hasher();
        h.write_u64(self.counters.spawns.load(Ordering::Relaxed));
        let fraction = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
        max - jitter.mul_f64(fraction)
    }

    /// Removes sessions whose server died. Caller holds the lock.
    fn prune(&self, st: &mut MutexGuard<'_, State>, core: &Core) {
        let mut i = 0;
        while i < st.sessions.len() {
            if st.sessions[i].session.is_alive() {
                i += 1;
                continue;
            }
            let entry = st.sessions.swap_remove(i);
            let reason = entry.session.close_reason();
            if reason != Some(CloseReason::Closed) {
                Counters::add(&self.counters.crashes);
                log::warn!(
                    "[{}] session (pid {:?}) died: {}; it will be replaced on next use",
                    self.name,
                    entry.session.pid(),
                    reason.map(|r| r.to_string()).unwrap_or_default()
                );
            }
            self.forget(entry, core);
        }
    }

    /// Drops an entry from the set: closes it in the background, frees its child slot.
    fn forget(&self, entry: Entry, core: &Core) {
        let serial = entry.session.serial();
        core.retire(entry.session);
        let mut tools = self.tools.lock();
        if tools.as_ref().is_some_and(|c| c.source == serial) {
            *tools = None;
        }
    }

    /// Ends a lease: wakes a waiting caller, and closes a retiring session left idle.
    fn give_back(&self, core: &Core, session: &Session) {
        session.leases().fetch_sub(1, Ordering::SeqCst);
        if session.is_retiring() && session.leases().load(Ordering::SeqCst) == 0 {
            self.close_retired(core, session);
        }
        if self.waiting.load(Ordering::SeqCst) > 0 {
            // Under the lock, so a caller about to wait cannot miss it.
            let _st = self.state.lock();
            self.changed.notify_one();
        }
    }

    /// Closes a retiring session if it is still in the set and nothing uses it.
    fn close_retired(&self, core: &Core, session: &Session) {
        let mut st = self.state.lock();
        let unused = session.leases().load(Ordering::SeqCst) == 0 && session.in_flight() == 0;
        if let Some(i) = st
            .sessions
            .iter()
            .position(|e| e.session.serial() == session.serial())
            .filter(|_| unused)
        {
            let entry = st.sessions.swap_remove(i);
            Counters::add(&self.counters.closed_aged);
            log::info!(
                "[{}] closing session past its lifetime (pid {:?})",
                self.name,
                entry.session.pid()
            );
            self.forget(entry, core);
        }
    }

    /// The reaper's pass over this server: closes idle and aged sessions, starts pings and
    /// warm sessions. Returns when it next needs to look.
    pub(crate) fn reap(self: &Arc<Self>, core: &Arc<Core>, now: Instant) -> Option<Instant> {
        let mut st = self.state.lock();
        self.prune(&mut st, core);
        let mut next: Option<Instant> = None;
        let mut soonest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        let mut usable = st.usable();
        let mut i = 0;
        while i < st.sessions.len() {
            let e = &st.sessions[i];
            let view = reaper::View {
                // Calls made on a session handed out by `Pool::session` hold no lease.
                leases: e.session.leases().load(Ordering::SeqCst) + e.session.in_flight(),
                retiring: e.session.is_retiring(),
                last_used: e.session.last_used(),
                expires: e.expires,
                last_ping: e.last_ping,
                protected: usable <= self.settings.min_sessions,
            };
            match reaper::verdict(&view, &self.settings, now) {
                Verdict::Keep { recheck } => {
                    if let Some(t) = recheck {
                        soonest(t);
                    }
                    i += 1;
                }
                Verdict::Retire => {
                    if !e.session.is_retiring() {
                        usable -= 1;
                        e.session.retire();
                        log::info!(
                            "[{}] session past its lifetime (pid {:?}); no new calls",
                            self.name,
                            e.session.pid()
                        );
                    }
                    // Normally the last lease closes it; calls on a session handed out by
                    // `Pool::session` hold none, and a lease may end just as it retires.
                    soonest(now + RETIRE_RECHECK);
                    i += 1;
                }
                verdict @ (Verdict::CloseAged | Verdict::CloseIdle) => {
                    let entry = st.sessions.swap_remove(i);
                    if !entry.session.is_retiring() {
                        usable -= 1;
                    }
                    let (counter, why) = match verdict {
                        Verdict::CloseIdle => (&self.counters.closed_idle, "idle"),
                        _ => (&self.counters.closed_aged, "past its lifetime"),
                    };
                    Counters::add(counter);
                    log::info!(
                        "[{}] closing session {why} (pid {:?})",
                        self.name,
                        entry.session.pid()
                    );
                    self.forget(entry, core);
                }
                Verdict::Ping { recheck } => {
                    st.sessions[i].last_ping = now;
                    self.ping(core, st.sessions[i].session.clone());
                    soonest(recheck);
                    i += 1;
                }
            }
        }
        // Keep the warm minimum.
        if st.usable() + st.starting < self.settings.min_sessions {
            if st.failing_until.is_some_and(|t| t <= now) {
                log::info!(
                    "[{}] cool-down over; starting its warm minimum again",
                    self.name
                );
                st.failing_until = None;
            }
            self.start_one(&mut st, core, now);
            for t in [st.next_spawn_at, st.failing_until].into_iter().flatten() {
                if t > now {
                    soonest(t);
                }
            }
        }
        drop(st);
        self.changed.notify_all();
        next
    }

    /// A keepalive ping on its own thread; a session that fails it is replaced.
    fn ping(self: &Arc<Self>, core: &Arc<Core>, session: Session) {
        session.leases().fetch_add(1, Ordering::SeqCst);
        let (slot, core, pinged) = (self.clone(), core.clone(), session.clone());
        let spawned = thread::Builder::new()
            .name(format!("mcp-ping-{}", self.name))
            .spawn(move || {
                let session = pinged;
                let timeout = slot.config.request_timeout.min(Duration::from_secs(10));
                let result = session.ping_within(timeout);
                if let Err(e) = &result {
                    let mut st = slot.state.lock();
                    if let Some(i) = st
                        .sessions
                        .iter()
                        .position(|e| e.session.serial() == session.serial())
                    {
                        let entry = st.sessions.swap_remove(i);
                        Counters::add(&slot.counters.closed_ping_failed);
                        log::warn!(
                            "[{}] keepalive ping failed ({e}); replacing the session",
                            slot.name
                        );
                        slot.forget(entry, &core);
                    }
                    drop(st);
                    slot.changed.notify_all();
                    core.wake_reaper();
                }
                slot.give_back(&core, &session);
            });
        if let Err(e) = spawned {
            session.leases().fetch_sub(1, Ordering::SeqCst);
            log::error!("[{}] cannot start a ping thread: {e}", self.name);
        }
    }

    /// Counts and gauges for `Pool::stats`.
    pub(crate) fn gauges(&self) -> Gauges {
        let st = self.state.lock();
        let now = Instant::now();
        Gauges {
            live_sessions: st.sessions.iter().filter(|e| e.session.is_alive()).count(),
            starting_sessions: st.starting,
            in_flight: st.sessions.iter().map(|e| e.session.in_flight()).sum(),
            waiting: self.waiting.load(Ordering::Acquire),
            failing: st.failing_until.is_some_and(|t| t > now),
        }
    }

    /// The cached tool list, unless a session reported a change or its source is gone.
    pub(crate) fn cached_tools(&self) -> Option<Arc<Vec<Tool>>> {
        let st = self.state.lock();
        let mut tools = self.tools.lock();
        let cache = tools.as_ref()?;
        // Valid while its session lives and has announced no change since.
        let valid = st.sessions.iter().any(|e| {
            e.session.serial() == cache.source
                && e.session.is_alive()
                && e.session.tools_epoch() == cache.epoch
        });
        if !valid {
            *tools = None;
            return None;
        }
        Some(cache.tools.clone())
    }

    /// Caches a tool list fetched from `source`, whose change count was `epoch` before the
    /// fetch (so a change announced during the fetch makes the entry stale at once).
    pub(crate) fn cache_tools(
        &self,
        source: &Session,
        epoch: u64,
        tools: Vec<Tool>,
    ) -> Arc<Vec<Tool>> {
        let tools = Arc::new(tools);
        *self.tools.lock() = Some(ToolCache {
            source: source.serial(),
            epoch,
            tools: tools.clone(),
        });
        tools
    }

    /// Takes every session out (pool closing) and wakes all waiters; `Pool::close` waits for
    /// them through the retired list.
    pub(crate) fn drain(&self, core: &Core) {
        let mut st = self.state.lock();
        let entries: Vec<Entry> = st.sessions.drain(..).collect();
        for entry in entries {
            self.forget(entry, core);
        }
        drop(st);
        self.changed.notify_all();
    }

    /// Waits until no start is under way, at most until `until`.
    pub(crate) fn wait_for_starts(&self, until: Instant) {
        let mut st = self.state.lock();
        while st.starting > 0 {
            if self.changed.wait_until(&mut st, until).timed_out() {
                return;
            }
        }
    }

    /// Starts the warm minimum on this thread (the pool's eager build); fails on the first
    /// start that fails.
    pub(crate) fn warm_now(&self, core: &Core) -> Result<(), Error> {
        for _ in 0..self.settings.min_sessions {
            if !core.reserve_child() {
                return Err(Error::Config(format!(
                    "server `{}`: its warm minimum does not fit under the pool's max children",
                    self.name
                )));
            }
            let session = self.start_session(core)?;
            let now = Instant::now();
            self.state.lock().sessions.push(Entry {
                session,
                expires: now + self.lifetime(),
                last_ping: now,
            });
        }
        core.wake_reaper();
        Ok(())
    }

    /// Starts a session for one direct (unpooled) call, under the pool-wide child cap.
    pub(crate) fn start_direct(&self, core: &Core) -> Result<Session, Error> {
        if core.closed.load(Ordering::Acquire) {
            return Err(Error::PoolClosed);
        }
        if !core.reserve_child() {
            return Err(Error::PoolBusy {
                server: self.name.clone(),
                waited: Duration::ZERO,
            });
        }
        self.start_session(core)
    }

    /// Starts a session whose child the caller has reserved, counting it; a failed start
    /// frees the reservation (after its child is reaped).
    fn start_session(&self, core: &Core) -> Result<Session, Error> {
        match Session::start_and_reap_on_failure(self.config.clone()) {
            Ok(session) => {
                Counters::add(&self.counters.spawns);
                self.counters
                    .handshake
                    .lock()
                    .record(session.handshake_time());
                Ok(session)
            }
            Err(e) => {
                Counters::add(&self.counters.spawn_failures);
                core.release_child();
                Err(e)
            }
        }
    }

    /// Ends a direct call's session: retired like any other (see `Core::retire`).
    pub(crate) fn end_direct(&self, core: &Core, session: Session) {
        core.retire(session);
    }
}
