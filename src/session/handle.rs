//! The handle callers hold: [`Session`], its call methods (each a one-liner over a call kind
//! of `protocol.rs`, a batch's over `batch.rs`), and closing; and [`Starting`], a session
//! whose start is under way.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use serde_json::Value;

use crate::config::ServerConfig;
use crate::deadline::Deadline;
use crate::error::{CloseReason, Error, Phase};
use crate::jsonrpc;
use crate::protocol::{
    kind_of, Call, CallToolResult, GetPromptResult, LogLevel, Prompt, ReadResourceResult, Resource,
    ResourceTemplate, ServerDetails, Tool, ToolCall,
};

use super::options::{BatchOptions, CallOptions};
use super::shared::{Command, Shared};
use super::worker::{self, Connect, Report};

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
/// for tool in session.list_tools()?.iter() {
///     println!("{}", tool.name);
/// }
/// let result = session.call_tool("echo", serde_json::json!({"message": "hi"}))?;
/// println!("{}", result.text());
/// session.close();
/// # Ok::<(), mcp_pool::Error>(())
/// ```
#[derive(Clone)]
pub struct Session {
    handle: Arc<Handle>,
}

/// Closes the session when the last clone of a `Session` goes.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close(CloseReason::Closed);
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("server", &self.shared().name)
            .field("pid", &self.pid())
            .field("protocol_version", &self.details().protocol_version)
            .field("alive", &self.is_alive())
            .finish()
    }
}

/// A session whose worker is starting it. Dropping it abandons the start.
pub(crate) struct Starting {
    shared: Arc<Shared>,
    ready: Receiver<Result<(), Error>>,
    taken: bool,
}

impl Starting {
    /// Starts a session's worker, which connects (spawns the server) and runs the handshake.
    pub(crate) fn launch(config: ServerConfig, connect: Connect) -> Result<Starting, Error> {
        config.validate()?;
        let (tx, ready) = bounded(1);
        let shared = worker::launch(config, connect, Report::Wait(tx))?;
        Ok(Starting {
            shared,
            ready,
            taken: false,
        })
    }

    /// Starts a session whose outcome goes to `done`, called on the session's worker thread
    /// (so no thread waits for the start). Returns what can abandon the start or wait for
    /// the worker's end.
    pub(crate) fn launch_then(
        config: ServerConfig,
        connect: Connect,
        done: impl FnOnce(Joiner, Result<Session, Error>) + Send + 'static,
    ) -> Result<Joiner, Error> {
        config.validate()?;
        let shared = worker::launch(config, connect, Report::Call(Box::new(done)))?;
        Ok(Joiner(shared))
    }

    /// Waits for the start until `until`. Past it, the start is abandoned (the worker shuts
    /// the child down in the background) and the error is a handshake timeout.
    pub(crate) fn wait(mut self, until: Instant) -> Result<Session, Error> {
        let outcome = match self.ready.recv_deadline(until) {
            Ok(Ok(())) => {
                self.taken = true;
                return Ok(Session::from_shared(self.shared.clone()));
            }
            Ok(Err(e)) => e,
            Err(RecvTimeoutError::Timeout) => Error::Timeout {
                phase: Phase::Handshake,
                after: self.shared.started.elapsed(),
            },
            Err(RecvTimeoutError::Disconnected) => Error::Handshake {
                reason: "the session's worker ended unexpectedly".into(),
                stderr_tail: String::new(),
            },
        };
        self.joiner().abort();
        Err(outcome)
    }

    /// What can abandon this start or wait for its worker's end.
    pub(crate) fn joiner(&self) -> Joiner {
        Joiner(self.shared.clone())
    }
}

/// A handle on a session's worker, whatever became of the session: abandons it, tells
/// whether it has ended, waits for it. Holds none of the session's descriptors.
#[derive(Clone)]
pub(crate) struct Joiner(Arc<Shared>);

