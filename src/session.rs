//! The session handle callers use: every client call, its deadline, progress and cancel.
//!
//! A caller serializes its request on its own thread, sends it to the session's worker (see
//! `worker.rs`) over a channel and waits on its own reply channel, watching its deadline and
//! cancel handle itself: a call ends on time even when the worker or the server is stuck.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, never, select, Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use crate::config::{deadline_after, Generation, ServerConfig};
use crate::error::{CloseReason, Error, Phase};
use crate::jsonrpc;
use crate::protocol::{
    CallToolResult, GetPromptResult, LogLevel, Progress, ServerDetails, Tool, ToolCall,
};
use crate::worker::{self, Command, Shared};

/// The most pages a list call follows before it gives up.
const MAX_PAGES: usize = 10_000;

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
pub(crate) type ProgressFn<'a> = Box<dyn FnMut(&Progress) + 'a>;

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
    pub(crate) timeout: Option<Duration>,
    pub(crate) progress: Option<ProgressFn<'a>>,
    pub(crate) cancel: Option<CancelHandle>,
    pub(crate) keep_deadline: bool,
}

impl std::fmt::Debug for CallOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("timeout", &self.timeout)
            .field("progress", &self.progress.as_ref().map(|_| "callback"))
            .field("cancel", &self.cancel)
            .field("keep_deadline", &self.keep_deadline)
            .finish()
    }
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
            .field("protocol_version", &self.details().protocol_version)
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl Session {
    /// Starts the server's process and completes the handshake, within the server's start
    /// timeout.
    pub fn start(config: ServerConfig) -> Result<Session, Error> {
        Self::start_inner(config, false)
    }

    /// [`start`](Self::start) that, when the start fails, also waits for the failed child to
    /// be shut down and reaped. For the pool's own threads, where nothing may be left behind
    /// when the pool closes; a caller's thread should not wait on a kill ladder.
    pub(crate) fn start_and_reap_on_failure(config: ServerConfig) -> Result<Session, Error> {
        Self::start_inner(config, true)
    }

    fn start_inner(config: ServerConfig, reap_on_failure: bool) -> Result<Session, Error> {
        config.validate()?;
        let start_timeout = config.start_timeout;
        let worker::Started {
            shared,
            commands,
            ready,
        } = worker::start(config)?;
        // The worker enforces the start timeout itself; the margin covers its clean-up.
        let error = match ready.recv_timeout(start_timeout + Duration::from_millis(500)) {
            Ok(Ok(())) => return Ok(Session { shared, commands }),
            // The worker shuts the failed child down on its own and then ends.
            Ok(Err(e)) => e,
            Err(RecvTimeoutError::Timeout) => Error::Timeout {
                phase: Phase::Handshake,
                after: start_timeout,
            },
            Err(RecvTimeoutError::Disconnected) => Error::Handshake {
                reason: "the session's worker ended unexpectedly".into(),
                stderr_tail: String::new(),
            },
        };
        if reap_on_failure {
            drop(commands);
            let worker = shared.worker.lock().take();
            if let Some(worker) = worker {
                let _ = worker.join();
            }
        }
        Err(error)
    }

    /// The server's name as configured.
    pub fn server_name(&self) -> &str {
        &self.shared.name
    }

    /// What the session learned about the server: generation, version, capabilities, info.
    pub fn details(&self) -> &ServerDetails {
        self.shared
            .details
            .get()
            .expect("a session handle exists only after its handshake")
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.shared.pid.get().copied()
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
        self.shared
            .handshake_time
            .get()
            .copied()
            .unwrap_or_default()
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
        self.get_prompt_with(name, arguments, CallOptions::new())
    }

    pub(crate) fn get_prompt_with(
        &self,
        name: &str,
        arguments: Value,
        options: CallOptions<'_>,
    ) -> Result<GetPromptResult, Error> {
        let params = name_and_arguments(name, arguments, "prompt")?;
        let result = self.request_with("prompts/get", Some(params), options)?;
        parse_result(result, "prompts/get")
    }

    /// Asks for completions (`completion/complete`); returns the `completion` object.
    pub fn complete(&self, reference: Value, argument: Value) -> Result<Value, Error> {
        self.complete_with(reference, argument, CallOptions::new())
    }

    pub(crate) fn complete_with(
        &self,
        reference: Value,
        argument: Value,
        options: CallOptions<'_>,
    ) -> Result<Value, Error> {
        let mut result = self.request_with(
            "completion/complete",
            Some(json!({ "ref": reference, "argument": argument })),
            options,
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
        self.ping_within(self.shared.request_timeout)
    }

    /// [`ping`](Self::ping) with its own deadline.
    pub(crate) fn ping_within(&self, timeout: Duration) -> Result<Duration, Error> {
        self.ping_with(CallOptions::new().timeout(timeout))
    }

    pub(crate) fn ping_with(&self, options: CallOptions<'_>) -> Result<Duration, Error> {
        let start = Instant::now();
        let method = match self.details().generation {
            Generation::PerRequest => "server/discover",
            _ => "ping",
        };
        self.request_with(method, None, options)?;
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
        let CallOptions {
            timeout,
            progress,
            cancel,
            keep_deadline,
        } = options;
        if cancel.as_ref().is_some_and(CancelHandle::is_cancelled) {
            return Err(Error::Cancelled);
        }
        let cancel_rx = cancel.as_ref().map(|c| &c.inner.fired);
        let sent = self.send(method, params, progress.is_some())?;
        let timeout = timeout.unwrap_or(self.shared.request_timeout);
        let deadline = deadline_after(sent.started, timeout);
        self.wait(sent, deadline, timeout, progress, cancel_rx, keep_deadline)
    }

    /// Calls several tools at once: every request is written without waiting for the
    /// answers, then the answers are collected. Returns one result per call, in order; one
    /// failure does not affect the others. `timeout` bounds the whole batch (defaults to the
    /// request timeout); `on_done` sees each call's index and result as it is collected, in
    /// order.
    ///
    /// ```no_run
    /// # let session = mcp_pool::Session::start(mcp_pool::ServerConfig::new("s", "srv"))?;
    /// use mcp_pool::ToolCall;
    /// let calls: Vec<ToolCall> = (0..100)
    ///     .map(|i| ToolCall::new("echo", serde_json::json!({ "text": i.to_string() })))
    ///     .collect();
    /// let results = session.call_tools(&calls, None, |i, _| eprint!("\r{}/100", i + 1));
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn call_tools(
        &self,
        calls: &[ToolCall],
        timeout: Option<Duration>,
        mut on_done: impl FnMut(usize, &Result<CallToolResult, Error>),
    ) -> Vec<Result<CallToolResult, Error>> {
        let timeout = timeout.unwrap_or(self.shared.request_timeout);
        let deadline = deadline_after(Instant::now(), timeout);
        let sent: Vec<Result<Sent<'_>, Error>> = calls
            .iter()
            .map(|call| {
                let params = tool_call_params(&call.tool, call.arguments.clone())?;
                self.send("tools/call", Some(params), false)
            })
            .collect();
        let mut results = Vec::with_capacity(sent.len());
        for (i, sent) in sent.into_iter().enumerate() {
            let result = sent.and_then(|sent| self.wait(sent, deadline, timeout, None, None, true));
            let result = result.and_then(|v| parse_result(v, "tools/call"));
            on_done(i, &result);
            results.push(result);
        }
        results
    }

    /// Registers and queues one request. It is written by the worker.
    fn send(&self, method: &str, params: Option<Value>, progress: bool) -> Result<Sent<'_>, Error> {
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
        if shared.ended.get().is_some() {
            return Err(self.closed_error());
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let envelope = shared.envelope.get();
        if progress || envelope.is_some() {
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
            if progress {
                meta.insert("progressToken".into(), json!(id));
            }
            if let Some(envelope) = envelope {
                for (k, v) in envelope {
                    meta.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        let params = params.map(Value::Object);
        let line = jsonrpc::request_line(id, method, params.as_ref());

        let (done_tx, done) = bounded(1);
        let (progress_tx, progress) = if progress {
            let (tx, rx) = bounded(256);
            (Some(tx), rx)
        } else {
            (None, never())
        };
        let sent = Sent {
            id,
            done,
            progress,
            started: Instant::now(),
            _in_flight: InFlight::enter(shared),
        };
        self.commands
            .send(Command::Request {
                id,
                line,
                done: done_tx,
                progress: progress_tx,
            })
            .map_err(|_| self.closed_error())?;
        Ok(sent)
    }

    /// Waits for a sent request's answer until `deadline` (which progress reports push back
    /// by `timeout`, up to the maximum request timeout, unless `keep_deadline`), or its
    /// cancellation. An answer that is already there wins over a passed deadline.
    #[allow(clippy::too_many_arguments)]
    fn wait(
        &self,
        sent: Sent<'_>,
        mut deadline: Instant,
        timeout: Duration,
        mut progress: Option<ProgressFn<'_>>,
        cancel: Option<&Receiver<()>>,
        keep_deadline: bool,
    ) -> Result<Value, Error> {
        let Sent {
            id,
            done,
            progress: reports,
            started,
            _in_flight,
        } = sent;
        if progress.is_none() && cancel.is_none() {
            // The common case: one channel and a deadline, no select.
            return match done.recv_deadline(deadline) {
                Ok(outcome) => outcome,
                Err(RecvTimeoutError::Disconnected) => Err(self.closed_error()),
                Err(RecvTimeoutError::Timeout) => self.give_up(id, &done, started, false),
            };
        }
        let never = never();
        let cancel = cancel.unwrap_or(&never);
        let hard_limit = deadline_after(started, timeout.max(self.shared.max_request_timeout));
        loop {
            select! {
                // The worker ended before taking the request: it was never written.
                recv(done) -> outcome => return outcome.unwrap_or_else(|_| Err(self.closed_error())),
                recv(reports) -> report => {
                    if let (Ok(report), Some(f)) = (report, progress.as_mut()) {
                        f(&report);
                        if !keep_deadline {
                            deadline = deadline_after(Instant::now(), timeout).min(hard_limit);
                        }
                    }
                },
                recv(cancel) -> _ => return self.give_up(id, &done, started, true),
                recv(crossbeam_channel::at(deadline)) -> _ => return self.give_up(id, &done, started, false),
            }
        }
    }

    /// Stops waiting (deadline or cancel) unless the answer is already there; tells the
    /// worker so it can tell the server.
    fn give_up(
        &self,
        id: u64,
        done: &Receiver<Result<Value, Error>>,
        started: Instant,
        cancelled: bool,
    ) -> Result<Value, Error> {
        if let Ok(outcome) = done.try_recv() {
            return outcome;
        }
        if cancelled {
            self.abandon(id, "cancelled by the client");
            Err(Error::Cancelled)
        } else {
            self.abandon(id, "timed out");
            Err(Error::Timeout {
                phase: Phase::Request,
                after: started.elapsed(),
            })
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
        match worker {
            Some(worker) => {
                let _ = worker.join();
            }
            // Another thread is joining it: wait for the worker to end all the same.
            None => while self.shared.finished.recv().is_ok() {},
        }
    }

    /// Starts closing the session and returns at once; the worker shuts the child down in
    /// the background. Calls in flight fail at once.
    pub fn close_in_background(&self) {
        let _ = self.commands.send(Command::Close);
    }

    /// Whether the worker thread has ended (the child is reaped).
    pub(crate) fn is_finished(&self) -> bool {
        matches!(
            self.shared.finished.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        )
    }

    /// How many `notifications/tools/list_changed` the session has seen.
    pub(crate) fn tools_epoch(&self) -> u64 {
        self.shared.tools_epoch.load(Ordering::Acquire)
    }

    /// Unique among all sessions of this process.
    pub(crate) fn serial(&self) -> u64 {
        self.shared.serial
    }

    pub(crate) fn leases(&self) -> &std::sync::atomic::AtomicUsize {
        &self.shared.leases
    }

    pub(crate) fn is_retiring(&self) -> bool {
        self.shared.retiring.load(Ordering::Acquire)
    }

    pub(crate) fn retire(&self) {
        self.shared.retiring.store(true, Ordering::Release);
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

    pub(crate) fn list_all<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        key: &str,
        options: CallOptions<'_>,
    ) -> Result<Vec<T>, Error> {
        let timeout = options.timeout.unwrap_or(self.shared.request_timeout);
        let deadline = deadline_after(Instant::now(), timeout);
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

/// A request handed to the worker, not yet answered.
struct Sent<'a> {
    id: u64,
    done: Receiver<Result<Value, Error>>,
    progress: Receiver<Progress>,
    started: Instant,
    _in_flight: InFlight<'a>,
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
