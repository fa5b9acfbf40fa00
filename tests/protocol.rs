//! The rules of the two current protocol generations against the fake server (issue 10):
//! multi round-trip requests, results that are true or typed errors, capabilities declared
//! per generation, URL elicitation, server-side cancels, subscriptions, caching hints,
//! logging, `_meta`, tasks, and the -32022 retry. Each test would fail if its rule were
//! broken, and checks that no child, thread or file descriptor is left afterwards.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fake, temp_path, wait_for, Clean};
use mcp_pool::{
    CallOptions, CancelHandle, ClientHandler, Content, ElicitAction, Error, Generation,
    HandlerError, HandlerSupport, ListKind, ListenFilter, LogLevel, LogMessage, NoHandler, Pool,
    ServerConfig, ServerRequest, Session, Task, TaskStatus, UrlElicitation,
};
use parking_lot::Mutex;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The fake server, in the per-request generation (2026-07-28) only.
fn per_request(flags: &[&str]) -> ServerConfig {
    let mut args = vec!["--generation", "stateless"];
    args.extend_from_slice(flags);
    fake(&args)
}

/// The fake server, in the handshake generation (2025-11-25) only.
fn handshake(flags: &[&str]) -> ServerConfig {
    let mut args = vec!["--generation", "handshake"];
    args.extend_from_slice(flags);
    fake(&args)
}

fn start(config: ServerConfig, generation: Generation) -> Session {
    let s = Session::start(config).unwrap();
    assert_eq!(s.details().generation, generation);
    s
}

/// A successful tool call's text.
fn text(s: &Session, tool: &str, args: Value) -> String {
    let r = s.call_tool(tool, args).unwrap();
    assert!(!r.is_error, "{tool}: {r:?}");
    r.text()
}

/// A successful tool call's text, read as JSON.
fn json_text(s: &Session, tool: &str, args: Value) -> Value {
    let t = text(s, tool, args);
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{tool}: {t:?} is not JSON: {e}"))
}

/// The `tools/call` requests of `tool` the fake's `--record` file holds.
fn recorded(path: &std::path::Path, tool: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["tool"] == tool)
        .count()
}

const ALL: HandlerSupport = HandlerSupport {
    roots: true,
    roots_list_changed: true,
    sampling: true,
    sampling_tools: true,
    sampling_context: true,
    elicitation_form: true,
    elicitation_url: true,
};

const FORM: HandlerSupport = HandlerSupport {
    roots: false,
    roots_list_changed: false,
    sampling: false,
    sampling_tools: false,
    sampling_context: false,
    elicitation_form: true,
    elicitation_url: false,
};

/// How the test handler answers a form elicitation.
#[derive(Clone, Copy)]
enum Mode {
    /// At once: accept, name `Ada`.
    Answer,
    /// With a handler error.
    Refuse,
    /// Waits (up to 5 s) until the request is cancelled, then answers anyway.
    Block,
    /// Sleeps this long, then answers.
    Slow(Duration),
}

/// What the test handler saw.
#[derive(Default)]
struct Seen {
    elicitations: Vec<Value>,
    urls: Vec<UrlElicitation>,
    samplings: usize,
    roots: usize,
    /// Requests whose `is_cancelled()` the handler saw turn true.
    saw_cancel: usize,
    /// Handler calls that have returned.
    returned: usize,
    logs: Vec<(String, LogMessage)>,
    tasks: Vec<Task>,
    lists: Vec<ListKind>,
    updated: Vec<String>,
    completed: Vec<(String, String)>,
}

struct Client {
    support: HandlerSupport,
    mode: Mode,
    seen: Mutex<Seen>,
}

impl Client {
    fn new(support: HandlerSupport) -> Arc<Client> {
        Client::with(support, Mode::Answer)
    }

    fn with(support: HandlerSupport, mode: Mode) -> Arc<Client> {
        Arc::new(Client {
            support,
            mode,
            seen: Mutex::new(Seen::default()),
        })
    }
}

fn answer() -> Value {
    json!({"action": "accept", "content": {"name": "Ada", "answer": "yes"}})
}

impl ClientHandler for Client {
    fn supports(&self) -> HandlerSupport {
        self.support
    }

    fn roots(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        self.seen.lock().roots += 1;
        Ok(json!({"roots": [{"uri": "file:///work", "name": "work"}]}))
    }

    fn sampling(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        self.seen.lock().samplings += 1;
        Ok(json!({
            "role": "assistant", "content": {"type": "text", "text": "sampled"},
            "model": "fake-model", "stopReason": "endTurn"
        }))
    }

    fn elicitation(&self, request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        self.seen.lock().elicitations.push(request.params().clone());
        let outcome = match self.mode {
            Mode::Answer => Ok(answer()),
            Mode::Refuse => Err(HandlerError::internal("the user would not say")),
            Mode::Slow(pause) => {
                std::thread::sleep(pause);
                Ok(answer())
            }
            Mode::Block => {
                let until = Instant::now() + Duration::from_secs(5);
                while !request.is_cancelled() && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if request.is_cancelled() {
                    self.seen.lock().saw_cancel += 1;
                }
                // A late answer: it must not be sent.
                Ok(answer())
            }
        };
        self.seen.lock().returned += 1;
        outcome
    }

    fn elicitation_url(
        &self,
        _: &ServerRequest<'_>,
        elicitation: &UrlElicitation,
    ) -> Result<ElicitAction, HandlerError> {
        self.seen.lock().urls.push(elicitation.clone());
        Ok(ElicitAction::Accept)
    }

    fn on_elicitation_complete(&self, server: &str, elicitation_id: &str) {
        self.seen
            .lock()
            .completed
            .push((server.to_owned(), elicitation_id.to_owned()));
    }

    fn on_list_changed(&self, _: &str, kind: ListKind) {
        self.seen.lock().lists.push(kind);
    }

    fn on_resource_updated(&self, _: &str, uri: &str) {
        self.seen.lock().updated.push(uri.to_owned());
    }

    fn on_log(&self, server: &str, message: &LogMessage) {
        self.seen
            .lock()
            .logs
            .push((server.to_owned(), message.clone()));
    }

