//! `mcp-fake-server`: a scriptable fake MCP (Model Context Protocol) stdio server used by the
//! tests, benchmarks and demo of `mcp-pool`.
//!
//! It speaks newline-delimited JSON-RPC 2.0 on stdin/stdout and logs to stderr only. It never
//! panics on bad input: a non-JSON line gets -32700, a malformed message -32600, an unknown
//! method -32601 and bad params -32602 (all with `"id": null` when no valid id can be read).
//!
//! # Protocol generations
//!
//! * **handshake** (2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25): `initialize` answers the
//!   client's offered version if it is one of those four, else `2025-11-25`. Requests other than
//!   `ping` are refused with -32600 until `notifications/initialized` arrives. The client's
//!   `capabilities` and `clientInfo` are remembered for the session.
//! * **per-request / stateless** (`2026-07-28`): `server/discover` returns `supportedVersions`,
//!   `capabilities` and `_meta["io.modelcontextprotocol/serverInfo"]`. Every request must carry
//!   `params._meta["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"`: missing gives
//!   -32602, another value gives -32022 with `data.supported`. Client capabilities are read per
//!   request from `_meta["io.modelcontextprotocol/clientCapabilities"]`. `ping` is -32601 here.
//!
//! With `--generation both` the first request locks the connection: an enveloped request
//! (e.g. `server/discover` with the `_meta` envelope) locks stateless, after which `initialize`
//! gets -32022 (`data.supported: ["2026-07-28"]`); `server/discover` without the envelope gets
//! -32601 and locks nothing; `initialize` locks handshake, after which `server/discover` is
//! -32601 and enveloped requests are served as ordinary requests (the envelope is ignored).
//!
//! # Flags
//!
//! | flag | effect |
//! |---|---|
//! | `--generation handshake\|stateless\|both` | generations served (default `both`). `handshake`: `server/discover` is -32601. `stateless`: `initialize` is -32022 |
//! | `--discover-silent` | never answer `server/discover` (like an old server); handshake still works |
//! | `--page-size N` | page size of `tools/list`, `resources/list`, `resources/templates/list`, `prompts/list` (0 = one page, default). Cursors are `"page-K"` (K from 1; `page-1` is the first page) |
//! | `--cursor-loop` | the last page's `nextCursor` is `"page-1"`, forever |
//! | `--extra-tools N` | add tools `extra_0 .. extra_{N-1}` (each echoes `text`, or its arguments as JSON) |
//! | `--slow-start-ms N` | sleep N ms before reading stdin |
//! | `--exit-during-handshake CODE` | on `initialize` or `server/discover`: stderr `dying in handshake`, exit CODE, no answer |
//! | `--hang-handshake` | read `initialize` / `server/discover` but never answer them |
//! | `--stderr-at-start BYTES` | write BYTES bytes of ~100-char lines to stderr before serving |
//! | `--banner` | write the non-JSON line `fake server banner` to stdout before serving |
//! | `--crlf` | end every stdout line with `\r\n` |
//! | `--bom` | write a UTF-8 BOM before the first stdout line |
//! | `--ignore-stdin-eof` | on stdin EOF do not exit: ignore SIGTERM and sleep forever (needs SIGKILL) |
//! | `--ignore-sigterm` | ignore SIGTERM from the start (still exits on stdin EOF) |
//! | `--spawn-grandchild` | spawn `sleep 1000` (stdio to /dev/null, same process group); stderr `grandchild pid N` |
//! | `--record FILE` | append `{"tool":NAME,"arguments":ARGS,"pid":PID}` per `tools/call` to FILE, before the tool runs (`ARGS` is `{}` when absent) |
//! | `--verbose` | log one stderr line per message handled |
//! | `--help` | usage on stderr, exit 0. Unknown or malformed flags: usage on stderr, exit 2. `--flag=value` also works |
//!
//! By default the server exits 0 on stdin EOF, after giving in-flight tool threads at most 100 ms.
//!
//! # Methods
//!
//! `initialize`, `server/discover`, `ping`, `tools/list`, `tools/call`, `resources/list` (five
//! resources `fake://r/0..4`), `resources/templates/list` (`fake://r/{n}`), `resources/read`
//! (text `resource N`; unknown uri -32002), `resources/subscribe`, `resources/unsubscribe`,
//! `prompts/list` (`greet` with argument `name`), `prompts/get` (`Hello NAME`),
//! `completion/complete` (prefix match over `Alice Bob Carol Dave` for `greet`/`name`, `0..4` for
//! the template), `logging/setLevel`. Notifications handled: `notifications/initialized`,
//! `notifications/cancelled` (stops an in-flight threaded tool; no response is sent; stderr
//! `cancelled ID` with ID as JSON); others are ignored. The server's own requests use integer ids
//! from 0, a separate id space.
//!
//! # Tools (`tools/call {name, arguments}`)
//!
//! Results are `{content:[{type:"text",text}], structuredContent?, isError?}`. Missing or
//! mistyped arguments give JSON-RPC -32602 (`data.tool`); an unknown tool gives a result with
//! `isError: true` and text `unknown tool: NAME`. Tools marked *thread* run on their own thread,
//! so many can be in flight at once and `notifications/cancelled` can stop them.
//!
//! | tool | arguments | behaviour |
//! |---|---|---|
//! | `echo` | `text` | text verbatim (readOnlyHint) |
//! | `add` | `a`, `b` numbers | text of the sum, structuredContent `{"sum"}` (readOnlyHint, outputSchema) |
//! | `structured` | — | structuredContent `{"answer":42,"items":[1,2,3]}`, text is its JSON (readOnlyHint, outputSchema) |
//! | `fail` | `message?` | `isError: true` with the message |
//! | `rpc_error` | `code?` (-32000), `message?` | JSON-RPC error with that code/message, data `{"tool":"rpc_error"}` |
//! | `sleep` *thread* | `ms`, `progress_steps?` | sleeps; with `_meta.progressToken` sends `progress_steps` `notifications/progress` `{progressToken, progress:i, total, message:"step i"}` spread over the sleep; text `slept MS` |
//! | `slow_read` *thread* | as `sleep` | as `sleep`, annotated readOnlyHint (safe to retry) |
//! | `slow_write` *thread* | as `sleep` | as `sleep`, annotated destructiveHint (not safe to retry) |
//! | `late` *thread* | `ms` | sleeps `ms` ignoring `notifications/cancelled`, then answers `late by MS` (a late response) |
//! | `stop_reading` | — | the main loop sleeps forever: stdin is never read again (its pipe fills up); no answer |
//! | `hang` *thread* | — | never answers (until cancelled) |
//! | `crash` | `code?` (3), `after_ms?` (0) | stderr `crashing`, exits with code after after_ms (other requests are served meanwhile); no answer |
//! | `kill_self` | `signal?` (9) | kills itself with that signal; if it survives, isError result |
//! | `garbage` | — | writes the line `this is not json`, then text `ok` |
//! | `oversize` | `bytes` | text of `bytes` `x` characters (at most 1 GiB) |
//! | `stderr_flood` | `bytes` | writes `bytes` bytes of ~100-char lines to stderr, then text `flooded` |
//! | `ask_roots` *thread* | — | sends `roots/list`, waits, text = JSON of the result (or of the error object) |
//! | `ask_sampling` *thread* | — | same with `sampling/createMessage` |
//! | `ask_elicitation` *thread* | — | same with `elicitation/create` (form mode) |
//! | `ping_client` *thread* | — | sends `ping`, text `pong` on a result (isError with the error JSON otherwise) |
//! | `list_changed` | — | adds tool `added_N` (an echo tool), sends `notifications/tools/list_changed`, text `ok` |
//! | `touch` | `uri` | if `uri` is subscribed: `notifications/resources/updated {uri}` and text `ok`; else text `not subscribed: URI` and no notification |
//! | `log` | `level`, `message` | `notifications/message {level, logger:"fake", data:message}` unless below the level set by `logging/setLevel` (text `ok` / `suppressed`) |
//! | `wrong_id` | — | first a response with id 999999, then the real response, text `ok` |
//! | `duplicate_id` | — | the real response (text `ok`) twice |
//! | `string_id_echo` | — | text = the request id as JSON (e.g. `"abc"` with quotes, or `7`) |
//! | `count` | — | per-process counter, returns the new value (1, 2, …) (destructiveHint, idempotentHint:false) |
//! | `set` | `value` | text `ok` (idempotentHint) |
//! | `exit_stdout` | — | closes stdout (no answer), keeps running, exits 0 after 5 s |
//! | `env` | `name` | the env var's value or `<unset>` |
//! | `cwd` | — | current directory |
//! | `client_caps` | — | JSON `{generation, protocolVersion, capabilities, clientInfo}` the server holds for this request |
//!
//! Stderr lines: `fake-server: started pid N` at start, `grandchild pid N`, `crashing`,
//! `dying in handshake`, `cancelled ID`; other diagnostics start with `fake-server: `.

