//! The worker, the read path and the handshake on in-memory pipes, against servers written
//! as a few lines of Rust: each test plays the server itself, message by message.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::{Generation, ServerConfig};
use crate::error::{CloseReason, Error};
use crate::handler::{ClientHandler, ListKind};

use super::handle::{Session, Starting};
use super::options::{CallOptions, CancelHandle};
use super::sys;
use super::worker::{Conn, Connect};

/// The server's ends of the pipes.
struct Server {
    input: BufReader<std::fs::File>,
    output: std::fs::File,
}

impl Server {
    /// The next message the client wrote (`None` at end of input).
    fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.input.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("the client writes JSON lines")),
        }
    }

    /// Reads until a request (skipping notifications, and answering the `tools/list` a
    /// session sends before its first call of a tool it has not seen listed).
    fn request(&mut self) -> Option<Value> {
        loop {
            let m = self.read()?;
            if m["method"] == "tools/list" {
                self.answer(&m, json!({"tools": []}));
                continue;
            }
            if m.get("id").is_some() && m.get("method").is_some() {
                return Some(m);
            }
        }
    }

    fn write(&mut self, message: Value) {
        let mut line = message.to_string();
        line.push('\n');
        let _ = self.output.write_all(line.as_bytes());
    }

    fn write_raw(&mut self, bytes: &[u8]) {
        let _ = self.output.write_all(bytes);
    }

    fn answer(&mut self, request: &Value, result: Value) {
        self.write(json!({"jsonrpc": "2.0", "id": request["id"], "result": result}));
    }

    /// Answers `initialize` (the session pins the handshake generation) and reads
    /// `notifications/initialized`.
    fn handshake(&mut self) {
        let init = self.request().expect("initialize");
        assert_eq!(init["method"], "initialize");
        self.answer(
            &init,
            json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "mem", "version": "1"}}),
        );
        let note = self.read().expect("notifications/initialized");
        assert_eq!(note["method"], "notifications/initialized");
    }
}

/// Connects a session to `server`, run on a thread of its own over in-memory pipes.
fn memory(server: impl FnOnce(Server) + Send + 'static) -> (Connect, JoinHandle<()>) {
    let (server_in, client_out) = sys::pipe().unwrap();
    let (client_in, server_out) = sys::pipe().unwrap();
    let (client_err, server_err) = sys::pipe().unwrap();
    for fd in [&client_out, &client_in, &client_err] {
        sys::set_nonblocking(fd.as_raw_fd()).unwrap();
    }
    let thread = thread::spawn(move || {
        let _stderr: OwnedFd = server_err;
        server(Server {
            input: BufReader::new(std::fs::File::from(server_in)),
            output: std::fs::File::from(server_out),
        })
    });
    let connect: Connect = Box::new(move |_| {
        Ok(Conn {
            stdin: client_out,
            stdout: client_in,
            stderr: Some(client_err),
            process: None,
        })
    });
    (connect, thread)
}

fn config() -> ServerConfig {
    ServerConfig::new("mem", "unused")
        .generation(Generation::Handshake)
        .close_grace(Duration::from_millis(100))
}

fn start(
    config: ServerConfig,
    server: impl FnOnce(Server) + Send + 'static,
) -> (Session, JoinHandle<()>) {
    let (connect, thread) = memory(server);
    let session = Starting::launch(config, connect)
        .unwrap()
        .wait(Instant::now() + Duration::from_secs(5))
        .unwrap();
    (session, thread)
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

fn echo(request: &Value) -> Value {
    json!({"content": [{"type": "text", "text": request["params"]["arguments"]["text"]}]})
}

#[test]
fn the_handshake_agrees_and_calls_are_answered() {
    let (s, server) = start(config(), |mut srv| {
        srv.handshake();
        while let Some(req) = srv.request() {
            let result = echo(&req);
            srv.answer(&req, result);
        }
    });
    assert_eq!(s.details().protocol_version, "2025-11-25");
    assert_eq!(s.details().server_info.name, "mem");
    let r = s.call_tool("echo", json!({"text": "hi"})).unwrap();
    assert_eq!(r.text(), "hi");
    s.close();
    server.join().unwrap();
}

#[test]
fn answers_in_any_order_reach_their_own_callers() {
    let (s, server) = start(config(), |mut srv| {
        srv.handshake();
        // Collect eight requests, answer them backwards.
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(srv.request().unwrap());
        }
        for req in held.iter().rev() {
            let result = echo(req);
            srv.answer(req, result);
        }
        while srv.read().is_some() {}
    });
    thread::scope(|scope| {
        let calls: Vec<_> = (0..8)
            .map(|i| {
                let s = &s;
                scope.spawn(move || s.call_tool("echo", json!({ "text": format!("c{i}") })))
            })
            .collect();
        for (i, c) in calls.into_iter().enumerate() {
            assert_eq!(c.join().unwrap().unwrap().text(), format!("c{i}"));
        }
    });
    s.close();
    server.join().unwrap();
}

