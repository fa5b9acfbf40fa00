//! The pool against the fake server: reuse, reaping, retry safety, batches, stats, limits,
//! failing servers, direct mode, closing. Each test checks nothing is left behind.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{assert_clean, fake, process_exists, serial, snapshot, Clean, KillOnDrop};
use mcp_pool::{
    BatchOptions, CallOptions, CloseReason, Error, Generation, Phase, Pool, PoolSettings,
    RetryPolicy, ServerConfig, ToolCall,
};
use serde_json::{json, Value};

fn pool_of(servers: Vec<(ServerConfig, PoolSettings)>) -> Pool {
    let mut b = Pool::builder();
    for (config, settings) in servers {
        b = b.server_with(config, settings);
    }
    b.build().unwrap()
}

fn text(pool: &Pool, server: &str, tool: &str, args: Value) -> String {
    let r = pool.call_tool(server, tool, args).unwrap();
    assert!(!r.is_error, "{r:?}");
    r.text()
}

/// A fresh record file: the fake server appends one line per tool call it executes.
fn record_file(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("mcp-pool-{}-{name}.jsonl", std::process::id()));
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
fn sessions_are_reused_and_stats_are_exact() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(fake(&[]), PoolSettings::new())]);
    // `count` counts per process: 1..=10 proves one process served every call.
    for i in 1..=10 {
        assert_eq!(text(&pool, "fake", "count", json!({})), i.to_string());
    }
    let stats = pool.stats();
    let s = &stats.servers["fake"];
    assert_eq!((s.calls, s.hits, s.misses, s.spawns), (10, 9, 1, 1));
    assert_eq!((s.live_sessions, s.in_flight, s.waiting), (1, 0, 0));
    assert_eq!(s.latency_ms.count, 10);
    assert!(s.latency_ms.p50.is_some() && s.handshake_ms.count == 1);
    assert_eq!(stats.total.calls, 10);
    let json: Value = serde_json::from_str(&stats.to_json()).unwrap();
    assert_eq!(json["servers"]["fake"]["hits"], 9);
    pool.close();
    assert_eq!(pool.live_children(), 0);
}

#[test]
fn unknown_servers_bad_settings_and_a_closed_pool_are_typed_errors() {
    let _g = serial();
    let pool = pool_of(vec![(fake(&[]), PoolSettings::new())]);
    let err = pool.call_tool("nope", "echo", json!({})).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownServer(s) if s == "nope"),
        "{err}"
    );
    pool.close();
    let err = pool
        .call_tool("fake", "echo", json!({"text": "x"}))
        .unwrap_err();
    assert!(matches!(err, Error::PoolClosed), "{err}");
    for settings in [
        PoolSettings::new().max_sessions(0),
        PoolSettings::new().min_sessions(3).max_sessions(2),
        PoolSettings::new().max_in_flight(0),
    ] {
        let err = Pool::builder()
            .server_with(fake(&[]), settings)
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("`fake`")),
            "{err}"
        );
    }
    let err = Pool::builder()
        .server(fake(&[]))
        .server(fake(&[]))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
}

#[test]
fn a_crashed_session_is_replaced_on_next_use() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(fake(&[]), PoolSettings::new())]);
    assert_eq!(text(&pool, "fake", "count", json!({})), "1");
    let err = pool
        .call_tool("fake", "crash", json!({"code": 9}))
        .unwrap_err();
    // `crash` is not safe to repeat: not retried.
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err}");
    assert_eq!(
        text(&pool, "fake", "count", json!({})),
        "1",
        "a new process"
    );
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.crashes, s.spawns, s.retries), (1, 2, 0));
    assert_eq!(s.errors.get("outcome_unknown"), Some(&1));
    pool.close();
}

/// A slow call whose server is killed under it.
fn interrupted(pool: &Pool, tool: &str) -> Result<mcp_pool::CallToolResult, Error> {
    let pid = pool.session("fake").unwrap().pid().unwrap();
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| pool.call_tool("fake", tool, json!({"ms": 600})));
        std::thread::sleep(Duration::from_millis(150));
        signal(pid, "-KILL");
        slow.join().unwrap()
    })
}

#[test]
fn a_call_that_may_have_run_is_not_retried() {
    let _clean = Clean::new();
    let record = record_file("not-retried");
    let pool = pool_of(vec![(
        fake(&["--record", record.to_str().unwrap()]),
        PoolSettings::new(),
    )]);
    let err = interrupted(&pool, "slow_write").unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err}");
    assert_eq!(executed(&record, "slow_write").len(), 1, "ran exactly once");
    assert_eq!(pool.stats().servers["fake"].retries, 0);
    pool.close();
    let _ = std::fs::remove_file(&record);
}

#[test]
fn a_read_only_call_is_retried_on_a_fresh_session() {
    let _clean = Clean::new();
    let record = record_file("retried");
    let pool = pool_of(vec![(
        fake(&["--record", record.to_str().unwrap()]),
        PoolSettings::new(),
    )]);
    let r = interrupted(&pool, "slow_read").unwrap();
    assert_eq!(r.text(), "slept 600");
    let runs = executed(&record, "slow_read");
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_ne!(
        runs[0]["pid"], runs[1]["pid"],
        "the retry ran on a fresh process"
    );
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.retries, s.crashes), (1, 1));
    pool.close();
    let _ = std::fs::remove_file(&record);
}

#[test]
fn the_retry_policy_is_configurable() {
    let _clean = Clean::new();
    let record = record_file("policy");
    let args = ["--record", record.to_str().unwrap()];
    let never = pool_of(vec![(
        fake(&args),
        PoolSettings::new().retry(RetryPolicy::Never),
    )]);
    let err = interrupted(&never, "slow_read").unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err}");
    never.close();
    let always = pool_of(vec![(
        fake(&args),
        PoolSettings::new().retry(RetryPolicy::Always),
    )]);
    assert_eq!(
        interrupted(&always, "slow_write").unwrap().text(),
        "slept 600"
    );
    assert_eq!(
        executed(&record, "slow_write").len(),
        2,
        "always: it ran twice"
    );
    always.close();
    let _ = std::fs::remove_file(&record);
}

