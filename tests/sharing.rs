//! The sharing policy against the fake server: a per-caller server's sessions serve one
//! caller key each (state, processes, limits, the tool cache, retries, reaping, batches),
//! a shared server ignores keys, and the `sharing` key of a configuration file. Each test
//! checks nothing is left behind.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fake, Clean, FAKE};
use mcp_pool::{
    BatchOptions, CallOptions, Error, Pool, PoolBuilder, PoolSettings, ServerConfig, Sharing,
    ToolCall,
};
use serde_json::{json, Value};

fn per_caller() -> PoolSettings {
    PoolSettings::new().sharing(Sharing::PerCaller)
}

fn pool_with(settings: PoolSettings) -> Pool {
    Pool::builder()
        .server_with(fake(&[]), settings)
        .build()
        .unwrap()
}

/// The text of a successful tool call made for `key`.
fn text_as(pool: &Pool, key: &str, tool: &str, args: Value) -> String {
    let r = pool.call_tool_as(key, "fake", tool, args).unwrap();
    assert!(!r.is_error, "{r:?}");
    r.text()
}

fn pid_of(pool: &Pool, key: &str) -> u32 {
    pool.session_for("fake", key).unwrap().pid().unwrap()
}

fn assert_needs_key(err: Error) {
    match &err {
        Error::InvalidArgument(m) => assert!(
            m.contains("server `fake`") && m.contains("caller key") && m.contains("call_tool_as"),
            "{m}"
        ),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn two_keys_never_share_a_session() {
    let _clean = Clean::new();
    let pool = pool_with(per_caller());
    // `count` is the server process's state: each key sees only its own.
    assert_eq!(text_as(&pool, "alice", "count", json!({})), "1");
    assert_eq!(text_as(&pool, "alice", "count", json!({})), "2");
    assert_eq!(text_as(&pool, "bob", "count", json!({})), "1");
    assert_eq!(text_as(&pool, "alice", "count", json!({})), "3");
    assert_eq!(text_as(&pool, "bob", "count", json!({})), "2");
    let (alice, bob) = (pid_of(&pool, "alice"), pid_of(&pool, "bob"));
    assert_ne!(alice, bob);
    assert_eq!(pid_of(&pool, "alice"), alice);
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.calls, s.hits, s.misses, s.spawns), (5, 3, 2, 2), "{s:?}");
    assert_eq!((s.live_sessions, s.callers), (2, 2));
    assert_eq!(pool.live_children(), 2);
    pool.close();
}

#[test]
fn the_same_key_reuses_its_session() {
    let _clean = Clean::new();
    let pool = pool_with(per_caller().max_sessions(3));
    let pid = pid_of(&pool, "alice");
    for i in 1..=5 {
        assert_eq!(text_as(&pool, "alice", "count", json!({})), i.to_string());
    }
    // Through the options, as every other call kind takes the key.
    let r = pool
        .call_tool_with(
            "fake",
            "count",
            json!({}),
            CallOptions::new().caller("alice"),
        )
        .unwrap();
    assert_eq!(r.text(), "6");
    assert_eq!(pid_of(&pool, "alice"), pid);
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.calls, s.hits, s.misses, s.spawns), (6, 6, 0, 1));
    assert_eq!((s.live_sessions, s.callers), (1, 1));
    pool.close();
}

#[test]
fn limits_apply_per_key_under_the_pool_wide_cap() {
    let _clean = Clean::new();
    let pool = pool_with(
        per_caller()
            .max_sessions(1)
            .max_in_flight(1)
            .queue_timeout(Duration::from_millis(300)),
    );
    std::thread::scope(|scope| {
        let busy = scope.spawn(|| pool.call_tool_as("alice", "fake", "sleep", json!({"ms": 1200})));
        common::wait_for(Duration::from_secs(5), || {
            (pool.stats().servers["fake"].in_flight == 1).then_some(())
        })
        .expect("alice's call in flight");
        // Alice's one session has no room and she may have no other: she waits, then is
        // told the pool is busy.
        let err = pool
            .call_tool_as("alice", "fake", "echo", json!({"text": "x"}))
            .unwrap_err();
        assert!(matches!(err, Error::PoolBusy { .. }), "{err}");
        // Bob's limit is his own: he gets a session of his while Alice's is still busy.
        assert_eq!(text_as(&pool, "bob", "echo", json!({"text": "y"})), "y");
        let s = &pool.stats().servers["fake"];
        assert_eq!((s.live_sessions, s.in_flight, s.spawns), (2, 1, 2));
        assert_eq!(busy.join().unwrap().unwrap().text(), "slept 1200");
    });
    pool.close();

    // The pool's child cap bounds all keys together.
    let pool = Pool::builder()
        .server_with(
            fake(&[]),
            per_caller().queue_timeout(Duration::from_millis(300)),
        )
        .max_children(1)
        .build()
        .unwrap();
    assert_eq!(text_as(&pool, "alice", "echo", json!({"text": "x"})), "x");
    let err = pool
        .call_tool_as("bob", "fake", "echo", json!({"text": "y"}))
        .unwrap_err();
    assert!(matches!(err, Error::PoolBusy { .. }), "{err}");
    assert_eq!(pool.live_children(), 1);
    pool.close();
}