    fn on_task_status(&self, _: &str, task: &Task) {
        self.seen.lock().tasks.push(task.clone());
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Multi round-trip requests (input_required)
// ---------------------------------------------------------------------------------------------

#[test]
fn mrtr_elicitation_is_answered_and_retried_with_and_without_state() {
    let _clean = Clean::new();
    let record = temp_path("mrtr-elicit");
    let client = Client::new(FORM);
    let s = start(
        per_request(&["--record", record.to_str().unwrap()]).handler(client.clone()),
        Generation::PerRequest,
    );
    // The fake answers -32602 to a retry that reuses the id, drops or alters the byte-exact
    // `requestState` (base64 with `+`, `/`, `=` and a non-BMP suffix), or lacks a key of
    // `inputResponses`; so success means every one of those rules was kept.
    assert_eq!(text(&s, "mrtr_elicit", json!({})), "hello Ada");
    // Without a requestState the retry must not invent one.
    assert_eq!(
        text(&s, "mrtr_elicit", json!({"with_state": false})),
        "hello Ada"
    );
    s.close();
    let seen = client.seen.lock();
    assert_eq!(seen.elicitations.len(), 2);
    assert_eq!(seen.elicitations[0]["mode"], "form");
    assert_eq!(seen.elicitations[0]["message"], "What is your name?");
    assert_eq!(
        seen.elicitations[0]["requestedSchema"]["required"],
        json!(["name"])
    );
    // Each call: the first request and exactly one retry.
    assert_eq!(recorded(&record, "mrtr_elicit"), 4);
    let _ = std::fs::remove_file(&record);
}

#[test]
fn mrtr_sampling_roots_and_several_inputs_at_once() {
    let _clean = Clean::new();
    let client = Client::new(ALL);
    let s = start(
        per_request(&[]).handler(client.clone()),
        Generation::PerRequest,
    );
    assert_eq!(text(&s, "mrtr_sampling", json!({})), "sampled");
    assert_eq!(
        json_text(&s, "mrtr_roots", json!({})),
        json!({"roots": [{"uri": "file:///work", "name": "work"}]})
    );
    assert_eq!(
        json_text(&s, "mrtr_multi", json!({})),
        json!({
            "elicitation": "hello Ada",
            "sampling": "sampled",
            "roots": [{"uri": "file:///work", "name": "work"}]
        })
    );
    s.close();
    let seen = client.seen.lock();
    assert_eq!(
        (seen.samplings, seen.roots, seen.elicitations.len()),
        (2, 2, 1)
    );
}

#[test]
fn mrtr_several_rounds_and_state_only_rounds() {
    let _clean = Clean::new();
    let client = Client::new(FORM);
    let s = start(
        per_request(&[]).handler(client.clone()),
        Generation::PerRequest,
    );
    assert_eq!(text(&s, "mrtr_rounds", json!({"rounds": 3})), "rounds 3");
    let asked: Vec<Value> = client
        .seen
        .lock()
        .elicitations
        .iter()
        .map(|e| e["message"].clone())
        .collect();
    assert_eq!(
        asked,
        vec![
            json!("Round 1: anything to add?"),
            json!("Round 2: anything to add?"),
            json!("Round 3: anything to add?")
        ]
    );
    assert_eq!(text(&s, "mrtr_rounds", json!({"rounds": 0})), "rounds 0");
    // Only a requestState (load shedding): sent back as is, with no handler call.
    assert_eq!(
        text(&s, "mrtr_state_only", json!({"rounds": 3})),
        "state only 3"
    );
    assert_eq!(client.seen.lock().elicitations.len(), 3);
    s.close();
}

#[test]
fn mrtr_forever_stops_at_the_round_cap() {
    let _clean = Clean::new();
    let record = temp_path("mrtr-forever");
    let client = Client::new(FORM);
    let flags = ["--record", record.to_str().unwrap()];
    let s = start(
        per_request(&flags)
            .handler(client.clone())
            .max_input_rounds(3),
        Generation::PerRequest,
    );
    let err = s.call_tool("mrtr_forever", json!({})).unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("3 rounds")),
        "{err}"
    );
    // Three rounds answered: the first request and three retries, no more.
    assert_eq!(recorded(&record, "mrtr_forever"), 4);
    assert_eq!(client.seen.lock().elicitations.len(), 3);
    // The session goes on.
    assert_eq!(text(&s, "echo", json!({"text": "after"})), "after");
    s.close();
    // The default cap is 10.
    let _ = std::fs::remove_file(&record);
    let s = start(
        per_request(&flags).handler(client.clone()),
        Generation::PerRequest,
    );
    let err = s.call_tool("mrtr_forever", json!({})).unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("10 rounds")),
        "{err}"
    );
    assert_eq!(recorded(&record, "mrtr_forever"), 11);
    s.close();
    let _ = std::fs::remove_file(&record);
}

#[test]
fn mrtr_in_prompts_and_resources() {
    let _clean = Clean::new();
    let client = Client::new(FORM);
    let s = start(
        per_request(&[]).handler(client.clone()),
        Generation::PerRequest,
    );
    let prompt = s.get_prompt("mrtr_prompt", json!({})).unwrap();
    assert_eq!(prompt.messages.len(), 1);
    assert_eq!(prompt.messages[0].content.as_text(), Some("hello Ada"));
    let resource = s.read_resource("fake://mrtr").unwrap();
    assert_eq!(resource.text(), "hello Ada", "{resource:?}");
    assert_eq!(resource.contents[0].uri, "fake://mrtr");
    assert_eq!(client.seen.lock().elicitations.len(), 2);
    s.close();
}

