//! A session against the fake server: protocol behaviour, one test per feature. Each test
//! checks that no child, thread or file descriptor is left afterwards.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fake, Clean};
use mcp_pool::{
    CallOptions, CancelHandle, ClientHandler, Error, Generation, HandlerError, HandlerSupport,
    ListKind, LogLevel, Phase, ServerRequest, Session, StaticRoots,
};
use serde_json::{json, Value};

fn text(session: &Session, tool: &str, args: Value) -> String {
    let r = session.call_tool(tool, args).unwrap();
    assert!(!r.is_error, "{tool}: {r:?}");
    r.text()
}

#[test]
fn auto_generation_prefers_per_request_when_the_server_speaks_it() {
    let _clean = Clean::new();
    let s = Session::start(fake(&["--generation", "both"])).unwrap();
    let d = s.details();
    assert_eq!(d.generation, Generation::PerRequest);
    assert_eq!(d.protocol_version, "2026-07-28");
    assert_eq!(d.server_info.name, "mcp-fake-server");
    assert!(d.has_capability("tools"));
    // Every request carries the envelope: the server sees our version per request.
    let caps: Value = serde_json::from_str(&text(&s, "client_caps", json!({}))).unwrap();
    assert_eq!(caps["protocolVersion"], "2026-07-28");
    assert_eq!(caps["generation"], "stateless");
    assert_eq!(text(&s, "echo", json!({"text": "hi"})), "hi");
    // No ping in this generation: ping() uses server/discover instead.
    s.ping().unwrap();
    s.close();
}

#[test]
fn auto_generation_falls_back_to_initialize() {
    let _clean = Clean::new();
    let s = Session::start(fake(&["--generation", "handshake"])).unwrap();
    assert_eq!(s.details().generation, Generation::Handshake);
    assert_eq!(s.details().protocol_version, "2025-11-25");
    assert!(s.details().instructions.is_some());
    let caps: Value = serde_json::from_str(&text(&s, "client_caps", json!({}))).unwrap();
    assert_eq!(caps["generation"], "handshake");
    assert_eq!(caps["clientInfo"]["name"], "mcp-pool");
    // The default handler supports nothing, so nothing is declared.
    assert_eq!(caps["capabilities"], json!({}));
    s.ping().unwrap();
    s.close();
}

#[test]
fn a_server_that_ignores_discover_costs_nothing() {
    let _clean = Clean::new();
    // `initialize` goes out right behind the probe, so a server that never answers
    // `server/discover` is not waited for.
    let s = Session::start(fake(&["--discover-silent"])).unwrap();
    assert_eq!(s.details().generation, Generation::Handshake);
    assert!(
        s.handshake_time() < Duration::from_millis(500),
        "{:?}",
        s.handshake_time()
    );
    assert_eq!(text(&s, "echo", json!({"text": "x"})), "x");
    s.close();
}

#[test]
fn pinned_generations_skip_the_probe() {
    let _clean = Clean::new();
    let s =
        Session::start(fake(&["--generation", "both"]).generation(Generation::Handshake)).unwrap();
    assert_eq!(s.details().generation, Generation::Handshake);
    s.close();
    let s = Session::start(fake(&["--generation", "stateless"]).generation(Generation::PerRequest))
        .unwrap();
    assert_eq!(s.details().generation, Generation::PerRequest);
    assert_eq!(text(&s, "echo", json!({"text": "y"})), "y");
    s.close();
    // A handshake-only server cannot be pinned to the per-request generation.
    let err =
        Session::start(fake(&["--generation", "handshake"]).generation(Generation::PerRequest))
            .unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err}");
}

