//! The worker of an HTTP session: it runs the start (which generation, which transport),
//! then posts what callers hand it (notifications, answers to the server's requests, the
//! cancellation of abandoned requests), runs the threads that read long-lived streams, and
//! ends the session: every call failed at once, every stream interrupted, the session
//! deleted on the server (handshake generation), every thread joined.
//!
//! Callers post their own requests and read their own replies (`exchange.rs`); the worker
//! never waits on a reply it does not own.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use serde_json::{json, Value};

use crate::config::{Generation, HttpTransport, ServerConfig};
use crate::error::{CloseReason, Error, Phase};
use crate::handler::client_capabilities;
use crate::jsonrpc::{self, RpcError};
use crate::protocol;

use super::super::handshake::{
    self, answer_of, Answer, Decision, Step, DISCOVER_AGAIN_ID, DISCOVER_ID, INITIALIZE_ID,
    SET_LEVEL_ID,
};
use super::super::inbound::{self, Frame};
use super::super::shared::{Command, Shared};
use super::super::sys::{self, Bell, Watch};
use super::super::worker::Report;
use super::exchange::{rpc_error, Read, ReplyReader};
use super::link::{Failed, Link, Origin, Wire};
use super::net::Scope;

/// Pseudo request ids for the stop bells of the worker's own exchanges and streams.
const WORKER_ID: u64 = u64::MAX;
const STANDALONE_ID: u64 = u64::MAX - 1;
const LEGACY_ID: u64 = u64::MAX - 2;
/// How long a notification or answer POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the start waits for the server to answer the standalone stream's GET.
const STANDALONE_WAIT: Duration = Duration::from_secs(1);
/// Standalone-stream reconnections in a row that failed before the worker gives up on it.
const MAX_STANDALONE_FAILURES: u32 = 5;

struct HttpWorker {
    shared: Arc<Shared>,
    link: Arc<Link>,
    commands: Receiver<Command>,
    /// The stop bell of the worker's own exchanges (rung when the session ends).
    bell: Arc<Bell>,
    threads: Vec<JoinHandle<()>>,
    grace: Duration,
}

/// Runs an HTTP session on its worker thread, from the start to the end.
pub(crate) fn serve(
    config: ServerConfig,
    shared: Arc<Shared>,
    commands: Receiver<Command>,
    report: Report,
) {
    sys::block_sigpipe_in_this_thread();
    let Some(link) = shared.http.get().cloned() else {
        return;
    };
    let bell = match Bell::new() {
        Ok(b) => Arc::new(b),
        Err(e) => {
            let e = Error::spawn("the HTTP session's stop bell (eventfd)", e);
            let reason = CloseReason::Broken(e.to_string());
            shared.lifecycle.ending(reason.clone());
            shared.table.lock().fail_all(&reason, "");
            shared.lifecycle.ended(reason, String::new());
            report.tell(&shared, Err(e));
            return;
        }
    };
    let mut worker = HttpWorker {
        shared: shared.clone(),
        link,
        commands,
        bell,
        threads: Vec::new(),
        grace: config.close_grace,
    };
    let _open = worker.link.open_reply(WORKER_ID, worker.bell.clone());
    match worker.start(&config) {
        Ok(()) => {
            let took = shared.started.elapsed();
            let _ = shared.handshake_time.set(took);
            *shared.last_used.lock() = Instant::now();
            shared.lifecycle.ready();
            if let Some(d) = shared.details.get() {
                log::info!(
                    "[{}] session ready in {:.1} ms: {} {} ({:?} {}) at {} over {}",
                    config.name,
                    took.as_secs_f64() * 1e3,
                    d.server_info.name,
                    d.server_info.version,
                    d.generation,
                    d.protocol_version,
                    worker.link.shown,
                    if worker.link.is_legacy() {
                        "HTTP+SSE"
                    } else {
                        "Streamable HTTP"
                    },
                );
            }
            // Open before the session is handed out: a server sends a message that belongs
            // to no request only where a stream is open, and drops it otherwise.
            worker.open_standalone();
            if !report.tell(&shared, Ok(())) {
                worker.finish(CloseReason::Closed);
                return;
            }
        }
        Err((error, reason)) => {
            log::warn!("[{}] session failed to start: {error}", config.name);
            shared.lifecycle.ending(reason.clone());
            report.tell(&shared, Err(error));
            worker.finish(reason);
            return;
        }
    }
    let reason = worker.serve();
    worker.finish(reason);
}