#[test]
fn a_refusing_handler_is_input_refused_and_nothing_is_retried() {
    let _clean = Clean::new();
    let record = temp_path("mrtr-refuse");
    let client = Client::with(FORM, Mode::Refuse);
    let s = start(
        per_request(&["--record", record.to_str().unwrap()]).handler(client.clone()),
        Generation::PerRequest,
    );
    let err = s.call_tool("mrtr_elicit", json!({})).unwrap_err();
    match &err {
        Error::InputRefused { method, reason } => {
            assert_eq!(method, "elicitation/create");
            assert!(reason.contains("the user would not say"), "{reason}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        recorded(&record, "mrtr_elicit"),
        1,
        "no retry after a refusal"
    );
    s.close();
    let _ = std::fs::remove_file(&record);

    // A handler that declares form elicitation but does not implement it refuses too.
    struct DeclaresOnly;
    impl ClientHandler for DeclaresOnly {
        fn supports(&self) -> HandlerSupport {
            FORM
        }
    }
    let s = start(
        per_request(&[]).handler(DeclaresOnly),
        Generation::PerRequest,
    );
    let err = s.call_tool("mrtr_elicit", json!({})).unwrap_err();
    assert!(
        matches!(&err, Error::InputRefused { method, .. } if method == "elicitation/create"),
        "{err}"
    );
    s.close();
}

#[test]
fn without_a_handler_the_server_is_told_nothing_can_be_given() {
    let _clean = Clean::new();
    // NoHandler declares no capability, so the server refuses at once with -32021
    // (missing client capability) naming what it needs: a typed error, not an empty Ok.
    let s = start(per_request(&[]).handler(NoHandler), Generation::PerRequest);
    for (tool, needs) in [
        ("mrtr_elicit", "elicitation"),
        ("mrtr_sampling", "sampling"),
        ("mrtr_roots", "roots"),
    ] {
        let err = s.call_tool(tool, json!({})).unwrap_err();
        match &err {
            Error::Server { code, data, .. } => {
                assert_eq!(*code, -32021, "{tool}: {err}");
                let data = data.as_ref().unwrap();
                assert!(
                    data["requiredCapabilities"].get(needs).is_some(),
                    "{tool}: {data}"
                );
            }
            other => panic!("{tool}: {other}"),
        }
    }
    let err = s.get_prompt("mrtr_prompt", json!({})).unwrap_err();
    assert!(matches!(err, Error::Server { code: -32021, .. }), "{err}");
    let err = s.read_resource("fake://mrtr").unwrap_err();
    assert!(matches!(err, Error::Server { code: -32021, .. }), "{err}");
    s.close();
}

#[test]
fn mrtr_rounds_count_as_one_call_of_the_session() {
    let _clean = Clean::new();
    let client = Client::new(FORM);
    let s = start(per_request(&[]).handler(client), Generation::PerRequest);
    // The tool list the session fetches before a tool's first call is not a call.
    let before = s.calls();
    assert_eq!(text(&s, "mrtr_rounds", json!({"rounds": 3})), "rounds 3");
    assert_eq!(s.calls() - before, 1, "four requests, one call");
    s.close();
}

#[test]
fn mrtr_rounds_count_as_one_call_of_the_pool() {
    let _clean = Clean::new();
    let client = Client::new(FORM);
    let pool = Pool::builder()
        .server(per_request(&[]).handler(client.clone()))
        .build()
        .unwrap();
    let r = pool
        .call_tool("fake", "mrtr_rounds", json!({"rounds": 3}))
        .unwrap();
    assert_eq!(r.text(), "rounds 3");
    let stats = pool.stats();
    let fake = stats.server("fake").unwrap();
    assert_eq!(fake.calls, 1, "{fake:?}");
    assert_eq!(fake.retries, 0, "{fake:?}");
    assert!(fake.errors.is_empty(), "{fake:?}");
    assert_eq!(fake.spawns, 1, "the rounds stay on one session: {fake:?}");
    assert_eq!(client.seen.lock().elicitations.len(), 3);
    pool.close();
}

#[test]
fn progress_is_reported_across_rounds() {
    let _clean = Clean::new();
    let client = Client::new(FORM);
    let s = start(per_request(&[]).handler(client), Generation::PerRequest);
    let mut reports = Vec::new();
    let r = s
        .call_tool_with(
            "mrtr_rounds",
            json!({"rounds": 3}),
            CallOptions::new().on_progress(|p| reports.push((p.progress, p.total))),
        )
        .unwrap();
    assert_eq!(r.text(), "rounds 3");
    // Each retry asks for progress under its own id, so every round's report arrives.
    assert_eq!(
        reports,
        vec![(1.0, Some(3.0)), (2.0, Some(3.0)), (3.0, Some(3.0))]
    );
    s.close();
}

#[test]
fn mrtr_rounds_share_the_call_deadline() {
    let _clean = Clean::new();
    // Each round's handler takes 400 ms: three rounds fit no single 1 s deadline, though
    // each round alone would.
    let client = Client::with(FORM, Mode::Slow(Duration::from_millis(400)));
    let s = start(
        per_request(&[]).handler(client.clone()),
        Generation::PerRequest,
    );
    let timeout = Duration::from_millis(1000);
    let started = Instant::now();
    let err = s
        .call_tool_with(
            "mrtr_rounds",
            json!({"rounds": 3}),
            CallOptions::new().timeout(timeout),
        )
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(
        took >= timeout - Duration::from_millis(50) && took < timeout + Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!(text(&s, "echo", json!({"text": "after"})), "after");
    s.close();
}

#[test]
fn a_handler_past_the_deadline_times_out_and_is_told() {
    let _clean = Clean::new();
    let client = Client::with(FORM, Mode::Block);
    let s = start(
        per_request(&[]).handler(client.clone()),
        Generation::PerRequest,
    );
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = s
        .call_tool_with(
            "mrtr_elicit",
            json!({}),
            CallOptions::new().timeout(timeout),
        )
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(took < timeout + Duration::from_millis(1500), "{took:?}");
    // The handler still running sees its request cancelled.
    assert!(
        wait_for(Duration::from_secs(3), || (client.seen.lock().saw_cancel
            == 1)
            .then_some(()))
        .is_some(),
        "the handler never saw is_cancelled()"
    );
    s.close();
}

#[test]
fn a_cancel_handle_ends_an_mrtr_call_and_its_handler_is_told() {
    let _clean = Clean::new();
    let client = Client::with(FORM, Mode::Block);
    let s = start(
        per_request(&[]).handler(client.clone()),
        Generation::PerRequest,
    );
    let cancel = CancelHandle::new();
    let trigger = cancel.clone();
    let seen = client.clone();
    let t = std::thread::spawn(move || {
        // Cancel once the handler is running.
        wait_for(Duration::from_secs(5), || {
            (!seen.seen.lock().elicitations.is_empty()).then_some(())
        });
        trigger.cancel();
    });
    let started = Instant::now();
    let err = s
        .call_tool_with(
            "mrtr_elicit",
            json!({}),
            CallOptions::new().cancel_with(&cancel),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4));
    t.join().unwrap();
    assert!(
        wait_for(Duration::from_secs(3), || (client.seen.lock().saw_cancel
            == 1)
            .then_some(()))
        .is_some(),
        "the handler never saw is_cancelled()"
    );
    assert_eq!(text(&s, "echo", json!({"text": "after"})), "after");
    s.close();
}

// ---------------------------------------------------------------------------------------------
// 2. Results that never lie
// ---------------------------------------------------------------------------------------------

fn both_generations() -> [(ServerConfig, Generation); 2] {
    [
        (per_request(&[]), Generation::PerRequest),
        (handshake(&[]), Generation::Handshake),
    ]
}

#[test]
fn an_unknown_result_type_is_an_error_naming_it() {
    let _clean = Clean::new();
    for (config, generation) in both_generations() {
        let s = start(config, generation);
        let err = s
            .call_tool("result_type", json!({"value": "bogus"}))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Protocol(m) if m.contains("bogus")),
            "{generation:?}: {err}"
        );
        assert_eq!(text(&s, "echo", json!({"text": "ok"})), "ok");
        s.close();
    }
}

#[test]
fn a_result_without_content_is_a_protocol_error() {
    let _clean = Clean::new();
    for (config, generation) in both_generations() {
        let s = start(config, generation);
        let err = s.call_tool("no_content", json!({})).unwrap_err();
        assert!(
            matches!(&err, Error::Protocol(m) if m.contains("content")),
            "{generation:?}: {err}"
        );
        s.close();
    }
}

#[test]
fn an_unknown_content_block_is_kept_raw() {
    let _clean = Clean::new();
    for (config, generation) in both_generations() {
        let s = start(config, generation);
        let r = s.call_tool("opaque_content", json!({})).unwrap();
        assert!(!r.is_error);
        assert_eq!(r.content.len(), 2, "{generation:?}: {r:?}");
        assert_eq!(r.text(), "visible");
        assert_eq!(r.content[1].kind(), "hologram");
        assert_eq!(
            r.content[1],
            Content::Other(json!({
                "type": "hologram", "data": "AAECAw==", "mimeType": "application/x-hologram"
            }))
        );
        s.close();
    }
}

#[test]
fn structured_content_is_checked_against_the_output_schema() {
    let _clean = Clean::new();
    for (config, generation) in both_generations() {
        let s = start(config.clone(), generation);
        let err = s.call_tool("bad_structured", json!({})).unwrap_err();
        match &err {
            Error::InvalidOutput {
                tool,
                message,
                result,
            } => {
                assert_eq!(tool, "bad_structured");
                assert!(!message.is_empty());
                assert_eq!(result.structured_content, Some(json!({"count": "three"})));
            }
            other => panic!("{generation:?}: {other}"),
        }
        let r = s.call_tool("good_structured", json!({})).unwrap();
        assert_eq!(r.structured_content, Some(json!({"count": 3})));
        s.close();
        // Validation off: the result passes as sent.
        let s = start(config.validate_output(false), generation);
        let r = s.call_tool("bad_structured", json!({})).unwrap();
        assert_eq!(r.structured_content, Some(json!({"count": "three"})));
        s.close();
    }
}