#[test]
fn list_tools_follows_every_page() {
    let _clean = Clean::new();
    let s = Session::start(fake(&["--page-size", "3", "--extra-tools", "20"])).unwrap();
    let tools = s.list_tools().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    for i in 0..20 {
        assert!(names.contains(&format!("extra_{i}").as_str()), "{names:?}");
    }
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "no tool twice");
    let echo = tools.iter().find(|t| t.name == "echo").unwrap();
    assert!(echo.safe_to_repeat());
    let count = tools.iter().find(|t| t.name == "count").unwrap();
    assert!(!count.safe_to_repeat());
    assert_eq!(s.list_resources().unwrap().len(), 5);
    assert_eq!(s.list_resource_templates().unwrap().len(), 1);
    assert_eq!(s.list_prompts().unwrap().len(), 1);
    s.close();
}

#[test]
fn a_cursor_loop_is_a_protocol_error() {
    let _clean = Clean::new();
    let s = Session::start(fake(&["--page-size", "4", "--cursor-loop"])).unwrap();
    let err = s.list_tools().unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("loops")),
        "{err}"
    );
    // The session itself is fine.
    assert_eq!(
        text(&s, "echo", json!({"text": "still here"})),
        "still here"
    );
    s.close();
}

#[test]
fn tool_results_are_typed() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    let r = s.call_tool("add", json!({"a": 2, "b": 40})).unwrap();
    assert_eq!(r.structured_content, Some(json!({"sum": 42})));
    assert_eq!(r.text(), "42");
    let r = s.call_tool("structured", json!({})).unwrap();
    assert_eq!(r.structured_content.unwrap()["items"], json!([1, 2, 3]));
    // A tool's failure is a result, not an error.
    let r = s.call_tool("fail", json!({"message": "nope"})).unwrap();
    assert!(r.is_error);
    assert_eq!(r.text(), "nope");
    let r = s.call_tool("no_such_tool", json!({})).unwrap();
    assert!(r.is_error);
    assert_eq!(r.text(), "unknown tool: no_such_tool");
    // A JSON-RPC error is a typed Server error with code, message and data.
    let err = s
        .call_tool("rpc_error", json!({"code": -32042, "message": "bad thing"}))
        .unwrap_err();
    match err {
        Error::Server {
            code,
            message,
            data,
        } => {
            assert_eq!(code, -32042);
            assert_eq!(message, "bad thing");
            assert_eq!(data, Some(json!({"tool": "rpc_error"})));
        }
        other => panic!("{other}"),
    }
    s.close();
}

#[test]
fn bad_arguments_are_rejected_before_sending() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    for (tool, args) in [
        ("echo", json!([1, 2])),
        ("echo", json!("x")),
        ("", json!({})),
    ] {
        let err = s.call_tool(tool, args).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
    let err = s.request("tools/list", Some(json!(5))).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    let err = s.request("", None).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert_eq!(s.calls(), 0, "nothing was sent");
    // An unknown method is the server's -32601.
    let err = s.request("no/such/method", None).unwrap_err();
    assert!(matches!(err, Error::Server { code: -32601, .. }), "{err}");
    s.close();
}

#[test]
fn many_threads_share_one_session_and_each_gets_its_own_reply() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    std::thread::scope(|scope| {
        for t in 0..16 {
            let s = s.clone();
            scope.spawn(move || {
                for i in 0..100 {
                    let want = format!("t{t}-i{i}");
                    assert_eq!(text(&s, "echo", json!({ "text": want })), want);
                }
            });
        }
    });
    assert_eq!(s.calls(), 1600);
    assert_eq!(s.in_flight(), 0);
    assert_eq!(s.unmatched_responses(), 0);
    s.close();
}

#[test]
fn responses_out_of_order_reach_their_callers() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    let slow = {
        let s = s.clone();
        std::thread::spawn(move || text(&s, "sleep", json!({"ms": 400})))
    };
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    assert_eq!(text(&s, "sleep", json!({"ms": 10})), "slept 10");
    assert!(
        start.elapsed() < Duration::from_millis(350),
        "the quick call did not wait"
    );
    assert_eq!(slow.join().unwrap(), "slept 400");
    s.close();
}

