//! One live session: the handle callers use, and the worker thread that owns the child.
//!
//! Callers serialize their request on their own thread, send it to the worker over a channel
//! and wait on their own reply channel, watching their deadline and cancel handle themselves:
//! a call ends on time even if the worker is busy. The worker owns the transport (and so the
//! child), writes requests, routes every inbound message, answers the server's requests and,
//! when the session ends, fails every call in flight at once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{
    bounded, never, select, unbounded, Receiver, RecvTimeoutError, Sender, TrySendError,
};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use crate::config::{Generation, ServerConfig};
use crate::error::{CloseReason, Error, Phase};
use crate::handler::{client_capabilities, ClientHandler, HandlerSupport, ListKind};
use crate::jsonrpc::{self, our_id, Message, RpcError};
use crate::process;
use crate::protocol::{
    self, CallToolResult, GetPromptResult, Implementation, LogLevel, Progress, ServerDetails, Tool,
};
use crate::transport::{Ended, Inbound, StdioTransport, Transport};

/// The most pages a list call follows before it gives up.
const MAX_PAGES: usize = 10_000;
/// The per-request generation's "unsupported protocol version" error code.
const UNSUPPORTED_VERSION: i64 = -32022;

/// A way for another thread to cancel a call.
///
/// One handle may be given to several calls; [`cancel`](Self::cancel) ends all of them at
/// once, and calls started with an already cancelled handle fail immediately.
///
/// ```
/// let cancel = mcp_pool::CancelHandle::new();
/// let for_other_thread = cancel.clone();
/// std::thread::spawn(move || for_other_thread.cancel());
/// ```
#[derive(Clone, Debug)]
pub struct CancelHandle {
    inner: Arc<CancelInner>,
}

#[derive(Debug)]
struct CancelInner {
    trigger: Mutex<Option<Sender<()>>>,
    fired: Receiver<()>,
}

impl CancelHandle {
    /// A handle that has not fired.
    pub fn new() -> Self {
        let (tx, rx) = bounded(0);
        CancelHandle {
            inner: Arc::new(CancelInner {
                trigger: Mutex::new(Some(tx)),
                fired: rx,
            }),
        }
    }

    /// Cancels every call using this handle. Idempotent.
    pub fn cancel(&self) {
        // Dropping the only sender disconnects the channel, which wakes every waiter.
        self.inner.trigger.lock().take();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.trigger.lock().is_none()
    }
}

impl Default for CancelHandle {
    fn default() -> Self {
        Self::new()
    }
}

/// A progress callback.
type ProgressFn<'a> = Box<dyn FnMut(&Progress) + 'a>;

/// The outcome of a request as the server sent it.
type Outcome = Result<Value, RpcError>;

/// Options of one call: deadline, progress callback, cancellation.
///
/// ```no_run
/// use std::time::Duration;
/// use mcp_pool::{CallOptions, CancelHandle, ServerConfig, Session};
///
/// let session = Session::start(ServerConfig::new("srv", "my-mcp-server"))?;
/// let cancel = CancelHandle::new();
/// let opts = CallOptions::new()
///     .timeout(Duration::from_secs(5))
///     .on_progress(|p| println!("{}/{:?}", p.progress, p.total))
///     .cancel_with(&cancel);
/// let result = session.call_tool_with("slow", serde_json::json!({}), opts)?;
/// # Ok::<(), mcp_pool::Error>(())
/// ```
#[derive(Default)]
pub struct CallOptions<'a> {
    timeout: Option<Duration>,
    progress: Option<ProgressFn<'a>>,
    cancel: Option<CancelHandle>,
    keep_deadline: bool,
}

impl<'a> CallOptions<'a> {
    /// No options: the server's request timeout, no progress, no cancel handle.
    pub fn new() -> Self {
        Self::default()
    }

