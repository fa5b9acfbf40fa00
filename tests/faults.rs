//! A session against a misbehaving fake server: one test per fault, each asserting the exact
//! outcome and that no child, thread or file descriptor is left.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{assert_clean, fake, group_members, process_exists, serial, snapshot, Clean};
use mcp_pool::{
    CallOptions, CancelHandle, CloseReason, Error, Generation, Phase, ServerConfig, Session,
};
use serde_json::json;

#[test]
fn crash_mid_call_fails_the_call_with_exit_code_and_stderr() {
    let _g = serial();
    let before = snapshot();
    let s = Session::start(fake(&[])).unwrap();
    let pid = s.pid().unwrap();
    // Another call is in flight when the server dies: it fails at once too.
    let other = {
        let s = s.clone();
        std::thread::spawn(move || s.call_tool("hang", json!({})))
    };
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let err = s.call_tool("crash", json!({"code": 7})).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    match &err {
        Error::OutcomeUnknown {
            reason,
            stderr_tail,
        } => {
            assert_eq!(*reason, CloseReason::Exited(7));
            assert!(stderr_tail.contains("crashing"), "{stderr_tail}");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("exited with code 7"), "{err}");
    let other = other.join().unwrap().unwrap_err();
    assert!(
        matches!(
            other,
            Error::OutcomeUnknown {
                reason: CloseReason::Exited(7),
                ..
            }
        ),
        "{other}"
    );
    // Later calls are refused without being sent: safe to retry elsewhere.
    assert!(!s.is_alive());
    let err = s.call_tool("echo", json!({"text": "x"})).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SessionClosed {
                reason: CloseReason::Exited(7),
                ..
            }
        ),
        "{err}"
    );
    drop(s);
    assert_clean(&before);
    assert!(!process_exists(pid), "child {pid} was not reaped");
}

#[test]
fn a_signal_is_named() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    let err = s.call_tool("kill_self", json!({"signal": 9})).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutcomeUnknown {
                reason: CloseReason::Signaled(9),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("signal 9"), "{err}");
    s.close();
}

#[test]
fn a_garbage_line_is_counted_not_fatal() {
    let _clean = Clean::new();
    let s = Session::start(fake(&["--banner"])).unwrap();
    let r = s.call_tool("garbage", json!({})).unwrap();
    assert_eq!(r.text(), "ok");
    assert_eq!(s.invalid_lines(), 2, "the banner and the garbage line");
    s.close();
}

#[test]
fn crlf_and_bom_are_tolerated() {
    let _clean = Clean::new();
    let s = Session::start(fake(&["--crlf", "--bom"])).unwrap();
    assert_eq!(
        s.call_tool("echo", json!({"text": "a"})).unwrap().text(),
        "a"
    );
    assert_eq!(s.invalid_lines(), 0);
    s.close();
}

#[test]
fn an_oversize_answer_is_a_typed_error_and_the_session_goes_on() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[]).max_message_size(1 << 20)).unwrap();
    // Under the cap is fine.
    let r = s.call_tool("oversize", json!({"bytes": 500_000})).unwrap();
    assert_eq!(r.text().len(), 500_000);
    let err = s
        .call_tool("oversize", json!({"bytes": 3_000_000}))
        .unwrap_err();
    match &err {
        Error::TooLarge { limit, size } => {
            assert_eq!(*limit, 1 << 20, "the configured limit");
            assert!(*size > 3_000_000, "{size}");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("1048576"), "{err}");
    // The answer was read past and dropped: the session serves the next call.
    assert!(s.is_alive());
    assert_eq!(
        s.call_tool("echo", json!({"text": "after"}))
            .unwrap()
            .text(),
        "after"
    );
    s.close();
}

#[test]
fn a_stderr_flood_neither_blocks_nor_grows_the_tail() {
    let _clean = Clean::new();
    let s = Session::start(fake(&["--stderr-at-start", "1000000"])).unwrap();
    let r = s
        .call_tool("stderr_flood", json!({"bytes": 8_000_000}))
        .unwrap();
    assert_eq!(r.text(), "flooded");
    assert_eq!(
        s.call_tool("echo", json!({"text": "x"})).unwrap().text(),
        "x"
    );
    s.close();
    let tail = s.stderr_tail();
    assert!(
        !tail.is_empty() && tail.len() <= 8 << 10,
        "tail of {} bytes",
        tail.len()
    );
    assert!(tail.lines().count() <= 64);
}