use serde_json::{json, Map, Number, Value};
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Stdout, Write};
use std::os::unix::io::AsRawFd;
use std::process::{self, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

const SERVER_NAME: &str = "mcp-fake-server";
const SERVER_VERSION: &str = "0.1.0";
const STATELESS_VERSION: &str = "2026-07-28";
const HANDSHAKE_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
const LATEST_HANDSHAKE_VERSION: &str = "2025-11-25";
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];
const RESOURCE_COUNT: usize = 5;
const NAMES: [&str; 4] = ["Alice", "Bob", "Carol", "Dave"];
const MAX_OVERSIZE: u64 = 1 << 30;

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const INTERNAL_ERROR: i64 = -32603;
const RESOURCE_NOT_FOUND: i64 = -32002;
const UNSUPPORTED_VERSION: i64 = -32022;

const USAGE: &str =
    "usage: mcp-fake-server [--generation handshake|stateless|both] [--discover-silent]
  [--page-size N] [--cursor-loop] [--extra-tools N] [--slow-start-ms N]
  [--exit-during-handshake CODE] [--hang-handshake] [--stderr-at-start BYTES] [--banner]
  [--crlf] [--bom] [--ignore-stdin-eof] [--ignore-sigterm] [--spawn-grandchild]
  [--record FILE] [--verbose] [--help]";

/// Writes one line to stderr with a single write; errors (closed stderr) are ignored.
fn log_line(args: std::fmt::Arguments) {
    let line = format!("{args}\n");
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

macro_rules! say {
    ($($t:tt)*) => { log_line(format_args!($($t)*)) };
}

/// Locks a mutex, ignoring poisoning (a panicking thread must not take the server down).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum GenerationMode {
    Handshake,
    Stateless,
    #[default]
    Both,
}

#[derive(Debug, Default)]
struct Config {
    generation: GenerationMode,
    discover_silent: bool,
    page_size: usize,
    cursor_loop: bool,
    extra_tools: usize,
    slow_start_ms: u64,
    exit_during_handshake: Option<i32>,
    hang_handshake: bool,
    stderr_at_start: u64,
    banner: bool,
    crlf: bool,
    bom: bool,
    ignore_stdin_eof: bool,
    ignore_sigterm: bool,
    spawn_grandchild: bool,
    record: Option<String>,
    verbose: bool,
}

enum ArgsError {
    Help,
    Bad(String),
}

fn parse_num<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, ArgsError> {
    value
        .parse()
        .map_err(|_| ArgsError::Bad(format!("{flag}: invalid number '{value}'")))
}

impl Config {
    fn from_args<I: Iterator<Item = String>>(mut args: I) -> Result<Self, ArgsError> {
        let mut cfg = Config::default();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| ArgsError::Bad(format!("{flag} needs a value")))
            };
            let switch = |field: &mut bool| match inline {
                None => {
                    *field = true;
                    Ok(())
                }
                Some(_) => Err(ArgsError::Bad(format!("{flag} takes no value"))),
            };
            match flag.as_str() {
                "--generation" => {
                    cfg.generation = match value()?.as_str() {
                        "handshake" => GenerationMode::Handshake,
                        "stateless" => GenerationMode::Stateless,
                        "both" => GenerationMode::Both,
                        other => return Err(ArgsError::Bad(format!("bad --generation '{other}'"))),
                    }
                }
                "--page-size" => cfg.page_size = parse_num(&flag, &value()?)?,
                "--extra-tools" => cfg.extra_tools = parse_num(&flag, &value()?)?,
                "--slow-start-ms" => cfg.slow_start_ms = parse_num(&flag, &value()?)?,
                "--exit-during-handshake" => {
                    cfg.exit_during_handshake = Some(parse_num(&flag, &value()?)?)
                }
                "--stderr-at-start" => cfg.stderr_at_start = parse_num(&flag, &value()?)?,
                "--record" => cfg.record = Some(value()?),
                "--discover-silent" => switch(&mut cfg.discover_silent)?,
                "--cursor-loop" => switch(&mut cfg.cursor_loop)?,
                "--hang-handshake" => switch(&mut cfg.hang_handshake)?,
                "--banner" => switch(&mut cfg.banner)?,
                "--crlf" => switch(&mut cfg.crlf)?,
                "--bom" => switch(&mut cfg.bom)?,
                "--ignore-stdin-eof" => switch(&mut cfg.ignore_stdin_eof)?,
                "--ignore-sigterm" => switch(&mut cfg.ignore_sigterm)?,
                "--spawn-grandchild" => switch(&mut cfg.spawn_grandchild)?,
                "--verbose" => switch(&mut cfg.verbose)?,
                "--help" | "-h" => return Err(ArgsError::Help),
                _ => return Err(ArgsError::Bad(format!("unknown argument '{flag}'"))),
            }
        }
        Ok(cfg)
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state: output, in-flight calls, server-to-client requests
// ---------------------------------------------------------------------------------------------

/// A JSON-RPC error to send back.
#[derive(Debug)]
struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

fn method_not_found(method: &str) -> RpcError {
    RpcError::new(METHOD_NOT_FOUND, format!("method not found: {method}"))
}

fn invalid_params(message: impl Into<String>) -> RpcError {
    RpcError::new(INVALID_PARAMS, message)
}

fn unsupported_version(requested: Option<&Value>) -> RpcError {
    let mut data = json!({ "supported": [STATELESS_VERSION] });
    if let (Some(r), Some(obj)) = (requested, data.as_object_mut()) {
        obj.insert("requested".into(), r.clone());
    }
    RpcError::new(UNSUPPORTED_VERSION, "unsupported protocol version").with_data(data)
}

/// What a request handler produces: `Ok(Some(result))`, an error, or `Ok(None)` = no answer.
type Outcome = Result<Option<Value>, RpcError>;

/// Cancellation flag plus a mailbox for one awaited client response; threads wait on it.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    cv: Condvar,
}

#[derive(Default)]
struct SlotState {
    cancelled: bool,
    reply: Option<Value>,
}