    /// The call's deadline, from when it starts. Defaults to the server's request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Asks the server for progress reports and passes each to `f`, on the calling thread.
    /// Each report also pushes the deadline back by the timeout, up to the server's maximum
    /// request timeout (see [`keep_deadline`](Self::keep_deadline)).
    pub fn on_progress(mut self, f: impl FnMut(&Progress) + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Progress reports do not push the deadline back. Defaults to `false`.
    pub fn keep_deadline(mut self, keep: bool) -> Self {
        self.keep_deadline = keep;
        self
    }

    /// Lets another thread cancel the call through `handle`.
    pub fn cancel_with(mut self, handle: &CancelHandle) -> Self {
        self.cancel = Some(handle.clone());
        self
    }
}

/// A message from the caller's thread to the worker.
enum Command {
    Request {
        id: u64,
        line: Vec<u8>,
        done: Sender<Result<Value, Error>>,
        progress: Option<Sender<Progress>>,
    },
    Notify {
        line: Vec<u8>,
    },
    Abandon {
        id: u64,
        reason: &'static str,
    },
    Close,
}

/// What the worker and the handles share.
struct Shared {
    name: String,
    details: ServerDetails,
    /// The `_meta` envelope of the per-request generation; `None` in the handshake one.
    envelope: Option<Map<String, Value>>,
    request_timeout: Duration,
    max_request_timeout: Duration,
    next_id: AtomicU64,
    ended: OnceLock<(CloseReason, String)>,
    in_flight: AtomicUsize,
    calls: AtomicU64,
    invalid_lines: AtomicU64,
    unmatched_responses: AtomicU64,
    tools_changed: AtomicBool,
    started: Instant,
    handshake_time: Duration,
    last_used: Mutex<Instant>,
    pid: Option<u32>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// One live MCP session with a server process.
///
/// Cheap to clone; every clone talks to the same session and any number of threads may call
/// it at once. The session closes when [`close`](Self::close) is called or the last clone is
/// dropped (then in the background).
///
/// ```no_run
/// use mcp_pool::{ServerConfig, Session};
///
/// let session = Session::start(ServerConfig::new("everything", "npx")
///     .args(["-y", "@modelcontextprotocol/server-everything"]))?;
/// for tool in session.list_tools()? {
///     println!("{}", tool.name);
/// }
/// let result = session.call_tool("echo", serde_json::json!({"message": "hi"}))?;
/// println!("{}", result.text());
/// session.close();
/// # Ok::<(), mcp_pool::Error>(())
/// ```
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
    commands: Sender<Command>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("server", &self.shared.name)
            .field("pid", &self.shared.pid)
            .field("protocol_version", &self.shared.details.protocol_version)
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl Session {
    /// Starts the server's process and completes the handshake, within the server's start
    /// timeout.
    pub fn start(config: ServerConfig) -> Result<Session, Error> {
        config.validate()?;
        let start_timeout = config.start_timeout;
        let name = config.name.clone();
        let (commands, command_rx) = unbounded();
        let (ready_tx, ready_rx) = bounded(1);
        let worker = thread::Builder::new()
            .name(format!("mcp-worker-{name}"))
            .spawn(move || Worker::run(config, command_rx, ready_tx))
            .map_err(|source| Error::Spawn {
                command: format!("worker thread for `{name}`"),
                source,
            })?;
        // The worker enforces the start timeout itself; the margin covers its clean-up.
        match ready_rx.recv_timeout(start_timeout + Duration::from_millis(500)) {
            Ok(Ok(shared)) => {
                *shared.worker.lock() = Some(worker);
                Ok(Session { shared, commands })
            }
            // The worker shuts the failed child down on its own and then ends.
            Ok(Err(e)) => Err(e),
            Err(RecvTimeoutError::Timeout) => Err(Error::Timeout {
                phase: Phase::Handshake,
                after: start_timeout,
            }),
            Err(RecvTimeoutError::Disconnected) => {
                drop(worker);
                Err(Error::Handshake {
                    reason: "the session's worker ended unexpectedly".into(),
                    stderr_tail: String::new(),
                })
            }
        }
    }

    /// The server's name as configured.
    pub fn server_name(&self) -> &str {
        &self.shared.name
    }

    /// What the session learned about the server: generation, version, capabilities, info.
    pub fn details(&self) -> &ServerDetails {
        &self.shared.details
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.shared.pid
    }

    /// Whether the session can still take calls.
    pub fn is_alive(&self) -> bool {
        self.shared.ended.get().is_none()
    }

    /// Why the session ended, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.ended.get().map(|(r, _)| r.clone())
    }

    /// The last lines the server wrote to stderr, as of when the session ended (empty while
    /// it runs).
    pub fn stderr_tail(&self) -> String {
        self.shared
            .ended
            .get()
            .map(|(_, tail)| tail.clone())
            .unwrap_or_default()
    }