#[test]
fn a_slow_start_within_the_timeout_works() {
    let _clean = Clean::new();
    let s = Session::start(fake(&["--slow-start-ms", "600"])).unwrap();
    assert!(s.handshake_time() >= Duration::from_millis(600));
    assert_eq!(
        s.call_tool("echo", json!({"text": "x"})).unwrap().text(),
        "x"
    );
    s.close();
}

#[test]
fn a_start_past_the_timeout_fails_and_leaves_nothing() {
    let _g = serial();
    let before = snapshot();
    let start = Instant::now();
    let err = Session::start(
        fake(&["--slow-start-ms", "5000"]).start_timeout(Duration::from_millis(300)),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Handshake,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_clean(&before);
    let err = Session::start(fake(&["--hang-handshake"]).start_timeout(Duration::from_millis(300)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Handshake,
                ..
            }
        ),
        "{err}"
    );
    assert_clean(&before);
}

#[test]
fn exit_during_handshake_names_the_code_and_stderr() {
    let _clean = Clean::new();
    let err = Session::start(fake(&["--exit-during-handshake", "4"])).unwrap_err();
    match &err {
        Error::Handshake {
            reason,
            stderr_tail,
        } => {
            assert!(reason.contains("exited with code 4"), "{reason}");
            assert!(stderr_tail.contains("dying in handshake"), "{stderr_tail}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_command_that_does_not_exist_is_a_spawn_error() {
    let _clean = Clean::new();
    let err = Session::start(ServerConfig::new("ghost", "/no/such/mcp-server")).unwrap_err();
    match &err {
        Error::Spawn { command, error } => {
            assert_eq!(command, "/no/such/mcp-server");
            assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other}"),
    }
    let err = Session::start(ServerConfig::new("bad", "")).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

#[test]
fn wrong_and_duplicate_ids_are_dropped() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    assert_eq!(s.call_tool("wrong_id", json!({})).unwrap().text(), "ok");
    assert_eq!(s.unmatched_responses(), 1);
    assert_eq!(s.call_tool("duplicate_id", json!({})).unwrap().text(), "ok");
    assert_eq!(
        s.call_tool("echo", json!({"text": "z"})).unwrap().text(),
        "z"
    );
    assert_eq!(s.unmatched_responses(), 2);
    s.close();
}

#[test]
fn closed_stdout_ends_the_session() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    let err = s.call_tool("exit_stdout", json!({})).unwrap_err();
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
    s.close();
}

#[test]
fn close_fails_calls_in_flight_at_once() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    let waiting = {
        let s = s.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            (s.call_tool("hang", json!({})), start.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    s.close();
    let (result, waited) = waiting.join().unwrap();
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutcomeUnknown {
                reason: CloseReason::Closed,
                ..
            }
        ),
        "{err}"
    );
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    let err = s.call_tool("echo", json!({"text": "x"})).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SessionClosed {
                reason: CloseReason::Closed,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn the_kill_ladder_ends_a_server_that_ignores_eof_and_sigterm() {
    let _clean = Clean::new();
    let s = Session::start(
        fake(&["--ignore-stdin-eof", "--ignore-sigterm"]).close_grace(Duration::from_millis(200)),
    )
    .unwrap();
    let pid = s.pid().unwrap();
    let start = Instant::now();
    s.close();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "both graces were waited: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(!process_exists(pid));
}

#[test]
fn the_whole_process_group_goes() {
    let _clean = Clean::new();
    let s = Session::start(fake(&["--spawn-grandchild"])).unwrap();
    let pid = s.pid().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(group_members(pid).len(), 2, "server and its grandchild");
    s.close();
    let until = Instant::now() + Duration::from_secs(3);
    while !group_members(pid).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(group_members(pid), Vec::<u32>::new());
}

#[test]
fn dropping_the_last_handle_closes_in_the_background() {
    let _g = serial();
    let before = snapshot();
    let s = Session::start(fake(&[])).unwrap();
    let pid = s.pid().unwrap();
    let copy = s.clone();
    drop(s);
    assert!(copy.is_alive(), "a clone keeps it open");
    assert_eq!(
        copy.call_tool("echo", json!({"text": "x"})).unwrap().text(),
        "x"
    );
    let start = Instant::now();
    drop(copy);
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "drop does not block"
    );
    assert_clean(&before);
    assert!(!process_exists(pid));
}

#[test]
fn a_call_ends_within_its_deadline_even_when_the_server_hangs() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    for ms in [50u64, 120, 300] {
        let start = Instant::now();
        let err = s
            .call_tool_with(
                "hang",
                json!({}),
                CallOptions::new().timeout(Duration::from_millis(ms)),
            )
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }));
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(ms) && took < Duration::from_millis(ms + 1000),
            "{took:?}"
        );
    }
    s.close();
}