#[test]
fn every_progress_report_before_the_answer_reaches_the_callback_in_order() {
    let (s, server) = start(config(), |mut srv| {
        srv.handshake();
        while let Some(req) = srv.request() {
            let token = req["params"]["_meta"]["progressToken"].clone();
            for i in 1..=10 {
                srv.write(json!({"jsonrpc": "2.0", "method": "notifications/progress",
                    "params": {"progressToken": token, "progress": i, "total": 10}}));
            }
            srv.answer(&req, json!({"content": []}));
        }
    });
    for _ in 0..20 {
        let mut seen = Vec::new();
        s.call_tool_with(
            "work",
            json!({}),
            CallOptions::new().on_progress(|p| seen.push(p.progress)),
        )
        .unwrap();
        assert_eq!(seen, (1..=10).map(f64::from).collect::<Vec<_>>());
    }
    s.close();
    server.join().unwrap();
}

#[test]
fn the_server_asks_mid_call_and_the_reading_caller_answers() {
    let (s, server) = start(config(), |mut srv| {
        srv.handshake();
        let req = srv.request().unwrap();
        srv.write(json!({"jsonrpc": "2.0", "id": 0, "method": "ping"}));
        let pong = srv.read().unwrap();
        assert_eq!(pong, json!({"jsonrpc": "2.0", "id": 0, "result": {}}));
        srv.answer(
            &req,
            json!({"content": [{"type": "text", "text": "after ping"}]}),
        );
        while srv.read().is_some() {}
    });
    let r = s.call_tool("t", json!({})).unwrap();
    assert_eq!(r.text(), "after ping");
    s.close();
    server.join().unwrap();
}

#[test]
fn a_deadline_holds_while_the_server_stalls_mid_line() {
    let (s, server) = start(config(), |mut srv| {
        srv.handshake();
        let first = srv.request().unwrap();
        // Half an answer, then nothing for a while.
        srv.write_raw(br#"{"jsonrpc":"2.0","id":"#);
        thread::sleep(Duration::from_millis(600));
        srv.write_raw(format!("{},\"result\":{{\"content\":[]}}}}\n", first["id"]).as_bytes());
        while let Some(req) = srv.request() {
            let result = echo(&req);
            srv.answer(&req, result);
        }
    });
    let start = Instant::now();
    let err = s
        .call_tool_with(
            "t",
            json!({}),
            CallOptions::new().timeout(Duration::from_millis(150)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(
        start.elapsed() < Duration::from_millis(450),
        "{:?}",
        start.elapsed()
    );
    // The line completes later: it is read past (an answer to nobody), and the session
    // goes on.
    let r = s.call_tool("echo", json!({"text": "next"})).unwrap();
    assert_eq!(r.text(), "next");
    assert_eq!(s.unmatched_responses(), 1);
    s.close();
    server.join().unwrap();
}

#[test]
fn a_reading_caller_is_cancelled_at_once() {
    let (s, server) = start(config(), |mut srv| {
        srv.handshake();
        while srv.read().is_some() {}
    });
    let cancel = CancelHandle::new();
    let later = cancel.clone();
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        later.cancel();
    });
    let start = Instant::now();
    let err = s
        .call_tool_with("t", json!({}), CallOptions::new().cancel_with(&cancel))
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));
    canceller.join().unwrap();
    s.close();
    server.join().unwrap();
}

#[test]
fn end_of_output_fails_every_waiter_as_outcome_unknown() {
    let (s, server) = start(config(), |mut srv| {
        srv.handshake();
        for _ in 0..3 {
            srv.request().unwrap();
        }
        // Gone without answering.
    });
    thread::scope(|scope| {
        let calls: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| s.call_tool("t", json!({}))))
            .collect();
        for c in calls {
            let err = c.join().unwrap().unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::OutcomeUnknown {
                        reason: CloseReason::Eof,
                        ..
                    }
                ),
                "{err}"
            );
        }
    });
    assert!(!s.is_alive());
    // A call after the end was never sent.
    assert!(matches!(
        s.call_tool("t", json!({})),
        Err(Error::SessionClosed { .. })
    ));
    s.close();
    server.join().unwrap();
}

