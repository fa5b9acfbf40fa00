//! State shared between the main loop and the tool threads: the cancellation flag and reply
//! mailbox of each call in flight, the server's own requests awaiting an answer, the count of
//! running tool threads, per-process counters and subscriptions, open `subscriptions/listen`
//! streams, tasks, the ids that got an MRTR `input_required`, cancelled server requests whose
//! late answers are watched, the -32022 refusals still to give (`--refuse-first`,
//! `refuse_next`) and the ids refused, and the `--record` file.

use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::process;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::listen::Listen;
use super::tasks::Task;
use super::wire::Output;
use super::Config;

/// Locks a mutex, ignoring poisoning (a panicking thread must not take the server down).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Cancellation flag plus a mailbox for one awaited client response; threads wait on it.
#[derive(Default)]
pub(super) struct Slot {
    state: Mutex<SlotState>,
    cv: Condvar,
}

#[derive(Default)]
struct SlotState {
    cancelled: bool,
    reply: Option<Value>,
}

impl Slot {
    pub(super) fn cancel(&self) {
        lock(&self.state).cancelled = true;
        self.cv.notify_all();
    }

    pub(super) fn deliver(&self, message: Value) {
        lock(&self.state).reply = Some(message);
        self.cv.notify_all();
    }

    pub(super) fn is_cancelled(&self) -> bool {
        lock(&self.state).cancelled
    }