#[test]
fn a_server_that_stops_reading_cannot_wedge_the_session() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[]).close_grace(Duration::from_millis(200))).unwrap();
    let pid = s.pid().unwrap();
    let short = || CallOptions::new().timeout(Duration::from_millis(300));
    let err = s
        .call_tool_with("stop_reading", json!({}), short())
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // Far more than a pipe holds: the worker must not block writing it.
    let big = "x".repeat(4 << 20);
    let err = s
        .call_tool_with("echo", json!({ "text": big }), short())
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    let err = s
        .call_tool_with("echo", json!({"text": "small"}), short())
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    let start = Instant::now();
    s.close();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(!process_exists(pid));
}

/// How many times the fake server's `--record` file says `tool` ran.
fn runs_recorded(record: &std::path::Path, tool: &str) -> usize {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(&format!(r#"{{"tool":"{tool}""#)))
        .count()
}

#[test]
fn a_request_written_but_for_its_newline_counts_as_sent() {
    let _clean = Clean::new();
    let record = common::temp_path("newline.jsonl");
    let s = Session::start(
        fake(&["--record", record.to_str().unwrap()])
            .generation(Generation::Handshake)
            // Time for the server to read what it was sent once its loop is free again.
            .close_grace(Duration::from_secs(3)),
    )
    .unwrap();
    let pid = s.pid().unwrap();
    let ran = |tool: &str| runs_recorded(&record, tool);
    let (blocked, counted) = std::thread::scope(|scope| {
        // Request 100 holds the server's loop: its stdin pipe fills and stays as it is.
        // (A timed-out call would queue a cancel in the pipe, and the kernel would then
        // not fill the pipe to the byte.)
        let blocked = scope.spawn(|| {
            s.call_tool_with(
                "block",
                json!({"ms": 1500}),
                CallOptions::new().timeout(Duration::from_secs(10)),
            )
        });
        common::wait_for(Duration::from_secs(5), || (ran("block") == 1).then_some(()))
            .expect("block runs");
        let (capacity, queued) = common::pipe_fill(pid, 0);
        assert_eq!(queued, 0, "the server read everything before blocking");
        // Request 101 is one byte longer than the pipe holds: all of it is written but its
        // newline.
        let base = json!({"jsonrpc": "2.0", "id": 101, "method": "tools/call",
            "params": {"name": "count", "arguments": {"pad": ""}}});
        let pad = capacity + 1 - (serde_json::to_string(&base).unwrap().len() + 1);
        let args = json!({ "pad": "x".repeat(pad) });
        let counted = scope.spawn(|| {
            s.call_tool_with(
                "count",
                args,
                CallOptions::new().timeout(Duration::from_secs(10)),
            )
        });
        common::wait_for(Duration::from_secs(5), || {
            (common::pipe_fill(pid, 0).1 == capacity).then_some(())
        })
        .expect("the pipe fills up");
        s.close();
        (blocked.join().unwrap(), counted.join().unwrap())
    });
    for r in [&blocked, &counted] {
        assert!(
            matches!(
                r,
                Err(Error::OutcomeUnknown {
                    reason: CloseReason::Closed,
                    ..
                })
            ),
            "{r:?}"
        );
    }
    // Not "never written": at the end of its input the server ran the unterminated line.
    assert_eq!(ran("count"), 1);
    let _ = std::fs::remove_file(&record);
}

/// Runs `during` while sampling this process's resident size every 10 ms; returns its
/// result and the largest growth seen, in MiB.
fn peak_growth_mib<T>(during: impl FnOnce() -> T) -> (T, u64) {
    // Stops the sampler however `during` ends.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let before = common::rss_kib();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut peak = before;
            while !done.load(Ordering::Acquire) {
                peak = peak.max(common::rss_kib());
                std::thread::sleep(Duration::from_millis(10));
            }
            peak.max(common::rss_kib())
        });
        let result = {
            let _done = Done(&done);
            during()
        };
        let peak = sampler.join().unwrap();
        (result, peak.saturating_sub(before) / 1024)
    })
}