#[test]
fn progress_reaches_the_callback_and_extends_the_deadline() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    let mut reports = Vec::new();
    let r = s
        .call_tool_with(
            "sleep",
            json!({"ms": 900, "progress_steps": 9}),
            CallOptions::new()
                .timeout(Duration::from_millis(450))
                .on_progress(|p| reports.push((p.progress, p.total))),
        )
        .unwrap();
    assert_eq!(r.text(), "slept 900");
    assert_eq!(reports.len(), 9, "{reports:?}");
    assert_eq!(reports[8], (9.0, Some(9.0)));
    // Without the extension the same call times out.
    let err = s
        .call_tool_with(
            "sleep",
            json!({"ms": 900, "progress_steps": 9}),
            CallOptions::new()
                .timeout(Duration::from_millis(450))
                .keep_deadline(true)
                .on_progress(|_| {}),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Request,
                ..
            }
        ),
        "{err}"
    );
    s.close();
}

#[test]
fn every_progress_report_of_a_burst_arrives_in_order() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    let steps = 64u32;
    let want: Vec<(f64, Option<f64>)> = (1..=steps)
        .map(|i| (f64::from(i), Some(f64::from(steps))))
        .collect();
    for call in 0..20 {
        // The reports come back to back, right before the answer.
        let mut seen = Vec::new();
        let r = s
            .call_tool_with(
                "progress_burst",
                json!({ "steps": steps }),
                CallOptions::new()
                    .timeout(Duration::from_secs(5))
                    .on_progress(|p| seen.push((p.progress, p.total))),
            )
            .unwrap();
        assert_eq!(r.text(), format!("burst {steps}"));
        assert_eq!(seen, want, "call {call}");
    }
    // And with other callers waiting on the session at the same time.
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (s, want) = (&s, &want);
            scope.spawn(move || {
                for call in 0..10 {
                    let mut seen = Vec::new();
                    s.call_tool_with(
                        "progress_burst",
                        json!({ "steps": steps }),
                        CallOptions::new()
                            .timeout(Duration::from_secs(5))
                            .on_progress(|p| seen.push((p.progress, p.total))),
                    )
                    .unwrap();
                    assert_eq!(&seen, want, "thread {t}, call {call}");
                }
            });
        }
    });
    s.close();
}

#[test]
fn a_timeout_cancels_the_request_and_the_session_goes_on() {
    let _clean = Clean::new();
    let s = Session::start(fake(&["--verbose"])).unwrap();
    let start = Instant::now();
    let err = s
        .call_tool_with(
            "hang",
            json!({}),
            CallOptions::new().timeout(Duration::from_millis(200)),
        )
        .unwrap_err();
    let waited = start.elapsed();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Request,
                ..
            }
        ),
        "{err}"
    );
    assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(2));
    assert_eq!(text(&s, "echo", json!({"text": "after"})), "after");
    s.close();
    // The server was told: it logs `cancelled ID` for the request it stopped.
    assert!(s.stderr_tail().contains("cancelled"), "{}", s.stderr_tail());
}

#[test]
fn another_thread_can_cancel_a_call() {
    let _clean = Clean::new();
    let s = Session::start(fake(&["--verbose"])).unwrap();
    let cancel = CancelHandle::new();
    let trigger = cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        trigger.cancel();
    });
    let start = Instant::now();
    let err = s
        .call_tool_with("hang", json!({}), CallOptions::new().cancel_with(&cancel))
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));
    t.join().unwrap();
    // A call with an already cancelled handle does not start.
    let err = s
        .call_tool_with(
            "echo",
            json!({"text": "x"}),
            CallOptions::new().cancel_with(&cancel),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert_eq!(text(&s, "echo", json!({"text": "ok"})), "ok");
    s.close();
    assert!(s.stderr_tail().contains("cancelled"), "{}", s.stderr_tail());
}

struct Recorder {
    list_changed: AtomicUsize,
    updated: parking_lot::Mutex<Vec<String>>,
}