    /// Waits until `deadline` (forever if `None`). Returns false if cancelled first.
    pub(super) fn sleep_until(&self, deadline: Option<Instant>) -> bool {
        let mut st = lock(&self.state);
        loop {
            if st.cancelled {
                return false;
            }
            st = match deadline {
                None => self.cv.wait(st).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return true;
                    }
                    match self.cv.wait_timeout(st, d - now) {
                        Ok((g, _)) => g,
                        Err(e) => e.into_inner().0,
                    }
                }
            };
        }
    }

    /// Takes a delivered response message without waiting.
    pub(super) fn try_reply(&self) -> Option<Value> {
        lock(&self.state).reply.take()
    }

    /// Waits for a delivered response message; `None` if cancelled first.
    pub(super) fn wait_reply(&self) -> Option<Value> {
        let mut st = lock(&self.state);
        loop {
            if st.cancelled {
                return None;
            }
            if let Some(v) = st.reply.take() {
                return Some(v);
            }
            st = self.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// State shared between the main loop and the tool threads.
pub(super) struct Shared {
    pub(super) cfg: Config,
    /// Shared with the thread of a delayed `crash`, which may write its last words.
    pub(super) out: Arc<Mutex<Output>>,
    record: Option<Mutex<File>>,
    /// Server-to-client requests awaiting a response, by our own integer id.
    pub(super) pending: Mutex<HashMap<u64, Arc<Slot>>>,
    pub(super) next_server_id: AtomicU64,
    /// Threaded client requests in flight, keyed by the JSON text of their id.
    pub(super) inflight: Mutex<HashMap<String, Arc<Slot>>>,
    active: Mutex<usize>,
    active_cv: Condvar,
    pub(super) counter: AtomicU64,
    pub(super) added_tools: AtomicUsize,
    pub(super) subscriptions: Mutex<HashSet<String>>,
    /// Minimum level index set by `logging/setLevel` (None = send everything).
    pub(super) log_level: Mutex<Option<usize>>,
    /// Set once the connection is locked to the per-request generation: every result then
    /// gets `resultType: "complete"` unless it has a `resultType` already.
    pub(super) stateless: AtomicBool,
    /// Open `subscriptions/listen` streams, in the order they were opened.
    pub(super) listens: Mutex<Vec<Listen>>,
    /// Whether a `subscriptions/listen` stream was ever opened on this connection.
    pub(super) listen_seen: AtomicBool,
    /// Tasks, in creation order (kept for the life of the process).
    pub(super) tasks: Mutex<Vec<Arc<Task>>>,
    /// JSON text of the request ids answered with an MRTR `input_required`.
    pub(super) mrtr_ids: Mutex<HashSet<String>>,
    /// Server requests cancelled by `ask_then_cancel`, watched for a late answer.
    pub(super) late_watch: Mutex<Vec<LateWatch>>,
    /// Enveloped requests still to refuse with -32022 (`--refuse-first`, `refuse_next`).
    pub(super) refusals_left: AtomicU64,
    /// JSON text of the request ids refused that way (a retry must use a new id).
    pub(super) refused_ids: Mutex<HashSet<String>>,
}

/// A server request that `ask_then_cancel` cancelled: did an answer come anyway?
pub(super) struct LateWatch {
    pub(super) id: u64,
    /// An answer arrived before the cancel was sent.
    pub(super) early: bool,
    /// An answer arrived after the cancel was sent.
    pub(super) late: bool,
    /// The cancel has been sent: the next request (or EOF) reports on it.
    pub(super) ready: bool,
}

impl Shared {
    pub(super) fn new(cfg: Config, record: Option<Mutex<File>>) -> Self {
        Shared {
            out: Arc::new(Mutex::new(Output::new(&cfg))),
            refusals_left: AtomicU64::new(cfg.refuse_first),
            cfg,
            record,
            pending: Mutex::new(HashMap::new()),
            next_server_id: AtomicU64::new(0),
            inflight: Mutex::new(HashMap::new()),
            active: Mutex::new(0),
            active_cv: Condvar::new(),
            counter: AtomicU64::new(0),
            added_tools: AtomicUsize::new(0),
            subscriptions: Mutex::new(HashSet::new()),
            log_level: Mutex::new(None),
            stateless: AtomicBool::new(false),
            listens: Mutex::new(Vec::new()),
            listen_seen: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            mrtr_ids: Mutex::new(HashSet::new()),
            late_watch: Mutex::new(Vec::new()),
            refused_ids: Mutex::new(HashSet::new()),
        }
    }

    /// Records a response to a server request `ask_then_cancel` cancelled; false if `id` is
    /// not watched.
    pub(super) fn late_answer(&self, id: u64) -> bool {
        let mut watch = lock(&self.late_watch);
        match watch.iter_mut().find(|w| w.id == id) {
            Some(w) => {
                w.late = true;
                true
            }
            None => false,
        }
    }

    /// Writes `late answer to ID`, `early answer to ID` or `no late answer` to stderr for
    /// each cancelled server request whose cancel has been sent, and forgets them.
    pub(super) fn report_late_answers(&self) {
        let mut watch = lock(&self.late_watch);
        watch.retain(|w| {
            if !w.ready {
                return true;
            }
            match (w.late, w.early) {
                (true, _) => say!("late answer to {}", w.id),
                (false, true) => say!("early answer to {}", w.id),
                (false, false) => say!("no late answer"),
            }
            false
        });
    }

    pub(super) fn record(&self, name: &str, args: &Map<String, Value>) {
        let Some(file) = &self.record else { return };
        let line = format!(
            "{{\"tool\":{},\"arguments\":{},\"pid\":{}}}\n",
            serde_json::to_string(name).unwrap_or_default(),
            serde_json::to_string(args).unwrap_or_else(|_| "{}".into()),
            process::id()
        );
        let mut f = lock(file);
        if let Err(e) = f.write_all(line.as_bytes()).and_then(|()| f.flush()) {
            say!("fake-server: cannot write the record file: {e}");
        }
    }

    /// Waits until no tool thread is running, or at most `timeout`.
    pub(super) fn wait_for_tools(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut active = lock(&self.active);
        while *active > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            active = match self.active_cv.wait_timeout(active, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// Counts a running tool thread; decrements on drop (also when spawning fails).
pub(super) struct ActiveGuard(pub(super) Arc<Shared>);

impl ActiveGuard {
    pub(super) fn new(shared: &Arc<Shared>) -> Self {
        *lock(&shared.active) += 1;
        ActiveGuard(Arc::clone(shared))
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let mut n = lock(&self.0.active);
        *n = n.saturating_sub(1);
        self.0.active_cv.notify_all();
    }
}