#[test]
fn a_flood_of_huge_server_requests_keeps_client_memory_bounded() {
    let _clean = Clean::new();
    // The handshake generation, where the client answers a server's requests.
    let s = Session::start(
        fake(&[])
            .generation(Generation::Handshake)
            .close_grace(Duration::from_millis(200)),
    )
    .unwrap();
    let pid = s.pid().unwrap();
    // 1500 requests with 64 KiB ids and 64 KiB method names (190 MiB), none of whose
    // answers the server reads. Answers that echoed them would be as big.
    let (count, id_bytes, method_bytes) = (1500u64, 65536u64, 65536u64);
    let flood = count
        * (id_bytes + method_bytes + r#"{"jsonrpc":"2.0","id":"","method":""}"#.len() as u64 + 1);
    let written_before = common::bytes_written_by(pid);
    let cancel = CancelHandle::new();
    let (result, growth_mib) = peak_growth_mib(|| {
        std::thread::scope(|scope| {
            let call = scope.spawn(|| {
                s.call_tool_with(
                    "flood_requests",
                    json!({"count": count, "id_bytes": id_bytes, "method_bytes": method_bytes}),
                    CallOptions::new()
                        .timeout(Duration::from_secs(60))
                        .cancel_with(&cancel),
                )
            });
            // Until the client has read the whole flood: all of it written, none left in
            // the pipe.
            let read = common::wait_for(Duration::from_secs(40), || {
                let written = common::bytes_written_by(pid) - written_before;
                (written >= flood && common::pipe_fill(pid, 1).1 == 0).then_some(())
            });
            cancel.cancel();
            assert!(read.is_some(), "the flood was not read in 40 s");
            call.join().unwrap()
        })
    });
    // (Before the fix the client grew by 375 MiB on a flood of 3000.)
    assert!(growth_mib < 64, "the client grew by {growth_mib} MiB");
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    s.close();
}

#[test]
fn a_server_that_does_not_read_its_answers_is_a_broken_session() {
    let _clean = Clean::new();
    let s = Session::start(
        fake(&[])
            .generation(Generation::Handshake)
            .close_grace(Duration::from_millis(200)),
    )
    .unwrap();
    // 40000 requests whose answers echo their 1000-byte ids: over 32 MiB of answers the
    // server never reads, more than the client's write queue holds.
    let (result, growth_mib) = peak_growth_mib(|| {
        let start = Instant::now();
        let r = s.call_tool_with(
            "flood_requests",
            json!({"count": 40_000, "id_bytes": 1000, "method_bytes": 10}),
            CallOptions::new().timeout(Duration::from_secs(30)),
        );
        (r, start.elapsed())
    });
    let (result, took) = result;
    let err = result.unwrap_err();
    match &err {
        Error::OutcomeUnknown {
            reason: CloseReason::Broken(why),
            ..
        } => assert!(why.contains("stopped reading"), "{why}"),
        other => panic!("{other}"),
    }
    assert!(took < Duration::from_secs(20), "{took:?}");
    // The write queue's bound (32 MiB), and no more.
    assert!(growth_mib < 100, "the client grew by {growth_mib} MiB");
    assert!(!s.is_alive());
    let err = s.call_tool("echo", json!({"text": "x"})).unwrap_err();
    assert!(matches!(err, Error::SessionClosed { .. }), "{err}");
    s.close();
}

#[test]
fn a_late_response_after_a_timeout_is_dropped() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[])).unwrap();
    let err = s
        .call_tool_with(
            "late",
            json!({"ms": 300}),
            CallOptions::new().timeout(Duration::from_millis(100)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // The answer still comes, to nobody; the next call gets its own answer, not that one.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(s.unmatched_responses(), 1);
    assert_eq!(
        s.call_tool("echo", json!({"text": "mine"})).unwrap().text(),
        "mine"
    );
    s.close();
}

#[test]
fn a_big_batch_given_up_on_a_server_that_stops_reading_is_withdrawn_at_once() {
    let _clean = Clean::new();
    let s = Session::start(fake(&[]).close_grace(Duration::from_millis(200))).unwrap();
    let pid = s.pid().unwrap();
    // The tool is known before the server stops reading (a batch lists tools first).
    assert_eq!(
        s.call_tool("add", json!({"a": 1, "b": 1})).unwrap().text(),
        "2"
    );
    let err = s
        .call_tool_with(
            "stop_reading",
            json!({}),
            CallOptions::new().timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // About 17 MB of requests (under the outbox limit): the pipe takes 64 KiB of them, the
    // rest waits in the outbox until the batch gives up, and is withdrawn in one pass (one
    // at a time, each moving what follows it, held the worker for more than 10 s).
    let calls: Vec<mcp_pool::ToolCall> = (0..50_000)
        .map(|i| mcp_pool::ToolCall::new("add", json!({"a": i, "b": 1})))
        .collect();
    let start = Instant::now();
    let results = s
        .batch(
            &calls,
            mcp_pool::BatchOptions::new().timeout(Duration::from_secs(2)),
        )
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(results.len(), calls.len());
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(Error::Timeout { .. }))));
    // The worker is free: it takes the close at once.
    let start = Instant::now();
    s.close();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(!process_exists(pid));
}

