//! The Streamable HTTP endpoint `/mcp`: sessions (one server state each; one more for all
//! per-request traffic), POST of requests (JSON or SSE answers), notifications and responses
//! (202), GET (the standalone stream and `Last-Event-ID` replays), DELETE, and what a client
//! disconnect means in each generation.

use serde_json::{json, Map, Value};
use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::super::dispatch::Server;
use super::super::state::{lock, Shared};
use super::super::GenerationMode;
use super::hub::{with_request, Event, Hub, Kind, Take, UnknownEvent};
use super::wire::{self, Framing, Request};
use super::{faults, headers, App, Conn, HANDSHAKE_VERSIONS};

const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// How often a waiting connection checks whether its client is still there.
pub(crate) const POLL: Duration = Duration::from_millis(50);
/// An SSE comment is written on a stream idle this long.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One session's server state (a handshake or legacy session, or the per-request state).
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) shared: Arc<Shared>,
    server: Mutex<Server>,
    pub(crate) hub: Arc<Hub>,
    /// JSON-RPC requests received (`--http-404-after`).
    pub(crate) requests: AtomicU64,
    /// The protocol version `initialize` agreed on.
    version: Mutex<Option<String>>,
}

impl Session {
    pub(crate) fn new(app: &App, kind: Kind, id: String) -> Arc<Session> {
        let hub = Hub::new(kind, app.cfg.verbose);
        let shared = Arc::new(Shared::new(app.cfg.clone(), app.record_file()));
        hub.bind(&shared);
        let sink = Arc::clone(&hub);
        lock(&shared.out).set_sink(Box::new(move |body: &[u8]| sink.route(body)));
        Arc::new(Session {
            id,
            server: Mutex::new(Server::new(Arc::clone(&shared))),
            shared,
            hub,
            requests: AtomicU64::new(0),
            version: Mutex::new(None),
        })
    }

    /// Hands one message to the session's server, as a line on stdin would be; what it sends
    /// while doing so (and what its tool threads send) follows `route`.
    pub(crate) fn dispatch(&self, route: u64, headers: Option<Value>, body: &[u8]) {
        let mut server = lock(&self.server);
        with_request(route, headers, || server.handle_line(body));
    }

    /// Ends the session: its streams close and its in-flight tools are cancelled.
    pub(crate) fn end(&self) {
        self.hub.end();
        let slots: Vec<_> = lock(&self.shared.inflight).values().cloned().collect();
        for slot in slots {
            slot.cancel();
        }
    }

    /// Cancels the request whose id has JSON text `id` (the client closed its stream).
    fn cancel(&self, id: &str) {
        let id: Value = serde_json::from_str(id).unwrap_or(Value::Null);
        let line = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                          "params": {"requestId": id, "reason": "the client closed the stream"}});
        self.dispatch(0, None, line.to_string().as_bytes());
    }
}

/// A random session id: 32 hex digits (visible ASCII).
pub(crate) fn new_session_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut b = [0u8; 16];
    let read = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if read.is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mix = |x: u64| x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        b[..8].copy_from_slice(&mix(nanos ^ u64::from(std::process::id())).to_le_bytes());
        b[8..].copy_from_slice(&mix(n ^ nanos.rotate_left(17)).to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A POSTed JSON-RPC message, checked as the stdio server checks a line.
pub(crate) enum Rpc {
    Request {
        id: Value,
        method: String,
        params: Map<String, Value>,
    },
    Notification {
        method: String,
        params: Map<String, Value>,
    },
    Response,
}

/// Parses a POST body; `Err((status, error response))` when it is not one valid message.
pub(crate) fn parse_rpc(body: &[u8]) -> Result<Rpc, (u16, Value)> {
    let error = |id: &Value, code: i64, message: String| {
        (
            400,
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
        )
    };
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| error(&Value::Null, -32700, format!("parse error: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(error(
            &Value::Null,
            -32600,
            "expected one JSON-RPC message (an object; no batches)".into(),
        ));
    };
    let id = obj.remove("id");
    let valid_id = match &id {
        Some(Value::String(_)) => true,
        Some(Value::Number(n)) => n.is_i64() || n.is_u64(),
        _ => false,
    };
    let reply_id = id.clone().filter(|_| valid_id).unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(error(&reply_id, -32600, "jsonrpc must be \"2.0\"".into()));
    }
    let params = match obj.remove("params") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    match (obj.remove("method"), id) {
        (Some(Value::String(method)), None) => Ok(Rpc::Notification { method, params }),
        (Some(Value::String(method)), Some(id)) if valid_id => {
            Ok(Rpc::Request { id, method, params })
        }
        (Some(Value::String(_)), Some(_)) => Err(error(
            &Value::Null,
            -32600,
            "id must be a string or an integer".into(),
        )),
        (Some(_), _) => Err(error(&reply_id, -32600, "method must be a string".into())),
        (None, Some(_)) if obj.contains_key("result") || obj.contains_key("error") => {
            Ok(Rpc::Response)
        }
        (None, _) => Err(error(
            &reply_id,
            -32600,
            "not a request, notification or response".into(),
        )),
    }
}