/// Why a start-up request got no answer.
enum StartFail {
    /// The start was abandoned (closed before it was done).
    Stopped,
    /// The start timeout passed.
    Expired,
    Error(Error),
}

impl From<Failed> for StartFail {
    fn from(f: Failed) -> StartFail {
        match f {
            Failed::Stopped => StartFail::Stopped,
            Failed::Expired => StartFail::Expired,
            Failed::Error(e) => StartFail::Error(e),
        }
    }
}

/// What a start-up request gave.
enum Started {
    Answer(Answer, Option<String>),
    /// An HTTP status with no MCP answer (400, 404, 405: not an MCP endpoint of this kind).
    NotMcp(u16),
}

impl HttpWorker {
    fn name(&self) -> &str {
        &self.shared.name
    }

    /// Agrees on a transport and a generation (see `handshake.rs` for the decision). Over
    /// HTTP the probes go one after the other: `server/discover` first (a per-request
    /// server answers it; an older one refuses it), then `initialize`, then, when neither
    /// POST found an MCP endpoint, the HTTP+SSE transport.
    fn start(&mut self, config: &ServerConfig) -> Result<(), (Error, CloseReason)> {
        let deadline = self.shared.started + config.start_timeout;
        let scope = Scope::enter(Some(deadline), Some(self.bell.clone()));
        let outcome = self.start_within(config, &scope);
        let mut table = self.shared.table.lock();
        for id in [DISCOVER_ID, INITIALIZE_ID, DISCOVER_AGAIN_ID, SET_LEVEL_ID] {
            table.abandon(id);
        }
        drop(table);
        outcome.map_err(|fail| {
            let e = match fail {
                StartFail::Stopped => Error::Handshake {
                    reason: "the start was abandoned".into(),
                    stderr_tail: String::new(),
                },
                StartFail::Expired => Error::Timeout {
                    phase: Phase::Handshake,
                    after: config.start_timeout,
                },
                StartFail::Error(e) => e,
            };
            let reason = CloseReason::Broken(e.to_string());
            (e, reason)
        })
    }

