//! HTTP mode (`--http ADDR`): a minimal hand-written HTTP/1.1 server (std only, a thread per
//! connection, keep-alive, `Content-Length` and chunked request bodies) serving the MCP
//! endpoint `/mcp` with every tool and generation behaviour of stdio mode. It prints
//! `listening on http://HOST:PORT/mcp` on stdout once listening, then nothing else there; it
//! exits on SIGTERM or when stdin reaches EOF.
//!
//! * **Streamable HTTP, handshake generation (2025-11-25)**: an `initialize` POST creates a
//!   session (its own server state, as one stdio connection) and answers `Mcp-Session-Id`;
//!   later requests need it (missing: 400, unknown or ended: 404); `MCP-Protocol-Version`,
//!   when sent, must be a handshake version (else 400). A request is answered with JSON, or
//!   with SSE when something comes before its response (progress, log, the `ask_*` tools'
//!   server requests) or with `--http-sse`; a notification or response POST gets 202 (a
//!   response reaches the tool waiting for it; `notifications/cancelled` also ends the
//!   request's stream). GET (`Accept: text/event-stream`) opens the standalone stream (one at
//!   a time, else 409) for messages tied to no open request (list changes, resource updates,
//!   task status); they are buffered while no GET is open. DELETE ends the session (200).
//!   Every SSE stream starts with a priming event (`id:` and empty `data:`); ids are
//!   `STREAM-N`, unique in the process. GET with `Last-Event-ID` replays the events after it
//!   on that event's stream and continues it (409 while another connection writes it; an
//!   unknown id opens the standalone stream). A client disconnect is not a cancellation.
//! * **Per-request generation (2026-07-28)**: no sessions (an `Mcp-Session-Id` is ignored);
//!   one server state for all such requests. A request must carry `MCP-Protocol-Version`
//!   equal to `_meta["io.modelcontextprotocol/protocolVersion"]`, `Mcp-Method` equal to
//!   `method`, `Mcp-Name` equal to `params.name` (`tools/call`, `prompts/get`) or
//!   `params.uri` (`resources/read`), and an `Mcp-Param-{Name}` header for each argument its
//!   tool's `inputSchema` marks with `x-mcp-header` (reached through `properties`) that is
//!   present and not null, and none for the others; `=?base64?…?=` values are decoded, and
//!   integers compare numerically. Otherwise 400 with -32020 (HeaderMismatch). Errors -32022,
//!   -32021 (and -32700/-32600) are 400 and -32601 is 404 when they are the answer. JSON by
//!   default, SSE when notifications come first or with `--http-sse`; `subscriptions/listen`
//!   is an SSE stream that stays open. The client closing the connection before the
//!   response cancels the request (as `notifications/cancelled` in stdio: stderr
//!   `cancelled ID`). Server requests are never sent: the tool gets a -32601 error as the
//!   answer. GET and DELETE: 405.
//! * With `--generation both`, a POST without a session id that is an `initialize` creates a
//!   handshake session; one carrying the envelope (or a non-handshake
//!   `MCP-Protocol-Version`), and any notification, is served per-request; anything else is
//!   400 (missing session id).
//! * **HTTP+SSE (2024-11-05)**, `--http-legacy`: GET `/sse` or `/mcp` opens a session's SSE
//!   stream (close-delimited) whose first event is `endpoint` with data
//!   `/messages?session=ID`; POSTs there get 202 and everything the server sends goes on the
//!   stream as `message` events; the session ends with the stream. POST `/mcp`: 405.
//!
//! All modes: POSTs to `/mcp` need `Content-Type: application/json` (415) and an `Accept`
//! listing `application/json` and `text/event-stream` (406); an `Origin` other than
//! localhost, 127.0.0.1 or [::1] gets 403; `GET /.well-known/oauth-protected-resource`
//! answers a small RFC 9728 document. Malformed HTTP gets 400 and the connection is closed.
//! Stderr per HTTP request: `auth header present` (and `fake-server: authorization header
//! length N`) or `auth header absent`; the header's value is never logged. The stdout
//! framing flags (`--banner`, `--crlf`, `--bom`) do nothing in HTTP mode.

use serde_json::{json, Map, Value};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::state::lock;
use super::{parse_num, ArgsError, Config};

mod faults;
mod headers;
mod hub;
mod legacy;
mod mcp;
mod wire;

pub(crate) use headers::{find_http_tool, http_tools};
pub(crate) use hub::{current_route, set_route};

