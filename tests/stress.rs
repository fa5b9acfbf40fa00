//! 64 threads calling 4 servers at once while their processes are killed under them: every
//! call ends in its own answer or a typed error within its deadline (never "session closed":
//! a request that was never written is retried on another session); no deadlock, no lost or
//! crossed reply, nothing left behind.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{children, Clean, FAKE};
use mcp_pool::{CallOptions, Error, Pool, PoolSettings, ServerConfig};
use serde_json::json;

const THREADS: usize = 64;
const CALLS: usize = 150;

#[test]
fn sixty_four_threads_four_servers_sessions_killed_under_them() {
    let _clean = Clean::new();
    let mut builder = Pool::builder();
    for i in 0..4 {
        builder = builder.server_with(
            ServerConfig::new(format!("s{i}"), FAKE).close_grace(Duration::from_millis(200)),
            PoolSettings::new()
                .max_sessions(2)
                .failure_threshold(1000)
                .backoff(Duration::from_millis(1), Duration::from_millis(10)),
        );
    }
    let pool = builder.build().unwrap();
    let deadline = Duration::from_secs(5);
    let done = AtomicBool::new(false);
    let (ok, failed, kills) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let start = Instant::now();
    std::thread::scope(|scope| {
        // Stops the killer when the workers are done, or when one fails (a hang otherwise).
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let _done = Done(&done);
        // Kill a random server process every 25 ms.
        scope.spawn(|| {
            let mut n = 0usize;
            while !done.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(25));
                let live: Vec<u32> = children().into_iter().collect();
                if live.is_empty() {
                    continue;
                }
                n = n.wrapping_mul(31).wrapping_add(7);
                let victim = live[n % live.len()];
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &victim.to_string()])
                    .status();
                kills.fetch_add(1, Ordering::Relaxed);
            }
        });
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let pool = &pool;
                let (ok, failed) = (&ok, &failed);
                scope.spawn(move || {
                    for i in 0..CALLS {
                        let server = format!("s{}", (t + i) % 4);
                        let want = format!("t{t}-c{i}");
                        let (tool, args) = if i % 5 == 0 {
                            ("slow_read", json!({"ms": 20}))
                        } else {
                            ("echo", json!({ "text": want }))
                        };
                        let began = Instant::now();
                        let result = pool.call_tool_with(
                            &server,
                            tool,
                            args,
                            CallOptions::new().timeout(deadline),
                        );
                        let took = began.elapsed();
                        // Within its deadline (plus scheduling slack on 2 cores).
                        assert!(
                            took < deadline + Duration::from_secs(2),
                            "{tool} took {took:?}"
                        );
                        match result {
                            Ok(r) => {
                                let expected = if tool == "echo" {
                                    want
                                } else {
                                    "slept 20".into()
                                };
                                assert_eq!(r.text(), expected, "a reply reached the wrong caller");
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                // Never `SessionClosed`: a request that was never written
                                // goes to another session (not the one that just failed).
                                assert!(
                                    matches!(
                                        e,
                                        Error::OutcomeUnknown { .. }
                                            | Error::Handshake { .. }
                                            | Error::Timeout { .. }
                                    ),
                                    "unexpected error kind: {tool} on {server}: {e}"
                                );
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        let failed_workers = workers
            .into_iter()
            .map(|w| w.join())
            .filter(Result::is_err)
            .count();
        assert_eq!(failed_workers, 0, "worker threads failed");
    });
    let (ok, failed, kills) = (ok.into_inner(), failed.into_inner(), kills.into_inner());
    let stats = pool.stats();
    eprintln!(
        "stress: {ok} ok, {failed} failed, {kills} kills in {:?}; crashes {}, retries {}, spawns {}; errors {:?}",
        start.elapsed(),
        stats.total.crashes,
        stats.total.retries,
        stats.total.spawns,
        stats.total.errors
    );
    assert_eq!(ok + failed, THREADS * CALLS, "every call ended");
    assert!(
        kills > 0 && stats.total.crashes > 0,
        "processes were killed under the calls"
    );
    assert!(
        ok > THREADS * CALLS / 2,
        "most calls succeed (read-only calls are retried)"
    );
    assert_eq!(stats.total.calls as usize, THREADS * CALLS);
    assert_eq!(
        stats.total.errors.get("session_closed"),
        None,
        "{:?}",
        stats.total.errors
    );
    pool.close();
    assert_eq!(pool.live_children(), 0);
}