impl Slot {
    fn cancel(&self) {
        lock(&self.state).cancelled = true;
        self.cv.notify_all();
    }

    fn deliver(&self, message: Value) {
        lock(&self.state).reply = Some(message);
        self.cv.notify_all();
    }

    fn is_cancelled(&self) -> bool {
        lock(&self.state).cancelled
    }

    /// Waits until `deadline` (forever if `None`). Returns false if cancelled first.
    fn sleep_until(&self, deadline: Option<Instant>) -> bool {
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

    /// Waits for a delivered response message; `None` if cancelled first.
    fn wait_reply(&self) -> Option<Value> {
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

struct Output {
    w: BufWriter<Stdout>,
    bom_pending: bool,
    closed: bool,
    eol: &'static [u8],
}

/// State shared between the main loop and the tool threads.
struct Shared {
    cfg: Config,
    out: Mutex<Output>,
    record: Option<Mutex<File>>,
    /// Server-to-client requests awaiting a response, by our own integer id.
    pending: Mutex<HashMap<u64, Arc<Slot>>>,
    next_server_id: AtomicU64,
    /// Threaded client requests in flight, keyed by the JSON text of their id.
    inflight: Mutex<HashMap<String, Arc<Slot>>>,
    active: Mutex<usize>,
    active_cv: Condvar,
    counter: AtomicU64,
    added_tools: AtomicUsize,
    subscriptions: Mutex<HashSet<String>>,
    /// Minimum level index set by `logging/setLevel` (None = send everything).
    log_level: Mutex<Option<usize>>,
}

impl Shared {
    /// Writes one full line (terminator added here) with a single write, then flushes.
    fn emit(&self, body: &[u8]) {
        let mut out = lock(&self.out);
        if out.closed {
            return;
        }
        let mut line = Vec::with_capacity(body.len() + 5);
        if out.bom_pending {
            out.bom_pending = false;
            line.extend_from_slice(b"\xEF\xBB\xBF");
        }
        line.extend_from_slice(body);
        line.extend_from_slice(out.eol);
        let _ = out.w.write_all(&line);
        let _ = out.w.flush();
    }

    fn send(&self, message: &Value) {
        match serde_json::to_vec(message) {
            Ok(body) => self.emit(&body),
            Err(e) => say!("fake-server: cannot serialize a message: {e}"),
        }
    }

    fn respond(&self, id: &Value, outcome: Outcome) {
        match outcome {
            Ok(Some(result)) => self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result})),
            Ok(None) => {}
            Err(e) => self.send_error(id, e),
        }
    }

    fn send_error(&self, id: &Value, e: RpcError) {
        let mut error = Map::new();
        error.insert("code".into(), e.code.into());
        error.insert("message".into(), e.message.into());
        if let Some(data) = e.data {
            error.insert("data".into(), data);
        }
        self.send(&json!({"jsonrpc": "2.0", "id": id, "error": error}));
    }