impl Joiner {
    pub(crate) fn new(shared: Arc<Shared>) -> Joiner {
        Joiner(shared)
    }

    /// Closes the session (or abandons its start) in the background.
    pub(crate) fn abort(&self) {
        self.0.close(CloseReason::Closed);
    }

    /// Whether the worker is done (its child is reaped).
    pub(crate) fn is_finished(&self) -> bool {
        finished(&self.0)
    }

    /// Runs `hook` on the worker thread once it is done (at once if it is).
    pub(crate) fn when_done(&self, hook: impl FnOnce() + Send + 'static) {
        self.0.when_done(Box::new(hook));
    }

    /// Unique among all sessions of this process.
    pub(crate) fn serial(&self) -> u64 {
        self.0.serial
    }

    /// Waits until the worker has ended, at most until `until` (`None`: no limit). Returns
    /// whether it ended.
    pub(crate) fn join(&self, until: Option<Instant>) -> bool {
        match until {
            None => {
                join_worker(&self.0);
                true
            }
            Some(t) => loop {
                match self.0.finished.recv_deadline(t) {
                    Ok(()) => continue,
                    Err(RecvTimeoutError::Disconnected) => {
                        join_worker(&self.0);
                        return true;
                    }
                    Err(RecvTimeoutError::Timeout) => return false,
                }
            },
        }
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if !self.taken {
            self.joiner().abort();
        }
    }
}

fn finished(shared: &Shared) -> bool {
    shared.done.load(Ordering::Acquire)
}

fn join_worker(shared: &Shared) {
    let worker = shared.worker.lock().take();
    match worker {
        // Never join from the worker itself (a hook that closes its own session).
        Some(w) if w.thread().id() == std::thread::current().id() => {
            *shared.worker.lock() = Some(w);
        }
        Some(w) => {
            let _ = w.join();
        }
        // Another thread is joining it: wait for the worker to end all the same.
        None => while shared.finished.recv().is_ok() {},
    }
}

impl Session {
    /// Starts the server's process and completes the handshake, within the server's start
    /// timeout.
    pub fn start(config: ServerConfig) -> Result<Session, Error> {
        let until = Instant::now() + config.start_timeout;
        Starting::launch(config, worker::spawn_process())?.wait(until)
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Session {
        Session {
            handle: Arc::new(Handle { shared }),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// A handle on this session's worker (for waiting on its end).
    pub(crate) fn joiner(&self) -> Joiner {
        Joiner(self.shared().clone())
    }

    /// Runs `hook` once no call is in flight on this session (at once if none is).
    pub(crate) fn when_idle(&self, hook: impl FnOnce() + Send + 'static) {
        self.shared().when_idle(Box::new(hook));
    }

    /// The server's name as configured.
    pub fn server_name(&self) -> &str {
        &self.shared().name
    }

    /// What the session learned about the server: generation, version, capabilities, info.
    pub fn details(&self) -> &ServerDetails {
        self.shared()
            .details
            .get()
            .expect("a session handle exists only after its handshake")
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.shared().pid.get().copied()
    }

    /// Whether the session can still take calls.
    pub fn is_alive(&self) -> bool {
        self.shared().lifecycle.is_ready()
    }

    /// Why the session ended (or is ending), if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        if self.is_alive() {
            return None;
        }
        self.shared().lifecycle.reason().map(|(r, _)| r)
    }

    /// The last lines the server wrote to stderr, as of when the session ended (empty while
    /// it runs).
    pub fn stderr_tail(&self) -> String {
        self.shared()
            .lifecycle
            .reason()
            .map(|(_, tail)| tail)
            .unwrap_or_default()
    }

    /// Calls in flight right now.
    pub fn in_flight(&self) -> usize {
        self.shared().counters.in_flight.load(Ordering::Relaxed)
    }

    /// Calls made through this session so far.
    pub fn calls(&self) -> u64 {
        self.shared().counters.calls.load(Ordering::Relaxed)
    }

    /// Lines from the server that were not JSON-RPC messages.
    pub fn invalid_lines(&self) -> u64 {
        self.shared().counters.invalid_lines.load(Ordering::Relaxed)
    }

    /// Responses that matched no call in flight (late after a timeout, duplicated, with an
    /// id never issued, or too large to read their id).
    pub fn unmatched_responses(&self) -> u64 {
        self.shared()
            .counters
            .unmatched_responses
            .load(Ordering::Relaxed)
    }

    /// Server requests that arrived in the per-request generation, where stdio has none;
    /// they are logged and not answered.
    pub fn ignored_server_requests(&self) -> u64 {
        self.shared()
            .counters
            .server_requests_ignored
            .load(Ordering::Relaxed)
    }

    /// When the session started.
    pub fn started_at(&self) -> Instant {
        self.shared().started
    }

    /// How long spawning and the handshake took.
    pub fn handshake_time(&self) -> Duration {
        self.shared()
            .handshake_time
            .get()
            .copied()
            .unwrap_or_default()
    }

    /// When the last call ended (or the session became ready).
    pub fn last_used(&self) -> Instant {
        *self.shared().last_used.lock()
    }

    /// How the session reaches its server: `stdio` (a child process), `streamable-http`,
    /// or `http+sse` (the deprecated 2024-11-05 HTTP transport).
    pub fn transport(&self) -> &'static str {
        match self.shared().http.get() {
            Some(link) => link.transport_name(),
            None => "stdio",
        }
    }

