//! HTTP sessions against the fake server's HTTP mode (`mcp-fake-server --http`): both
//! generations over Streamable HTTP, the HTTP+SSE fallback, and every fault the fake can be
//! told to make (a forgotten session, a cut or stalled stream, 401, 503, oversize bodies,
//! malformed SSE, redirects to another origin, slow heads), plus what cannot be reached at
//! all. Each test asserts its exact outcome and, through its `Clean` guard, that no child,
//! `mcp-` thread or descriptor is left.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

use common::Clean;
use mcp_pool::{
    CallOptions, CancelHandle, ClientHandler, CloseReason, ConnectKind, Error, Generation,
    HandlerError, HandlerSupport, HttpTransport, Phase, Pool, PoolSettings, ServerConfig,
    ServerRequest, Session, TokenRequest, ToolCall,
};
use parking_lot::Mutex;
use serde_json::{json, Value};

const BOTH: [Generation; 2] = [Generation::Handshake, Generation::PerRequest];

// ---------------------------------------------------------------------------------------
// Log capture: every record of every target, so a test can look for a secret in them.

static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {} {}", record.level(), record.target(), record.args());
        if std::env::var_os("MCP_POOL_TEST_LOG").is_some() {
            eprintln!("{line}");
        }
        LOGS.lock().push(line);
    }
    fn flush(&self) {}
}

/// The cleanup guard, with the capturing logger installed first (so `common::serial`'s
/// `env_logger` does not take its place) and the captured lines of earlier tests dropped.
/// On drop, before `Clean` checks, it names any descriptor left over (what it points at).
fn clean() -> Guard {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if log::set_logger(&Capture).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
    let clean = Clean::new();
    LOGS.lock().clear();
    Guard {
        fds: fd_targets(),
        _clean: clean,
    }
}

struct Guard {
    fds: Vec<String>,
    _clean: Clean,
}

/// This process's descriptors and what each points at.
fn fd_targets() -> Vec<String> {
    let mut all: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .map(|e| {
            let to = std::fs::read_link(e.path()).unwrap_or_default();
            format!("{} -> {}", e.file_name().to_string_lossy(), to.display())
        })
        .collect();
    all.sort();
    all
}

impl Drop for Guard {
    fn drop(&mut self) {
        if thread::panicking() {
            return;
        }
        let count = |v: &[String]| v.iter().filter(|f| !f.contains("/proc/")).count();
        let settled = common::wait_for(Duration::from_secs(5), || {
            (count(&fd_targets()) <= count(&self.fds)).then_some(())
        });
        if settled.is_none() {
            let now = fd_targets();
            let more: Vec<&String> = now.iter().filter(|f| !self.fds.contains(f)).collect();
            eprintln!("descriptors left: {more:#?}");
        }
    }
}

fn logs() -> Vec<String> {
    LOGS.lock().clone()
}

/// The captured lines holding `needle`, but for ureq-proto's TRACE hex dump of the bytes
/// on the wire (see `trace_logs_of_the_http_stack_hold_no_secret`).
fn logged(needle: &str) -> Vec<String> {
    logs()
        .into_iter()
        .filter(|l| l.contains(needle) && !l.starts_with("TRACE ureq_proto::util "))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The fake server in HTTP mode.

/// One `mcp-fake-server --http 127.0.0.1:0` child: its URL, its stderr as it comes, and
/// its `--http-record` file. Killed and reaped on drop (before the test's `Clean` checks).
struct Fake {
    child: Child,
    url: String,
    stderr: Arc<Mutex<String>>,
    drain: Option<thread::JoinHandle<()>>,
    record: Option<PathBuf>,
}

impl Fake {
    fn start(flags: &[&str]) -> Fake {
        Fake::spawn(flags, None)
    }

    /// With `--http-record` to a file of its own.
    fn recorded(name: &str, flags: &[&str]) -> Fake {
        Fake::spawn(
            flags,
            Some(common::temp_path(&format!("http-{name}.jsonl"))),
        )
    }

    fn spawn(flags: &[&str], record: Option<PathBuf>) -> Fake {
        let mut cmd = Command::new(common::FAKE);
        cmd.args(["--http", "127.0.0.1:0"]).args(flags);
        if let Some(path) = &record {
            cmd.arg("--http-record").arg(path);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the fake server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (sink, pipe) = (stderr.clone(), child.stderr.take().unwrap());
        let drain = thread::Builder::new()
            .name("fake-stderr".into())
            .spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut all = sink.lock();
                    all.push_str(&line);
                    all.push('\n');
                }
            })
            .unwrap();
        Fake {
            child,
            url,
            stderr,
            drain: Some(drain),
            record,
        }
    }

    /// `http://127.0.0.1:PORT`.
    fn base(&self) -> &str {
        self.url.strip_suffix("/mcp").unwrap()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().clone()
    }

    /// The number of stderr lines equal to `line`.
    fn lines(&self, line: &str) -> usize {
        self.stderr().lines().filter(|l| l.trim() == line).count()
    }

    /// Waits (up to 5 s) for a stderr line starting with `prefix`.
    fn wait_line(&self, prefix: &str) -> Option<String> {
        common::wait_for(Duration::from_secs(5), || {
            self.stderr()
                .lines()
                .find(|l| l.starts_with(prefix))
                .map(str::to_owned)
        })
    }

    /// What `--http-record` wrote so far: one object per HTTP request.
    fn records(&self) -> Vec<Value> {
        let path = self.record.as_ref().expect("started with --http-record");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The recorded POSTs whose JSON-RPC method is `method`.
    fn posts(&self, method: &str) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| r["method"] == "POST" && r["body"]["method"] == method)
            .collect()
    }

    /// The recorded requests of this HTTP method.
    fn of_method(&self, http_method: &str) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| r["method"] == http_method)
            .collect()
    }

    /// Kills the server now (its streams end).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.kill();
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        if let Some(path) = &self.record {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A config for the fake at `url` in this generation.
fn http(url: &str, generation: Generation) -> ServerConfig {
    ServerConfig::http("fake", url)
        .generation(generation)
        .close_grace(Duration::from_millis(500))
}

fn start(url: &str, generation: Generation) -> Session {
    Session::start(http(url, generation)).unwrap_or_else(|e| panic!("{generation:?}: {e}"))
}

fn echo(s: &Session, text: &str) -> Result<String, Error> {
    s.call_tool("echo", json!({ "text": text }))
        .map(|r| r.text())
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The client's answers to the server's requests, counted.
#[derive(Default)]
struct Answers {
    roots: AtomicUsize,
    sampled: AtomicUsize,
    elicited: AtomicUsize,
}

impl ClientHandler for Answers {
    fn supports(&self) -> HandlerSupport {
        HandlerSupport {
            roots: true,
            sampling: true,
            elicitation_form: true,
            ..HandlerSupport::default()
        }
    }
    fn roots(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        self.roots.fetch_add(1, Ordering::SeqCst);
        Ok(json!({"roots": [{"uri": "file:///tmp/http-root", "name": "http-root"}]}))
    }
    fn sampling(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        self.sampled.fetch_add(1, Ordering::SeqCst);
        Ok(
            json!({"role": "assistant", "content": {"type": "text", "text": "sampled over http"},
                  "model": "test-model", "stopReason": "endTurn"}),
        )
    }
    fn elicitation(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        self.elicited.fetch_add(1, Ordering::SeqCst);
        Ok(json!({"action": "accept", "content": {"name": "Ada"}}))
    }
}

/// Asserts `elapsed` is within `[low, high]`.
fn within(what: &str, elapsed: Duration, low: Duration, high: Duration) {
    assert!(
        elapsed >= low && elapsed <= high,
        "{what}: took {elapsed:?}, expected {low:?}..={high:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Both generations over Streamable HTTP.

#[test]
fn both_generations_start_list_and_call() {
    let _clean = clean();
    let fake = Fake::start(&[]);
    for (generation, version) in [
        (Generation::Handshake, "2025-11-25"),
        (Generation::PerRequest, "2026-07-28"),
    ] {
        let s = start(&fake.url, generation);
        assert_eq!(s.details().generation, generation);
        assert_eq!(s.details().protocol_version, version);
        assert_eq!(s.transport(), "streamable-http");
        assert_eq!(s.pid(), None, "no process behind an HTTP session");
        let names: Vec<String> = s
            .list_tools()
            .unwrap()
            .iter()
            .map(|t| t.name.clone())
            .collect();
        for want in ["echo", "sleep", "header_echo", "ask_roots"] {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        }
        assert_eq!(echo(&s, "over http").unwrap(), "over http");
        let r = s.call_tool("add", json!({"a": 2, "b": 3})).unwrap();
        assert_eq!(r.structured_content, Some(json!({"sum": 5})));
        assert!(
            s.call_tool("fail", json!({"message": "no"}))
                .unwrap()
                .is_error
        );
        let err = s
            .call_tool("rpc_error", json!({"code": -32001}))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Server { code: -32001, .. }),
            "{generation:?}: {err:?}"
        );
        s.close();
        assert_eq!(s.close_reason(), Some(CloseReason::Closed));
    }
    // Auto: the fake serves both, server/discover answers, the per-request generation wins.
    let s = Session::start(ServerConfig::http("fake", &fake.url)).unwrap();
    assert_eq!(s.details().generation, Generation::PerRequest);
    s.close();
}

#[test]
fn progress_rides_the_calls_own_stream() {
    let _clean = clean();
    let fake = Fake::recorded("progress", &["--http-sse"]);
    for generation in BOTH {
        let s = start(&fake.url, generation);
        let mut seen = Vec::new();
        let r = s
            .call_tool_with(
                "sleep",
                json!({"ms": 300, "progress_steps": 3}),
                CallOptions::new().on_progress(|p| seen.push((p.progress, p.message.clone()))),
            )
            .unwrap();
        assert_eq!(r.text(), "slept 300");
        assert_eq!(
            seen,
            (1..=3)
                .map(|i| (f64::from(i), Some(format!("step {i}"))))
                .collect::<Vec<_>>(),
            "{generation:?}"
        );
        s.close();
    }
    // Each call was one POST with a progress token, and its reports came back on that
    // POST's own event stream (the per-request generation has no other).
    let calls = fake.posts("tools/call");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls.iter().all(
        |c| c["body"]["params"]["_meta"]["progressToken"].is_string()
            || c["body"]["params"]["_meta"]["progressToken"].is_number()
    ));
}

#[test]
fn concurrent_calls_from_several_threads() {
    let _clean = clean();
    let fake = Fake::start(&[]);
    for generation in BOTH {
        let s = start(&fake.url, generation);
        s.list_tools().unwrap();
        let began = Instant::now();
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let s = s.clone();
                thread::spawn(move || {
                    let r = s
                        .call_tool("sleep", json!({"ms": 400}))
                        .map(|r| r.text())
                        .unwrap();
                    assert_eq!(r, "slept 400");
                    echo(&s, &format!("thread {i}")).unwrap()
                })
            })
            .collect();
        let texts: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            texts,
            (0..8).map(|i| format!("thread {i}")).collect::<Vec<_>>()
        );
        // Eight 400 ms calls one after the other would take 3.2 s.
        within(
            "8 concurrent calls",
            began.elapsed(),
            Duration::from_millis(400),
            Duration::from_millis(2400),
        );
        s.close();
    }
}