/// The `sleep 1000` helper a fake server started (`--spawn-grandchild`,
/// `--grandchild-holds-stdout`, `--daemon`), while the server runs.
fn helper_of(server: u32) -> Option<u32> {
    common::children_of(server)
        .into_iter()
        .find(|&pid| common::runs(pid, "sleep"))
}

/// [`interrupted`] with a `slow_write` (never retried), timed: the error, how long after
/// the kill it came, and the stats when it did.
fn killed_under_a_call(pool: &Pool) -> (Error, Duration, mcp_pool::ServerStats) {
    let pid = pool.session("fake").unwrap().pid().unwrap();
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            let r = pool.call_tool("fake", "slow_write", json!({"ms": 3000}));
            (
                r,
                Instant::now(),
                pool.stats().server("fake").unwrap().clone(),
            )
        });
        std::thread::sleep(Duration::from_millis(150));
        let killed = Instant::now();
        signal(pid, "-KILL");
        let (r, at, stats) = slow.join().unwrap();
        (r.unwrap_err(), at.saturating_duration_since(killed), stats)
    })
}

#[test]
fn a_crash_is_reported_before_any_replacement_starts() {
    let _clean = Clean::new();
    for args in [&[][..], &["--slow-start-ms", "1000"]] {
        let pool = pool_of(vec![(fake(args), PoolSettings::new())]);
        let (err, after, s) = killed_under_a_call(&pool);
        assert!(
            matches!(
                err,
                Error::OutcomeUnknown {
                    reason: CloseReason::Signaled(9),
                    ..
                }
            ),
            "{args:?}: {err}"
        );
        // Not retried, and nothing started to decide that.
        assert_eq!(
            (s.spawns, s.starting_sessions, s.retries),
            (1, 0, 0),
            "{args:?}: {s:?}"
        );
        // Far less than the replacement's 1 s start.
        assert!(
            after < Duration::from_millis(700),
            "{args:?}: {after:?} after the kill"
        );
        // The next call starts the replacement.
        assert_eq!(text(&pool, "fake", "count", json!({})), "1");
        assert_eq!(pool.stats().server("fake").unwrap().spawns, 2);
        pool.close();
    }
}

#[test]
fn a_crash_is_seen_at_once_while_a_grandchild_holds_the_servers_output() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(
        fake(&["--grandchild-holds-stdout"]),
        PoolSettings::new(),
    )]);
    let session = pool.session("fake").unwrap();
    let pid = session.pid().unwrap();
    let grandchild = common::wait_for(Duration::from_secs(2), || helper_of(pid))
        .expect("the grandchild started");
    let _kill = KillOnDrop(vec![grandchild]);
    assert!(!common::not_running(grandchild));
    // The server exits; its output stays open (the grandchild has it): no end of output.
    let start = Instant::now();
    let err = pool
        .call_tool_with(
            "fake",
            "crash",
            json!({"code": 5}),
            CallOptions::new().timeout(Duration::from_secs(5)),
        )
        .unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(
            err,
            Error::OutcomeUnknown {
                reason: CloseReason::Exited(5),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("exited with code 5"), "{err}");
    assert!(took < Duration::from_secs(2), "seen after {took:?}");
    // The rest of its process group goes with it.
    common::wait_for(Duration::from_secs(5), || {
        common::not_running(grandchild).then_some(())
    })
    .expect("the grandchild was killed");
    assert_eq!(
        text(&pool, "fake", "count", json!({})),
        "1",
        "a new process"
    );
    assert_ne!(pool.session("fake").unwrap().pid(), Some(pid));
    let s = pool.stats().server("fake").unwrap().clone();
    assert_eq!((s.crashes, s.spawns, s.retries), (1, 2, 0), "{s:?}");
    drop(session);
    pool.close();
}

/// The line of request `id` calling `tool` with `arguments`, newline included, in bytes
/// (as the session writes it in the handshake generation: no `_meta` envelope).
fn request_line_len(id: u64, tool: &str, arguments: &Value) -> usize {
    let line = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments}});
    serde_json::to_string(&line).unwrap().len() + 1
}

/// Arguments `{"pad": "xx…"}` that make request `id`'s line for `tool` exactly `len` bytes.
fn padded_to(id: u64, tool: &str, len: usize) -> Value {
    let pad = len - request_line_len(id, tool, &json!({"pad": ""}));
    let args = json!({ "pad": "x".repeat(pad) });
    assert_eq!(request_line_len(id, tool, &args), len);
    args
}

#[test]
fn a_request_written_but_for_its_newline_is_never_retried() {
    let _clean = Clean::new();
    let record = record_file("newline");
    let pool = pool_of(vec![(
        fake(&["--record", record.to_str().unwrap()])
            .generation(Generation::Handshake)
            // Time for the server to read what it was sent once its loop is free again.
            .close_grace(Duration::from_secs(3)),
        PoolSettings::new(),
    )]);
    let session = pool.session("fake").unwrap();
    let pid = session.pid().unwrap();
    let (blocked, counted) = std::thread::scope(|scope| {
        let pool = &pool;
        // Ids from 100: the tool list the pool fetches to learn annotations, `block`, `count`.
        let blocked = scope.spawn(|| {
            pool.call_tool_with(
                "fake",
                "block",
                json!({"ms": 1500}),
                CallOptions::new().timeout(Duration::from_secs(10)),
            )
        });
        // The server's loop is held: its stdin pipe fills and stays as it is.
        common::wait_for(Duration::from_secs(5), || {
            (executed(&record, "block").len() == 1).then_some(())
        })
        .expect("block runs");
        let (capacity, queued) = common::pipe_fill(pid, 0);
        assert_eq!(queued, 0, "the server read everything before blocking");
        // `count`'s line is one byte longer than the pipe's room: all of it is written but
        // its newline. The server can still run it: at end of input, an unterminated last
        // line is parsed too.
        let args = padded_to(102, "count", capacity - queued + 1);
        let counted = scope.spawn(move || {
            pool.call_tool_with(
                "fake",
                "count",
                args,
                CallOptions::new().timeout(Duration::from_secs(10)),
            )
        });
        common::wait_for(Duration::from_secs(5), || {
            (common::pipe_fill(pid, 0).1 == capacity).then_some(())
        })
        .expect("the pipe fills up");
        session.close();
        (blocked.join().unwrap(), counted.join().unwrap())
    });
    let closed = |r: &Result<mcp_pool::CallToolResult, Error>| {
        matches!(
            r,
            Err(Error::OutcomeUnknown {
                reason: CloseReason::Closed,
                ..
            })
        )
    };
    assert!(closed(&blocked), "{blocked:?}");
    // Its first byte reached the server: it may have run, so it is not repeated.
    assert!(closed(&counted), "{counted:?}");
    let runs = executed(&record, "count");
    assert!(runs.len() <= 1, "count ran {} times: {runs:?}", runs.len());
    assert!(runs.iter().all(|r| r["pid"] == pid), "{runs:?}");
    let s = pool.stats().server("fake").unwrap().clone();
    assert_eq!((s.retries, s.spawns), (0, 1), "{s:?}");
    pool.close();
    let _ = std::fs::remove_file(&record);
}

