//! One server's set of sessions inside a pool, with all of the pool's bookkeeping about
//! them under the slot's one lock: leases, retiring, last use, expiry, health probes, the
//! start history, starts under way, and what the pool knows of the server's tools.
//!
//! On a server with [`Sharing::PerCaller`] each session and each start carries the caller
//! key it was started for, and a call is lent only a session of its own key: the maximum
//! of sessions, the calls in flight per session and the one start at a time apply per key,
//! and the tool-list cache is kept per key. (On a shared server every key is `None`.)
//!
//! A lease returns through the lock (it is what wakes a waiting caller), and callers wait
//! on channels of their own, registered under the lock, so no wake-up is lost and nothing
//! polls. The lock is never held during I/O: sessions start on their own worker threads
//! (which report back through a callback), close on them, and probes run on threads of
//! their own.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use parking_lot::{Mutex, MutexGuard};

use crate::config::{PoolSettings, ServerConfig, Sharing};
use crate::deadline::Deadline;
use crate::error::{CloseReason, Error, Phase};
use crate::protocol::{Tool, ToolIndex};
use crate::session::{CallOptions, CancelHandle, Connect, Joiner, Session, Starting};

use super::core::Core;
use super::health::{Gate, Health};
use super::reaper::{self, Verdict};
use super::stats::{Counters, Gauges};

/// Makes a session's connection: spawns the server (tests plug in other ones).
pub(crate) type Connector = Arc<dyn Fn() -> Connect + Send + Sync>;

/// A session in the set, and what the pool knows about it.
struct Entry {
    session: Session,
    serial: u64,
    /// The caller key it serves (per-caller servers only).
    key: Option<Arc<str>>,
    /// Calls the pool lent it to (and keepalive pings).
    leases: usize,
    /// Past its lifetime: no new calls; its last lease closes it.
    retiring: bool,
    /// A call on it timed out or was cancelled: no new calls while a probe checks it.
    suspect: bool,
    /// When its last lease ended, or when it became ready.
    last_used: Instant,
    expires: Instant,
    last_ping: Instant,
}

impl Entry {
    /// Calls on it: leases, or calls on the session handed out by `Pool::session`.
    fn busy(&self) -> usize {
        self.leases.max(self.session.in_flight())
    }

    fn takes_calls(&self, exclude: Option<u64>) -> bool {
        !self.retiring && !self.suspect && self.session.is_alive() && Some(self.serial) != exclude
    }
}

/// A start under way, and the caller key its session will serve.
struct Launch {
    joiner: Joiner,
    key: Option<Arc<str>>,
}

/// A caller waiting for a session of its key, on its own channel.
struct Waiter {
    tx: Sender<()>,
    key: Option<Arc<str>>,
}

/// The server's tool list as last fetched (for one caller key), the session and change
/// count it came from, and when it goes stale (its `ttlMs`, per-request generation).
struct ToolCache {
    key: Option<Arc<str>>,
    source: u64,
    epoch: u64,
    tools: Arc<Vec<Tool>>,
    expires: Option<Instant>,
}

#[derive(Default)]
struct State {
    sessions: Vec<Entry>,
    /// Starts under way.
    starting: Vec<Launch>,
    health: Health,
    /// The caller key of the last start that failed: a failure ends the wait only of the
    /// callers of that key.
    failed_key: Option<Arc<str>>,
    /// Callers waiting for a session.
    waiters: Vec<Waiter>,
    waiting: usize,
    /// At most one list per caller key (one in all on a shared server).
    tools: Vec<ToolCache>,
    /// What the last tool list said (by any session): kept when that session goes, and
    /// given to new sessions so they need not list the tools again (shared servers only).
    index: Option<Arc<ToolIndex>>,
}

impl State {
    /// Sessions that count against the maximum: all but the retiring ones.
    fn counted(&self) -> usize {
        self.sessions.iter().filter(|e| !e.retiring).count()
    }