/// The `Mcp-*` headers of a request, lowercased name → value (for `header_echo`).
fn mcp_headers(req: &Request) -> Value {
    let mut out = Map::new();
    for (name, value) in req.headers.iter().filter(|(n, _)| n.starts_with("mcp-")) {
        out.entry(name.clone())
            .or_insert_with(|| value.clone().into());
    }
    Value::Object(out)
}

fn enveloped(params: &Map<String, Value>) -> bool {
    params
        .get("_meta")
        .and_then(|m| m.get(META_PROTOCOL_VERSION))
        .is_some()
}

/// HTTP status of a per-request answer that is this JSON-RPC error.
fn status_for(code: Option<i64>) -> u16 {
    match code {
        Some(-32601) => 404,
        Some(-32700 | -32600 | -32020 | -32021 | -32022) => 400,
        _ => 200,
    }
}

fn missing_session(conn: &mut Conn) -> bool {
    let message = "Bad Request: missing Mcp-Session-Id header (send initialize first)";
    conn.rpc_error(400, &Value::Null, -32000, message)
}

fn unknown_session(conn: &mut Conn) -> bool {
    conn.rpc_error(404, &Value::Null, -32001, "Session not found")
}

/// `MCP-Protocol-Version` on a session's request: absent means 2025-03-26; a version the
/// handshake generation does not know is 400.
fn check_session_version(conn: &mut Conn, req: &Request, session: &Session) -> Result<(), bool> {
    let Some(v) = req.header("mcp-protocol-version") else {
        return Ok(());
    };
    if !HANDSHAKE_VERSIONS.contains(&v) {
        let message = format!("Bad Request: unsupported MCP-Protocol-Version: {v}");
        return Err(conn.rpc_error(400, &Value::Null, -32000, &message));
    }
    if let Some(agreed) = lock(&session.version).as_deref().filter(|a| *a != v) {
        say!("fake-server: MCP-Protocol-Version {v} differs from the negotiated {agreed}");
    }
    Ok(())
}