#[test]
fn an_oversize_answer_is_too_large_and_neither_retried_nor_respawned() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(
        fake(&[]).max_message_size(1 << 20),
        PoolSettings::new(),
    )]);
    assert_eq!(text(&pool, "fake", "count", json!({})), "1");
    // `blob` is read-only, so a retry would be allowed: the size limit is not a reason.
    let err = pool
        .call_tool("fake", "blob", json!({"bytes": 2_000_000}))
        .unwrap_err();
    match &err {
        Error::TooLarge { limit, size } => {
            assert_eq!(*limit, 1_048_576);
            assert!(*size > 2_000_000, "{size}");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("1048576"), "{err}");
    // The same process serves the next call.
    assert_eq!(text(&pool, "fake", "count", json!({})), "2");
    let s = pool.stats().server("fake").unwrap().clone();
    assert_eq!((s.retries, s.spawns, s.crashes), (0, 1, 0), "{s:?}");
    assert_eq!(s.errors.get("too_large"), Some(&1));
    pool.close();
}

#[test]
fn idle_sessions_are_reaped_and_the_warm_minimum_kept() {
    let _clean = Clean::new();
    let quick = || PoolSettings::new().idle_timeout(Duration::from_millis(300));
    let pool = pool_of(vec![
        (fake(&[]), quick()),
        (
            ServerConfig::new("warm", common::FAKE),
            quick().min_sessions(1),
        ),
    ]);
    assert_eq!(text(&pool, "fake", "echo", json!({"text": "x"})), "x");
    let until = Instant::now() + Duration::from_secs(5);
    while pool.stats().servers["fake"].closed_idle == 0 {
        assert!(Instant::now() < until, "not reaped: {:?}", pool.stats());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(400));
    let stats = pool.stats();
    assert_eq!(stats.servers["fake"].live_sessions, 0);
    assert_eq!(stats.servers["fake"].closed_idle, 1);
    // The warm server was started in the background and is never reaped for idleness.
    assert_eq!(stats.servers["warm"].live_sessions, 1);
    assert_eq!(stats.servers["warm"].closed_idle, 0);
    assert_eq!(stats.servers["warm"].spawns, 1);
    // A call after reaping starts a new session: a miss.
    assert_eq!(text(&pool, "fake", "count", json!({})), "1");
    assert_eq!(pool.stats().servers["fake"].misses, 2);
    pool.close();
}