    fn start_within(&mut self, config: &ServerConfig, scope: &Scope) -> Result<(), StartFail> {
        if self.link.transport == HttpTransport::Sse {
            return self.start_legacy(config, scope, None);
        }
        let mut decision = Decision::new(config.generation, config.discover_timeout);
        let envelope = handshake::envelope(config);
        let fail = |why: String| {
            StartFail::Error(Error::Handshake {
                reason: why,
                stderr_tail: String::new(),
            })
        };
        let mut not_mcp = None;
        if decision.sends_discover() {
            let mut id = DISCOVER_ID;
            self.link.set_version(protocol::PER_REQUEST_VERSION);
            loop {
                let headers = vec![("Mcp-Method".to_owned(), "server/discover".to_owned())];
                let params = json!({ "_meta": envelope });
                let answer =
                    match self.start_request(scope, id, "server/discover", &params, &headers)? {
                        Started::Answer(a, _) => a,
                        Started::NotMcp(status) => {
                            not_mcp = Some(status);
                            Answer::Error(RpcError {
                                code: 0,
                                message: format!("HTTP {status}"),
                                data: None,
                            })
                        }
                    };
                match decision.discover_answered(answer) {
                    Step::PerRequest(details) => {
                        let _ = self.shared.envelope.set(envelope);
                        let _ = self.shared.details.set(details);
                        self.link.set_wire(Wire::Streamable);
                        return Ok(());
                    }
                    Step::DiscoverAgain => id = DISCOVER_AGAIN_ID,
                    Step::Fail(why) => return Err(fail(why)),
                    Step::Initialized(_) | Step::Wait(_) | Step::TimedOut => break,
                }
            }
        }
        if !decision.sends_initialize() {
            return Err(fail(decision_failure(&mut decision)));
        }
        self.link.clear_version();
        let params = json!({
            "protocolVersion": protocol::LATEST_HANDSHAKE_VERSION,
            "capabilities": client_capabilities(config.handler.supports(), false, config.tasks),
            "clientInfo": { "name": config.client_name, "version": config.client_version },
        });
        match self.start_request(scope, INITIALIZE_ID, "initialize", &params, &[])? {
            Started::Answer(answer, session_id) => {
                match decision.initialize_answered(answer, Instant::now()) {
                    Step::Initialized(details) => {
                        self.link.set_session_id(session_id);
                        self.link.set_version(&details.protocol_version);
                        self.link.set_wire(Wire::Streamable);
                        let version = details.protocol_version.clone();
                        let set_level = handshake::set_level_params(config, &details);
                        let _ = self.shared.details.set(details);
                        self.initialized(scope)?;
                        if let Some(params) = set_level {
                            self.set_level(scope, &params);
                        }
                        log::debug!(
                            "[{}] initialized {version} over Streamable HTTP{}",
                            self.name(),
                            if self.link.session_id().is_some() {
                                " with a session id"
                            } else {
                                ""
                            }
                        );
                        Ok(())
                    }
                    Step::Fail(why) => Err(fail(why)),
                    _ => Err(fail(decision_failure(&mut decision))),
                }
            }
            Started::NotMcp(status)
                if self.link.transport == HttpTransport::Auto
                    && matches!(status, 400 | 404 | 405) =>
            {
                log::debug!(
                    "[{}] initialize got HTTP {status}: trying the HTTP+SSE transport",
                    self.name()
                );
                self.start_legacy(config, scope, Some(not_mcp.unwrap_or(status)))
            }
            Started::NotMcp(status) => Err(StartFail::Error(self.link.http_error(
                status,
                "the server's MCP endpoint refused `initialize` without an MCP error",
            ))),
        }
    }

    /// POSTs one start-up request and reads its reply until the answer.
    fn start_request(
        &mut self,
        scope: &Scope,
        id: u64,
        method: &str,
        params: &Value,
        headers: &[(String, String)],
    ) -> Result<Started, StartFail> {
        let (tx, rx) = unbounded();
        self.shared.table.lock().register_quiet(id, tx);
        let line = jsonrpc::request_line(id, method, Some(params));
        let reply = self.link.post(scope, &line, headers)?;
        let status = reply.status;
        let session_id = reply.session_id.clone();
        if !(200..300).contains(&status) || status == 202 {
            if !reply.is_json() {
                return Ok(Started::NotMcp(status));
            }
            let mut body = reply.body;
            let bytes = body
                .with_config()
                .limit(self.link.max_message as u64)
                .read_to_vec()
                .unwrap_or_default();
            return Ok(match rpc_error(&bytes) {
                Some(e) => Started::Answer(Answer::Error(e), session_id),
                None => Started::NotMcp(status),
            });
        }
        let mut reader = ReplyReader::new(reply, self.link.max_message);
        loop {
            if let Ok(event) = rx.try_recv() {
                if let Some(answer) = answer_of(event) {
                    return Ok(Started::Answer(answer, session_id));
                }
                continue;
            }
            match reader.next(&self.link, scope, self.link.max_message) {
                Read::Frames(frames) => {
                    for frame in frames {
                        let shared = self.shared.clone();
                        inbound::route(&self.shared, frame, &mut |line| {
                            shared.submit(Command::Answer(line))
                        });
                    }
                }
                Read::End => {
                    if let Ok(event) = rx.try_recv() {
                        if let Some(answer) = answer_of(event) {
                            return Ok(Started::Answer(answer, session_id));
                        }
                    }
                    return Err(StartFail::Error(Error::Handshake {
                        reason: format!("the reply to `{method}` ended without an answer"),
                        stderr_tail: String::new(),
                    }));
                }
                Read::Failed(f) => return Err(f.into()),
            }
        }
    }