    /// [`counted`](Self::counted), of one caller key.
    fn counted_for(&self, key: Option<&str>) -> usize {
        self.sessions
            .iter()
            .filter(|e| !e.retiring && e.key.as_deref() == key)
            .count()
    }

    /// Whether a session of this caller key is starting.
    fn starting_for(&self, key: Option<&str>) -> bool {
        self.starting.iter().any(|l| l.key.as_deref() == key)
    }

    /// The session of this caller key with the fewest leases that takes a call, if one has
    /// room.
    fn pick(&self, max_in_flight: usize, exclude: Option<u64>, key: Option<&str>) -> Option<usize> {
        self.sessions
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e.key.as_deref() == key && e.takes_calls(exclude) && e.leases < max_in_flight
            })
            .min_by_key(|(_, e)| e.leases)
            .map(|(i, _)| i)
    }

    fn position(&self, serial: u64) -> Option<usize> {
        self.sessions.iter().position(|e| e.serial == serial)
    }

    /// Wakes the caller of this key that began waiting last (a lease of its key came
    /// back).
    fn wake_one(&mut self, key: Option<&str>) {
        while let Some(i) = self.waiters.iter().rposition(|w| w.key.as_deref() == key) {
            if self.waiters.remove(i).tx.try_send(()).is_ok() {
                return;
            }
        }
    }

    fn wake_all(&mut self) {
        for w in self.waiters.drain(..) {
            let _ = w.tx.try_send(());
        }
    }
}

/// A session lent to one call. Dropping it gives the session back.
pub(crate) struct Lease {
    pub session: Session,
    pub serial: u64,
    /// Served by a session that was already live (no wait for a start).
    pub hit: bool,
    slot: Arc<Slot>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.slot.give_back(self.serial);
    }
}

/// What a health check is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// A keepalive ping of an idle session.
    Keepalive,
    /// A call on it timed out or was cancelled: is the server still answering?
    Suspect,
}

/// One server's sessions.
pub(crate) struct Slot {
    pub name: String,
    pub config: ServerConfig,
    pub settings: PoolSettings,
    pub counters: Counters,
    connector: Connector,
    core: Arc<Core>,
    state: Mutex<State>,
}

impl Slot {
    pub(crate) fn new(
        config: ServerConfig,
        settings: PoolSettings,
        core: Arc<Core>,
        connector: Connector,
    ) -> Slot {
        Slot {
            name: config.name.clone(),
            config,
            settings,
            counters: Counters::default(),
            connector,
            core,
            state: Mutex::new(State::default()),
        }
    }