#[test]
fn a_malformed_tool_entry_costs_only_its_bad_field() {
    let _clean = Clean::new();
    for (config, generation) in [
        (per_request(&["--bad-tool-entry"]), Generation::PerRequest),
        (handshake(&["--bad-tool-entry"]), Generation::Handshake),
    ] {
        let s = start(config, generation);
        let tools = s.list_tools().unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        for good in ["echo", "add", "mrtr_elicit", "task_job"] {
            assert!(names.contains(&good), "{generation:?}: {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.is_empty()),
            "the nameless entry is dropped"
        );
        let hint = tools
            .iter()
            .find(|t| t.name == "bad_readonly_hint")
            .expect("the tool with a bad readOnlyHint is kept");
        let read_only = hint.annotations.as_ref().and_then(|a| a.read_only_hint);
        assert_eq!(read_only, None, "the bad field is dropped");
        assert!(!hint.safe_to_repeat());
        let described = tools.iter().find(|t| t.name == "bad_description");
        assert_eq!(described.map(|t| t.description.clone()), Some(None));
        assert_eq!(
            text(&s, "bad_readonly_hint", json!({"text": "still callable"})),
            "still callable"
        );
        s.close();
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Capabilities per generation
// ---------------------------------------------------------------------------------------------

#[test]
fn declared_capabilities_match_the_handler_in_each_generation() {
    let _clean = Clean::new();
    let plain = HandlerSupport::default();
    let cases: [(HandlerSupport, Value, Value); 6] = [
        (
            ALL,
            json!({"roots": {}, "sampling": {"tools": {}, "context": {}},
                   "elicitation": {"form": {}, "url": {}}}),
            json!({"roots": {"listChanged": true}, "sampling": {"tools": {}, "context": {}},
                   "elicitation": {"form": {}, "url": {}}}),
        ),
        (
            FORM,
            json!({"elicitation": {"form": {}}}),
            json!({"elicitation": {"form": {}}}),
        ),
        (
            HandlerSupport {
                elicitation_url: true,
                ..plain
            },
            json!({"elicitation": {"url": {}}}),
            json!({"elicitation": {"url": {}}}),
        ),
        (
            HandlerSupport {
                sampling: true,
                ..plain
            },
            json!({"sampling": {}}),
            json!({"sampling": {}}),
        ),
        (
            HandlerSupport {
                roots: true,
                ..plain
            },
            json!({"roots": {}}),
            json!({"roots": {}}),
        ),
        (plain, json!({}), json!({})),
    ];
    let tasks = json!({"io.modelcontextprotocol/tasks": {}});
    for (support, per_request_caps, handshake_caps) in cases {
        let client = Client::new(support);
        let s = start(
            per_request(&[]).handler(client.clone()),
            Generation::PerRequest,
        );
        let caps = json_text(&s, "client_caps", json!({}));
        assert_eq!(caps["generation"], "stateless");
        let mut want = per_request_caps.clone();
        want["extensions"] = tasks.clone();
        assert_eq!(caps["capabilities"], want, "{support:?}");
        s.close();
        // Tasks off: no extension either.
        let s = start(
            per_request(&[]).handler(client.clone()).tasks(false),
            Generation::PerRequest,
        );
        let caps = json_text(&s, "client_caps", json!({}));
        assert_eq!(caps["capabilities"], per_request_caps, "{support:?}");
        s.close();
        let s = start(handshake(&[]).handler(client), Generation::Handshake);
        let caps = json_text(&s, "client_caps", json!({}));
        assert_eq!(caps["generation"], "handshake");
        assert_eq!(caps["capabilities"], handshake_caps, "{support:?}");
        s.close();
    }
    // NoHandler declares nothing at all.
    let s = start(
        per_request(&[]).handler(NoHandler).tasks(false),
        Generation::PerRequest,
    );
    assert_eq!(
        json_text(&s, "client_caps", json!({}))["capabilities"],
        json!({})
    );
    s.close();
    let s = start(handshake(&[]).handler(NoHandler), Generation::Handshake);
    assert_eq!(
        json_text(&s, "client_caps", json!({}))["capabilities"],
        json!({})
    );
    s.close();
}

// ---------------------------------------------------------------------------------------------
// 4. URL elicitation
// ---------------------------------------------------------------------------------------------

#[test]
fn a_url_elicitation_reaches_its_own_hook() {
    let _clean = Clean::new();
    let client = Client::new(ALL);
    let s = start(
        handshake(&[]).handler(client.clone()),
        Generation::Handshake,
    );
    let reply = json_text(&s, "ask_url", json!({"id": "e-1"}));
    assert_eq!(reply, json!({"action": "accept"}));
    let seen = client.seen.lock();
    assert_eq!(
        seen.urls,
        vec![UrlElicitation {
            url: "https://example.com/mcp-fake-server/connect".into(),
            message: "Open the page to connect your account.".into(),
            elicitation_id: Some("e-1".into()),
        }]
    );
    assert!(seen.elicitations.is_empty(), "not the form hook");
    drop(seen);
    s.close();
}

#[test]
fn an_undeclared_elicitation_mode_is_refused_before_the_handler() {
    let _clean = Clean::new();
    let client = Client::new(FORM);
    let s = start(
        handshake(&[]).handler(client.clone()),
        Generation::Handshake,
    );
    let reply = json_text(&s, "ask_url", json!({}));
    assert_eq!(reply["code"], -32602, "{reply}");
    s.close();
    let url_only = Client::new(HandlerSupport {
        elicitation_url: true,
        ..HandlerSupport::default()
    });
    let s = start(
        handshake(&[]).handler(url_only.clone()),
        Generation::Handshake,
    );
    let reply = json_text(&s, "ask_elicitation", json!({}));
    assert_eq!(reply["code"], -32602, "{reply}");
    s.close();
    for c in [client, url_only] {
        let seen = c.seen.lock();
        assert!(seen.urls.is_empty() && seen.elicitations.is_empty());
    }
}

#[test]
fn elicitation_complete_and_url_elicitation_required() {
    let _clean = Clean::new();
    let client = Client::new(ALL);
    let s = start(
        handshake(&[]).handler(client.clone()),
        Generation::Handshake,
    );
    assert_eq!(text(&s, "elicitation_complete", json!({"id": "e-2"})), "ok");
    // The notification came before the answer, so the hook has run by now.
    assert_eq!(
        client.seen.lock().completed,
        vec![("fake".to_owned(), "e-2".to_owned())]
    );
    let err = s
        .call_tool("url_required", json!({"id": "e-3"}))
        .unwrap_err();
    match &err {
        Error::UrlElicitationRequired {
            message,
            elicitations,
        } => {
            assert_eq!(message, "This request requires more information.");
            assert_eq!(elicitations.len(), 1);
            assert_eq!(elicitations[0]["mode"], "url");
            assert_eq!(elicitations[0]["elicitationId"], "e-3");
            assert_eq!(
                elicitations[0]["url"],
                "https://example.com/mcp-fake-server/connect"
            );
        }
        other => panic!("{other}"),
    }
    s.close();
}

#[test]
fn a_url_elicitation_in_a_multi_round_trip() {
    let _clean = Clean::new();
    let client = Client::new(ALL);
    let s = start(
        per_request(&[]).handler(client.clone()),
        Generation::PerRequest,
    );
    assert_eq!(text(&s, "mrtr_url", json!({})), "accept");
    assert_eq!(
        client.seen.lock().urls,
        vec![UrlElicitation {
            url: "https://example.com/mcp-fake-server/consent".into(),
            message: "Open the page to continue.".into(),
            elicitation_id: None,
        }]
    );
    s.close();
    // A handler without URL mode does not declare it: the server says so.
    let s = start(
        per_request(&[]).handler(Client::new(FORM)),
        Generation::PerRequest,
    );
    let err = s.call_tool("mrtr_url", json!({})).unwrap_err();
    assert!(matches!(err, Error::Server { code: -32021, .. }), "{err}");
    s.close();
}

// ---------------------------------------------------------------------------------------------
// 5. The server cancels its own request
// ---------------------------------------------------------------------------------------------

#[test]
fn a_server_cancel_reaches_the_handler_and_its_late_answer_is_dropped() {
    let _clean = Clean::new();
    let client = Client::with(FORM, Mode::Block);
    let s = start(
        handshake(&[]).handler(client.clone()),
        Generation::Handshake,
    );
    assert_eq!(text(&s, "ask_then_cancel", json!({})), "cancelled-ask");
    assert!(
        wait_for(Duration::from_secs(4), || {
            (client.seen.lock().returned == 1).then_some(())
        })
        .is_some(),
        "the handler never returned"
    );
    assert_eq!(
        client.seen.lock().saw_cancel,
        1,
        "is_cancelled() stayed false"
    );
    // Give a wrongly written answer time to reach the server; the next request makes the
    // server report on it.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(text(&s, "echo", json!({"text": "next"})), "next");
    s.close();
    let tail = s.stderr_tail();
    assert!(tail.contains("no late answer"), "{tail}");
    assert!(!tail.contains("late answer to"), "{tail}");
    assert!(!tail.contains("early answer to"), "{tail}");
}

// ---------------------------------------------------------------------------------------------
// 6. No responses on stdio in the per-request generation
// ---------------------------------------------------------------------------------------------

#[test]
fn per_request_server_requests_are_never_answered() {
    let _clean = Clean::new();
    let client = Client::new(ALL);
    let s = start(
        per_request(&[]).handler(client.clone()),
        Generation::PerRequest,
    );
    assert_eq!(s.ignored_server_requests(), 0);
    // The tool waits for the answer to its `roots/list`: none may come.
    let err = s
        .call_tool_with(
            "ask_roots",
            json!({}),
            CallOptions::new().timeout(Duration::from_millis(700)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(s.ignored_server_requests(), 1);
    assert_eq!(client.seen.lock().roots, 0, "the handler is not asked");
    assert_eq!(text(&s, "echo", json!({"text": "after"})), "after");
    s.close();
    let tail = s.stderr_tail();
    assert!(!tail.contains("response to unknown request"), "{tail}");
}

// ---------------------------------------------------------------------------------------------
// 7. subscriptions/listen
// ---------------------------------------------------------------------------------------------

fn streams(s: &Session) -> Vec<u64> {
    serde_json::from_value(json_text(s, "listen_streams", json!({}))).unwrap()
}

#[test]
fn listen_is_acknowledged_with_the_agreed_filter() {
    let _clean = Clean::new();
    let s = start(per_request(&[]), Generation::PerRequest);
    let filter = ListenFilter {
        tools_list_changed: true,
        prompts_list_changed: true,
        resource_subscriptions: vec!["fake://r/1".into()],
        ..ListenFilter::default()
    };
    let sub = s.listen(filter.clone()).unwrap();
    assert_eq!(sub.agreed(), &filter);
    assert!(sub.is_active());
    assert_eq!(streams(&s), vec![sub.id()]);
    drop(sub);
    s.close();
    // Not in the handshake generation.
    let s = start(handshake(&[]), Generation::Handshake);
    let err = s.listen(ListenFilter::default()).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    s.close();
}

#[test]
fn list_changes_arrive_on_the_listen_stream() {
    let _clean = Clean::new();
    let client = Client::new(HandlerSupport::default());
    // Strict: changes go only on listen streams.
    let s = start(
        per_request(&["--strict-per-request"]).handler(client.clone()),
        Generation::PerRequest,
    );
    assert_eq!(text(&s, "notify_changed", json!({"kind": "tools"})), "ok");
    assert!(
        client.seen.lock().lists.is_empty(),
        "nothing without a stream"
    );
    let sub = s
        .listen(ListenFilter {
            tools_list_changed: true,
            ..ListenFilter::default()
        })
        .unwrap();
    assert!(!s.take_tools_changed());
    assert_eq!(text(&s, "notify_changed", json!({"kind": "tools"})), "ok");
    // Not opted in: no prompt changes.
    assert_eq!(text(&s, "notify_changed", json!({"kind": "prompts"})), "ok");
    assert_eq!(client.seen.lock().lists, vec![ListKind::Tools]);
    assert!(s.take_tools_changed());
    sub.cancel();
    s.close();
}

#[test]
fn cancelling_a_subscription_tells_the_server() {
    let _clean = Clean::new();
    let s = start(per_request(&[]), Generation::PerRequest);
    let sub = s
        .listen(ListenFilter {
            tools_list_changed: true,
            ..ListenFilter::default()
        })
        .unwrap();
    let id = sub.id();
    assert_eq!(streams(&s), vec![id]);
    sub.cancel();
    assert!(
        wait_for(Duration::from_secs(3), || streams(&s)
            .is_empty()
            .then_some(()))
        .is_some(),
        "the stream stayed open"
    );
    s.close();
    let tail = s.stderr_tail();
    assert!(tail.contains(&format!("cancelled {id}")), "{tail}");
}

#[test]
fn a_response_from_the_server_ends_a_subscription() {
    let _clean = Clean::new();
    server_ends_a_subscription("response");
}

#[test]
fn a_cancel_from_the_server_ends_a_subscription() {
    let _clean = Clean::new();
    server_ends_a_subscription("cancelled");
}

#[test]
fn a_response_then_a_cancel_from_the_server_end_a_subscription() {
    let _clean = Clean::new();
    server_ends_a_subscription("both");
}

#[test]
fn an_ended_subscription_stays_ended() {
    let _clean = Clean::new();
    let s = start(per_request(&[]), Generation::PerRequest);
    let sub = s
        .listen(ListenFilter {
            tools_list_changed: true,
            ..ListenFilter::default()
        })
        .unwrap();
    assert_eq!(
        text(
            &s,
            "end_listens",
            json!({"id": sub.id(), "mode": "response"})
        ),
        "ended 1"
    );
    assert!(
        wait_for(Duration::from_secs(3), || (!sub.is_active()).then_some(())).is_some(),
        "the subscription still says it is active"
    );
    assert!(!sub.is_active(), "asked again, it must still be ended");
    drop(sub);
    s.close();
}

fn server_ends_a_subscription(mode: &str) {
    let s = start(per_request(&[]), Generation::PerRequest);
    let sub = s
        .listen(ListenFilter {
            tools_list_changed: true,
            ..ListenFilter::default()
        })
        .unwrap();
    assert!(sub.is_active());
    assert_eq!(
        text(&s, "end_listens", json!({"id": sub.id(), "mode": mode})),
        "ended 1"
    );
    assert!(
        wait_for(Duration::from_secs(3), || (!sub.is_active()).then_some(())).is_some(),
        "{mode}: the subscription still says it is active"
    );
    assert!(streams(&s).is_empty());
    drop(sub);
    s.close();
}

#[test]
fn subscribe_maps_to_listen_in_the_per_request_generation() {
    let _clean = Clean::new();
    let client = Client::new(HandlerSupport::default());
    // Strict: resources/subscribe is gone (-32601); only a listen stream can carry updates.
    let s = start(
        per_request(&["--strict-per-request"]).handler(client.clone()),
        Generation::PerRequest,
    );
    s.subscribe("fake://r/1").unwrap();
    assert_eq!(streams(&s).len(), 1);
    assert_eq!(text(&s, "touch", json!({"uri": "fake://r/1"})), "ok");
    assert_eq!(client.seen.lock().updated, vec!["fake://r/1".to_owned()]);
    s.unsubscribe("fake://r/1").unwrap();
    assert!(
        wait_for(Duration::from_secs(3), || streams(&s)
            .is_empty()
            .then_some(()))
        .is_some(),
        "unsubscribe left the stream open"
    );
    assert_eq!(
        text(&s, "touch", json!({"uri": "fake://r/1"})),
        "not subscribed: fake://r/1"
    );
    let err = s.unsubscribe("fake://r/1").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert_eq!(client.seen.lock().updated.len(), 1);
    s.close();
}

#[test]
fn the_pool_tool_cache_follows_changes_on_the_listen_stream() {
    let _clean = Clean::new();
    let pool = Pool::builder()
        .server(per_request(&["--strict-per-request"]))
        .build()
        .unwrap();
    let hits = |pool: &Pool| pool.stats().servers["fake"].list_cache_hits;
    pool.list_tools("fake").unwrap();
    pool.list_tools("fake").unwrap();
    assert_eq!(hits(&pool), 1);
    let r = pool
        .call_tool("fake", "notify_changed", json!({"kind": "tools"}))
        .unwrap();
    assert_eq!(r.text(), "ok");
    pool.list_tools("fake").unwrap();
    assert_eq!(hits(&pool), 1, "the change invalidated the cache");
    pool.list_tools("fake").unwrap();
    assert_eq!(hits(&pool), 2, "cached again");
    pool.close();
}

#[test]
fn the_pool_tool_cache_honours_ttl() {
    let _clean = Clean::new();
    let hits = |pool: &Pool| pool.stats().servers["fake"].list_cache_hits;
    // How many tools/list requests the server served (`--verbose` logs each request).
    let listings = |session: &Session| {
        let tail = session.stderr_tail();
        tail.lines().filter(|l| l.ends_with(" tools/list")).count()
    };
    // ttlMs 0: stale at once, asked again every time.
    let pool = Pool::builder()
        .server(per_request(&["--ttl-ms", "0", "--verbose"]))
        .build()
        .unwrap();
    for _ in 0..3 {
        pool.list_tools("fake").unwrap();
    }
    assert_eq!(hits(&pool), 0);
    let session = pool.session("fake").unwrap();
    pool.close();
    assert_eq!(listings(&session), 3, "{}", session.stderr_tail());
    drop(session);
    // A long ttl: cached.
    let pool = Pool::builder()
        .server(per_request(&["--ttl-ms", "600000", "--verbose"]))
        .build()
        .unwrap();
    for _ in 0..3 {
        pool.list_tools("fake").unwrap();
    }
    assert_eq!(hits(&pool), 2);
    let session = pool.session("fake").unwrap();
    pool.close();
    assert_eq!(listings(&session), 1, "{}", session.stderr_tail());
    drop(session);
    // A short one: cached, then stale.
    let pool = Pool::builder()
        .server(per_request(&["--ttl-ms", "1500"]))
        .build()
        .unwrap();
    pool.list_tools("fake").unwrap();
    pool.list_tools("fake").unwrap();
    assert_eq!(hits(&pool), 1);
    std::thread::sleep(Duration::from_millis(1700));
    pool.list_tools("fake").unwrap();
    assert_eq!(hits(&pool), 1, "expired");
    pool.close();
}

// ---------------------------------------------------------------------------------------------
// 8. Logging
// ---------------------------------------------------------------------------------------------

fn log(s: &Session, level: &str, options: CallOptions<'_>) -> String {
    let r = s
        .call_tool_with(
            "log",
            json!({"level": level, "message": format!("at {level}")}),
            options,
        )
        .unwrap();
    r.text()
}

#[test]
fn the_log_level_goes_in_the_per_request_envelope() {
    let _clean = Clean::new();
    let client = Client::new(HandlerSupport::default());
    // Strict: the server sends log messages only for requests carrying a logLevel.
    let s = start(
        per_request(&["--strict-per-request"])
            .handler(client.clone())
            .log_level(LogLevel::Warning),
        Generation::PerRequest,
    );
    assert_eq!(log(&s, "error", CallOptions::new()), "ok");
    assert_eq!(log(&s, "info", CallOptions::new()), "suppressed");
    assert_eq!(
        client.seen.lock().logs,
        vec![(
            "fake".to_owned(),
            LogMessage {
                level: LogLevel::Error,
                logger: Some("fake".into()),
                data: json!("at error"),
            }
        )]
    );
    // A per-call override, both ways.
    assert_eq!(
        log(&s, "info", CallOptions::new().log_level(LogLevel::Debug)),
        "ok"
    );
    assert_eq!(
        log(
            &s,
            "error",
            CallOptions::new().log_level(LogLevel::Critical)
        ),
        "suppressed"
    );
    // set_logging_level changes the session's level (not sent as logging/setLevel).
    s.set_logging_level(LogLevel::Critical).unwrap();
    assert_eq!(log(&s, "error", CallOptions::new()), "suppressed");
    assert_eq!(log(&s, "alert", CallOptions::new()), "ok");
    assert_eq!(client.seen.lock().logs.len(), 3);
    s.close();
    // Without a level nothing is asked for.
    let s = start(
        per_request(&["--strict-per-request"]).handler(client.clone()),
        Generation::PerRequest,
    );
    assert_eq!(log(&s, "emergency", CallOptions::new()), "suppressed");
    s.close();
}

#[test]
fn handshake_logging_uses_set_level() {
    let _clean = Clean::new();
    let client = Client::new(HandlerSupport::default());
    let s = start(
        handshake(&[]).handler(client.clone()),
        Generation::Handshake,
    );
    s.set_logging_level(LogLevel::Error).unwrap();
    assert_eq!(log(&s, "warning", CallOptions::new()), "suppressed");
    assert_eq!(log(&s, "error", CallOptions::new()), "ok");
    assert_eq!(client.seen.lock().logs.len(), 1);
    assert_eq!(client.seen.lock().logs[0].0, "fake");
    assert_eq!(client.seen.lock().logs[0].1.level, LogLevel::Error);
    s.close();
}

#[test]
fn handshake_sessions_start_at_the_configured_log_level() {
    let _clean = Clean::new();
    let s = start(
        handshake(&[]).log_level(LogLevel::Error),
        Generation::Handshake,
    );
    assert_eq!(log(&s, "warning", CallOptions::new()), "suppressed");
    assert_eq!(log(&s, "error", CallOptions::new()), "ok");
    s.close();
}

#[test]
fn removed_methods_are_refused_locally() {
    let _clean = Clean::new();
    // Strict: the server would answer -32601 had they been sent; Unsupported means they
    // were not.
    let s = start(
        per_request(&["--strict-per-request"]),
        Generation::PerRequest,
    );
    for (method, params) in [
        ("logging/setLevel", json!({"level": "info"})),
        ("resources/subscribe", json!({"uri": "fake://r/1"})),
        ("resources/unsubscribe", json!({"uri": "fake://r/1"})),
    ] {
        let err = s.request(method, Some(params)).unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { method: m, .. } if m == method),
            "{method}: {err}"
        );
    }
    // ping has no place in this generation either: server/discover stands in.
    s.ping().unwrap();
    s.close();
    // The handshake generation has them.
    let s = start(handshake(&[]), Generation::Handshake);
    s.request("logging/setLevel", Some(json!({"level": "info"})))
        .unwrap();
    s.close();
}

// ---------------------------------------------------------------------------------------------
// 9. _meta through CallOptions
// ---------------------------------------------------------------------------------------------

#[test]
fn call_options_meta_reaches_the_server() {
    let _clean = Clean::new();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (config, generation) in both_generations() {
        let s = start(config, generation);
        let mut meta = serde_json::Map::new();
        meta.insert("traceparent".into(), json!(traceparent));
        meta.insert(
            "io.modelcontextprotocol/protocolVersion".into(),
            json!("1999-01-01"),
        );
        let r = s
            .call_tool_with("meta_echo", json!({}), CallOptions::new().meta(meta))
            .unwrap();
        let seen = r.structured_content.expect("the server saw a _meta");
        assert_eq!(seen["traceparent"], traceparent, "{generation:?}: {seen}");
        if generation == Generation::PerRequest {
            // The envelope wins over a caller's key.
            assert_eq!(
                seen["io.modelcontextprotocol/protocolVersion"],
                "2026-07-28"
            );
            assert!(seen["io.modelcontextprotocol/clientCapabilities"].is_object());
        }
        s.close();
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Tasks
// ---------------------------------------------------------------------------------------------

#[test]
fn a_task_required_tool_runs_transparently_2025() {
    let _clean = Clean::new();
    let s = start(handshake(&[]), Generation::Handshake);
    assert!(s
        .details()
        .capabilities
        .pointer("/tasks/requests/tools/call")
        .is_some());
    let r = s.call_tool("task_required", json!({"ms": 200})).unwrap();
    assert_eq!(r.text(), "slept 200");
    // It went through a task: tasks/result marks the result with its task.
    let related = r
        .meta
        .as_ref()
        .and_then(|m| m.get("io.modelcontextprotocol/related-task"))
        .and_then(|t| t.get("taskId"));
    assert!(related.is_some_and(Value::is_string), "{:?}", r.meta);
    let err = s
        .call_tool("task_required", json!({"ms": 10, "fail": true}))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Server { code: -32603, message, .. } if message == "job failed"),
        "{err}"
    );
    s.close();
}

#[test]
fn a_task_required_tool_in_a_batch_runs_as_a_task_2025() {
    // Batched, it is not written with the others as a plain call (the server would refuse
    // it): it runs as a task on its own, the rest pipelined around it.
    let _clean = Clean::new();
    let s = start(handshake(&[]), Generation::Handshake);
    let calls = [
        mcp_pool::ToolCall::new("echo", json!({"text": "a"})),
        mcp_pool::ToolCall::new("task_required", json!({"ms": 50})),
        mcp_pool::ToolCall::new("echo", json!({"text": "b"})),
    ];
    let results = s.batch(&calls, mcp_pool::BatchOptions::new()).unwrap();
    let texts: Vec<String> = results.iter().map(|r| r.as_ref().unwrap().text()).collect();
    assert_eq!(texts, ["a", "slept 50", "b"]);
    let related = results[1]
        .as_ref()
        .unwrap()
        .meta
        .as_ref()
        .and_then(|m| m.get("io.modelcontextprotocol/related-task"));
    assert!(related.is_some(), "{:?}", results[1]);
    s.close();
}

#[test]
fn task_handles_2025() {
    let _clean = Clean::new();
    let client = Client::new(HandlerSupport::default());
    let s = start(
        handshake(&[]).handler(client.clone()),
        Generation::Handshake,
    );
    // A task the caller follows itself.
    let task = s.call_tool_as_task("task_job", json!({"ms": 300})).unwrap();
    assert_eq!(task.created().status, TaskStatus::Working);
    assert!(matches!(
        task.status().unwrap().status,
        TaskStatus::Working | TaskStatus::Completed
    ));
    assert!(s
        .list_tasks()
        .unwrap()
        .iter()
        .any(|t| t.task_id == task.id()));
    let r = task.wait(CallOptions::new()).unwrap();
    assert_eq!(r.text(), "slept 300");
    assert_eq!(task.status().unwrap().status, TaskStatus::Completed);
    // The status notification reached the handle and the handler.
    assert_eq!(task.latest().map(|t| t.status), Some(TaskStatus::Completed));
    assert!(client
        .seen
        .lock()
        .tasks
        .iter()
        .any(|t| t.task_id == task.id() && t.status == TaskStatus::Completed));

    // Waiting has a deadline; the task goes on meanwhile.
    let long = s
        .call_tool_as_task("task_job", json!({"ms": 30000}))
        .unwrap();
    let err = long
        .wait(CallOptions::new().timeout(Duration::from_millis(300)))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(long.status().unwrap().status, TaskStatus::Working);
    // Cancelled through tasks/cancel.
    assert_eq!(long.cancel().unwrap().status, TaskStatus::Cancelled);
    assert_eq!(long.status().unwrap().status, TaskStatus::Cancelled);
    let err = long.wait(CallOptions::new()).unwrap_err();
    assert!(matches!(err, Error::Server { .. }), "{err}");
    assert!(client
        .seen
        .lock()
        .tasks
        .iter()
        .any(|t| t.task_id == long.id() && t.status == TaskStatus::Cancelled));

    // A task that fails gives its error.
    let failing = s
        .call_tool_as_task("task_job", json!({"ms": 50, "fail": true}))
        .unwrap();
    let err = failing.wait(CallOptions::new()).unwrap_err();
    assert!(
        matches!(&err, Error::Server { code: -32603, message, .. } if message == "job failed"),
        "{err}"
    );
    assert_eq!(failing.status().unwrap().status, TaskStatus::Failed);
    assert_eq!(s.list_tasks().unwrap().len(), 3);
    s.close();
}

#[test]
fn a_task_that_needs_input_2025() {
    let _clean = Clean::new();
    let client = Client::new(FORM);
    let s = start(
        handshake(&[]).handler(client.clone()),
        Generation::Handshake,
    );
    assert_eq!(text(&s, "task_input", json!({})), "hello Ada");
    let seen = client.seen.lock();
    assert_eq!(seen.elicitations.len(), 1);
    assert!(
        seen.elicitations[0]
            .pointer("/_meta/io.modelcontextprotocol~1related-task/taskId")
            .is_some(),
        "{}",
        seen.elicitations[0]
    );
    drop(seen);
    s.close();
}

#[test]
fn tasks_of_the_2026_extension_are_followed_to_their_result() {
    let _clean = Clean::new();
    let client = Client::new(FORM);
    let s = start(
        per_request(&[]).handler(client.clone()),
        Generation::PerRequest,
    );
    assert_eq!(text(&s, "task_required", json!({"ms": 200})), "slept 200");
    assert_eq!(text(&s, "task_job", json!({"ms": 100})), "slept 100");
    let err = s
        .call_tool("task_required", json!({"ms": 10, "fail": true}))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Server { code: -32603, message, .. } if message == "job failed"),
        "{err}"
    );
    // Input for the task goes through tasks/update: the only way the task learns the name.
    // (How often the user is asked is `a_task_input_request_is_asked_once`.)
    assert_eq!(text(&s, "task_input", json!({})), "hello Ada");
    assert!(!client.seen.lock().elicitations.is_empty());
    // The caller's own task handles are a 2025-11-25 feature.
    let err = s
        .call_tool_as_task("task_job", json!({"ms": 1}))
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    s.close();
}

#[test]
fn a_task_input_request_is_asked_once() {
    let _clean = Clean::new();
    let client = Client::new(FORM);
    let s = start(
        per_request(&[]).handler(client.clone()),
        Generation::PerRequest,
    );
    // The server acknowledges tasks/update at once but shows the task input_required, with
    // the same (already answered) key, for 600 ms more: legal, as the acknowledgement is
    // eventually consistent. The user must not be asked again.
    assert_eq!(
        text(&s, "task_input", json!({"settle_ms": 600})),
        "hello Ada"
    );
    assert_eq!(
        client.seen.lock().elicitations.len(),
        1,
        "asked more than once"
    );
    s.close();
}

#[test]
fn a_task_is_one_call_and_is_cancelled_when_the_call_gives_up() {
    let _clean = Clean::new();
    for (config, generation) in [
        (per_request(&["--verbose"]), Generation::PerRequest),
        (handshake(&["--verbose"]), Generation::Handshake),
    ] {
        let s = start(config, generation);
        s.list_tools().unwrap();
        let before = s.calls();
        assert_eq!(text(&s, "task_required", json!({"ms": 300})), "slept 300");
        // Polls (tasks/get) and tasks/result are not calls of their own.
        assert_eq!(s.calls() - before, 1, "{generation:?}");
        let timeout = Duration::from_millis(600);
        let started = Instant::now();
        let err = s
            .call_tool_with(
                "task_required",
                json!({"ms": 30000}),
                CallOptions::new().timeout(timeout),
            )
            .unwrap_err();
        assert!(
            matches!(err, Error::Timeout { .. }),
            "{generation:?}: {err}"
        );
        assert!(started.elapsed() < timeout + Duration::from_secs(2));
        assert_eq!(text(&s, "echo", json!({"text": "after"})), "after");
        s.close();
        // The task the call gave up on was cancelled on the server.
        let tail = s.stderr_tail();
        assert!(tail.contains("tasks/cancel"), "{generation:?}: {tail}");
    }
}

#[test]
fn every_task_a_batch_gives_up_on_is_cancelled_2026() {
    // The batch follows one task to its deadline; the other, never followed, goes too.
    let _clean = Clean::new();
    let s = start(per_request(&["--verbose"]), Generation::PerRequest);
    s.list_tools().unwrap();
    let calls = [
        mcp_pool::ToolCall::new("task_required", json!({"ms": 30000})),
        mcp_pool::ToolCall::new("task_required", json!({"ms": 30000})),
    ];
    let timeout = Duration::from_millis(600);
    let started = Instant::now();
    let results = s
        .batch(&calls, mcp_pool::BatchOptions::new().timeout(timeout))
        .unwrap();
    for r in &results {
        assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    }
    assert!(started.elapsed() < timeout + Duration::from_secs(3));
    assert_eq!(text(&s, "echo", json!({"text": "after"})), "after");
    s.close();
    let tail = s.stderr_tail();
    assert_eq!(tail.matches("tasks/cancel").count(), 2, "{tail}");
}

#[test]
fn tasks_off_in_2026_is_a_typed_error_for_task_only_tools() {
    let _clean = Clean::new();
    let s = start(per_request(&[]).tasks(false), Generation::PerRequest);
    let err = s.call_tool("task_required", json!({"ms": 10})).unwrap_err();
    match &err {
        Error::Server { code, data, .. } => {
            assert_eq!(*code, -32021);
            assert!(data
                .as_ref()
                .and_then(|d| d.pointer("/requiredCapabilities/extensions"))
                .is_some());
        }
        other => panic!("{other}"),
    }
    // A tool that can run either way runs as a plain call.
    assert_eq!(text(&s, "task_job", json!({"ms": 10})), "slept 10");
    s.close();
}

// ---------------------------------------------------------------------------------------------
// 11. The -32022 retry
// ---------------------------------------------------------------------------------------------

#[test]
fn a_refused_version_in_the_probe_is_tried_once_more() {
    let _clean = Clean::new();
    let s = start(
        per_request(&["--refuse-first", "1"]),
        Generation::PerRequest,
    );
    assert_eq!(s.details().protocol_version, "2026-07-28");
    assert_eq!(text(&s, "echo", json!({"text": "in"})), "in");
    s.close();
    assert!(s.stderr_tail().contains("refused 1"), "{}", s.stderr_tail());
    // Only once: refused twice, the start fails.
    let err = Session::start(per_request(&["--refuse-first", "2"])).unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err}");
}