    fn notify(&self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn record(&self, name: &str, args: &Map<String, Value>) {
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

    /// Sends a request to the client and waits for its response message (None if cancelled).
    fn ask_client(&self, slot: &Arc<Slot>, method: &str, params: Option<Value>) -> Option<Value> {
        let id = self.next_server_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.pending).insert(id, Arc::clone(slot));
        let mut request = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let (Some(p), Some(obj)) = (params, request.as_object_mut()) {
            obj.insert("params".into(), p);
        }
        self.send(&request);
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
}

/// Counts a running tool thread; decrements on drop (also when spawning fails).
struct ActiveGuard(Arc<Shared>);

impl ActiveGuard {
    fn new(shared: &Arc<Shared>) -> Self {
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

// ---------------------------------------------------------------------------------------------
// Session and dispatcher
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Generation {
    Handshake,
    Stateless,
}

/// The client as seen by one request (session data or the request's `_meta` envelope).
#[derive(Clone)]
struct ClientCtx {
    generation: Generation,
    protocol_version: Value,
    capabilities: Value,
    client_info: Value,
}

struct Request {
    id: Value,
    method: String,
    params: Map<String, Value>,
}

/// Everything a tool function gets.
struct Call {
    id: Value,
    tool: String,
    args: Map<String, Value>,
    progress_token: Option<Value>,
    client: ClientCtx,
    slot: Arc<Slot>,
}

struct Server {
    shared: Arc<Shared>,
    generation: Option<Generation>,
    initialized: bool,
    handshake_client: ClientCtx,
}

fn server_capabilities() -> Value {
    json!({
        "tools": {"listChanged": true},
        "resources": {"subscribe": true, "listChanged": true},
        "prompts": {"listChanged": true},
        "logging": {},
        "completions": {}
    })
}

fn meta(params: &Map<String, Value>) -> Option<&Map<String, Value>> {
    params.get("_meta").and_then(Value::as_object)
}

impl Server {
    fn run(mut self) -> ! {
        let stdin = io::stdin();
        let mut reader = BufReader::with_capacity(64 * 1024, stdin.lock());
        let mut line = Vec::with_capacity(4096);
        let mut first = true;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    say!("fake-server: stdin read error: {e}");
                    break;
                }
            }
            let mut bytes = line.as_slice();
            if first {
                first = false;
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.handle_line(bytes);
        }
        self.on_stdin_eof()
    }

    fn on_stdin_eof(&self) -> ! {
        if self.shared.cfg.ignore_stdin_eof {
            // SAFETY: installing SIG_IGN for SIGTERM has no memory-safety preconditions.
            unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
            say!("fake-server: stdin closed; ignoring it and SIGTERM");
            loop {
                thread::park();
            }
        }
        let deadline = Instant::now() + Duration::from_millis(100);
        let mut active = lock(&self.shared.active);
        while *active > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            active = match self.shared.active_cv.wait_timeout(active, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        drop(active);
        let _ = lock(&self.shared.out).w.flush();
        if self.shared.cfg.verbose {
            say!("fake-server: stdin closed, exiting");
        }
        process::exit(0)
    }

    /// Parses and validates one line, then routes it as request, notification or response.
    fn handle_line(&mut self, bytes: &[u8]) {
        let shared = Arc::clone(&self.shared);
        let message: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                let err = RpcError::new(PARSE_ERROR, format!("parse error: {e}"));
                return shared.send_error(&Value::Null, err);
            }
        };
        let Value::Object(mut obj) = message else {
            let err = RpcError::new(INVALID_REQUEST, "expected a JSON object (no batches)");
            return shared.send_error(&Value::Null, err);
        };
        let id = obj.remove("id");
        let valid_id = match &id {
            Some(Value::String(_)) => true,
            Some(Value::Number(n)) => n.is_i64() || n.is_u64(),
            _ => false,
        };
        let reply_id = match &id {
            Some(v) if valid_id => v.clone(),
            _ => Value::Null,
        };
        let invalid = |msg: &str| shared.send_error(&reply_id, RpcError::new(INVALID_REQUEST, msg));
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return invalid("jsonrpc must be \"2.0\"");
        }
        match obj.remove("method") {
            Some(Value::String(method)) => {
                let params = match obj.remove("params") {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(m)) => m,
                    Some(_) if id.is_none() => {
                        return say!("fake-server: notification {method} with non-object params")
                    }
                    Some(_) => {
                        let err = invalid_params("params must be an object");
                        return shared.send_error(&reply_id, err);
                    }
                };
                match id {
                    None => self.handle_notification(&method, &params),
                    Some(id) if valid_id => self.handle_request(Request { id, method, params }),
                    Some(_) => invalid("id must be a string or an integer"),
                }
            }
            Some(_) => invalid("method must be a string"),
            None if obj.contains_key("result") || obj.contains_key("error") => {
                self.handle_response(id, obj)
            }
            None => invalid("not a request, notification or response"),
        }
    }

    fn handle_response(&self, id: Option<Value>, mut obj: Map<String, Value>) {
        let slot = id
            .as_ref()
            .and_then(Value::as_u64)
            .and_then(|n| lock(&self.shared.pending).remove(&n));
        match (slot, id) {
            (Some(slot), Some(id)) => {
                obj.insert("id".into(), id);
                slot.deliver(Value::Object(obj));
            }
            (_, id) => say!(
                "fake-server: response to unknown request id {}",
                id.unwrap_or(Value::Null)
            ),
        }
    }

    fn handle_notification(&mut self, method: &str, params: &Map<String, Value>) {
        if self.shared.cfg.verbose {
            say!("fake-server: notification {method}");
        }
        match method {
            "notifications/initialized" => {
                if self.generation == Some(Generation::Handshake) {
                    self.initialized = true;
                } else {
                    say!("fake-server: notifications/initialized outside a handshake; ignored");
                }
            }
            "notifications/cancelled" => {
                let Some(rid) = params.get("requestId") else {
                    return say!("fake-server: notifications/cancelled without requestId");
                };
                let key = rid.to_string();
                let slot = lock(&self.shared.inflight).get(&key).cloned();
                match slot {
                    Some(slot) => {
                        slot.cancel();
                        say!("cancelled {key}");
                    }
                    None if self.shared.cfg.verbose => {
                        say!("fake-server: cancel for a request not in flight: {key}")
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }

    fn handle_request(&mut self, req: Request) {
        let cfg = &self.shared.cfg;
        if cfg.verbose {
            say!("fake-server: request {} {}", req.id, req.method);
        }
        if req.method == "initialize" || req.method == "server/discover" {
            if req.method == "server/discover" && cfg.discover_silent {
                return;
            }
            if let Some(code) = cfg.exit_during_handshake {
                say!("dying in handshake");
                process::exit(code);
            }
            if cfg.hang_handshake {
                return;
            }
        }
        let outcome = match self.gate(&req) {
            Ok(client) => self.dispatch(&req, client),
            Err(e) => Err(e),
        };
        self.shared.respond(&req.id, outcome);
    }

    /// Applies the generation rules; may lock the connection's generation.
    fn gate(&mut self, req: &Request) -> Result<ClientCtx, RpcError> {
        let method = req.method.as_str();
        let enveloped = meta(&req.params).is_some_and(|m| m.contains_key(META_PROTOCOL_VERSION));
        let not_initialized = || {
            RpcError::new(
                INVALID_REQUEST,
                "not initialized: send initialize then notifications/initialized first",
            )
        };
        match self.generation {
            Some(Generation::Stateless) if method == "initialize" => Err(unsupported_version(None)),
            Some(Generation::Stateless) => stateless_ctx(&req.params),
            Some(Generation::Handshake) => match method {
                "server/discover" => Err(method_not_found(method)),
                "initialize" => Err(RpcError::new(INVALID_REQUEST, "already initialized")),
                "ping" => Ok(self.handshake_client.clone()),
                _ if !self.initialized => Err(not_initialized()),
                _ => Ok(self.handshake_client.clone()),
            },
            None => {
                let mode = self.shared.cfg.generation;
                match method {
                    "initialize" if mode == GenerationMode::Stateless => {
                        Err(unsupported_version(None))
                    }
                    "initialize" => Ok(self.handshake_client.clone()),
                    "server/discover" if mode == GenerationMode::Handshake => {
                        Err(method_not_found(method))
                    }
                    "server/discover" if !enveloped && mode == GenerationMode::Both => {
                        Err(method_not_found(method))
                    }
                    "ping" if !enveloped && mode != GenerationMode::Stateless => {
                        Ok(self.handshake_client.clone())
                    }
                    _ if mode == GenerationMode::Handshake
                        || (!enveloped && mode == GenerationMode::Both) =>
                    {
                        Err(not_initialized())
                    }
                    _ => {
                        let ctx = stateless_ctx(&req.params)?;
                        self.generation = Some(Generation::Stateless);
                        if self.shared.cfg.verbose {
                            say!("fake-server: connection locked to {STATELESS_VERSION}");
                        }
                        Ok(ctx)
                    }
                }
            }
        }
    }

    fn dispatch(&mut self, req: &Request, client: ClientCtx) -> Outcome {
        let p = &req.params;
        let shared = Arc::clone(&self.shared);
        let cfg = &shared.cfg;
        let result = match req.method.as_str() {
            "initialize" => self.initialize(p)?,
            "server/discover" => json!({
                "supportedVersions": [STATELESS_VERSION],
                "capabilities": server_capabilities(),
                "_meta": {META_SERVER_INFO: {"name": SERVER_NAME, "version": SERVER_VERSION}}
            }),
            "ping" if client.generation == Generation::Stateless => {
                return Err(method_not_found("ping"))
            }
            "ping" => json!({}),
            "tools/list" => paginate(cfg, p, "tools", self.tool_list())?,
            "tools/call" => return self.tools_call(req, client),
            "resources/list" => paginate(cfg, p, "resources", resource_list())?,
            "resources/templates/list" => paginate(cfg, p, "resourceTemplates", template_list())?,
            "resources/read" => resource_read(p)?,
            "resources/subscribe" => {
                lock(&shared.subscriptions).insert(uri_param(p)?.to_string());
                json!({})
            }
            "resources/unsubscribe" => {
                lock(&shared.subscriptions).remove(uri_param(p)?);
                json!({})
            }
            "prompts/list" => paginate(cfg, p, "prompts", prompt_list())?,
            "prompts/get" => prompt_get(p)?,
            "completion/complete" => complete(p)?,
            "logging/setLevel" => {
                let level = p.get("level").and_then(Value::as_str).unwrap_or("");
                let idx = LOG_LEVELS.iter().position(|l| *l == level);
                let idx = idx.ok_or_else(|| invalid_params(format!("bad level '{level}'")))?;
                *lock(&shared.log_level) = Some(idx);
                json!({})
            }
            other => return Err(method_not_found(other)),
        };
        Ok(Some(result))
    }

    fn initialize(&mut self, p: &Map<String, Value>) -> Result<Value, RpcError> {
        let offered = p
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid_params("initialize: protocolVersion must be a string"))?;
        let capabilities = match p.get("capabilities") {
            None | Some(Value::Null) => json!({}),
            Some(c @ Value::Object(_)) => c.clone(),
            Some(_) => return Err(invalid_params("initialize: capabilities must be an object")),
        };
        let agreed = if HANDSHAKE_VERSIONS.contains(&offered) {
            offered
        } else {
            LATEST_HANDSHAKE_VERSION
        };
        self.generation = Some(Generation::Handshake);
        self.handshake_client = ClientCtx {
            generation: Generation::Handshake,
            protocol_version: agreed.into(),
            capabilities,
            client_info: p.get("clientInfo").cloned().unwrap_or(Value::Null),
        };
        Ok(json!({
            "protocolVersion": agreed,
            "capabilities": server_capabilities(),
            "serverInfo": {"name": SERVER_NAME, "version": SERVER_VERSION},
            "instructions": "Fake MCP server for mcp-pool tests. Tools are documented in \
                             src/bin/mcp-fake-server.rs."
        }))
    }

    fn tool_list(&self) -> Vec<Value> {
        let mut tools: Vec<Value> = TOOLS.iter().map(ToolDef::to_json).collect();
        let added = self.shared.added_tools.load(Ordering::SeqCst);
        let dynamic = (0..self.shared.cfg.extra_tools)
            .map(|i| format!("extra_{i}"))
            .chain((0..added).map(|i| format!("added_{i}")));
        tools.extend(dynamic.map(|name| {
            json!({
                "name": name,
                "description": "Echoes `text` (or its arguments as JSON).",
                "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}
            })
        }));
        tools
    }

    /// Returns (function, runs-on-own-thread) for a tool name.
    fn find_tool(&self, name: &str) -> Option<(ToolFn, bool)> {
        if let Some(def) = TOOLS.iter().find(|t| t.name == name) {
            return Some((def.run, def.threaded));
        }
        let index_below = |prefix: &str, limit: usize| {
            name.strip_prefix(prefix)
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n < limit)
        };
        let added = self.shared.added_tools.load(Ordering::SeqCst);
        if index_below("extra_", self.shared.cfg.extra_tools) || index_below("added_", added) {
            return Some((tool_dynamic_echo, false));
        }
        None
    }

    fn tools_call(&self, req: &Request, client: ClientCtx) -> Outcome {
        let p = &req.params;
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid_params("tools/call: name must be a string"))?;
        let args = match p.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(invalid_params("tools/call: arguments must be an object")),
        };
        self.shared.record(name, &args);
        let call = Call {
            id: req.id.clone(),
            tool: name.to_string(),
            args,
            progress_token: meta(p).and_then(|m| m.get("progressToken")).cloned(),
            client,
            slot: Arc::new(Slot::default()),
        };
        match self.find_tool(name) {
            None => Ok(Some(error_result(&format!("unknown tool: {name}")))),
            Some((run, true)) => {
                self.spawn_call(name, run, call);
                Ok(None)
            }
            Some((run, false)) => run(&self.shared, &call),
        }
    }

    /// Runs a tool on its own thread; it answers unless cancelled meanwhile.
    fn spawn_call(&self, name: &str, run: ToolFn, call: Call) {
        let key = call.id.to_string();
        let id = call.id.clone();
        let previous = lock(&self.shared.inflight).insert(key.clone(), Arc::clone(&call.slot));
        if previous.is_some() {
            say!("fake-server: request id {key} reused while still in flight");
        }
        let guard = ActiveGuard::new(&self.shared);
        let spawned = thread::Builder::new()
            .name(format!("tool-{name}"))
            .spawn(move || {
                let shared = &guard.0;
                let outcome = run(shared, &call);
                {
                    let mut inflight = lock(&shared.inflight);
                    if inflight
                        .get(&key)
                        .is_some_and(|s| Arc::ptr_eq(s, &call.slot))
                    {
                        inflight.remove(&key);
                    }
                }
                if !call.slot.is_cancelled() {
                    shared.respond(&call.id, outcome);
                }
            });
        if let Err(e) = spawned {
            lock(&self.shared.inflight).remove(&id.to_string());
            let err = RpcError::new(INTERNAL_ERROR, format!("cannot spawn a thread: {e}"));
            self.shared.send_error(&id, err);
        }
    }
}

