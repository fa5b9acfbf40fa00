//! A command-line MCP client for the servers of an `mcpServers` config file (see `USAGE`).
//!
//! ```text
//! cargo run --example mcp -- --config examples/mcp.json servers
//! cargo run --example mcp -- --config mcp.json --timeout 10 files call read_file '{"path": "a"}'
//! echo '{"tool": "echo", "arguments": {"text": "hi"}}' | cargo run --example mcp -- fake batch
//! ```
//!
//! Output is JSON on stdout: `servers`, `tools`, `resources` and `prompts` print a pretty
//! array; `call` (exit 1 on `isError`), `read`, `prompt`, `ping` and `info` a pretty object;
//! `batch` one compact line per call, in order: the `CallToolResult` or `{"error": "..."}`
//! (exit 1 if any failed or had `isError`). Any other failure is one line
//! `mcp: SERVER: CAUSE` on stderr, then, when the server itself ended (exited, was killed,
//! closed its output), what it last wrote on stderr, indented; exit 2. On a terminal, a start
//! that takes more than a second says so on stderr as it goes.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mcp_pool::{
    BatchOptions, CallOptions, CloseReason, Error, Generation, Pool, PoolBuilder, Session, ToolCall,
};
use serde_json::{json, Value};

const USAGE: &str = "usage: mcp [OPTIONS] servers
       mcp [OPTIONS] SERVER COMMAND
  servers                         list the file's servers: configured, skipped (and why), disabled
  SERVER tools                    the server's tools
  SERVER call TOOL [ARGS_JSON]    call a tool (ARGS_JSON defaults to {}); exit 1 on isError
  SERVER batch [FILE]             run JSON Lines {\"tool\": ..., \"arguments\": ...} from FILE or stdin
  SERVER resources                the server's resources
  SERVER read URI                 read a resource
  SERVER prompts                  the server's prompts
  SERVER prompt NAME [ARGS_JSON]  get a prompt with its arguments (defaults to {})
  SERVER ping                     ping the server: the round trip in ms
  SERVER info                     the negotiated protocol version, capabilities, server info
options:
  --config FILE                   an mcpServers JSON file (defaults to ./mcp.json)
  --timeout SECS                  the deadline of each call (of the whole batch for batch),
                                  not counting the server's start
  --start-timeout SECS            the deadline of the server's start (defaults to the file's
                                  startTimeoutSecs, or 30)";

/// The caller key of every call: a server with per-caller sharing needs one.
const CALLER: &str = "mcp";
/// Stack frames shown of a run (`    at ...`, node's) under a failure.
const FRAMES_SHOWN: usize = 2;
/// Lines of a server's stderr shown under a failure, at most.
const STDERR_SHOWN: usize = 40;

/// Why the run failed: `SERVER: `, the cause, and the error for its stderr. Exit 2.
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
    // The error's text ends with its last stderr lines on one line: shown as lines below
    // when they explain the failure, and not at all when the server was still running.
    let cause = cause
        .split_once("; server stderr: ")
        .map_or(&*cause, |(c, _)| c);
    let mut out = format!("mcp: {server}{cause}\n");
    if let Some(e) = error.as_ref().filter(|e| server_ended(e)) {
        for line in shown_stderr(e.stderr_tail().unwrap_or("")) {
            out += &format!("    {line}\n");
        }
    }
    let _ = std::io::stderr().write_all(out.as_bytes());
    ExitCode::from(2)
}

type Run = Result<ExitCode, Failure>;

/// What the command line asks for.
struct Args {
    config: String,
    timeout: Option<Duration>,
    start_timeout: Option<Duration>,
    rest: Vec<String>,
}

fn run() -> Run {
    let usage = |why: &str| Failure(String::new(), format!("{why} (see --help)"), None);
    let mut a = Args {
        config: "mcp.json".into(),
        timeout: None,
        start_timeout: None,
        rest: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                let _ = writeln!(std::io::stdout(), "{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            "--config" => a.config = args.next().ok_or_else(|| usage("--config needs a FILE"))?,
            "--timeout" => {
                a.timeout = Some(seconds(args.next()).ok_or_else(|| usage("bad --timeout"))?)
            }
            "--start-timeout" => {
                let t = seconds(args.next()).ok_or_else(|| usage("bad --start-timeout"))?;
                a.start_timeout = Some(t);
            }
            _ => a.rest.push(arg),
        }
    }
    let (server, command) = match a.rest.as_slice() {
        [one] if one == "servers" => ("", "servers"),
        [server, command, ..] => (server.as_str(), command.as_str()),
        _ => return Err(usage("expected `servers`, or SERVER and COMMAND")),
    };
    // The start's own deadline, over whatever the file says.
    let overrides = a.start_timeout.map_or(
        Value::Null,
        |t| json!({"startTimeoutSecs": t.as_secs_f64()}),
    );
    let builder = PoolBuilder::from_file_with(&a.config, &overrides).map_err(failed(server))?;
    for warning in builder.warnings() {
        let _ = writeln!(std::io::stderr(), "mcp: warning: {warning}");
    }
    let pool = builder.build().map_err(failed(server))?;
    let result = if command == "servers" {
        servers(&pool)
    } else {
        on_server(&pool, server, &a)
    };
    pool.close();
    result
}

