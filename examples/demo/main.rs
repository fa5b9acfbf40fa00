//! What pooling buys: the same tool calls made four ways (a server spawned per call, one by
//! one through the pool, as one pipelined batch, and from 8 threads at once), with the time
//! per call, the speedup over spawning, and the pool's own statistics.
//!
//! ```text
//! cargo run --release --example demo
//! cargo run --release --example demo -- --calls 5000
//! cargo run --release --example demo -- --server-command 'node /path/to/server-everything/dist/index.js stdio'
//! cargo run --release --example demo -- --config mcp.json --server files --tool read_file --args '{"path":"README.md"}'
//! ```
//!
//! Without a server option it runs against the repository's fake MCP server, compiled into
//! this example: the example starts itself with `--fake-server` as the child process, exactly
//! like a real server, so nothing but the Rust toolchain is needed. Without `--tool` it calls
//! `echo` if the server has one, else a tool the server marks read-only, with arguments made
//! up from the tool's input schema; it says which.

use std::time::Instant;

use mcp_pool::{Error, Pool};

#[path = "../../src/bin/mcp-fake-server/main.rs"]
#[allow(dead_code)] // its own `main` is not used here
mod fake_server;
mod modes; // the four ways of calling: `Pool::call_tool_direct`, `call_tool`, `batch`, threads
mod setup; // the command line, the server, the choice of tool

use modes::{ms, Row, Target, SPAWN_CALLS};
use setup::{Options, Server};

/// The same calls four ways, in this order; the first is the baseline.
fn measure(t: &Target<'_>, o: &Options) -> Result<Vec<Row>, Error> {
    Ok(vec![
        t.sequential("spawn per call", o.calls.min(SPAWN_CALLS), true)?,
        t.sequential("pooled, one by one", o.calls, false)?,
        t.batch(o.calls)?,
        t.threads(o.calls, o.threads)?,
    ])
}

fn run(o: &Options, pool: &Pool, server: &str) -> Result<(), String> {
    let start = Instant::now();
    let (tool, args, why) = setup::choose_tool(pool, server, o)?;
    let probe = pool
        .call_tool(server, &tool, args.clone())
        .map_err(|e| e.to_string())?;
    if probe.is_error {
        let text = probe.text();
        return Err(format!(
            "`{tool}` answered with an error: {text}\n  pick a tool with --tool and --args"
        ));
    }
    println!("tool: `{tool}` {args} ({why})");
    let first = ms(start.elapsed());
    println!("session start, tools/list and a first call through the pool: {first}");
    eprintln!("running {} calls per mode:", o.calls);
    let t = Target {
        pool,
        server,
        tool: &tool,
        args: &args,
    };
    let rows = measure(&t, o).map_err(|e| e.to_string())?;
    modes::print_table(&rows);
    let (pooled, spawned) = (&rows[1], &rows[0]);
    let mean = spawned.per_call().as_secs_f64() / pooled.per_call().as_secs_f64();
    let median = spawned.median().as_secs_f64() / pooled.median().as_secs_f64();
    // A median of a handful of spawns says little: say how many it is from.
    let few = match spawned.samples() {
        n if n < 10 => format!(", from {n} samples"),
        _ => String::new(),
    };
    println!(
        "\na pooled call takes {} on average (median {}), a spawned one {} (median {}{few}):\n\
         pooling is {mean:.0}× faster on average, {median:.0}× at the median",
        ms(pooled.per_call()),
        ms(pooled.median()),
        ms(spawned.per_call()),
        ms(spawned.median()),
    );
    let stats = pool.stats();
    println!(
        "\npool statistics (`Pool::stats()`, server `{server}`), over all four modes and the \
         first call: the spawned calls count in `calls` and `direct_calls`, latency covers \
         every call (the batch's from when its requests were written):"
    );
    match stats.server(server) {
        Some(s) => println!("{}", serde_json::to_string_pretty(s).unwrap_or_default()),
        None => println!("(no statistics for `{server}`)"),
    }
    Ok(())
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--fake-server") {
        // Act as the server: drop our own flag and hand over.
        fake_server::main_with_args(std::env::args_os().skip(2));
        return;
    }
    let fail = |e: String| -> ! {
        eprintln!("demo: {e}");
        std::process::exit(2)
    };
    let o = setup::parse().unwrap_or_else(|e| fail(e));
    let (pool, server) = setup::build_pool(&o.server).unwrap_or_else(|e| fail(e.to_string()));
    let described = match &o.server {
        Server::Embedded => "the embedded fake MCP server".to_owned(),
        Server::Command(argv) => argv.join(" "),
        Server::Config(file, _) => format!("`{server}` from {file}"),
    };
    println!("server: {described}");
    let outcome = run(&o, &pool, &server);
    // Always: every session through the kill ladder, every child reaped.
    pool.close();
    println!(
        "\npool closed: {} child processes left",
        pool.live_children()
    );
    if let Err(e) = outcome {
        fail(e);
    }
}
