//! Throughput with 1, 8, 64 and 256 caller threads on one session and on four sessions of one
//! server, through the pool. Floors in the same run: the raw loop (one thread, one server) and
//! four raw loops on four threads and four servers. Each row also has the client's CPU time
//! and context switches per call (`getrusage` of the whole process over the interval: every
//! thread, callers and workers; not the servers).
//!
//! `cargo bench --bench throughput`. Each figure is the median of several timed intervals,
//! the configurations taking turns. With `MCP_BENCH_JSON=1` it prints the line that
//! `benches/peers/compare.py` reads.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::{rate, ratio, table, Raw, Samples, Usage};
use mcp_pool::Pool;

/// Calls per second of `threads` threads running `call(thread)` for `interval`; the first
/// thread's per-call latencies go to `latencies` when given.
fn measure(
    threads: usize,
    interval: Duration,
    call: &(dyn Fn(usize) + Sync),
    latencies: Option<&mut Samples>,
) -> f64 {
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(threads + 1);
    let timed = latencies.is_some();
    let (calls, elapsed, first) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (stop, barrier) = (&stop, &barrier);
                scope.spawn(move || {
                    let mut mine = Samples::default();
                    let mut n = 0u64;
                    barrier.wait();
                    while !stop.load(Ordering::Relaxed) {
                        let start = Instant::now();
                        call(t);
                        if timed && t == 0 {
                            mine.push(start.elapsed());
                        }
                        n += 1;
                    }
                    (n, mine)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        std::thread::sleep(interval);
        stop.store(true, Ordering::Relaxed);
        let mut calls = 0;
        let mut first = Samples::default();
        for (t, h) in handles.into_iter().enumerate() {
            let (n, mine) = h.join().expect("a bench thread panicked");
            calls += n;
            if t == 0 {
                first = mine;
            }
        }
        (calls, start.elapsed(), first)
    });
    if let Some(out) = latencies {
        out.extend(&first);
    }
    calls as f64 / elapsed.as_secs_f64()
}