#[test]
fn a_refused_version_on_a_call_is_tried_once_more_under_a_new_id() {
    let _clean = Clean::new();
    let s = start(per_request(&[]), Generation::PerRequest);
    // Learn the tools first, so only the calls below are refused.
    s.list_tools().unwrap();
    assert_eq!(text(&s, "refuse_next", json!({})), "ok");
    let before = s.calls();
    // The fake answers -32602 to a retry under the refused id.
    assert_eq!(text(&s, "echo", json!({"text": "again"})), "again");
    assert_eq!(s.calls() - before, 1, "one call, two requests");
    // Only once.
    assert_eq!(text(&s, "refuse_next", json!({"count": 2})), "ok");
    let err = s.call_tool("echo", json!({"text": "x"})).unwrap_err();
    match &err {
        Error::Server { code, data, .. } => {
            assert_eq!(*code, -32022);
            let supported = &data.as_ref().unwrap()["supported"];
            assert_eq!(supported, &json!(["2026-07-28"]));
        }
        other => panic!("{other}"),
    }
    assert_eq!(text(&s, "echo", json!({"text": "fine"})), "fine");
    s.close();
    let refused = s
        .stderr_tail()
        .lines()
        .filter(|l| l.starts_with("refused "))
        .count();
    assert_eq!(refused, 3, "{}", s.stderr_tail());
}