#[test]
fn a_session_is_not_reaped_the_moment_it_is_ready() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(
        fake(&["--slow-start-ms", "600"]),
        PoolSettings::new()
            .idle_timeout(Duration::from_millis(400))
            .max_sessions(2),
    )]);
    let stats = || pool.stats().server("fake").unwrap().clone();
    std::thread::scope(|scope| {
        // Session A busy for longer than the whole check.
        let a = scope.spawn(|| {
            pool.call_tool_with(
                "fake",
                "sleep",
                json!({"ms": 2500}),
                CallOptions::new().timeout(Duration::from_secs(10)),
            )
        });
        common::wait_for(Duration::from_secs(5), || {
            let s = stats();
            (s.live_sessions == 1 && s.in_flight == 1).then_some(())
        })
        .expect("session A busy");
        // A second call shares A and makes the set grow: B starts, taking 600 ms, longer
        // than the idle timeout.
        assert_eq!(text(&pool, "fake", "echo", json!({"text": "grow"})), "grow");
        let ready = common::wait_for(Duration::from_secs(5), || {
            (stats().spawns == 2).then(Instant::now)
        })
        .expect("session B started");
        // B's idle clock starts when it is ready, not when it was spawned.
        while ready.elapsed() < Duration::from_millis(200) {
            let s = stats();
            assert_eq!(
                s.closed_idle,
                0,
                "B was reaped {:?} after it was ready",
                ready.elapsed()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(stats().live_sessions, 2);
        // Then B, unused, is reaped after its idle timeout.
        common::wait_for(Duration::from_secs(5), || {
            (stats().closed_idle == 1).then_some(())
        })
        .expect("B reaped when idle");
        assert_eq!(a.join().unwrap().unwrap().text(), "slept 2500");
    });
    pool.close();
}

#[test]
fn aged_sessions_finish_their_calls_then_close() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(
        fake(&[]),
        PoolSettings::new()
            .max_lifetime(Duration::from_millis(400))
            .lifetime_jitter(Duration::ZERO),
    )]);
    let first_pid = pool.session("fake").unwrap().pid().unwrap();
    // A call spanning the end of the session's lifetime completes.
    let long = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.call_tool("fake", "sleep", json!({"ms": 900})))
    };
    std::thread::sleep(Duration::from_millis(600));
    // Past its lifetime the old session takes no new calls: this one starts a new session.
    assert_eq!(text(&pool, "fake", "count", json!({})), "1");
    assert!(process_exists(first_pid), "still serving its last call");
    assert_eq!(long.join().unwrap().unwrap().text(), "slept 900");
    let until = Instant::now() + Duration::from_secs(5);
    while process_exists(first_pid) {
        assert!(Instant::now() < until, "aged session not closed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(pool.stats().servers["fake"].closed_aged >= 1);
    pool.close();
}

#[test]
fn the_set_grows_when_busy_and_waits_are_bounded() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(fake(&[]), PoolSettings::new().max_sessions(2))]);
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| text(&pool, "fake", "sleep", json!({"ms": 300})));
        }
    });
    assert_eq!(pool.stats().servers["fake"].spawns, 2);
    pool.close();

    // One session, one call at a time: a second caller waits, then gets "pool busy".
    let pool = pool_of(vec![(
        fake(&[]),
        PoolSettings::new()
            .max_in_flight(1)
            .queue_timeout(Duration::from_millis(200)),
    )]);
    std::thread::scope(|scope| {
        let busy = scope.spawn(|| pool.call_tool("fake", "sleep", json!({"ms": 800})));
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        let err = pool
            .call_tool("fake", "echo", json!({"text": "x"}))
            .unwrap_err();
        assert!(matches!(err, Error::PoolBusy { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(busy.join().unwrap().is_ok());
    });
    assert_eq!(
        pool.stats().servers["fake"].errors.get("pool_busy"),
        Some(&1)
    );
    pool.close();
}

#[test]
fn the_global_child_cap_holds() {
    let _clean = Clean::new();
    let pool = Pool::builder()
        .server_with(
            fake(&[]),
            PoolSettings::new().queue_timeout(Duration::from_millis(300)),
        )
        .server_with(
            ServerConfig::new("other", common::FAKE),
            PoolSettings::new().queue_timeout(Duration::from_millis(300)),
        )
        .max_children(1)
        .build()
        .unwrap();
    assert_eq!(text(&pool, "fake", "echo", json!({"text": "x"})), "x");
    let err = pool
        .call_tool("other", "echo", json!({"text": "y"}))
        .unwrap_err();
    assert!(matches!(err, Error::PoolBusy { .. }), "{err}");
    assert_eq!(pool.live_children(), 1);
    pool.close();
}

#[test]
fn a_failing_server_backs_off_then_fails_fast() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(
        fake(&["--exit-during-handshake", "4"]),
        PoolSettings::new()
            .failure_threshold(2)
            .backoff(Duration::from_millis(50), Duration::from_millis(100))
            .cooldown(Duration::from_millis(700)),
    )]);
    for _ in 0..2 {
        let err = pool
            .call_tool("fake", "echo", json!({"text": "x"}))
            .unwrap_err();
        assert!(matches!(err, Error::Handshake { .. }), "{err}");
        assert!(err.stderr_tail().unwrap().contains("dying in handshake"));
    }
    let start = Instant::now();
    let err = pool
        .call_tool("fake", "echo", json!({"text": "x"}))
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(100), "fails fast");
    match &err {
        Error::ServerFailing { last_error, .. } => {
            assert!(matches!(**last_error, Error::Handshake { .. }), "{err}")
        }
        other => panic!("{other}"),
    }
    assert!(err.stderr_tail().unwrap().contains("dying in handshake"));
    assert!(pool.stats().servers["fake"].failing);
    // After the cool-down it tries again.
    std::thread::sleep(Duration::from_millis(800));
    let err = pool
        .call_tool("fake", "echo", json!({"text": "x"}))
        .unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err}");
    assert_eq!(pool.stats().servers["fake"].spawn_failures, 3);
    pool.close();
}

#[test]
fn direct_mode_spawns_calls_and_closes() {
    let _clean = Clean::new();
    let pool = pool_of(vec![
        (fake(&[]), PoolSettings::new()),
        (
            ServerConfig::new("direct", common::FAKE),
            PoolSettings::new().direct(true),
        ),
    ]);
    assert_eq!(
        pool.call_tool_direct("fake", "count", json!({}))
            .unwrap()
            .text(),
        "1"
    );
    assert_eq!(
        pool.call_tool_direct("fake", "count", json!({}))
            .unwrap()
            .text(),
        "1"
    );
    assert_eq!(text(&pool, "direct", "count", json!({})), "1");
    assert_eq!(text(&pool, "direct", "count", json!({})), "1");
    let stats = pool.stats();
    assert_eq!(stats.servers["fake"].direct_calls, 2);
    assert_eq!(stats.servers["direct"].direct_calls, 2);
    assert_eq!(stats.total.live_sessions, 0);
    // Each child counts against the cap until it is reaped, in the background.
    let until = Instant::now() + Duration::from_secs(5);
    while pool.live_children() > 0 {
        assert!(Instant::now() < until, "direct children never released");
        std::thread::sleep(Duration::from_millis(10));
    }
    pool.close();
}

#[test]
fn direct_mode_keeps_the_call_deadline_through_a_hanging_start() {
    let _clean = Clean::new();
    let pool = pool_of(vec![
        (fake(&["--hang-handshake"]), PoolSettings::new()),
        (
            ServerConfig::new("direct", common::FAKE)
                .args(["--hang-handshake"])
                .close_grace(Duration::from_millis(500)),
            PoolSettings::new().direct(true),
        ),
    ]);
    let deadline = || CallOptions::new().timeout(Duration::from_secs(1));
    let start = Instant::now();
    let err = pool
        .call_tool_with("direct", "echo", json!({"text": "x"}), deadline())
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    let start = Instant::now();
    let err = pool
        .call_tool_direct_with("fake", "echo", json!({"text": "x"}), deadline())
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    let stats = pool.stats();
    assert_eq!(stats.total.direct_calls, 2);
    assert_eq!(stats.total.timeouts, 2);
    pool.close();
}