/// POST `/mcp`.
pub(crate) fn post(app: &App, conn: &mut Conn, req: &Request) -> bool {
    if !req.lists("content-type", "application/json") {
        let message = "Unsupported Media Type: Content-Type must be application/json";
        return conn.rpc_error(415, &Value::Null, -32000, message);
    }
    if !(req.lists("accept", "application/json") && req.lists("accept", "text/event-stream")) {
        let message = "Not Acceptable: Accept must list application/json and text/event-stream";
        return conn.rpc_error(406, &Value::Null, -32000, message);
    }
    let rpc = match parse_rpc(&req.body) {
        Ok(rpc) => rpc,
        Err((status, body)) => return conn.json(status, &[], &body),
    };
    let mode = app.cfg.generation;
    if mode == GenerationMode::Stateless {
        return per_request(app, conn, req, rpc);
    }
    if let Some(sid) = req.header("mcp-session-id") {
        let Some(session) = app.session(sid, Kind::Handshake) else {
            return unknown_session(conn);
        };
        return session_post(app, conn, req, &session, rpc);
    }
    match &rpc {
        Rpc::Request { method, .. } if method == "initialize" => {
            let session = Session::new(app, Kind::Handshake, new_session_id());
            session.requests.fetch_add(1, Ordering::SeqCst);
            serve_request(app, conn, req, &session, &rpc, true)
        }
        Rpc::Request { params, .. }
            if mode == GenerationMode::Both
                && (enveloped(params)
                    || req
                        .header("mcp-protocol-version")
                        .is_some_and(|v| !HANDSHAKE_VERSIONS.contains(&v))) =>
        {
            per_request(app, conn, req, rpc)
        }
        Rpc::Notification { .. } if mode == GenerationMode::Both => {
            per_request(app, conn, req, rpc)
        }
        _ => missing_session(conn),
    }
}

/// A POST carrying a handshake session's id.
fn session_post(
    app: &App,
    conn: &mut Conn,
    req: &Request,
    session: &Arc<Session>,
    rpc: Rpc,
) -> bool {
    if let Err(reusable) = check_session_version(conn, req, session) {
        return reusable;
    }
    match &rpc {
        Rpc::Request { .. } => {
            session.requests.fetch_add(1, Ordering::SeqCst);
            serve_request(app, conn, req, session, &rpc, false)
        }
        Rpc::Notification { method, params } => {
            session.dispatch(0, Some(mcp_headers(req)), &req.body);
            if method == "notifications/cancelled" {
                if let Some(id) = params.get("requestId") {
                    session.hub.end_request(&id.to_string());
                }
            }
            conn.empty(202, &[])
        }
        Rpc::Response => {
            session.dispatch(0, Some(mcp_headers(req)), &req.body);
            conn.empty(202, &[])
        }
    }
}

/// A POST of the per-request generation.
fn per_request(app: &App, conn: &mut Conn, req: &Request, rpc: Rpc) -> bool {
    let session = Arc::clone(app.stateless());
    match &rpc {
        Rpc::Notification { .. } => {
            session.dispatch(0, Some(mcp_headers(req)), &req.body);
            conn.empty(202, &[])
        }
        Rpc::Response => conn.rpc_error(
            400,
            &Value::Null,
            -32600,
            "the per-request generation takes no responses from the client",
        ),
        Rpc::Request { id, method, params } => {
            if method != "initialize" {
                if let Err(message) = headers::check(req, method, params, &session.shared) {
                    say!("fake-server: header mismatch for request {id}: {message}");
                    return conn.rpc_error(400, id, -32020, &message);
                }
            }
            serve_request(app, conn, req, &session, &rpc, false)
        }
    }
}