    /// Returns and clears the flag set by `notifications/tools/list_changed`.
    pub fn take_tools_changed(&self) -> bool {
        self.shared()
            .counters
            .tools_changed
            .swap(false, Ordering::AcqRel)
    }

    /// Lists every tool, following `nextCursor` to the last page. The session keeps what
    /// the list says (output schemas, task support) for its later calls. Shared as
    /// [`Pool::list_tools`](crate::Pool::list_tools)'s cached list is.
    pub fn list_tools(&self) -> Result<Arc<Vec<Tool>>, Error> {
        self.list_tools_with(CallOptions::new())
    }

    /// [`list_tools`](Self::list_tools) with per-call options.
    pub fn list_tools_with(&self, options: CallOptions<'_>) -> Result<Arc<Vec<Tool>>, Error> {
        let epoch = self.tools_epoch();
        let mut tools = self.run(&Call::list_tools(), options)?;
        self.index_tools(&mut tools, epoch);
        Ok(Arc::new(tools))
    }

    /// Lists every resource (each as sent: `uri`, `name`, `mimeType`, ...).
    pub fn list_resources(&self) -> Result<Vec<Resource>, Error> {
        self.run(&Call::list_resources(), CallOptions::new())
    }

    /// [`list_resources`](Self::list_resources) with per-call options.
    pub fn list_resources_with(&self, options: CallOptions<'_>) -> Result<Vec<Resource>, Error> {
        self.run(&Call::list_resources(), options)
    }

    /// Lists every resource template.
    pub fn list_resource_templates(&self) -> Result<Vec<ResourceTemplate>, Error> {
        self.run(&Call::list_resource_templates(), CallOptions::new())
    }

    /// [`list_resource_templates`](Self::list_resource_templates) with per-call options.
    pub fn list_resource_templates_with(
        &self,
        options: CallOptions<'_>,
    ) -> Result<Vec<ResourceTemplate>, Error> {
        self.run(&Call::list_resource_templates(), options)
    }

    /// Lists every prompt.
    pub fn list_prompts(&self) -> Result<Vec<Prompt>, Error> {
        self.run(&Call::list_prompts(), CallOptions::new())
    }

    /// [`list_prompts`](Self::list_prompts) with per-call options.
    pub fn list_prompts_with(&self, options: CallOptions<'_>) -> Result<Vec<Prompt>, Error> {
        self.run(&Call::list_prompts(), options)
    }