#[test]
fn a_batch_keeps_order_and_survives_partial_failure() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(fake(&[]), PoolSettings::new())]);
    let mut calls: Vec<ToolCall> = (0..100)
        .map(|i| ToolCall::new("echo", json!({ "text": format!("n{i}") })))
        .collect();
    calls[7] = ToolCall::new("fail", json!({"message": "no"}));
    calls[8] = ToolCall::new("echo", json!("not an object"));
    let mut progress = Vec::new();
    let results = pool
        .batch(
            "fake",
            &calls,
            BatchOptions::new().on_result(|i, _| progress.push(i)),
        )
        .unwrap();
    assert_eq!(results.len(), 100);
    for (i, r) in results.iter().enumerate() {
        match i {
            7 => assert!(r.as_ref().unwrap().is_error),
            8 => assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}"),
            _ => assert_eq!(r.as_ref().unwrap().text(), format!("n{i}")),
        }
    }
    assert_eq!(
        progress,
        (0..100).collect::<Vec<_>>(),
        "each call once, in order"
    );
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.calls, s.spawns), (100, 1));
    pool.close();
}

#[test]
fn a_batch_interrupted_by_a_crash_retries_only_what_is_safe() {
    let _clean = Clean::new();
    let record = record_file("batch");
    let pool = pool_of(vec![(
        fake(&["--record", record.to_str().unwrap()]),
        PoolSettings::new(),
    )]);
    // Everything is written at once; the server answers the echos, then dies while the
    // slow calls run. The read-only one goes to a fresh session; the destructive one and
    // the crash itself may have run, so they are reported, not repeated.
    let mut calls = vec![
        ToolCall::new("crash", json!({"code": 2, "after_ms": 300})),
        ToolCall::new("slow_write", json!({"ms": 1000})),
        ToolCall::new("slow_read", json!({"ms": 1000})),
    ];
    calls.extend((0..5).map(|i| ToolCall::new("echo", json!({ "text": format!("e{i}") }))));
    let results = pool.batch("fake", &calls, BatchOptions::new()).unwrap();
    assert!(
        matches!(results[0], Err(Error::OutcomeUnknown { .. })),
        "{:?}",
        results[0]
    );
    assert!(
        matches!(results[1], Err(Error::OutcomeUnknown { .. })),
        "{:?}",
        results[1]
    );
    assert_eq!(results[2].as_ref().unwrap().text(), "slept 1000");
    for i in 0..5 {
        assert_eq!(results[3 + i].as_ref().unwrap().text(), format!("e{i}"));
    }
    assert_eq!(
        executed(&record, "slow_write").len(),
        1,
        "ran once, not repeated"
    );
    assert_eq!(executed(&record, "crash").len(), 1);
    let reads = executed(&record, "slow_read");
    assert_eq!(reads.len(), 2);
    assert_ne!(reads[0]["pid"], reads[1]["pid"]);
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.retries, s.crashes, s.calls), (1, 1, 8));
    pool.close();
    let _ = std::fs::remove_file(&record);
}

#[test]
fn batches_over_several_servers_run_in_parallel_and_keep_order() {
    let _g = serial();
    let pool = pool_of(vec![
        (fake(&[]), PoolSettings::new()),
        (ServerConfig::new("b", common::FAKE), PoolSettings::new()),
    ]);
    let calls: Vec<(String, ToolCall)> = (0..20)
        .map(|i| {
            let server = if i % 2 == 0 { "fake" } else { "b" };
            (
                server.to_owned(),
                ToolCall::new("sleep", json!({"ms": 100})),
            )
        })
        .collect();
    let start = Instant::now();
    let results = pool.batch_many(&calls);
    assert!(results
        .iter()
        .all(|r| r.as_ref().unwrap().text() == "slept 100"));
    // Both servers' batches overlapped; each batch's sleeps run concurrently too.
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    let mixed: Vec<(String, ToolCall)> = (0..10)
        .map(|i| {
            let server = if i % 3 == 0 { "b" } else { "fake" };
            (
                server.to_owned(),
                ToolCall::new("echo", json!({"text": format!("{server}{i}")})),
            )
        })
        .collect();
    for (i, r) in pool.batch_many(&mixed).iter().enumerate() {
        assert_eq!(r.as_ref().unwrap().text(), format!("{}{i}", mixed[i].0));
    }
    pool.close();
}

#[test]
fn the_tool_list_is_cached_until_it_changes() {
    let _g = serial();
    let pool = pool_of(vec![(fake(&[]), PoolSettings::new())]);
    let first = pool.list_tools("fake").unwrap();
    let again = pool.list_tools("fake").unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &again));
    assert_eq!(pool.stats().servers["fake"].list_cache_hits, 1);
    assert_eq!(text(&pool, "fake", "list_changed", json!({})), "ok");
    let changed = pool.list_tools("fake").unwrap();
    assert!(changed.iter().any(|t| t.name.starts_with("added_")));
    assert_eq!(pool.stats().servers["fake"].list_cache_hits, 1);
    // A replaced session drops the cache too: the next list comes from the new session.
    let _ = pool.call_tool("fake", "crash", json!({}));
    let fresh = pool.list_tools("fake").unwrap();
    assert!(!fresh.iter().any(|t| t.name.starts_with("added_")));
    let s = &pool.stats().servers["fake"];
    assert_eq!((s.list_cache_hits, s.spawns), (1, 2));
    assert!(std::sync::Arc::ptr_eq(
        &fresh,
        &pool.list_tools("fake").unwrap()
    ));
    pool.close();
}

#[test]
fn keepalive_replaces_a_session_that_stops_answering() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(
        fake(&[])
            .request_timeout(Duration::from_millis(300))
            .close_grace(Duration::from_millis(100)),
        PoolSettings::new().keepalive(Some(Duration::from_millis(100))),
    )]);
    let pid = pool.session("fake").unwrap().pid().unwrap();
    // Freeze the server: it cannot answer the ping.
    signal(pid, "-STOP");
    let until = Instant::now() + Duration::from_secs(5);
    while pool.stats().servers["fake"].closed_ping_failed == 0 {
        assert!(Instant::now() < until, "{:?}", pool.stats());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        text(&pool, "fake", "count", json!({})),
        "1",
        "a fresh process"
    );
    pool.close();
    assert!(!process_exists(pid));
}

