//! What a session's worker, its readers and its callers' handles share: the lifecycle, the
//! pending table, the read side, the two doorbells, the command channel and the counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Mutex, MutexGuard};
use serde_json::{Map, Value};

use crate::config::{Generation, ServerConfig};
use crate::error::{CloseReason, Error};
use crate::handler::{Asks, ClientHandler, HandlerSupport};
use crate::protocol::{LogLevel, ServerDetails, Task, ToolIndex};

use super::inbound::Lines;
use super::listen::{Subscription, ToolListen};
use super::pending::Table;
use super::sys::Bell;

/// Callers' request ids start here (the start-up requests use lower ones).
pub(crate) const FIRST_CALLER_ID: u64 = 100;

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// Something to run once, on whichever thread sees the moment.
pub(crate) type Hook = Box<dyn FnOnce() + Send>;

/// A message from a caller's thread (or a handler thread) to the worker.
pub(crate) enum Command {
    /// Write this request line (already registered in the table).
    Write { id: u64, line: Vec<u8> },
    /// Write these request lines (a batch's, already registered): `ends` has each
    /// request's id and where its line ends in `lines`, in order.
    WriteMany {
        lines: Vec<u8>,
        ends: Vec<(u64, usize)>,
    },
    /// Write this notification line.
    Notify(Vec<u8>),
    /// Write this answer to a server request.
    Answer(Vec<u8>),
    /// The callers of these requests stopped waiting (timeout or cancel): drop each line
    /// none of which was written, and tell the server of the others.
    Abandon { ids: Vec<u64>, reason: &'static str },
    /// Close the session for this reason.
    Close(CloseReason),
}

/// The lifecycle: starting, ready, ending with a reason, ended. Set by whoever sees the end
/// first, before any caller is told of it, so a retry never picks a session that failed.
pub(crate) struct Lifecycle {
    state: AtomicU8,
    reason: Mutex<Option<(CloseReason, String)>>,
}

const STARTING: u8 = 0;
const READY: u8 = 1;
const ENDING: u8 = 2;
const ENDED: u8 = 3;

impl Lifecycle {
    fn new() -> Lifecycle {
        Lifecycle {
            state: AtomicU8::new(STARTING),
            reason: Mutex::new(None),
        }
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.state.load(Ordering::Acquire) == READY
    }

    pub(crate) fn is_ending(&self) -> bool {
        self.state.load(Ordering::Acquire) >= ENDING
    }