    /// Sets the configured log level (`logging/setLevel`) before any call; a failure is
    /// only logged.
    fn set_level(&mut self, scope: &Scope, params: &Value) {
        match self.start_request(scope, SET_LEVEL_ID, "logging/setLevel", params, &[]) {
            Ok(Started::Answer(Answer::Result(_), _)) => {}
            Ok(Started::Answer(Answer::Error(e), _)) => {
                log::warn!("[{}] logging/setLevel refused: {}", self.name(), e.message)
            }
            Ok(Started::NotMcp(status)) => {
                log::warn!("[{}] logging/setLevel got HTTP {status}", self.name())
            }
            Err(_) => log::warn!("[{}] logging/setLevel got no answer", self.name()),
        }
    }

    /// Sends `notifications/initialized` (the handshake is not done before it is taken).
    fn initialized(&mut self, scope: &Scope) -> Result<(), StartFail> {
        let line = jsonrpc::notification_line("notifications/initialized", None);
        let reply = self.link.post(scope, &line, &[])?;
        if !(200..300).contains(&reply.status) {
            return Err(StartFail::Error(self.link.http_error_with_body(reply)));
        }
        // Drain whatever came with it (some servers answer 200 with a body).
        let mut body = reply.body;
        let _ = body.with_config().limit(64 << 10).read_to_vec();
        Ok(())
    }