    /// Calls a tool. A tool's own failure is a result with `is_error: true`, not an `Err`.
    pub fn call_tool(&self, name: &str, arguments: Value) -> Result<CallToolResult, Error> {
        self.run(&Call::call_tool(name, arguments)?, CallOptions::new())
    }

    /// Calls a tool with per-call options.
    pub fn call_tool_with(
        &self,
        name: &str,
        arguments: Value,
        options: CallOptions<'_>,
    ) -> Result<CallToolResult, Error> {
        self.run(&Call::call_tool(name, arguments)?, options)
    }

    /// Reads a resource; returns the result (`contents`: items with `uri` and `text` or
    /// `blob`).
    pub fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, Error> {
        self.run(&Call::read_resource(uri), CallOptions::new())
    }

    /// [`read_resource`](Self::read_resource) with per-call options.
    pub fn read_resource_with(
        &self,
        uri: &str,
        options: CallOptions<'_>,
    ) -> Result<ReadResourceResult, Error> {
        self.run(&Call::read_resource(uri), options)
    }

    /// Subscribes to changes of a resource (`notifications/resources/updated` reach the
    /// handler): `resources/subscribe` in the handshake generation, a
    /// [`listen`](Self::listen) subscription for the URI in the per-request one.
    pub fn subscribe(&self, uri: &str) -> Result<(), Error> {
        if self.shared().generation() == Some(crate::Generation::PerRequest) {
            return self.listen_resource(uri);
        }
        self.run(&Call::subscribe(uri), CallOptions::new())
    }

    /// Ends a subscription.
    pub fn unsubscribe(&self, uri: &str) -> Result<(), Error> {
        if self.shared().generation() == Some(crate::Generation::PerRequest) {
            return self.unlisten_resource(uri);
        }
        self.run(&Call::unsubscribe(uri), CallOptions::new())
    }

    /// Gets a prompt with its arguments.
    pub fn get_prompt(&self, name: &str, arguments: Value) -> Result<GetPromptResult, Error> {
        self.run(&Call::get_prompt(name, arguments)?, CallOptions::new())
    }

    /// [`get_prompt`](Self::get_prompt) with per-call options.
    pub fn get_prompt_with(
        &self,
        name: &str,
        arguments: Value,
        options: CallOptions<'_>,
    ) -> Result<GetPromptResult, Error> {
        self.run(&Call::get_prompt(name, arguments)?, options)
    }

    /// Asks for completions (`completion/complete`); returns the `completion` object.
    pub fn complete(&self, reference: Value, argument: Value) -> Result<Value, Error> {
        self.run(&Call::complete(reference, argument), CallOptions::new())
    }

    /// [`complete`](Self::complete) with per-call options.
    pub fn complete_with(
        &self,
        reference: Value,
        argument: Value,
        options: CallOptions<'_>,
    ) -> Result<Value, Error> {
        self.run(&Call::complete(reference, argument), options)
    }

    /// Sets the level of the log messages the server sends: `logging/setLevel` in the
    /// handshake generation; in the per-request one (which removed that method) the level
    /// goes with every later request of this session (`io.modelcontextprotocol/logLevel`).
    pub fn set_logging_level(&self, level: LogLevel) -> Result<(), Error> {
        let (default, _) = self.timeouts();
        self.apply_log_level(level, &mut Deadline::fixed(default))
    }

    /// Checks the server answers: `ping` in the handshake generation, `server/discover` in
    /// the per-request one (which has no `ping`). Returns the round-trip time.
    pub fn ping(&self) -> Result<Duration, Error> {
        self.ping_with(CallOptions::new())
    }

    /// [`ping`](Self::ping) with per-call options.
    pub fn ping_with(&self, options: CallOptions<'_>) -> Result<Duration, Error> {
        let start = Instant::now();
        self.run(&Call::ping(), options)?;
        Ok(start.elapsed())
    }

    /// Sends any request and returns its raw result.
    pub fn request(&self, method: &str, params: Option<Value>) -> Result<Value, Error> {
        self.run(&Call::raw(method, params)?, CallOptions::new())
    }