/// Validates the per-request envelope and builds the client context from it.
fn stateless_ctx(params: &Map<String, Value>) -> Result<ClientCtx, RpcError> {
    let m = meta(params);
    match m.and_then(|m| m.get(META_PROTOCOL_VERSION)) {
        None => Err(invalid_params(format!(
            "missing params._meta[\"{META_PROTOCOL_VERSION}\"] (required by {STATELESS_VERSION})"
        ))),
        Some(Value::String(v)) if v == STATELESS_VERSION => Ok(ClientCtx {
            generation: Generation::Stateless,
            protocol_version: STATELESS_VERSION.into(),
            capabilities: m
                .and_then(|m| m.get(META_CLIENT_CAPS))
                .cloned()
                .unwrap_or_else(|| json!({})),
            client_info: m
                .and_then(|m| m.get(META_CLIENT_INFO))
                .cloned()
                .unwrap_or(Value::Null),
        }),
        Some(other) => Err(unsupported_version(Some(other))),
    }
}

// ---------------------------------------------------------------------------------------------
// Lists, pagination, resources, prompts, completion
// ---------------------------------------------------------------------------------------------

/// Cuts `items` into pages of `--page-size`; cursors are `page-K`, K counted from 1.
fn paginate(
    cfg: &Config,
    params: &Map<String, Value>,
    key: &str,
    items: Vec<Value>,
) -> Result<Value, RpcError> {
    let size = if cfg.page_size == 0 {
        items.len().max(1)
    } else {
        cfg.page_size
    };
    let pages = items.len().div_ceil(size).max(1);
    let page = match params.get("cursor") {
        None | Some(Value::Null) => 1,
        Some(c) => c
            .as_str()
            .and_then(|c| c.strip_prefix("page-"))
            .and_then(|k| k.parse::<usize>().ok())
            .filter(|k| (1..=pages).contains(k))
            .ok_or_else(|| invalid_params(format!("invalid cursor {c}")))?,
    };
    let start = (page - 1) * size;
    let slice: Vec<Value> = items.into_iter().skip(start).take(size).collect();
    let mut result = Map::new();
    result.insert(key.into(), Value::Array(slice));
    if page < pages {
        result.insert("nextCursor".into(), format!("page-{}", page + 1).into());
    } else if cfg.cursor_loop {
        result.insert("nextCursor".into(), "page-1".into());
    }
    Ok(Value::Object(result))
}

fn resource_list() -> Vec<Value> {
    (0..RESOURCE_COUNT)
        .map(|n| {
            json!({
                "uri": format!("fake://r/{n}"),
                "name": format!("r{n}"),
                "description": format!("Fake resource {n}"),
                "mimeType": "text/plain"
            })
        })
        .collect()
}

fn template_list() -> Vec<Value> {
    vec![json!({
        "uriTemplate": "fake://r/{n}",
        "name": "r",
        "description": "Fake resources by number",
        "mimeType": "text/plain"
    })]
}

fn uri_param(p: &Map<String, Value>) -> Result<&str, RpcError> {
    p.get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_params("uri must be a string"))
}

fn resource_read(p: &Map<String, Value>) -> Result<Value, RpcError> {
    let uri = uri_param(p)?;
    let n = uri
        .strip_prefix("fake://r/")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n < RESOURCE_COUNT)
        .ok_or_else(|| {
            RpcError::new(RESOURCE_NOT_FOUND, "resource not found").with_data(json!({"uri": uri}))
        })?;
    Ok(json!({"contents": [{
        "uri": uri, "mimeType": "text/plain", "text": format!("resource {n}")
    }]}))
}

fn prompt_list() -> Vec<Value> {
    vec![json!({
        "name": "greet",
        "description": "Greets someone",
        "arguments": [{"name": "name", "description": "Who to greet", "required": true}]
    })]
}

fn prompt_get(p: &Map<String, Value>) -> Result<Value, RpcError> {
    let name = p.get("name").and_then(Value::as_str).unwrap_or("");
    if name != "greet" {
        return Err(invalid_params(format!("unknown prompt '{name}'")));
    }
    let who = p
        .get("arguments")
        .and_then(|a| a.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_params("prompt greet: argument 'name' is required"))?;
    Ok(json!({
        "description": "A greeting",
        "messages": [{"role": "user", "content": {"type": "text", "text": format!("Hello {who}")}}]
    }))
}