/// Serves a request: dispatches it, then answers JSON or SSE. `init`: an `initialize` that
/// creates its session if it succeeds.
fn serve_request(
    app: &App,
    conn: &mut Conn,
    req: &Request,
    session: &Arc<Session>,
    rpc: &Rpc,
    init: bool,
) -> bool {
    let Rpc::Request { id, method, .. } = rpc else {
        return false;
    };
    let h = &app.cfg.http;
    if h.bad_sse && method != "initialize" && method != "server/discover" {
        return faults::bad_sse(conn);
    }
    let tools_call = method == "tools/call";
    let hub = &session.hub;
    let key = hub.open_request(id.to_string(), h.stall_sse && tools_call);
    if !dispatch_request(conn, session, key, req) {
        disconnected(session, key, None);
        return false;
    }
    let first = hub.first(key, Duration::ZERO);
    let mut extra = Vec::new();
    if init {
        if let Some(e) = first
            .as_ref()
            .filter(|e| e.is_final && e.error_code.is_none())
        {
            let version = serde_json::from_slice::<Value>(&e.data).ok().and_then(|v| {
                v.pointer("/result/protocolVersion")
                    .and_then(Value::as_str)
                    .map(String::from)
            });
            *lock(&session.version) = version;
            app.register(session);
            extra.push(("Mcp-Session-Id", session.id.clone()));
            if app.cfg.verbose {
                say!("fake-server: session {} created", session.id);
            }
        }
    }
    if let (true, Some(bytes)) = (tools_call, h.oversize) {
        return faults::oversize(conn, session, key, id, bytes, &extra);
    }
    let stateless = hub.kind == Kind::Stateless;
    let status_of = |e: &Event| match stateless {
        true => status_for(e.error_code),
        false => 200,
    };
    if let Some(e) = first.as_ref().filter(|e| e.is_final && status_of(e) != 200) {
        return json_final(conn, session, key, status_of(e), &extra);
    }
    let (cut, stalled) = (tools_call && h.cut_stream, tools_call && h.stall_sse);
    if !(h.sse || cut || stalled) {
        loop {
            if let Some(e) = hub.first(key, POLL) {
                if e.is_final {
                    return json_final(conn, session, key, status_of(&e), &extra);
                }
                break;
            }
            if hub.is_done(key) {
                // Ended by the client's notifications/cancelled: an empty stream.
                break;
            }
            if hub.is_ended() || conn.peer_closed() {
                disconnected(session, key, None);
                return false;
            }
        }
    }
    sse(conn, session, key, &extra, (cut, stalled))
}

/// Dispatches a request on a thread of its own, as the stdio main loop would: waits until
/// that returns, or until something is queued for the stream while it still runs (a tool
/// that holds the loop for good, like `flood_requests`). False if the client left first.
fn dispatch_request(conn: &Conn, session: &Arc<Session>, key: u64, req: &Request) -> bool {
    let (done, finished) = mpsc::channel();
    let (worker, headers, body) = (Arc::clone(session), mcp_headers(req), req.body.clone());
    let spawned = thread::Builder::new()
        .name("http-dispatch".into())
        .spawn(move || {
            worker.dispatch(key, Some(headers), &body);
            let _ = done.send(());
        });
    if spawned.is_err() {
        session.dispatch(key, Some(mcp_headers(req)), &req.body);
        return true;
    }
    loop {
        match finished.recv_timeout(POLL) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return true,
        }
        if session.hub.first(key, Duration::ZERO).is_some() || session.hub.is_done(key) {
            return true;
        }
        if conn.peer_closed() {
            return false;
        }
    }
}

/// Answers with the final message as JSON.
fn json_final(
    conn: &mut Conn,
    session: &Session,
    key: u64,
    status: u16,
    extra: &[(&str, String)],
) -> bool {
    let Some(e) = session.hub.take_final(key) else {
        return false;
    };
    conn.respond(status, Some("application/json"), extra, &e.data)
        .is_ok()
}

/// The client is gone before the stream ended. Per-request: that cancels the request.
/// Handshake: a stream that got SSE events stays for a replay; a JSON wait is dropped.
fn disconnected(session: &Session, key: u64, writer: Option<u64>) {
    match (session.hub.kind, writer) {
        (Kind::Stateless, _) => {
            if let Some(id) = session.hub.drop_stream(key) {
                session.cancel(&id);
            }
        }
        (Kind::Handshake, Some(writer)) => session.hub.detach(key, writer),
        (Kind::Handshake, None) => {
            session.hub.drop_stream(key);
        }
        (Kind::Legacy, _) => {}
    }
}

