//! Warm sequential call latency: one caller, one call at a time, through a `Pool` and through a
//! bare `Session`, next to two floors measured in the same run on the same fake server binary:
//!
//! * the raw loop (`common::Raw`): write a line, read a line, on the calling thread; two
//!   threads per call (caller → server → caller), what any client must at least spend;
//! * the three-hop floor (`common::ThreeHop`): the calling thread hands the request line over
//!   a crossbeam channel to a writer thread, which writes it to the server's stdin, and reads
//!   the answer itself; three threads per call (caller → writer → server → caller), the best
//!   that mcp-pool's shape (the worker owns stdin, the caller reads) allows.
//!
//! Each row also has the client's CPU time and context switches per call (`getrusage` of the
//! whole process over its blocks: every thread, the worker's too; not the server's).
//!
//! `cargo bench --bench latency`. The four run in alternating blocks so that the noise of a
//! shared machine lands on all of them alike.

mod common;

use common::{ms, rate, ratio, table, Raw, Samples, ThreeHop, Usage};

fn main() {
    common::header("Warm sequential call latency");
    let (rounds, block) = if common::quick() {
        (3, 300)
    } else {
        (10, 3000)
    };

    let mut raw = Raw::start();
    let mut three = ThreeHop::start();
    let session = common::session();
    let pool = common::pool(1);
    // Warm up all four (page faults, branch predictors, the servers' allocators).
    for _ in 0..block {
        raw.call();
        three.call();
        common::session_call(&session);
        common::pool_call(&pool);
    }

    let mut samples: [Samples; 4] = Default::default();
    let mut usage = [Usage::default(); 4];
    common::rounds::<4>(rounds, |k| {
        let s = &mut samples[k];
        usage[k] += match k {
            0 => common::time_n(s, block, || raw.call()),
            1 => common::time_n(s, block, || three.call()),
            2 => common::time_n(s, block, || common::session_call(&session)),
            _ => common::time_n(s, block, || common::pool_call(&pool)),
        };
    });
    raw.close();
    three.close();
    session.close();
    pool.close();

    let raw_p50 = samples[0].p50().as_secs_f64();
    let three_p50 = samples[1].p50().as_secs_f64();
    let names = [
        "raw write-line/read-line loop (floor: 2 threads per call)",
        "three-hop floor: writer thread over a channel, caller reads (3 threads per call)",
        "`Session::call_tool`",
        "`Pool::call_tool`",
    ];
    let mut rows = Vec::new();
    let mut p50s = Vec::new();
    for ((name, s), usage) in names.into_iter().zip(samples.iter_mut()).zip(usage) {
        let (p50, p99, mean) = (s.p50(), s.p99(), s.mean());
        p50s.push(p50.as_secs_f64());
        let calls = s.len() as f64;
        rows.push(vec![
            name.to_owned(),
            s.len().to_string(),
            ms(p50),
            ms(s.q(0.9)),
            ms(p99),
            ms(mean),
            rate(1.0 / mean.as_secs_f64()),
            ratio(p50.as_secs_f64(), raw_p50),
            ratio(p50.as_secs_f64(), three_p50),
            usage.cpu_per(calls),
            usage.switches_per(calls),
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
            "p50 vs raw loop",
            "p50 vs three-hop floor",
            "client CPU per call",
            "client context switches per call",
        ],
        &rows,
    );
    println!(
        "Client CPU time and context switches are this process's (getrusage), all threads, over \
         the blocks: a context switch is a thread that blocked to wait (or was preempted). The \
         servers' are not counted.\n"
    );
    let pool_raw = p50s[3] / p50s[0];
    let pool_three = p50s[3] / p50s[1];
    println!(
        "target: pool p50 ≤ 1.5× the raw loop: {pool_raw:.2}×, {}",
        common::verdict(pool_raw <= 1.5)
    );
    println!(
        "pool p50 against what the three-hop shape allows: {pool_three:.2}× the three-hop floor; \
         the shape itself costs {:.2}× the raw loop",
        p50s[1] / p50s[0]
    );
    common::emit_json(
        "latency",
        serde_json::json!({
            "raw_p50_ms": p50s[0] * 1e3,
            "three_hop_p50_ms": p50s[1] * 1e3,
            "session_p50_ms": p50s[2] * 1e3,
            "pool_p50_ms": p50s[3] * 1e3,
        }),
    );
}
