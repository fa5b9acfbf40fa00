//! Interop with real MCP servers nobody here wrote: the npm reference server
//! `@modelcontextprotocol/server-everything` 2026.8.31 and a server on the Python `mcp` 2.3.0
//! SDK (`tests/interop/python_server.py`).
//!
//! `.ci/install-reference-servers` installs both into `target/interop/`. The tests are
//! `#[ignore]`d, so a plain `cargo test` lists them as ignored rather than passed; run them
//! with `cargo test -- --include-ignored`. A server that is missing then is skipped with a
//! message, or, with `MCP_POOL_INTEROP=require` (set by `.ci/run`), fails the test.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_clean, serial, snapshot};
use mcp_pool::{
    CallOptions, CancelHandle, ClientHandler, Error, Generation, HandlerError, HandlerSupport,
    ServerConfig, ServerRequest, Session,
};
use serde_json::{json, Value};

fn interop_dir() -> PathBuf {
    std::env::var_os("MCP_POOL_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop"))
}

/// The server's config, or `None` (after saying why) when it is not installed and not
/// required.
fn server(which: &str) -> Option<ServerConfig> {
    let dir = interop_dir();
    let (program, args, needs) = match which {
        "everything" => {
            let js =
                dir.join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
            (
                "node".to_owned(),
                vec![js.to_string_lossy().into_owned(), "stdio".into()],
                js,
            )
        }
        _ => {
            let python = dir.join("venv/bin/python");
            let script =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/python_server.py");
            (
                python.to_string_lossy().into_owned(),
                vec![script.to_string_lossy().into_owned()],
                python,
            )
        }
    };
    if !needs.exists() {
        let why = format!(
            "interop test {} skipped: {which} server not installed ({} missing); run .ci/install-reference-servers",
            std::thread::current().name().unwrap_or("?"),
            needs.display()
        );
        if std::env::var("MCP_POOL_INTEROP").as_deref() == Ok("require") {
            panic!("{why} (MCP_POOL_INTEROP=require)");
        }
        // Straight to the stream, past the test harness's capture, so a passing run shows it.
        let _ = writeln!(std::io::stderr(), "{why}");
        return None;
    }
    Some(
        ServerConfig::new(which, program)
            .args(args)
            .start_timeout(Duration::from_secs(60)),
    )
}

struct Client {
    roots_asked: AtomicUsize,
}

impl ClientHandler for Client {
    fn supports(&self) -> HandlerSupport {
        HandlerSupport {
            roots: true,
            roots_list_changed: true,
            sampling: true,
            ..HandlerSupport::default()
        }
    }
    fn roots(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        self.roots_asked.fetch_add(1, Ordering::SeqCst);
        Ok(json!({"roots": [{"uri": "file:///tmp/interop-root", "name": "interop-root"}]}))
    }
    fn sampling(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        Ok(
            json!({"role": "assistant", "content": {"type": "text", "text": "sampled by the test"}, "model": "test-model", "stopReason": "endTurn"}),
        )
    }
}

fn client() -> Arc<Client> {
    Arc::new(Client {
        roots_asked: AtomicUsize::new(0),
    })
}