use mcp::Session;
use wire::{ReadError, Request};

/// `--http-401`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AuthMode {
    /// Every request without `Authorization: Bearer good`.
    Always,
    /// The first request, whatever its token; later ones need some Bearer token.
    Once,
}

/// The HTTP flags.
#[derive(Clone, Debug, Default)]
pub(crate) struct HttpConfig {
    pub(crate) addr: Option<String>,
    pub(crate) sse: bool,
    pub(crate) no_get: bool,
    pub(crate) no_delete: bool,
    pub(crate) legacy: bool,
    pub(crate) bad_header_tools: bool,
    pub(crate) forget_after: Option<u64>,
    pub(crate) cut_stream: bool,
    pub(crate) stall_sse: bool,
    pub(crate) auth: Option<AuthMode>,
    pub(crate) unavailable: u64,
    /// `--http-503-bare`: the 503s carry no `Retry-After` (as a proxy's would).
    pub(crate) bare_503: bool,
    pub(crate) oversize: Option<u64>,
    pub(crate) bad_sse: bool,
    pub(crate) redirect: Option<String>,
    pub(crate) slow_headers_ms: u64,
    pub(crate) record: Option<String>,
}

/// Parses one `--http*` flag (`inline`: it came as `--flag=value`).
pub(crate) fn parse_flag(
    cfg: &mut HttpConfig,
    flag: &str,
    inline: bool,
    value: &mut dyn FnMut() -> Result<String, ArgsError>,
) -> Result<(), ArgsError> {
    let switch = |field: &mut bool| match inline {
        false => {
            *field = true;
            Ok(())
        }
        true => Err(ArgsError::Bad(format!("{flag} takes no value"))),
    };
    match flag {
        "--http" => cfg.addr = Some(value()?),
        "--http-sse" => switch(&mut cfg.sse)?,
        "--http-no-get" => switch(&mut cfg.no_get)?,
        "--http-no-delete" => switch(&mut cfg.no_delete)?,
        "--http-legacy" => switch(&mut cfg.legacy)?,
        "--http-bad-header-tools" => switch(&mut cfg.bad_header_tools)?,
        "--http-cut-stream" => switch(&mut cfg.cut_stream)?,
        "--http-stall-sse" => switch(&mut cfg.stall_sse)?,
        "--http-bad-sse" => switch(&mut cfg.bad_sse)?,
        "--http-404-after" => cfg.forget_after = Some(parse_num(flag, &value()?)?),
        "--http-503" => cfg.unavailable = parse_num(flag, &value()?)?,
        "--http-503-bare" => switch(&mut cfg.bare_503)?,
        "--http-oversize" => cfg.oversize = Some(parse_num(flag, &value()?)?),
        "--http-slow-headers" => cfg.slow_headers_ms = parse_num(flag, &value()?)?,
        "--http-redirect" => cfg.redirect = Some(value()?),
        "--http-record" => cfg.record = Some(value()?),
        "--http-401" => {
            cfg.auth = match value()?.as_str() {
                "always" => Some(AuthMode::Always),
                "once" => Some(AuthMode::Once),
                other => return Err(ArgsError::Bad(format!("bad --http-401 '{other}'"))),
            }
        }
        _ => return Err(ArgsError::Bad(format!("unknown argument '{flag}'"))),
    }
    Ok(())
}

impl HttpConfig {
    /// The HTTP-only flags need `--http ADDR` (`--http-bad-header-tools` also lists its tools
    /// on stdio).
    pub(crate) fn validate(&self) -> Result<(), ArgsError> {
        let used = [
            ("--http-sse", self.sse),
            ("--http-no-get", self.no_get),
            ("--http-no-delete", self.no_delete),
            ("--http-legacy", self.legacy),
            ("--http-cut-stream", self.cut_stream),
            ("--http-stall-sse", self.stall_sse),
            ("--http-bad-sse", self.bad_sse),
            ("--http-404-after", self.forget_after.is_some()),
            ("--http-401", self.auth.is_some()),
            ("--http-503", self.unavailable > 0),
            ("--http-503-bare", self.bare_503),
            ("--http-oversize", self.oversize.is_some()),
            ("--http-redirect", self.redirect.is_some()),
            ("--http-slow-headers", self.slow_headers_ms > 0),
            ("--http-record", self.record.is_some()),
        ];
        if let (None, Some((flag, _))) = (&self.addr, used.iter().find(|(_, on)| *on)) {
            return Err(ArgsError::Bad(format!("{flag} needs --http ADDR")));
        }
        if self.cut_stream && self.stall_sse {
            return Err(ArgsError::Bad(
                "--http-cut-stream and --http-stall-sse exclude each other".into(),
            ));
        }
        Ok(())
    }
}

