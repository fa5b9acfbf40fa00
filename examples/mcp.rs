//! A command-line MCP client for the servers of an `mcpServers` config file (see `USAGE`).
//!
//! ```text
//! cargo run --example mcp -- --config mcp.json --timeout 10 files call read_file '{"path": "a"}'
//! echo '{"tool": "echo", "arguments": {"text": "hi"}}' | cargo run --example mcp -- fake batch
//! ```
//!
//! `tools` prints a pretty JSON array, `call` the `CallToolResult` as pretty JSON (exit 1 on
//! `isError`), `batch` one compact line per call, in order: the `CallToolResult` or
//! `{"error": "..."}` (exit 1 if any failed or had `isError`). Any other failure is one line
//! `mcp: SERVER: CAUSE` on stderr, then the server's last stderr lines indented; exit 2.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use mcp_pool::{BatchOptions, CallOptions, Error, Pool, PoolBuilder, ToolCall};
use serde_json::{json, Value};

const USAGE: &str = "usage: mcp [--config FILE] [--timeout SECS] SERVER COMMAND
  SERVER tools                  print the server's tools as a JSON array
  SERVER call TOOL [ARGS_JSON]  call a tool (ARGS_JSON defaults to {}); exit 1 on isError
  SERVER batch [FILE]           run JSON Lines {\"tool\": ..., \"arguments\": ...} from FILE or stdin
  --config FILE                 an mcpServers JSON file (defaults to ./mcp.json)
  --timeout SECS                the deadline of each call (of the whole batch for batch)";

/// Why the run failed: `SERVER: `, the cause, and the error for its stderr tail. Exit 2.
struct Failure(String, String, Option<Error>);

fn fail(server: &str, cause: impl ToString) -> Failure {
    Failure(format!("{server}: "), cause.to_string(), None)
}

fn failed(server: &str) -> impl Fn(Error) -> Failure + '_ {
    move |e| Failure(format!("{server}: "), e.to_string(), Some(e))
}

fn main() -> ExitCode {
    env_logger::init();
    let Failure(server, cause, error) = match run() {
        Ok(code) => return code,
        Err(failure) => failure,
    };
    let tail = error.as_ref().and_then(Error::stderr_tail).unwrap_or("");
    let lines: Vec<&str> = tail.lines().filter(|l| !l.trim().is_empty()).collect();
    // The error's text has the tail on one line; we print it as lines instead.
    let cause = match cause.split_once("; server stderr: ") {
        Some((cause, _)) if !lines.is_empty() => cause,
        _ => &cause,
    };
    let mut out = format!("mcp: {server}{cause}\n");
    for line in &lines[lines.len().saturating_sub(5)..] {
        out += &format!("    {line}\n");
    }
    let _ = std::io::stderr().write_all(out.as_bytes());
    ExitCode::from(2)
}

fn run() -> Run {
    let usage = |why: &str| Failure(String::new(), format!("{why} (see --help)"), None);
    let (mut config, mut timeout, mut rest) = ("mcp.json".to_owned(), None, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                let _ = writeln!(std::io::stdout(), "{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            "--config" => config = args.next().ok_or_else(|| usage("--config needs a FILE"))?,
            "--timeout" => {
                timeout = Some(seconds(args.next()).ok_or_else(|| usage("bad --timeout"))?)
            }
            _ => rest.push(arg),
        }
    }
    let [server, command, params @ ..] = rest.as_slice() else {
        return Err(usage("expected SERVER and COMMAND"));
    };
    let builder = PoolBuilder::from_file(&config).map_err(failed(server))?;
    for warning in builder.warnings() {
        let _ = writeln!(std::io::stderr(), "mcp: warning: {warning}");
    }
    let pool = builder.build().map_err(failed(server))?;
    let known = pool.servers();
    let result = match (command.as_str(), params) {
        _ if !known.contains(server) => Err(fail(server, format!("no such server in {config}"))),
        ("tools", []) => match pool.list_tools(server) {
            Ok(tools) => emit(serde_json::to_string_pretty(&*tools)),
            Err(e) => Err(failed(server)(e)),
        },
        ("call", [tool]) => call(&pool, server, tool, "{}", timeout),
        ("call", [tool, args]) => call(&pool, server, tool, args, timeout),
        ("batch", [] | [_]) => batch(&pool, server, params.first(), timeout),
        _ => Err(usage(&format!("unknown command `{}`", rest[1..].join(" ")))),
    };
    pool.close();
    result
}

type Run = Result<ExitCode, Failure>;

fn call(pool: &Pool, server: &str, tool: &str, args: &str, timeout: Option<Duration>) -> Run {
    let args: Value = serde_json::from_str(args)
        .map_err(|e| fail(server, format!("ARGS_JSON is not JSON: {e}")))?;
    let options = timeout.map_or(CallOptions::new(), |t| CallOptions::new().timeout(t));
    let result = pool.call_tool_with(server, tool, args, options);
    let result = result.map_err(failed(server))?;
    emit(serde_json::to_string_pretty(&result)).map(|_| ExitCode::from(u8::from(result.is_error)))
}

fn batch(pool: &Pool, server: &str, file: Option<&String>, timeout: Option<Duration>) -> Run {
    let text = match file {
        Some(file) => std::fs::read_to_string(file),
        None => std::io::read_to_string(std::io::stdin()),
    };
    let name = file.map_or("stdin", String::as_str);
    let text = text.map_err(|e| fail(server, format!("cannot read {name}: {e}")))?;
    let mut calls = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if !line.trim().is_empty() {
            let call = serde_json::from_str::<ToolCall>(line);
            calls.push(call.map_err(|e| fail(server, format!("{name} line {}: {e}", n + 1)))?);
        }
    }
    if !calls.is_empty() {
        // Start the server first: one that cannot start fails the whole run (exit 2).
        pool.session(server).map_err(failed(server))?;
    }
    let mut any_failed = false;
    let options = timeout.map_or(BatchOptions::new(), |t| BatchOptions::new().timeout(t));
    let results = pool
        .batch(server, &calls, options)
        .map_err(failed(server))?;
    for result in results {
        any_failed |= result.as_ref().map_or(true, |r| r.is_error);
        emit(match result {
            Ok(r) => serde_json::to_string(&r),
            Err(e) => Ok(json!({ "error": e.to_string() }).to_string()),
        })?;
    }
    Ok(ExitCode::from(u8::from(any_failed)))
}

/// Prints a JSON text on stdout; a closed stdout is a failure, not a panic.
fn emit(json: serde_json::Result<String>) -> Run {
    let json = json.map_err(|e| fail("json", e))?;
    writeln!(std::io::stdout().lock(), "{json}").map_err(|e| fail("stdout", e))?;
    Ok(ExitCode::SUCCESS)
}

fn seconds(arg: Option<String>) -> Option<Duration> {
    let secs: f64 = arg?.parse().ok().filter(|s| *s > 0.0)?;
    Duration::try_from_secs_f64(secs).ok()
}
