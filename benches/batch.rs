//! A batch of 100 calls on one session (`Pool::batch`, `Session::batch`), next to the
//! same 100 calls made one by one, and next to the floor measured in the same run: a raw
//! pipelined window (100 request lines in one write, then 100 answer lines). The floor and the
//! two batches of 100 take turns one batch at a time; the other rows run in blocks. Each row
//! also has the client's CPU time and context switches per call (`getrusage`, all threads).
//!
//! `cargo bench --bench batch`.

mod common;

use std::time::Duration;

use common::{ms, rate, ratio, table, Raw, Samples, Usage};
use mcp_pool::{BatchOptions, ToolCall};

const BATCH: usize = 100;
/// A batch whose request lines (about 110 bytes each) overflow the 64 KiB pipe.
const BIG: usize = 1000;

fn main() {
    common::header("A batch of 100 calls on one session");
    let (rounds, per_round) = if common::quick() { (3, 10) } else { (10, 60) };

    let mut raw = Raw::start();
    let session = common::session();
    let pool = common::pool(1);
    let calls: Vec<ToolCall> = (0..BATCH)
        .map(|_| ToolCall::new("echo", common::echo_args()))
        .collect();
    let pool_batch = || {
        for r in pool
            .batch(common::SERVER, &calls, BatchOptions::new())
            .unwrap()
        {
            assert!(!r.unwrap().is_error);
        }
    };
    let session_batch = || {
        for r in session.batch(&calls, BatchOptions::new()).unwrap() {
            assert!(!r.unwrap().is_error);
        }
    };
    let big: Vec<ToolCall> = (0..BIG)
        .map(|_| ToolCall::new("echo", common::echo_args()))
        .collect();
    let pool_big_batch = || {
        for r in pool
            .batch(common::SERVER, &big, BatchOptions::new())
            .unwrap()
        {
            assert!(!r.unwrap().is_error);
        }
    };
    let pool_sequential = || {
        for _ in 0..BATCH {
            common::pool_call(&pool);
        }
    };
    for _ in 0..per_round {
        raw.window(BATCH);
        pool_batch();
        session_batch();
        pool_sequential();
    }
    pool_big_batch();

    let mut samples: [Samples; 6] = Default::default();
    let mut usage = [Usage::default(); 6];
    // The three batches of 100 (the floor, `Pool::batch`, `Session::batch`) take turns
    // one batch at a time: each has its own server process, and in blocks of runs the
    // one whose server the scheduler happens to put on the client's core would pay for
    // it alone (block after block: its CPU per call stays the same while its time grows).
    common::rounds::<4>(rounds, |k| match k {
        0 => {
            for i in 0..per_round {
                for j in 0..3 {
                    let j = (i + j) % 3;
                    let s = &mut samples[j];
                    usage[j] += match j {
                        0 => common::time_n(s, 1, || raw.window(BATCH)),
                        1 => common::time_n(s, 1, pool_batch),
                        _ => common::time_n(s, 1, session_batch),
                    };
                }
            }
        }
        1 => usage[3] += common::time_n(&mut samples[3], per_round, pool_sequential),
        2 => usage[4] += common::time_n(&mut samples[4], per_round.div_ceil(10), pool_big_batch),
        _ => {
            usage[5] += common::time_n(&mut samples[5], per_round, || {
                for _ in 0..BATCH {
                    raw.call();
                }
            })
        }
    });
    raw.close();
    session.close();
    pool.close();

    let names = [
        "raw pipelined window of 100 (floor)",
        "`Pool::batch` of 100",
        "`Session::batch` of 100",
        "100 sequential `Pool::call_tool`",
        "`Pool::batch` of 1000 (its 110 kB of requests overflow the 64 KiB pipe), per 100",
        "100 sequential raw calls",
    ];
    let floor = samples[0].p50().as_secs_f64();
    let mut per_sec = Vec::new();
    let rows: Vec<Vec<String>> = names
        .iter()
        .zip(samples.iter_mut())
        .enumerate()
        .map(|(k, (name, s))| {
            // The big batch is timed whole; its row shows the time per 100 calls.
            let per100 = if k == 4 { (BIG / BATCH) as u32 } else { 1 };
            let calls = (s.len() * BATCH * per100 as usize) as f64;
            let (p50, p99) = (s.p50() / per100, s.p99() / per100);
            let p50 = p50.as_secs_f64();
            per_sec.push(BATCH as f64 / p50);
            vec![
                name.to_string(),
                s.len().to_string(),
                ms(Duration::from_secs_f64(p50)),
                ms(p99),
                rate(BATCH as f64 / p50),
                ratio(floor, p50),
                usage[k].cpu_per(calls),
                usage[k].switches_per(calls),
            ]
        })
        .collect();
    table(
        &[
            "100 calls",
            "runs",
            "p50 for 100",
            "p99 for 100",
            "calls/s (at p50)",
            "speed vs floor",
            "client CPU per call",
            "client context switches per call",
        ],
        &rows,
    );
    println!(
        "Client CPU time and context switches are this process's (getrusage), all threads, \
         over the timed runs; the server's are not counted.\n"
    );
    let r = per_sec[1] / per_sec[0];
    println!(
        "target: a batch of 100 ≥ 0.8× the raw pipelined window: {r:.2}×, {}",
        common::verdict(r >= 0.8)
    );
    common::emit_json(
        "batch",
        serde_json::json!({
            "raw_window_per_s": per_sec[0],
            "pool_batch_per_s": per_sec[1],
            "session_batch_per_s": per_sec[2],
            "pool_sequential_per_s": per_sec[3],
            "pool_batch_1000_per_s": per_sec[4],
        }),
    );
}
