//! Interop over HTTP with real MCP servers nobody here wrote: the Python `mcp` 2.3.0 SDK's
//! Streamable HTTP app (`tests/interop/python_server.py --http`, both generations, SSE and
//! JSON replies) and `@modelcontextprotocol/server-everything` 2026.8.31 in its
//! `streamableHttp` mode (handshake generation).
//!
//! Like `interop.rs`: ignored by a plain `cargo test`; with `-- --include-ignored`, skipped
//! (saying so) when `.ci/install-reference-servers` has not run, failed instead with
//! `MCP_POOL_INTEROP=require`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Clean;
use mcp_pool::{
    CallOptions, CancelHandle, ClientHandler, ElicitAction, Error, Generation, HandlerError,
    HandlerSupport, LogMessage, Pool, PoolSettings, ServerConfig, ServerRequest, Session,
    UrlElicitation,
};
use parking_lot::Mutex;
use serde_json::{json, Value};

fn interop_dir() -> PathBuf {
    std::env::var_os("MCP_POOL_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop"))
}

/// A reference server listening on loopback, killed and reaped on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skip(which: &str, missing: &std::path::Path) -> Option<Server> {
    let why = format!(
        "HTTP interop test {} skipped: {which} not installed ({} missing); run .ci/install-reference-servers",
        std::thread::current().name().unwrap_or("?"),
        missing.display()
    );
    if std::env::var("MCP_POOL_INTEROP").as_deref() == Ok("require") {
        panic!("{why} (MCP_POOL_INTEROP=require)");
    }
    eprintln!("{why}");
    None
}

/// The Python SDK server over Streamable HTTP (`json`: plain JSON replies, not SSE).
fn python(json_replies: bool) -> Option<Server> {
    let dir = interop_dir();
    let python = dir.join("venv/bin/python");
    if !python.exists() {
        return skip("the Python mcp server", &python);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/python_server.py");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(["--extra", "--http", "0", "--exit-on-stdin-eof"]);
    if json_replies {
        cmd.arg("--json");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the Python server");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Some(Server { child, url })
}

/// server-everything in its Streamable HTTP mode, kept on loopback by a preload.
fn everything() -> Option<Server> {
    let dir = interop_dir();
    let js = dir.join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    if !js.exists() {
        return skip("server-everything", &js);
    }
    let preload = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/loopback.cjs");
    let mut child = Command::new("node")
        .arg("--require")
        .arg(preload)
        .arg(js)
        .arg("streamableHttp")
        .env("PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start server-everything");
    let stderr = child.stderr.take().unwrap();
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    let url = loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "server-everything ended"
        );
        if let Some(addr) = line.trim().strip_prefix("loopback: listening ") {
            break format!("http://{addr}/mcp");
        }
    };
    // Keep draining its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    Some(Server { child, url })
}

#[derive(Default)]
struct Client {
    roots_asked: AtomicUsize,
    elicited: AtomicUsize,
    urls: Mutex<Vec<UrlElicitation>>,
    logs: Mutex<Vec<(String, LogMessage)>>,
}

impl ClientHandler for Client {
    fn supports(&self) -> HandlerSupport {
        HandlerSupport {
            roots: true,
            sampling: true,
            elicitation_form: true,
            elicitation_url: true,
            ..HandlerSupport::default()
        }
    }
    fn roots(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        self.roots_asked.fetch_add(1, Ordering::SeqCst);
        Ok(json!({"roots": [{"uri": "file:///tmp/interop-root", "name": "interop-root"}]}))
    }
    fn sampling(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        Ok(
            json!({"role": "assistant", "content": {"type": "text", "text": "sampled"}, "model": "test-model", "stopReason": "endTurn"}),
        )
    }
    fn elicitation(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        self.elicited.fetch_add(1, Ordering::SeqCst);
        Ok(json!({"action": "accept", "content": {"name": "Ada", "age": 36, "ok": true}}))
    }
    fn elicitation_url(
        &self,
        _: &ServerRequest<'_>,
        e: &UrlElicitation,
    ) -> Result<ElicitAction, HandlerError> {
        self.urls.lock().push(e.clone());
        Ok(ElicitAction::Decline)
    }
    fn on_log(&self, server: &str, message: &LogMessage) {
        self.logs.lock().push((server.to_owned(), message.clone()));
    }
}

fn session(server: &Server, generation: Generation, handler: &Arc<Client>) -> Session {
    Session::start(
        ServerConfig::http("py", &server.url)
            .generation(generation)
            .handler(handler.clone()),
    )
    .unwrap()
}