pub(crate) fn sse_headers<'a>(
    framing: Framing,
    extra: &[(&'a str, String)],
) -> Vec<(&'a str, String)> {
    let mut headers = vec![
        ("Content-Type", "text/event-stream".to_string()),
        ("Cache-Control", "no-cache".to_string()),
        ("X-Accel-Buffering", "no".to_string()),
    ];
    headers.push(match framing {
        Framing::Chunked => ("Transfer-Encoding", "chunked".to_string()),
        Framing::Close => ("Connection", "close".to_string()),
    });
    headers.extend(extra.iter().cloned());
    headers
}

fn framing(conn: &Conn) -> Framing {
    match conn.http10 {
        true => Framing::Close,
        false => Framing::Chunked,
    }
}

/// Answers a request's stream as SSE: the priming event, then its events until the final
/// one. `cut` (`--http-cut-stream`): the connection closes right after the priming event;
/// `stalled` (`--http-stall-sse`): nothing follows it, not even keep-alive comments.
fn sse(
    conn: &mut Conn,
    session: &Session,
    key: u64,
    extra: &[(&str, String)],
    (cut, stalled): (bool, bool),
) -> bool {
    let framing = framing(conn);
    let hub = &session.hub;
    if conn.head(200, &sse_headers(framing, extra)).is_err() {
        disconnected(session, key, None);
        return false;
    }
    let Some(writer) = hub.attach(key) else {
        return false;
    };
    if let Some(p) = hub.prime(key, cut.then_some(300)) {
        let text = wire::sse_event(p.id.as_deref(), p.retry, None, b"");
        if wire::write_part(&mut conn.out, framing, &text).is_err() {
            disconnected(session, key, Some(writer));
            return false;
        }
        if cut {
            let _ = wire::write_end(&mut conn.out, framing);
            let last = p.id.unwrap_or_default();
            match hub.kind {
                Kind::Stateless => {
                    hub.drop_stream(key);
                    say!("fake-server: cut a request's stream (event {last}); its answer is lost");
                }
                _ => {
                    hub.detach(key, writer);
                    say!("fake-server: cut a request's stream; resume with Last-Event-ID {last}");
                }
            }
            return false;
        }
    }
    finish(conn, session, (key, writer), framing, !stalled)
}

/// Pumps a stream to the end; false if the connection cannot be reused.
fn finish(
    conn: &mut Conn,
    session: &Session,
    (key, writer): (u64, u64),
    framing: Framing,
    keep_alive: bool,
) -> bool {
    match pump(conn, &session.hub, (key, writer), framing, keep_alive) {
        Pumped::Finished => framing == Framing::Chunked,
        Pumped::Ended => false,
        Pumped::Gone => {
            disconnected(session, key, Some(writer));
            false
        }
    }
}

pub(crate) enum Pumped {
    /// The stream ended after its last event (the body is terminated).
    Finished,
    /// The session ended (the body is terminated), or another connection took the stream
    /// over.
    Ended,
    /// The client is gone.
    Gone,
}

/// Writes a stream's events as they come. `keep_alive`: an SSE comment on a stream idle for
/// 15 s.
pub(crate) fn pump(
    conn: &mut Conn,
    hub: &Hub,
    (key, writer): (u64, u64),
    framing: Framing,
    keep_alive: bool,
) -> Pumped {
    let mut last = Instant::now();
    loop {
        match hub.take(key, writer, POLL) {
            Take::Events(events) => {
                for e in events {
                    let text = wire::sse_event(e.id.as_deref(), e.retry, Some("message"), &e.data);
                    if wire::write_part(&mut conn.out, framing, &text).is_err() {
                        return Pumped::Gone;
                    }
                }
                last = Instant::now();
            }
            Take::Finished => {
                let _ = wire::write_end(&mut conn.out, framing);
                return Pumped::Finished;
            }
            Take::Ended => {
                let _ = wire::write_end(&mut conn.out, framing);
                return Pumped::Ended;
            }
            Take::Replaced => return Pumped::Ended,
            Take::Idle => {
                if conn.peer_closed() {
                    return Pumped::Gone;
                }
                if keep_alive && last.elapsed() >= KEEP_ALIVE {
                    if wire::write_part(&mut conn.out, framing, b": keep-alive\n\n").is_err() {
                        return Pumped::Gone;
                    }
                    last = Instant::now();
                }
            }
        }
    }
}

/// GET `/mcp`: the standalone stream, or a replay with `Last-Event-ID`.
pub(crate) fn get(app: &App, conn: &mut Conn, req: &Request) -> bool {
    if app.cfg.generation == GenerationMode::Stateless {
        return conn.empty(405, &[("Allow", "POST".into())]);
    }
    if app.cfg.http.no_get {
        let allow = match app.cfg.http.no_delete {
            true => "POST",
            false => "POST, DELETE",
        };
        return conn.empty(405, &[("Allow", allow.into())]);
    }
    if !req.lists("accept", "text/event-stream") {
        let message = "Not Acceptable: Accept must list text/event-stream";
        return conn.rpc_error(406, &Value::Null, -32000, message);
    }
    let Some(sid) = req.header("mcp-session-id") else {
        return missing_session(conn);
    };
    let Some(session) = app.session(sid, Kind::Handshake) else {
        return unknown_session(conn);
    };
    if let Err(reusable) = check_session_version(conn, req, &session) {
        return reusable;
    }
    let hub = &session.hub;
    let mut resumed = None;
    if let Some(last) = req.header("last-event-id") {
        match hub.resume(last) {
            Ok(stream) => resumed = Some(stream),
            Err(UnknownEvent) => {
                say!("fake-server: unknown Last-Event-ID {last}; opening the standalone stream")
            }
        }
    }
    let (key, writer) = match resumed.or_else(|| hub.attach_standalone()) {
        Some(stream) => stream,
        None => {
            let message = "Conflict: only one standalone SSE stream per session";
            return conn.rpc_error(409, &Value::Null, -32000, message);
        }
    };
    let framing = framing(conn);
    if conn.head(200, &sse_headers(framing, &[])).is_err() {
        hub.detach(key, writer);
        return false;
    }
    if resumed.is_none() {
        if let Some(p) = hub.prime(key, None) {
            let text = wire::sse_event(p.id.as_deref(), None, None, b"");
            if wire::write_part(&mut conn.out, framing, &text).is_err() {
                hub.detach(key, writer);
                return false;
            }
        }
    }
    finish(conn, &session, (key, writer), framing, true)
}

/// DELETE `/mcp`: ends the session.
pub(crate) fn delete(app: &App, conn: &mut Conn, req: &Request) -> bool {
    if app.cfg.generation == GenerationMode::Stateless || app.cfg.http.no_delete {
        let allow = match app.cfg.http.no_get || app.cfg.generation == GenerationMode::Stateless {
            true => "POST",
            false => "GET, POST",
        };
        return conn.empty(405, &[("Allow", allow.into())]);
    }
    let Some(sid) = req.header("mcp-session-id") else {
        return missing_session(conn);
    };
    let Some(session) = app.session(sid, Kind::Handshake) else {
        return unknown_session(conn);
    };
    if let Err(reusable) = check_session_version(conn, req, &session) {
        return reusable;
    }
    app.remove(sid);
    session.end();
    say!("fake-server: session {sid} deleted");
    conn.empty(200, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_checked_like_stdio_lines() {
        assert!(matches!(
            parse_rpc(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Ok(Rpc::Request { .. })
        ));
        assert!(matches!(
            parse_rpc(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Rpc::Notification { .. })
        ));
        assert!(matches!(
            parse_rpc(br#"{"jsonrpc":"2.0","id":0,"result":{}}"#),
            Ok(Rpc::Response)
        ));
        let code = |body: &[u8]| match parse_rpc(body) {
            Err((400, v)) => v.pointer("/error/code").and_then(Value::as_i64),
            _ => None,
        };
        assert_eq!(code(b"{not json"), Some(-32700));
        assert_eq!(code(b"[]"), Some(-32600));
        assert_eq!(code(br#"{"id":1,"method":"ping"}"#), Some(-32600));
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#),
            Some(-32600)
        );
        assert_eq!(code(br#"{"jsonrpc":"2.0","id":1}"#), Some(-32600));
    }

    #[test]
    fn statuses_of_per_request_errors() {
        assert_eq!(status_for(Some(-32601)), 404);
        assert_eq!(status_for(Some(-32022)), 400);
        assert_eq!(status_for(Some(-32602)), 200);
        assert_eq!(status_for(None), 200);
        assert_eq!(new_session_id().len(), 32);
        assert!(new_session_id().bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }
}
