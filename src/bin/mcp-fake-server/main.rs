//! `mcp-fake-server`: a scriptable fake MCP (Model Context Protocol) stdio server used by the
//! tests, benchmarks and demo of `mcp-pool`.
//!
//! It speaks newline-delimited JSON-RPC 2.0 on stdin/stdout and logs to stderr only. It never
//! panics on bad input: a non-JSON line gets -32700, a malformed message -32600, an unknown
//! method -32601 and bad params -32602 (all with `"id": null` when no valid id can be read).
//!
//! # Protocol generations
//!
//! * **handshake** (2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25): `initialize` answers the
//!   client's offered version if it is one of those four, else `2025-11-25`. Requests other than
//!   `ping` are refused with -32600 until `notifications/initialized` arrives. The client's
//!   `capabilities` and `clientInfo` are remembered for the session.
//! * **per-request / stateless** (`2026-07-28`): `server/discover` returns `supportedVersions`,
//!   `capabilities` and `_meta["io.modelcontextprotocol/serverInfo"]`. Every request must carry
//!   `params._meta["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"`: missing gives
//!   -32602, another value gives -32022 with `data.supported`. Client capabilities are read per
//!   request from `_meta["io.modelcontextprotocol/clientCapabilities"]`. `ping` is -32601 here.
//!
//! With `--generation both` the first request locks the connection: an enveloped request
//! (e.g. `server/discover` with the `_meta` envelope) locks stateless, after which `initialize`
//! gets -32022 (`data.supported: ["2026-07-28"]`); `server/discover` without the envelope gets
//! -32601 and locks nothing; `initialize` locks handshake, after which `server/discover` is
//! -32601 and enveloped requests are served as ordinary requests (the envelope is ignored).
//!
//! # Flags
//!
//! | flag | effect |
//! |---|---|
//! | `--generation handshake\|stateless\|both` | generations served (default `both`). `handshake`: `server/discover` is -32601. `stateless`: `initialize` is -32022 |
//! | `--discover-silent` | never answer `server/discover` (like an old server); handshake still works |
//! | `--page-size N` | page size of `tools/list`, `resources/list`, `resources/templates/list`, `prompts/list` (0 = one page, default). Cursors are `"page-K"` (K from 1; `page-1` is the first page) |
//! | `--cursor-loop` | the last page's `nextCursor` is `"page-1"`, forever |
//! | `--extra-tools N` | add tools `extra_0 .. extra_{N-1}` (each echoes `text`, or its arguments as JSON) |
//! | `--slow-start-ms N` | sleep N ms before reading stdin |
//! | `--exit-during-handshake CODE` | on `initialize` or `server/discover`: stderr `dying in handshake`, exit CODE, no answer |
//! | `--hang-handshake` | read `initialize` / `server/discover` but never answer them |
//! | `--stderr-at-start BYTES` | write BYTES bytes of ~100-char lines to stderr before serving |
//! | `--banner` | write the non-JSON line `fake server banner` to stdout before serving |
//! | `--crlf` | end every stdout line with `\r\n` |
//! | `--bom` | write a UTF-8 BOM before the first stdout line |
//! | `--ignore-stdin-eof` | on stdin EOF do not exit: ignore SIGTERM and sleep forever (needs SIGKILL) |
//! | `--ignore-sigterm` | ignore SIGTERM from the start (still exits on stdin EOF) |
//! | `--spawn-grandchild` | spawn `sleep 1000` (stdio to /dev/null, same process group); stderr `grandchild pid N` |
//! | `--grandchild-holds-stdout` | spawn `sleep 1000` (same process group) with the server's stdout and stderr, so the pipes stay open after the server dies; stderr `grandchild pid N` |
//! | `--daemon` | spawn a daemon `sleep 1000` that leaves the process group and session (`setsid()`) and has the server's stdout and stderr; stderr `daemon pid N` |
//! | `--answer-after-exit` | on `crash`: write its answer (`isError: true`, text `crashed`) to stdout and flush, then exit, so the response is in the pipe when the process is gone (with `after_ms`, the answer is written just before the delayed exit) |
//! | `--record FILE` | append `{"tool":NAME,"arguments":ARGS,"pid":PID}` per `tools/call` to FILE, before the tool runs (`ARGS` is `{}` when absent) |
//! | `--verbose` | log one stderr line per message handled |
//! | `--help` | usage on stderr, exit 0. Unknown or malformed flags: usage on stderr, exit 2. `--flag=value` also works |
//!
//! By default the server exits 0 on stdin EOF, after giving in-flight tool threads at most 100 ms.
//!
//! # Methods
//!
//! `initialize`, `server/discover`, `ping`, `tools/list`, `tools/call`, `resources/list` (five
//! resources `fake://r/0..4`), `resources/templates/list` (`fake://r/{n}`), `resources/read`
//! (text `resource N`; unknown uri -32002), `resources/subscribe`, `resources/unsubscribe`,
//! `prompts/list` (`greet` with argument `name`), `prompts/get` (`Hello NAME`),
//! `completion/complete` (prefix match over `Alice Bob Carol Dave` for `greet`/`name`, `0..4` for
//! the template), `logging/setLevel`. Notifications handled: `notifications/initialized`,
//! `notifications/cancelled` (stops an in-flight threaded tool; no response is sent; stderr
//! `cancelled ID` with ID as JSON); others are ignored. The server's own requests use integer ids
//! from 0, a separate id space.
//!
//! # Tools (`tools/call {name, arguments}`)
//!
//! Results are `{content:[{type:"text",text}], structuredContent?, isError?}`. Missing or
//! mistyped arguments give JSON-RPC -32602 (`data.tool`); an unknown tool gives a result with
//! `isError: true` and text `unknown tool: NAME`. Tools marked *thread* run on their own thread,
//! so many can be in flight at once and `notifications/cancelled` can stop them.
//!
//! | tool | arguments | behaviour |
//! |---|---|---|
//! | `echo` | `text` | text verbatim (readOnlyHint) |
//! | `add` | `a`, `b` numbers | text of the sum, structuredContent `{"sum"}` (readOnlyHint, outputSchema) |
//! | `structured` | — | structuredContent `{"answer":42,"items":[1,2,3]}`, text is its JSON (readOnlyHint, outputSchema) |
//! | `fail` | `message?` | `isError: true` with the message |
//! | `rpc_error` | `code?` (-32000), `message?` | JSON-RPC error with that code/message, data `{"tool":"rpc_error"}` |
//! | `sleep` *thread* | `ms`, `progress_steps?` | sleeps; with `_meta.progressToken` sends `progress_steps` `notifications/progress` `{progressToken, progress:i, total, message:"step i"}` spread over the sleep; text `slept MS` |
//! | `slow_read` *thread* | as `sleep` | as `sleep`, annotated readOnlyHint (safe to retry) |
//! | `slow_write` *thread* | as `sleep` | as `sleep`, annotated destructiveHint (not safe to retry) |
//! | `late` *thread* | `ms` | sleeps `ms` ignoring `notifications/cancelled`, then answers `late by MS` (a late response) |
//! | `stop_reading` | — | the main loop sleeps forever: stdin is never read again (its pipe fills up); no answer |
//! | `hang` *thread* | — | never answers (until cancelled) |
//! | `crash` | `code?` (3), `after_ms?` (0) | stderr `crashing`, exits with code after after_ms (other requests are served meanwhile); no answer (see `--answer-after-exit`) |
//! | `kill_self` | `signal?` (9) | kills itself with that signal; if it survives, isError result |
//! | `garbage` | — | writes the line `this is not json`, then text `ok` |
//! | `oversize` | `bytes` | text of `bytes` `x` characters (at most 1 GiB) |
//! | `stderr_flood` | `bytes` | writes `bytes` bytes of ~100-char lines to stderr, then text `flooded` |
//! | `ask_roots` *thread* | — | sends `roots/list`, waits, text = JSON of the result (or of the error object) |
//! | `ask_sampling` *thread* | — | same with `sampling/createMessage` |
//! | `ask_elicitation` *thread* | — | same with `elicitation/create` (form mode) |
//! | `ping_client` *thread* | — | sends `ping`, text `pong` on a result (isError with the error JSON otherwise) |
//! | `list_changed` | — | adds tool `added_N` (an echo tool), sends `notifications/tools/list_changed`, text `ok` |
//! | `touch` | `uri` | if `uri` is subscribed: `notifications/resources/updated {uri}` and text `ok`; else text `not subscribed: URI` and no notification |
//! | `log` | `level`, `message` | `notifications/message {level, logger:"fake", data:message}` unless below the level set by `logging/setLevel` (text `ok` / `suppressed`) |
//! | `wrong_id` | — | first a response with id 999999, then the real response, text `ok` |
//! | `duplicate_id` | — | the real response (text `ok`) twice |
//! | `string_id_echo` | — | text = the request id as JSON (e.g. `"abc"` with quotes, or `7`) |
//! | `count` | — | per-process counter, returns the new value (1, 2, …) (destructiveHint, idempotentHint:false) |
//! | `set` | `value` | text `ok` (idempotentHint) |
//! | `exit_stdout` | — | closes stdout (no answer), keeps running, exits 0 after 5 s |
//! | `env` | `name` | the env var's value or `<unset>` |
//! | `cwd` | — | current directory |
//! | `client_caps` | — | JSON `{generation, protocolVersion, capabilities, clientInfo}` the server holds for this request |
//! | `spawn_background` | — | spawns `sleep 1000` in the server's process group with stdio to /dev/null (like a shell's background job; never waited for, default SIGTERM disposition); text = its pid in decimal |
//! | `block` | `ms` | runs on the main loop (not a thread): for `ms` ms nothing is read from stdin and nothing answered (tool threads already running still answer), like a single-threaded server stuck in a long call; then text `blocked MS` (destructiveHint: not safe to repeat) |
//! | `progress_burst` | `steps` | with `_meta.progressToken`, writes `steps` `notifications/progress` `{progressToken, progress:i, total:steps, message:"step i"}` (i = 1..=steps) back to back from the main loop, immediately followed by the answer, text `burst STEPS` (without a token: just the answer) |
//! | `flood_requests` | `count`, `id_bytes`, `method_bytes` | writes `count` requests `{"jsonrpc":"2.0","id":ID,"method":M}` to stdout, ids distinct strings of `id_bytes` base-62 digits (`0…0`, `0…1`, …; -32602 if `62^id_bytes < count`), methods `method_bytes` `m` characters (each length at most 1 GiB); then, like `stop_reading`, never reads stdin again; no answer |
//! | `blob` | `bytes` | as `oversize` (text of `bytes` `x` characters, at most 1 GiB), annotated readOnlyHint; for message-size benchmarks |
//!
//! Stderr lines: `fake-server: started pid N` at start, `grandchild pid N`, `daemon pid N`,
//! `crashing`, `dying in handshake`, `cancelled ID`; other diagnostics start with
//! `fake-server: `.
//!
//! # Source layout
//!
//! `main.rs` (flags, start-up, the main loop), `wire.rs` (stdin/stdout framing, JSON-RPC
//! errors, sending), `state.rs` (state shared with tool threads), `dispatch.rs` (methods and
//! protocol generations), `catalog.rs` (resources, prompts, completion, pagination),
//! `tools.rs` (the tool table and the well-behaved tools), `faults.rs` (the misbehaving ones).