/// The protocol versions of the handshake generation.
pub(crate) const HANDSHAKE_VERSIONS: [&str; 4] =
    ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// What every connection shares.
pub(crate) struct App {
    pub(crate) cfg: Config,
    /// `http://HOST:PORT`.
    pub(crate) base: String,
    /// The `--record` file, cloned for each session's state.
    mcp_record: Option<File>,
    http_record: Option<Mutex<File>>,
    sessions: Mutex<std::collections::HashMap<String, Arc<Session>>>,
    stateless: OnceLock<Arc<Session>>,
    /// POSTs seen (`--http-503`).
    pub(crate) posts: AtomicU64,
    /// Whether a request has been seen (`--http-401 once`).
    pub(crate) seen_first: AtomicBool,
}

impl App {
    fn record_file(&self) -> Option<Mutex<File>> {
        let file = self.mcp_record.as_ref()?;
        match file.try_clone() {
            Ok(f) => Some(Mutex::new(f)),
            Err(e) => {
                say!("fake-server: cannot reopen the record file: {e}");
                None
            }
        }
    }

    /// The live session with this id, of this kind. `--http-404-after N`: a session that has
    /// served N requests is forgotten here.
    pub(crate) fn session(&self, id: &str, kind: hub::Kind) -> Option<Arc<Session>> {
        let mut sessions = lock(&self.sessions);
        let session = Arc::clone(sessions.get(id)?);
        if session.hub.kind != kind {
            return None;
        }
        if let Some(n) = self.cfg.http.forget_after {
            if session.requests.load(Ordering::SeqCst) >= n {
                sessions.remove(id);
                drop(sessions);
                say!("fake-server: session {id} forgotten after {n} requests");
                session.end();
                return None;
            }
        }
        Some(session)
    }

    pub(crate) fn register(&self, session: &Arc<Session>) {
        lock(&self.sessions).insert(session.id.clone(), Arc::clone(session));
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).remove(id)
    }

    /// The one state of the per-request generation.
    pub(crate) fn stateless(&self) -> &Arc<Session> {
        self.stateless
            .get_or_init(|| Session::new(self, hub::Kind::Stateless, String::new()))
    }

    /// `--http-record`: one JSON line per HTTP request (Authorization redacted).
    fn record(&self, req: &Request) {
        let Some(file) = &self.http_record else {
            return;
        };
        let mut headers = Map::new();
        for (name, value) in &req.headers {
            let value = match name.as_str() {
                "authorization" => format!("<redacted len {}>", value.len()),
                _ => value.clone(),
            };
            let joined = match headers.remove(name) {
                Some(Value::String(before)) => format!("{before}, {value}"),
                _ => value,
            };
            headers.insert(name.clone(), joined.into());
        }
        let body = serde_json::from_slice::<Value>(&req.body).unwrap_or(Value::Null);
        let line =
            json!({"method": req.method, "path": req.target, "headers": headers, "body": body});
        let mut text = line.to_string();
        text.push('\n');
        let mut f = lock(file);
        if let Err(e) = f.write_all(text.as_bytes()).and_then(|()| f.flush()) {
            say!("fake-server: cannot write the HTTP record file: {e}");
        }
    }
}

/// One client connection: requests are read from `reader`, responses written to `out`.
pub(crate) struct Conn {
    reader: BufReader<TcpStream>,
    pub(crate) out: TcpStream,
    slow: Duration,
    /// The request being answered is HTTP/1.0 (SSE bodies are then close-delimited).
    pub(crate) http10: bool,
}

impl Conn {
    /// Writes a response head, after `--http-slow-headers`.
    pub(crate) fn head(&mut self, status: u16, headers: &[(&str, String)]) -> io::Result<()> {
        if !self.slow.is_zero() {
            thread::sleep(self.slow);
        }
        self.out.write_all(&wire::head(status, headers))
    }