    /// Calls in flight right now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Calls made through this session so far.
    pub fn calls(&self) -> u64 {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// Lines from the server that were not JSON-RPC messages.
    pub fn invalid_lines(&self) -> u64 {
        self.shared.invalid_lines.load(Ordering::Relaxed)
    }

    /// Responses that matched no call in flight (late after a timeout, duplicated, or with an
    /// id never issued).
    pub fn unmatched_responses(&self) -> u64 {
        self.shared.unmatched_responses.load(Ordering::Relaxed)
    }

    /// When the session started.
    pub fn started_at(&self) -> Instant {
        self.shared.started
    }

    /// How long spawning and the handshake took.
    pub fn handshake_time(&self) -> Duration {
        self.shared.handshake_time
    }

    /// When the last call ended (or the session started).
    pub fn last_used(&self) -> Instant {
        *self.shared.last_used.lock()
    }

    /// Returns and clears the flag set by `notifications/tools/list_changed`.
    pub fn take_tools_changed(&self) -> bool {
        self.shared.tools_changed.swap(false, Ordering::AcqRel)
    }

    /// Lists every tool, following `nextCursor` to the last page.
    pub fn list_tools(&self) -> Result<Vec<Tool>, Error> {
        self.list_all("tools/list", "tools", CallOptions::new())
    }

    /// Lists every resource (each as sent: `uri`, `name`, `mimeType`, ...).
    pub fn list_resources(&self) -> Result<Vec<Value>, Error> {
        self.list_all("resources/list", "resources", CallOptions::new())
    }

    /// Lists every resource template.
    pub fn list_resource_templates(&self) -> Result<Vec<Value>, Error> {
        self.list_all(
            "resources/templates/list",
            "resourceTemplates",
            CallOptions::new(),
        )
    }

    /// Lists every prompt.
    pub fn list_prompts(&self) -> Result<Vec<Value>, Error> {
        self.list_all("prompts/list", "prompts", CallOptions::new())
    }

    /// Calls a tool. A tool's own failure is a result with `is_error: true`, not an `Err`.
    pub fn call_tool(&self, name: &str, arguments: Value) -> Result<CallToolResult, Error> {
        self.call_tool_with(name, arguments, CallOptions::new())
    }

    /// Calls a tool with per-call options.
    pub fn call_tool_with(
        &self,
        name: &str,
        arguments: Value,
        options: CallOptions<'_>,
    ) -> Result<CallToolResult, Error> {
        let params = tool_call_params(name, arguments)?;
        let result = self.request_with("tools/call", Some(params), options)?;
        parse_result(result, "tools/call")
    }

    /// Reads a resource; returns the result (`contents`: items with `uri` and `text` or
    /// `blob`).
    pub fn read_resource(&self, uri: &str) -> Result<Value, Error> {
        self.request("resources/read", Some(json!({ "uri": uri })))
    }

    /// Subscribes to changes of a resource (`notifications/resources/updated` reach the
    /// handler).
    pub fn subscribe(&self, uri: &str) -> Result<(), Error> {
        self.request("resources/subscribe", Some(json!({ "uri": uri })))
            .map(drop)
    }

    /// Ends a subscription.
    pub fn unsubscribe(&self, uri: &str) -> Result<(), Error> {
        self.request("resources/unsubscribe", Some(json!({ "uri": uri })))
            .map(drop)
    }

    /// Gets a prompt with its arguments.
    pub fn get_prompt(&self, name: &str, arguments: Value) -> Result<GetPromptResult, Error> {
        let params = name_and_arguments(name, arguments, "prompt")?;
        parse_result(self.request("prompts/get", Some(params))?, "prompts/get")
    }

    /// Asks for completions (`completion/complete`); returns the `completion` object.
    pub fn complete(&self, reference: Value, argument: Value) -> Result<Value, Error> {
        let mut result = self.request(
            "completion/complete",
            Some(json!({ "ref": reference, "argument": argument })),
        )?;
        Ok(result
            .get_mut("completion")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }

    /// Sets the level of log messages the server sends (`logging/setLevel`).
    pub fn set_logging_level(&self, level: LogLevel) -> Result<(), Error> {
        self.request("logging/setLevel", Some(json!({ "level": level.as_str() })))
            .map(drop)
    }

    /// Checks the server answers: `ping` in the handshake generation, `server/discover` in
    /// the per-request one (which has no `ping`). Returns the round-trip time.
    pub fn ping(&self) -> Result<Duration, Error> {
        let start = Instant::now();
        let method = match self.shared.details.generation {
            Generation::PerRequest => "server/discover",
            _ => "ping",
        };
        self.request(method, None)?;
        Ok(start.elapsed())
    }

    /// Sends any request and returns its raw result.
    pub fn request(&self, method: &str, params: Option<Value>) -> Result<Value, Error> {
        self.request_with(method, params, CallOptions::new())
    }

    /// Sends any request with per-call options.
    pub fn request_with(
        &self,
        method: &str,
        params: Option<Value>,
        options: CallOptions<'_>,
    ) -> Result<Value, Error> {
        let shared = &self.shared;
        if method.is_empty() {
            return Err(Error::InvalidArgument("method name is empty".into()));
        }
        let mut params = match params {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(other) => {
                return Err(Error::InvalidArgument(format!(
                    "params of `{method}` must be a JSON object, not {}",
                    kind_of(&other)
                )))
            }
        };
        let CallOptions {
            timeout,
            mut progress,
            cancel,
            keep_deadline,
        } = options;
        let timeout = timeout.unwrap_or(shared.request_timeout);
        let cancel_rx = match &cancel {
            Some(c) if c.is_cancelled() => return Err(Error::Cancelled),
            Some(c) => c.inner.fired.clone(),
            None => never(),
        };
        if let Some((reason, tail)) = shared.ended.get() {
            return Err(Error::SessionClosed {
                reason: reason.clone(),
                stderr_tail: tail.clone(),
            });
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        if progress.is_some() || shared.envelope.is_some() {
            let params = params.get_or_insert_with(Map::new);
            let meta = match params
                .entry("_meta")
                .or_insert_with(|| Value::Object(Map::new()))
            {
                Value::Object(meta) => meta,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "`_meta` in params of `{method}` must be an object"
                    )))
                }
            };
            if progress.is_some() {
                meta.insert("progressToken".into(), json!(id));
            }
            if let Some(envelope) = &shared.envelope {
                for (k, v) in envelope {
                    meta.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        let params = params.map(Value::Object);
        let line = jsonrpc::request_line(id, method, params.as_ref());

        let (done_tx, done_rx) = bounded(1);
        let (progress_tx, progress_rx) = match progress {
            Some(_) => {
                let (tx, rx) = bounded(256);
                (Some(tx), rx)
            }
            None => (None, never()),
        };
        let started = Instant::now();
        let _in_flight = InFlight::enter(shared);
        if self
            .commands
            .send(Command::Request {
                id,
                line,
                done: done_tx,
                progress: progress_tx,
            })
            .is_err()
        {
            return Err(self.closed_error());
        }
        let hard_limit = started + timeout.max(shared.max_request_timeout);
        let mut deadline = started + timeout;
        loop {
            select! {
                recv(done_rx) -> outcome => return match outcome {
                    Ok(outcome) => outcome,
                    // The worker ended before taking the request: it was never written.
                    Err(_) => Err(self.closed_error()),
                },
                recv(progress_rx) -> report => {
                    if let (Ok(report), Some(f)) = (report, progress.as_mut()) {
                        f(&report);
                        if !keep_deadline {
                            deadline = (Instant::now() + timeout).min(hard_limit);
                        }
                    }
                },
                recv(cancel_rx) -> _ => {
                    self.abandon(id, "cancelled by the client");
                    return Err(Error::Cancelled);
                },
                recv(crossbeam_channel::at(deadline)) -> _ => {
                    self.abandon(id, "timed out");
                    return Err(Error::Timeout { phase: Phase::Request, after: started.elapsed() });
                },
            }
        }
    }

    /// Sends a notification to the server.
    pub fn notify(&self, method: &str, params: Option<Value>) -> Result<(), Error> {
        if method.is_empty() {
            return Err(Error::InvalidArgument("method name is empty".into()));
        }
        if let Some(p) = &params {
            if !p.is_object() && !p.is_null() {
                return Err(Error::InvalidArgument(format!(
                    "params of `{method}` must be a JSON object, not {}",
                    kind_of(p)
                )));
            }
        }
        if self.shared.ended.get().is_some() {
            return Err(self.closed_error());
        }
        let line = jsonrpc::notification_line(method, params.as_ref());
        self.commands
            .send(Command::Notify { line })
            .map_err(|_| self.closed_error())
    }

    /// Closes the session: calls in flight fail at once, then the child is shut down (stdin
    /// closed, SIGTERM, SIGKILL, each after the close grace) and reaped. Blocks until that is
    /// done; other clones see the session closed.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
        let worker = self.shared.worker.lock().take();
        if let Some(worker) = worker {
            let _ = worker.join();
        }
    }

    fn abandon(&self, id: u64, reason: &'static str) {
        let _ = self.commands.send(Command::Abandon { id, reason });
    }

    fn closed_error(&self) -> Error {
        match self.shared.ended.get() {
            Some((reason, tail)) => Error::SessionClosed {
                reason: reason.clone(),
                stderr_tail: tail.clone(),
            },
            None => Error::SessionClosed {
                reason: CloseReason::Closed,
                stderr_tail: String::new(),
            },
        }
    }

    fn list_all<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        key: &str,
        options: CallOptions<'_>,
    ) -> Result<Vec<T>, Error> {
        let timeout = options.timeout.unwrap_or(self.shared.request_timeout);
        let deadline = Instant::now() + timeout;
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = cursor.as_ref().map(|c| json!({ "cursor": c }));
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    phase: Phase::Request,
                    after: timeout,
                });
            }
            let mut page = self.request_with(method, params, CallOptions::new().timeout(left))?;
            match page.get_mut(key).map(Value::take) {
                Some(Value::Array(list)) => {
                    for item in list {
                        items.push(serde_json::from_value(item).map_err(|e| {
                            Error::Protocol(format!("an item of the `{method}` result: {e}"))
                        })?);
                    }
                }
                _ => {
                    return Err(Error::Protocol(format!(
                        "`{method}` result has no `{key}` array"
                    )))
                }
            }
            match page.get("nextCursor") {
                None | Some(Value::Null) => return Ok(items),
                Some(Value::String(next)) => {
                    if !seen.insert(next.clone()) {
                        return Err(Error::Protocol(format!(
                            "`{method}` pagination loops: cursor {next:?} came twice"
                        )));
                    }
                    cursor = Some(next.clone());
                }
                Some(other) => {
                    return Err(Error::Protocol(format!(
                        "`{method}` nextCursor is {}, not a string",
                        kind_of(other)
                    )))
                }
            }
        }
        Err(Error::Protocol(format!(
            "`{method}` returned more than {MAX_PAGES} pages"
        )))
    }
}