fn python_session_checks(s: &Session, handler: &Client, generation: Generation) {
    assert_eq!(s.details().generation, generation);
    assert_eq!(s.transport(), "streamable-http");
    let names: Vec<String> = s
        .list_tools()
        .unwrap()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    for want in [
        "echo",
        "add",
        "slow",
        "ask_name",
        "sample",
        "ask_roots",
        "forecast",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    assert_eq!(
        s.call_tool("echo", json!({"text": "over http"}))
            .unwrap()
            .text(),
        "over http"
    );
    let r = s.call_tool("add", json!({"a": 2, "b": 3})).unwrap();
    assert_eq!(r.structured_content, Some(json!({"result": 5})));
    assert!(s.call_tool("fail", json!({})).unwrap().is_error);
    let mut steps = 0;
    let r = s
        .call_tool_with(
            "slow",
            json!({"steps": 3}),
            CallOptions::new().on_progress(|_| steps += 1),
        )
        .unwrap();
    assert_eq!(r.text(), "done after 3 steps");
    assert_eq!(steps, 3, "progress rides the call's own stream");
    // The client's input: server requests on the call's stream (handshake generation) or
    // input-required rounds (per-request generation), through the same handler.
    assert_eq!(
        s.call_tool("ask_name", json!({})).unwrap().text(),
        "hello Ada (36)"
    );
    assert_eq!(
        s.call_tool("sample", json!({"prompt": "hi"}))
            .unwrap()
            .text(),
        "test-model: sampled"
    );
    assert_eq!(
        s.call_tool("ask_roots", json!({})).unwrap().text(),
        "file:///tmp/interop-root"
    );
    assert_eq!(
        s.call_tool("ask_twice", json!({})).unwrap().text(),
        "Ada: confirmed"
    );
    let r = s
        .call_tool("ask_url", json!({"url": "https://example.com/consent"}))
        .unwrap();
    assert_eq!(r.text(), "url decline");
    assert_eq!(
        handler.urls.lock().last().unwrap().url,
        "https://example.com/consent"
    );
    let r = s.call_tool("forecast", json!({"city": "Lyon"})).unwrap();
    assert_eq!(r.structured_content.unwrap()["city"], "Lyon");
    s.ping().unwrap();
}

#[test]
#[ignore = "needs the reference servers: .ci/install-reference-servers, then cargo test -- --include-ignored"]
fn python_sdk_over_streamable_http_in_both_generations() {
    let _clean = Clean::new();
    let Some(server) = python(false) else {
        return;
    };
    for generation in [Generation::PerRequest, Generation::Handshake] {
        let handler = Arc::new(Client::default());
        let s = session(&server, generation, &handler);
        python_session_checks(&s, &handler, generation);
        s.close();
    }
    // Auto picks the per-request generation (server/discover answers).
    let handler = Arc::new(Client::default());
    let s = session(&server, Generation::Auto, &handler);
    assert_eq!(s.details().generation, Generation::PerRequest);
    s.close();
}

#[test]
#[ignore = "needs the reference servers: .ci/install-reference-servers, then cargo test -- --include-ignored"]
fn python_sdk_with_json_replies() {
    let _clean = Clean::new();
    let Some(server) = python(true) else {
        return;
    };
    for generation in [Generation::PerRequest, Generation::Handshake] {
        let handler = Arc::new(Client::default());
        let s = session(&server, generation, &handler);
        assert_eq!(
            s.call_tool("add", json!({"a": 1, "b": 1})).unwrap().text(),
            "2"
        );
        let r = s.call_tool("ask_name", json!({}));
        if generation == Generation::PerRequest {
            // Input-required rounds need no back-channel.
            assert_eq!(r.unwrap().text(), "hello Ada (36)");
        } else {
            // A JSON reply has no room for a server request: the SDK says so.
            let err = r.unwrap_err();
            assert!(
                matches!(&err, Error::Server { code: -32600, message, .. } if message.contains("back-channel")),
                "{err}"
            );
        }
        s.close();
    }
}

#[test]
#[ignore = "needs the reference servers: .ci/install-reference-servers, then cargo test -- --include-ignored"]
fn python_sdk_logs_reach_the_handler_with_the_server_name() {
    let _clean = Clean::new();
    let Some(server) = python(false) else {
        return;
    };
    for generation in [Generation::PerRequest, Generation::Handshake] {
        let handler = Arc::new(Client::default());
        let s = Session::start(
            ServerConfig::http("logs", &server.url)
                .generation(generation)
                .log_level(mcp_pool::LogLevel::Warning)
                .handler(handler.clone()),
        )
        .unwrap();
        assert_eq!(
            s.call_tool("log_levels", json!({})).unwrap().text(),
            "sent 8"
        );
        let logs = handler.logs.lock().clone();
        let levels: Vec<_> = logs.iter().map(|(_, m)| m.level).collect();
        assert_eq!(
            levels.first(),
            Some(&mcp_pool::LogLevel::Warning),
            "{generation:?}: {levels:?}"
        );
        assert_eq!(
            levels.len(),
            5,
            "{generation:?}: warning..emergency, got {levels:?}"
        );
        assert!(logs.iter().all(|(server, _)| server == "logs"));
        s.close();
    }
}

#[test]
#[ignore = "needs the reference servers: .ci/install-reference-servers, then cargo test -- --include-ignored"]
fn a_pool_over_http_reuses_its_session_and_connections() {
    let _clean = Clean::new();
    let Some(server) = python(false) else {
        return;
    };
    let pool = Pool::builder()
        .server_with(
            ServerConfig::http("py", &server.url).generation(Generation::PerRequest),
            PoolSettings::new().max_sessions(2),
        )
        .build()
        .unwrap();
    for i in 0..20 {
        let r = pool
            .call_tool("py", "add", json!({"a": i, "b": 1}))
            .unwrap();
        assert_eq!(r.text(), (i + 1).to_string());
    }
    let stats = pool.stats();
    let st = stats.server("py").unwrap();
    assert_eq!(st.transport, "streamable-http");
    assert_eq!(st.spawns, 1, "{st:?}");
    assert_eq!(st.hits, 19, "{st:?}");
    // A batch goes out several requests at once, each on its own connection.
    let calls: Vec<mcp_pool::ToolCall> = (0..16)
        .map(|i| mcp_pool::ToolCall::new("add", json!({"a": i, "b": 0})))
        .collect();
    let results = pool.batch("py", &calls, Default::default()).unwrap();
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.as_ref().unwrap().text(), i.to_string());
    }
    pool.close();
}