#[test]
fn a_returned_session_wakes_a_caller_of_its_key() {
    let _clean = Clean::new();
    let pool = pool_with(
        per_caller()
            .max_in_flight(1)
            .queue_timeout(Duration::from_secs(5)),
    );
    let (_, _) = (pid_of(&pool, "alice"), pid_of(&pool, "bob"));
    let stats = || pool.stats().servers["fake"].clone();
    std::thread::scope(|scope| {
        let a1 = scope.spawn(|| pool.call_tool_as("alice", "fake", "sleep", json!({"ms": 400})));
        let b1 = scope.spawn(|| pool.call_tool_as("bob", "fake", "sleep", json!({"ms": 2500})));
        common::wait_for(Duration::from_secs(5), || {
            (stats().in_flight == 2).then_some(())
        })
        .expect("both busy");
        // Alice waits first, then Bob: when Alice's session comes back, the caller to wake
        // is Alice's second call, not the last to wait (Bob's, which cannot use it).
        let asked = Instant::now();
        let pool = &pool;
        let a2 = scope.spawn(move || {
            let r = pool.call_tool_as("alice", "fake", "echo", json!({"text": "a"}));
            (r, asked.elapsed())
        });
        common::wait_for(Duration::from_secs(5), || {
            (stats().waiting == 1).then_some(())
        })
        .expect("alice waiting");
        let b2 = scope.spawn(|| pool.call_tool_as("bob", "fake", "echo", json!({"text": "b"})));
        common::wait_for(Duration::from_secs(5), || {
            (stats().waiting == 2).then_some(())
        })
        .expect("bob waiting");
        let (r, took) = a2.join().unwrap();
        assert_eq!(r.unwrap().text(), "a");
        // Woken by her returned lease (~0.4 s), not by Bob's second call ending after
        // his first (2.5 s) or by her queue timeout (5 s).
        assert!(took < Duration::from_millis(1500), "alice waited {took:?}");
        assert_eq!(a1.join().unwrap().unwrap().text(), "slept 400");
        assert_eq!(b1.join().unwrap().unwrap().text(), "slept 2500");
        assert_eq!(b2.join().unwrap().unwrap().text(), "b");
    });
    assert_eq!(stats().spawns, 2);
    pool.close();
}

#[test]
fn a_per_caller_server_needs_a_key() {
    let _clean = Clean::new();
    let pool = pool_with(per_caller());
    let start = Instant::now();
    assert_needs_key(
        pool.call_tool("fake", "echo", json!({"text": "x"}))
            .unwrap_err(),
    );
    assert_needs_key(pool.list_tools("fake").unwrap_err());
    assert_needs_key(pool.ping("fake").unwrap_err());
    assert_needs_key(pool.session("fake").unwrap_err());
    assert_needs_key(pool.notify("fake", "notifications/x", None).unwrap_err());
    assert_needs_key(
        pool.batch(
            "fake",
            &[ToolCall::new("echo", json!({"text": "x"}))],
            BatchOptions::new(),
        )
        .unwrap_err(),
    );
    // An empty key is no key (a missing user id must not become everyone's session).
    let err = pool
        .call_tool_as("", "fake", "echo", json!({"text": "x"}))
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(m) if m.contains("non-empty caller key")),
        "{err}"
    );
    // At once: nothing was started or waited for.
    assert!(start.elapsed() < Duration::from_secs(1));
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.calls, s.spawns, s.live_sessions), (0, 0, 0));
    assert_eq!(pool.live_children(), 0);
    // Direct mode shares nothing: no key needed.
    let r = pool.call_tool_direct("fake", "count", json!({})).unwrap();
    assert_eq!(r.text(), "1");
    pool.close();
}

#[test]
fn a_shared_server_ignores_keys() {
    let _clean = Clean::new();
    let pool = pool_with(PoolSettings::new());
    assert_eq!(text_as(&pool, "alice", "count", json!({})), "1");
    assert_eq!(text_as(&pool, "bob", "count", json!({})), "2");
    assert_eq!(
        pool.call_tool("fake", "count", json!({})).unwrap().text(),
        "3"
    );
    let pid = pool.session("fake").unwrap().pid();
    assert_eq!(pool.session_for("fake", "bob").unwrap().pid(), pid);
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.spawns, s.live_sessions, s.callers), (1, 1, 0));
    pool.close();
}

