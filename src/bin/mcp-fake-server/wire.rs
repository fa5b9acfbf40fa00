//! The wire: newline-delimited JSON-RPC 2.0 on stdin and stdout. Reading lines (a BOM before
//! the first line is dropped, blank lines are skipped), the stdout writer (`--crlf`, `--bom`,
//! a stdout closed by `exit_stdout`), JSON-RPC error values, and sending responses, errors,
//! notifications and the server's own requests to the client.

use serde_json::{json, Map, Value};
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, BufWriter, StdinLock, Stdout, Write};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::state::{lock, Shared, Slot};
use super::Config;

pub(super) const PARSE_ERROR: i64 = -32700;
pub(super) const INVALID_REQUEST: i64 = -32600;
pub(super) const METHOD_NOT_FOUND: i64 = -32601;
pub(super) const INVALID_PARAMS: i64 = -32602;
pub(super) const INTERNAL_ERROR: i64 = -32603;
pub(super) const RESOURCE_NOT_FOUND: i64 = -32002;
pub(super) const MISSING_CLIENT_CAPABILITY: i64 = -32021;
pub(super) const UNSUPPORTED_VERSION: i64 = -32022;
pub(super) const URL_ELICITATION_REQUIRED: i64 = -32042;

#[derive(Debug)]
pub(super) struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    pub(super) fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub(super) fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The JSON-RPC error object: `{code, message, data?}`.
    pub(super) fn to_json(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), self.code.into());
        error.insert("message".into(), self.message.clone().into());
        if let Some(data) = &self.data {
            error.insert("data".into(), data.clone());
        }
        Value::Object(error)
    }

    /// Back from a JSON-RPC error object (a missing code is -32603).
    pub(super) fn from_json(error: &Value) -> Self {
        let code = error.get("code").and_then(Value::as_i64);
        let message = error.get("message").and_then(Value::as_str);
        let e = RpcError::new(code.unwrap_or(INTERNAL_ERROR), message.unwrap_or("error"));
        match error.get("data") {
            Some(data) => e.with_data(data.clone()),
            None => e,
        }
    }
}

/// -32021 (`2026-07-28`): the request needs client capabilities it did not declare.
pub(super) fn missing_capability(required: Value) -> RpcError {
    RpcError::new(
        MISSING_CLIENT_CAPABILITY,
        "Missing required client capability",
    )
    .with_data(json!({ "requiredCapabilities": required }))
}

pub(super) fn method_not_found(method: &str) -> RpcError {
    RpcError::new(METHOD_NOT_FOUND, format!("method not found: {method}"))
}

pub(super) fn invalid_params(message: impl Into<String>) -> RpcError {
    RpcError::new(INVALID_PARAMS, message)
}

/// What a request handler produces: `Ok(Some(result))`, an error, or `Ok(None)` = no answer.
pub(super) type Outcome = Result<Option<Value>, RpcError>;

/// Stdin, read one line at a time.
pub(super) struct LineReader {
    reader: BufReader<StdinLock<'static>>,
    line: Vec<u8>,
    first: bool,
}

impl LineReader {
    pub(super) fn stdin() -> Self {
        LineReader {
            reader: BufReader::with_capacity(64 * 1024, io::stdin().lock()),
            line: Vec::with_capacity(4096),
            first: true,
        }
    }

    /// The next line that is not blank (a BOM before the first line is dropped), with its
    /// terminator; `None` at EOF or on a read error.
    pub(super) fn next_line(&mut self) -> Option<&[u8]> {
        loop {
            self.line.clear();
            match self.reader.read_until(b'\n', &mut self.line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    say!("fake-server: stdin read error: {e}");
                    return None;
                }
            }
            let mut start = 0;
            if self.first {
                self.first = false;
                if self.line.starts_with(b"\xEF\xBB\xBF") {
                    start = 3;
                }
            }
            if !self.line[start..].iter().all(u8::is_ascii_whitespace) {
                return Some(&self.line[start..]);
            }
        }
    }
}

pub(super) struct Output {
    w: BufWriter<Stdout>,
    bom_pending: bool,
    closed: bool,
    eol: &'static [u8],
    /// HTTP mode: where each message goes instead of stdout (one call per message).
    sink: Option<Sink>,
}

/// Receives each message (without a line terminator) in HTTP mode.
pub(super) type Sink = Box<dyn Fn(&[u8]) + Send>;

