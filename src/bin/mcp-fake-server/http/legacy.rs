//! `--http-legacy`: the HTTP+SSE transport of 2024-11-05. GET `/sse` (or `/mcp`) opens a
//! session's stream, close-delimited, whose first event is `endpoint` with data
//! `/messages?session=ID`; POSTs there are answered 202 and every message of the session goes
//! on the stream as a `message` event. The session ends with its stream. POST `/mcp` is 405,
//! what a client falling back from Streamable HTTP expects before it tries GET.

use serde_json::Value;
use std::sync::atomic::Ordering;

use super::hub::Kind;
use super::mcp::{new_session_id, parse_rpc, pump, sse_headers, Rpc, Session};
use super::wire::{self, Framing, Request};
use super::{App, Conn};

pub(crate) fn handle(app: &App, conn: &mut Conn, req: &Request) -> bool {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/sse" | "/mcp") => stream(app, conn),
        ("POST", "/messages") => post(app, conn, req),
        (_, "/mcp" | "/sse") => conn.empty(405, &[("Allow", "GET".into())]),
        (_, "/messages") => conn.empty(405, &[("Allow", "POST".into())]),
        _ => conn
            .respond(404, Some("text/plain"), &[], b"not found\n")
            .is_ok(),
    }
}

fn stream(app: &App, conn: &mut Conn) -> bool {
    let session = Session::new(app, Kind::Legacy, new_session_id());
    let Some(stream) = session.hub.attach_standalone() else {
        return false;
    };
    app.register(&session);
    if app.cfg.verbose {
        say!("fake-server: legacy session {} opened", session.id);
    }
    let endpoint = format!("/messages?session={}", session.id);
    let event = wire::sse_event(None, None, Some("endpoint"), endpoint.as_bytes());
    let written = conn
        .head(200, &sse_headers(Framing::Close, &[]))
        .and_then(|()| wire::write_part(&mut conn.out, Framing::Close, &event));
    if written.is_ok() {
        pump(conn, &session.hub, stream, Framing::Close, true);
    }
    app.remove(&session.id);
    session.end();
    if app.cfg.verbose {
        say!("fake-server: legacy session {} closed", session.id);
    }
    false
}

fn post(app: &App, conn: &mut Conn, req: &Request) -> bool {
    let Some(sid) = req
        .query_param("session")
        .or_else(|| req.query_param("sessionId"))
    else {
        return conn.rpc_error(400, &Value::Null, -32000, "missing ?session=ID");
    };
    let Some(session) = app.session(sid, Kind::Legacy) else {
        return conn.rpc_error(404, &Value::Null, -32001, "Session not found");
    };
    match parse_rpc(&req.body) {
        Ok(rpc) => {
            if let Rpc::Request { .. } = rpc {
                session.requests.fetch_add(1, Ordering::SeqCst);
            }
            // Accepted first, so the answer on the stream follows the 202.
            let reusable = conn.empty(202, &[]);
            session.dispatch(0, None, &req.body);
            reusable
        }
        Err((status, body)) => conn.json(status, &[], &body),
    }
}