/// Every server the file names, with its status.
fn servers(pool: &Pool) -> Run {
    let mut list: Vec<Value> = pool
        .servers()
        .into_iter()
        .map(|name| json!({"name": name, "status": "configured"}))
        .collect();
    for s in pool.skipped_servers() {
        list.push(match s.disabled {
            true => json!({"name": s.name, "status": "disabled"}),
            false => json!({"name": s.name, "status": "skipped", "reason": s.reason}),
        });
    }
    list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    emit(serde_json::to_string_pretty(&list))
}

/// What a server command does, read from the command line before the server starts.
enum Job {
    Tools,
    Call(String, Value),
    Batch(Vec<ToolCall>),
    Resources,
    Read(String),
    Prompts,
    Prompt(String, Value),
    Ping,
    Info,
}

fn on_server(pool: &Pool, server: &str, a: &Args) -> Run {
    let params = &a.rest[2..];
    let json_arg = |text: Option<&String>| -> Result<Value, Failure> {
        serde_json::from_str(text.map_or("{}", |s| s.as_str()))
            .map_err(|e| fail(server, format!("ARGS_JSON is not JSON: {e}")))
    };
    let job = match (a.rest[1].as_str(), params) {
        ("tools", []) => Job::Tools,
        ("call", [tool, rest @ ..]) if rest.len() <= 1 => {
            Job::Call(tool.clone(), json_arg(rest.first())?)
        }
        ("batch", [] | [_]) => Job::Batch(read_batch(server, params.first())?),
        ("resources", []) => Job::Resources,
        ("read", [uri]) => Job::Read(uri.clone()),
        ("prompts", []) => Job::Prompts,
        ("prompt", [name, rest @ ..]) if rest.len() <= 1 => {
            Job::Prompt(name.clone(), json_arg(rest.first())?)
        }
        ("ping", []) => Job::Ping,
        ("info", []) => Job::Info,
        _ => {
            let why = format!("unknown command `{}` (see --help)", a.rest[1..].join(" "));
            return Err(Failure(String::new(), why, None));
        }
    };
    if !pool.servers().iter().any(|s| s == server) {
        return Err(
            match pool.skipped_servers().iter().find(|s| s.name == server) {
                Some(s) if s.disabled => fail(server, format!("disabled in {}", a.config)),
                Some(s) => fail(server, format!("skipped in {}: {}", a.config, s.reason)),
                None => fail(
                    server,
                    format!(
                        "no such server in {} (it has: {})",
                        a.config,
                        pool.servers().join(", ")
                    ),
                ),
            },
        );
    }
    if matches!(&job, Job::Batch(calls) if calls.is_empty()) {
        return Ok(ExitCode::SUCCESS);
    }
    // The start first, under its own deadline: `--timeout` is the call's alone.
    let session = start(pool, server)?;
    let options = || match a.timeout {
        Some(t) => CallOptions::new().caller(CALLER).timeout(t),
        None => CallOptions::new().caller(CALLER),
    };
    let e = failed(server);
    match job {
        Job::Tools => emit(serde_json::to_string_pretty(
            &*pool.list_tools_with(server, options()).map_err(e)?,
        )),
        Job::Call(tool, args) => {
            let result = pool
                .call_tool_with(server, &tool, args, options())
                .map_err(e)?;
            emit(serde_json::to_string_pretty(&result))
                .map(|_| ExitCode::from(u8::from(result.is_error)))
        }
        Job::Batch(calls) => batch(pool, server, &calls, a.timeout),
        Job::Resources => emit(serde_json::to_string_pretty(
            &pool.list_resources_with(server, options()).map_err(e)?,
        )),
        Job::Read(uri) => emit(serde_json::to_string_pretty(
            &pool
                .read_resource_with(server, &uri, options())
                .map_err(e)?,
        )),
        Job::Prompts => emit(serde_json::to_string_pretty(
            &pool.list_prompts_with(server, options()).map_err(e)?,
        )),
        Job::Prompt(name, args) => emit(serde_json::to_string_pretty(
            &pool
                .get_prompt_with(server, &name, args, options())
                .map_err(e)?,
        )),
        Job::Ping => {
            let rtt = pool.ping_with(server, options()).map_err(e)?;
            emit(serde_json::to_string_pretty(
                &json!({"roundTripMs": rtt.as_secs_f64() * 1e3}),
            ))
        }
        Job::Info => emit(serde_json::to_string_pretty(&info(&session))),
    }
}