#[test]
fn a_batch_runs_up_to_eight_calls_at_once() {
    let _clean = clean();
    let fake = Fake::start(&[]);
    for generation in BOTH {
        let s = start(&fake.url, generation);
        s.list_tools().unwrap();
        let calls: Vec<ToolCall> = (0..16)
            .map(|i| ToolCall::new("sleep", json!({"ms": 300 + i})))
            .collect();
        // Counts the batch threads while the batch runs.
        let most = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (most, stop) = (most.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let n = common::mcp_threads()
                        .iter()
                        .filter(|t| t.starts_with("mcp-batch-"))
                        .count();
                    most.fetch_max(n, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let began = Instant::now();
        let results = s.batch(&calls, Default::default()).unwrap();
        let took = began.elapsed();
        stop.store(true, Ordering::SeqCst);
        sampler.join().unwrap();
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.as_ref().unwrap().text(), format!("slept {}", 300 + i));
        }
        // Two rounds of eight: at least 600 ms, far less than 16 × 300 ms.
        within(
            "a batch of 16",
            took,
            Duration::from_millis(600),
            Duration::from_millis(2600),
        );
        let most = most.load(Ordering::SeqCst);
        assert!((2..=8).contains(&most), "{most} batch threads at once");
        s.close();
    }
}

#[test]
fn a_pool_reuses_one_session() {
    let _clean = clean();
    let fake = Fake::start(&[]);
    for generation in BOTH {
        let pool = Pool::builder()
            .server_with(
                http(&fake.url, generation),
                PoolSettings::new().max_sessions(2),
            )
            .build()
            .unwrap();
        for i in 0..10 {
            let r = pool
                .call_tool("fake", "echo", json!({"text": format!("call {i}")}))
                .unwrap();
            assert_eq!(r.text(), format!("call {i}"));
        }
        let stats = pool.stats();
        let st = stats.server("fake").unwrap();
        assert_eq!(st.transport, "streamable-http", "{st:?}");
        assert_eq!((st.calls, st.spawns, st.hits), (10, 1, 9), "{st:?}");
        assert_eq!(st.live_sessions, 1, "{st:?}");
        pool.close();
    }
}

#[test]
fn close_deletes_the_session_in_the_handshake_generation() {
    let _clean = clean();
    let fake = Fake::recorded("delete", &[]);
    let s = start(&fake.url, Generation::Handshake);
    assert_eq!(echo(&s, "x").unwrap(), "x");
    s.close();
    let call = &fake.posts("tools/call")[0];
    let sid = call["headers"]["mcp-session-id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(call["headers"]["mcp-protocol-version"], "2025-11-25");
    let deletes = fake.of_method("DELETE");
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0]["headers"]["mcp-session-id"], sid.as_str());
    assert!(fake
        .wait_line(&format!("fake-server: session {sid} deleted"))
        .is_some());
    // The per-request generation has no session to delete, and no GET stream.
    let before = fake.records().len();
    let s = start(&fake.url, Generation::PerRequest);
    assert_eq!(echo(&s, "y").unwrap(), "y");
    s.close();
    let after: Vec<Value> = fake.records().split_off(before);
    assert!(after.iter().all(|r| r["method"] == "POST"), "{after:?}");
    assert!(after
        .iter()
        .all(|r| r["headers"].get("mcp-session-id").is_none()));
}

#[test]
fn a_405_for_delete_is_accepted() {
    let _clean = clean();
    let fake = Fake::recorded("no-delete", &["--http-no-delete"]);
    let s = start(&fake.url, Generation::Handshake);
    assert_eq!(echo(&s, "x").unwrap(), "x");
    let began = Instant::now();
    s.close();
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(s.close_reason(), Some(CloseReason::Closed));
    assert_eq!(fake.of_method("DELETE").len(), 1);
    assert!(
        logs()
            .iter()
            .any(|l| l.contains("DELETE of the session: HTTP 405")),
        "{:#?}",
        logs()
    );
}

