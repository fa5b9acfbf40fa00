//! Session speed against the fake server, each figure next to its floor measured in the same
//! run: a raw write-line/read-line loop on the same server binary.
//!
//! Run with `cargo bench --bench session`. Prints a table; `MCP_BENCH_CALLS` sets the number
//! of calls per figure (default 20000).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mcp_pool::{Generation, ServerConfig, Session};
use serde_json::json;

const FAKE: &str = env!("CARGO_BIN_EXE_mcp-fake-server");

fn calls() -> usize {
    std::env::var("MCP_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Figure {
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

fn summarize(mut samples: Vec<Duration>, total: Duration) -> Figure {
    samples.sort();
    Figure {
        p50: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        per_sec: samples.len() as f64 / total.as_secs_f64(),
    }
}

/// The floor: our own minimal client, a line out and a line in, no session machinery.
fn raw_loop(n: usize) -> Figure {
    let mut child = Command::new(FAKE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"raw","version":"0"}}}}}}"#).unwrap();
    stdout.read_line(&mut line).unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
    )
    .unwrap();
    let mut samples = Vec::with_capacity(n);
    let warmup = n / 10;
    let mut total = Duration::ZERO;
    for i in 0..n + warmup {
        let start = Instant::now();
        let req = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"hello"}}}}}}"#,
            i + 1
        );
        stdin.write_all(req.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        let took = start.elapsed();
        assert!(line.contains("hello"));
        if i >= warmup {
            samples.push(took);
            total += took;
        }
    }
    drop(stdin);
    child.wait().unwrap();
    summarize(samples, total)
}

fn session() -> Session {
    Session::start(ServerConfig::new("bench", FAKE).generation(Generation::Handshake)).unwrap()
}

fn sequential(s: &Session, n: usize) -> Figure {
    let args = json!({"text": "hello"});
    let mut samples = Vec::with_capacity(n);
    let warmup = n / 10;
    let mut total = Duration::ZERO;
    for i in 0..n + warmup {
        let start = Instant::now();
        let r = s.call_tool("echo", args.clone()).unwrap();
        let took = start.elapsed();
        assert!(!r.is_error);
        if i >= warmup {
            samples.push(took);
            total += took;
        }
    }
    summarize(samples, total)
}

fn threaded(s: &Session, threads: usize, n: usize) -> f64 {
    let per_thread = (n / threads).max(1);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let args = json!({"text": "hello"});
                for _ in 0..per_thread {
                    s.call_tool("echo", args.clone()).unwrap();
                }
            });
        }
    });
    (per_thread * threads) as f64 / start.elapsed().as_secs_f64()
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = if quick { 200 } else { calls() };
    println!(
        "session benchmark: {n} calls per figure, fake server, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let raw = raw_loop(n);
    let s = session();
    let seq = sequential(&s, n);
    println!("| figure | p50 | p99 | calls/s | vs raw loop (p50) |");
    println!("|---|---|---|---|---|");
    println!(
        "| raw write-line/read-line loop (floor) | {} | {} | {:.0} | 1.00× |",
        ms(raw.p50),
        ms(raw.p99),
        raw.per_sec
    );
    println!(
        "| warm sequential call_tool | {} | {} | {:.0} | {:.2}× |",
        ms(seq.p50),
        ms(seq.p99),
        seq.per_sec,
        seq.p50.as_secs_f64() / raw.p50.as_secs_f64()
    );
    for threads in [1, 8, 64] {
        let rate = threaded(&s, threads, n);
        println!(
            "| {threads} threads on one session | | | {rate:.0} | {:.2}× raw calls/s |",
            rate / raw.per_sec
        );
    }
    s.close();
}