#[test]
fn keepalive_pings_go_on_after_a_call() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(
        fake(&[]),
        PoolSettings::new().keepalive(Some(Duration::from_millis(300))),
    )]);
    let pings = || pool.stats().server("fake").unwrap().keepalive_pings;
    assert_eq!(text(&pool, "fake", "echo", json!({"text": "x"})), "x");
    assert_eq!(
        text(&pool, "fake", "sleep", json!({"ms": 1000})),
        "slept 1000"
    );
    let after_call = pings();
    let more = common::wait_for(Duration::from_secs(3), || {
        (pings() >= after_call + 2).then_some(())
    });
    assert!(
        more.is_some(),
        "{} keepalive pings in the 3 s after a call (300 ms interval)",
        pings() - after_call
    );
    let s = pool.stats().server("fake").unwrap().clone();
    assert_eq!((s.closed_ping_failed, s.spawns), (0, 1), "{s:?}");
    pool.close();
}

/// Health checks (`ping`, or `server/discover` in the per-request generation) a `--verbose`
/// fake server logged, not counting the handshake's (whose ids are under 100).
fn health_checks(stderr: &str) -> usize {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("fake-server: request "))
        .filter(|rest| {
            let mut words = rest.split(' ');
            let id = words.next().and_then(|id| id.parse::<u64>().ok());
            let method = words.next().unwrap_or("");
            id.is_some_and(|id| id >= 100) && (method == "ping" || method == "server/discover")
        })
        .count()
}

#[test]
fn a_wedged_session_is_replaced_and_its_calls_in_flight_end_as_unresponsive() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(
        fake(&[]),
        PoolSettings::new().probe_timeout(Duration::from_millis(500)),
    )]);
    let wedged = pool.session("fake").unwrap().pid().unwrap();
    std::thread::scope(|scope| {
        // `block` holds the server's only loop: nothing sent to it is read or answered.
        let wedge = scope.spawn(|| {
            pool.call_tool_with(
                "fake",
                "block",
                json!({"ms": 10_000}),
                CallOptions::new().timeout(Duration::from_millis(300)),
            )
        });
        std::thread::sleep(Duration::from_millis(100));
        // A call queued behind it on the same session (destructive: never retried).
        let stuck = scope.spawn(|| {
            let start = Instant::now();
            let r = pool.call_tool_with(
                "fake",
                "slow_write",
                json!({"ms": 10}),
                CallOptions::new().timeout(Duration::from_secs(20)),
            );
            (r, start.elapsed())
        });
        let err = wedge.join().unwrap().unwrap_err();
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
        // While the probe waits the session takes no new call: this one goes to the
        // replacement (on the wedged session it would time out).
        let r = pool
            .call_tool_with(
                "fake",
                "echo",
                json!({"text": "after"}),
                CallOptions::new().timeout(Duration::from_secs(5)),
            )
            .unwrap();
        assert_eq!(r.text(), "after");
        let (stuck, waited) = stuck.join().unwrap();
        let err = stuck.unwrap_err();
        assert!(
            matches!(
                err,
                Error::OutcomeUnknown {
                    reason: CloseReason::Unresponsive,
                    ..
                }
            ),
            "{err}"
        );
        assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    });
    let replacement = pool.session("fake").unwrap().pid().unwrap();
    assert_ne!(replacement, wedged, "a new process serves the calls");
    let s = pool.stats().server("fake").unwrap().clone();
    assert_eq!(
        (s.closed_unresponsive, s.spawns, s.crashes),
        (1, 2, 0),
        "{s:?}"
    );
    pool.close();
    assert!(!process_exists(wedged));
}

#[test]
fn a_slow_but_healthy_session_stays_in_service_after_a_timeout() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(fake(&["--verbose"]), PoolSettings::new())]);
    let session = pool.session("fake").unwrap();
    let pid = session.pid().unwrap();
    // A threaded tool: the server's loop still answers while it runs.
    let err = pool
        .call_tool_with(
            "fake",
            "sleep",
            json!({"ms": 1000}),
            CallOptions::new().timeout(Duration::from_millis(200)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(text(&pool, "fake", "echo", json!({"text": "x"})), "x");
    assert_eq!(
        pool.session("fake").unwrap().pid(),
        Some(pid),
        "same process"
    );
    let s = pool.stats().server("fake").unwrap().clone();
    assert_eq!(
        (s.closed_unresponsive, s.spawns, s.crashes),
        (0, 1, 0),
        "{s:?}"
    );
    pool.close();
    // It was checked: the probe reached the server (and was answered: it is in service).
    let tail = session.stderr_tail();
    assert_eq!(health_checks(&tail), 1, "{tail}");
}

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn close_and_drop_leave_nothing() {
    let _g = serial();
    let before = snapshot();
    let pool = pool_of(vec![(fake(&[]), PoolSettings::new().max_sessions(2))]);
    let waiting = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.call_tool("fake", "hang", json!({})))
    };
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    pool.close();
    assert!(start.elapsed() < Duration::from_secs(3));
    // Right away, not eventually.
    assert!(common::children().is_empty(), "{:?}", common::children());
    let err = waiting.join().unwrap().unwrap_err();
    assert!(
        matches!(err, Error::OutcomeUnknown { .. } | Error::PoolClosed),
        "{err}"
    );
    assert!(matches!(pool.list_tools("fake"), Err(Error::PoolClosed)));
    assert_clean(&before);

    // Dropping the last handle closes in the background, without blocking.
    let pool = pool_of(vec![(fake(&[]), PoolSettings::new())]);
    assert_eq!(text(&pool, "fake", "echo", json!({"text": "x"})), "x");
    let start = Instant::now();
    drop(pool);
    assert!(start.elapsed() < Duration::from_millis(200));
    assert_clean(&before);
}

#[test]
fn close_does_not_wait_out_a_hanging_start() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(
        fake(&["--hang-handshake"]).start_timeout(Duration::from_secs(10)),
        PoolSettings::new(),
    )]);
    let start = Instant::now();
    let err = pool
        .call_tool_with(
            "fake",
            "echo",
            json!({"text": "x"}),
            CallOptions::new().timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // The start is still under way (its timeout is 10 s): closing abandons it.
    let start = Instant::now();
    pool.close();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "close took {took:?}");
}

