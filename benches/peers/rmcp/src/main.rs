//! rmcp's client (the official async Rust MCP SDK) against the repository's fake MCP server,
//! measured like `../python_sdk.py`: one session; `echo` calls one at a time, then from 8 and
//! 64 concurrent tasks, each for a fixed interval. A multi-threaded tokio runtime with one
//! worker per core.
//!
//! `rmcp-peer [--server PATH] [--seconds S] [--json]`

use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use rmcp::ServiceExt;
use serde_json::json;

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
    let start = Instant::now();
    while start.elapsed() < interval {
        let t = Instant::now();
        let r = peer.call_tool(params()).await?;
        latencies.push(t.elapsed());
        assert_ne!(r.is_error, Some(true));
    }
    let sequential = latencies.len() as f64 / start.elapsed().as_secs_f64();
    latencies.sort();
    let p50 = latencies[latencies.len() / 2].as_secs_f64() * 1e3;

    let mut concurrent = Vec::new();
    for tasks in [8, 64] {
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
    }
    client.cancel().await?;

    let client = "rmcp 3.11.0 (tokio, multi-threaded)";
    if as_json {
        let figures = json!({
            "client": client,
            "protocol_version": version,
            "sequential_p50_ms": p50,
            "sequential_per_s": sequential,
            "concurrent_8_per_s": concurrent[0],
            "concurrent_64_per_s": concurrent[1],
        });
        println!("{figures}");
    } else {
        println!("{client}, protocol {version}, {server}");
        println!("sequential: p50 {p50:.3} ms, {sequential:.0} calls/s");
        println!("8 concurrent tasks: {:.0} calls/s", concurrent[0]);
        println!("64 concurrent tasks: {:.0} calls/s", concurrent[1]);
    }
    Ok(())
}