impl Output {
    pub(super) fn new(cfg: &Config) -> Self {
        Output {
            w: BufWriter::with_capacity(64 * 1024, io::stdout()),
            bom_pending: cfg.bom,
            closed: false,
            eol: if cfg.crlf { b"\r\n" } else { b"\n" },
            sink: None,
        }
    }

    /// Sends every message to `sink` from now on instead of stdout (HTTP mode).
    pub(super) fn set_sink(&mut self, sink: Sink) {
        self.sink = Some(sink);
    }

    /// Writes one full line (terminator added here) with a single write, then flushes.
    pub(super) fn emit(&mut self, body: &[u8]) {
        if self.closed {
            return;
        }
        if let Some(sink) = &self.sink {
            return sink(body);
        }
        let mut line = Vec::with_capacity(body.len() + 5);
        if self.bom_pending {
            self.bom_pending = false;
            line.extend_from_slice(b"\xEF\xBB\xBF");
        }
        line.extend_from_slice(body);
        line.extend_from_slice(self.eol);
        let _ = self.w.write_all(&line);
        let _ = self.w.flush();
    }
}

/// The JSON text of a message; `None` (and a stderr line) if it cannot be serialized.
pub(super) fn encode(message: &Value) -> Option<Vec<u8>> {
    match serde_json::to_vec(message) {
        Ok(body) => Some(body),
        Err(e) => {
            say!("fake-server: cannot serialize a message: {e}");
            None
        }
    }
}

/// A JSON-RPC response carrying `result`.
pub(super) fn response(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

impl Shared {
    /// Writes one full line (terminator added here) with a single write, then flushes.
    pub(super) fn emit(&self, body: &[u8]) {
        lock(&self.out).emit(body);
    }

    fn send(&self, message: &Value) {
        if let Some(body) = encode(message) {
            self.emit(&body);
        }
    }

    pub(super) fn respond(&self, id: &Value, outcome: Outcome) {
        match outcome {
            Ok(Some(result)) => self.send(&response(id, self.finish(result))),
            Ok(None) => {}
            Err(e) => self.send_error(id, e),
        }
    }

    /// In the per-request generation every result carries `resultType` (`"complete"` unless
    /// the result set one itself).
    pub(super) fn finish(&self, mut result: Value) -> Value {
        if self.stateless.load(Ordering::SeqCst) {
            if let Some(obj) = result.as_object_mut() {
                obj.entry("resultType").or_insert_with(|| "complete".into());
            }
        }
        result
    }

    pub(super) fn send_error(&self, id: &Value, e: RpcError) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "error": e.to_json()}));
    }

    pub(super) fn notify(&self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request to the client whose response `slot` will get; returns its id.
    pub(super) fn send_request(
        &self,
        slot: &Arc<Slot>,
        method: &str,
        params: Option<Value>,
    ) -> u64 {
        let id = self.next_server_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.pending).insert(id, Arc::clone(slot));
        let mut request = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let (Some(p), Some(obj)) = (params, request.as_object_mut()) {
            obj.insert("params".into(), p);
        }
        self.send(&request);
        id
    }

    /// Sends a request to the client and waits for its response message (None if cancelled).
    pub(super) fn ask_client(
        &self,
        slot: &Arc<Slot>,
        method: &str,
        params: Option<Value>,
    ) -> Option<Value> {
        let id = self.send_request(slot, method, params);
        let reply = slot.wait_reply();
        lock(&self.pending).remove(&id);
        if reply.is_none() {
            self.notify(
                "notifications/cancelled",
                json!({"requestId": id, "reason": "tool call cancelled"}),
            );
        }
        reply
    }

    /// Closes stdout for good (`exit_stdout`): flushes, then nothing more is written.
    pub(super) fn close_stdout(&self) {
        let mut out = lock(&self.out);
        let _ = out.w.flush();
        out.closed = true;
        // Replace fd 1 by /dev/null: the pipe's write end closes, fd 1 stays occupied.
        match OpenOptions::new().write(true).open("/dev/null") {
            // SAFETY: dup2 onto fd 1 with a valid open fd; no memory is involved.
            Ok(null) => unsafe {
                libc::dup2(null.as_raw_fd(), 1);
            },
            // SAFETY: closing fd 1, which nothing writes to any more (out.closed is set).
            Err(_) => unsafe {
                libc::close(1);
            },
        }
    }

    /// Flushes whatever stdout still buffers (errors are ignored).
    pub(super) fn flush_output(&self) {
        let _ = lock(&self.out).w.flush();
    }
}