#[test]
fn batched_calls_get_the_same_result_rules_as_single_ones() {
    // A batch pipelines its requests, but each answer is settled as a single call's is:
    // input rounds through the handler, unknown result types and bad structured output as
    // errors; never taken at face value.
    let _clean = Clean::new();
    let client = Client::new(FORM);
    let s = start(
        per_request(&[]).handler(client.clone()),
        Generation::PerRequest,
    );
    let calls = [
        mcp_pool::ToolCall::new("mrtr_elicit", json!({})),
        mcp_pool::ToolCall::new("result_type", json!({"value": "bogus"})),
        mcp_pool::ToolCall::new("bad_structured", json!({})),
        mcp_pool::ToolCall::new("echo", json!({"text": "plain"})),
    ];
    let results = s.batch(&calls, mcp_pool::BatchOptions::new()).unwrap();
    assert_eq!(results[0].as_ref().unwrap().text(), "hello Ada");
    assert!(
        matches!(&results[1], Err(Error::Protocol(m)) if m.contains("bogus")),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(&results[2], Err(Error::InvalidOutput { .. })),
        "{:?}",
        results[2]
    );
    assert_eq!(results[3].as_ref().unwrap().text(), "plain");
    assert_eq!(client.seen.lock().elicitations.len(), 1);
    s.close();
}