#[test]
fn a_batch_cancelled_while_it_is_written_out_sends_nothing() {
    let _clean = Clean::new();
    let record = common::temp_path("cancelled-batch.jsonl");
    let s = Session::start(fake(&["--record", record.to_str().unwrap()])).unwrap();
    assert_eq!(
        s.call_tool("add", json!({"a": 1, "b": 1})).unwrap().text(),
        "2"
    );
    // 64 MiB of request lines: writing them out takes far longer than the 5 ms before the
    // cancel.
    let pad = "p".repeat(16 << 10);
    let calls: Vec<mcp_pool::ToolCall> = (0..4000)
        .map(|i| mcp_pool::ToolCall::new("add", json!({"a": i, "b": 1, "pad": pad})))
        .collect();
    let cancel = CancelHandle::new();
    let results = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(5));
            cancel.cancel();
        });
        s.batch(
            &calls,
            mcp_pool::BatchOptions::new()
                .timeout(Duration::from_secs(60))
                .cancel_with(&cancel),
        )
        .unwrap()
    });
    for r in &results {
        assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    }
    assert_eq!(
        s.call_tool("add", json!({"a": 2, "b": 2})).unwrap().text(),
        "4"
    );
    assert_eq!(
        runs_recorded(&record, "add"),
        2,
        "only the two single calls reached the server"
    );
    s.close();
}

#[test]
fn a_batch_whose_deadline_passes_while_it_is_written_out_sends_nothing() {
    let _clean = Clean::new();
    let record = common::temp_path("late-batch.jsonl");
    let s = Session::start(fake(&["--record", record.to_str().unwrap()])).unwrap();
    let ran = |tool: &str| runs_recorded(&record, tool);
    assert_eq!(
        s.call_tool("add", json!({"a": 1, "b": 1})).unwrap().text(),
        "2"
    );
    // Big arguments, so that writing the lines out takes longer than the deadline.
    let pad = "p".repeat(16 << 10);
    let calls: Vec<mcp_pool::ToolCall> = (0..1100)
        .map(|i| mcp_pool::ToolCall::new("add", json!({"a": i, "b": 1, "pad": pad})))
        .collect();
    let results = s
        .batch(
            &calls,
            mcp_pool::BatchOptions::new().timeout(Duration::from_millis(1)),
        )
        .unwrap();
    assert_eq!(results.len(), calls.len());
    for r in &results {
        assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    }
    // The server has read all it was sent once it answers a call made after.
    assert_eq!(
        s.call_tool("add", json!({"a": 2, "b": 2})).unwrap().text(),
        "4"
    );
    assert_eq!(
        ran("add"),
        2,
        "only the two single calls reached the server"
    );
    s.close();
}