#[test]
fn an_oversize_answer_names_the_limit_and_the_session_goes_on() {
    let (s, server) = start(config().max_message_size(4096), |mut srv| {
        srv.handshake();
        let big = srv.request().unwrap();
        let result = json!({"content": [{"type": "text", "text": "x".repeat(100_000)}]});
        srv.answer(&big, result);
        while let Some(req) = srv.request() {
            let result = echo(&req);
            srv.answer(&req, result);
        }
    });
    let err = s.call_tool("big", json!({})).unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit: 4096, size } if size > 100_000),
        "{err}"
    );
    assert_eq!(
        s.call_tool("echo", json!({"text": "ok"})).unwrap().text(),
        "ok"
    );
    s.close();
    server.join().unwrap();
}

#[test]
fn a_request_never_written_is_withdrawn_when_its_caller_gives_up() {
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let (s, server) = start(config(), move |mut srv| {
        srv.handshake();
        // Read nothing until told: the pipe fills.
        let _ = rx.recv();
        let mut ids = Vec::new();
        while let Some(req) = srv.request() {
            ids.push(req["params"]["name"].clone());
            let result = echo(&req);
            srv.answer(&req, result);
            if req["params"]["name"] == "last" {
                break;
            }
        }
        // The small call that gave up behind the full pipe never arrived.
        assert!(!ids.contains(&json!("small")), "{ids:?}");
        while srv.read().is_some() {}
    });
    let short = || CallOptions::new().timeout(Duration::from_millis(200));
    let big = "x".repeat(1 << 20);
    // Long enough for the worker to have written the first 64 KiB of it even on a loaded
    // machine (a request none of whose bytes were written is withdrawn, and then the small
    // one would go through).
    let e = s
        .call_tool_with(
            "big",
            json!({ "text": big }),
            CallOptions::new().timeout(Duration::from_secs(1)),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    let e = s
        .call_tool_with("small", json!({"text": "s"}), short())
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    tx.send(()).unwrap();
    assert_eq!(
        s.call_tool("last", json!({"text": "l"})).unwrap().text(),
        "l"
    );
    s.close();
    server.join().unwrap();
}

struct Reentrant {
    session: parking_lot::Mutex<Option<Session>>,
    answer: parking_lot::Mutex<Option<String>>,
    calls: AtomicUsize,
}

impl ClientHandler for Arc<Reentrant> {
    fn on_list_changed(&self, _server: &str, _kind: ListKind) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(s) = self.session.lock().as_ref() {
            let outcome = s.list_tools().map(|_| ()).map_err(|e| e.to_string());
            *self.answer.lock() = Some(format!("{outcome:?}"));
        }
    }
}

#[test]
fn a_hook_that_calls_its_own_session_gets_an_error_not_a_deadlock() {
    let hook = Arc::new(Reentrant {
        session: parking_lot::Mutex::new(None),
        answer: parking_lot::Mutex::new(None),
        calls: AtomicUsize::new(0),
    });
    let (s, server) = start(config().handler(hook.clone()), |mut srv| {
        srv.handshake();
        while let Some(req) = srv.request() {
            srv.write(json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}));
            let result = echo(&req);
            srv.answer(&req, result);
        }
    });
    *hook.session.lock() = Some(s.clone());
    let start = Instant::now();
    assert_eq!(
        s.call_tool("echo", json!({"text": "x"})).unwrap().text(),
        "x"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(hook.calls.load(Ordering::SeqCst), 1);
    let answer = hook.answer.lock().clone().unwrap();
    assert!(answer.contains("handler hook"), "{answer}");
    hook.session.lock().take();
    s.close();
    server.join().unwrap();
}

#[test]
fn a_refused_initialize_and_probe_name_both() {
    let (connect, server) = memory(|mut srv| {
        let discover = srv.request().unwrap();
        let init = srv.request().unwrap();
        for req in [discover, init] {
            srv.write(json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32601, "message": "nope"}}));
        }
        while srv.read().is_some() {}
    });
    let err = Starting::launch(config().generation(Generation::Auto), connect)
        .unwrap()
        .wait(Instant::now() + Duration::from_secs(5))
        .unwrap_err();
    let Error::Handshake { reason, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        reason.contains("initialize failed") && reason.contains("server/discover failed"),
        "{reason}"
    );
    server.join().unwrap();
}

#[test]
fn text_helper_reads_the_first_text_item() {
    assert_eq!(
        text(&json!({"content": [{"type": "text", "text": "a"}]})),
        "a"
    );
}