fn complete(p: &Map<String, Value>) -> Result<Value, RpcError> {
    let reference = p
        .get("ref")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid_params("completion/complete: ref must be an object"))?;
    let value = p
        .get("argument")
        .and_then(|a| a.get("value"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_params("completion/complete: argument.value must be a string"))?;
    let kind = reference.get("type").and_then(Value::as_str);
    let candidates: Vec<String> = match kind {
        Some("ref/prompt") => NAMES.iter().map(|s| s.to_string()).collect(),
        Some("ref/resource") => (0..RESOURCE_COUNT).map(|n| n.to_string()).collect(),
        _ => Vec::new(),
    };
    let needle = value.to_lowercase();
    let values: Vec<String> = candidates
        .into_iter()
        .filter(|c| c.to_lowercase().starts_with(&needle))
        .collect();
    Ok(json!({"completion": {"values": values, "total": values.len(), "hasMore": false}}))
}

// ---------------------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------------------

type ToolFn = fn(&Shared, &Call) -> Outcome;

#[derive(Clone, Copy)]
enum Hints {
    Plain,
    ReadOnly,
    Destructive,
    Idempotent,
}

struct Param {
    name: &'static str,
    /// JSON Schema type, or "" for any value.
    ty: &'static str,
    required: bool,
}

const fn req(name: &'static str, ty: &'static str) -> Param {
    Param {
        name,
        ty,
        required: true,
    }
}

const fn opt(name: &'static str, ty: &'static str) -> Param {
    Param {
        name,
        ty,
        required: false,
    }
}

struct ToolDef {
    name: &'static str,
    description: &'static str,
    params: &'static [Param],
    hints: Hints,
    threaded: bool,
    run: ToolFn,
}

impl ToolDef {
    fn to_json(&self) -> Value {
        let mut properties = Map::new();
        for p in self.params {
            let schema = if p.ty.is_empty() {
                json!({})
            } else {
                json!({ "type": p.ty })
            };
            properties.insert(p.name.into(), schema);
        }
        let required: Vec<&str> = self
            .params
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name)
            .collect();
        let mut schema = json!({"type": "object", "properties": properties});
        if let (false, Some(obj)) = (required.is_empty(), schema.as_object_mut()) {
            obj.insert("required".into(), json!(required));
        }
        let mut tool = json!({
            "name": self.name, "description": self.description, "inputSchema": schema
        });
        let annotations = match self.hints {
            Hints::Plain => Value::Null,
            Hints::ReadOnly => json!({"readOnlyHint": true}),
            Hints::Destructive => {
                json!({"readOnlyHint": false, "idempotentHint": false, "destructiveHint": true})
            }
            Hints::Idempotent => {
                json!({"readOnlyHint": false, "idempotentHint": true, "destructiveHint": false})
            }
        };
        let output_schema = match self.name {
            "add" => json!({
                "type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]
            }),
            "structured" => json!({"type": "object", "properties": {
                "answer": {"type": "integer"},
                "items": {"type": "array", "items": {"type": "integer"}}
            }, "required": ["answer", "items"]}),
            _ => Value::Null,
        };
        if let Some(obj) = tool.as_object_mut() {
            for (key, value) in [
                ("annotations", annotations),
                ("outputSchema", output_schema),
            ] {
                if !value.is_null() {
                    obj.insert(key.into(), value);
                }
            }
        }
        tool
    }
}

/// `tool!("name" => function, hints [+ threaded], "description", [params])`.
macro_rules! tool {
    ($name:literal => $run:ident, $hints:ident $(+ $t:ident)?, $desc:literal, [$($p:expr),*]) => {
        ToolDef {
            name: $name,
            description: $desc,
            params: &[$($p),*],
            hints: Hints::$hints,
            threaded: tool!(@threaded $($t)?),
            run: $run,
        }
    };
    (@threaded) => { false };
    (@threaded threaded) => { true };
}

#[rustfmt::skip]
static TOOLS: &[ToolDef] = &[
    tool!("echo" => tool_echo, ReadOnly, "Returns `text` verbatim.", [req("text", "string")]),
    tool!("add" => tool_add, ReadOnly, "Adds two numbers.",
        [req("a", "number"), req("b", "number")]),
    tool!("structured" => tool_structured, ReadOnly, "Returns structured content.", []),
    tool!("fail" => tool_fail, Plain, "Returns isError with `message`.",
        [opt("message", "string")]),
    tool!("rpc_error" => tool_rpc_error, Plain, "Answers a JSON-RPC error.",
        [opt("code", "integer"), opt("message", "string")]),
    tool!("sleep" => tool_sleep, Plain + threaded, "Sleeps `ms`, with optional progress.",
        [req("ms", "integer"), opt("progress_steps", "integer")]),
    tool!("slow_read" => tool_sleep, ReadOnly + threaded, "Like `sleep`, annotated read-only.",
        [req("ms", "integer"), opt("progress_steps", "integer")]),
    tool!("slow_write" => tool_sleep, Destructive + threaded, "Like `sleep`, annotated destructive.",
        [req("ms", "integer"), opt("progress_steps", "integer")]),
    tool!("hang" => tool_hang, Plain + threaded, "Never answers.", []),
    tool!("late" => tool_late, Plain + threaded, "Sleeps `ms`, ignoring cancellation.",
        [req("ms", "integer")]),
    tool!("stop_reading" => tool_stop_reading, Plain, "Stops reading stdin for good.", []),
    tool!("crash" => tool_crash, Plain, "Exits the process without answering.",
        [opt("code", "integer"), opt("after_ms", "integer")]),
    tool!("kill_self" => tool_kill_self, Plain, "Kills itself with `signal`.",
        [opt("signal", "integer")]),
    tool!("garbage" => tool_garbage, Plain, "Writes a non-JSON line, then answers.", []),
    tool!("oversize" => tool_oversize, Plain, "Answers `bytes` x characters.",
        [req("bytes", "integer")]),
    tool!("stderr_flood" => tool_stderr_flood, Plain, "Writes `bytes` bytes to stderr.",
        [req("bytes", "integer")]),
    tool!("ask_roots" => tool_ask_roots, Plain + threaded, "Sends roots/list to the client.", []),
    tool!("ask_sampling" => tool_ask_sampling, Plain + threaded,
        "Sends sampling/createMessage to the client.", []),
    tool!("ask_elicitation" => tool_ask_elicitation, Plain + threaded,
        "Sends elicitation/create to the client.", []),
    tool!("ping_client" => tool_ping_client, Plain + threaded, "Pings the client.", []),
    tool!("list_changed" => tool_list_changed, Plain, "Adds a tool, sends list_changed.", []),
    tool!("touch" => tool_touch, Plain, "Sends resources/updated for a subscribed `uri`.",
        [req("uri", "string")]),
    tool!("log" => tool_log, Plain, "Sends notifications/message.",
        [req("level", "string"), req("message", "")]),
    tool!("wrong_id" => tool_wrong_id, Plain, "Sends a response with a stray id first.", []),
    tool!("duplicate_id" => tool_duplicate_id, Plain, "Sends its response twice.", []),
    tool!("string_id_echo" => tool_string_id_echo, Plain, "Returns the request id as JSON.", []),
    tool!("count" => tool_count, Destructive, "Increments a per-process counter.", []),
    tool!("set" => tool_set, Idempotent, "Idempotent setter.", [req("value", "")]),
    tool!("exit_stdout" => tool_exit_stdout, Plain, "Closes stdout, exits 5 s later.", []),
    tool!("env" => tool_env, Plain, "Returns an environment variable.", [req("name", "string")]),
    tool!("cwd" => tool_cwd, Plain, "Returns the current directory.", []),
    tool!("client_caps" => tool_client_caps, Plain, "What the server knows of the client.", []),
];