    /// The deprecated HTTP+SSE transport: GET the event stream, take the `endpoint` event,
    /// then run `initialize` with the answers coming on the stream.
    fn start_legacy(
        &mut self,
        config: &ServerConfig,
        scope: &Scope,
        post_status: Option<u16>,
    ) -> Result<(), StartFail> {
        self.link.clear_version();
        let reply = self.link.get_stream(scope, None)?;
        if reply.status != 200 || !reply.is_sse() {
            let post = post_status
                .map(|s| format!("a POST got HTTP {s} and "))
                .unwrap_or_default();
            return Err(StartFail::Error(self.link.http_error(
                reply.status,
                &format!("not an MCP endpoint: {post}a GET for the HTTP+SSE event stream got HTTP {} (`{}`)", reply.status, reply.content_type),
            )));
        }
        let mut reader = ReplyReader::new(reply, self.link.max_message);
        let endpoint = loop {
            match reader.next_events(&self.link, scope) {
                Ok(events) => {
                    if let Some(e) = events.into_iter().find(|e| e.kind == "endpoint") {
                        break e.data;
                    }
                }
                Err(Read::Failed(f)) => return Err(f.into()),
                Err(_) => {
                    return Err(StartFail::Error(Error::Handshake {
                        reason: "the HTTP+SSE event stream ended before naming its endpoint".into(),
                        stderr_tail: String::new(),
                    }))
                }
            }
        };
        let Some(endpoint) = super::link::resolve(&self.link.url, endpoint.trim()) else {
            return Err(StartFail::Error(Error::Protocol(format!(
                "the HTTP+SSE endpoint `{}` is not a URL",
                jsonrpc::brief(&endpoint)
            ))));
        };
        if Origin::of(&endpoint) != Origin::of(&self.link.url) {
            return Err(StartFail::Error(Error::Protocol(format!(
                "the HTTP+SSE endpoint {} is on another origin than {}",
                super::link::redact(&endpoint),
                self.link.shown
            ))));
        }
        self.link.set_wire(Wire::Legacy { endpoint });
        self.spawn_legacy_reader(reader);
        let (tx, rx) = unbounded();
        self.shared.table.lock().register_quiet(INITIALIZE_ID, tx);
        let params = json!({
            "protocolVersion": protocol::LATEST_HANDSHAKE_VERSION,
            "capabilities": client_capabilities(config.handler.supports(), false, config.tasks),
            "clientInfo": { "name": config.client_name, "version": config.client_version },
        });
        let line = jsonrpc::request_line(INITIALIZE_ID, "initialize", Some(&params));
        let reply = self.link.post(scope, &line, &[])?;
        if !(200..300).contains(&reply.status) {
            return Err(StartFail::Error(self.link.http_error_with_body(reply)));
        }
        drop(reply);
        let deadline = self.shared.started + config.start_timeout;
        let answer = loop {
            match rx.recv_deadline(deadline) {
                Ok(event) => {
                    if let Some(a) = answer_of(event) {
                        break a;
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Err(StartFail::Expired),
                Err(RecvTimeoutError::Disconnected) => return Err(StartFail::Stopped),
            }
        };
        let mut decision = Decision::new(Generation::Handshake, config.discover_timeout);
        match decision.initialize_answered(answer, Instant::now()) {
            Step::Initialized(details) => {
                // HTTP+SSE has no protocol version header; the version is agreed in the body.
                let set_level = handshake::set_level_params(config, &details);
                let _ = self.shared.details.set(details);
                self.initialized(scope)?;
                if let Some(params) = set_level {
                    let line =
                        jsonrpc::request_line(SET_LEVEL_ID, "logging/setLevel", Some(&params));
                    let (tx, _rx) = unbounded();
                    self.shared.table.lock().register_quiet(SET_LEVEL_ID, tx);
                    if let Ok(reply) = self.link.post(scope, &line, &[]) {
                        drop(reply);
                    }
                }
                Ok(())
            }
            Step::Fail(why) => Err(StartFail::Error(Error::Handshake {
                reason: why,
                stderr_tail: String::new(),
            })),
            _ => Err(StartFail::Error(Error::Handshake {
                reason: decision_failure(&mut decision),
                stderr_tail: String::new(),
            })),
        }
    }

    /// The reader of the HTTP+SSE event stream: every answer and server message comes on
    /// it. The session ends with it.
    fn spawn_legacy_reader(&mut self, mut reader: ReplyReader) {
        let (shared, link) = (self.shared.clone(), self.link.clone());
        let spawned = thread::Builder::new()
            .name(format!("mcp-sse-{}", shared.name))
            .spawn(move || {
                sys::block_sigpipe_in_this_thread();
                let Ok(bell) = Bell::new().map(Arc::new) else {
                    shared.end(CloseReason::Broken(
                        "no stop bell for the event stream".into(),
                    ));
                    return;
                };
                let _open = link.open_reply(LEGACY_ID, bell.clone());
                let scope = Scope::enter(None, Some(bell));
                let why = loop {
                    match reader.next(&link, &scope, link.max_message) {
                        Read::Frames(frames) => {
                            for frame in frames {
                                route_and_poke(&shared, &link, frame);
                            }
                        }
                        Read::End => break "the HTTP+SSE event stream ended".to_owned(),
                        Read::Failed(Failed::Stopped) => return,
                        Read::Failed(Failed::Expired) => {
                            break "the HTTP+SSE event stream timed out".to_owned()
                        }
                        Read::Failed(Failed::Error(e)) => {
                            break format!("the HTTP+SSE event stream broke: {e}")
                        }
                    }
                };
                if !link.is_shut() {
                    shared.end(CloseReason::Broken(why));
                }
            });
        match spawned {
            Ok(handle) => self.threads.push(handle),
            Err(e) => self.shared.end(CloseReason::Broken(format!(
                "cannot start the event stream reader: {e}"
            ))),
        }
    }

    /// The optional GET stream of the handshake generation over Streamable HTTP, for
    /// server messages that belong to no request. A server that offers none (405, or
    /// anything but an event stream) is left alone.
    fn open_standalone(&mut self) {
        let handshake = self.shared.generation() == Some(Generation::Handshake);
        if !handshake || self.link.is_legacy() || !self.link.standalone_stream {
            return;
        }
        let (shared, link) = (self.shared.clone(), self.link.clone());
        let (opened_tx, opened) = bounded::<()>(1);
        let spawned = thread::Builder::new()
            .name(format!("mcp-listen-{}", shared.name))
            .spawn(move || {
                sys::block_sigpipe_in_this_thread();
                let Ok(bell) = Bell::new().map(Arc::new) else {
                    return;
                };
                let _open = link.open_reply(STANDALONE_ID, bell.clone());
                standalone(&shared, &link, bell, opened_tx);
            });
        match spawned {
            Ok(handle) => self.threads.push(handle),
            Err(e) => log::warn!("[{}] no standalone stream: {e}", self.name()),
        }
        // Wait (a little) for the server to take the stream or refuse it.
        if opened.recv_timeout(STANDALONE_WAIT).is_err() {
            log::debug!(
                "[{}] the standalone stream is not open after {STANDALONE_WAIT:?}; going on",
                self.name()
            );
        }
    }

    /// Serves commands until the session must end; returns why.
    fn serve(&mut self) -> CloseReason {
        loop {
            while let Ok(command) = self.commands.try_recv() {
                if let Some(reason) = self.command(command) {
                    return reason;
                }
            }
            if self.shared.lifecycle.is_ending() {
                return self
                    .shared
                    .lifecycle
                    .reason()
                    .map_or(CloseReason::Closed, |(r, _)| r);
            }
            let Some(doorbell) = self.shared.doorbell.fd() else {
                return CloseReason::Closed;
            };
            self.shared.parked.store(true, Ordering::SeqCst);
            if !self.commands.is_empty() || self.shared.lifecycle.is_ending() {
                self.shared.parked.store(false, Ordering::SeqCst);
                continue;
            }
            let mut watches = [Watch::new(doorbell, sys::IN)];
            let woke = sys::poll(&mut watches, None);
            self.shared.parked.store(false, Ordering::SeqCst);
            if let Err(e) = woke {
                return CloseReason::Broken(format!("poll: {e}"));
            }
            self.shared.doorbell.drain();
        }
    }

    fn command(&mut self, command: Command) -> Option<CloseReason> {
        match command {
            Command::Notify(line) | Command::Answer(line) => self.post_message(&line),
            Command::Write { id, line } => self.spawn_stream(id, line),
            // Batches over HTTP post each request from the caller's side; should one come
            // here, each request is its own stream.
            Command::WriteMany { lines, ends } => {
                let mut start = 0;
                for (id, end) in ends {
                    self.spawn_stream(id, lines[start..end].to_vec());
                    start = end;
                }
            }
            Command::Abandon { ids, reason } => {
                for id in ids {
                    // Closing a reply stream cancels its request in the per-request
                    // generation; the handshake generation (and HTTP+SSE) is told.
                    self.link.interrupt(id);
                    if self.shared.generation() != Some(Generation::PerRequest) {
                        let params = json!({ "requestId": id, "reason": reason });
                        let line =
                            jsonrpc::notification_line("notifications/cancelled", Some(&params));
                        self.post_message(&line);
                    }
                }
            }
            Command::Close(reason) => return Some(reason),
        }
        None
    }

    /// POSTs a notification or an answer; the server takes it with 202.
    fn post_message(&mut self, line: &[u8]) {
        self.bell.drain();
        let scope = Scope::enter(Some(Instant::now() + POST_TIMEOUT), Some(self.bell.clone()));
        match self.link.post(&scope, line, &[]) {
            Ok(reply) if (200..300).contains(&reply.status) => {
                let mut body = reply.body;
                let _ = body.with_config().limit(64 << 10).read_to_vec();
            }
            Ok(reply) if reply.status == 404 && self.link.session_id().is_some() => {
                self.shared.end(CloseReason::Gone);
            }
            Ok(reply) => {
                let e = self.link.http_error_with_body(reply);
                log::warn!("[{}] a message was not taken: {e}", self.name());
            }
            Err(Failed::Error(e)) => log::warn!("[{}] cannot post a message: {e}", self.name()),
            Err(_) => {}
        }
    }

    /// A request whose reply stream stays open (`subscriptions/listen`): read on a thread
    /// of its own until the server ends it, the client cancels it (`Abandon`) or the
    /// session ends.
    fn spawn_stream(&mut self, id: u64, line: Vec<u8>) {
        let (shared, link) = (self.shared.clone(), self.link.clone());
        let headers = if shared.generation() == Some(Generation::PerRequest) {
            let params: Option<Value> = serde_json::from_slice::<Value>(&line)
                .ok()
                .and_then(|v| v.get("params").cloned());
            let method = serde_json::from_slice::<Value>(&line)
                .ok()
                .and_then(|v| v.get("method").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            super::headers::request_headers(
                &method,
                params.as_ref().and_then(Value::as_object),
                None,
            )
        } else {
            Vec::new()
        };
        let spawned = thread::Builder::new()
            .name(format!("mcp-stream-{}", shared.name))
            .spawn(move || {
                sys::block_sigpipe_in_this_thread();
                let Ok(bell) = Bell::new().map(Arc::new) else {
                    shared.table.lock().complete(
                        id,
                        Err(Error::spawn(
                            "a stream's stop bell",
                            std::io::Error::other("eventfd"),
                        )),
                    );
                    return;
                };
                let _open = link.open_reply(id, bell.clone());
                let scope = Scope::enter(None, Some(bell));
                let outcome = stream(&shared, &link, &scope, id, &line, &headers);
                if let Err(e) = outcome {
                    shared.table.lock().complete(id, Err(e));
                }
            });
        match spawned {
            Ok(handle) => {
                self.threads.retain(|t| !t.is_finished());
                self.threads.push(handle);
            }
            Err(e) => {
                self.shared
                    .table
                    .lock()
                    .complete(id, Err(Error::spawn("a stream reader thread", e)));
            }
        }
    }

    /// Ends the session: every call failed, every stream interrupted, the session deleted
    /// on the server, every thread joined.
    fn finish(mut self, reason: CloseReason) {
        let shared = self.shared.clone();
        shared.lifecycle.ending(reason.clone());
        let reason = shared.lifecycle.reason().map_or(reason, |(r, _)| r);
        shared.table.lock().fail_all(&reason, "");
        shared.asks.cancel_all();
        self.link.shut();
        shared.lifecycle.ended(reason.clone(), String::new());
        if reason == CloseReason::Closed {
            log::debug!("[{}] closing session", self.name());
        } else {
            log::warn!("[{}] session ended: {reason}", self.name());
        }
        shared.tool_listen.lock().take();
        let listens = std::mem::take(&mut *shared.resource_listens.lock());
        drop(listens);
        // The server forgets the session (a 405 says it does not let clients do that).
        if self.link.session_id().is_some() && reason != CloseReason::Gone {
            self.bell.drain();
            let scope = Scope::enter(Some(Instant::now() + self.grace), None);
            match self.link.delete(&scope) {
                Ok(status) => log::debug!("[{}] DELETE of the session: HTTP {status}", self.name()),
                Err(Failed::Error(e)) => {
                    log::debug!("[{}] DELETE of the session failed: {e}", self.name())
                }
                Err(_) => log::debug!("[{}] DELETE of the session timed out", self.name()),
            }
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        self.link.release_connections();
        shared.wake.close();
        shared.doorbell.close();
    }
}

/// The step after a start-up probe failed without a decisive answer.
fn decision_failure(decision: &mut Decision) -> String {
    match decision.deadline_passed() {
        Step::Fail(why) => why,
        _ => "the server gave no usable answer to `server/discover` or `initialize`".into(),
    }
}

/// Routes a message read on a stream no caller reads; when it answers a call (a response
/// delivered on the standalone or HTTP+SSE stream), wakes that call's reader.
fn route_and_poke(shared: &Arc<Shared>, link: &Link, frame: Frame) {
    let answered = match &frame {
        Frame::Json(v) if v.get("method").is_none() => v.get("id").and_then(jsonrpc::our_id),
        _ => None,
    };
    inbound::route(shared, frame, &mut |line| {
        shared.submit(Command::Answer(line))
    });
    if let Some(id) = answered {
        link.interrupt(id);
    }
}

/// The standalone GET stream: read and reconnected (after `retry`, with `Last-Event-ID`)
/// until the session ends, or the server says it offers none.
fn standalone(shared: &Arc<Shared>, link: &Link, bell: Arc<Bell>, opened: Sender<()>) {
    let scope = Scope::enter(None, Some(bell));
    // Told once, when the first GET has its answer (whatever it is).
    let mut opened = Some(opened);
    let mut last_id: Option<String> = None;
    let mut failures = 0;
    while !link.is_shut() {
        let got = link.get_stream(&scope, last_id.as_deref());
        if let Some(tx) = opened.take() {
            let _ = tx.send(());
        }
        let reply = match got {
            Ok(reply) => reply,
            Err(Failed::Error(e)) => {
                log::debug!("[{}] standalone stream: {e}", shared.name);
                failures += 1;
                if failures >= MAX_STANDALONE_FAILURES
                    || !super::net::pause(Duration::from_secs(1 << failures.min(4)))
                {
                    return;
                }
                continue;
            }
            Err(_) => return,
        };
        if reply.status != 200 || !reply.is_sse() {
            log::debug!(
                "[{}] the server offers no standalone stream (GET: HTTP {})",
                shared.name,
                reply.status
            );
            if reply.status == 404 && link.session_id().is_some() && last_id.is_some() {
                shared.end(CloseReason::Gone);
            }
            return;
        }
        let mut reader = ReplyReader::new(reply, link.max_message);
        let started = Instant::now();
        loop {
            match reader.next(link, &scope, link.max_message) {
                Read::Frames(frames) => {
                    for frame in frames {
                        route_and_poke(shared, link, frame);
                    }
                }
                Read::Failed(Failed::Stopped) => return,
                Read::End | Read::Failed(_) => break,
            }
        }
        let (id, retry) = reader.cursor().unwrap_or((None, None));
        if id.is_some() {
            last_id = id;
        }
        // A stream that ends at once every time is not worth keeping open.
        failures = if started.elapsed() < Duration::from_secs(1) {
            failures + 1
        } else {
            0
        };
        if failures >= MAX_STANDALONE_FAILURES {
            log::debug!(
                "[{}] the standalone stream keeps ending; not reopened",
                shared.name
            );
            return;
        }
        let wait = retry.map_or(Duration::from_secs(1), Duration::from_millis);
        if !super::net::pause(wait) {
            return;
        }
    }
}

/// Posts a long-lived request and routes its reply stream until it ends.
fn stream(
    shared: &Arc<Shared>,
    link: &Link,
    scope: &Scope,
    id: u64,
    line: &[u8],
    headers: &[(String, String)],
) -> Result<(), Error> {
    let reply = match link.post(scope, line, headers) {
        Ok(reply) => reply,
        Err(Failed::Error(e)) => return Err(e),
        Err(_) => return Ok(()),
    };
    if scope.wrote() {
        shared.table.lock().mark_sent(&[id]);
    }
    if !(200..300).contains(&reply.status) || reply.status == 202 {
        if reply.is_json() {
            let mut body = reply.body;
            let bytes = body
                .with_config()
                .limit(link.max_message as u64)
                .read_to_vec()
                .unwrap_or_default();
            if let Some(e) = rpc_error(&bytes) {
                return Err(inbound::server_error(e));
            }
            return Err(link.http_error(reply.status, &super::link::quote(&bytes)));
        }
        return Err(link.http_error_with_body(reply));
    }
    let mut reader = ReplyReader::new(reply, link.max_message);
    loop {
        match reader.next(link, scope, link.max_message) {
            Read::Frames(frames) => {
                for frame in frames {
                    inbound::route(shared, frame, &mut |l| shared.submit(Command::Answer(l)));
                }
            }
            Read::End => {
                return Err(Error::OutcomeUnknown {
                    reason: CloseReason::Broken("the server closed the stream".into()),
                    stderr_tail: String::new(),
                })
            }
            Read::Failed(Failed::Stopped) => return Ok(()),
            Read::Failed(Failed::Expired) => return Ok(()),
            Read::Failed(Failed::Error(e)) => {
                return Err(Error::OutcomeUnknown {
                    reason: CloseReason::Broken(format!("the stream broke: {e}")),
                    stderr_tail: String::new(),
                })
            }
        }
    }
}
