//! Warm sequential call latency: one caller, one call at a time, through a `Pool` and through a
//! bare `Session`, next to the floor measured in the same run: a raw write-line/read-line loop
//! on the same fake server binary (`common::Raw`).
//!
//! `cargo bench --bench latency`. The three run in alternating blocks so that the noise of a
//! shared machine lands on all of them alike.

mod common;

use common::{ms, rate, ratio, table, Raw, Samples};

fn main() {
    common::header("Warm sequential call latency");
    let (rounds, block) = if common::quick() {
        (3, 300)
    } else {
        (10, 3000)
    };

    let mut raw = Raw::start();
    let session = common::session();
    let pool = common::pool(1);
    // Warm up all three (page faults, branch predictors, the servers' allocators).
    for _ in 0..block {
        raw.call();
        common::session_call(&session);
        common::pool_call(&pool);
    }

    let mut samples = [Samples::default(), Samples::default(), Samples::default()];
    let mut switches = [0u64; 3];
    common::rounds::<3>(rounds, |k| {
        let s = &mut samples[k];
        switches[k] += match k {
            0 => common::time_n(s, block, || raw.call()),
            1 => common::time_n(s, block, || common::session_call(&session)),
            _ => common::time_n(s, block, || common::pool_call(&pool)),
        };
    });
    raw.close();
    session.close();
    pool.close();

    let [mut raw_s, session_s, pool_s] = samples;
    let (raw_p50, raw_mean) = (raw_s.p50().as_secs_f64(), raw_s.mean().as_secs_f64());
    let names = [
        "raw write-line/read-line loop (floor)",
        "`Session::call_tool`",
        "`Pool::call_tool`",
    ];
    let mut rows = Vec::new();
    let mut p50s = Vec::new();
    let subjects = names
        .into_iter()
        .zip([raw_s, session_s, pool_s])
        .zip(switches);
    for ((name, mut s), switches) in subjects {
        let (p50, p99, mean) = (s.p50(), s.p99(), s.mean());
        p50s.push(p50.as_secs_f64());
        rows.push(vec![
            name.to_owned(),
            s.len().to_string(),
            ms(p50),
            ms(s.q(0.9)),
            ms(p99),
            ms(mean),
            rate(1.0 / mean.as_secs_f64()),
            ratio(p50.as_secs_f64(), raw_p50),
            ratio(mean.as_secs_f64(), raw_mean),
            format!("{:.1}", switches as f64 / s.len() as f64),
        ]);
    }
    table(
        &[
            "one call at a time",
            "calls",
            "p50",
            "p90",
            "p99",
            "mean",
            "calls/s",
            "p50 vs floor",
            "mean vs floor",
            "client context switches per call",
        ],
        &rows,
    );
    let pool_ratio = p50s[2] / p50s[0];
    println!(
        "Context switches are this process's (getrusage), all threads: each is a thread that \
         blocked to wait (or was preempted).\n"
    );
    println!(
        "target: pool p50 ≤ 1.25× the raw loop: {:.2}×, {}",
        pool_ratio,
        common::verdict(pool_ratio <= 1.25)
    );
    common::emit_json(
        "latency",
        serde_json::json!({
            "raw_p50_ms": p50s[0] * 1e3,
            "session_p50_ms": p50s[1] * 1e3,
            "pool_p50_ms": p50s[2] * 1e3,
        }),
    );
}
