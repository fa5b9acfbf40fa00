//! The session's worker thread and the router its transport feeds.
//!
//! The worker owns the transport (and so the child): it spawns it, runs the handshake, writes
//! every request, answers the server's requests and, when the session ends, fails every call
//! in flight at once and shuts the child down. The router runs on the transport's reader
//! thread: it hands each response straight to the caller waiting for it (one thread hop
//! fewer on the hot path) and passes everything else to the worker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, never, select, unbounded, Receiver, Sender, TrySendError};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use crate::config::{Generation, ServerConfig};
use crate::error::{CloseReason, Error, Phase};
use crate::handler::{client_capabilities, ClientHandler, HandlerSupport, ListKind};
use crate::jsonrpc::{self, our_id, Message, RpcError};
use crate::process;
use crate::protocol::{self, Implementation, LogLevel, Progress, ServerDetails};
use crate::transport::{Ended, Inbound, StdioTransport, Transport};

/// Ids of the start-up requests; callers' ids start above them.
const DISCOVER_ID: u64 = 1;
const INITIALIZE_ID: u64 = 2;
const FIRST_CALLER_ID: u64 = 100;
/// The most server-to-client requests handled at once per session.
const MAX_HANDLER_THREADS: usize = 32;

/// A message from a caller's thread to the worker.
pub(crate) enum Command {
    /// Write this request line; the answer goes to `done`.
    Request {
        id: u64,
        line: Vec<u8>,
        done: Sender<Result<Value, Error>>,
        progress: Option<Sender<Progress>>,
    },
    /// Write this notification line.
    Notify { line: Vec<u8> },
    /// The caller stopped waiting (timeout or cancel): tell the server.
    Abandon { id: u64, reason: &'static str },
    /// Close the session.
    Close,
}

/// A request in flight.
struct Pending {
    done: Sender<Result<Value, Error>>,
    progress: Option<Sender<Progress>>,
}

/// What the worker, the router and the callers' handles share.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) request_timeout: Duration,
    pub(crate) max_request_timeout: Duration,
    /// Set once the handshake succeeds, before any handle exists.
    pub(crate) details: OnceLock<ServerDetails>,
    /// The `_meta` envelope of the per-request generation; unset in the handshake one.
    pub(crate) envelope: OnceLock<Map<String, Value>>,
    pub(crate) next_id: AtomicU64,
    /// Why the session ended, with the stderr tail; set once.
    pub(crate) ended: OnceLock<(CloseReason, String)>,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) calls: AtomicU64,
    pub(crate) invalid_lines: AtomicU64,
    pub(crate) unmatched_responses: AtomicU64,
    pub(crate) tools_changed: AtomicBool,
    /// Counts `notifications/tools/list_changed`; the pool's tool cache compares it.
    pub(crate) tools_epoch: AtomicU64,
    pub(crate) started: Instant,
    pub(crate) handshake_time: OnceLock<Duration>,
    pub(crate) last_used: Mutex<Instant>,
    pub(crate) pid: OnceLock<u32>,
    pub(crate) worker: Mutex<Option<JoinHandle<()>>>,
    /// Disconnects when the worker thread ends (its sender is dropped then).
    pub(crate) finished: Receiver<()>,
    /// Unique among all sessions of this process.
    pub(crate) serial: u64,
    /// Pool leases held on this session (calls about to start or running).
    pub(crate) leases: AtomicUsize,
    /// Set by the pool when the session is past its lifetime: no new calls.
    pub(crate) retiring: AtomicBool,
    pending: Mutex<HashMap<u64, Pending>>,
}

static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

impl Shared {
    fn new(config: &ServerConfig, finished: Receiver<()>) -> Shared {
        Shared {
            finished,
            name: config.name.clone(),
            request_timeout: config.request_timeout,
            max_request_timeout: config.max_request_timeout,
            details: OnceLock::new(),
            envelope: OnceLock::new(),
            next_id: AtomicU64::new(FIRST_CALLER_ID),
            ended: OnceLock::new(),
            in_flight: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            invalid_lines: AtomicU64::new(0),
            unmatched_responses: AtomicU64::new(0),
            tools_changed: AtomicBool::new(false),
            tools_epoch: AtomicU64::new(0),
            started: Instant::now(),
            handshake_time: OnceLock::new(),
            last_used: Mutex::new(Instant::now()),
            pid: OnceLock::new(),
            worker: Mutex::new(None),
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            leases: AtomicUsize::new(0),
            retiring: AtomicBool::new(false),
            pending: Mutex::new(HashMap::new()),
        }
    }
}

