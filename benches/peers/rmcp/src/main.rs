//! rmcp's client (the official async Rust MCP SDK) against the repository's fake MCP server,
//! measured like `../python_sdk.py`: one session; `echo` calls one at a time, then from 8, 64
//! and 256 concurrent tasks, each for a fixed interval. A multi-threaded tokio runtime with one
//! worker per core. Each figure comes with the client's CPU time and context switches per call
//! (`getrusage` of the whole process over the interval), as in mcp-pool's throughput bench.
//!
//! `rmcp-peer [--server PATH] [--seconds S] [--json]`

use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use rmcp::ServiceExt;
use serde_json::json;

/// Tasks making calls at once, after the sequential figure.
const CONCURRENCY: [usize; 3] = [8, 64, 256];

/// This process's CPU time (user + system, seconds) and context switches so far.
fn usage() -> (f64, u64) {
    // SAFETY: a plain C struct that getrusage fills in, and a valid pointer to it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    (
        tv(u.ru_utime) + tv(u.ru_stime),
        (u.ru_nvcsw + u.ru_nivcsw) as u64,
    )
}

/// CPU µs and context switches per call since `before`.
fn per_call(before: (f64, u64), calls: u64) -> (f64, f64) {
    let now = usage();
    let calls = calls.max(1) as f64;
    (
        (now.0 - before.0) * 1e6 / calls,
        (now.1 - before.1) as f64 / calls,
    )
}

fn params() -> CallToolRequestParams {
    let args = json!({"text": "hello"}).as_object().cloned().unwrap();
    CallToolRequestParams::new("echo").with_arguments(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut server = "target/release/mcp-fake-server".to_owned();
    let (mut seconds, mut as_json) = (2.0f64, false);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--server" => server = it.next().ok_or("--server needs a value")?,
            "--seconds" => seconds = it.next().ok_or("--seconds needs a value")?.parse()?,
            "--json" => as_json = true,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let interval = Duration::from_secs_f64(seconds);
    let (transport, _) = TokioChildProcess::builder(tokio::process::Command::new(&server))
        .stderr(Stdio::null())
        .spawn()?;
    let client = ().serve(transport).await?;
    let version = client
        .peer_info()
        .map(|i| i.protocol_version.to_string())
        .unwrap_or_default();
    let peer = client.peer().clone();
    for _ in 0..200 {
        peer.call_tool(params()).await?;
    }

    let mut latencies = Vec::new();
    let before = usage();
    let start = Instant::now();
    while start.elapsed() < interval {
        let t = Instant::now();
        let r = peer.call_tool(params()).await?;
        latencies.push(t.elapsed());
        assert_ne!(r.is_error, Some(true));
    }
    let sequential = latencies.len() as f64 / start.elapsed().as_secs_f64();
    let sequential_usage = per_call(before, latencies.len() as u64);
    latencies.sort();
    let p50 = latencies[latencies.len() / 2].as_secs_f64() * 1e3;

    let mut concurrent = Vec::new();
    let mut concurrent_usage = Vec::new();
    for tasks in CONCURRENCY {
        let before = usage();
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let peer = peer.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while start.elapsed() < interval {
                        peer.call_tool(params()).await.expect("call");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut calls = 0;
        for h in handles {
            calls += h.await?;
        }
        concurrent.push(calls as f64 / start.elapsed().as_secs_f64());
        concurrent_usage.push(per_call(before, calls));
    }
    client.cancel().await?;

    let client = "rmcp 3.11.0 (tokio, multi-threaded)";
    if as_json {
        let mut figures = json!({
            "client": client,
            "protocol_version": version,
            "sequential_p50_ms": p50,
            "sequential_per_s": sequential,
            "sequential_cpu_us_per_call": sequential_usage.0,
            "sequential_switches_per_call": sequential_usage.1,
        });
        for (i, tasks) in CONCURRENCY.iter().enumerate() {
            figures[format!("concurrent_{tasks}_per_s")] = json!(concurrent[i]);
            figures[format!("concurrent_{tasks}_cpu_us_per_call")] = json!(concurrent_usage[i].0);
            figures[format!("concurrent_{tasks}_switches_per_call")] = json!(concurrent_usage[i].1);
        }
        println!("{figures}");
    } else {
        println!("{client}, protocol {version}, {server}");
        let (cpu, sw) = sequential_usage;
        println!(
            "sequential: p50 {p50:.3} ms, {sequential:.0} calls/s, \
             {cpu:.1} µs CPU and {sw:.1} context switches per call"
        );
        for (i, tasks) in CONCURRENCY.iter().enumerate() {
            let (cpu, sw) = concurrent_usage[i];
            println!(
                "{tasks} concurrent tasks: {:.0} calls/s, \
                 {cpu:.1} µs CPU and {sw:.1} context switches per call",
                concurrent[i]
            );
        }
    }
    Ok(())
}
