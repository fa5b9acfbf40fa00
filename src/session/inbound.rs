//! What arrives from the server: the line framing of its output (with the size cap), and
//! what each message does, wherever it is read (by a waiting caller or by the worker):
//! answers go to their callers, progress to its call, notifications to the handler and the
//! session's counters, server requests to the handler or straight back with an answer.
//!
//! Every line is handled completely, in order, before the next one is read, so per-line
//! state (the tool-list epoch, the invalid-line count, a notification's hook) is never
//! reordered against the answer that follows it.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;

use serde_json::{json, Value};

use crate::config::Generation;
use crate::error::Error;
use crate::handler::{self, ListKind};
use crate::jsonrpc::{self, brief, our_id, Message, RpcError};
use crate::protocol::{Progress, Task, META_SUBSCRIPTION_ID};

use super::buffer::Shrink;
use super::shared::{Command, Shared, FIRST_CALLER_ID};
use super::sys;

/// Bytes asked for per read.
const CHUNK: usize = 64 << 10;
/// The most server-to-client requests handled at once per session.
pub(crate) const MAX_HANDLER_THREADS: usize = 32;
/// A request id longer than this (as JSON text) is not echoed back.
const MAX_ECHOED_ID: usize = 1024;

/// One framed unit of the server's output.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A line that parsed as JSON.
    Json(Value),
    /// A line that is not JSON.
    Invalid(String),
    /// A line over the size limit: dropped, with the id it carried at the top level, if any.
    TooLarge { size: usize, id: Option<Value> },
}

/// What a read found.
#[derive(Debug)]
pub(crate) enum Fill {
    /// New bytes arrived.
    Data,
    /// Nothing right now.
    Empty,
    /// End of stream.
    Eof,
    /// A read error.
    Failed(io::Error),
}

/// The server's output, split into lines of at most `max` bytes. Lines longer than that
/// are skipped as they stream by, never held.
pub(crate) struct Lines {
    fd: Option<OwnedFd>,
    buf: Vec<u8>,
    /// Start of the unconsumed bytes.
    pos: usize,
    /// `buf[pos..scanned]` holds no newline.
    scanned: usize,
    skip: Option<Skip>,
    max: usize,
    shrink: Shrink,
}

struct Skip {
    size: usize,
    scan: IdScan,
}

impl Lines {
    pub(crate) fn new(fd: Option<OwnedFd>, max: usize) -> Lines {
        Lines {
            fd,
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            skip: None,
            max,
            shrink: Shrink::default(),
        }
    }

    pub(crate) fn fd(&self) -> Option<RawFd> {
        self.fd.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Closes the descriptor: nothing more is read.
    pub(crate) fn close(&mut self) {
        self.fd = None;
    }

    /// Reads once, without blocking.
    pub(crate) fn fill(&mut self) -> Fill {
        let Some(fd) = self.fd() else {
            return Fill::Eof;
        };
        match sys::read_into(fd, &mut self.buf, CHUNK) {
            Ok(Some(0)) => Fill::Eof,
            Ok(Some(_)) => Fill::Data,
            Ok(None) => Fill::Empty,
            Err(e) => Fill::Failed(e),
        }
    }

    /// The next complete, non-blank line, or `None` until more bytes arrive.
    pub(crate) fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(skip) = &mut self.skip {
                let rest = &self.buf[self.pos..];
                match memchr::memchr(b'\n', rest) {
                    Some(i) => {
                        skip.scan.feed(&rest[..i]);
                        let size = skip.size + i;
                        let id = skip.scan.id();
                        self.skip = None;
                        self.consume(self.pos + i + 1);
                        return Some(Frame::TooLarge { size, id });
                    }
                    None => {
                        skip.scan.feed(rest);
                        skip.size += rest.len();
                        self.consume(self.buf.len());
                        return None;
                    }
                }
            }
            let from = self.scanned.max(self.pos);
            let Some(i) = memchr::memchr(b'\n', &self.buf[from..]) else {
                self.scanned = self.buf.len();
                if self.buf.len() - self.pos > self.max {
                    // Over the cap without an end: skip the rest of this line as it comes.
                    let mut scan = IdScan::default();
                    scan.feed(&self.buf[self.pos..]);
                    self.skip = Some(Skip {
                        size: self.buf.len() - self.pos,
                        scan,
                    });
                    self.consume(self.buf.len());
                    continue;
                }
                return None;
            };
            let end = from + i;
            let mut line = &self.buf[self.pos..end];
            let too_long = line.len() > self.max;
            if let Some(rest) = line.strip_prefix(b"\xEF\xBB\xBF") {
                line = rest;
            }
            if let Some(rest) = line.strip_suffix(b"\r") {
                line = rest;
            }
            let frame = if too_long {
                let mut scan = IdScan::default();
                scan.feed(line);
                Some(Frame::TooLarge {
                    size: end - self.pos,
                    id: scan.id(),
                })
            } else if line.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(match serde_json::from_slice(line) {
                    Ok(value) => Frame::Json(value),
                    Err(e) => Frame::Invalid(format!(
                        "not JSON ({e}): {}",
                        brief(&String::from_utf8_lossy(line))
                    )),
                })
            };
            self.consume(end + 1);
            if frame.is_some() {
                return frame;
            }
        }
    }

    /// Everything before `to` has been handled; what follows is not scanned yet.
    fn consume(&mut self, to: usize) {
        self.pos = to;
        self.scanned = to;
        if self.pos >= self.buf.len() {
            let used = self.buf.len();
            self.buf.clear();
            self.pos = 0;
            self.scanned = 0;
            self.shrink.emptied(&mut self.buf, used, CHUNK);
        } else if self.pos > CHUNK && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
            self.scanned = 0;
        }
    }

    /// The read buffer's capacity (for tests: it shrinks back after a large message).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// Finds the top-level `"id"` of a JSON object streaming by in pieces, keeping a bounded