/// Counts a call in flight for its duration.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        shared.calls.fetch_add(1, Ordering::Relaxed);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        *self.0.last_used.lock() = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(crate) fn tool_call_params(name: &str, arguments: Value) -> Result<Value, Error> {
    name_and_arguments(name, arguments, "tool")
}

fn name_and_arguments(name: &str, arguments: Value, what: &str) -> Result<Value, Error> {
    if name.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} name is empty")));
    }
    match arguments {
        Value::Null => Ok(json!({ "name": name, "arguments": {} })),
        Value::Object(_) => Ok(json!({ "name": name, "arguments": arguments })),
        other => Err(Error::InvalidArgument(format!(
            "arguments of {what} `{name}` must be a JSON object, not {}",
            kind_of(&other)
        ))),
    }
}

fn parse_result<T: serde::de::DeserializeOwned>(value: Value, method: &str) -> Result<T, Error> {
    serde_json::from_value(value)
        .map_err(|e| Error::Protocol(format!("`{method}` result has the wrong shape: {e}")))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A request in flight, as the worker sees it.
struct Pending {
    done: Sender<Result<Value, Error>>,
    progress: Option<Sender<Progress>>,
}

/// Bytes waiting to be written, and which request each line belongs to.
#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    /// `(end offset, request id)` of each request line in `bytes`.
    requests: Vec<(usize, u64)>,
}