impl ClientHandler for Recorder {
    fn supports(&self) -> HandlerSupport {
        HandlerSupport {
            roots: true,
            sampling: true,
            elicitation_form: true,
            ..HandlerSupport::default()
        }
    }
    fn roots(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        Ok(json!({"roots": [{"uri": "file:///work", "name": "work"}]}))
    }
    fn sampling(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        // Slow on purpose: handlers run off the worker thread.
        std::thread::sleep(Duration::from_millis(100));
        Ok(
            json!({"role": "assistant", "content": {"type": "text", "text": "sampled"}, "model": "m"}),
        )
    }
    fn elicitation(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        Err(HandlerError::internal("user declined to answer"))
    }
    fn on_list_changed(&self, _server: &str, kind: ListKind) {
        if kind == ListKind::Tools {
            self.list_changed.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn on_resource_updated(&self, _server: &str, uri: &str) {
        self.updated.lock().push(uri.to_owned());
    }
}

#[test]
fn server_requests_mid_call_reach_the_handler() {
    let _clean = Clean::new();
    let rec = Arc::new(Recorder {
        list_changed: AtomicUsize::new(0),
        updated: parking_lot::Mutex::new(Vec::new()),
    });
    let s = Session::start(fake(&["--generation", "handshake"]).handler(rec.clone())).unwrap();
    let caps: Value = serde_json::from_str(&text(&s, "client_caps", json!({}))).unwrap();
    assert_eq!(caps["capabilities"]["roots"], json!({}));
    assert!(caps["capabilities"]["sampling"].is_object());
    let roots: Value = serde_json::from_str(&text(&s, "ask_roots", json!({}))).unwrap();
    assert_eq!(roots["roots"][0]["uri"], "file:///work");
    // A slow handler does not stall other calls.
    let sampling = {
        let s = s.clone();
        std::thread::spawn(move || text(&s, "ask_sampling", json!({})))
    };
    assert_eq!(text(&s, "echo", json!({"text": "meanwhile"})), "meanwhile");
    let sampled: Value = serde_json::from_str(&sampling.join().unwrap()).unwrap();
    assert_eq!(sampled["content"]["text"], "sampled");
    // A handler error goes back to the server as a JSON-RPC error.
    let elicited: Value = serde_json::from_str(&text(&s, "ask_elicitation", json!({}))).unwrap();
    assert_eq!(elicited["message"], "user declined to answer");
    assert_eq!(text(&s, "ping_client", json!({})), "pong");
    // Notifications.
    assert!(!s.take_tools_changed());
    assert_eq!(text(&s, "list_changed", json!({})), "ok");
    assert!(s
        .list_tools()
        .unwrap()
        .iter()
        .any(|t| t.name.starts_with("added_")));
    assert!(s.take_tools_changed());
    assert!(!s.take_tools_changed());
    assert_eq!(rec.list_changed.load(Ordering::SeqCst), 1);
    s.subscribe("fake://r/1").unwrap();
    assert_eq!(text(&s, "touch", json!({"uri": "fake://r/1"})), "ok");
    s.unsubscribe("fake://r/1").unwrap();
    s.close();
    assert_eq!(*rec.updated.lock(), vec!["fake://r/1".to_owned()]);
}

#[test]
fn unsupported_server_requests_get_method_not_found() {
    let _clean = Clean::new();
    let s = Session::start(fake(&["--generation", "handshake"])).unwrap();
    let answer: Value = serde_json::from_str(&text(&s, "ask_roots", json!({}))).unwrap();
    assert_eq!(answer["code"], -32601, "{answer}");
    s.close();
    let s = Session::start(
        fake(&["--generation", "handshake"]).handler(StaticRoots::new([("file:///a", "a")])),
    )
    .unwrap();
    let answer: Value = serde_json::from_str(&text(&s, "ask_roots", json!({}))).unwrap();
    assert_eq!(answer["roots"][0]["name"], "a");
    let answer: Value = serde_json::from_str(&text(&s, "ask_sampling", json!({}))).unwrap();
    assert_eq!(answer["code"], -32601, "{answer}");
    s.close();
}

#[test]
fn resources_prompts_completion_and_logging() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    let r = s.read_resource("fake://r/3").unwrap();
    assert_eq!(r.text(), "resource 3");
    assert_eq!(r.contents[0].mime_type.as_deref(), Some("text/plain"));
    let err = s.read_resource("fake://nope").unwrap_err();
    assert!(matches!(err, Error::Server { code: -32002, .. }), "{err}");
    let p = s.get_prompt("greet", json!({"name": "Ada"})).unwrap();
    assert_eq!(p.messages[0].content.as_text(), Some("Hello Ada"));
    let c = s
        .complete(
            json!({"type": "ref/prompt", "name": "greet"}),
            json!({"name": "name", "value": "A"}),
        )
        .unwrap();
    assert_eq!(c["values"], json!(["Alice"]));
    s.set_logging_level(LogLevel::Error).unwrap();
    assert_eq!(
        text(&s, "log", json!({"level": "info", "message": "m"})),
        "suppressed"
    );
    assert_eq!(
        text(&s, "log", json!({"level": "error", "message": "m"})),
        "ok"
    );
    s.notify("notifications/roots/list_changed", None).unwrap();
    assert_eq!(
        text(&s, "echo", json!({"text": "after notify"})),
        "after notify"
    );
    s.close();
}

#[test]
fn environment_is_limited_unless_inherited() {
    let _clean = Clean::new();
    std::env::set_var("MCP_POOL_TEST_SECRET", "leak");
    let s = Session::start(fake(&[]).env("GIVEN", "yes").cwd("/tmp")).unwrap();
    assert_eq!(
        text(&s, "env", json!({"name": "MCP_POOL_TEST_SECRET"})),
        "<unset>"
    );
    assert_eq!(text(&s, "env", json!({"name": "GIVEN"})), "yes");
    assert_eq!(
        text(&s, "env", json!({"name": "PATH"})),
        std::env::var("PATH").unwrap()
    );
    assert_eq!(text(&s, "cwd", json!({})), "/tmp");
    s.close();
    let s = Session::start(fake(&[]).inherit_env(true)).unwrap();
    assert_eq!(
        text(&s, "env", json!({"name": "MCP_POOL_TEST_SECRET"})),
        "leak"
    );
    s.close();
}

#[test]
fn a_batch_pipelines_and_keeps_order() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    let mut calls: Vec<mcp_pool::ToolCall> = (0..50)
        .map(|i| mcp_pool::ToolCall::new("echo", json!({ "text": format!("n{i}") })))
        .collect();
    calls[10] = mcp_pool::ToolCall::new("fail", json!({"message": "tool failed"}));
    calls[20] = mcp_pool::ToolCall::new("echo", json!([1]));
    calls[30] = mcp_pool::ToolCall::new("sleep", json!({"ms": 100}));
    let mut progress = Vec::new();
    let results = s
        .batch(
            &calls,
            mcp_pool::BatchOptions::new().on_result(|i, _| progress.push(i + 1)),
        )
        .unwrap();
    assert_eq!(results.len(), 50);
    assert_eq!(progress, (1..=50).collect::<Vec<_>>());
    for (i, r) in results.iter().enumerate() {
        match i {
            10 => assert!(r.as_ref().unwrap().is_error),
            20 => assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}"),
            30 => assert_eq!(r.as_ref().unwrap().text(), "slept 100"),
            _ => assert_eq!(r.as_ref().unwrap().text(), format!("n{i}")),
        }
    }
    s.close();
}