    /// The caller key a pooled call runs under: `None` on a shared server (whatever the
    /// caller gave); the caller's own on a per-caller server, where a call without one (or
    /// with an empty one) fails at once.
    pub(crate) fn key<'k>(&self, caller: Option<&'k str>) -> Result<Option<&'k str>, Error> {
        match (self.settings.sharing, caller) {
            (Sharing::Shared, _) => Ok(None),
            (_, Some(key)) if !key.is_empty() => Ok(Some(key)),
            (_, given) => Err(Error::InvalidArgument(format!(
                "server `{}` keeps its sessions per caller (Sharing::PerCaller): pass a{} \
                 caller key (CallOptions::caller, BatchOptions::caller, Pool::call_tool_as or \
                 Pool::session_for)",
                self.name,
                if given.is_some() { " non-empty" } else { "" }
            ))),
        }
    }

    /// Lends a live session with room (of caller key `key`, as [`key`](Self::key) gives
    /// it; not `exclude`, the one a retry must avoid), starting one when needed, waiting at
    /// most until the queue timeout or the call's deadline.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        deadline: &Deadline,
        exclude: Option<u64>,
        cancel: Option<&CancelHandle>,
        key: Option<&str>,
    ) -> Result<Lease, Error> {
        let start = Instant::now();
        let queue_until = deadline.at().min(start + self.settings.queue_timeout);
        let mut waited_for_start = false;
        let mut st = self.state.lock();
        let failures_seen = st.health.failures();
        st.waiting += 1;
        let result = loop {
            if self.core.is_closed() {
                break Err(Error::PoolClosed);
            }
            if cancel.is_some_and(CancelHandle::is_cancelled) {
                break Err(Error::Cancelled);
            }
            self.prune(&mut st);
            if let Some(i) = st.pick(self.settings.max_in_flight, exclude, key) {
                let entry = &mut st.sessions[i];
                entry.leases += 1;
                let lease = Lease {
                    session: entry.session.clone(),
                    serial: entry.serial,
                    hit: !waited_for_start,
                    slot: self.clone(),
                };
                if entry.leases > 1 {
                    // Busy: grow toward the maximum for the callers that follow.
                    self.start_one(&mut st, Instant::now(), key);
                }
                break Ok(lease);
            }
            // A start failed since this call began: its error, if the start was for this
            // caller key.
            if st.health.failures() != failures_seen && st.failed_key.as_deref() == key {
                if let Some(e) = st.health.last_failure() {
                    break Err(e.clone());
                }
            }
            let now = Instant::now();
            let mut wake_at = queue_until;
            let attempt = self.start_one(&mut st, now, key);
            match attempt {
                Start::Gate(Gate::Failing(until)) => break Err(self.failing(&st, until - now)),
                Start::Gate(Gate::Backoff(t)) => wake_at = wake_at.min(t),
                _ => {}
            }
            let starting = st.starting_for(key);
            waited_for_start |= starting;
            if now >= queue_until {
                let waited = now - start;
                break Err(if starting {
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
            // Wait for a lease to come back, a start to finish, the back-off to end, room
            // under the child cap, or the cancel handle.
            let (tx, rx) = bounded(1);
            st.waiters.push(Waiter {
                tx: tx.clone(),
                key: key.map(Arc::from),
            });
            if attempt == Start::CapFull {
                self.core.wait_for_room(tx.clone());
            }
            let _cancel = cancel.map(|c| {
                let tx = tx.clone();
                c.on_cancel(move || {
                    let _ = tx.try_send(());
                })
            });
            MutexGuard::unlocked(&mut st, || {
                let _ = rx.recv_deadline(wake_at);
            });
            st.waiters.retain(|w| !w.tx.same_channel(&tx));
        };
        st.waiting -= 1;
        result
    }

    fn failing(&self, st: &State, retry_in: Duration) -> Error {
        let last_error = st
            .health
            .last_failure()
            .cloned()
            .unwrap_or(Error::Handshake {
                reason: "(no error recorded)".into(),
                stderr_tail: String::new(),
            });
        Error::ServerFailing {
            server: self.name.clone(),
            last_error: Box::new(last_error),
            retry_in,
        }
    }

    /// Starts one session for caller key `key` if its sessions may grow now (one start
    /// at a time per key). The session's worker reports the outcome through `started`.
    fn start_one(self: &Arc<Self>, st: &mut State, now: Instant, key: Option<&str>) -> Start {
        if st.starting_for(key) || st.counted_for(key) >= self.settings.max_sessions {
            return Start::Busy;
        }
        if self.core.is_closed() {
            return Start::Busy;
        }
        match st.health.gate(now) {
            Gate::Open => {}
            gate => return Start::Gate(gate),
        }
        if !self.core.reserve_child() {
            return Start::CapFull;
        }
        let slot = self.clone();
        let key: Option<Arc<str>> = key.map(Arc::from);
        let tag = key.clone();
        // The session knows whose it is: its handler and token provider are told.
        let mut config = self.config.clone();
        config.caller = key.clone();
        let launched = Starting::launch_then(config, (self.connector)(), move |j, r| {
            slot.started(j, tag, r)
        });
        match launched {
            Ok(joiner) => {
                st.starting.push(Launch { joiner, key });
                Start::Started
            }
            Err(e) => {
                self.core.release_child();
                Counters::add(&self.counters.spawn_failures);
                st.failed_key = key;
                let (backoff, _) = st.health.failed(e, now, &self.settings);
                log::error!(
                    "[{}] cannot start a session (next try in {backoff:?})",
                    self.name
                );
                Start::Busy
            }
        }
    }

    /// A start for caller key `key` finished (on the new session's worker thread).
    fn started(
        self: &Arc<Self>,
        joiner: Joiner,
        key: Option<Arc<str>>,
        result: Result<Session, Error>,
    ) {
        let mut st = self.state.lock();
        let now = Instant::now();
        st.starting.retain(|l| l.joiner.serial() != joiner.serial());
        match result {
            Ok(session) => {
                let serial = session.serial();
                Counters::add(&self.counters.spawns);
                self.counters
                    .handshake
                    .lock()
                    .record(session.handshake_time());
                if self.core.is_closed() {
                    self.core.retire(session, CloseReason::Closed);
                } else {
                    let ended = st.health.started();
                    if ended > 0 {
                        log::info!("[{}] started again after {ended} failures", self.name);
                    }
                    st.sessions.push(Entry {
                        session,
                        serial,
                        key,
                        leases: 0,
                        retiring: false,
                        suspect: false,
                        // The idle clock starts when the session is ready, not at spawn.
                        last_used: now,
                        expires: now + self.lifetime(),
                        last_ping: now,
                    });
                    self.core.wake_reaper();
                }
            }
            Err(e) => {
                Counters::add(&self.counters.spawn_failures);
                // The failed start's worker shuts its child down next: it counts against
                // the cap until then.
                self.core.closing_worker(joiner);
                st.failed_key = key;
                let (backoff, failing) = st.health.failed(e.clone(), now, &self.settings);
                if failing {
                    log::warn!(
                        "[{}] marked failing (cool-down {:?}): {e}",
                        self.name,
                        self.settings.cooldown
                    );
                } else {
                    log::warn!(
                        "[{}] start failed (next try in {backoff:?}): {e}",
                        self.name
                    );
                }
                self.core.wake_reaper();
            }
        }
        st.wake_all();
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

    /// Takes out sessions whose server died (counted as crashes unless the pool closed
    /// them).
    fn prune(&self, st: &mut State) {
        let mut i = 0;
        while i < st.sessions.len() {
            if st.sessions[i].session.is_alive() {
                i += 1;
                continue;
            }
            let entry = st.sessions.swap_remove(i);
            let reason = entry.session.close_reason();
            if !matches!(
                reason,
                Some(CloseReason::Closed | CloseReason::Unresponsive)
            ) {
                Counters::add(&self.counters.crashes);
                log::warn!(
                    "[{}] session (pid {:?}) died: {}; it will be replaced on next use",
                    self.name,
                    entry.session.pid(),
                    reason.map(|r| r.to_string()).unwrap_or_default()
                );
            }
            self.forget(st, entry, CloseReason::Closed);
        }
    }

    /// Takes an entry out of the set: closed in the background, its child counted until
    /// reaped, the tool cache dropped if it came from it.
    fn forget(&self, st: &mut State, entry: Entry, reason: CloseReason) {
        st.tools.retain(|c| c.source != entry.serial);
        self.core.retire(entry.session, reason);
        st.wake_all();
    }

    /// A lease ends: wakes a waiting caller; a retiring session left idle closes.
    fn give_back(&self, serial: u64) {
        let mut st = self.state.lock();
        let Some(i) = st.position(serial) else {
            st.wake_all();
            return;
        };
        let entry = &mut st.sessions[i];
        entry.leases -= 1;
        entry.last_used = Instant::now();
        let key = entry.key.clone();
        if entry.retiring && entry.busy() == 0 {
            let entry = st.sessions.swap_remove(i);
            Counters::add(&self.counters.closed_aged);
            log::info!(
                "[{}] closing session past its lifetime (pid {:?})",
                self.name,
                entry.session.pid()
            );
            self.forget(&mut st, entry, CloseReason::Closed);
        }
        st.wake_one(key.as_deref());
    }

    /// A call on this session timed out or was cancelled: it takes no new calls while a
    /// probe checks the server still answers. Answered: back in service. Not answered in
    /// the probe timeout: replaced (its calls in flight end as outcome unknown).
    pub(crate) fn suspect(self: &Arc<Self>, serial: u64) {
        let mut st = self.state.lock();
        let Some(i) = st.position(serial) else { return };
        let entry = &mut st.sessions[i];
        if entry.suspect || !entry.session.is_alive() {
            return;
        }
        entry.suspect = true;
        let session = entry.session.clone();
        log::info!(
            "[{}] a call on pid {:?} got no answer in time; checking the server",
            self.name,
            session.pid()
        );
        if !self.check(session, Check::Suspect, self.settings.probe_timeout) {
            st.sessions[i].suspect = false;
        }
    }

    /// Runs a health check (`ping`, or `server/discover` in the per-request generation) on
    /// a thread of its own. Returns `false` when that thread could not be started.
    fn check(self: &Arc<Self>, session: Session, why: Check, timeout: Duration) -> bool {
        let slot = self.clone();
        let serial = session.serial();
        let spawned = thread::Builder::new()
            .name(format!("mcp-probe-{}", self.name))
            .spawn(move || {
                let result = session.ping_with(CallOptions::new().timeout(timeout));
                slot.checked(serial, why, result.err());
            });
        if let Err(e) = &spawned {
            log::error!("[{}] cannot start a health check thread: {e}", self.name);
        }
        spawned.is_ok()
    }

    fn checked(&self, serial: u64, why: Check, failure: Option<Error>) {
        let mut st = self.state.lock();
        if let Some(i) = st.position(serial) {
            match (why, failure) {
                (Check::Suspect, None) => st.sessions[i].suspect = false,
                (Check::Keepalive, None) => st.sessions[i].leases -= 1,
                (why, Some(e)) => {
                    let entry = st.sessions.swap_remove(i);
                    let (counter, what) = match why {
                        Check::Suspect => (&self.counters.closed_unresponsive, "health probe"),
                        Check::Keepalive => (&self.counters.closed_ping_failed, "keepalive ping"),
                    };
                    Counters::add(counter);
                    log::warn!(
                        "[{}] {what} of pid {:?} failed ({e}); replacing the session",
                        self.name,
                        entry.session.pid()
                    );
                    self.forget(&mut st, entry, CloseReason::Unresponsive);
                    self.core.wake_reaper();
                }
            }
        }
        st.wake_all();
    }

    /// The reaper's pass over this server: closes idle and aged sessions, starts pings and
    /// the warm minimum. Returns when it next needs to look.
    pub(crate) fn reap(self: &Arc<Self>, now: Instant) -> Option<Instant> {
        let mut st = self.state.lock();
        self.prune(&mut st);
        let mut next: Option<Instant> = None;
        let mut soonest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        let mut counted = st.counted();
        let mut i = 0;
        while i < st.sessions.len() {
            let e = &st.sessions[i];
            if e.suspect {
                // Its probe decides.
                i += 1;
                continue;
            }
            let view = reaper::View {
                busy: e.busy(),
                retiring: e.retiring,
                last_used: e.last_used,
                expires: e.expires,
                last_ping: e.last_ping,
                protected: counted <= self.settings.min_sessions,
            };
            match reaper::verdict(&view, &self.settings, now) {
                Verdict::Keep { recheck } => {
                    soonest(recheck);
                    // A busy session is looked at again after an idle timeout, or after a
                    // keepalive interval when pings are on, so pings resume after a call.
                    if view.busy > 0 {
                        if let Some(k) = self.settings.keepalive {
                            soonest(now + k);
                        }
                        if !view.protected {
                            soonest(now + self.settings.idle_timeout);
                        }
                    }
                    i += 1;
                }
                Verdict::Retire => {
                    let e = &mut st.sessions[i];
                    e.retiring = true;
                    counted -= 1;
                    log::info!(
                        "[{}] session past its lifetime (pid {:?}); no new calls",
                        self.name,
                        e.session.pid()
                    );
                    if e.leases == 0 {
                        // Its calls came through `Pool::session`: the last one wakes us.
                        let core = Arc::downgrade(&self.core);
                        e.session.when_idle(move || {
                            if let Some(core) = core.upgrade() {
                                core.wake_reaper();
                            }
                        });
                    }
                    i += 1;
                }
                verdict @ (Verdict::CloseAged | Verdict::CloseIdle) => {
                    let entry = st.sessions.swap_remove(i);
                    if !entry.retiring {
                        counted -= 1;
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
                    self.forget(&mut st, entry, CloseReason::Closed);
                }
                Verdict::Ping { recheck } => {
                    let e = &mut st.sessions[i];
                    e.last_ping = now;
                    e.leases += 1;
                    Counters::add(&self.counters.keepalive_pings);
                    let session = e.session.clone();
                    let timeout = self.config.request_timeout.min(self.settings.probe_timeout);
                    if !self.check(session, Check::Keepalive, timeout) {
                        st.sessions[i].leases -= 1;
                    }
                    soonest(recheck);
                    i += 1;
                }
            }
        }
        // Keep the warm minimum (shared servers only: a per-caller one has none).
        if st.counted() + st.starting.len() < self.settings.min_sessions {
            if let Start::Gate(Gate::Backoff(t) | Gate::Failing(t)) =
                self.start_one(&mut st, now, None)
            {
                soonest(t);
            }
        }
        st.wake_all();
        next
    }

    /// Counts and gauges for `Pool::stats`.
    pub(crate) fn gauges(&self) -> Gauges {
        let st = self.state.lock();
        let transport = st
            .sessions
            .iter()
            .map(|e| e.session.transport())
            .next()
            .unwrap_or(if self.config.http.is_some() {
                "http"
            } else {
                "stdio"
            });
        let mut callers: Vec<&str> = st
            .sessions
            .iter()
            .filter(|e| e.session.is_alive())
            .filter_map(|e| e.key.as_deref())
            .collect();
        callers.sort_unstable();
        callers.dedup();
        Gauges {
            transport,
            live_sessions: st.sessions.iter().filter(|e| e.session.is_alive()).count(),
            callers: callers.len(),
            starting_sessions: st.starting.len(),
            in_flight: st.sessions.iter().map(|e| e.session.in_flight()).sum(),
            waiting: st.waiting,
            failing: st.health.is_failing(Instant::now()),
        }
    }

    /// The cached tool list of caller key `key` (as [`key`](Self::key) gives it), unless
    /// its session is gone or announced a change since.
    pub(crate) fn cached_tools(&self, key: Option<&str>) -> Option<Arc<Vec<Tool>>> {
        let mut st = self.state.lock();
        let i = st.tools.iter().position(|c| c.key.as_deref() == key)?;
        let cache = &st.tools[i];
        let fresh = cache.expires.is_none_or(|t| Instant::now() < t);
        let valid = fresh
            && st.sessions.iter().any(|e| {
                e.serial == cache.source
                    && e.session.is_alive()
                    && e.session.tools_epoch() == cache.epoch
            });
        if !valid {
            st.tools.swap_remove(i);
            return None;
        }
        Some(st.tools[i].tools.clone())
    }

    /// Keeps a tool list fetched from `source`, whose change count was `epoch` before the
    /// fetch (so a change announced during the fetch makes the entry stale at once), as
    /// the cache of the caller key `source` serves (not kept when `source` is not in the
    /// set).
    pub(crate) fn learn_tools(
        &self,
        source: &Session,
        epoch: u64,
        mut tools: Vec<Tool>,
    ) -> Arc<Vec<Tool>> {
        let index = source.index_tools(&mut tools, epoch);
        let tools = Arc::new(tools);
        // In the per-request generation changes come on a subscription, and the list's
        // `ttlMs` says how long it stays fresh (0 or none: not kept).
        source.follow_tool_changes();
        let ttl = source.tools_ttl();
        let mut st = self.state.lock();
        if self.settings.sharing == Sharing::Shared {
            st.index = Some(index);
        }
        let Some(i) = st.position(source.serial()) else {
            return tools;
        };
        let key = st.sessions[i].key.clone();
        st.tools.retain(|c| c.key != key);
        if ttl.is_none_or(|ttl| !ttl.is_zero()) {
            st.tools.push(ToolCache {
                key,
                source: source.serial(),
                epoch,
                tools: tools.clone(),
                expires: ttl.map(|t| Instant::now() + t),
            });
        }
        tools
    }

    /// Gives a session what the pool knows of the tools, and keeps what it learned. Not on
    /// a per-caller server: one caller's tool list (its tools, their schemas) never shapes
    /// another caller's session, so each session learns from a list of its own.
    pub(crate) fn share_index(&self, session: &Session) {
        if self.settings.sharing != Sharing::Shared {
            return;
        }
        let mut st = self.state.lock();
        match (session.tool_index(), &st.index) {
            (None, Some(known)) => session.install_index(known.clone()),
            (Some(learned), _) => st.index = Some(learned),
            (None, None) => {}
        }
    }

    /// Takes every session out and abandons every start (the pool is closing); wakes all
    /// waiters. Returns the starts' workers, for `Pool::close` to wait on.
    pub(crate) fn drain(&self) -> Vec<Joiner> {
        let mut st = self.state.lock();
        let entries: Vec<Entry> = st.sessions.drain(..).collect();
        for entry in entries {
            self.forget(&mut st, entry, CloseReason::Closed);
        }
        for l in &st.starting {
            l.joiner.abort();
        }
        let starting = st.starting.iter().map(|l| l.joiner.clone()).collect();
        st.wake_all();
        starting
    }

    /// Starts the warm minimum on this thread (the pool's eager build); fails on the first
    /// start that fails.
    pub(crate) fn warm_now(self: &Arc<Self>) -> Result<(), Error> {
        for _ in 0..self.settings.min_sessions {
            let deadline = Deadline::fixed(self.config.start_timeout);
            let session = self.start_direct(&deadline, None)?;
            let now = Instant::now();
            let serial = session.serial();
            self.state.lock().sessions.push(Entry {
                session,
                serial,
                key: None,
                leases: 0,
                retiring: false,
                suspect: false,
                last_used: now,
                expires: now + self.lifetime(),
                last_ping: now,
            });
        }
        self.core.wake_reaper();
        Ok(())
    }

    /// Starts a session on the calling thread, under the pool-wide child cap, within the
    /// call's deadline (and the server's start timeout). A failed start's child is shut
    /// down in the background and counts against the cap until it is reaped.
    /// A session of its own for one direct call (or batch), told the caller key if the call
    /// had one.
    pub(crate) fn start_direct(
        &self,
        deadline: &Deadline,
        caller: Option<&str>,
    ) -> Result<Session, Error> {
        if self.core.is_closed() {
            return Err(Error::PoolClosed);
        }
        if !self.core.reserve_child() {
            return Err(Error::PoolBusy {
                server: self.name.clone(),
                waited: Duration::ZERO,
            });
        }
        let mut config = self.config.clone();
        config.caller = caller.map(Arc::from);
        let starting = match Starting::launch(config, (self.connector)()) {
            Ok(s) => s,
            Err(e) => {
                self.core.release_child();
                Counters::add(&self.counters.spawn_failures);
                return Err(e);
            }
        };
        let joiner = starting.joiner();
        match starting.wait(deadline.capped(self.config.start_timeout)) {
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
                self.core.closing_worker(joiner);
                Err(e)
            }
        }
    }

    /// Ends a direct call's session: closed in the background, counted until reaped.
    pub(crate) fn end_direct(&self, session: Session) {
        self.core.retire(session, CloseReason::Closed);
    }
}

/// What `start_one` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Started,
    /// A start is under way, the set is full, or the pool is closed.
    Busy,
    /// The start history says not now.
    Gate(Gate),
    /// The pool-wide child cap is reached.
    CapFull,
}