#[test]
fn idle_keyed_sessions_are_reaped() {
    let _clean = Clean::new();
    let pool = pool_with(per_caller().idle_timeout(Duration::from_millis(300)));
    assert_eq!(text_as(&pool, "alice", "count", json!({})), "1");
    assert_eq!(text_as(&pool, "bob", "count", json!({})), "1");
    assert_eq!(pool.stats().servers["fake"].callers, 2);
    common::wait_for(Duration::from_secs(5), || {
        (pool.stats().servers["fake"].closed_idle == 2).then_some(())
    })
    .unwrap_or_else(|| panic!("not reaped: {:?}", pool.stats()));
    common::wait_for(Duration::from_secs(5), || {
        (pool.live_children() == 0).then_some(())
    })
    .expect("children reaped");
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.live_sessions, s.callers), (0, 0));
    // Alice's next call starts a new process for her: a fresh counter, a miss.
    assert_eq!(text_as(&pool, "alice", "count", json!({})), "1");
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.misses, s.spawns, s.callers), (3, 3, 1));
    pool.close();
}

#[test]
fn a_batch_runs_on_its_callers_sessions() {
    let _clean = Clean::new();
    let pool = pool_with(per_caller());
    assert_eq!(text_as(&pool, "alice", "count", json!({})), "1");
    let calls = vec![
        ToolCall::new("count", json!({})),
        ToolCall::new("count", json!({})),
    ];
    let texts = |key: &str| -> Vec<String> {
        pool.batch("fake", &calls, BatchOptions::new().caller(key))
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap().text())
            .collect()
    };
    assert_eq!(texts("alice"), ["2", "3"]);
    assert_eq!(texts("bob"), ["1", "2"]);
    assert_eq!(texts("alice"), ["4", "5"]);
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.calls, s.spawns, s.callers), (7, 2, 2));
    pool.close();
}

#[test]
fn tool_lists_are_cached_per_key() {
    let _clean = Clean::new();
    let pool = pool_with(per_caller());
    let list = |key: &str| {
        pool.list_tools_with("fake", CallOptions::new().caller(key))
            .unwrap()
    };
    let added = |tools: &Arc<Vec<mcp_pool::Tool>>| tools.iter().any(|t| t.name == "added_0");
    // Alice's server gains a tool; Bob's does not.
    assert_eq!(text_as(&pool, "alice", "list_changed", json!({})), "ok");
    let alice = list("alice");
    assert!(added(&alice), "{alice:?}");
    let bob = list("bob");
    assert!(!added(&bob), "bob was handed alice's tool list");
    // Each key's list is cached for that key.
    assert!(Arc::ptr_eq(&list("alice"), &alice));
    assert!(Arc::ptr_eq(&list("bob"), &bob));
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.list_cache_hits, s.spawns), (2, 2));
    pool.close();
}

/// A fresh record file: the fake server appends one line per tool call it executes.
fn record_file(name: &str) -> PathBuf {
    let path = common::temp_path(&format!("{name}.jsonl"));
    let _ = std::fs::remove_file(&path);
    path
}

fn executed(path: &PathBuf, tool: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["tool"] == tool)
        .collect()
}

#[test]
fn a_retry_stays_within_its_key() {
    let _clean = Clean::new();
    let record = record_file("sharing-retry");
    let pool = Pool::builder()
        .server_with(
            fake(&["--record", record.to_str().unwrap()]),
            per_caller().max_sessions(1),
        )
        .build()
        .unwrap();
    let (alice, bob) = (pid_of(&pool, "alice"), pid_of(&pool, "bob"));
    std::thread::scope(|scope| {
        // A read-only call, safe to run again, on Alice's session...
        let read =
            scope.spawn(|| pool.call_tool_as("alice", "fake", "slow_read", json!({"ms": 800})));
        common::wait_for(Duration::from_secs(5), || {
            (executed(&record, "slow_read").len() == 1).then_some(())
        })
        .expect("slow_read running");
        // ...whose server then dies under it.
        let err = pool
            .call_tool_as("alice", "fake", "crash", json!({"after_ms": 50}))
            .unwrap_err();
        assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err}");
        assert_eq!(read.join().unwrap().unwrap().text(), "slept 800");
    });
    // The retry went to a new session of Alice's, not to Bob's (which had room).
    let pids: Vec<u64> = executed(&record, "slow_read")
        .iter()
        .map(|v| v["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert_eq!(pids[0], u64::from(alice));
    assert_ne!(pids[1], u64::from(alice));
    assert_ne!(pids[1], u64::from(bob));
    assert_eq!(pid_of(&pool, "alice"), pids[1] as u32);
    assert_eq!(pid_of(&pool, "bob"), bob);
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.retries, s.crashes, s.spawns), (1, 1, 3), "{s:?}");
    pool.close();
    let _ = std::fs::remove_file(&record);
}

