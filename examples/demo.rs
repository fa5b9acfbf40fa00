//! What a live session buys: the same tool calls made by starting a server per call, and
//! through one warm session, one by one and from 8 threads.
//!
//! ```text
//! cargo run --release --example demo
//! cargo run --release --example demo -- --calls 2000
//! cargo run --release --example demo -- --server-command 'node server.js stdio' --tool echo --args '{"message":"hi"}'
//! ```
//!
//! Without `--server-command` it runs against the repository's own fake MCP server, embedded
//! in this example and started as a child process (the example runs itself with
//! `--fake-server`), so nothing but the Rust toolchain is needed.

use std::io::Write;
use std::time::{Duration, Instant};

use mcp_pool::{Error, ServerConfig, Session};
use serde_json::{json, Value};

#[path = "../src/bin/mcp-fake-server.rs"]
#[allow(dead_code)] // its own `main` is not used here
mod fake_server;

struct Options {
    calls: usize,
    command: Vec<String>,
    tool: String,
    args: Value,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        calls: 1000,
        command: Vec::new(),
        tool: "echo".into(),
        args: json!({"text": "hello"}),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--calls" => {
                o.calls = value("--calls")?
                    .parse()
                    .map_err(|e| format!("--calls: {e}"))?
            }
            "--server-command" => {
                o.command = value("--server-command")?
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            }
            "--tool" => o.tool = value("--tool")?,
            "--args" => {
                o.args = serde_json::from_str(&value("--args")?)
                    .map_err(|e| format!("--args is not JSON: {e}"))?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.calls == 0 {
        return Err("--calls must be at least 1".into());
    }
    if o.command.is_empty() {
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        o.command = vec![me.to_string_lossy().into_owned(), "--fake-server".into()];
    }
    Ok(o)
}

fn config(o: &Options) -> ServerConfig {
    ServerConfig::new("demo", &o.command[0]).args(o.command[1..].iter().cloned())
}

struct Row {
    mode: &'static str,
    calls: usize,
    total: Duration,
    samples: Vec<Duration>,
}

impl Row {
    fn pct(&mut self, p: f64) -> Duration {
        self.samples.sort();
        self.samples[((self.samples.len() - 1) as f64 * p) as usize]
    }
}

fn timed(
    mode: &'static str,
    calls: usize,
    mut f: impl FnMut() -> Result<(), Error>,
) -> Result<Row, Error> {
    let mut samples = Vec::with_capacity(calls);
    let start = Instant::now();
    for i in 0..calls {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed());
        if calls >= 20 && i % (calls / 20) == 0 {
            eprint!(".");
            let _ = std::io::stderr().flush();
        }
    }
    Ok(Row {
        mode,
        calls,
        total: start.elapsed(),
        samples,
    })
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let o = parse()?;
    println!(
        "server: {}   tool: {} {}",
        o.command.join(" "),
        o.tool,
        o.args
    );
    let mut rows = Vec::new();

    // Spawn per call: what many programs do. Fewer calls: each costs a process start.
    let cold_calls = o.calls.min(50);
    eprint!("spawn per call ({cold_calls} calls) ");
    rows.push(timed("spawn per call", cold_calls, || {
        let s = Session::start(config(&o))?;
        let r = s.call_tool(&o.tool, o.args.clone());
        s.close();
        r.map(drop)
    })?);
    eprintln!();

    let session = Session::start(config(&o))?;
    eprint!("one session, sequential ({} calls) ", o.calls);
    rows.push(timed("one session, sequential", o.calls, || {
        session.call_tool(&o.tool, o.args.clone()).map(drop)
    })?);
    eprintln!();

    eprintln!("one session, 8 threads ({} calls)", o.calls);
    let per_thread = o.calls.div_ceil(8);
    let start = Instant::now();
    let samples = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::with_capacity(per_thread);
                    for _ in 0..per_thread {
                        let t = Instant::now();
                        session.call_tool(&o.tool, o.args.clone())?;
                        mine.push(t.elapsed());
                    }
                    Ok::<_, Error>(mine)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().expect("a demo thread panicked")?);
        }
        Ok::<_, Error>(all)
    })?;
    rows.push(Row {
        mode: "one session, 8 threads",
        calls: samples.len(),
        total: start.elapsed(),
        samples,
    });
    session.close();

    let base = rows[0].total.as_secs_f64() / rows[0].calls as f64;
    println!("\n| mode | calls | total | per call p50 | p99 | speedup vs spawn per call |");
    println!("|---|---|---|---|---|---|");
    for row in &mut rows {
        let per_call = row.total.as_secs_f64() / row.calls as f64;
        let (p50, p99) = (row.pct(0.5), row.pct(0.99));
        println!(
            "| {} | {} | {:.1} ms | {:.3} ms | {:.3} ms | {:.0}× |",
            row.mode,
            row.calls,
            row.total.as_secs_f64() * 1e3,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            base / per_call
        );
    }
    Ok(())
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--fake-server") {
        // Act as the server: drop our own flag and hand over.
        fake_server::main_with_args(std::env::args_os().skip(2));
        return;
    }
    if let Err(e) = run() {
        eprintln!("demo: {e}");
        std::process::exit(2);
    }
}