#[test]
fn close_is_quick_while_a_daemon_holds_the_servers_output() {
    let clean = Clean::new();
    let pool = pool_of(vec![(fake(&["--daemon"]), PoolSettings::new())]);
    assert_eq!(text(&pool, "fake", "echo", json!({"text": "x"})), "x");
    let session = pool.session("fake").unwrap();
    let pid = session.pid().unwrap();
    let daemon =
        common::wait_for(Duration::from_secs(2), || helper_of(pid)).expect("the daemon started");
    // Dropped first: the daemon is killed however the test ends.
    let kill = KillOnDrop(vec![daemon]);
    assert!(!common::not_running(daemon));
    // It left the server's process group and session, and holds the server's stdout and
    // stderr: they never reach end of input.
    let start = Instant::now();
    pool.close();
    let took = start.elapsed();
    assert!(took < Duration::from_millis(1500), "close took {took:?}");
    // Nothing of the pool is left, though the daemon still runs.
    clean.check();
    let tail = session.stderr_tail();
    assert_eq!(common::pid_in(&tail, "daemon pid "), Some(daemon), "{tail}");
    drop(kill);
}

#[test]
fn calls_with_options_pass_through_the_pool() {
    let _g = serial();
    let pool = pool_of(vec![(fake(&[]), PoolSettings::new())]);
    let mut steps = 0;
    let r = pool
        .call_tool_with(
            "fake",
            "sleep",
            json!({"ms": 200, "progress_steps": 4}),
            CallOptions::new().on_progress(|_| steps += 1),
        )
        .unwrap();
    assert_eq!(r.text(), "slept 200");
    assert_eq!(steps, 4);
    let err = pool
        .call_tool_with(
            "fake",
            "hang",
            json!({}),
            CallOptions::new().timeout(Duration::from_millis(150)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(pool.stats().servers["fake"].timeouts, 1);
    pool.ping("fake").unwrap();
    assert_eq!(pool.list_resources("fake").unwrap().len(), 5);
    assert_eq!(pool.list_resource_templates("fake").unwrap().len(), 1);
    assert_eq!(pool.list_prompts("fake").unwrap().len(), 1);
    let c = pool
        .complete(
            "fake",
            json!({"type": "ref/prompt", "name": "greet"}),
            json!({"name": "name", "value": "B"}),
        )
        .unwrap();
    assert_eq!(c["values"], json!(["Bob"]));
    assert_eq!(
        pool.read_resource("fake", "fake://r/1").unwrap().text(),
        "resource 1"
    );
    assert_eq!(
        pool.request("fake", "tools/list", None).unwrap()["tools"]
            .as_array()
            .map(Vec::len)
            .map(|n| n > 5),
        Some(true)
    );
    pool.close();
}

#[test]
fn every_progress_report_of_a_burst_reaches_a_pool_caller_in_order() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(fake(&[]), PoolSettings::new())]);
    let steps = 64u32;
    let want: Vec<(f64, Option<f64>)> = (1..=steps)
        .map(|i| (f64::from(i), Some(f64::from(steps))))
        .collect();
    for call in 0..20 {
        // The reports come back to back, right before the answer.
        let mut seen = Vec::new();
        let r = pool
            .call_tool_with(
                "fake",
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
    pool.close();
}

/// CPU time (clock ticks) used so far by this process's threads with this name.
fn thread_cpu_ticks(name: &str) -> u64 {
    let mut ticks = 0;
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // utime and stime are fields 14 and 15 of stat, 11 and 12 after the command.
        ticks += fields
            .get(11)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
        ticks += fields
            .get(12)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
    }
    ticks
}

#[test]
fn the_reaper_sleeps_through_a_cool_down_and_restarts_the_warm_minimum() {
    let _g = serial();
    let before = snapshot();
    let pool = pool_of(vec![(
        fake(&["--exit-during-handshake", "4"]),
        PoolSettings::new()
            .min_sessions(1)
            .failure_threshold(1)
            .backoff(Duration::from_millis(20), Duration::from_millis(20))
            .cooldown(Duration::from_millis(300)),
    )]);
    let cpu_before = thread_cpu_ticks("mcp-reaper");
    std::thread::sleep(Duration::from_millis(1500));
    let used = thread_cpu_ticks("mcp-reaper") - cpu_before;
    // A busy loop would use most of 150 ticks; sleeping between deadlines uses ~none.
    assert!(used <= 10, "the reaper used {used} ticks in 1.5 s");
    let failures = pool.stats().servers["fake"].spawn_failures;
    assert!(
        failures >= 3,
        "the warm minimum is retried after each cool-down: {failures}"
    );
    pool.close();
    assert_clean(&before);
}

#[test]
fn a_session_handed_out_is_not_reaped_under_its_call() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(
        fake(&[]),
        PoolSettings::new().idle_timeout(Duration::from_millis(200)),
    )]);
    let session = pool.session("fake").unwrap();
    let r = session.call_tool("sleep", json!({"ms": 1000})).unwrap();
    assert_eq!(r.text(), "slept 1000");
    drop(session);
    pool.close();
}

#[test]
fn a_caller_waiting_behind_a_keepalive_ping_is_woken_when_it_ends() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(
        fake(&[]),
        PoolSettings::new()
            .max_in_flight(1)
            .keepalive(Some(Duration::from_millis(100)))
            .queue_timeout(Duration::from_secs(5)),
    )]);
    let pid = pool.session("fake").unwrap().pid().unwrap();
    // Freeze the server so the next keepalive ping holds the session's only slot.
    signal(pid, "-STOP");
    std::thread::sleep(Duration::from_millis(250));
    let thaw = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        signal(pid, "-CONT");
    });
    let start = Instant::now();
    assert_eq!(text(&pool, "fake", "echo", json!({"text": "x"})), "x");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "waited {:?} for a ping to end",
        start.elapsed()
    );
    thaw.join().unwrap();
    pool.close();
}