#[test]
#[ignore = "needs the reference servers: .ci/install-reference-servers, then cargo test -- --include-ignored"]
fn cancelling_an_http_call_frees_the_caller_at_once() {
    let _clean = Clean::new();
    let Some(server) = python(false) else {
        return;
    };
    for generation in [Generation::PerRequest, Generation::Handshake] {
        let handler = Arc::new(Client::default());
        let s = session(&server, generation, &handler);
        let cancel = CancelHandle::new();
        let trigger = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            trigger.cancel();
        });
        let start = Instant::now();
        let err = s
            .call_tool_with(
                "slow",
                json!({"steps": 40}),
                CallOptions::new().cancel_with(&cancel),
            )
            .unwrap_err();
        assert!(matches!(err, Error::Cancelled), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        t.join().unwrap();
        // The deadline too: a call that outlives it ends on time.
        let start = Instant::now();
        let err = s
            .call_tool_with(
                "slow",
                json!({"steps": 40}),
                CallOptions::new()
                    .timeout(Duration::from_millis(300))
                    .keep_deadline(true),
            )
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            s.call_tool("echo", json!({"text": "still here"}))
                .unwrap()
                .text(),
            "still here"
        );
        s.close();
    }
}

#[test]
#[ignore = "needs the reference servers: .ci/install-reference-servers, then cargo test -- --include-ignored"]
fn everything_over_streamable_http() {
    let _clean = Clean::new();
    let Some(server) = everything() else {
        return;
    };
    let handler = Arc::new(Client::default());
    let s = Session::start(
        ServerConfig::http("everything", &server.url)
            .start_timeout(Duration::from_secs(30))
            .handler(handler.clone()),
    )
    .unwrap();
    // server/discover is refused without an MCP error: the handshake generation follows.
    assert_eq!(s.details().generation, Generation::Handshake);
    assert!(s.details().server_info.name.contains("everything"));
    let r = s.call_tool("echo", json!({"message": "hi there"})).unwrap();
    assert_eq!(r.text(), "Echo: hi there");
    let mut reports = Vec::new();
    let r = s
        .call_tool_with(
            "trigger-long-running-operation",
            json!({"duration": 1, "steps": 4}),
            CallOptions::new().on_progress(|p| reports.push(p.progress)),
        )
        .unwrap();
    assert!(r.text().contains("completed"), "{}", r.text());
    assert_eq!(reports, vec![1.0, 2.0, 3.0, 4.0]);
    // Sampling and elicitation asked on the call's own stream, answered by POST.
    let r = s
        .call_tool(
            "trigger-sampling-request",
            json!({"prompt": "say hi", "maxTokens": 5}),
        )
        .unwrap();
    assert!(r.text().contains("sampled"), "{}", r.text());
    // A task-required tool: augmented, followed to its end, its result returned.
    let r = s
        .call_tool_with(
            "simulate-research-query",
            json!({"topic": "pools"}),
            CallOptions::new().timeout(Duration::from_secs(30)),
        )
        .unwrap();
    assert!(!r.is_error, "{r:?}");
    // Its unprompted roots/list comes on the standalone GET stream.
    assert!(
        common::wait_for(Duration::from_secs(5), || {
            (handler.roots_asked.load(Ordering::SeqCst) > 0).then_some(())
        })
        .is_some(),
        "roots/list never came on the standalone stream"
    );
    s.ping().unwrap();
    s.close();
}