#[test]
fn the_config_file_sharing_key() {
    let _clean = Clean::new();
    let config = json!({
        "pool": {"sharing": "per-caller", "closeGraceSecs": 0.5},
        "mcpServers": {
            "fake": {"command": FAKE},
            "plain": {"command": FAKE, "pool": {"sharing": "shared"}}
        }
    });
    let builder = PoolBuilder::from_json(&config.to_string()).unwrap();
    assert!(builder.warnings().is_empty(), "{:?}", builder.warnings());
    let pool = builder.build().unwrap();
    assert_needs_key(
        pool.call_tool("fake", "echo", json!({"text": "x"}))
            .unwrap_err(),
    );
    assert_eq!(text_as(&pool, "alice", "count", json!({})), "1");
    assert_eq!(text_as(&pool, "bob", "count", json!({})), "1");
    // The server's own `pool` wins over the top level.
    assert_eq!(
        pool.call_tool("plain", "count", json!({})).unwrap().text(),
        "1"
    );
    let r = pool
        .call_tool_as("bob", "plain", "count", json!({}))
        .unwrap();
    assert_eq!(r.text(), "2");
    pool.close();

    let bad = json!({"mcpServers": {"x": {"command": FAKE, "pool": {"sharing": "private"}}}});
    match PoolBuilder::from_json(&bad.to_string()) {
        Err(Error::Config(m)) => assert_eq!(
            m,
            "server `x`: `pool.sharing` must be one of \"shared\", \"per-caller\", not \"private\""
        ),
        other => panic!("expected a config error, got {other:?}"),
    }
    let bad = json!({"pool": {"sharing": true}, "mcpServers": {"x": {"command": FAKE}}});
    match PoolBuilder::from_json(&bad.to_string()) {
        Err(Error::Config(m)) => assert!(m.contains("`pool.sharing` must be one of"), "{m}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn per_caller_with_a_warm_minimum_is_rejected() {
    let _clean = Clean::new();
    let err = Pool::builder()
        .server_with(fake(&[]), per_caller().min_sessions(1).max_sessions(2))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: server `fake`: min sessions must be 0 with per-caller sharing \
         (there is no caller to warm a session for)"
    );
    let config = json!({
        "pool": {"sharing": "per-caller"},
        "mcpServers": {"mem": {"command": FAKE, "pool": {"minSessions": 1}}}
    });
    let err = PoolBuilder::from_json(&config.to_string())
        .unwrap()
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.starts_with("server `mem`: min sessions must be 0")),
        "{err}"
    );
    // A warm minimum on a shared server is valid.
    let pool = Pool::builder()
        .server_with(
            ServerConfig::new("warm", FAKE).close_grace(Duration::from_millis(500)),
            PoolSettings::new().min_sessions(1),
        )
        .build()
        .unwrap();
    pool.close();
}

/// Roots that say whose they are: the caller key the request came with.
struct RootsByCaller;

impl mcp_pool::ClientHandler for RootsByCaller {
    fn supports(&self) -> mcp_pool::HandlerSupport {
        mcp_pool::HandlerSupport {
            roots: true,
            ..Default::default()
        }
    }

    fn roots(
        &self,
        request: &mcp_pool::ServerRequest<'_>,
    ) -> Result<Value, mcp_pool::HandlerError> {
        let who = request.caller().unwrap_or("nobody");
        Ok(json!({"roots": [{"uri": format!("file:///home/{who}"), "name": who}]}))
    }
}

#[test]
fn a_per_caller_sessions_handler_is_told_whose_request_it_is() {
    // Server requests are answered in the handshake generation (on stdio the per-request
    // generation has the client answer none).
    let _clean = Clean::new();
    let pool = Pool::builder()
        .server_with(
            fake(&[])
                .generation(mcp_pool::Generation::Handshake)
                .handler(Arc::new(RootsByCaller)),
            per_caller(),
        )
        .server_with(
            ServerConfig::new("shared", FAKE)
                .close_grace(Duration::from_millis(500))
                .generation(mcp_pool::Generation::Handshake)
                .handler(Arc::new(RootsByCaller)),
            PoolSettings::new(),
        )
        .build()
        .unwrap();
    for key in ["alice", "bob"] {
        let roots = text_as(&pool, key, "ask_roots", json!({}));
        assert!(
            roots.contains(&format!("file:///home/{key}")),
            "{key}: {roots}"
        );
    }
    // A shared server's sessions are nobody's.
    let r = pool.call_tool("shared", "ask_roots", json!({})).unwrap();
    assert!(r.text().contains("file:///home/nobody"), "{}", r.text());
    pool.close();
}
