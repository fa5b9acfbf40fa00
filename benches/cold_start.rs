//! Cold start (spawn + handshake + first call) and spawn-per-call, next to the floor measured
//! in the same run: the raw cold start (spawn the fake server, write `initialize`, read the
//! answer, call, close stdin, wait for the exit).
//!
//! `cargo bench --bench cold_start`.

mod common;

use std::time::{Duration, Instant};

use common::{ms, ratio, table, Samples};
use mcp_pool::{Generation, Pool, Session};

/// A cold call: (time to the first result, time until the child is reaped, or zero).
type ColdCall<'a> = dyn Fn() -> (Duration, Duration) + 'a;

/// Starts, calls once, closes: (time to the first result, time until the child is reaped).
fn session_cold(generation: Generation) -> (Duration, Duration) {
    let start = Instant::now();
    let session = Session::start(common::config().generation(generation)).unwrap();
    common::session_call(&session);
    let first = start.elapsed();
    session.close();
    (first, start.elapsed())
}

fn pool_cold() -> (Duration, Duration) {
    let start = Instant::now();
    let pool = Pool::builder().server(common::config()).build().unwrap();
    common::pool_call(&pool);
    let first = start.elapsed();
    pool.close();
    (first, start.elapsed())
}

fn main() {
    common::header("Cold start and spawn-per-call");
    let (rounds, per_round) = if common::quick() { (2, 5) } else { (10, 20) };
    let direct = Pool::builder().server(common::config()).build().unwrap();
    let direct_call = || {
        let start = Instant::now();
        let r = direct
            .call_tool_direct(common::SERVER, "echo", common::echo_args())
            .unwrap();
        assert!(!r.is_error);
        // It returns with the result; the session closes in the background.
        (start.elapsed(), Duration::ZERO)
    };
    let subjects: [(&str, &ColdCall<'_>); 5] = [
        ("raw cold start (floor)", &common::raw_cold),
        (
            "`Session::start` + call + close (handshake generation)",
            &|| session_cold(Generation::Handshake),
        ),
        (
            "`Session::start` + call + close (auto: probes `server/discover`)",
            &|| session_cold(Generation::Auto),
        ),
        ("new `Pool` + first call + `close`", &pool_cold),
        (
            "`Pool::call_tool_direct` (spawn per call; closes in the background)",
            &direct_call,
        ),
    ];
    for (_, f) in &subjects {
        f();
    }
    let mut first: [Samples; 5] = Default::default();
    let mut total: [Samples; 5] = Default::default();
    common::rounds::<5>(rounds, |k| {
        for _ in 0..per_round {
            let (a, b) = subjects[k].1();
            first[k].push(a);
            if b > Duration::ZERO {
                total[k].push(b);
            }
        }
    });
    // Waits for the direct calls' sessions still closing.
    direct.close();

    let floor_first = first[0].p50().as_secs_f64();
    let floor_total = total[0].p50().as_secs_f64();
    let mut rows = Vec::new();
    for (k, (name, _)) in subjects.iter().enumerate() {
        let (f, t) = (&mut first[k], &mut total[k]);
        let reaped = t.len() > 0;
        let dash = || "—".to_string();
        rows.push(vec![
            name.to_string(),
            f.len().to_string(),
            ms(f.p50()),
            ms(f.p99()),
            ratio(f.p50().as_secs_f64(), floor_first),
            if reaped { ms(t.p50()) } else { dash() },
            if reaped { ms(t.p99()) } else { dash() },
            if reaped {
                ratio(t.p50().as_secs_f64(), floor_total)
            } else {
                dash()
            },
        ]);
    }
    table(
        &[
            "cold call",
            "runs",
            "first result p50",
            "p99",
            "vs floor",
            "until reaped p50",
            "p99",
            "vs floor",
        ],
        &rows,
    );
    common::emit_json(
        "cold_start",
        serde_json::json!({
            "raw_first_ms": floor_first * 1e3,
            "raw_total_ms": floor_total * 1e3,
            "session_first_ms": first[1].p50().as_secs_f64() * 1e3,
            "direct_ms": first[4].p50().as_secs_f64() * 1e3,
        }),
    );
}