    pub(crate) fn ready(&self) {
        let _ = self
            .state
            .compare_exchange(STARTING, READY, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Marks the session ending. The first reason wins, except that an exit status replaces
    /// a guess made before it was known (end of output, a failed write).
    pub(crate) fn ending(&self, reason: CloseReason) {
        let mut stored = self.reason.lock();
        let refine = matches!(
            (&*stored, &reason),
            (
                Some((CloseReason::Eof | CloseReason::Broken(_), _)),
                CloseReason::Exited(_) | CloseReason::Signaled(_)
            )
        );
        if stored.is_none() || refine {
            *stored = Some((reason, String::new()));
        }
        let _ = self.state.fetch_max(ENDING, Ordering::AcqRel);
    }

    /// The session has ended: its final reason and stderr tail.
    pub(crate) fn ended(&self, reason: CloseReason, tail: String) {
        *self.reason.lock() = Some((reason, tail));
        self.state.store(ENDED, Ordering::Release);
    }

    /// Why it ended (or is ending), with the stderr tail once known.
    pub(crate) fn reason(&self) -> Option<(CloseReason, String)> {
        self.reason.lock().clone()
    }
}

/// A result's caching hints (per-request generation): how long it stays fresh, and whether
/// shared intermediaries may keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheHints {
    pub ttl_ms: Option<u64>,
    pub scope: Option<String>,
}

impl CacheHints {
    pub(crate) fn of(result: &serde_json::Value) -> CacheHints {
        CacheHints {
            ttl_ms: result.get("ttlMs").and_then(serde_json::Value::as_u64),
            scope: result
                .get("cacheScope")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// A session's counters (read by its handle's accessors and the pool).
#[derive(Default)]
pub(crate) struct Counters {
    pub in_flight: AtomicUsize,
    pub calls: AtomicU64,
    pub invalid_lines: AtomicU64,
    pub unmatched_responses: AtomicU64,
    pub server_requests_ignored: AtomicU64,
    pub tools_changed: AtomicBool,
    /// Counts `notifications/tools/list_changed`; the pool's tool cache compares it.
    pub tools_epoch: AtomicU64,
    pub handlers_running: AtomicUsize,
}

/// The state of one session, shared by its worker, its readers and its handles.
pub(crate) struct Shared {
    pub name: String,
    /// The caller key of a per-caller pool's session, told to the handler.
    pub caller: Option<Arc<str>>,
    /// Unique among all sessions of this process.
    pub serial: u64,
    pub request_timeout: Duration,
    pub max_request_timeout: Duration,
    pub max_message_size: usize,
    pub handler: Arc<dyn ClientHandler>,
    pub support: HandlerSupport,
    /// The server's requests the handler is answering (for the server's cancels).
    pub asks: Asks,
    pub lifecycle: Lifecycle,
    pub table: Mutex<Table>,
    /// The server's output. Locked only by the holder of the read token.
    pub lines: Mutex<Lines>,
    /// Interrupts the reading caller's wait (cancel, session ending).
    pub wake: Bell,
    /// Wakes the worker.
    pub doorbell: Bell,
    /// The worker is about to sleep, or sleeps: ring the doorbell after sending it work.
    pub parked: AtomicBool,
    pub commands: Sender<Command>,
    /// The HTTP side, for a session over HTTP (set before its worker starts).
    pub http: OnceLock<Arc<super::http::Link>>,
    pub details: OnceLock<ServerDetails>,
    /// The `_meta` envelope of the per-request generation; unset in the handshake one.
    pub envelope: OnceLock<Map<String, Value>>,
    pub next_id: AtomicU64,
    pub pid: OnceLock<u32>,
    pub started: Instant,
    pub handshake_time: OnceLock<Duration>,
    pub last_used: Mutex<Instant>,
    pub counters: Counters,
    /// What the session knows of the server's tools (from the last `tools/list`), and the
    /// tool-list epoch it was built at.
    pub tools: Mutex<Option<(Arc<ToolIndex>, u64)>>,
    /// The caching hints (`ttlMs`, `cacheScope`) of the last `tools/list` result.
    pub tools_hints: Mutex<Option<CacheHints>>,
    /// Held while the session lists the tools to learn them (one listing at a time).
    pub indexing: Mutex<()>,
    /// The log level sent with every request of the per-request generation.
    pub log_level: Mutex<Option<LogLevel>>,
    /// The latest status of each task the server reported (`notifications/tasks/status`).
    pub tasks: Mutex<HashMap<String, Task>>,
    /// The subscription to tool-list changes (per-request generation), when open.
    pub tool_listen: ToolListen,
    /// `Session::subscribe` of the per-request generation: a subscription per URI.
    pub resource_listens: Mutex<HashMap<String, Subscription>>,
    pub max_input_rounds: usize,
    pub validate_output: bool,
    pub tasks_enabled: bool,
    pub worker: Mutex<Option<JoinHandle<()>>>,
    /// Disconnects when the worker thread ends (its sender is dropped then).
    pub finished: Receiver<()>,
    /// Set by the worker when it is done (its child reaped, every descriptor closed), just
    /// before it runs the hooks below and ends.
    pub done: AtomicBool,
    /// Run by the worker when it is done; `None` once they have run.
    pub done_hooks: Mutex<Option<Vec<Hook>>>,
    /// Run once no call is in flight (set by the pool for a retiring session).
    idle_hook: Mutex<Option<Hook>>,
    idle_hooked: AtomicBool,
}

impl Shared {
    pub(crate) fn new(
        config: &ServerConfig,
        commands: Sender<Command>,
        finished: Receiver<()>,
    ) -> std::io::Result<Shared> {
        Ok(Shared {
            name: config.name.clone(),
            caller: config.caller.clone(),
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            request_timeout: config.request_timeout,
            max_request_timeout: config.max_request_timeout,
            max_message_size: config.max_message_size,
            handler: config.handler.clone(),
            support: config.handler.supports(),
            asks: Asks::default(),
            lifecycle: Lifecycle::new(),
            table: Mutex::new(Table::new()),
            lines: Mutex::new(Lines::new(None, config.max_message_size)),
            wake: Bell::new()?,
            doorbell: Bell::new()?,
            parked: AtomicBool::new(false),
            commands,
            http: OnceLock::new(),
            details: OnceLock::new(),
            envelope: OnceLock::new(),
            next_id: AtomicU64::new(FIRST_CALLER_ID),
            pid: OnceLock::new(),
            started: Instant::now(),
            handshake_time: OnceLock::new(),
            last_used: Mutex::new(Instant::now()),
            counters: Counters::default(),
            tools: Mutex::new(None),
            tools_hints: Mutex::new(None),
            indexing: Mutex::new(()),
            log_level: Mutex::new(config.log_level),
            tasks: Mutex::new(HashMap::new()),
            tool_listen: Mutex::new(None),
            resource_listens: Mutex::new(HashMap::new()),
            max_input_rounds: config.max_input_rounds,
            validate_output: config.validate_output,
            tasks_enabled: config.tasks,
            worker: Mutex::new(None),
            finished,
            done: AtomicBool::new(false),
            done_hooks: Mutex::new(Some(Vec::new())),
            idle_hook: Mutex::new(None),
            idle_hooked: AtomicBool::new(false),
        })
    }

    /// Hands the worker a command and makes sure it wakes for it.
    pub(crate) fn submit(&self, command: Command) {
        let _ = self.commands.send(command);
        if self.parked.swap(false, Ordering::SeqCst) {
            self.doorbell.ring();
        }
    }

    /// Runs `hook` once the worker is done (at once if it is).
    pub(crate) fn when_done(&self, hook: Hook) {
        let mut hooks = self.done_hooks.lock();
        match hooks.as_mut() {
            Some(list) => list.push(hook),
            None => {
                drop(hooks);
                hook();
            }
        }
    }

    /// Runs `hook` once no call is in flight (at once if none is).
    pub(crate) fn when_idle(&self, hook: Hook) {
        *self.idle_hook.lock() = Some(hook);
        self.idle_hooked.store(true, Ordering::SeqCst);
        if self.counters.in_flight.load(Ordering::SeqCst) == 0 {
            self.call_ended();
        }
    }

    /// A call ended; when it was the last in flight, runs the idle hook if one is set.
    pub(crate) fn call_ended(&self) {
        if self.idle_hooked.load(Ordering::SeqCst)
            && self.counters.in_flight.load(Ordering::SeqCst) == 0
        {
            let hook = self.idle_hook.lock().take();
            if let Some(hook) = hook {
                self.idle_hooked.store(false, Ordering::SeqCst);
                hook();
            }
        }
    }

    /// The worker is done: marks it and runs the hooks.
    pub(crate) fn worker_done(&self) {
        self.done.store(true, Ordering::Release);
        let hooks = self.done_hooks.lock().take().unwrap_or_default();
        for hook in hooks {
            hook();
        }
    }

    /// Wakes the worker (the session is ending, say).
    pub(crate) fn nudge_worker(&self) {
        self.parked.store(false, Ordering::SeqCst);
        self.doorbell.ring();
    }

    /// The generation, once the session is ready.
    pub(crate) fn generation(&self) -> Option<Generation> {
        self.details.get().map(|d| d.generation)
    }

    /// Something saw the session end: record it first, then wake the worker, which fails
    /// the callers and shuts the server down.
    pub(crate) fn end(&self, reason: CloseReason) {
        self.lifecycle.ending(reason);
        if let Some(link) = self.http.get() {
            // Callers blocked reading HTTP replies stop now.
            link.shut();
        }
        self.nudge_worker();
    }

    /// Closes the session for this reason: calls in flight fail at once. (Over HTTP the
    /// session is marked ending first, so callers blocked on a reply stop now rather than
    /// when the worker gets to the command.)
    pub(crate) fn close(&self, reason: CloseReason) {
        if self.http.get().is_some() {
            self.end(reason.clone());
        }
        self.submit(Command::Close(reason));
    }

    /// The error for a call that finds the session closed.
    pub(crate) fn closed_error(&self) -> Error {
        let (reason, stderr_tail) = self
            .lifecycle
            .reason()
            .unwrap_or((CloseReason::Closed, String::new()));
        Error::SessionClosed {
            reason,
            stderr_tail,
        }
    }

    /// Locks the server's output for reading. Marks this thread as reading this session, so
    /// a handler hook that calls back into the same session fails at once instead of
    /// waiting for itself.
    pub(crate) fn lock_lines(&self) -> ReadingGuard<'_> {
        let guard = self.lines.lock();
        READING.with(|r| r.set(self.serial));
        ReadingGuard { guard }
    }

    /// [`lock_lines`](Self::lock_lines) unless someone else holds them.
    pub(crate) fn try_lock_lines(&self) -> Option<ReadingGuard<'_>> {
        let guard = self.lines.try_lock()?;
        READING.with(|r| r.set(self.serial));
        Some(ReadingGuard { guard })
    }

    /// Whether this thread is reading this session's output (and so runs one of its
    /// handler hooks, when it calls in).
    pub(crate) fn reading_here(&self) -> bool {
        READING.with(|r| r.get()) == self.serial
    }
}

thread_local! {
    /// The serial of the session whose output this thread is reading, or 0.
    static READING: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The locked server output, marked as read by this thread.
pub(crate) struct ReadingGuard<'a> {
    guard: MutexGuard<'a, Lines>,
}

impl std::ops::Deref for ReadingGuard<'_> {
    type Target = Lines;
    fn deref(&self) -> &Lines {
        &self.guard
    }
}

impl std::ops::DerefMut for ReadingGuard<'_> {
    fn deref_mut(&mut self) -> &mut Lines {
        &mut self.guard
    }
}

impl Drop for ReadingGuard<'_> {
    fn drop(&mut self) {
        READING.with(|r| r.set(0));
    }
}