#[test]
fn a_batch_takes_answers_in_any_order_and_tells_them_in_order() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    // The sleeps run on threads of the server: the echos behind them are answered first.
    let mut calls: Vec<mcp_pool::ToolCall> = (0..20)
        .map(|i| mcp_pool::ToolCall::new("echo", json!({ "text": format!("n{i}") })))
        .collect();
    calls[0] = mcp_pool::ToolCall::new("sleep", json!({"ms": 300}));
    calls[5] = mcp_pool::ToolCall::new("sleep", json!({"ms": 100}));
    let mut told = Vec::new();
    let began = Instant::now();
    let results = s
        .batch(
            &calls,
            mcp_pool::BatchOptions::new().on_result(|i, r| {
                told.push((i, r.as_ref().unwrap().text(), began.elapsed()));
            }),
        )
        .unwrap();
    for (i, r) in results.iter().enumerate() {
        let want = match i {
            0 => "slept 300".to_string(),
            5 => "slept 100".to_string(),
            _ => format!("n{i}"),
        };
        assert_eq!(r.as_ref().unwrap().text(), want);
    }
    // Told in the calls' order, each with its own result, none before the first is known.
    assert_eq!(
        told.iter().map(|t| t.0).collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
    assert_eq!(told[19].1, "n19");
    assert!(told[1].2 >= Duration::from_millis(300), "{:?}", told[1].2);
    // The sleeps overlapped: the batch did not wait for one answer to send the next.
    assert!(
        began.elapsed() < Duration::from_millis(390),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(text(&s, "echo", json!({"text": "after"})), "after");
    s.close();
}

#[test]
fn a_batch_callback_may_call_the_same_session() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    let calls: Vec<mcp_pool::ToolCall> = (0..30)
        .map(|i| mcp_pool::ToolCall::new("echo", json!({ "text": format!("n{i}") })))
        .collect();
    let mut inner = Vec::new();
    let results = s
        .batch(
            &calls,
            mcp_pool::BatchOptions::new().on_result(|i, _| {
                if i % 10 == 0 {
                    // The batch's thread is not reading the output now: this call's answer
                    // is read (by this very call) instead of waiting for a reader.
                    let r = s.call_tool_with(
                        "echo",
                        json!({"text": format!("inner {i}")}),
                        CallOptions::new().timeout(Duration::from_secs(3)),
                    );
                    inner.push(r.map(|r| r.text()));
                }
            }),
        )
        .unwrap();
    assert!(results.iter().all(Result::is_ok));
    let inner: Vec<String> = inner.into_iter().map(Result::unwrap).collect();
    assert_eq!(inner, ["inner 0", "inner 10", "inner 20"]);
    s.close();
}