/// A worker that is starting: `ready` says when the handshake is done or failed.
pub(crate) struct Started {
    pub(crate) shared: Arc<Shared>,
    pub(crate) commands: Sender<Command>,
    pub(crate) ready: Receiver<Result<(), Error>>,
}

/// The outcome of a request as the server sent it.
type Outcome = Result<Value, RpcError>;

/// Starts a worker thread for `config`. Returns the shared state once the session is ready.
pub(crate) fn start(config: ServerConfig) -> Result<Started, Error> {
    let name = config.name.clone();
    let (finished_tx, finished) = bounded::<()>(0);
    let shared = Arc::new(Shared::new(&config, finished));
    let (commands, command_rx) = unbounded();
    let (ready_tx, ready_rx) = bounded(1);
    let for_worker = shared.clone();
    let worker = thread::Builder::new()
        .name(format!("mcp-worker-{name}"))
        .spawn(move || {
            let _finished = finished_tx;
            run(config, for_worker, command_rx, ready_tx)
        })
        .map_err(|source| Error::Spawn {
            command: format!("worker thread for `{name}`"),
            source,
        })?;
    *shared.worker.lock() = Some(worker);
    Ok(Started {
        shared,
        commands,
        ready: ready_rx,
    })
}

/// Routes inbound traffic on the reader thread.
struct Router {
    shared: Arc<Shared>,
    worker: Sender<Inbound>,
}

impl Router {
    /// Returns `false` when nobody listens any more.
    fn deliver(&self, inbound: Inbound) -> bool {
        match inbound {
            Inbound::Message(Message::Response { id, outcome }) => {
                let pending = our_id(&id).and_then(|n| self.shared.pending.lock().remove(&n));
                match pending {
                    Some(p) => {
                        let _ = p.done.send(outcome.map_err(server_error));
                    }
                    // The losing half of the start-up pair (see `handshake`): expected.
                    None if matches!(our_id(&id), Some(DISCOVER_ID | INITIALIZE_ID)) => {
                        log::trace!("[{}] late answer to a start-up request", self.shared.name);
                    }
                    None => {
                        self.shared
                            .unmatched_responses
                            .fetch_add(1, Ordering::Relaxed);
                        log::debug!(
                            "[{}] dropping response to id {id}: no call waits for it (late, duplicate or unknown)",
                            self.shared.name
                        );
                    }
                }
                true
            }
            Inbound::Message(Message::Notification { method, params })
                if method == "notifications/progress" =>
            {
                self.progress(&params);
                true
            }
            other => self.worker.send(other).is_ok(),
        }
    }

    fn progress(&self, params: &Value) {
        let target = params.get("progressToken").and_then(our_id).and_then(|t| {
            self.shared
                .pending
                .lock()
                .get(&t)
                .and_then(|p| p.progress.clone())
        });
        let Some(tx) = target else {
            log::trace!(
                "[{}] progress for no call in flight: {params}",
                self.shared.name
            );
            return;
        };
        match serde_json::from_value::<Progress>(params.clone()) {
            Ok(report) => {
                if let Err(TrySendError::Full(_)) = tx.try_send(report) {
                    log::debug!(
                        "[{}] caller is behind on progress; dropping a report",
                        self.shared.name
                    );
                }
            }
            Err(e) => log::debug!("[{}] malformed progress {params}: {e}", self.shared.name),
        }
    }
}

/// "message (code, data)" of a JSON-RPC error.
fn describe(e: &RpcError) -> String {
    match &e.data {
        Some(d) => format!("{} ({}, {d})", e.message, e.code),
        None => format!("{} ({})", e.message, e.code),
    }
}

fn server_error(e: RpcError) -> Error {
    Error::Server {
        code: e.code,
        message: e.message,
        data: e.data,
    }
}