#[test]
fn no_get_stream_is_fine() {
    let _clean = clean();
    let listening = |s: &Session| {
        common::mcp_threads()
            .iter()
            .any(|t| t.starts_with("mcp-listen-"))
            && s.is_alive()
    };
    // With a GET stream: one listener thread holds it.
    let fake = Fake::start(&[]);
    let s = start(&fake.url, Generation::Handshake);
    assert!(listening(&s));
    s.close();
    drop(fake);
    // Without (405): no thread is kept for it, and nothing waits for it.
    let fake = Fake::recorded("no-get", &["--http-no-get"]);
    let began = Instant::now();
    let s = start(&fake.url, Generation::Handshake);
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );
    assert!(
        common::wait_for(Duration::from_secs(2), || (!listening(&s)).then_some(())).is_some(),
        "{:?}",
        common::mcp_threads()
    );
    assert_eq!(echo(&s, "fine").unwrap(), "fine");
    s.ping().unwrap();
    let gets = fake.of_method("GET");
    assert_eq!(gets.len(), 1, "one GET, refused, never retried: {gets:?}");
    s.close();
}

// ---------------------------------------------------------------------------------------
// The client's input: server requests (handshake generation) and MRTR (per-request).

#[test]
fn server_requests_on_a_calls_stream_are_answered_by_post() {
    let _clean = clean();
    let fake = Fake::recorded("asks", &[]);
    let answers = Arc::new(Answers::default());
    let s =
        Session::start(http(&fake.url, Generation::Handshake).handler(answers.clone())).unwrap();
    let roots = s.call_tool("ask_roots", json!({})).unwrap();
    assert!(
        roots.text().contains("file:///tmp/http-root"),
        "{}",
        roots.text()
    );
    let sampled = s.call_tool("ask_sampling", json!({})).unwrap();
    assert!(
        sampled.text().contains("sampled over http"),
        "{}",
        sampled.text()
    );
    let elicited = s.call_tool("ask_elicitation", json!({})).unwrap();
    let v: Value = serde_json::from_str(&elicited.text()).unwrap();
    assert_eq!(v, json!({"action": "accept", "content": {"name": "Ada"}}));
    assert_eq!(
        (
            answers.roots.load(Ordering::SeqCst),
            answers.sampled.load(Ordering::SeqCst),
            answers.elicited.load(Ordering::SeqCst)
        ),
        (1, 1, 1)
    );
    // Each answer went back as a POST of its own (a JSON-RPC response), with the session id.
    let answered: Vec<Value> = fake
        .of_method("POST")
        .into_iter()
        .filter(|r| r["body"].get("result").is_some())
        .collect();
    assert_eq!(answered.len(), 3, "{answered:?}");
    assert!(answered
        .iter()
        .all(|r| r["headers"]["mcp-session-id"].is_string()));
    s.close();
}

#[test]
fn mrtr_input_rounds_go_through_the_handler() {
    let _clean = clean();
    let fake = Fake::start(&[]);
    let answers = Arc::new(Answers::default());
    let s =
        Session::start(http(&fake.url, Generation::PerRequest).handler(answers.clone())).unwrap();
    assert_eq!(
        s.call_tool("mrtr_elicit", json!({})).unwrap().text(),
        "hello Ada"
    );
    assert_eq!(
        s.call_tool("mrtr_sampling", json!({})).unwrap().text(),
        "sampled over http"
    );
    let roots: Value =
        serde_json::from_str(&s.call_tool("mrtr_roots", json!({})).unwrap().text()).unwrap();
    assert_eq!(roots["roots"][0]["uri"], "file:///tmp/http-root");
    let multi: Value =
        serde_json::from_str(&s.call_tool("mrtr_multi", json!({})).unwrap().text()).unwrap();
    assert_eq!(multi["elicitation"], "hello Ada");
    assert_eq!(multi["sampling"], "sampled over http");
    assert_eq!(
        s.call_tool("mrtr_rounds", json!({"rounds": 3}))
            .unwrap()
            .text(),
        "rounds 3"
    );
    assert_eq!(
        (
            answers.roots.load(Ordering::SeqCst),
            answers.sampled.load(Ordering::SeqCst),
            answers.elicited.load(Ordering::SeqCst)
        ),
        (2, 2, 5)
    );
    s.close();
}

// ---------------------------------------------------------------------------------------
// A session the server forgot (404 for its id).