#[test]
fn batches_and_single_callers_share_a_session() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let singles: Vec<_> = (0..4)
        .map(|t| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let tool = if n % 7 == 0 { "sleep" } else { "echo" };
                    let args = json!({"text": format!("t{t}-{n}"), "ms": 5});
                    let r = s
                        .call_tool_with(
                            tool,
                            args,
                            CallOptions::new().timeout(Duration::from_secs(20)),
                        )
                        .unwrap();
                    if tool == "echo" {
                        assert_eq!(r.text(), format!("t{t}-{n}"));
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    for round in 0..30 {
        let calls: Vec<mcp_pool::ToolCall> = (0..40)
            .map(|i| match i % 9 {
                0 => mcp_pool::ToolCall::new("sleep", json!({"ms": 3})),
                _ => mcp_pool::ToolCall::new("echo", json!({ "text": format!("b{round}-{i}") })),
            })
            .collect();
        let results = s
            .batch(
                &calls,
                mcp_pool::BatchOptions::new().timeout(Duration::from_secs(20)),
            )
            .unwrap();
        for (i, r) in results.iter().enumerate() {
            let want = match i % 9 {
                0 => "slept 3".to_string(),
                _ => format!("b{round}-{i}"),
            };
            assert_eq!(r.as_ref().unwrap().text(), want, "round {round}, call {i}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in singles {
        assert!(t.join().unwrap() > 0);
    }
    s.close();
}

#[test]
fn a_batch_past_its_deadline_or_cancelled_keeps_what_came_and_ends_the_rest() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    let calls = [
        mcp_pool::ToolCall::new("echo", json!({"text": "first"})),
        mcp_pool::ToolCall::new("sleep", json!({"ms": 10_000})),
        mcp_pool::ToolCall::new("echo", json!({"text": "third"})),
        mcp_pool::ToolCall::new("sleep", json!({"ms": 10_000})),
    ];
    let check = |results: &[Result<mcp_pool::CallToolResult, Error>], late: fn(&Error) -> bool| {
        assert_eq!(results[0].as_ref().unwrap().text(), "first");
        assert_eq!(results[2].as_ref().unwrap().text(), "third");
        for r in [&results[1], &results[3]] {
            assert!(r.as_ref().is_err_and(late), "{r:?}");
        }
    };
    let began = Instant::now();
    let results = s
        .batch(
            &calls,
            mcp_pool::BatchOptions::new().timeout(Duration::from_millis(300)),
        )
        .unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    check(&results, |e| {
        matches!(
            e,
            Error::Timeout {
                phase: Phase::Request,
                ..
            }
        )
    });
    let cancel = CancelHandle::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            cancel.cancel();
        })
    };
    let began = Instant::now();
    let results = s
        .batch(&calls, mcp_pool::BatchOptions::new().cancel_with(&cancel))
        .unwrap();
    canceller.join().unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    check(&results, |e| matches!(e, Error::Cancelled));
    // The server was told; the session goes on.
    assert_eq!(text(&s, "echo", json!({"text": "after"})), "after");
    s.close();
}