use std::fs::OpenOptions;
use std::process;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Writes one line to stderr with a single write; errors (closed stderr) are ignored.
/// Defined before the modules so that all of them can use it.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let line = format!("{}\n", format_args!($($t)*));
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }};
}

mod catalog;
mod dispatch;
mod faults;
mod state;
mod tools;
mod wire;

use dispatch::Server;
use faults::{flood_stderr, spawn_sleeper, Sleeper};
use state::Shared;
use wire::LineReader;

const USAGE: &str =
    "usage: mcp-fake-server [--generation handshake|stateless|both] [--discover-silent]
  [--page-size N] [--cursor-loop] [--extra-tools N] [--slow-start-ms N]
  [--exit-during-handshake CODE] [--hang-handshake] [--stderr-at-start BYTES] [--banner]
  [--crlf] [--bom] [--ignore-stdin-eof] [--ignore-sigterm] [--spawn-grandchild]
  [--grandchild-holds-stdout] [--daemon] [--answer-after-exit] [--record FILE] [--verbose]
  [--help]";

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum GenerationMode {
    Handshake,
    Stateless,
    #[default]
    Both,
}

#[derive(Debug, Default)]
struct Config {
    generation: GenerationMode,
    discover_silent: bool,
    page_size: usize,
    cursor_loop: bool,
    extra_tools: usize,
    slow_start_ms: u64,
    exit_during_handshake: Option<i32>,
    hang_handshake: bool,
    stderr_at_start: u64,
    banner: bool,
    crlf: bool,
    bom: bool,
    ignore_stdin_eof: bool,
    ignore_sigterm: bool,
    spawn_grandchild: bool,
    grandchild_holds_stdout: bool,
    daemon: bool,
    answer_after_exit: bool,
    record: Option<String>,
    verbose: bool,
}