/// How the main loop ended.
enum Exit {
    Closed,
    Inbound(Ended),
    WriteFailed(std::io::Error),
}

struct Worker {
    name: String,
    transport: Box<dyn Transport>,
    inbound: Receiver<Inbound>,
    pending: HashMap<u64, Pending>,
    outbox: Outbox,
    handler: Arc<dyn ClientHandler>,
    support: HandlerSupport,
    answers: Sender<(Value, Outcome)>,
    answers_rx: Receiver<(Value, Outcome)>,
    shared: Option<Arc<Shared>>,
    invalid_lines: u64,
}

impl Worker {
    fn run(
        config: ServerConfig,
        commands: Receiver<Command>,
        ready: Sender<Result<Arc<Shared>, Error>>,
    ) {
        process::block_sigpipe_in_this_thread();
        let started = Instant::now();
        let transport = match StdioTransport::spawn(&config) {
            Ok(t) => t,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let (answers, answers_rx) = unbounded();
        let mut worker = Worker {
            name: config.name.clone(),
            inbound: transport.incoming(),
            transport: Box::new(transport),
            pending: HashMap::new(),
            outbox: Outbox::default(),
            handler: config.handler.clone(),
            support: config.handler.supports(),
            answers,
            answers_rx,
            shared: None,
            invalid_lines: 0,
        };
        let shared = match worker.handshake(&config, started) {
            Ok((details, envelope)) => {
                let handshake_time = started.elapsed();
                log::info!(
                    "[{}] session ready in {:.1} ms: {} {} ({:?} {}), pid {:?}",
                    config.name,
                    handshake_time.as_secs_f64() * 1e3,
                    details.server_info.name,
                    details.server_info.version,
                    details.generation,
                    details.protocol_version,
                    worker.transport.pid(),
                );
                Arc::new(Shared {
                    name: config.name.clone(),
                    details,
                    envelope,
                    request_timeout: config.request_timeout,
                    max_request_timeout: config.max_request_timeout,
                    next_id: AtomicU64::new(100),
                    ended: OnceLock::new(),
                    in_flight: AtomicUsize::new(0),
                    calls: AtomicU64::new(0),
                    invalid_lines: AtomicU64::new(worker.invalid_lines),
                    unmatched_responses: AtomicU64::new(0),
                    tools_changed: AtomicBool::new(false),
                    started,
                    handshake_time,
                    last_used: Mutex::new(Instant::now()),
                    pid: worker.transport.pid(),
                    worker: Mutex::new(None),
                })
            }
            Err(e) => {
                log::warn!("[{}] session failed to start: {e}", config.name);
                // Report first: the kill ladder may take seconds and is not the caller's wait.
                let _ = ready.send(Err(e));
                worker.transport.close();
                return;
            }
        };
        worker.shared = Some(shared.clone());
        if ready.send(Ok(shared.clone())).is_err() {
            // The starter gave up waiting.
            worker.transport.close();
            return;
        }
        let exit = worker.serve(&commands, &shared);
        worker.end(exit, commands, &shared);
    }

    // ---- start-up ---------------------------------------------------------------------------

    /// Agrees on a generation and version. Returns the details and, for the per-request
    /// generation, the `_meta` envelope every request carries.
    fn handshake(
        &mut self,
        config: &ServerConfig,
        started: Instant,
    ) -> Result<(ServerDetails, Option<Map<String, Value>>), Error> {
        let deadline = started + config.start_timeout;
        let caps = client_capabilities(self.support);
        let client_info = json!({ "name": config.client_name, "version": config.client_version });
        let mut envelope = Map::new();
        envelope.insert(
            protocol::META_VERSION.into(),
            json!(protocol::PER_REQUEST_VERSION),
        );
        envelope.insert(protocol::META_CLIENT_CAPS.into(), caps.clone());
        envelope.insert(protocol::META_CLIENT_INFO.into(), client_info.clone());

        const DISCOVER: u64 = 1;
        const INITIALIZE: u64 = 2;
        let mut discover_open = false;
        if config.generation != Generation::Handshake {
            let params = json!({ "_meta": envelope });
            self.write_now(jsonrpc::request_line(
                DISCOVER,
                "server/discover",
                Some(&params),
            ))?;
            discover_open = true;
            let probe_until = match config.generation {
                Generation::PerRequest => deadline,
                _ => (Instant::now() + config.discover_timeout).min(deadline),
            };
            match self.await_response(&[DISCOVER], probe_until)? {
                Some((_, Ok(result))) => {
                    if let Some(details) = discovered(&result)? {
                        return Ok((details, Some(envelope)));
                    }
                    discover_open = false;
                }
                Some((_, Err(e))) => {
                    if e.code == UNSUPPORTED_VERSION {
                        if config.generation == Generation::PerRequest {
                            return Err(self.handshake_error(format!(
                                "server does not support {}: {} (supported: {})",
                                protocol::PER_REQUEST_VERSION,
                                e.message,
                                e.data.unwrap_or(Value::Null)
                            )));
                        }
                    } else if config.generation == Generation::PerRequest {
                        return Err(self.handshake_error(format!(
                            "server/discover failed: {} ({})",
                            e.message, e.code
                        )));
                    }
                    log::debug!(
                        "[{}] server/discover answered {} {}; trying initialize",
                        self.name,
                        e.code,
                        e.message
                    );
                    discover_open = false;
                }
                None if config.generation == Generation::PerRequest => {
                    return Err(self.start_timeout(config));
                }
                None => log::debug!(
                    "[{}] no answer to server/discover within {:?}; trying initialize",
                    self.name,
                    config.discover_timeout
                ),
            }
        }

        let params = json!({
            "protocolVersion": protocol::LATEST_HANDSHAKE_VERSION,
            "capabilities": caps,
            "clientInfo": client_info,
        });
        self.write_now(jsonrpc::request_line(
            INITIALIZE,
            "initialize",
            Some(&params),
        ))?;
        let mut waiting: Vec<u64> = vec![INITIALIZE];
        if discover_open {
            // A slow per-request server may still answer the probe; accept whichever wins.
            waiting.push(DISCOVER);
        }
        let mut initialize_error = None;
        while !waiting.is_empty() {
            let Some((id, outcome)) = self.await_response(&waiting, deadline)? else {
                return Err(self.start_timeout(config));
            };
            waiting.retain(|&w| w != id);
            match (id, outcome) {
                (DISCOVER, Ok(result)) => {
                    if let Some(details) = discovered(&result)? {
                        return Ok((details, Some(envelope)));
                    }
                }
                (DISCOVER, Err(_)) => {}
                (_, Ok(result)) => {
                    let details = self.initialized(&result)?;
                    self.write_now(jsonrpc::notification_line(
                        "notifications/initialized",
                        None,
                    ))?;
                    return Ok((details, None));
                }
                (_, Err(e)) => initialize_error = Some(e),
            }
        }
        let e = initialize_error.unwrap_or(RpcError {
            code: 0,
            message: "no answer".into(),
            data: None,
        });
        Err(self.handshake_error(format!(
            "initialize failed: {} ({}{})",
            e.message,
            e.code,
            e.data.map(|d| format!(", {d}")).unwrap_or_default()
        )))
    }

    fn initialized(&self, result: &Value) -> Result<ServerDetails, Error> {
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !protocol::HANDSHAKE_VERSIONS.contains(&version) {
            return Err(self.handshake_error(format!(
                "server chose protocol version {version:?}, which this client does not speak (it speaks {})",
                protocol::HANDSHAKE_VERSIONS.join(", ")
            )));
        }
        Ok(ServerDetails {
            generation: Generation::Handshake,
            protocol_version: version.to_owned(),
            capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
            server_info: result
                .get("serverInfo")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
            instructions: result
                .get("instructions")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    fn handshake_error(&self, reason: String) -> Error {
        Error::Handshake {
            reason,
            stderr_tail: self.transport.diagnostics(),
        }
    }

    fn start_timeout(&self, config: &ServerConfig) -> Error {
        log::warn!(
            "[{}] no handshake within {:?}; stderr: {}",
            self.name,
            config.start_timeout,
            self.transport.diagnostics().trim_end()
        );
        Error::Timeout {
            phase: Phase::Handshake,
            after: config.start_timeout,
        }
    }

    fn write_now(&mut self, line: Vec<u8>) -> Result<(), Error> {
        self.transport
            .send(&line)
            .map_err(|(_, e)| self.handshake_error(format!("writing to the server: {e}")))
    }

    /// Handles inbound traffic until a response to one of `ids` arrives or `until` passes.
    fn await_response(
        &mut self,
        ids: &[u64],
        until: Instant,
    ) -> Result<Option<(u64, Outcome)>, Error> {
        loop {
            select! {
                recv(self.inbound) -> item => match item {
                    Ok(Inbound::Message(Message::Response { id, outcome })) => {
                        match our_id(&id).filter(|n| ids.contains(n)) {
                            Some(n) => return Ok(Some((n, outcome))),
                            None => log::debug!("[{}] ignoring response to id {id} during start-up", self.name),
                        }
                    }
                    Ok(Inbound::Message(m)) => self.handle_message(m),
                    Ok(Inbound::Invalid(why)) => self.invalid_line(&why),
                    Ok(Inbound::Closed(ended)) => {
                        let reason = self.transport.end_reason(&ended);
                        return Err(self.handshake_error(format!("{reason} during the handshake")));
                    }
                    Err(_) => return Err(self.handshake_error("server output closed".into())),
                },
                recv(self.answers_rx) -> answer => {
                    if let Ok((id, outcome)) = answer {
                        let _ = self.transport.send(&jsonrpc::response_line(&id, &outcome));
                    }
                },
                recv(crossbeam_channel::at(until)) -> _ => return Ok(None),
            }
        }
    }

    // ---- serving ----------------------------------------------------------------------------

    fn serve(&mut self, commands: &Receiver<Command>, shared: &Shared) -> Exit {
        loop {
            select! {
                recv(commands) -> command => {
                    let Ok(command) = command else {
                        log::debug!("[{}] every handle dropped; closing", self.name);
                        return Exit::Closed;
                    };
                    if !self.command(command) {
                        return Exit::Closed;
                    }
                    // Take what else is queued, then write it all at once.
                    for _ in 0..256 {
                        match commands.try_recv() {
                            Ok(command) => if !self.command(command) { return Exit::Closed },
                            Err(_) => break,
                        }
                    }
                }
                recv(self.inbound) -> item => match item {
                    Ok(Inbound::Message(m)) => self.handle_message(m),
                    Ok(Inbound::Invalid(why)) => {
                        self.invalid_line(&why);
                        shared.invalid_lines.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Inbound::Closed(ended)) => return Exit::Inbound(ended),
                    Err(_) => return Exit::Inbound(Ended::Eof),
                },
                recv(self.answers_rx) -> answer => {
                    if let Ok((id, outcome)) = answer {
                        self.outbox.bytes.extend_from_slice(&jsonrpc::response_line(&id, &outcome));
                    }
                }
            }
            if let Err(e) = self.flush() {
                return Exit::WriteFailed(e);
            }
        }
    }

    /// Queues a command's output. Returns `false` on `Close`.
    fn command(&mut self, command: Command) -> bool {
        match command {
            Command::Request {
                id,
                line,
                done,
                progress,
            } => {
                self.outbox.bytes.extend_from_slice(&line);
                self.outbox.requests.push((self.outbox.bytes.len(), id));
                self.pending.insert(id, Pending { done, progress });
            }
            Command::Notify { line } => self.outbox.bytes.extend_from_slice(&line),
            Command::Abandon { id, reason } => {
                if self.pending.remove(&id).is_some() {
                    let params = json!({ "requestId": id, "reason": reason });
                    self.outbox
                        .bytes
                        .extend_from_slice(&jsonrpc::notification_line(
                            "notifications/cancelled",
                            Some(&params),
                        ));
                }
            }
            Command::Close => return false,
        }
        true
    }

    /// Writes the outbox. On failure, requests whose line was not completely written are
    /// failed as never sent; the rest stay pending and end as outcome unknown.
    fn flush(&mut self) -> Result<(), std::io::Error> {
        if self.outbox.bytes.is_empty() {
            return Ok(());
        }
        let result = self.transport.send(&self.outbox.bytes);
        self.outbox.bytes.clear();
        let Err((written, e)) = result else {
            self.outbox.requests.clear();
            return Ok(());
        };
        for (end, id) in self.outbox.requests.drain(..) {
            if end > written {
                if let Some(p) = self.pending.remove(&id) {
                    let _ = p.done.send(Err(Error::SessionClosed {
                        reason: CloseReason::Broken(format!("writing to the server: {e}")),
                        stderr_tail: self.transport.diagnostics(),
                    }));
                }
            }
        }
        Err(e)
    }

    fn invalid_line(&mut self, why: &str) {
        self.invalid_lines += 1;
        log::warn!("[{}] ignoring invalid line from server: {why}", self.name);
    }

    fn handle_message(&mut self, message: Message) {
        match message {
            Message::Response { id, outcome } => {
                let pending = our_id(&id).and_then(|n| self.pending.remove(&n));
                match pending {
                    Some(p) => {
                        let _ = p.done.send(outcome.map_err(|e| Error::Server {
                            code: e.code,
                            message: e.message,
                            data: e.data,
                        }));
                    }
                    None => {
                        if let Some(shared) = &self.shared {
                            shared.unmatched_responses.fetch_add(1, Ordering::Relaxed);
                        }
                        log::debug!("[{}] dropping response to id {id}: no call waits for it (late, duplicate or unknown)", self.name);
                    }
                }
            }
            Message::Request { id, method, params } => self.server_request(id, method, params),
            Message::Notification { method, params } => self.notification(&method, &params),
        }
    }

    fn server_request(&mut self, id: Value, method: String, params: Value) {
        let supported = match method.as_str() {
            "ping" => {
                self.outbox
                    .bytes
                    .extend_from_slice(&jsonrpc::response_line(&id, &Ok(json!({}))));
                return;
            }
            "roots/list" => self.support.roots,
            "sampling/createMessage" => self.support.sampling,
            "elicitation/create" => self.support.elicitation,
            _ => false,
        };
        if !supported {
            log::debug!("[{}] server asked for unsupported {method}", self.name);
            let outcome = Err(RpcError {
                code: jsonrpc::METHOD_NOT_FOUND,
                message: format!("method not found: {method}"),
                data: None,
            });
            self.outbox
                .bytes
                .extend_from_slice(&jsonrpc::response_line(&id, &outcome));
            return;
        }
        // Handlers may block (sampling asks a model): answer from a thread of their own.
        let handler = self.handler.clone();
        let answers = self.answers.clone();
        let spawned = thread::Builder::new()
            .name(format!("mcp-handler-{}", self.name))
            .spawn(move || {
                let result = match method.as_str() {
                    "roots/list" => handler.roots(&params),
                    "sampling/createMessage" => handler.sampling(&params),
                    _ => handler.elicitation(&params),
                };
                let outcome = result.map_err(|e| RpcError {
                    code: e.code,
                    message: e.message,
                    data: None,
                });
                let _ = answers.send((id, outcome));
            });
        if let Err(e) = spawned {
            log::error!("[{}] cannot start a handler thread: {e}", self.name);
        }
    }

    fn notification(&mut self, method: &str, params: &Value) {
        match method {
            "notifications/progress" => {
                let target = params
                    .get("progressToken")
                    .and_then(our_id)
                    .and_then(|t| self.pending.get(&t))
                    .and_then(|p| p.progress.as_ref());
                match (target, serde_json::from_value::<Progress>(params.clone())) {
                    (Some(tx), Ok(report)) => match tx.try_send(report) {
                        Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                        Err(TrySendError::Full(_)) => {
                            log::debug!(
                                "[{}] caller is behind on progress; dropping a report",
                                self.name
                            )
                        }
                    },
                    _ => log::trace!("[{}] progress for no call in flight: {params}", self.name),
                }
            }
            "notifications/message" => {
                let level = params
                    .get("level")
                    .and_then(Value::as_str)
                    .unwrap_or("info");
                let logger = params.get("logger").and_then(Value::as_str).unwrap_or("");
                let data = params.get("data").unwrap_or(&Value::Null);
                log::log!(target: "mcp_pool::server", LogLevel::log_level(level), "[{}] {logger} {data}", self.name);
            }
            "notifications/tools/list_changed" => {
                if let Some(shared) = &self.shared {
                    shared.tools_changed.store(true, Ordering::Release);
                }
                self.handler.on_list_changed(&self.name, ListKind::Tools);
            }
            "notifications/resources/list_changed" => self
                .handler
                .on_list_changed(&self.name, ListKind::Resources),
            "notifications/prompts/list_changed" => {
                self.handler.on_list_changed(&self.name, ListKind::Prompts)
            }
            "notifications/resources/updated" => {
                let uri = params.get("uri").and_then(Value::as_str).unwrap_or("");
                self.handler.on_resource_updated(&self.name, uri);
            }
            _ => {
                log::debug!("[{}] notification {method}", self.name);
                self.handler.on_notification(&self.name, method, params);
            }
        }
    }

    // ---- ending -----------------------------------------------------------------------------

    fn end(mut self, exit: Exit, commands: Receiver<Command>, shared: &Shared) {
        let reason = match &exit {
            Exit::Closed => CloseReason::Closed,
            Exit::Inbound(ended) => self.transport.end_reason(ended),
            Exit::WriteFailed(e) => {
                // The child probably died; its exit status says more than EPIPE.
                match self.transport.end_reason(&Ended::Eof) {
                    CloseReason::Eof => CloseReason::Broken(format!("writing to the server: {e}")),
                    reason => reason,
                }
            }
        };
        let tail = self.transport.diagnostics();
        if matches!(exit, Exit::Closed) {
            log::debug!("[{}] closing session", self.name);
        } else {
            log::warn!(
                "[{}] session ended: {reason}; stderr tail: {}",
                self.name,
                tail.trim_end()
            );
        }
        let _ = shared.ended.set((reason.clone(), tail.clone()));
        // Refuse new work first, then fail what is in flight, then take the slow way out.
        drop(commands);
        for (_, p) in self.pending.drain() {
            let _ = p.done.send(Err(Error::OutcomeUnknown {
                reason: reason.clone(),
                stderr_tail: tail.clone(),
            }));
        }
        self.transport.close();
    }
}

/// Reads a `server/discover` result. `None` when the server offers no version this client
/// speaks (then the handshake generation is tried).
fn discovered(result: &Value) -> Result<Option<ServerDetails>, Error> {
    let versions = result
        .get("supportedVersions")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Protocol("server/discover result has no supportedVersions".into()))?;
    if !versions
        .iter()
        .any(|v| v.as_str() == Some(protocol::PER_REQUEST_VERSION))
    {
        return Ok(None);
    }
    let info: Implementation = result
        .get("_meta")
        .and_then(|m| m.get(protocol::META_SERVER_INFO))
        .or_else(|| result.get("serverInfo"))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    Ok(Some(ServerDetails {
        generation: Generation::PerRequest,
        protocol_version: protocol::PER_REQUEST_VERSION.to_owned(),
        capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
        server_info: info,
        instructions: result
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_arguments_must_be_an_object() {
        assert!(tool_call_params("t", json!({"a": 1})).is_ok());
        assert_eq!(
            tool_call_params("t", Value::Null).unwrap(),
            json!({"name": "t", "arguments": {}})
        );
        let err = tool_call_params("t", json!([1])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument: arguments of tool `t` must be a JSON object, not an array"
        );
        assert!(matches!(
            tool_call_params("", json!({})),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn discover_result_needs_our_version() {
        let d = discovered(&json!({
            "supportedVersions": ["2026-07-28"],
            "capabilities": {"tools": {}},
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "s", "version": "1"}}
        }))
        .unwrap()
        .unwrap();
        assert_eq!(d.generation, Generation::PerRequest);
        assert_eq!(d.server_info.name, "s");
        assert!(d.has_capability("tools"));
        assert!(discovered(&json!({"supportedVersions": ["2099-01-01"]}))
            .unwrap()
            .is_none());
        assert!(discovered(&json!({})).is_err());
    }

    #[test]
    fn cancel_handle_fires_once_for_all() {
        let c = CancelHandle::new();
        assert!(!c.is_cancelled());
        let rx = c.inner.fired.clone();
        c.clone().cancel();
        assert!(c.is_cancelled());
        assert!(rx.recv().is_err()); // disconnected: wakes every waiter
        c.cancel();
    }
}