struct Panicky;

impl ClientHandler for Panicky {
    fn supports(&self) -> HandlerSupport {
        HandlerSupport {
            roots: true,
            ..HandlerSupport::default()
        }
    }
    fn roots(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        panic!("a bug in the handler");
    }
}

#[test]
fn a_panicking_handler_still_answers_the_server() {
    let _clean = Clean::new();
    let s = Session::start(fake(&["--generation", "handshake"]).handler(Panicky)).unwrap();
    for _ in 0..40 {
        // More than the 32 handler threads a session allows: none leaks its place.
        let answer: Value = serde_json::from_str(&text(&s, "ask_roots", json!({}))).unwrap();
        assert_eq!(answer["code"], -32603, "{answer}");
    }
    s.close();
}

#[test]
fn a_batch_larger_than_the_outbox_limit_shares_the_session_with_single_calls() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    // 40 requests of 1 MiB each: more than the 32 MiB the worker lets wait before it calls
    // a server "not reading". The server reads them at its own pace meanwhile.
    let pad = "p".repeat(1 << 20);
    let calls: Vec<mcp_pool::ToolCall> = (0..40)
        .map(|i| mcp_pool::ToolCall::new("add", json!({"a": i, "b": 1, "pad": pad})))
        .collect();
    assert_eq!(
        s.call_tool("add", json!({"a": 1, "b": 1})).unwrap().text(),
        "2"
    );
    let batch_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let during = Arc::new(AtomicUsize::new(0));
    let single = {
        let (s, batch_done, during) = (s.clone(), batch_done.clone(), during.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !batch_done.load(Ordering::Relaxed) {
                let text = format!("single {n}");
                let r = s.call_tool("echo", json!({ "text": text })).unwrap();
                assert_eq!(r.text(), text);
                during.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        })
    };
    // The single caller is under way before the batch is handed over.
    while during.load(Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let results = s
        .batch(
            &calls,
            mcp_pool::BatchOptions::new().timeout(Duration::from_secs(120)),
        )
        .unwrap();
    batch_done.store(true, Ordering::Relaxed);
    single.join().unwrap();
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.as_ref().unwrap().text(), (i + 1).to_string(), "call {i}");
    }
    assert!(s.is_alive(), "{:?}", s.close_reason());
    s.close();
}