enum ArgsError {
    Help,
    Bad(String),
}

fn parse_num<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, ArgsError> {
    value
        .parse()
        .map_err(|_| ArgsError::Bad(format!("{flag}: invalid number '{value}'")))
}

impl Config {
    fn from_args<I: Iterator<Item = String>>(mut args: I) -> Result<Self, ArgsError> {
        let mut cfg = Config::default();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| ArgsError::Bad(format!("{flag} needs a value")))
            };
            let switch = |field: &mut bool| match inline {
                None => {
                    *field = true;
                    Ok(())
                }
                Some(_) => Err(ArgsError::Bad(format!("{flag} takes no value"))),
            };
            match flag.as_str() {
                "--generation" => {
                    cfg.generation = match value()?.as_str() {
                        "handshake" => GenerationMode::Handshake,
                        "stateless" => GenerationMode::Stateless,
                        "both" => GenerationMode::Both,
                        other => return Err(ArgsError::Bad(format!("bad --generation '{other}'"))),
                    }
                }
                "--page-size" => cfg.page_size = parse_num(&flag, &value()?)?,
                "--extra-tools" => cfg.extra_tools = parse_num(&flag, &value()?)?,
                "--slow-start-ms" => cfg.slow_start_ms = parse_num(&flag, &value()?)?,
                "--exit-during-handshake" => {
                    cfg.exit_during_handshake = Some(parse_num(&flag, &value()?)?)
                }
                "--stderr-at-start" => cfg.stderr_at_start = parse_num(&flag, &value()?)?,
                "--record" => cfg.record = Some(value()?),
                "--discover-silent" => switch(&mut cfg.discover_silent)?,
                "--cursor-loop" => switch(&mut cfg.cursor_loop)?,
                "--hang-handshake" => switch(&mut cfg.hang_handshake)?,
                "--banner" => switch(&mut cfg.banner)?,
                "--crlf" => switch(&mut cfg.crlf)?,
                "--bom" => switch(&mut cfg.bom)?,
                "--ignore-stdin-eof" => switch(&mut cfg.ignore_stdin_eof)?,
                "--ignore-sigterm" => switch(&mut cfg.ignore_sigterm)?,
                "--spawn-grandchild" => switch(&mut cfg.spawn_grandchild)?,
                "--grandchild-holds-stdout" => switch(&mut cfg.grandchild_holds_stdout)?,
                "--daemon" => switch(&mut cfg.daemon)?,
                "--answer-after-exit" => switch(&mut cfg.answer_after_exit)?,
                "--verbose" => switch(&mut cfg.verbose)?,
                "--help" | "-h" => return Err(ArgsError::Help),
                _ => return Err(ArgsError::Bad(format!("unknown argument '{flag}'"))),
            }
        }
        Ok(cfg)
    }
}