#[test]
fn a_child_still_closing_counts_against_the_cap() {
    let _g = serial();
    let before = snapshot();
    // `slow` ignores the end of its input and SIGTERM: closing it takes both graces.
    let pool = Pool::builder()
        .server_with(
            ServerConfig::new("slow", common::FAKE)
                .args(["--ignore-stdin-eof"])
                .close_grace(Duration::from_millis(300)),
            PoolSettings::new().idle_timeout(Duration::from_millis(100)),
        )
        .server_with(
            ServerConfig::new("other", common::FAKE),
            PoolSettings::new().queue_timeout(Duration::from_secs(5)),
        )
        .max_children(1)
        .build()
        .unwrap();
    let slow_pid = pool.session("slow").unwrap().pid().unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while pool.stats().servers["slow"].closed_idle == 0 {
        assert!(Instant::now() < until);
        std::thread::sleep(Duration::from_millis(10));
    }
    // Reaped for idleness but still in its kill ladder: it still holds the only place.
    assert!(process_exists(slow_pid));
    assert_eq!(pool.live_children(), 1);
    assert_eq!(text(&pool, "other", "echo", json!({"text": "x"})), "x");
    assert!(
        !process_exists(slow_pid),
        "the second child started before the first was reaped"
    );
    pool.close();
    assert_clean(&before);
}

#[test]
fn a_start_bound_leaves_the_timeout_to_the_call_alone() {
    let clean = Clean::new();
    let slow = |name: &str| {
        ServerConfig::new(name, common::FAKE)
            .args(["--slow-start-ms", "700"])
            .close_grace(Duration::from_millis(500))
    };
    let pool = pool_of(vec![
        (slow("slow1"), PoolSettings::new()),
        (slow("slow2"), PoolSettings::new()),
        (slow("slow3"), PoolSettings::new().direct(true)),
    ]);
    // Without a start bound the 300 ms timeout covers the 700 ms start: it fails.
    let err = pool
        .call_tool_with(
            "slow1",
            "echo",
            json!({"text": "a"}),
            CallOptions::new().timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // With one, the start has its own bound and the call its 300 ms: it works, pooled and
    // direct, and the stats count the whole wait.
    for server in ["slow2", "slow3"] {
        let started = Instant::now();
        let r = pool
            .call_tool_with(
                server,
                "echo",
                json!({"text": "b"}),
                CallOptions::new()
                    .timeout(Duration::from_millis(300))
                    .start_timeout(Duration::from_secs(20)),
            )
            .unwrap();
        assert_eq!(r.text(), "b");
        assert!(started.elapsed() >= Duration::from_millis(700));
    }
    // The call's own deadline still holds once it has its session.
    let err = pool
        .call_tool_with(
            "slow2",
            "sleep",
            json!({"ms": 3000}),
            CallOptions::new()
                .timeout(Duration::from_millis(200))
                .start_timeout(Duration::from_secs(20)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // A start bound shorter than the start is a start timeout.
    let err = pool
        .call_tool_with(
            "slow3",
            "echo",
            json!({"text": "c"}),
            CallOptions::new()
                .timeout(Duration::from_secs(20))
                .start_timeout(Duration::from_millis(100)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    pool.close();
    clean.check();
}

#[test]
fn a_batch_that_stops_before_it_sends_anything_leaves_its_session_in_service() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(
        fake(&[]),
        PoolSettings::new()
            .max_sessions(1)
            .probe_timeout(Duration::from_millis(300)),
    )]);
    assert_eq!(text(&pool, "fake", "add", json!({"a": 1, "b": 1})), "2");
    let pid = pool.session("fake").unwrap().pid().unwrap();
    std::thread::scope(|scope| {
        // A call in flight holds the server's only loop: a probe now would get no answer in
        // its timeout, and the session would be replaced under this call.
        let busy = scope.spawn(|| {
            pool.call_tool_with(
                "fake",
                "block",
                json!({"ms": 1500}),
                CallOptions::new().timeout(Duration::from_secs(10)),
            )
        });
        std::thread::sleep(Duration::from_millis(200));
        // Writing these lines out takes longer than the deadline: nothing is sent.
        let pad = "p".repeat(16 << 10);
        let calls: Vec<ToolCall> = (0..1100)
            .map(|i| ToolCall::new("add", json!({"a": i, "b": 1, "pad": pad})))
            .collect();
        let results = pool
            .batch(
                "fake",
                &calls,
                BatchOptions::new().timeout(Duration::from_millis(1)),
            )
            .unwrap();
        for r in &results {
            assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
        }
        let r = busy.join().unwrap();
        assert!(r.as_ref().is_ok_and(|r| !r.is_error), "{r:?}");
    });
    assert_eq!(pool.session("fake").unwrap().pid(), Some(pid));
    assert_eq!(pool.stats().server("fake").unwrap().closed_unresponsive, 0);
    pool.close();
}

#[test]
fn a_batch_that_times_out_on_a_wedged_session_gets_it_replaced() {
    let _clean = Clean::new();
    let pool = pool_of(vec![(
        fake(&[]),
        PoolSettings::new().probe_timeout(Duration::from_millis(500)),
    )]);
    let wedged = pool.session("fake").unwrap().pid().unwrap();
    // `block` holds the server's only loop: the batch's deadline passes.
    let results = pool
        .batch(
            "fake",
            &[ToolCall::new("block", json!({"ms": 10_000}))],
            BatchOptions::new().timeout(Duration::from_millis(300)),
        )
        .unwrap();
    assert!(
        matches!(
            results[0],
            Err(Error::Timeout {
                phase: Phase::Request,
                ..
            })
        ),
        "{:?}",
        results[0]
    );
    // The session is suspect, its probe unanswered: the next call goes to a new process.
    let r = pool
        .call_tool_with(
            "fake",
            "echo",
            json!({"text": "after"}),
            CallOptions::new().timeout(Duration::from_secs(5)),
        )
        .unwrap();
    assert_eq!(r.text(), "after");
    let replacement = pool.session("fake").unwrap().pid().unwrap();
    assert_ne!(replacement, wedged);
    let retired = common::wait_for(Duration::from_secs(5), || {
        (pool.stats().server("fake").unwrap().closed_unresponsive == 1).then_some(())
    });
    assert!(retired.is_some(), "{:?}", pool.stats());
    pool.close();
    assert!(!process_exists(wedged));
}