#[test]
fn a_404_for_a_live_session_id_ends_it_as_gone() {
    let _clean = clean();
    // initialize (1), tools/list (2), the sleep (3): the next request gets 404.
    let fake = Fake::recorded("gone", &["--http-404-after", "3", "--http-sse"]);
    let s = start(&fake.url, Generation::Handshake);
    s.list_tools().unwrap();
    let in_flight = {
        let s = s.clone();
        thread::spawn(move || s.call_tool("sleep", json!({"ms": 5000})))
    };
    // The sleep has reached the server (and is running) before the next request goes.
    assert!(common::wait_for(Duration::from_secs(5), || {
        (fake.posts("tools/call").len() == 1).then_some(())
    })
    .is_some());
    thread::sleep(Duration::from_millis(100));
    let began = Instant::now();
    let err = echo(&s, "refused").unwrap_err();
    assert!(
        matches!(
            &err,
            Error::SessionClosed {
                reason: CloseReason::Gone,
                ..
            }
        ),
        "{err:?}"
    );
    let err = in_flight.join().unwrap().unwrap_err();
    assert!(
        matches!(
            &err,
            Error::OutcomeUnknown {
                reason: CloseReason::Gone,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    assert!(!s.is_alive());
    assert_eq!(s.close_reason(), Some(CloseReason::Gone));
    let err = echo(&s, "after").unwrap_err();
    assert!(
        matches!(
            &err,
            Error::SessionClosed {
                reason: CloseReason::Gone,
                ..
            }
        ),
        "{err:?}"
    );
    s.close();
    assert!(fake.stderr().contains("forgotten after 3 requests"));
}

#[test]
fn a_pool_retries_a_call_refused_as_gone_on_a_fresh_session() {
    let _clean = clean();
    let fake = Fake::recorded("gone-pool", &["--http-404-after", "3"]);
    let pool = Pool::builder()
        .server(http(&fake.url, Generation::Handshake))
        .build()
        .unwrap();
    for i in 0..3 {
        let r = pool
            .call_tool("fake", "echo", json!({"text": format!("call {i}")}))
            .unwrap();
        assert_eq!(r.text(), format!("call {i}"));
    }
    let stats = pool.stats();
    let st = stats.server("fake").unwrap();
    assert_eq!((st.calls, st.spawns, st.retries), (3, 2, 1), "{st:?}");
    assert_eq!(st.live_sessions, 1, "{st:?}");
    pool.close();
    let inits: Vec<Value> = fake.posts("initialize");
    assert_eq!(inits.len(), 2, "a fresh session: {inits:?}");
    // initialize, tools/list and `call 0` are the first session's three requests; `call 1`
    // is refused (404), then sent again on the new session, which knows the tools already.
    let sessions: Vec<(String, String)> = fake
        .posts("tools/call")
        .iter()
        .map(|r| {
            (
                r["body"]["params"]["arguments"]["text"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                r["headers"]["mcp-session-id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let texts: Vec<&str> = sessions.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(texts, ["call 0", "call 1", "call 1", "call 2"]);
    assert_eq!(sessions[0].1, sessions[1].1);
    assert_ne!(sessions[1].1, sessions[2].1);
    assert_eq!(sessions[2].1, sessions[3].1);
}

// ---------------------------------------------------------------------------------------
// A stream cut before its answer; a stream that stalls.

#[test]
fn a_cut_stream_is_resumed_with_last_event_id() {
    let _clean = clean();
    let fake = Fake::recorded("cut", &["--http-cut-stream"]);
    let s = start(&fake.url, Generation::Handshake);
    s.list_tools().unwrap();
    let began = Instant::now();
    assert_eq!(echo(&s, "resumed").unwrap(), "resumed");
    // The stream said `retry: 300`: the resumption waited that long, no more.
    within(
        "a resumed call",
        began.elapsed(),
        Duration::from_millis(300),
        Duration::from_millis(1500),
    );
    let resumed: Vec<Value> = fake
        .of_method("GET")
        .into_iter()
        .filter(|g| g["headers"].get("last-event-id").is_some())
        .collect();
    assert_eq!(resumed.len(), 1, "{:?}", fake.of_method("GET"));
    let last = resumed[0]["headers"]["last-event-id"].as_str().unwrap();
    assert!(
        fake.stderr()
            .contains(&format!("resume with Last-Event-ID {last}")),
        "{}",
        fake.stderr()
    );
    assert!(resumed[0]["headers"]["mcp-session-id"].is_string());
    s.close();

    // The per-request generation cannot resume: the outcome is unknown.
    let s = start(&fake.url, Generation::PerRequest);
    s.list_tools().unwrap();
    let err = echo(&s, "lost").unwrap_err();
    match &err {
        Error::OutcomeUnknown {
            reason: CloseReason::Broken(why),
            ..
        } => assert!(
            why.contains("closed the reply stream before answering"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(s.is_alive(), "one lost answer does not end the session");
    // The fake closes the connection it cut just after the stream's end, which does not
    // say `Connection: close`: a request sent on it before its FIN arrives would race the
    // close (RFC 9112 section 9.3.1; it fails as outcome unknown, and the session goes
    // on). Let the close arrive first.
    thread::sleep(Duration::from_millis(100));
    s.list_tools().unwrap();
    s.close();
}

#[test]
fn a_connection_closed_under_a_written_request_leaves_the_session_alive() {
    let _clean = clean();
    // A server that closes a kept-alive connection as the next request arrives on it (the
    // cut stream's close, raced on purpose: the next call goes out at once).
    let fake = Fake::start(&["--http-cut-stream"]);
    let s = start(&fake.url, Generation::PerRequest);
    s.list_tools().unwrap();
    for _ in 0..20 {
        let err = echo(&s, "lost").unwrap_err();
        assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err:?}");
        match s.list_tools() {
            Ok(_) => {}
            // The race was lost: the request was written on the closed connection.
            Err(Error::OutcomeUnknown {
                reason: CloseReason::Broken(why),
                ..
            }) => assert!(why.contains("cannot reach"), "{why}"),
            Err(other) => panic!("{other:?}"),
        }
        assert!(s.is_alive(), "a broken connection is not a dead server");
    }
    s.close();
}

#[test]
fn a_stall_mid_stream_times_out_or_is_cancelled_and_the_session_goes_on() {
    let _clean = clean();
    let fake = Fake::recorded("stall", &["--http-stall-sse"]);
    for generation in BOTH {
        let s = start(&fake.url, generation);
        s.list_tools().unwrap();
        let began = Instant::now();
        // A tool still running (so its cancellation shows on the server's stderr) whose
        // stream stalls after its priming event.
        let err = s
            .call_tool_with(
                "sleep",
                json!({"ms": 5000}),
                CallOptions::new().timeout(Duration::from_millis(500)),
            )
            .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Timeout {
                    phase: Phase::Request,
                    ..
                }
            ),
            "{generation:?}: {err:?}"
        );
        within(
            "a stalled call",
            began.elapsed(),
            Duration::from_millis(500),
            Duration::from_millis(1500),
        );
        let cancel = CancelHandle::new();
        let trigger = cancel.clone();
        let canceller = thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            trigger.cancel();
            Instant::now()
        });
        let err = s
            .call_tool_with(
                "sleep",
                json!({"ms": 5000}),
                CallOptions::new().cancel_with(&cancel),
            )
            .unwrap_err();
        let cancelled_at = canceller.join().unwrap();
        assert!(matches!(err, Error::Cancelled), "{generation:?}: {err:?}");
        assert!(
            cancelled_at.elapsed() < Duration::from_millis(1000),
            "{:?} after the cancel",
            cancelled_at.elapsed()
        );
        // Nothing else stalls: the session goes on.
        assert!(s.is_alive());
        s.list_tools().unwrap();
        assert_eq!(s.in_flight(), 0);
        s.close();
    }
    // Both abandoned calls were cancelled on the server: in the handshake generation by
    // notifications/cancelled, in the per-request one by the closed stream alone.
    let notices = fake.posts("notifications/cancelled");
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(notices
        .iter()
        .all(|n| n["headers"]["mcp-session-id"].is_string()));
    assert!(
        common::wait_for(Duration::from_secs(5), || (fake
            .stderr()
            .lines()
            .filter(|l| l.starts_with("cancelled "))
            .count()
            == 4)
            .then_some(()))
        .is_some(),
        "{}",
        fake.stderr()
    );
}

// ---------------------------------------------------------------------------------------
// Credentials.

#[test]
fn a_401_without_a_token_provider_is_unauthorized_with_the_challenge() {
    let _clean = clean();
    let fake = Fake::start(&["--http-401", "always"]);
    for generation in BOTH {
        let err = Session::start(http(&fake.url, generation)).unwrap_err();
        let Error::Unauthorized {
            url,
            status,
            challenge,
        } = &err
        else {
            panic!("{generation:?}: {err:?}");
        };
        assert_eq!((url.as_str(), *status), (fake.url.as_str(), 401));
        let c = challenge.as_ref().expect("the challenge");
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("fake"));
        assert_eq!(c.param("error"), Some("invalid_token"));
        let metadata = format!("{}/.well-known/oauth-protected-resource", fake.base());
        assert_eq!(c.param("resource_metadata"), Some(metadata.as_str()));
        assert!(err.to_string().contains("invalid_token"), "{err}");
    }
    assert_eq!(fake.lines("auth header present"), 0);
}

/// A token provider that counts its calls and keeps the challenges it was shown.
#[derive(Clone, Default)]
struct Tokens {
    asked: Arc<Mutex<Vec<Option<mcp_pool::Challenge>>>>,
}

impl Tokens {
    /// `first` for the first token, `renewed` after a refusal.
    fn provider(
        &self,
        first: &'static str,
        renewed: &'static str,
    ) -> impl Fn(&TokenRequest<'_>) -> Result<String, String> + Send + Sync + 'static {
        let asked = self.asked.clone();
        move |req: &TokenRequest<'_>| {
            asked.lock().push(req.challenge.cloned());
            Ok(if req.challenge.is_some() {
                renewed
            } else {
                first
            }
            .to_owned())
        }
    }

    fn asked(&self) -> Vec<Option<mcp_pool::Challenge>> {
        self.asked.lock().clone()
    }
}

#[test]
fn a_refused_token_is_renewed_once_with_the_challenge() {
    let _clean = clean();
    let fake = Fake::start(&["--http-401", "always"]);
    for generation in BOTH {
        let tokens = Tokens::default();
        let s = Session::start(
            http(&fake.url, generation).token_provider(tokens.provider("bad", "good")),
        )
        .unwrap();
        assert_eq!(echo(&s, "authorized").unwrap(), "authorized");
        s.list_tools().unwrap();
        let asked = tokens.asked();
        assert_eq!(
            asked.len(),
            2,
            "{generation:?}: asked once more, then kept: {asked:?}"
        );
        assert!(asked[0].is_none());
        let c = asked[1].as_ref().unwrap();
        assert_eq!(c.param("error"), Some("invalid_token"));
        assert!(c.param("resource_metadata").is_some());
        s.close();
    }
    // A second refusal in a row is final.
    let tokens = Tokens::default();
    let err = Session::start(
        http(&fake.url, Generation::PerRequest)
            .token_provider(tokens.provider("first-REFUSED-token", "second-REFUSED-token")),
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Unauthorized {
                status: 401,
                challenge: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(tokens.asked().len(), 2);
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("REFUSED"), "{shown}");
    assert_eq!(
        logged("REFUSED"),
        Vec::<String>::new(),
        "a token in the logs"
    );
}

#[test]
fn a_401_once_renews_the_token_once_and_secrets_never_show() {
    let _clean = clean();
    let fake = Fake::start(&["--http-401", "once"]);
    let tokens = Tokens::default();
    let config = http(&fake.url, Generation::Handshake)
        .header("X-Api-Key", "key-SECRET-42")
        .token_provider(tokens.provider("tok-SECRET-1", "tok-SECRET-2"));
    let shown = format!("{config:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(
        shown.contains("X-Api-Key"),
        "the header's name shows: {shown}"
    );
    let s = Session::start(config).unwrap();
    for i in 0..3 {
        assert_eq!(echo(&s, &i.to_string()).unwrap(), i.to_string());
    }
    let asked = tokens.asked();
    assert_eq!(asked.len(), 2, "renewed once: {asked:?}");
    assert!(asked[1].is_some());
    s.close();
    // "Bearer tok-SECRET-2" on every request after the first.
    assert!(fake.lines("fake-server: authorization header length 19") >= 3);
    assert_eq!(
        logged("SECRET"),
        Vec::<String>::new(),
        "secrets in the logs"
    );
    assert!(!logs().is_empty(), "the logs were captured");
}

// ---------------------------------------------------------------------------------------
// 503 with Retry-After.

#[test]
fn a_503_with_retry_after_is_waited_out_within_the_deadline() {
    let _clean = clean();
    for generation in BOTH {
        let fake = Fake::recorded("busy", &["--http-503", "2"]);
        let began = Instant::now();
        let s = start(&fake.url, generation);
        // Two answers of `Retry-After: 1`.
        within(
            "a start after two 503s",
            began.elapsed(),
            Duration::from_secs(2),
            Duration::from_secs(5),
        );
        assert_eq!(echo(&s, "served").unwrap(), "served");
        let first = &fake.of_method("POST")[0]["body"]["method"];
        assert_eq!(fake.posts(first.as_str().unwrap()).len(), 3);
        s.close();
    }
}

#[test]
fn a_503_without_retry_after_is_not_sent_again_for_a_tool_call() {
    // A proxy's 503 may come after it forwarded the request: a tool call is never
    // repeated (other messages are: the start below went through the same proxy).
    let _clean = clean();
    let fake = Fake::recorded("busy-bare", &["--http-503", "1", "--http-503-bare"]);
    let s = start(&fake.url, Generation::Handshake);
    let err = echo(&s, "once").unwrap_err();
    assert!(matches!(err, Error::Http { status: 503, .. }), "{err:?}");
    assert_eq!(fake.posts("tools/call").len(), 1, "{:?}", fake.records());
    // The next one goes through.
    assert_eq!(echo(&s, "twice").unwrap(), "twice");
    s.close();
}

#[test]
fn a_deadline_shorter_than_retry_after_fails_at_once_with_http_503() {
    let _clean = clean();
    let fake = Fake::start(&["--http-503", "2"]);
    let began = Instant::now();
    let err = Session::start(
        http(&fake.url, Generation::PerRequest).start_timeout(Duration::from_millis(700)),
    )
    .unwrap_err();
    // link.rs: a Retry-After that ends after the deadline is not waited for.
    match &err {
        Error::Http {
            url,
            status: 503,
            message,
        } => {
            assert_eq!(url, &fake.url);
            assert_eq!(message, "busy until after the deadline (Retry-After)");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        began.elapsed() < Duration::from_millis(600),
        "{:?}",
        began.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// Bodies: oversize, malformed SSE.

#[test]
fn an_oversize_reply_is_too_large_and_the_session_goes_on() {
    let _clean = clean();
    let fake = Fake::start(&["--http-oversize", "300000"]);
    for generation in BOTH {
        let s = Session::start(http(&fake.url, generation).max_message_size(100_000)).unwrap();
        s.list_tools().unwrap();
        let err = echo(&s, "big").unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    limit: 100_000,
                    size: 300_000
                }
            ),
            "{generation:?}: {err:?}"
        );
        assert!(s.is_alive());
        s.list_tools().unwrap();
        let err = echo(&s, "again").unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
        s.close();
    }
}

#[test]
fn malformed_sse_is_a_typed_error_without_a_hang() {
    let _clean = clean();
    let fake = Fake::start(&["--http-bad-sse"]);
    for generation in BOTH {
        // The 2 MiB line never ends: with the default limit the body ends inside it.
        let s = start(&fake.url, generation);
        let began = Instant::now();
        let err = s
            .call_tool_with(
                "echo",
                json!({"text": "x"}),
                CallOptions::new().timeout(Duration::from_secs(10)),
            )
            .unwrap_err();
        match &err {
            Error::OutcomeUnknown {
                reason: CloseReason::Broken(why),
                ..
            } => assert!(why.contains("before answering"), "{why}"),
            other => panic!("{generation:?}: {other:?}"),
        }
        assert!(
            began.elapsed() < Duration::from_secs(3),
            "{:?}",
            began.elapsed()
        );
        assert!(
            s.invalid_lines() >= 1,
            "the event that is not JSON was counted"
        );
        assert!(s.is_alive());
        s.close();
        // Under a 1 MiB limit the line is over it.
        let s = Session::start(http(&fake.url, generation).max_message_size(1 << 20)).unwrap();
        let err = s
            .call_tool_with(
                "echo",
                json!({"text": "x"}),
                CallOptions::new().timeout(Duration::from_secs(10)),
            )
            .unwrap_err();
        match err {
            Error::TooLarge { limit, size } => {
                assert_eq!(limit, 1 << 20);
                assert!(size > limit, "{size}");
            }
            other => panic!("{generation:?}: {other:?}"),
        }
        s.close();
    }
}

// ---------------------------------------------------------------------------------------
// Redirects, slow heads.

#[test]
fn a_redirect_to_another_origin_loses_the_credentials() {
    let _clean = clean();
    let target = Fake::recorded("redirect-target", &[]);
    let first = Fake::recorded("redirect-first", &["--http-redirect", &target.url]);
    for generation in BOTH {
        let tokens = Tokens::default();
        let s = Session::start(
            http(&first.url, generation)
                .header("X-Api-Key", "key-SECRET-7")
                .token_provider(tokens.provider("tok-SECRET-8", "tok-SECRET-9")),
        )
        .unwrap();
        assert_eq!(echo(&s, "followed").unwrap(), "followed");
        s.close();
    }
    // The first origin got the credentials; the second never did.
    let redirected = first.of_method("POST");
    assert!(!redirected.is_empty());
    for r in &redirected {
        assert_eq!(r["headers"]["x-api-key"], "key-SECRET-7", "{r}");
        assert!(r["headers"]["authorization"].is_string(), "{r}");
    }
    let got = target.records();
    assert!(got.iter().any(|r| r["body"]["method"] == "tools/call"));
    for r in &got {
        assert!(r["headers"].get("x-api-key").is_none(), "{r}");
        assert!(r["headers"].get("authorization").is_none(), "{r}");
    }
    assert_eq!(target.lines("auth header present"), 0);
    assert_eq!(target.lines("auth header absent"), got.len());
    assert!(first.lines("auth header present") >= redirected.len());
    assert!(
        logs()
            .iter()
            .any(|l| l.contains("redirected to another origin")),
        "the redirect is logged"
    );
    assert_eq!(
        logged("SECRET"),
        Vec::<String>::new(),
        "secrets in the logs"
    );
}

#[test]
fn slow_headers_time_out_within_the_deadline() {
    let _clean = clean();
    let fake = Fake::start(&["--http-slow-headers", "1500"]);
    let s = Session::start(
        http(&fake.url, Generation::PerRequest).start_timeout(Duration::from_secs(10)),
    )
    .unwrap();
    let began = Instant::now();
    let err = s
        .call_tool_with(
            "echo",
            json!({"text": "slow"}),
            CallOptions::new().timeout(Duration::from_millis(400)),
        )
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Timeout {
                phase: Phase::Request,
                ..
            }
        ),
        "{err:?}"
    );
    within(
        "a call whose reply head is late",
        began.elapsed(),
        Duration::from_millis(400),
        Duration::from_millis(1200),
    );
    // A start slower than its timeout is a handshake timeout.
    let began = Instant::now();
    let err = Session::start(
        http(&fake.url, Generation::PerRequest).start_timeout(Duration::from_millis(500)),
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Timeout {
                phase: Phase::Handshake,
                ..
            }
        ),
        "{err:?}"
    );
    within(
        "a start whose reply head is late",
        began.elapsed(),
        Duration::from_millis(500),
        Duration::from_millis(1300),
    );
    s.close();
}

// ---------------------------------------------------------------------------------------
// What cannot be reached.

#[test]
fn connection_refused_unknown_host_and_tls_failures_are_typed() {
    let _clean = clean();
    let refused = format!("http://127.0.0.1:{}/mcp", free_port());
    let err = Session::start(http(&refused, Generation::Auto)).unwrap_err();
    match &err {
        Error::Connect { url, kind, .. } => {
            assert_eq!(url, &refused);
            assert_eq!(*kind, ConnectKind::Refused, "{err}");
        }
        other => panic!("{other:?}"),
    }
    let nowhere = "http://nonexistent.invalid/mcp";
    let began = Instant::now();
    let err =
        Session::start(http(nowhere, Generation::Auto).start_timeout(Duration::from_secs(10)))
            .unwrap_err();
    match &err {
        Error::Connect { url, kind, .. } => {
            assert_eq!(url, nowhere);
            assert_eq!(*kind, ConnectKind::Dns, "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert!(began.elapsed() < Duration::from_secs(10));
    // TLS to a plain-HTTP server: the fake answers the ClientHello with a plain-text 400,
    // which rustls cannot read as a TLS record ("received corrupt message of type
    // InvalidContentType"): a TLS failure, not a broken connection (rustls reports it as an
    // I/O error of kind InvalidData, which link.rs files under `Tls`).
    let fake = Fake::start(&[]);
    let tls = fake.url.replace("http://", "https://");
    let err = Session::start(http(&tls, Generation::Auto)).unwrap_err();
    match &err {
        Error::Connect { url, kind, .. } => {
            assert_eq!(url, &tls);
            assert_eq!(*kind, ConnectKind::Tls, "{err}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_server_gone_between_calls_is_a_connect_error_and_ends_the_session() {
    let _clean = clean();
    let mut fake = Fake::start(&[]);
    let s = start(&fake.url, Generation::PerRequest);
    assert_eq!(echo(&s, "up").unwrap(), "up");
    fake.kill();
    let err = echo(&s, "down").unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Connect {
                kind: ConnectKind::Refused,
                ..
            }
        ),
        "never sent, so not outcome unknown: {err:?}"
    );
    assert!(common::wait_for(Duration::from_secs(2), || (!s.is_alive()).then_some(())).is_some());
    s.close();
}

// ---------------------------------------------------------------------------------------
// The per-request generation's metadata headers.

#[test]
fn per_request_headers_mirror_method_name_and_marked_arguments() {
    let _clean = clean();
    let fake = Fake::recorded("headers", &[]);
    let s = start(&fake.url, Generation::PerRequest);
    let headers = |args: Value| -> Value {
        let r = s.call_tool("header_echo", args).unwrap();
        assert!(!r.is_error, "{}", r.text());
        r.structured_content.unwrap()
    };
    let h = headers(
        json!({"region": "us-west1", "count": 42, "flag": true, "nested": {"zone": "eu-1"}}),
    );
    assert_eq!(h["mcp-method"], "tools/call");
    assert_eq!(h["mcp-name"], "header_echo");
    assert_eq!(h["mcp-protocol-version"], "2026-07-28");
    assert_eq!(h["mcp-param-region"], "us-west1");
    assert_eq!(h["mcp-param-count"], "42");
    assert_eq!(h["mcp-param-flag"], "true");
    assert_eq!(h["mcp-param-zone"], "eu-1");
    // Non-ASCII: the base64 sentinel; null and absent arguments: no header.
    let h = headers(json!({"region": "Zürich", "flag": false, "count": null}));
    assert_eq!(h["mcp-param-region"], "=?base64?WsO8cmljaA==?=");
    assert_eq!(h["mcp-param-flag"], "false");
    assert!(h.get("mcp-param-count").is_none(), "{h}");
    assert!(h.get("mcp-param-zone").is_none(), "{h}");
    let h = headers(json!({}));
    let params: Vec<&String> = h
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("mcp-param-"))
        .collect();
    assert!(params.is_empty(), "{h}");
    // A name that is not plain ASCII goes as the sentinel (the fake decodes it and finds
    // it equal to the body's, or it would answer 400 with -32020).
    let r = s.call_tool("outil_é", json!({})).unwrap();
    assert!(r.is_error);
    assert_eq!(r.text(), "unknown tool: outil_é");
    let err = s.read_resource("fake://r/é").unwrap_err();
    assert!(
        matches!(&err, Error::Server { code: -32002, .. }),
        "{err:?}"
    );
    let named: Vec<String> = fake
        .records()
        .iter()
        .filter_map(|r| r["headers"]["mcp-name"].as_str().map(str::to_owned))
        .collect();
    assert!(
        named.contains(&"=?base64?b3V0aWxfw6k=?=".to_owned()),
        "{named:?}"
    );
    assert!(
        named.contains(&"=?base64?ZmFrZTovL3Ivw6k=?=".to_owned()),
        "{named:?}"
    );
    let read = fake.posts("resources/read");
    assert_eq!(read[0]["headers"]["mcp-method"], "resources/read");
    s.close();
    // The handshake generation sends none of them.
    let s = start(&fake.url, Generation::Handshake);
    let h = s
        .call_tool("header_echo", json!({"region": "us-west1"}))
        .unwrap()
        .structured_content
        .unwrap();
    assert!(
        h.get("mcp-method").is_none() && h.get("mcp-param-region").is_none(),
        "{h}"
    );
    assert_eq!(h["mcp-protocol-version"], "2025-11-25");
    assert!(h["mcp-session-id"].is_string());
    s.close();
}

#[test]
fn tools_with_invalid_header_marks_are_left_out_over_http_only() {
    let _clean = clean();
    let bad = [
        "bad_header_empty",
        "bad_header_object",
        "bad_header_array",
        "bad_header_number",
        "bad_header_duplicate",
        "bad_header_space",
        "bad_header_colon",
        "bad_header_non_ascii",
        "bad_header_items",
        "bad_header_any_of",
    ];
    let fake = Fake::start(&["--http-bad-header-tools"]);
    for generation in BOTH {
        let s = start(&fake.url, generation);
        let names: Vec<String> = s
            .list_tools()
            .unwrap()
            .iter()
            .map(|t| t.name.clone())
            .collect();
        for b in bad {
            assert!(!names.iter().any(|n| n == b), "{generation:?}: {b} kept");
        }
        assert!(names.iter().any(|n| n == "header_echo"));
        s.close();
    }
    let left_out = logs().iter().filter(|l| l.contains("left out")).count();
    assert_eq!(left_out, 2 * bad.len(), "one warning per tool and listing");
    for generation in BOTH {
        let s = Session::start(common::fake(&["--http-bad-header-tools"]).generation(generation))
            .unwrap();
        let names: Vec<String> = s
            .list_tools()
            .unwrap()
            .iter()
            .map(|t| t.name.clone())
            .collect();
        for b in bad {
            assert!(
                names.iter().any(|n| n == b),
                "stdio {generation:?}: {b} dropped"
            );
        }
        s.close();
    }
}

// ---------------------------------------------------------------------------------------
// HTTP+SSE (2024-11-05).

#[test]
fn the_legacy_transport_is_a_fallback_and_a_choice() {
    let _clean = clean();
    let fake = Fake::recorded("legacy", &["--http-legacy"]);
    for transport in [HttpTransport::Auto, HttpTransport::Sse] {
        let before = fake.records().len();
        let answers = Arc::new(Answers::default());
        let s = Session::start(
            ServerConfig::http("fake", &fake.url)
                .http_transport(transport)
                .handler(answers.clone()),
        )
        .unwrap();
        assert_eq!(s.transport(), "http+sse");
        assert_eq!(s.details().generation, Generation::Handshake);
        assert_eq!(echo(&s, "legacy").unwrap(), "legacy");
        let r = s.call_tool("ask_roots", json!({})).unwrap();
        assert!(r.text().contains("file:///tmp/http-root"), "{}", r.text());
        assert_eq!(answers.roots.load(Ordering::SeqCst), 1);
        s.close();
        let seen: Vec<Value> = fake.records().split_off(before);
        let to_mcp = seen
            .iter()
            .filter(|r| r["method"] == "POST" && r["path"] == "/mcp")
            .count();
        match transport {
            // server/discover, then initialize: both 405, then GET.
            HttpTransport::Auto => assert_eq!(to_mcp, 2, "{seen:#?}"),
            _ => assert_eq!(to_mcp, 0, "{seen:#?}"),
        }
        let gets: Vec<&Value> = seen.iter().filter(|r| r["method"] == "GET").collect();
        assert_eq!(gets.len(), 1, "{seen:#?}");
        assert!(seen
            .iter()
            .filter(|r| r["method"] == "POST" && r["path"] != "/mcp")
            .all(|r| r["path"]
                .as_str()
                .unwrap()
                .starts_with("/messages?session=")));
    }
}

#[test]
fn a_legacy_session_ends_with_its_event_stream() {
    let _clean = clean();
    let mut fake = Fake::start(&["--http-legacy"]);
    let s =
        Session::start(ServerConfig::http("fake", &fake.url).http_transport(HttpTransport::Sse))
            .unwrap();
    assert_eq!(echo(&s, "before").unwrap(), "before");
    fake.kill();
    assert!(common::wait_for(Duration::from_secs(2), || (!s.is_alive()).then_some(())).is_some());
    match s.close_reason() {
        Some(CloseReason::Broken(why)) => assert!(why.contains("event stream"), "{why}"),
        other => panic!("{other:?}"),
    }
    let err = echo(&s, "after").unwrap_err();
    assert!(
        matches!(
            &err,
            Error::SessionClosed {
                reason: CloseReason::Broken(_),
                ..
            }
        ),
        "{err:?}"
    );
    s.close();
}

// ---------------------------------------------------------------------------------------
// Closing under a call.

#[test]
fn close_while_a_call_reads_its_reply_fails_the_call_at_once() {
    let _clean = clean();
    // JSON replies (the call waits for the reply's head) and SSE (it reads the stream).
    for flags in [&[][..], &["--http-sse"][..]] {
        let fake = Fake::start(flags);
        for generation in BOTH {
            let s = start(&fake.url, generation);
            s.list_tools().unwrap();
            let blocked = {
                let s = s.clone();
                thread::spawn(move || {
                    let r = s.call_tool("hang", json!({}));
                    (r, Instant::now())
                })
            };
            assert!(common::wait_for(Duration::from_secs(5), || {
                (s.in_flight() == 1).then_some(())
            })
            .is_some());
            thread::sleep(Duration::from_millis(300));
            let began = Instant::now();
            s.close();
            let closed_in = began.elapsed();
            let (r, ended) = blocked.join().unwrap();
            assert!(
                closed_in < Duration::from_secs(2),
                "close took {closed_in:?}"
            );
            assert!(
                ended.duration_since(began) < Duration::from_millis(1000),
                "the call ended {:?} after close began",
                ended.duration_since(began)
            );
            // Sent (the server runs it): never reported as unsent.
            let err = r.unwrap_err();
            assert!(
                matches!(
                    &err,
                    Error::OutcomeUnknown {
                        reason: CloseReason::Closed,
                        ..
                    }
                ),
                "{flags:?} {generation:?}: {err:?}"
            );
        }
        // The handshake generation's hung tool ended with its session (DELETE); the
        // per-request one was cancelled by its closed stream (stderr `cancelled ID`).
        assert!(
            common::wait_for(Duration::from_secs(5), || {
                let cancelled = fake
                    .stderr()
                    .lines()
                    .filter(|l| l.starts_with("cancelled "))
                    .count();
                (cancelled == 1).then_some(())
            })
            .is_some(),
            "{}",
            fake.stderr()
        );
        assert!(fake
            .stderr()
            .lines()
            .any(|l| l.starts_with("fake-server: session ") && l.ends_with(" deleted")));
    }
}

// ---------------------------------------------------------------------------------------
// TLS: a custom root, an unknown issuer.

/// A TLS front for the fake (`python3` with `ssl`), serving a certificate for 127.0.0.1
/// signed by a CA of its own; `None` (the test says why) without `python3` or `openssl`.
struct TlsFront {
    child: Child,
    url: String,
    ca_pem: Vec<u8>,
    dir: PathBuf,
}

const TLS_FRONT: &str = r#"
import os, socket, ssl, sys, threading
cert, key, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print("listening", srv.getsockname()[1], flush=True)
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(c):
    try:
        t = ctx.wrap_socket(c, server_side=True)
    except (ssl.SSLError, OSError):
        c.close()
        return
    u = socket.create_connection(("127.0.0.1", target))
    threading.Thread(target=pump, args=(t, u), daemon=True).start()
    pump(u, t)
def accept():
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
sys.stdin.read()
os._exit(0)
"#;

impl TlsFront {
    fn start(fake: &Fake) -> Option<TlsFront> {
        let dir = common::temp_path("http-tls");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        let run = |line: String| openssl(&line.split(' ').collect::<Vec<_>>());
        let made = run(format!(
            "req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=mcp-pool-test-ca"
        )) && run(format!(
            "req {ec} -keyout leaf.key -out leaf.csr -subj /CN=127.0.0.1"
        )) && run(
            "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                   -out leaf.pem -days 2 -extfile leaf.ext"
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        );
        if !made {
            eprintln!("TLS test skipped: openssl cannot make certificates here");
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
        let port = fake.base().rsplit(':').next().unwrap().to_owned();
        let spawned = Command::new("python3")
            .arg("-c")
            .arg(TLS_FRONT)
            .arg(dir.join("leaf.pem"))
            .arg(dir.join("leaf.key"))
            .arg(port)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = spawned else {
            eprintln!("TLS test skipped: no python3");
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        };
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let mut front = TlsFront {
            child,
            url: String::new(),
            ca_pem: std::fs::read(dir.join("ca.pem")).unwrap(),
            dir,
        };
        let Some(port) = line.trim().strip_prefix("listening ") else {
            eprintln!("TLS test skipped: the python TLS front did not start ({line:?})");
            return None;
        };
        front.url = format!("https://127.0.0.1:{port}/mcp");
        Some(front)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn tls_with_a_custom_root_and_an_unknown_issuer() {
    let _clean = clean();
    let fake = Fake::start(&[]);
    let Some(front) = TlsFront::start(&fake) else {
        return;
    };
    // The bundled Mozilla roots do not know the test CA.
    let err = Session::start(http(&front.url, Generation::PerRequest)).unwrap_err();
    match &err {
        Error::Connect {
            url,
            kind: ConnectKind::Tls,
            reason,
        } => {
            assert_eq!(url, &front.url);
            assert!(reason.contains("certificate"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Trusting it, both generations work over TLS.
    for generation in BOTH {
        let s =
            Session::start(http(&front.url, generation).root_certificates(front.ca_pem.clone()))
                .unwrap_or_else(|e| panic!("{generation:?}: {e}"));
        assert_eq!(echo(&s, "over tls").unwrap(), "over tls");
        // A reply read through rustls still answers to the deadline, the cancel handle
        // and the close (the stop is not an `Interrupted` error, which rustls retries).
        let began = Instant::now();
        let err = s
            .call_tool_with(
                "hang",
                json!({}),
                CallOptions::new().timeout(Duration::from_millis(300)),
            )
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        within(
            "a hung call over TLS",
            began.elapsed(),
            Duration::from_millis(300),
            Duration::from_millis(1300),
        );
        let cancel = CancelHandle::new();
        let trigger = cancel.clone();
        let canceller = thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            trigger.cancel();
        });
        let began = Instant::now();
        let err = s
            .call_tool_with("hang", json!({}), CallOptions::new().cancel_with(&cancel))
            .unwrap_err();
        canceller.join().unwrap();
        assert!(matches!(err, Error::Cancelled), "{err:?}");
        assert!(
            began.elapsed() < Duration::from_millis(1200),
            "{:?}",
            began.elapsed()
        );
        let blocked = {
            let s = s.clone();
            thread::spawn(move || s.call_tool("hang", json!({})))
        };
        assert!(
            common::wait_for(Duration::from_secs(5), || (s.in_flight() == 1)
                .then_some(()))
            .is_some()
        );
        thread::sleep(Duration::from_millis(200));
        let began = Instant::now();
        s.close();
        let err = blocked.join().unwrap().unwrap_err();
        assert!(
            matches!(
                &err,
                Error::OutcomeUnknown {
                    reason: CloseReason::Closed,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "{:?}",
            began.elapsed()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Known and not fixed here.

#[test]
#[ignore = "BUG (dependency): ureq-proto 0.7.1 logs every byte of each request head at TRACE (target `ureq_proto::util`, a hex dump in `Writer::drop`), the Authorization header and configured headers included; nothing in src/session/http/ can stop it (the bytes it dumps are the ones on the wire). Needs ureq-proto to drop the dump, or a transport above TLS that adds the credentials below ureq"]
fn trace_logs_of_the_http_stack_hold_no_secret() {
    let _clean = clean();
    let fake = Fake::start(&[]);
    let s = Session::start(
        http(&fake.url, Generation::PerRequest)
            .header("X-Api-Key", "key-SECRET-3")
            .token_provider(|_: &TokenRequest<'_>| Ok("tok-SECRET-4".to_owned())),
    )
    .unwrap();
    assert_eq!(echo(&s, "x").unwrap(), "x");
    s.close();
    let leaked: Vec<String> = logs()
        .into_iter()
        .filter(|l| l.contains("SECRET"))
        .collect();
    assert!(leaked.is_empty(), "secrets in the logs: {leaked:#?}");
}

#[test]
fn a_closed_session_closes_its_connections_while_a_handle_remains() {
    let guard = clean();
    let fake = Fake::start(&[]);
    let before = guard.fds.iter().filter(|f| f.contains("socket:")).count();
    for generation in BOTH {
        let s = start(&fake.url, generation);
        let kept = s.clone();
        assert_eq!(echo(&s, "x").unwrap(), "x");
        s.close();
        // The handle still lives; its kept-alive connections must not.
        let sockets = || {
            fd_targets()
                .iter()
                .filter(|f| f.contains("socket:"))
                .count()
        };
        let closed = common::wait_for(Duration::from_secs(5), || {
            (sockets() <= before).then_some(())
        });
        assert!(closed.is_some(), "{generation:?}: {:#?}", fd_targets());
        drop(kept);
    }
}

#[test]
fn a_per_caller_sessions_token_provider_is_told_whose_token_it_is() {
    let _clean = clean();
    let fake = Fake::recorded("per-user", &[]);
    let asked: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = asked.clone();
    let pool = mcp_pool::Pool::builder()
        .server_with(
            http(&fake.url, Generation::Handshake).token_provider(move |req: &TokenRequest<'_>| {
                seen.lock().push(req.caller.map(str::to_owned));
                Ok(format!("token-of-{}", req.caller.unwrap_or("nobody")))
            }),
            mcp_pool::PoolSettings::new().sharing(mcp_pool::Sharing::PerCaller),
        )
        .build()
        .unwrap();
    for key in ["alice", "bob"] {
        let r = pool
            .call_tool_as(key, "fake", "echo", json!({"text": key}))
            .unwrap();
        assert_eq!(r.text(), key);
    }
    pool.close();
    let asked = asked.lock().clone();
    assert!(asked.contains(&Some("alice".into())), "{asked:?}");
    assert!(asked.contains(&Some("bob".into())), "{asked:?}");
    assert!(!asked.contains(&None), "{asked:?}");
    // Each user's session went out with that user's token (the fake logs only lengths).
    let stderr = fake.stderr();
    for token in ["Bearer token-of-alice", "Bearer token-of-bob"] {
        let line = format!("authorization header length {}", token.len());
        assert!(stderr.contains(&line), "{line}: {stderr}");
    }
}

#[test]
fn batched_calls_over_http_get_the_result_rules_of_single_ones() {
    let _clean = clean();
    let fake = Fake::start(&[]);
    for generation in BOTH {
        let s = start(&fake.url, generation);
        let calls = [
            ToolCall::new("result_type", json!({"value": "bogus"})),
            ToolCall::new("bad_structured", json!({})),
            ToolCall::new("echo", json!({"text": "plain"})),
        ];
        let results = s.batch(&calls, mcp_pool::BatchOptions::new()).unwrap();
        assert!(
            matches!(&results[0], Err(Error::Protocol(m)) if m.contains("bogus")),
            "{generation:?}: {:?}",
            results[0]
        );
        assert!(
            matches!(&results[1], Err(Error::InvalidOutput { .. })),
            "{generation:?}: {:?}",
            results[1]
        );
        assert_eq!(results[2].as_ref().unwrap().text(), "plain");
        s.close();
    }
}