// ---------------------------------------------------------------------------------------------
// Start-up and the main loop
// ---------------------------------------------------------------------------------------------

fn main() {
    main_with_args(std::env::args_os().skip(1));
}

/// Runs the server with these arguments (without the program name). The demo example embeds
/// this module tree (`#[path]` to this file) and calls it to act as the server.
pub fn main_with_args(args: impl Iterator<Item = std::ffi::OsString>) {
    let args = args.map(|a| a.to_string_lossy().into_owned());
    let cfg = match Config::from_args(args) {
        Ok(cfg) => cfg,
        Err(ArgsError::Help) => {
            say!("{USAGE}");
            process::exit(0)
        }
        Err(ArgsError::Bad(msg)) => {
            say!("mcp-fake-server: {msg}\n{USAGE}");
            process::exit(2)
        }
    };
    say!("fake-server: started pid {}", process::id());

    let record = cfg.record.as_ref().map(|path| {
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => Mutex::new(f),
            Err(e) => {
                say!("mcp-fake-server: cannot open record file {path}: {e}");
                process::exit(2)
            }
        }
    });
    // Spawned before SIGTERM is ignored (helpers reset it to the default disposition anyway).
    if cfg.spawn_grandchild {
        start_helper("grandchild", Sleeper::Quiet);
    }
    if cfg.grandchild_holds_stdout {
        start_helper("grandchild", Sleeper::HoldsOutput);
    }
    if cfg.daemon {
        start_helper("daemon", Sleeper::Daemon);
    }
    if cfg.ignore_sigterm {
        // SAFETY: installing SIG_IGN for SIGTERM has no memory-safety preconditions.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    if cfg.slow_start_ms > 0 {
        thread::sleep(Duration::from_millis(cfg.slow_start_ms));
    }
    if cfg.stderr_at_start > 0 {
        flood_stderr(cfg.stderr_at_start);
    }

    let banner = cfg.banner;
    let shared = Arc::new(Shared::new(cfg, record));
    if banner {
        shared.emit(b"fake server banner");
    }
    serve(Server::new(shared))
}

/// Spawns a `sleep 1000` helper and names it on stderr: `grandchild pid N`, `daemon pid N`.
fn start_helper(what: &str, kind: Sleeper) {
    match spawn_sleeper(kind) {
        Ok(pid) => say!("{what} pid {pid}"),
        Err(e) => say!("fake-server: cannot spawn the {what}: {e}"),
    }
}

/// The main loop: one line at a time, until stdin ends.
fn serve(mut server: Server) -> ! {
    let mut lines = LineReader::stdin();
    while let Some(line) = lines.next_line() {
        server.handle_line(line);
    }
    on_stdin_eof(server.shared())
}

fn on_stdin_eof(shared: &Shared) -> ! {
    if shared.cfg.ignore_stdin_eof {
        // SAFETY: installing SIG_IGN for SIGTERM has no memory-safety preconditions.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
        say!("fake-server: stdin closed; ignoring it and SIGTERM");
        loop {
            thread::park();
        }
    }
    shared.wait_for_tools(Duration::from_millis(100));
    shared.flush_output();
    if shared.cfg.verbose {
        say!("fake-server: stdin closed, exiting");
    }
    process::exit(0)
}