#[test]
#[ignore = "needs the reference servers: .ci/install-reference-servers, then cargo test -- --include-ignored"]
fn everything_handshake_tools_and_content() {
    let _g = serial();
    let Some(config) = server("everything") else {
        return;
    };
    let before = snapshot();
    let handler = client();
    let s = Session::start(config.handler(handler.clone())).unwrap();
    // It answers server/discover with -32601 and then handshakes on the same process.
    let d = s.details();
    assert_eq!(d.generation, Generation::Handshake);
    assert_eq!(d.protocol_version, "2025-11-25");
    assert!(
        d.server_info.name.contains("everything"),
        "{:?}",
        d.server_info
    );
    assert!(d.has_capability("tools"));

    let tools = s.list_tools().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    for want in [
        "echo",
        "get-structured-content",
        "trigger-long-running-operation",
        "get-roots-list",
        "trigger-sampling-request",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let r = s.call_tool("echo", json!({"message": "hi there"})).unwrap();
    assert!(!r.is_error);
    assert_eq!(r.text(), "Echo: hi there");

    let r = s
        .call_tool("get-structured-content", json!({"location": "Chicago"}))
        .unwrap();
    let structured = r.structured_content.expect("structuredContent");
    assert!(structured.get("temperature").is_some(), "{structured}");

    // Unknown tool: a tool error result, not a JSON-RPC error.
    let r = s.call_tool("no-such-tool", json!({})).unwrap();
    assert!(r.is_error);

    // It sends tools/list_changed right after `initialized`.
    let until = Instant::now() + Duration::from_secs(5);
    while !s.take_tools_changed() {
        assert!(Instant::now() < until, "no tools/list_changed seen");
        std::thread::sleep(Duration::from_millis(20));
    }
    s.ping().unwrap();
    s.close();
    assert_clean(&before);
}

#[test]
#[ignore = "needs the reference servers: .ci/install-reference-servers, then cargo test -- --include-ignored"]
fn everything_asks_for_roots_and_sampling_mid_call() {
    let _g = serial();
    let Some(config) = server("everything") else {
        return;
    };
    let before = snapshot();
    let handler = client();
    let s = Session::start(config.handler(handler.clone())).unwrap();
    let r = s.call_tool("get-roots-list", json!({})).unwrap();
    assert!(!r.is_error, "{r:?}");
    assert!(
        r.text().contains("file:///tmp/interop-root"),
        "{}",
        r.text()
    );
    assert!(handler.roots_asked.load(Ordering::SeqCst) >= 1);
    let r = s
        .call_tool(
            "trigger-sampling-request",
            json!({"prompt": "say hi", "maxTokens": 5}),
        )
        .unwrap();
    assert!(!r.is_error, "{r:?}");
    assert!(r.text().contains("sampled by the test"), "{}", r.text());
    s.close();
    assert_clean(&before);
}

#[test]
#[ignore = "needs the reference servers: .ci/install-reference-servers, then cargo test -- --include-ignored"]
fn everything_progress_and_cancel() {
    let _g = serial();
    let Some(config) = server("everything") else {
        return;
    };
    let before = snapshot();
    let s = Session::start(config).unwrap();
    let mut reports = Vec::new();
    let r = s
        .call_tool_with(
            "trigger-long-running-operation",
            json!({"duration": 1, "steps": 4}),
            CallOptions::new().on_progress(|p| reports.push((p.progress, p.total))),
        )
        .unwrap();
    assert!(r.text().contains("completed"), "{}", r.text());
    assert_eq!(
        reports,
        vec![
            (1.0, Some(4.0)),
            (2.0, Some(4.0)),
            (3.0, Some(4.0)),
            (4.0, Some(4.0))
        ]
    );

    // Cancel mid-operation: the caller is free at once; the server keeps sending progress
    // for a while, which is dropped, and the session stays usable.
    let cancel = CancelHandle::new();
    let trigger = cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        trigger.cancel();
    });
    let start = Instant::now();
    let err = s
        .call_tool_with(
            "trigger-long-running-operation",
            json!({"duration": 3, "steps": 6}),
            CallOptions::new().on_progress(|_| {}).cancel_with(&cancel),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2));
    t.join().unwrap();
    let r = s
        .call_tool("echo", json!({"message": "after cancel"}))
        .unwrap();
    assert_eq!(r.text(), "Echo: after cancel");
    s.ping().unwrap();
    s.close();
    assert_clean(&before);
}

#[test]
#[ignore = "needs the reference servers: .ci/install-reference-servers, then cargo test -- --include-ignored"]
fn python_sdk_per_request_generation() {
    let _g = serial();
    let Some(config) = server("python") else {
        return;
    };
    let before = snapshot();
    let s = Session::start(config).unwrap();
    let d = s.details();
    assert_eq!(d.generation, Generation::PerRequest);
    assert_eq!(d.protocol_version, "2026-07-28");
    assert_eq!(d.server_info.name, "mcp-pool-python-interop");

    let names: Vec<String> = s
        .list_tools()
        .unwrap()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    for want in ["echo", "add", "slow", "fail"] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let r = s.call_tool("echo", json!({"text": "hello"})).unwrap();
    assert_eq!(r.text(), "hello");
    let r = s.call_tool("add", json!({"a": 2, "b": 3})).unwrap();
    assert_eq!(r.structured_content, Some(json!({"result": 5})));
    let r = s.call_tool("fail", json!({})).unwrap();
    assert!(r.is_error);
    assert!(r.text().contains("always fails"), "{}", r.text());
    let mut steps = 0;
    let r = s
        .call_tool_with(
            "slow",
            json!({"steps": 3}),
            CallOptions::new().on_progress(|_| steps += 1),
        )
        .unwrap();
    assert_eq!(r.text(), "done after 3 steps");
    assert_eq!(steps, 3);
    // No `ping` in this generation; ping() uses server/discover.
    s.ping().unwrap();
    s.close();
    assert_clean(&before);
}

#[test]
#[ignore = "needs the reference servers: .ci/install-reference-servers, then cargo test -- --include-ignored"]
fn python_sdk_handshake_generation_with_paging_and_roots() {
    let _g = serial();
    let Some(config) = server("python") else {
        return;
    };
    let before = snapshot();
    let handler = client();
    let s = Session::start(
        config
            .generation(Generation::Handshake)
            .env("MCP_POOL_PAGE_SIZE", "2")
            .handler(handler.clone()),
    )
    .unwrap();
    assert_eq!(s.details().generation, Generation::Handshake);
    let names: Vec<String> = s
        .list_tools()
        .unwrap()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
    let r = s.call_tool("roots", json!({})).unwrap();
    assert_eq!(r.text(), "file:///tmp/interop-root");
    assert_eq!(handler.roots_asked.load(Ordering::SeqCst), 1);
    let r = s.read_resource("interop://greeting").unwrap();
    assert_eq!(r.text(), "hello from the python interop server");
    let p = s.get_prompt("greet", json!({"name": "Ada"})).unwrap();
    assert!(p.messages[0].content.as_text().unwrap().contains("Ada"));
    s.ping().unwrap();
    s.close();
    assert_clean(&before);
}