/// amount of it: enough to tell which call an oversize answer belonged to.
#[derive(Default)]
struct IdScan {
    depth: u32,
    in_string: bool,
    escaped: bool,
    in_key: bool,
    key: Vec<u8>,
    id_next: bool,
    capturing: bool,
    captured: Vec<u8>,
    prev: u8,
    id: Option<Vec<u8>>,
}

impl IdScan {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.capturing {
                let end = self.depth == 1 && !self.in_string && (b == b',' || b == b'}');
                if end {
                    self.capturing = false;
                    self.id = Some(std::mem::take(&mut self.captured));
                } else if self.captured.len() < 256 {
                    self.captured.push(b);
                }
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                    if self.in_key {
                        self.in_key = false;
                        self.id_next = self.key == b"id";
                        self.key.clear();
                    }
                    continue;
                }
                if self.in_key && self.key.len() < 8 {
                    self.key.push(b);
                }
                continue;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    self.in_key = self.depth == 1 && matches!(self.prev, b'{' | b',');
                }
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                b':' if self.depth == 1 && self.id_next => {
                    self.id_next = false;
                    self.capturing = true;
                    self.captured.clear();
                }
                _ => {}
            }
            if !b.is_ascii_whitespace() {
                self.prev = b;
            }
        }
    }

    fn id(&self) -> Option<Value> {
        let raw = self.id.as_ref()?;
        serde_json::from_slice(raw.trim_ascii()).ok()
    }
}

/// One whole message (an HTTP body, an event's data) as a frame.
pub(crate) fn frame_of(bytes: &[u8]) -> Frame {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match serde_json::from_slice(bytes) {
        Ok(value) => Frame::Json(value),
        Err(e) => Frame::Invalid(format!(
            "not JSON ({e}): {}",
            brief(&String::from_utf8_lossy(bytes))
        )),
    }
}