    /// Sends any request with per-call options.
    pub fn request_with(
        &self,
        method: &str,
        params: Option<Value>,
        options: CallOptions<'_>,
    ) -> Result<Value, Error> {
        self.run(&Call::raw(method, params)?, options)
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
        if !self.is_alive() {
            return Err(self.shared().closed_error());
        }
        let line = jsonrpc::notification_line(method, params.as_ref());
        self.shared().submit(Command::Notify(line));
        Ok(())
    }

    /// Calls several tools at once: every request is written without waiting for the
    /// answers, then the answers are collected. Returns one result per call, in order; one
    /// failure does not affect the others. The options' timeout bounds the whole batch
    /// (defaults to the request timeout); their callback sees each call's index and result
    /// as it is collected. Fails as a whole only when the session is closed before any call
    /// is sent.
    ///
    /// ```no_run
    /// # let session = mcp_pool::Session::start(mcp_pool::ServerConfig::new("s", "srv"))?;
    /// use mcp_pool::{BatchOptions, ToolCall};
    /// let calls: Vec<ToolCall> = (0..100)
    ///     .map(|i| ToolCall::new("echo", serde_json::json!({ "text": i.to_string() })))
    ///     .collect();
    /// let results = session.batch(&calls, BatchOptions::new().on_result(|i, _| eprint!("\r{}/100", i + 1)))?;
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn batch(
        &self,
        calls: &[ToolCall],
        mut options: BatchOptions<'_>,
    ) -> Result<Vec<Result<CallToolResult, Error>>, Error> {
        if !self.is_alive() {
            return Err(self.shared().closed_error());
        }
        let mut deadline =
            Deadline::fixed(options.timeout.unwrap_or(self.shared().request_timeout));
        let cancel = options.cancel.take();
        let batched = self.batch_within(calls, &mut deadline, cancel.as_ref(), |i, r, _| {
            if let Some(f) = options.on_result.as_mut() {
                f(i, r);
            }
        });
        Ok(batched.results)
    }

    /// Closes the session: calls in flight fail at once, then the child is shut down (stdin
    /// closed, SIGTERM, SIGKILL, each after the close grace) and reaped. Blocks until that is
    /// done; other clones see the session closed.
    pub fn close(&self) {
        self.shared().close(CloseReason::Closed);
        join_worker(self.shared());
    }

    /// Starts closing the session and returns at once; the worker shuts the child down in
    /// the background. Calls in flight fail at once.
    pub fn close_in_background(&self) {
        self.close_because(CloseReason::Closed);
    }

    /// Starts closing for this reason (the calls in flight are told it).
    pub(crate) fn close_because(&self, reason: CloseReason) {
        self.shared().close(reason);
    }

    /// How many `notifications/tools/list_changed` the session has seen.
    pub(crate) fn tools_epoch(&self) -> u64 {
        self.shared().counters.tools_epoch.load(Ordering::Acquire)
    }

    /// Unique among all sessions of this process.
    pub(crate) fn serial(&self) -> u64 {
        self.shared().serial
    }

    /// The server's default request timeout and its hard maximum.
    pub(crate) fn timeouts(&self) -> (Duration, Duration) {
        (
            self.shared().request_timeout,
            self.shared().max_request_timeout,
        )
    }

    /// Runs a call kind with per-call options: the deadline is made here.
    fn run<T>(&self, call: &Call<T>, options: CallOptions<'_>) -> Result<T, Error> {
        let meta = options.meta_with_level();
        let CallOptions {
            timeout,
            mut progress,
            cancel,
            keep_deadline,
            ..
        } = options;
        let (default, max) = self.timeouts();
        let mut deadline = Deadline::for_call(timeout, default, max, keep_deadline);
        self.run_within(
            call,
            &mut deadline,
            progress.as_mut(),
            cancel.as_ref(),
            meta.as_ref(),
        )
    }
}