/// Bytes waiting to be written, and which request each line belongs to.
#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    /// `(end offset in bytes, request id)` of each request line not completely written.
    requests: Vec<(usize, u64)>,
    /// How long to wait before trying again while the pipe is full.
    backoff: Option<Duration>,
}

impl Outbox {
    fn push(&mut self, line: &[u8], request: Option<u64>) {
        self.bytes.extend_from_slice(line);
        if let Some(id) = request {
            self.requests.push((self.bytes.len(), id));
        }
    }

    /// `n` bytes from the front were written.
    fn written(&mut self, n: usize) {
        self.bytes.drain(..n);
        self.requests.retain_mut(|(end, _)| {
            *end = end.saturating_sub(n);
            *end > 0
        });
    }
}

/// How the main loop ended.
enum Exit {
    Closed,
    Inbound(Ended),
    WriteFailed(std::io::Error),
}

type Answer = (Value, Outcome);

struct Worker {
    shared: Arc<Shared>,
    transport: Box<dyn Transport>,
    inbound: Receiver<Inbound>,
    outbox: Outbox,
    handler: Arc<dyn ClientHandler>,
    support: HandlerSupport,
    answers: Sender<Answer>,
    answers_rx: Receiver<Answer>,
    start_deadline: Instant,
    handlers_running: Arc<AtomicUsize>,
}