    /// A whole response with `Content-Length`.
    pub(crate) fn respond(
        &mut self,
        status: u16,
        content_type: Option<&str>,
        extra: &[(&str, String)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut headers = extra.to_vec();
        if let Some(t) = content_type {
            headers.push(("Content-Type", t.to_string()));
        }
        headers.push(("Content-Length", body.len().to_string()));
        self.head(status, &headers)?;
        self.out.write_all(body)?;
        self.out.flush()
    }

    pub(crate) fn json(&mut self, status: u16, extra: &[(&str, String)], body: &Value) -> bool {
        let text = body.to_string();
        self.respond(status, Some("application/json"), extra, text.as_bytes())
            .is_ok()
    }

    /// An empty response (202, 200 of DELETE, 307, 503, ...).
    pub(crate) fn empty(&mut self, status: u16, extra: &[(&str, String)]) -> bool {
        self.respond(status, None, extra, b"").is_ok()
    }

    /// A JSON-RPC error as the body of an HTTP error.
    pub(crate) fn rpc_error(&mut self, status: u16, id: &Value, code: i64, message: &str) -> bool {
        let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
        self.json(status, &[], &body)
    }

    pub(crate) fn peer_closed(&self) -> bool {
        wire::peer_closed(&self.out)
    }
}

/// `--http ADDR`: listens, prints the endpoint, serves until SIGTERM or stdin EOF.
pub(crate) fn serve(cfg: Config, record: Option<Mutex<File>>) -> ! {
    let addr = cfg.http.addr.clone().unwrap_or_default();
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            say!("mcp-fake-server: cannot listen on {addr}: {e}");
            process::exit(2)
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            say!("mcp-fake-server: cannot read the listening address: {e}");
            process::exit(2)
        }
    };
    let host = match local.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let base = format!("http://{host}:{}", local.port());
    let http_record = cfg.http.record.as_ref().map(|path| {
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => Mutex::new(f),
            Err(e) => {
                say!("mcp-fake-server: cannot open HTTP record file {path}: {e}");
                process::exit(2)
            }
        }
    });
    let app = Arc::new(App {
        mcp_record: record.map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner)),
        http_record,
        sessions: Mutex::new(std::collections::HashMap::new()),
        stateless: OnceLock::new(),
        posts: AtomicU64::new(0),
        seen_first: AtomicBool::new(false),
        base,
        cfg,
    });
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "listening on {}/mcp", app.base);
        let _ = out.flush();
    }
    let watcher = Arc::clone(&app);
    if let Err(e) = thread::Builder::new()
        .name("stdin-eof".into())
        .spawn(move || watch_stdin(&watcher))
    {
        say!("fake-server: cannot watch stdin: {e}");
    }
    for incoming in listener.incoming() {
        match incoming {
            Ok(stream) => {
                let app = Arc::clone(&app);
                let spawned = thread::Builder::new()
                    .name("http-conn".into())
                    .spawn(move || connection(&app, stream));
                if let Err(e) = spawned {
                    say!("fake-server: cannot spawn a connection thread: {e}");
                }
            }
            Err(e) => {
                say!("fake-server: accept failed: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    process::exit(0)
}

/// Exits when stdin reaches EOF (`--ignore-stdin-eof`: ignores it and SIGTERM).
fn watch_stdin(app: &App) {
    let mut buf = [0u8; 4096];
    let mut stdin = io::stdin().lock();
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if app.cfg.ignore_stdin_eof {
        // SAFETY: installing SIG_IGN for SIGTERM has no memory-safety preconditions.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
        say!("fake-server: stdin closed; ignoring it and SIGTERM");
        loop {
            thread::park();
        }
    }
    let mut all: Vec<Arc<Session>> = lock(&app.sessions).values().cloned().collect();
    all.extend(app.stateless.get().cloned());
    let deadline = Instant::now() + Duration::from_millis(100);
    for session in &all {
        session
            .shared
            .wait_for_tools(deadline.saturating_duration_since(Instant::now()));
        session.shared.report_late_answers();
    }
    if app.cfg.verbose {
        say!("fake-server: stdin closed, exiting");
    }
    process::exit(0)
}

/// Closes a connection so that what was written still arrives: no reset for unread input.
fn linger_close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut sink = [0u8; 8192];
    let mut left = 1usize << 20;
    let mut reader = stream;
    while left > 0 {
        match reader.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn connection(app: &App, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(out) = stream.try_clone() else { return };
    let mut conn = Conn {
        reader: BufReader::with_capacity(64 * 1024, stream),
        out,
        slow: Duration::from_millis(app.cfg.http.slow_headers_ms),
        http10: false,
    };
    loop {
        let Conn { reader, out, .. } = &mut conn;
        let read = wire::read_request(reader, || {
            out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .and_then(|()| out.flush())
        });
        let req = match read {
            Ok(req) => req,
            Err(ReadError::Closed | ReadError::Io) => return,
            Err(ReadError::Bad(why)) => {
                say!("fake-server: bad HTTP request: {why}");
                let body = format!("bad request: {why}\n");
                let close = [("Connection", "close".to_string())];
                let _ = conn.respond(400, Some("text/plain"), &close, body.as_bytes());
                return linger_close(&conn.out);
            }
            Err(ReadError::TooLarge) => {
                let close = [("Connection", "close".to_string())];
                let _ = conn.respond(413, Some("text/plain"), &close, b"request body too large\n");
                return linger_close(&conn.out);
            }
        };
        conn.http10 = req.http10;
        let reusable = handle(app, &mut conn, &req);
        if !(reusable && req.keep_alive()) {
            return linger_close(&conn.out);
        }
    }
}

/// Whether an `Origin` names this machine (any port).
fn local_origin(origin: &str) -> bool {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let Some(rest) = rest else { return false };
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.split([':', '/']).next().unwrap_or(""),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// Answers one request; false if the connection must close afterwards.
fn handle(app: &App, conn: &mut Conn, req: &Request) -> bool {
    app.record(req);
    match req.header("authorization") {
        Some(value) => {
            say!("auth header present");
            say!("fake-server: authorization header length {}", value.len());
        }
        None => say!("auth header absent"),
    }
    if app.cfg.verbose {
        say!("fake-server: http {} {}", req.method, req.target);
    }
    if req.path == faults::PROTECTED_RESOURCE {
        return faults::protected_resource(app, conn, req);
    }
    if let Some(reusable) = faults::before(app, conn, req) {
        return reusable;
    }
    if let Some(origin) = req.header("origin").filter(|o| !local_origin(o)) {
        say!("fake-server: refused Origin {origin}");
        return conn.rpc_error(403, &Value::Null, -32000, "Forbidden: invalid Origin");
    }
    if app.cfg.http.legacy {
        return legacy::handle(app, conn, req);
    }
    if req.path != "/mcp" {
        return conn
            .respond(404, Some("text/plain"), &[], b"not found\n")
            .is_ok();
    }
    match req.method.as_str() {
        "POST" => mcp::post(app, conn, req),
        "GET" => mcp::get(app, conn, req),
        "DELETE" => mcp::delete(app, conn, req),
        _ => conn.empty(405, &[("Allow", "GET, POST, DELETE".into())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<HttpConfig, String> {
        let mut cfg = HttpConfig::default();
        let mut it = args.iter().map(|s| s.to_string());
        while let Some(flag) = it.next() {
            let (flag, inline) = match flag.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (flag, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .ok_or_else(|| ArgsError::Bad("needs a value".into()))
            };
            parse_flag(&mut cfg, &flag, inline.is_some(), &mut value).map_err(|e| match e {
                ArgsError::Bad(m) => m,
                ArgsError::Help => "help".into(),
            })?;
        }
        cfg.validate().map_err(|e| match e {
            ArgsError::Bad(m) => m,
            ArgsError::Help => "help".into(),
        })?;
        Ok(cfg)
    }

    #[test]
    fn flags() {
        let cfg = parse(&[
            "--http",
            "127.0.0.1:0",
            "--http-401=once",
            "--http-503",
            "2",
        ])
        .unwrap();
        assert_eq!(cfg.addr.as_deref(), Some("127.0.0.1:0"));
        assert_eq!((cfg.auth, cfg.unavailable), (Some(AuthMode::Once), 2));
        assert!(parse(&["--http-sse"]).unwrap_err().contains("needs --http"));
        assert!(parse(&["--http-bad-header-tools"]).is_ok());
        assert!(parse(&["--http", "x", "--http-401", "never"]).is_err());
        assert!(parse(&["--http", "x", "--http-sse=1"]).is_err());
        assert!(parse(&["--http", "x", "--http-cut-stream", "--http-stall-sse"]).is_err());
        assert!(parse(&["--http", "x", "--http-404-after", "z"]).is_err());
    }

    #[test]
    fn origins() {
        assert!(local_origin("http://localhost:3000"));
        assert!(local_origin("http://127.0.0.1"));
        assert!(local_origin("https://[::1]:8080/x"));
        assert!(!local_origin("http://evil.example"));
        assert!(!local_origin("http://127.0.0.1.evil.example"));
        assert!(!local_origin("null"));
    }
}
