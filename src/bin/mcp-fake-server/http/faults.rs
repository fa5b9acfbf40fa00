//! HTTP faults chosen by flags: 401 with a `WWW-Authenticate` challenge (`--http-401`), 503
//! with `Retry-After` (`--http-503`), a 307 to another origin (`--http-redirect`), an
//! oversize JSON answer to `tools/call` (`--http-oversize`), malformed SSE
//! (`--http-bad-sse`); and the protected resource metadata the challenge points to.
//! (`--http-cut-stream`, `--http-stall-sse`, `--http-404-after` and `--http-slow-headers`
//! live where streams, sessions and response heads are written.)

use serde_json::{json, Value};
use std::io::Write;
use std::sync::atomic::Ordering;

use super::hub::{Kind, Take};
use super::mcp::{sse_headers, Session, POLL};
use super::wire::{self, Framing, Request};
use super::{App, AuthMode, Conn};

pub(crate) const PROTECTED_RESOURCE: &str = "/.well-known/oauth-protected-resource";

/// `GET /.well-known/oauth-protected-resource` (RFC 9728), never behind `--http-401`.
pub(crate) fn protected_resource(app: &App, conn: &mut Conn, req: &Request) -> bool {
    if req.method != "GET" {
        return conn.empty(405, &[("Allow", "GET".into())]);
    }
    let body = json!({
        "resource": format!("{}/mcp", app.base),
        "authorization_servers": [],
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-fake-server"
    });
    conn.json(200, &[], &body)
}

/// The Bearer token of a request, if it has one.
fn bearer(req: &Request) -> Option<&str> {
    let (scheme, token) = req.header("authorization")?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Faults answered before the request is looked at: 401, 503, 307. `Some(reusable)` if one
/// answered.
pub(crate) fn before(app: &App, conn: &mut Conn, req: &Request) -> Option<bool> {
    let h = &app.cfg.http;
    let first = !app.seen_first.swap(true, Ordering::SeqCst);
    let refused = match h.auth {
        None => false,
        Some(AuthMode::Always) => bearer(req) != Some("good"),
        Some(AuthMode::Once) => first || bearer(req).is_none(),
    };
    if refused {
        let challenge = format!(
            "Bearer realm=\"fake\", error=\"invalid_token\", resource_metadata=\"{}{PROTECTED_RESOURCE}\"",
            app.base
        );
        let body = json!({"error": "invalid_token", "error_description": "a valid Bearer token is required"});
        return Some(conn.json(401, &[("WWW-Authenticate", challenge)], &body));
    }
    if h.bare_503 {
        // A proxy's 503 after it forwarded the call: only tool calls get it.
        let tool_call = serde_json::from_slice::<serde_json::Value>(&req.body)
            .is_ok_and(|v| v["method"] == "tools/call");
        if req.method == "POST"
            && tool_call
            && app.posts.fetch_add(1, Ordering::SeqCst) < h.unavailable
        {
            return Some(conn.empty(503, &[]));
        }
    } else if req.method == "POST" && app.posts.fetch_add(1, Ordering::SeqCst) < h.unavailable {
        return Some(conn.empty(503, &[("Retry-After", "1".into())]));
    }
    if let (Some(url), "POST", "/mcp") = (&h.redirect, req.method.as_str(), req.path.as_str()) {
        return Some(conn.empty(307, &[("Location", url.clone())]));
    }
    None
}

/// `--http-bad-sse`: an SSE answer whose first event is not JSON, then a 2 MiB line without
/// a newline; then the body ends.
pub(crate) fn bad_sse(conn: &mut Conn) -> bool {
    let framing = match conn.http10 {
        true => Framing::Close,
        false => Framing::Chunked,
    };
    if conn.head(200, &sse_headers(framing, &[])).is_err() {
        return false;
    }
    let mut long = b"data: ".to_vec();
    long.resize(long.len() + (2 << 20), b'x');
    let written = wire::write_part(
        &mut conn.out,
        framing,
        b"event: message\ndata: {\"jsonrpc\": \"2.0\", \"id\": 1, \"result\": {oops\n\n",
    )
    .and_then(|()| wire::write_part(&mut conn.out, framing, &long))
    .and_then(|()| wire::write_end(&mut conn.out, framing));
    say!("fake-server: answered with malformed SSE");
    written.is_ok() && framing == Framing::Chunked
}

/// `--http-oversize BYTES`: once the tool has answered, a JSON-RPC response of exactly BYTES
/// bytes (or the smallest one possible) as the JSON body, whatever the tool said.
pub(crate) fn oversize(
    conn: &mut Conn,
    session: &Session,
    key: u64,
    id: &Value,
    bytes: u64,
    extra: &[(&str, String)],
) -> bool {
    let hub = &session.hub;
    let Some(writer) = hub.attach(key) else {
        return false;
    };
    loop {
        match hub.take(key, writer, POLL) {
            Take::Events(events) if events.iter().any(|e| e.is_final) => break,
            Take::Events(_) => {}
            Take::Finished => break,
            Take::Ended | Take::Replaced => return false,
            Take::Idle if conn.peer_closed() => {
                if let (Kind::Stateless, Some(_)) = (hub.kind, hub.drop_stream(key)) {
                    say!("fake-server: client gone before the oversize answer");
                }
                return false;
            }
            Take::Idle => {}
        }
    }
    hub.drop_stream(key);
    let prefix = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{\"content\":[{{\"type\":\"text\",\"text\":\""
    );
    let suffix = match hub.kind {
        Kind::Stateless => "\"}],\"resultType\":\"complete\"}}",
        _ => "\"}]}}",
    };
    let fixed = (prefix.len() + suffix.len()) as u64;
    let pad = bytes.saturating_sub(fixed);
    if bytes < fixed {
        say!("fake-server: --http-oversize {bytes} is below the smallest answer ({fixed} bytes)");
    }
    let mut headers = extra.to_vec();
    headers.push(("Content-Type", "application/json".into()));
    headers.push(("Content-Length", (fixed + pad).to_string()));
    if conn.head(200, &headers).is_err() {
        return false;
    }
    let block = vec![b'x'; 64 * 1024];
    let mut left = pad;
    let mut write = || -> std::io::Result<()> {
        conn.out.write_all(prefix.as_bytes())?;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            conn.out.write_all(&block[..n])?;
            left -= n as u64;
        }
        conn.out.write_all(suffix.as_bytes())?;
        conn.out.flush()
    };
    write().is_ok()
}
