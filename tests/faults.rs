//! A session against a misbehaving fake server: one test per fault, each asserting the exact
//! outcome and that no child, thread or file descriptor is left.

mod common;

use std::time::{Duration, Instant};

use common::{assert_clean, fake, group_members, process_exists, serial, snapshot};
use mcp_pool::{CallOptions, CloseReason, Error, Phase, ServerConfig, Session};
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
    let _g = serial();
    let before = snapshot();
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
    assert_clean(&before);
}

#[test]
fn a_garbage_line_is_counted_not_fatal() {
    let _g = serial();
    let before = snapshot();
    let s = Session::start(fake(&["--banner"])).unwrap();
    let r = s.call_tool("garbage", json!({})).unwrap();
    assert_eq!(r.text(), "ok");
    assert_eq!(s.invalid_lines(), 2, "the banner and the garbage line");
    s.close();
    assert_clean(&before);
}

#[test]
fn crlf_and_bom_are_tolerated() {
    let _g = serial();
    let before = snapshot();
    let s = Session::start(fake(&["--crlf", "--bom"])).unwrap();
    assert_eq!(
        s.call_tool("echo", json!({"text": "a"})).unwrap().text(),
        "a"
    );
    assert_eq!(s.invalid_lines(), 0);
    s.close();
    assert_clean(&before);
}

#[test]
fn an_oversize_answer_is_a_typed_error_and_the_session_goes_on() {
    let _g = serial();
    let before = snapshot();
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
    assert_clean(&before);
}

#[test]
fn a_stderr_flood_neither_blocks_nor_grows_the_tail() {
    let _g = serial();
    let before = snapshot();
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
    assert_clean(&before);
}

#[test]
fn a_slow_start_within_the_timeout_works() {
    let _g = serial();
    let before = snapshot();
    let s = Session::start(fake(&["--slow-start-ms", "600"])).unwrap();
    assert!(s.handshake_time() >= Duration::from_millis(600));
    assert_eq!(
        s.call_tool("echo", json!({"text": "x"})).unwrap().text(),
        "x"
    );
    s.close();
    assert_clean(&before);
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
    let _g = serial();
    let before = snapshot();
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
    assert_clean(&before);
}

#[test]
fn a_command_that_does_not_exist_is_a_spawn_error() {
    let _g = serial();
    let before = snapshot();
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
    assert_clean(&before);
}

#[test]
fn wrong_and_duplicate_ids_are_dropped() {
    let _g = serial();
    let before = snapshot();
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
    assert_clean(&before);
}

#[test]
fn closed_stdout_ends_the_session() {
    let _g = serial();
    let before = snapshot();
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
    assert_clean(&before);
}

#[test]
fn close_fails_calls_in_flight_at_once() {
    let _g = serial();
    let before = snapshot();
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
    assert_clean(&before);
}

#[test]
fn the_kill_ladder_ends_a_server_that_ignores_eof_and_sigterm() {
    let _g = serial();
    let before = snapshot();
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
    assert_clean(&before);
}

#[test]
fn the_whole_process_group_goes() {
    let _g = serial();
    let before = snapshot();
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
    assert_clean(&before);
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
    let _g = serial();
    let before = snapshot();
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
    assert_clean(&before);
}

#[test]
fn a_server_that_stops_reading_cannot_wedge_the_session() {
    let _g = serial();
    let before = snapshot();
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
    assert_clean(&before);
}

#[test]
fn a_late_response_after_a_timeout_is_dropped() {
    let _g = serial();
    let before = snapshot();
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
    assert_clean(&before);
}