fn text_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}]})
}

fn error_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}

fn ok(text: &str) -> Outcome {
    Ok(Some(text_result(text)))
}

fn arg<'a>(call: &'a Call, name: &str) -> Option<&'a Value> {
    call.args.get(name).filter(|v| !v.is_null())
}

fn bad_arg(call: &Call, name: &str, expected: &str) -> RpcError {
    let message = format!("{}: argument '{name}' must be {expected}", call.tool);
    invalid_params(message).with_data(json!({"tool": call.tool}))
}

fn arg_str<'a>(call: &'a Call, name: &str) -> Result<&'a str, RpcError> {
    arg(call, name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad_arg(call, name, "a string"))
}

fn arg_u64(call: &Call, name: &str, default: Option<u64>) -> Result<u64, RpcError> {
    match (arg(call, name), default) {
        (None, Some(d)) => Ok(d),
        (v, _) => v
            .and_then(Value::as_u64)
            .ok_or_else(|| bad_arg(call, name, "a non-negative integer")),
    }
}

fn arg_i64(call: &Call, name: &str, default: i64) -> Result<i64, RpcError> {
    arg(call, name).map_or(Ok(default), |v| {
        v.as_i64().ok_or_else(|| bad_arg(call, name, "an integer"))
    })
}

fn tool_echo(_: &Shared, call: &Call) -> Outcome {
    ok(arg_str(call, "text")?)
}

fn tool_dynamic_echo(_: &Shared, call: &Call) -> Outcome {
    match arg(call, "text").and_then(Value::as_str) {
        Some(text) => ok(text),
        None => ok(&Value::Object(call.args.clone()).to_string()),
    }
}

fn tool_add(_: &Shared, call: &Call) -> Outcome {
    let number = |name: &str| match arg(call, name) {
        Some(Value::Number(n)) => Ok(n.clone()),
        _ => Err(bad_arg(call, name, "a number")),
    };
    let (a, b) = (number("a")?, number("b")?);
    let sum = match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) if x.checked_add(y).is_some() => Some(Number::from(x + y)),
        _ => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(x, y)| Number::from_f64(x + y)),
    };
    match sum {
        Some(sum) => Ok(Some(json!({
            "content": [{"type": "text", "text": sum.to_string()}],
            "structuredContent": {"sum": sum}
        }))),
        None => Ok(Some(error_result("the sum is not a finite number"))),
    }
}

fn tool_structured(_: &Shared, _: &Call) -> Outcome {
    let value = json!({"answer": 42, "items": [1, 2, 3]});
    Ok(Some(json!({
        "content": [{"type": "text", "text": value.to_string()}],
        "structuredContent": value
    })))
}

fn tool_fail(_: &Shared, call: &Call) -> Outcome {
    let message = arg(call, "message").and_then(Value::as_str);
    Ok(Some(error_result(message.unwrap_or("tool failed"))))
}

fn tool_rpc_error(_: &Shared, call: &Call) -> Outcome {
    let code = arg_i64(call, "code", -32000)?;
    let message = arg(call, "message").and_then(Value::as_str);
    let message = message.unwrap_or("error requested by rpc_error");
    Err(RpcError::new(code, message).with_data(json!({"tool": "rpc_error"})))
}

fn tool_sleep(shared: &Shared, call: &Call) -> Outcome {
    let ms = arg_u64(call, "ms", None)?;
    let steps = match call.progress_token {
        Some(_) => arg_u64(call, "progress_steps", Some(0))?,
        None => 0,
    };
    let start = Instant::now();
    let at = |elapsed_ms: u64| start.checked_add(Duration::from_millis(elapsed_ms));
    for i in 1..=steps {
        let elapsed = u128::from(ms) * u128::from(i) / u128::from(steps);
        if !call
            .slot
            .sleep_until(at(u64::try_from(elapsed).unwrap_or(ms)))
        {
            return Ok(None);
        }
        shared.notify(
            "notifications/progress",
            json!({"progressToken": call.progress_token, "progress": i, "total": steps,
                   "message": format!("step {i}")}),
        );
    }
    if !call.slot.sleep_until(at(ms)) {
        return Ok(None);
    }
    ok(&format!("slept {ms}"))
}

fn tool_hang(_: &Shared, call: &Call) -> Outcome {
    call.slot.sleep_until(None);
    Ok(None)
}

fn tool_late(shared: &Shared, call: &Call) -> Outcome {
    // Ignores `notifications/cancelled`: the answer comes late, after the client gave up
    // (sent here, since the dispatcher drops the answers of cancelled calls).
    let ms = arg_u64(call, "ms", None)?;
    thread::sleep(Duration::from_millis(ms));
    shared.respond(&call.id, ok(&format!("late by {ms}")));
    Ok(None)
}

fn tool_stop_reading(_: &Shared, _: &Call) -> Outcome {
    // Runs on the main loop: nothing more is read from stdin, ever.
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

fn tool_crash(_: &Shared, call: &Call) -> Outcome {
    let code = arg_i64(call, "code", 3)?;
    let code = i32::try_from(code).map_err(|_| bad_arg(call, "code", "a 32-bit integer"))?;
    let after_ms = arg_u64(call, "after_ms", Some(0))?;
    say!("crashing");
    let die = move || {
        thread::sleep(Duration::from_millis(after_ms));
        process::exit(code)
    };
    if after_ms == 0 || thread::Builder::new().spawn(die).is_err() {
        die();
    }
    Ok(None)
}

fn tool_kill_self(_: &Shared, call: &Call) -> Outcome {
    let signal = arg_i64(call, "signal", 9)?;
    let signal = i32::try_from(signal).map_err(|_| bad_arg(call, "signal", "a signal number"))?;
    // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
    let rc = unsafe { libc::kill(libc::getpid(), signal) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Ok(Some(error_result(&format!("kill({signal}) failed: {err}"))));
    }
    thread::sleep(Duration::from_millis(100));
    Ok(Some(error_result(&format!(
        "signal {signal} did not terminate the process"
    ))))
}

fn tool_garbage(shared: &Shared, _: &Call) -> Outcome {
    shared.emit(b"this is not json");
    ok("ok")
}

fn tool_oversize(_: &Shared, call: &Call) -> Outcome {
    let bytes = arg_u64(call, "bytes", None)?;
    if bytes > MAX_OVERSIZE {
        return Err(bad_arg(call, "bytes", "at most 1 GiB"));
    }
    ok(&"x".repeat(usize::try_from(bytes).unwrap_or(0)))
}

/// Writes exactly `bytes` bytes of ~100-character lines to stderr.
fn flood_stderr(bytes: u64) {
    let mut err = BufWriter::with_capacity(64 * 1024, io::stderr().lock());
    let mut left = bytes;
    let mut n = 0u64;
    while left > 0 {
        let mut line = format!("fake-server: stderr flood line {n:08} ");
        let len = usize::try_from(left.min(100)).unwrap_or(100);
        line.truncate(len - 1);
        while line.len() < len - 1 {
            line.push('.');
        }
        line.push('\n');
        if err.write_all(line.as_bytes()).is_err() {
            return;
        }
        left -= len as u64;
        n += 1;
    }
    let _ = err.flush();
}

fn tool_stderr_flood(_: &Shared, call: &Call) -> Outcome {
    flood_stderr(arg_u64(call, "bytes", None)?);
    ok("flooded")
}

/// Shared body of the ask_* tools: text is the JSON of the result, or of the error object.
fn ask_tool(shared: &Shared, call: &Call, method: &str, params: Value) -> Outcome {
    let Some(reply) = shared.ask_client(&call.slot, method, Some(params)) else {
        return Ok(None);
    };
    let shown = reply
        .get("result")
        .or_else(|| reply.get("error"))
        .unwrap_or(&reply);
    ok(&shown.to_string())
}

fn tool_ask_roots(shared: &Shared, call: &Call) -> Outcome {
    ask_tool(shared, call, "roots/list", json!({}))
}

fn tool_ask_sampling(shared: &Shared, call: &Call) -> Outcome {
    let params = json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}],
        "maxTokens": 10
    });
    ask_tool(shared, call, "sampling/createMessage", params)
}