#[test]
fn closing_the_session_tells_a_handler_still_answering() {
    // A handler waiting on a user learns the answer is no longer wanted when the session
    // ends, not only when the server cancels.
    let _clean = Clean::new();
    let client = Client::with(FORM, Mode::Block);
    let s = start(
        handshake(&[]).handler(client.clone()),
        Generation::Handshake,
    );
    let caller = {
        let s = s.clone();
        std::thread::spawn(move || s.call_tool("ask_elicitation", json!({})))
    };
    assert!(
        wait_for(Duration::from_secs(4), || {
            (!client.seen.lock().elicitations.is_empty()).then_some(())
        })
        .is_some(),
        "the handler was never asked"
    );
    let began = Instant::now();
    s.close();
    assert!(caller.join().unwrap().is_err());
    assert!(
        wait_for(Duration::from_secs(4), || {
            (client.seen.lock().returned == 1).then_some(())
        })
        .is_some(),
        "the handler never returned"
    );
    assert_eq!(
        client.seen.lock().saw_cancel,
        1,
        "is_cancelled() stayed false"
    );
    // Block mode gives up by itself after 5 s; the close told it well before.
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
}

#[test]
fn closing_the_session_ends_an_input_round_and_tells_its_handler() {
    // The per-request generation's input rounds run the handler on the caller's behalf:
    // the session ending ends the round at once, and the handler is told.
    let _clean = Clean::new();
    let client = Client::with(FORM, Mode::Block);
    let s = start(
        per_request(&[]).handler(client.clone()),
        Generation::PerRequest,
    );
    let caller = {
        let s = s.clone();
        std::thread::spawn(move || {
            let began = Instant::now();
            let r = s.call_tool_with(
                "mrtr_elicit",
                json!({}),
                CallOptions::new().timeout(Duration::from_secs(30)),
            );
            (r, began.elapsed())
        })
    };
    assert!(
        wait_for(Duration::from_secs(4), || {
            (!client.seen.lock().elicitations.is_empty()).then_some(())
        })
        .is_some(),
        "the handler was never asked"
    );
    s.close();
    let (result, took) = caller.join().unwrap();
    assert!(result.is_err(), "{result:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        wait_for(Duration::from_secs(4), || {
            (client.seen.lock().returned == 1).then_some(())
        })
        .is_some(),
        "the handler never returned"
    );
    assert_eq!(
        client.seen.lock().saw_cancel,
        1,
        "is_cancelled() stayed false"
    );
}

#[test]
fn an_input_round_of_more_than_32_requests_is_refused_without_a_thread_each() {
    // One handler thread per input request: the server does not choose how many.
    let _clean = Clean::new();
    let client = Client::new(HandlerSupport {
        roots: true,
        ..Default::default()
    });
    let s = start(
        per_request(&[]).handler(client.clone()),
        Generation::PerRequest,
    );
    assert_eq!(text(&s, "mrtr_many", json!({"count": 32})), "32 answered");
    assert_eq!(client.seen.lock().roots, 32);
    let err = s.call_tool("mrtr_many", json!({"count": 33})).unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("33 inputs")),
        "{err}"
    );
    assert_eq!(client.seen.lock().roots, 32, "the handler was not asked");
    assert_eq!(text(&s, "echo", json!({"text": "on"})), "on");
    s.close();
}