/// Starts the server's session (bounded by the start timeout), saying on a terminal how
/// long a slow start has taken.
fn start(pool: &Pool, server: &str) -> Result<Session, Failure> {
    let (done, ticks) = mpsc::channel::<bool>();
    let ticker = std::io::stderr().is_terminal().then(|| {
        let server = server.to_owned();
        std::thread::spawn(move || {
            let began = Instant::now();
            let mut shown = false;
            let started = loop {
                match ticks.recv_timeout(Duration::from_secs(1)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        shown = true;
                        let secs = began.elapsed().as_secs();
                        eprint!("\rmcp: starting {server}... {secs} s\x1b[K");
                    }
                    Ok(started) => break started,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break false,
                }
            };
            if shown && started {
                let secs = began.elapsed().as_secs_f64();
                eprintln!("\rmcp: {server} started in {secs:.1} s\x1b[K");
            } else if shown {
                eprint!("\r\x1b[K");
            }
        })
    });
    let session = pool.session_for(server, CALLER);
    let _ = done.send(session.is_ok());
    if let Some(ticker) = ticker {
        let _ = ticker.join();
    }
    session.map_err(failed(server))
}

/// What the session agreed with its server.
fn info(session: &Session) -> Value {
    let d = session.details();
    let generation = match d.generation {
        Generation::Handshake => "handshake",
        Generation::PerRequest => "per-request",
        _ => "auto",
    };
    json!({
        "protocolVersion": d.protocol_version,
        "generation": generation,
        "transport": session.transport(),
        "serverInfo": d.server_info,
        "capabilities": d.capabilities,
        "instructions": d.instructions,
        "startMs": session.handshake_time().as_secs_f64() * 1e3,
    })
}

/// The calls of a JSON Lines text (FILE or stdin), blank lines skipped.
fn read_batch(server: &str, file: Option<&String>) -> Result<Vec<ToolCall>, Failure> {
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
    Ok(calls)
}

fn batch(pool: &Pool, server: &str, calls: &[ToolCall], timeout: Option<Duration>) -> Run {
    let options = BatchOptions::new().caller(CALLER);
    let options = match timeout {
        Some(t) => options.timeout(t),
        None => options,
    };
    let results = pool.batch(server, calls, options).map_err(failed(server))?;
    let mut any_failed = false;
    for result in results {
        any_failed |= result.as_ref().map_or(true, |r| r.is_error);
        emit(match result {
            Ok(r) => serde_json::to_string(&r),
            Err(e) => Ok(json!({ "error": e.to_string() }).to_string()),
        })?;
    }
    Ok(ExitCode::from(u8::from(any_failed)))
}

/// Whether the server's own end explains the failure: it exited, was killed or closed its
/// output. Otherwise what it wrote on stderr is a running server's chatter, not the cause.
fn server_ended(e: &Error) -> bool {
    match e {
        Error::SessionClosed { reason, .. } | Error::OutcomeUnknown { reason, .. } => matches!(
            reason,
            CloseReason::Exited(_) | CloseReason::Signaled(_) | CloseReason::Eof
        ),
        // How a start that the server's end cut short is told (`CloseReason`'s text).
        Error::Handshake { reason, .. } => ["server exited", "server killed", "server closed"]
            .iter()
            .any(|p| reason.starts_with(p)),
        Error::ServerFailing { last_error, .. } => server_ended(last_error),
        _ => false,
    }
}

/// The lines of a server's stderr shown under a failure: all the error kept (the last 64
/// by default) but blank lines, each run of stack frames cut to its first lines, and at
/// most the last `STDERR_SHOWN`. Node puts the cause (`Error: Cannot find module ...`)
/// above its stack, Python below its traceback: both stay in view.
fn shown_stderr(tail: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let (mut frames, mut hidden) = (0, 0);
    for line in tail
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
    {
        let frame = line.starts_with(char::is_whitespace) && line.trim_start().starts_with("at ");
        if frame {
            frames += 1;
            if frames > FRAMES_SHOWN {
                hidden += 1;
                continue;
            }
        } else {
            frames = 0;
        }
        if hidden > 0 {
            lines.push(format!("    ... {hidden} more frames"));
            hidden = 0;
        }
        lines.push(line.to_owned());
    }
    if hidden > 0 {
        lines.push(format!("    ... {hidden} more frames"));
    }
    if lines.len() > STDERR_SHOWN {
        let cut = lines.len() - STDERR_SHOWN;
        lines.drain(..cut);
        lines.insert(0, format!("... ({cut} lines before)"));
    }
    lines
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