fn tool_ask_elicitation(shared: &Shared, call: &Call) -> Outcome {
    let params = json!({
        "mode": "form",
        "message": "name?",
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}
    });
    ask_tool(shared, call, "elicitation/create", params)
}

fn tool_ping_client(shared: &Shared, call: &Call) -> Outcome {
    let Some(reply) = shared.ask_client(&call.slot, "ping", None) else {
        return Ok(None);
    };
    match reply.get("result") {
        Some(_) => ok("pong"),
        None => Ok(Some(error_result(
            &reply.get("error").unwrap_or(&reply).to_string(),
        ))),
    }
}

fn tool_list_changed(shared: &Shared, _: &Call) -> Outcome {
    shared.added_tools.fetch_add(1, Ordering::SeqCst);
    shared.notify("notifications/tools/list_changed", json!({}));
    ok("ok")
}

fn tool_touch(shared: &Shared, call: &Call) -> Outcome {
    let uri = arg_str(call, "uri")?;
    if !lock(&shared.subscriptions).contains(uri) {
        return ok(&format!("not subscribed: {uri}"));
    }
    shared.notify("notifications/resources/updated", json!({"uri": uri}));
    ok("ok")
}

fn tool_log(shared: &Shared, call: &Call) -> Outcome {
    let level = arg_str(call, "level")?;
    let index = LOG_LEVELS.iter().position(|l| *l == level);
    let index = index.ok_or_else(|| bad_arg(call, "level", "a syslog level name"))?;
    let message = arg(call, "message").ok_or_else(|| bad_arg(call, "message", "present"))?;
    if lock(&shared.log_level).is_some_and(|min| index < min) {
        return ok("suppressed");
    }
    let params = json!({"level": level, "logger": "fake", "data": message});
    shared.notify("notifications/message", params);
    ok("ok")
}

fn tool_wrong_id(shared: &Shared, _: &Call) -> Outcome {
    shared.respond(&json!(999_999), ok("wrong id"));
    ok("ok")
}

fn tool_duplicate_id(shared: &Shared, call: &Call) -> Outcome {
    shared.respond(&call.id, ok("ok"));
    ok("ok")
}

fn tool_string_id_echo(_: &Shared, call: &Call) -> Outcome {
    ok(&call.id.to_string())
}

fn tool_count(shared: &Shared, _: &Call) -> Outcome {
    ok(&(shared.counter.fetch_add(1, Ordering::SeqCst) + 1).to_string())
}

fn tool_set(_: &Shared, call: &Call) -> Outcome {
    arg(call, "value").ok_or_else(|| bad_arg(call, "value", "present"))?;
    ok("ok")
}

fn tool_exit_stdout(shared: &Shared, _: &Call) -> Outcome {
    {
        let mut out = lock(&shared.out);
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
    let exit_later = || {
        thread::sleep(Duration::from_secs(5));
        process::exit(0)
    };
    if thread::Builder::new().spawn(exit_later).is_err() {
        exit_later();
    }
    Ok(None)
}

fn tool_env(_: &Shared, call: &Call) -> Outcome {
    let name = arg_str(call, "name")?;
    let valid = !name.is_empty() && !name.contains(['=', '\0']);
    match std::env::var_os(name).filter(|_| valid) {
        Some(v) => ok(&v.to_string_lossy()),
        None => ok("<unset>"),
    }
}

fn tool_cwd(_: &Shared, _: &Call) -> Outcome {
    match std::env::current_dir() {
        Ok(dir) => ok(&dir.display().to_string()),
        Err(e) => Ok(Some(error_result(&format!("current_dir: {e}")))),
    }
}

fn tool_client_caps(_: &Shared, call: &Call) -> Outcome {
    let generation = match call.client.generation {
        Generation::Handshake => "handshake",
        Generation::Stateless => "stateless",
    };
    let value = json!({
        "generation": generation,
        "protocolVersion": call.client.protocol_version,
        "capabilities": call.client.capabilities,
        "clientInfo": call.client.client_info
    });
    Ok(Some(json!({
        "content": [{"type": "text", "text": value.to_string()}],
        "structuredContent": value
    })))
}

// ---------------------------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------------------------

fn main() {
    main_with_args(std::env::args_os().skip(1));
}

/// Runs the server with these arguments (without the program name). The demo example embeds
/// this file and calls it to act as the server.
pub fn main_with_args(args: impl Iterator<Item = std::ffi::OsString>) {
    let args = args.map(|a| a.to_string_lossy().into_owned());
    let cfg = match Config::from_args(args) {
        Ok(cfg) => cfg,
        Err(ArgsError::Help) => {
            say!("{USAGE}");
            process::exit(0)
        }
        Err(ArgsError::Bad(msg)) => {
            say!("mcp-fake-server: {msg}\n{USAGE}");
            process::exit(2)
        }
    };
    say!("fake-server: started pid {}", process::id());

    let record = cfg.record.as_ref().map(|path| {
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => Mutex::new(f),
            Err(e) => {
                say!("mcp-fake-server: cannot open record file {path}: {e}");
                process::exit(2)
            }
        }
    });
    if cfg.spawn_grandchild {
        // Spawned before SIGTERM is ignored, so the grandchild keeps the default disposition.
        let child = Command::new("sleep")
            .arg("1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(child) => say!("grandchild pid {}", child.id()),
            Err(e) => say!("fake-server: cannot spawn the grandchild: {e}"),
        }
    }
    if cfg.ignore_sigterm {
        // SAFETY: installing SIG_IGN for SIGTERM has no memory-safety preconditions.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    if cfg.slow_start_ms > 0 {
        thread::sleep(Duration::from_millis(cfg.slow_start_ms));
    }
    if cfg.stderr_at_start > 0 {
        flood_stderr(cfg.stderr_at_start);
    }

    let banner = cfg.banner;
    let output = Output {
        w: BufWriter::with_capacity(64 * 1024, io::stdout()),
        bom_pending: cfg.bom,
        closed: false,
        eol: if cfg.crlf { b"\r\n" } else { b"\n" },
    };
    let shared = Arc::new(Shared {
        cfg,
        out: Mutex::new(output),
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
    });
    if banner {
        shared.emit(b"fake server banner");
    }
    let server = Server {
        shared,
        generation: None,
        initialized: false,
        handshake_client: ClientCtx {
            generation: Generation::Handshake,
            protocol_version: Value::Null,
            capabilities: json!({}),
            client_info: Value::Null,
        },
    };
    server.run()
}