fn run(
    config: ServerConfig,
    shared: Arc<Shared>,
    commands: Receiver<Command>,
    ready: Sender<Result<(), Error>>,
) {
    // Writes to a dead child must fail with EPIPE, not kill a C host that keeps SIGPIPE.
    process::block_sigpipe_in_this_thread();
    let (inbound_tx, inbound) = bounded(1024);
    let router = Router {
        shared: shared.clone(),
        worker: inbound_tx,
    };
    // Spawned from this thread, which lives as long as the child (see PR_SET_PDEATHSIG).
    let transport = match StdioTransport::spawn(&config, Box::new(move |m| router.deliver(m))) {
        Ok(t) => t,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if let Some(pid) = transport.pid() {
        let _ = shared.pid.set(pid);
    }
    let (answers, answers_rx) = unbounded();
    let mut worker = Worker {
        shared: shared.clone(),
        transport: Box::new(transport),
        inbound,
        outbox: Outbox::default(),
        handler: config.handler.clone(),
        support: config.handler.supports(),
        answers,
        answers_rx,
        start_deadline: shared.started + config.start_timeout,
        handlers_running: Arc::new(AtomicUsize::new(0)),
    };
    match worker.handshake(&config) {
        Ok((details, envelope)) => {
            let took = shared.started.elapsed();
            log::info!(
                "[{}] session ready in {:.1} ms: {} {} ({:?} {}), pid {:?}",
                config.name,
                took.as_secs_f64() * 1e3,
                details.server_info.name,
                details.server_info.version,
                details.generation,
                details.protocol_version,
                shared.pid.get(),
            );
            let _ = shared.handshake_time.set(took);
            let _ = shared.details.set(details);
            if let Some(envelope) = envelope {
                let _ = shared.envelope.set(envelope);
            }
        }
        Err(e) => {
            log::warn!("[{}] session failed to start: {e}", config.name);
            let _ = shared.ended.set((
                CloseReason::Broken(e.to_string()),
                worker.transport.diagnostics(),
            ));
            // Report first: the kill ladder may take seconds and is not the caller's wait.
            let _ = ready.send(Err(e));
            worker.transport.close();
            return;
        }
    }
    if ready.send(Ok(())).is_err() {
        // The starter gave up waiting.
        worker.transport.close();
        return;
    }
    let exit = worker.serve(&commands);
    worker.end(exit, commands);
}

impl Worker {
    fn name(&self) -> &str {
        &self.shared.name
    }

    // ---- start-up ---------------------------------------------------------------------------

    /// Agrees on a generation and version. Returns the details and, for the per-request
    /// generation, the `_meta` envelope every request carries.
    fn handshake(
        &mut self,
        config: &ServerConfig,
    ) -> Result<(ServerDetails, Option<Map<String, Value>>), Error> {
        let deadline = self.start_deadline;
        let caps = client_capabilities(self.support);
        let client_info = json!({ "name": config.client_name, "version": config.client_version });
        let mut envelope = Map::new();
        envelope.insert(
            protocol::META_VERSION.into(),
            json!(protocol::PER_REQUEST_VERSION),
        );
        envelope.insert(protocol::META_CLIENT_CAPS.into(), caps.clone());
        envelope.insert(protocol::META_CLIENT_INFO.into(), client_info.clone());

        // Both requests go out at once. A server fixes a connection's generation at its first
        // request, so the `initialize` behind the probe costs a per-request server only an
        // error answer, and a server of the handshake generation that ignores the probe
        // answers `initialize` without making us wait for the probe.
        let try_discover = config.generation != Generation::Handshake;
        let try_initialize = config.generation != Generation::PerRequest;
        let discover = if try_discover {
            let params = json!({ "_meta": envelope });
            self.send_start_request(DISCOVER_ID, "server/discover", &params)?
        } else {
            never()
        };
        let initialize = if try_initialize {
            let params = json!({
                "protocolVersion": protocol::LATEST_HANDSHAKE_VERSION,
                "capabilities": caps,
                "clientInfo": client_info,
            });
            self.send_start_request(INITIALIZE_ID, "initialize", &params)?
        } else {
            never()
        };
        let (mut discover_open, mut initialize_open) = (try_discover, try_initialize);
        let mut discover_error: Option<String> = None;
        let mut initialize_error: Option<String> = None;
        let mut until = deadline;
        let outcome = loop {
            if !discover_open && !initialize_open {
                let mut why = Vec::new();
                if let Some(e) = &initialize_error {
                    why.push(format!("initialize failed: {e}"));
                }
                if let Some(e) = &discover_error {
                    why.push(format!("server/discover failed: {e}"));
                }
                break Err(self.handshake_error(why.join("; ")));
            }
            let idle = never();
            let d = if discover_open { &discover } else { &idle };
            let i = if initialize_open { &initialize } else { &idle };
            let Some((id, outcome)) = self.await_start(d, i, until)? else {
                break Err(match &initialize_error {
                    Some(e) if until < deadline => {
                        self.handshake_error(format!("initialize failed: {e}"))
                    }
                    _ => self.start_timeout(config),
                });
            };
            match (id, outcome) {
                (DISCOVER_ID, Ok(result)) => {
                    discover_open = false;
                    match discovered(&result) {
                        Some(details) => break Ok((details, Some(envelope))),
                        None => {
                            log::debug!(
                                "[{}] server/discover result offers no version this client speaks: {result}",
                                self.name()
                            );
                            discover_error = Some(format!(
                                "no supported version in {}",
                                jsonrpc::brief(&result)
                            ));
                        }
                    }
                }
                (DISCOVER_ID, Err(e)) => {
                    log::debug!(
                        "[{}] server/discover answered {}",
                        self.name(),
                        describe(&e)
                    );
                    discover_open = false;
                    discover_error = Some(describe(&e));
                }
                (_, Ok(result)) => {
                    let details = self.initialized(&result)?;
                    self.write_now(jsonrpc::notification_line(
                        "notifications/initialized",
                        None,
                    ))?;
                    break Ok((details, None));
                }
                (_, Err(e)) => {
                    initialize_open = false;
                    initialize_error = Some(describe(&e));
                    // A per-request server locked by the probe refuses `initialize`; its
                    // answer to the probe is due soon, but not worth the whole start timeout.
                    until = until.min(Instant::now() + config.discover_timeout);
                }
            }
        };
        // Late answers to the start-up requests are dropped.
        let mut pending = self.shared.pending.lock();
        pending.remove(&DISCOVER_ID);
        pending.remove(&INITIALIZE_ID);
        outcome
    }

    fn send_start_request(
        &mut self,
        id: u64,
        method: &str,
        params: &Value,
    ) -> Result<Receiver<Result<Value, Error>>, Error> {
        let (done, rx) = bounded(1);
        self.shared.pending.lock().insert(
            id,
            Pending {
                done,
                progress: None,
            },
        );
        self.write_now(jsonrpc::request_line(id, method, Some(params)))?;
        Ok(rx)
    }

    /// Handles inbound traffic until a start-up request is answered or `until` passes.
    fn await_start(
        &mut self,
        discover: &Receiver<Result<Value, Error>>,
        initialize: &Receiver<Result<Value, Error>>,
        until: Instant,
    ) -> Result<Option<(u64, Outcome)>, Error> {
        let to_rpc = |r: Result<Value, Error>| {
            r.map_err(|e| match e {
                Error::Server {
                    code,
                    message,
                    data,
                } => RpcError {
                    code,
                    message,
                    data,
                },
                other => RpcError {
                    code: 0,
                    message: other.to_string(),
                    data: None,
                },
            })
        };
        loop {
            select! {
                recv(discover) -> r => if let Ok(r) = r { return Ok(Some((DISCOVER_ID, to_rpc(r)))) },
                recv(initialize) -> r => if let Ok(r) = r { return Ok(Some((INITIALIZE_ID, to_rpc(r)))) },
                recv(self.inbound) -> item => match item {
                    Ok(Inbound::Closed(ended)) => {
                        let reason = self.transport.end_reason(&ended);
                        return Err(self.handshake_error(format!("{reason} during the handshake")));
                    }
                    Ok(other) => {
                        self.inbound_item(other);
                        if let Err(e) = self.flush() {
                            return Err(self.handshake_error(format!("writing to the server: {e}")));
                        }
                    }
                    Err(_) => return Err(self.handshake_error("server output closed".into())),
                },
                recv(self.answers_rx) -> answer => {
                    if let Ok((id, outcome)) = answer {
                        self.write_now(jsonrpc::response_line(&id, &outcome))?;
                    }
                },
                recv(crossbeam_channel::at(until)) -> _ => return Ok(None),
            }
        }
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
            self.name(),
            config.start_timeout,
            self.transport.diagnostics().trim_end()
        );
        Error::Timeout {
            phase: Phase::Handshake,
            after: config.start_timeout,
        }
    }

    /// Writes a start-up message completely (the pipe is empty then, so this is quick),
    /// giving up at the start deadline.
    fn write_now(&mut self, line: Vec<u8>) -> Result<(), Error> {
        self.outbox.push(&line, None);
        loop {
            if let Err(e) = self.flush() {
                return Err(self.handshake_error(format!("writing to the server: {e}")));
            }
            if self.outbox.bytes.is_empty() {
                return Ok(());
            }
            if Instant::now() >= self.start_deadline {
                return Err(self.handshake_error("the server does not read its input".into()));
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    // ---- serving ----------------------------------------------------------------------------

    fn serve(&mut self, commands: &Receiver<Command>) -> Exit {
        loop {
            // While the pipe is full, try again after a short, growing pause; the loop keeps
            // serving commands (a close above all) and inbound messages meanwhile.
            let retry = match self.outbox.backoff {
                Some(pause) => crossbeam_channel::after(pause),
                None => never(),
            };
            select! {
                recv(commands) -> command => {
                    let Ok(command) = command else {
                        log::debug!("[{}] every handle dropped; closing", self.name());
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
                    Ok(Inbound::Closed(ended)) => return Exit::Inbound(ended),
                    Ok(other) => self.inbound_item(other),
                    Err(_) => return Exit::Inbound(Ended::Eof),
                },
                recv(self.answers_rx) -> answer => {
                    if let Ok((id, outcome)) = answer {
                        self.outbox.push(&jsonrpc::response_line(&id, &outcome), None);
                    }
                }
                recv(retry) -> _ => {}
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
                // Registered before it is written, so the router always finds it.
                self.shared
                    .pending
                    .lock()
                    .insert(id, Pending { done, progress });
                self.outbox.push(&line, Some(id));
            }
            Command::Notify { line } => self.outbox.push(&line, None),
            Command::Abandon { id, reason } => {
                if self.shared.pending.lock().remove(&id).is_some() {
                    let params = json!({ "requestId": id, "reason": reason });
                    self.outbox.push(
                        &jsonrpc::notification_line("notifications/cancelled", Some(&params)),
                        None,
                    );
                }
            }
            Command::Close => return false,
        }
        true
    }

    /// Writes as much of the outbox as the pipe takes without blocking. On a write error,
    /// requests not completely written fail as never sent; the rest stay pending and end as
    /// outcome unknown.
    fn flush(&mut self) -> Result<(), std::io::Error> {
        let mut progressed = false;
        while !self.outbox.bytes.is_empty() {
            match self.transport.send(&self.outbox.bytes) {
                Ok(0) => {
                    // The pipe is full. A server that is reading empties it within
                    // microseconds: try again soon while writes make progress, and back off
                    // only while they do not (a server that stopped reading).
                    let pause = match self.outbox.backoff {
                        Some(p) if !progressed => (p * 2).min(Duration::from_millis(20)),
                        _ => Duration::from_micros(50),
                    };
                    self.outbox.backoff = Some(pause);
                    return Ok(());
                }
                Ok(n) => {
                    progressed = true;
                    self.outbox.written(n);
                }
                Err(e) => {
                    self.fail_unwritten(&CloseReason::Broken(format!(
                        "writing to the server: {e}"
                    )));
                    return Err(e);
                }
            }
        }
        self.outbox.backoff = None;
        Ok(())
    }

    /// Fails the requests whose lines were not completely written: they cannot have run.
    fn fail_unwritten(&mut self, reason: &CloseReason) {
        let tail = self.transport.diagnostics();
        let mut pending = self.shared.pending.lock();
        for (_, id) in self.outbox.requests.drain(..) {
            if let Some(p) = pending.remove(&id) {
                let _ = p.done.send(Err(Error::SessionClosed {
                    reason: reason.clone(),
                    stderr_tail: tail.clone(),
                }));
            }
        }
        self.outbox.bytes.clear();
    }

    /// A server request, a notification or an invalid line.
    fn inbound_item(&mut self, item: Inbound) {
        match item {
            Inbound::Message(Message::Request { id, method, params }) => {
                self.server_request(id, method, params)
            }
            Inbound::Message(Message::Notification { method, params }) => {
                self.notification(&method, &params)
            }
            Inbound::Message(Message::Response { .. }) => {} // routed on the reader thread
            Inbound::Invalid(why) => {
                self.shared.invalid_lines.fetch_add(1, Ordering::Relaxed);
                log::warn!("[{}] ignoring invalid line from server: {why}", self.name());
            }
            Inbound::Closed(_) => {}
        }
    }

    fn server_request(&mut self, id: Value, method: String, params: Value) {
        let supported = match method.as_str() {
            "ping" => {
                self.outbox
                    .push(&jsonrpc::response_line(&id, &Ok(json!({}))), None);
                return;
            }
            "roots/list" => self.support.roots,
            "sampling/createMessage" => self.support.sampling,
            "elicitation/create" => self.support.elicitation,
            _ => false,
        };
        if !supported {
            log::debug!("[{}] server asked for unsupported {method}", self.name());
            let outcome = Err(RpcError {
                code: jsonrpc::METHOD_NOT_FOUND,
                message: format!("method not found: {method}"),
                data: None,
            });
            self.outbox
                .push(&jsonrpc::response_line(&id, &outcome), None);
            return;
        }
        // Handlers may block (sampling asks a model): answer from a thread of their own,
        // a bounded number at once.
        if self.handlers_running.load(Ordering::Acquire) >= MAX_HANDLER_THREADS {
            log::warn!(
                "[{}] {MAX_HANDLER_THREADS} handler calls already running; refusing {method}",
                self.name()
            );
            let outcome = Err(RpcError {
                code: jsonrpc::INTERNAL_ERROR,
                message: "client busy: too many requests in progress".into(),
                data: None,
            });
            self.outbox
                .push(&jsonrpc::response_line(&id, &outcome), None);
            return;
        }
        let handler = self.handler.clone();
        let answers = self.answers.clone();
        let running = self.handlers_running.clone();
        running.fetch_add(1, Ordering::AcqRel);
        let spawned = thread::Builder::new()
            .name(format!("mcp-handler-{}", self.name()))
            .spawn(move || {
                // Counted down however this thread ends.
                struct Running(Arc<AtomicUsize>);
                impl Drop for Running {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, Ordering::AcqRel);
                    }
                }
                let _running = Running(running);
                let call = std::panic::AssertUnwindSafe(|| match method.as_str() {
                    "roots/list" => handler.roots(&params),
                    "sampling/createMessage" => handler.sampling(&params),
                    _ => handler.elicitation(&params),
                });
                // A panicking handler still answers the server, which would otherwise wait.
                let outcome = match std::panic::catch_unwind(call) {
                    Ok(result) => result.map_err(|e| RpcError {
                        code: e.code,
                        message: e.message,
                        data: None,
                    }),
                    Err(_) => Err(RpcError {
                        code: jsonrpc::INTERNAL_ERROR,
                        message: format!("the client's {method} handler failed"),
                        data: None,
                    }),
                };
                let _ = answers.send((id, outcome));
            });
        if let Err(e) = spawned {
            self.handlers_running.fetch_sub(1, Ordering::AcqRel);
            log::error!("[{}] cannot start a handler thread: {e}", self.name());
        }
    }

    fn notification(&mut self, method: &str, params: &Value) {
        let name = &self.shared.name;
        match method {
            "notifications/message" => {
                let level = params
                    .get("level")
                    .and_then(Value::as_str)
                    .unwrap_or("info");
                let logger = params.get("logger").and_then(Value::as_str).unwrap_or("");
                let data = params.get("data").unwrap_or(&Value::Null);
                log::log!(target: "mcp_pool::server", LogLevel::log_level(level), "[{name}] {logger} {data}");
            }
            "notifications/tools/list_changed" => {
                self.shared.tools_changed.store(true, Ordering::Release);
                self.shared.tools_epoch.fetch_add(1, Ordering::AcqRel);
                self.handler.on_list_changed(name, ListKind::Tools);
            }
            "notifications/resources/list_changed" => {
                self.handler.on_list_changed(name, ListKind::Resources)
            }
            "notifications/prompts/list_changed" => {
                self.handler.on_list_changed(name, ListKind::Prompts)
            }
            "notifications/resources/updated" => {
                let uri = params.get("uri").and_then(Value::as_str).unwrap_or("");
                self.handler.on_resource_updated(name, uri);
            }
            _ => {
                log::debug!("[{name}] notification {method}");
                self.handler.on_notification(name, method, params);
            }
        }
    }

    // ---- ending -----------------------------------------------------------------------------

    fn end(mut self, exit: Exit, commands: Receiver<Command>) {
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
            log::debug!("[{}] closing session", self.name());
        } else {
            log::warn!(
                "[{}] session ended: {reason}; stderr tail: {}",
                self.name(),
                tail.trim_end()
            );
        }
        let _ = self.shared.ended.set((reason.clone(), tail.clone()));
        // Refuse new work first, then fail what is in flight, then take the slow way out.
        drop(commands);
        self.fail_unwritten(&reason);
        let in_flight: Vec<Pending> = self.shared.pending.lock().drain().map(|(_, p)| p).collect();
        for p in in_flight {
            let _ = p.done.send(Err(Error::OutcomeUnknown {
                reason: reason.clone(),
                stderr_tail: tail.clone(),
            }));
        }
        // Nobody listens any more: the reader's sink refuses and the reader ends at once.
        self.inbound = never();
        self.transport.close();
    }
}

/// Reads a `server/discover` result. `None` when it offers no version this client speaks,
/// or has no `supportedVersions` at all (then the handshake generation is used).
fn discovered(result: &Value) -> Option<ServerDetails> {
    let versions = result.get("supportedVersions")?.as_array()?;
    if !versions
        .iter()
        .any(|v| v.as_str() == Some(protocol::PER_REQUEST_VERSION))
    {
        return None;
    }
    let info: Implementation = result
        .get("_meta")
        .and_then(|m| m.get(protocol::META_SERVER_INFO))
        .or_else(|| result.get("serverInfo"))
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    Some(ServerDetails {
        generation: Generation::PerRequest,
        protocol_version: protocol::PER_REQUEST_VERSION.to_owned(),
        capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
        server_info: info,
        instructions: result
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_result_needs_our_version() {
        let d = discovered(&json!({
            "supportedVersions": ["2026-07-28"],
            "capabilities": {"tools": {}},
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "s", "version": "1"}}
        }))
        .unwrap();
        assert_eq!(d.generation, Generation::PerRequest);
        assert_eq!(d.server_info.name, "s");
        assert!(d.has_capability("tools"));
        assert!(discovered(&json!({"supportedVersions": ["2099-01-01"]})).is_none());
        assert!(discovered(&json!({})).is_none());
    }
}