/// Handles one frame read from the server. `answer` takes a line for the server (an answer
/// to its request); `generation` is the session's, once known.
pub(crate) fn route(shared: &Arc<Shared>, frame: Frame, answer: &mut dyn FnMut(Vec<u8>)) {
    match frame {
        Frame::Json(value) => {
            let mut messages = Vec::with_capacity(1);
            Message::classify(value, &mut messages);
            for m in messages {
                match m {
                    Ok(message) => dispatch(shared, message, answer),
                    Err(why) => invalid(shared, why),
                }
            }
        }
        Frame::Invalid(why) => invalid(shared, why),
        Frame::TooLarge { size, id } => {
            let limit = shared.max_message_size;
            log::warn!(
                "[{}] dropped a message of {size} bytes, over the size limit of {limit} bytes",
                shared.name
            );
            let found = id.as_ref().and_then(our_id).is_some_and(|id| {
                shared
                    .table
                    .lock()
                    .complete(id, Err(Error::TooLarge { limit, size }))
            });
            if !found {
                shared
                    .counters
                    .unmatched_responses
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn invalid(shared: &Shared, why: String) {
    shared
        .counters
        .invalid_lines
        .fetch_add(1, Ordering::Relaxed);
    log::warn!("[{}] ignoring invalid line from server: {why}", shared.name);
}

fn dispatch(shared: &Arc<Shared>, message: Message, answer: &mut dyn FnMut(Vec<u8>)) {
    match message {
        Message::Response { id, outcome } => {
            let outcome = outcome.map_err(server_error);
            let ours = our_id(&id);
            let found = ours.is_some_and(|n| shared.table.lock().complete(n, outcome));
            if !found && ours.is_some_and(|n| n < FIRST_CALLER_ID) {
                // The losing half of the start-up pair (see `handshake.rs`): expected.
                log::trace!("[{}] late answer to a start-up request", shared.name);
            } else if !found {
                shared
                    .counters
                    .unmatched_responses
                    .fetch_add(1, Ordering::Relaxed);
                log::debug!(
                    "[{}] dropping response to id {}: no call waits for it (late, duplicate or unknown)",
                    shared.name,
                    brief(&id)
                );
            }
        }
        Message::Notification { method, params } => notification(shared, &method, &params),
        Message::Request { id, method, params } => {
            server_request(shared, id, method, params, answer)
        }
    }
}

fn notification(shared: &Shared, method: &str, params: &Value) {
    let name = &shared.name;
    let handler = &shared.handler;
    match method {
        "notifications/progress" => {
            let Some(token) = params.get("progressToken").and_then(our_id) else {
                log::debug!(
                    "[{name}] progress without a token of ours: {}",
                    brief(params)
                );
                return;
            };
            match serde_json::from_value::<Progress>(params.clone()) {
                Ok(report) => {
                    if !shared.table.lock().progress(token, report) {
                        log::trace!("[{name}] progress for no call in flight: {}", brief(params));
                    }
                }
                Err(e) => log::debug!("[{name}] malformed progress {}: {e}", brief(params)),
            }
        }
        "notifications/message" => {
            let message = handler::log_message(params);
            let logger = message.logger.as_deref().unwrap_or("");
            log::log!(target: "mcp_pool::server", message.level.to_log(), "[{name}] {logger} {}", brief(&message.data));
            handler.on_log(name, &message);
        }
        "notifications/cancelled" => {
            // The server no longer wants the answer to a request it sent us, or (a
            // subscription of the per-request generation) ends a stream of ours.
            let id = params.get("requestId").unwrap_or(&Value::Null);
            if shared.asks.cancel(id) {
                return;
            }
            let reason = params.get("reason").and_then(Value::as_str).unwrap_or("");
            let ended = our_id(id).is_some_and(|n| {
                shared.table.lock().complete(
                    n,
                    Err(Error::Protocol(format!(
                        "the server cancelled the request{}{}",
                        if reason.is_empty() { "" } else { ": " },
                        brief(&reason)
                    ))),
                )
            });
            if !ended {
                log::debug!(
                    "[{name}] the server cancelled request {}, which nothing waits for",
                    brief(id)
                );
            }
        }
        "notifications/elicitation/complete" => {
            match params.get("elicitationId").and_then(Value::as_str) {
                Some(id) => handler.on_elicitation_complete(name, id),
                None => log::debug!(
                    "[{name}] elicitation/complete without an elicitationId: {}",
                    brief(params)
                ),
            }
        }
        "notifications/tools/list_changed" => {
            shared.counters.tools_changed.store(true, Ordering::Release);
            shared.counters.tools_epoch.fetch_add(1, Ordering::AcqRel);
            handler.on_list_changed(name, ListKind::Tools);
        }
        "notifications/resources/list_changed" => {
            handler.on_list_changed(name, ListKind::Resources)
        }
        "notifications/prompts/list_changed" => handler.on_list_changed(name, ListKind::Prompts),
        "notifications/resources/updated" => {
            let uri = params.get("uri").and_then(Value::as_str).unwrap_or("");
            handler.on_resource_updated(name, uri);
        }
        "notifications/subscriptions/acknowledged" => {
            let id = params
                .pointer(&format!(
                    "/_meta/{}",
                    META_SUBSCRIPTION_ID.replace('/', "~1")
                ))
                .and_then(our_id);
            if !id.is_some_and(|id| shared.table.lock().notice(id, params.clone())) {
                log::debug!(
                    "[{name}] acknowledgement of no subscription of ours: {}",
                    brief(params)
                );
            }
        }
        "notifications/tasks/status" | "notifications/tasks" => {
            match serde_json::from_value::<Task>(params.clone()) {
                Ok(task) => {
                    handler.on_task_status(name, &task);
                    shared.tasks.lock().insert(task.task_id.clone(), task);
                }
                Err(e) => log::debug!("[{name}] malformed task status {}: {e}", brief(params)),
            }
        }
        _ => {
            log::debug!("[{name}] notification {}", brief(&method));
            handler.on_notification(name, method, params);
        }
    }
}

fn server_request(
    shared: &Arc<Shared>,
    id: Value,
    method: String,
    params: Value,
    answer: &mut dyn FnMut(Vec<u8>),
) {
    let name = &shared.name;
    if shared.generation() == Some(Generation::PerRequest) {
        // The per-request generation has no server-to-client requests on stdio, and the
        // client must not write responses there: note it and move on.
        shared
            .counters
            .server_requests_ignored
            .fetch_add(1, Ordering::Relaxed);
        log::warn!(
            "[{name}] ignoring a server request ({}) in the per-request generation",
            brief(&method)
        );
        return;
    }
    if id.to_string().len() > MAX_ECHOED_ID {
        log::warn!("[{name}] a server request's id is too long to echo; answering with a null id");
        let outcome = Err(RpcError {
            code: jsonrpc::INVALID_REQUEST,
            message: "request id too long".into(),
            data: None,
        });
        answer(jsonrpc::response_line(&Value::Null, &outcome));
        return;
    }
    if method == "ping" {
        answer(jsonrpc::response_line(&id, &Ok(json!({}))));
        return;
    }
    // Handlers may block (sampling asks a model, elicitation a user): answer from a thread
    // of their own, a bounded number at once. What the handler cannot serve is refused by
    // `handler::answer` without reaching it.
    let running = &shared.counters.handlers_running;
    if running.fetch_add(1, Ordering::AcqRel) >= MAX_HANDLER_THREADS {
        running.fetch_sub(1, Ordering::AcqRel);
        log::warn!(
            "[{name}] {MAX_HANDLER_THREADS} handler calls already running; refusing {}",
            brief(&method)
        );
        let outcome = Err(RpcError {
            code: jsonrpc::INTERNAL_ERROR,
            message: "client busy: too many requests in progress".into(),
            data: None,
        });
        answer(jsonrpc::response_line(&id, &outcome));
        return;
    }
    let cancelled = shared.asks.begin(&id);
    let for_thread = shared.clone();
    let ask_id = id.clone();
    let spawned = thread::Builder::new()
        .name(format!("mcp-handler-{name}"))
        .spawn(move || {
            let shared = for_thread;
            // Counted down however this thread ends.
            struct Running<'a>(&'a Shared, &'a Value);
            impl Drop for Running<'_> {
                fn drop(&mut self) {
                    self.0.asks.end(self.1);
                    self.0
                        .counters
                        .handlers_running
                        .fetch_sub(1, Ordering::AcqRel);
                }
            }
            let _running = Running(&shared, &id);
            let outcome = handler::answer_parts(
                &*shared.handler,
                shared.support,
                (&shared.name, shared.caller.as_deref()),
                &method,
                &params,
                &cancelled,
            );
            if cancelled.load(Ordering::Acquire) {
                log::debug!(
                    "[{}] the server cancelled its {} request {}: its answer is dropped",
                    shared.name,
                    brief(&method),
                    brief(&id)
                );
                return;
            }
            shared.submit(Command::Answer(jsonrpc::response_line(&id, &outcome)));
        });
    if let Err(e) = spawned {
        shared.asks.end(&ask_id);
        shared
            .counters
            .handlers_running
            .fetch_sub(1, Ordering::AcqRel);
        log::error!("[{}] cannot start a handler thread: {e}", shared.name);
        let outcome = Err(RpcError {
            code: jsonrpc::INTERNAL_ERROR,
            message: "client cannot start a handler thread".into(),
            data: None,
        });
        answer(jsonrpc::response_line(&ask_id, &outcome));
    }
}

/// The JSON-RPC error code of "URL elicitation required" (2025-11-25).
const URL_ELICITATION_REQUIRED: i64 = -32042;

pub(crate) fn server_error(e: RpcError) -> Error {
    if e.code == URL_ELICITATION_REQUIRED {
        let elicitations = e
            .data
            .as_ref()
            .and_then(|d| d.get("elicitations"))
            .and_then(Value::as_array)
            .cloned();
        if let Some(elicitations) = elicitations {
            return Error::UrlElicitationRequired {
                message: e.message,
                elicitations,
            };
        }
    }
    Error::Server {
        code: e.code,
        message: e.message,
        data: e.data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::buffer::KEEP_CAPACITY;

    fn frames(chunks: &[&[u8]], max: usize) -> (Vec<Frame>, usize) {
        let (r, w) = sys::pipe().unwrap();
        sys::set_nonblocking(r.as_raw_fd()).unwrap();
        let mut lines = Lines::new(Some(r), max);
        let mut out = Vec::new();
        for chunk in chunks {
            sys::write_some(w.as_raw_fd(), chunk).unwrap();
            while let Fill::Data = lines.fill() {}
            while let Some(f) = lines.next() {
                out.push(f);
            }
        }
        (out, lines.capacity())
    }

    #[test]
    fn framing_tolerates_crlf_blank_lines_and_bom() {
        let (got, _) = frames(
            &[
                b"\xEF\xBB\xBF{\"a\":1}\r\n\r\n\n  \n{\"b\"",
                b":2}\n{\"c\":3}\nnope\n",
            ],
            100,
        );
        let json: Vec<String> = got
            .iter()
            .map(|f| match f {
                Frame::Json(v) => v.to_string(),
                Frame::Invalid(_) => "invalid".into(),
                Frame::TooLarge { .. } => "too large".into(),
            })
            .collect();
        assert_eq!(json, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "invalid"]);
    }

    #[test]
    fn an_oversize_line_is_skipped_with_its_id_and_the_buffer_shrinks() {
        let big = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":17,\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\"{}\"}}]}}}}\n",
            "x".repeat(3 << 20)
        );
        let mut chunks: Vec<&[u8]> = big.as_bytes().chunks(50_000).collect();
        chunks.push(b"{\"id\":18,\"result\":{}}\n");
        chunks.extend(std::iter::repeat_n(&b"{}\n"[..], 8));
        let (got, capacity) = frames(&chunks, 1 << 20);
        assert_eq!(got.len(), 10);
        assert!(
            matches!(&got[0], Frame::TooLarge { size, id: Some(id) } if *size == big.len() - 1 && id == 17),
            "{:?}",
            got[0]
        );
        assert!(matches!(&got[1], Frame::Json(v) if v["id"] == 18));
        assert!(capacity <= KEEP_CAPACITY, "{capacity}");
        // Exactly at the cap is fine.
        let (got, _) = frames(&[b"{\"a\":\"0123\"}\n"], 12);
        assert!(matches!(&got[0], Frame::Json(_)), "{:?}", got[0]);
    }

    #[test]
    fn lines_after_a_compaction_are_all_found() {
        // A long line, then short ones in the same read: the buffer is compacted after the
        // long one, and the short ones must still be found.
        let long = format!("{{\"a\":\"{}\"}}\n", "x".repeat(200_000));
        let mut input = long.into_bytes();
        for i in 0..50 {
            input.extend_from_slice(format!("{{\"n\":{i}}}\n").as_bytes());
        }
        let chunks: Vec<&[u8]> = input.chunks(50_000).collect();
        let (got, _) = frames(&chunks, 1 << 20);
        assert_eq!(got.len(), 51);
        assert!(matches!(&got[50], Frame::Json(v) if v["n"] == 49));
    }

    #[test]
    fn the_id_scan_finds_only_the_top_level_id() {
        let id = |text: &str| {
            let mut s = IdScan::default();
            for piece in text.as_bytes().chunks(3) {
                s.feed(piece);
            }
            s.id()
        };
        assert_eq!(
            id(r#"{"result":{"id":1,"x":"\"id\":2"},"id":"abc"}"#),
            Some(json!("abc"))
        );
        assert_eq!(id(r#"{"id" : 42 , "result":{}}"#), Some(json!(42)));
        assert_eq!(id(r#"{"method":"x","params":{"id":5}}"#), None);
        assert_eq!(id(r#"{"a":["id",{"id":3}],"id":null}"#), Some(Value::Null));
    }
}