/// [`measure`], and this process's CPU time (µs) and context switches per call. The
/// threads' start and end fall inside the reading: with 256 threads that is a few
/// milliseconds of an interval of hundreds.
fn measure_usage(
    threads: usize,
    interval: Duration,
    call: &(dyn Fn(usize) + Sync),
    latencies: Option<&mut Samples>,
) -> (f64, f64, f64) {
    let before = common::usage();
    let start = Instant::now();
    let rate = measure(threads, interval, call, latencies);
    let calls = (rate * start.elapsed().as_secs_f64()).max(1.0);
    let Usage { cpu, switches } = common::usage().since(before);
    (
        rate,
        cpu.as_secs_f64() * 1e6 / calls,
        switches as f64 / calls,
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    common::header("Throughput: caller threads on one and on four sessions");
    let (rounds, interval) = if common::quick() {
        (2, Duration::from_millis(150))
    } else {
        (5, Duration::from_millis(600))
    };

    // The floors: raw loops, one per thread and server.
    let raws: Vec<std::sync::Mutex<Raw>> = (0..4).map(|_| Raw::start().into()).collect();
    let raw_call = |t: usize| raws[t].lock().unwrap().call();
    let one = common::pool(1);
    let four = common::pool(4);
    let pool_call = |p: &Pool| common::pool_call(p);

    let thread_counts = [1usize, 8, 64, 256];
    // Subjects: 0 = raw ×1, 1 = raw ×4, then (pool, threads) pairs.
    let mut subjects: Vec<(String, usize, Option<&Pool>)> = vec![
        ("raw loop, 1 thread, 1 server (floor)".into(), 1, None),
        ("raw loops, 4 threads, 4 servers (floor)".into(), 4, None),
    ];
    for (pool, sessions) in [(&one, 1), (&four, 4)] {
        for &threads in &thread_counts {
            let plural = |n: usize| if n == 1 { "" } else { "s" };
            subjects.push((
                format!(
                    "pool, {threads} thread{}, {sessions} session{}",
                    plural(threads),
                    plural(sessions)
                ),
                threads,
                Some(pool),
            ));
        }
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    let mut switches: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    let mut seq_latency = Samples::default();
    // Warm-up.
    for (_, threads, pool) in &subjects {
        match pool {
            Some(p) => measure(*threads, interval / 4, &|_| pool_call(p), None),
            None => measure(*threads, interval / 4, &raw_call, None),
        };
    }
    for round in 0..rounds {
        for k in 0..subjects.len() {
            let i = (round + k) % subjects.len();
            let (_, threads, pool) = &subjects[i];
            let lat = (i == 2).then_some(&mut seq_latency);
            let (r, cpu, sw) = match pool {
                Some(p) => measure_usage(*threads, interval, &|_| pool_call(p), lat),
                None => measure_usage(*threads, interval, &raw_call, None),
            };
            rates[i].push(r);
            cpus[i].push(cpu);
            switches[i].push(sw);
        }
    }
    for raw in raws {
        raw.into_inner().unwrap().close();
    }
    one.close();
    four.close();

    let spread: Vec<String> = rates
        .iter()
        .map(|r| {
            let (lo, hi) = r
                .iter()
                .fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
            format!("{}–{}", rate(lo), rate(hi))
        })
        .collect();
    let rates: Vec<f64> = rates.into_iter().map(median).collect();
    let switches: Vec<f64> = switches.into_iter().map(median).collect();
    let cpus: Vec<f64> = cpus.into_iter().map(median).collect();
    let rows: Vec<Vec<String>> = subjects
        .iter()
        .zip(&rates)
        .zip(cpus.iter().zip(&switches))
        .zip(&spread)
        .map(|((((name, _, pool), r), (cpu, sw)), spread)| {
            let floor = if name.contains("4 session") || name.contains("4 servers") {
                rates[1]
            } else {
                rates[0]
            };
            let vs = if pool.is_none() && floor == *r {
                "1.00×".into()
            } else {
                ratio(*r, floor)
            };
            vec![
                name.clone(),
                rate(*r),
                spread.clone(),
                vs,
                format!("{cpu:.1} µs"),
                format!("{sw:.1}"),
            ]
        })
        .collect();
    table(
        &[
            "callers",
            "calls/s (median)",
            "range over rounds",
            "vs its floor",
            "client CPU per call",
            "client context switches per call",
        ],
        &rows,
    );
    println!(
        "Client CPU time and context switches are this process's (getrusage), all threads, \
         median over the rounds; the servers' are not counted. The floors are one thread per \
         server: no caller waits there.\n"
    );
    let one_session: Vec<f64> = rates[3..5].to_vec();
    let worst = one_session.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "target: 8–64 threads on one session ≥ 50,000 calls/s: {} calls/s at worst, {}",
        rate(worst),
        common::verdict(worst >= 50_000.0)
    );
    println!(
        "256 threads on one session: {} calls/s ({} of 64 threads')",
        rate(rates[5]),
        ratio(rates[5], rates[4])
    );
    common::emit_json(
        "throughput",
        serde_json::json!({
            "raw_1": rates[0],
            "raw_4": rates[1],
            "one_session": {"1": rates[2], "8": rates[3], "64": rates[4], "256": rates[5]},
            "four_sessions": {"1": rates[6], "8": rates[7], "64": rates[8], "256": rates[9]},
            "one_session_cpu_us_per_call": {
                "1": cpus[2], "8": cpus[3], "64": cpus[4], "256": cpus[5],
            },
            "one_session_switches_per_call": {
                "1": switches[2], "8": switches[3], "64": switches[4], "256": switches[5],
            },
            "raw_1_cpu_us_per_call": cpus[0],
            "raw_1_switches_per_call": switches[0],
            "sequential_p50_ms": seq_latency.p50().as_secs_f64() * 1e3,
        }),
    );
}
