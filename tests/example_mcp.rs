//! The `mcp` example as a user runs it: a built binary, a config file, the fake server.
//!
//! Cargo gives integration tests no path to examples, and `cargo test --test example_mcp`
//! does not build them: the first test builds it with the cargo running the tests (a no-op
//! when it is fresh) into this test's own target directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

const FAKE: &str = env!("CARGO_BIN_EXE_mcp-fake-server");

/// The example binary, built once per test run.
fn example() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| common::build_example("mcp"))
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("mcp-example-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// A directory holding `mcp.json` with the servers `fake` and `dying`.
    fn with_config() -> TempDir {
        let dir = TempDir::new();
        let config = json!({"mcpServers": {
            "fake": {"command": FAKE, "args": []},
            "dying": {"command": FAKE, "args": ["--exit-during-handshake", "4"]},
        }});
        dir.write("mcp.json", &config.to_string());
        dir
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    /// The stdout as JSON Lines.
    fn lines(&self) -> Vec<Value> {
        let parse = |l: &str| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        self.stdout.lines().map(parse).collect()
    }
}

/// Runs the example in `dir` with `args`, feeding it `stdin`.
fn mcp(dir: &TempDir, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(example())
        .args(args)
        .current_dir(&dir.0)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out
            .status
            .code()
            .expect("the example was killed by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains("panicked"), "{args:?} panicked: {text}");
        assert!(!text.contains("RUST_BACKTRACE"), "{args:?}: {text}");
    }
    run
}

/// The text of a `CallToolResult`'s first content item.
fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

fn echo(text: &str) -> String {
    json!({"tool": "echo", "arguments": {"text": text}}).to_string()
}

#[test]
fn help_goes_to_stdout_and_exits_0() {
    let dir = TempDir::new();
    let run = mcp(&dir, &["--help"], "");
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("usage: mcp"), "{}", run.stdout);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn tools_prints_the_tool_list_as_a_json_array() {
    let dir = TempDir::with_config();
    let run = mcp(&dir, &["fake", "tools"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let tools: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(
        names.contains(&"echo") && names.contains(&"hang"),
        "{names:?}"
    );
    assert!(tools[0]["inputSchema"].is_object(), "{}", tools[0]);
}

#[test]
fn call_prints_the_result_and_exits_by_is_error() {
    let dir = TempDir::with_config();
    let args = r#"{"text": "hello there"}"#;
    let run = mcp(
        &dir,
        &["--config", "mcp.json", "fake", "call", "echo", args],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let result: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(text(&result), "hello there");
    assert_eq!(result["isError"], false);

    let run = mcp(
        &dir,
        &["fake", "call", "fail", r#"{"message": "nope"}"#],
        "",
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let result: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        (result["isError"].clone(), text(&result)),
        (json!(true), "nope")
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn call_arguments_default_to_an_empty_object() {
    let dir = TempDir::with_config();
    let run = mcp(&dir, &["fake", "call", "structured"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let result: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(result["structuredContent"]["answer"], 42, "{result}");

    let run = mcp(&dir, &["fake", "call", "fail"], "");
    assert_eq!(run.code, 1, "{}", run.stderr);
    let result: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(text(&result), "tool failed");

    // Arguments that are not an object are the caller's mistake: exit 2, one line.
    let run = mcp(&dir, &["fake", "call", "echo", "[1]"], "");
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("mcp: fake: "), "{}", run.stderr);
}

#[test]
fn batch_from_a_file_keeps_order_and_skips_blank_lines() {
    let dir = TempDir::with_config();
    let input = format!("{}\n\n  \n{}\n{}\n", echo("a"), echo("b"), echo("c"));
    dir.write("calls.jsonl", &input);
    let run = mcp(&dir, &["fake", "batch", "calls.jsonl"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let texts: Vec<String> = run.lines().iter().map(|r| text(r).to_owned()).collect();
    assert_eq!(texts, ["a", "b", "c"]);
}

#[test]
fn batch_from_stdin_marks_failures_and_exits_1() {
    let dir = TempDir::with_config();
    let fail = json!({"tool": "fail", "arguments": {"message": "bad"}});
    let input = format!("{}\n{fail}\n{}", echo("first"), echo("last"));
    let run = mcp(&dir, &["--timeout", "5", "fake", "batch"], &input);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines = run.lines();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert_eq!(text(&lines[0]), "first");
    assert_eq!(
        (lines[1]["isError"].clone(), text(&lines[1])),
        (json!(true), "bad")
    );
    assert_eq!(text(&lines[2]), "last");
}

#[test]
fn batch_call_that_fails_is_an_error_line() {
    let dir = TempDir::with_config();
    let hang = json!({"tool": "hang"});
    let input = format!("{}\n{hang}\n", echo("ok"));
    let run = mcp(&dir, &["--timeout", "0.5", "fake", "batch"], &input);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines = run.lines();
    assert_eq!(text(&lines[0]), "ok");
    let error = lines[1]["error"].as_str().unwrap();
    assert!(error.contains("timed out"), "{error}");
}

#[test]
fn batch_bad_line_is_named_and_nothing_runs() {
    let dir = TempDir::with_config();
    let input = format!("{}\n\n{{\"tool\": \n", echo("a"));
    let run = mcp(&dir, &["fake", "batch"], &input);
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("mcp: fake: stdin line 3:"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_server_is_one_line_naming_it() {
    let dir = TempDir::with_config();
    let run = mcp(&dir, &["nosuch", "tools"], "");
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty());
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("mcp: nosuch: "), "{}", run.stderr);
}

#[test]
fn server_dying_in_handshake_shows_its_stderr() {
    let dir = TempDir::with_config();
    for args in [
        &["dying", "tools"][..],
        &["dying", "call", "echo", r#"{"text": "x"}"#],
        &["dying", "batch"],
    ] {
        let stdin = echo("x");
        let run = mcp(&dir, args, &stdin);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        let lines = run.stderr_lines();
        assert!(lines[0].starts_with("mcp: dying: "), "{}", run.stderr);
        assert!(!lines[0].contains("dying in handshake"), "{}", run.stderr);
        let tail = &lines[1..];
        assert!(tail.iter().all(|l| l.starts_with("    ")), "{}", run.stderr);
        assert!(
            tail.iter().any(|l| l.contains("dying in handshake")),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn timeout_ends_a_hanging_call() {
    let dir = TempDir::with_config();
    let start = Instant::now();
    let run = mcp(&dir, &["--timeout", "0.2", "fake", "call", "hang"], "");
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.starts_with("mcp: fake: "), "{}", run.stderr);
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    // Far below the 60 s default deadline: the flag was applied.
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn config_problems_exit_2() {
    let dir = TempDir::new();
    let missing = mcp(&dir, &["fake", "tools"], "");
    assert_eq!(missing.code, 2);
    assert_eq!(missing.stderr_lines().len(), 1, "{}", missing.stderr);
    assert!(missing.stderr.contains("mcp.json"), "{}", missing.stderr);

    dir.write("bad.json", "{\"mcpServers\": {\"fake\": ");
    let bad = mcp(&dir, &["--config", "bad.json", "fake", "tools"], "");
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.starts_with("mcp: fake: "), "{}", bad.stderr);
    assert!(bad.stderr.contains("bad.json"), "{}", bad.stderr);

    dir.write(
        "nocommand.json",
        r#"{"mcpServers": {"fake": {"args": []}}}"#,
    );
    let bad = mcp(&dir, &["--config", "nocommand.json", "fake", "tools"], "");
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let dir = TempDir::with_config();
    for args in [
        &[][..],
        &["fake"],
        &["fake", "frobnicate"],
        &["fake", "call"],
        &["fake", "tools", "extra"],
        &["--timeout", "soon", "fake", "tools"],
        &["--timeout", "0", "fake", "tools"],
        &["fake", "tools", "--config"],
    ] {
        let run = mcp(&dir, args, "");
        assert_eq!(run.code, 2, "{args:?}");
        assert_eq!(run.stderr_lines().len(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("mcp: "), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
    let run = mcp(&dir, &["fake", "call", "echo", "{not json"], "");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("ARGS_JSON"), "{}", run.stderr);
}

#[test]
fn config_warnings_go_to_stderr_and_the_run_goes_on() {
    let dir = TempDir::new();
    let config = json!({"mcpServers": {"fake": {"command": FAKE, "colour": "red"}}});
    dir.write("mcp.json", &config.to_string());
    let run = mcp(&dir, &["fake", "call", "echo", r#"{"text": "still"}"#], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(text(&serde_json::from_str(&run.stdout).unwrap()), "still");
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(lines[0].starts_with("mcp: warning: "), "{}", run.stderr);
    assert!(lines[0].contains("colour"), "{}", run.stderr);
}

/// The children of a process, from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        if rest.split(' ').nth(1) == Some(pid.to_string().as_str()) {
            out.push(child);
        }
    }
    out
}

/// Gone, or a zombie waiting for init to reap it: either way, not running.
fn not_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'),
    }
}

/// The fake server a host runs, once it has started.
fn server_of(host: u32) -> Option<u32> {
    children_of(host)
        .into_iter()
        .find(|&pid| common::runs(pid, "mcp-fake-server"))
}

#[test]
fn servers_die_with_a_host_that_is_killed() {
    // The host (the example) is SIGKILLed mid-call, so nothing of ours runs to clean up,
    // and this server ignores the end of its input and SIGTERM: only PR_SET_PDEATHSIG
    // can end it.
    let dir = TempDir::new();
    let config = json!({"mcpServers": {
        "stubborn": {"command": FAKE, "args": ["--ignore-stdin-eof", "--ignore-sigterm"]},
    }});
    dir.write("mcp.json", &config.to_string());
    let mut host = Command::new(example())
        .args(["stubborn", "call", "hang"])
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // (The host's other child is the library's watchdog.)
    let server = loop {
        if let Some(pid) = server_of(host.id()) {
            break pid;
        }
        assert!(
            std::time::Instant::now() < until,
            "the server never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!not_running(server));
    host.kill().unwrap();
    host.wait().unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !not_running(server) {
        assert!(
            std::time::Instant::now() < until,
            "server {server} outlived its host"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn a_killed_hosts_servers_take_their_process_groups_with_them() {
    // The host is SIGKILLed mid-call; its server has a child of its own, in the server's
    // process group, which nothing of the host's ever sees. The library's watchdog kills
    // the whole group when the host dies.
    let dir = TempDir::new();
    let config = json!({"mcpServers": {
        "parent": {"command": FAKE, "args": ["--spawn-grandchild"]},
    }});
    dir.write("mcp.json", &config.to_string());
    let mut host = Command::new(example())
        .args(["parent", "call", "hang"])
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = common::wait_for(Duration::from_secs(10), || server_of(host.id()));
    let Some(server) = server else {
        let _ = host.kill();
        let _ = host.wait();
        panic!("the server never started");
    };
    let grandchild = common::wait_for(Duration::from_secs(5), || {
        children_of(server)
            .into_iter()
            .find(|&pid| common::runs(pid, "sleep"))
    });
    // Whatever happens, nothing is left running.
    let _kill = common::KillOnDrop(grandchild.into_iter().chain([server]).collect());
    let grandchild = grandchild.expect("the grandchild started");
    assert_eq!(
        common::pgid_of(grandchild),
        Some(server),
        "in the server's group"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!not_running(server) && !not_running(grandchild));
    host.kill().unwrap();
    host.wait().unwrap();
    let gone = common::wait_for(Duration::from_secs(5), || {
        (not_running(server) && not_running(grandchild)).then_some(())
    });
    assert!(
        gone.is_some(),
        "outlived the host: server {server} {}, grandchild {grandchild} {}",
        if not_running(server) {
            "gone"
        } else {
            "running"
        },
        if not_running(grandchild) {
            "gone"
        } else {
            "running"
        },
    );
}

/// The stderr lines that are not configuration warnings.
fn not_warnings(run: &Run) -> Vec<&str> {
    run.stderr_lines()
        .into_iter()
        .filter(|l| !l.starts_with("mcp: warning: "))
        .collect()
}

/// A directory whose `mcp.json` has a server of each status.
fn with_every_status() -> TempDir {
    let dir = TempDir::new();
    let config = json!({"mcpServers": {
        "fake": {"command": FAKE},
        "gh": {"command": FAKE, "env": {"TOKEN": "${MCP_POOL_EXAMPLE_SURELY_UNSET}"}},
        "ws": {"type": "websocket", "url": "wss://example.com/mcp"},
        "off": {"command": FAKE, "disabled": true},
    }});
    dir.write("mcp.json", &config.to_string());
    dir
}

#[test]
fn servers_lists_each_with_its_status() {
    let dir = with_every_status();
    let run = mcp(&dir, &["servers"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        list,
        json!([
            {"name": "fake", "status": "configured"},
            {"name": "gh", "status": "skipped",
             "reason": "`env.TOKEN`: environment variable `MCP_POOL_EXAMPLE_SURELY_UNSET` is not set"},
            {"name": "off", "status": "disabled"},
            {"name": "ws", "status": "skipped",
             "reason": "type `websocket` is not supported (`stdio`, `http`, `streamable-http` or `sse`)"},
        ])
    );
    // The skipped ones were warned about; the rest of stderr is empty.
    assert_eq!(run.stderr_lines().len(), 2, "{}", run.stderr);
    assert!(not_warnings(&run).is_empty(), "{}", run.stderr);
}

#[test]
fn a_skipped_or_disabled_server_says_so_and_the_others_work() {
    let dir = with_every_status();
    let run = mcp(&dir, &["gh", "tools"], "");
    assert_eq!(run.code, 2);
    assert_eq!(
        not_warnings(&run),
        [
            "mcp: gh: skipped in mcp.json: `env.TOKEN`: environment variable \
          `MCP_POOL_EXAMPLE_SURELY_UNSET` is not set"
        ]
    );
    let run = mcp(&dir, &["off", "call", "echo"], "");
    assert_eq!(run.code, 2);
    assert_eq!(not_warnings(&run), ["mcp: off: disabled in mcp.json"]);
    let run = mcp(&dir, &["nosuch", "tools"], "");
    assert_eq!(
        not_warnings(&run),
        ["mcp: nosuch: no such server in mcp.json (it has: fake)"]
    );
    let run = mcp(&dir, &["fake", "call", "echo", r#"{"text": "ok"}"#], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(text(&serde_json::from_str(&run.stdout).unwrap()), "ok");
}

/// A directory whose `mcp.json` has `slow`, a fake server that takes 1.5 s to start.
fn with_slow_server() -> TempDir {
    let dir = TempDir::new();
    let config = json!({"mcpServers": {
        "slow": {"command": FAKE, "args": ["--slow-start-ms", "1500"]},
    }});
    dir.write("mcp.json", &config.to_string());
    dir
}

#[test]
fn timeout_bounds_the_call_and_start_timeout_the_start() {
    let dir = with_slow_server();
    // The call's deadline does not count the 1.5 s start.
    for args in [
        &[
            "--timeout",
            "0.5",
            "slow",
            "call",
            "echo",
            r#"{"text": "late"}"#,
        ][..],
        &["--timeout", "0.5", "slow", "tools"],
        &["--timeout", "0.5", "slow", "ping"],
    ] {
        let run = mcp(&dir, args, "");
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        // Not a terminal: no progress lines.
        assert!(run.stderr.is_empty(), "{args:?}: {}", run.stderr);
    }
    // The start's own deadline, shorter than the start: only that fails.
    let run = mcp(&dir, &["--start-timeout", "0.3", "slow", "tools"], "");
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("mcp: slow: timed out during handshake after 30"),
        "{}",
        run.stderr
    );
    let run = mcp(&dir, &["--start-timeout", "soon", "slow", "tools"], "");
    assert_eq!(run.code, 2);
}

#[test]
fn a_slow_start_shows_progress_on_a_terminal() {
    // `script` runs the example on a pseudo-terminal (util-linux).
    let script = Path::new("/usr/bin/script");
    if !script.exists() {
        eprintln!("skipped: no /usr/bin/script to give the example a terminal");
        return;
    }
    let dir = with_slow_server();
    let command = format!("{} slow ping", example().display());
    let out = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .current_dir(&dir.0)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("mcp: starting slow... 1 s"), "{text:?}");
    assert!(text.contains("mcp: slow started in 1."), "{text:?}");
    assert!(text.contains("roundTripMs"), "{text:?}");
}

#[test]
fn resources_prompts_ping_and_info() {
    let dir = TempDir::with_config();
    let run = mcp(&dir, &["fake", "resources"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let resources: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(resources.len(), 5, "{}", run.stdout);
    assert_eq!(resources[1]["uri"], "fake://r/1");

    let run = mcp(&dir, &["fake", "read", "fake://r/1"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let read: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(read["contents"][0]["text"], "resource 1", "{read}");
    let run = mcp(&dir, &["fake", "read", "fake://nope"], "");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.starts_with("mcp: fake: server error"),
        "{}",
        run.stderr
    );

    let run = mcp(&dir, &["fake", "prompts"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let prompts: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(prompts[0]["name"], "greet", "{}", run.stdout);
    let run = mcp(&dir, &["fake", "prompt", "greet", r#"{"name": "Ada"}"#], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let prompt: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        prompt["messages"][0]["content"]["text"], "Hello Ada",
        "{prompt}"
    );

    let run = mcp(&dir, &["fake", "ping"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ping: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        ping["roundTripMs"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{ping}"
    );

    let run = mcp(&dir, &["fake", "info"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let info: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(info["protocolVersion"].is_string(), "{info}");
    assert!(info["capabilities"]["tools"].is_object(), "{info}");
    assert_eq!(info["serverInfo"]["name"], "mcp-fake-server", "{info}");
    assert_eq!(info["transport"], "stdio", "{info}");
    for args in [
        &["fake", "read"][..],
        &["fake", "prompt"],
        &["fake", "info", "x"],
    ] {
        assert_eq!(mcp(&dir, args, "").code, 2, "{args:?}");
    }
}

#[test]
fn a_dying_servers_cause_is_shown_even_above_a_long_stack() {
    // What node prints for a script that does not exist: the cause is above the stack, so
    // the last few lines alone miss it.
    let dir = TempDir::new();
    let node_error = "node:internal/modules/cjs/loader:1228\n  throw err;\n  ^\n\n\
        Error: Cannot find module '/srv/app/dist/index.js'\n\
        \x20   at Module._resolveFilename (node:internal/modules/cjs/loader:1225:15)\n\
        \x20   at Module._load (node:internal/modules/cjs/loader:1051:27)\n\
        \x20   at Function.executeUserEntryPoint [as runMain] (node:internal/modules/run_main:174:12)\n\
        \x20   at node:internal/main/run_main_module:28:49 {\n\
        \x20 code: 'MODULE_NOT_FOUND',\n  requireStack: []\n}\n\nNode.js v20.11.1\n";
    let script = dir.write("node-error.txt", node_error);
    let config = json!({"mcpServers": {
        "node": {"command": "sh", "args": ["-c", format!("cat '{}' >&2; exit 1", script.display())]},
    }});
    dir.write("mcp.json", &config.to_string());
    let run = mcp(&dir, &["node", "tools"], "");
    assert_eq!(run.code, 2);
    let lines = run.stderr_lines();
    assert!(
        lines[0].starts_with("mcp: node: handshake with server failed: server exited with code 1"),
        "{}",
        run.stderr
    );
    let shown: Vec<&str> = lines[1..].iter().map(|l| l.trim()).collect();
    assert!(
        shown.contains(&"Error: Cannot find module '/srv/app/dist/index.js'"),
        "{}",
        run.stderr
    );
    assert!(
        shown.contains(&"code: 'MODULE_NOT_FOUND',"),
        "{}",
        run.stderr
    );
    // The stack is cut to its first frames.
    assert!(shown.contains(&"... 2 more frames"), "{}", run.stderr);
    assert!(!run.stderr.contains("run_main_module"), "{}", run.stderr);
}

#[test]
fn a_running_servers_chatter_is_not_shown_as_the_cause() {
    // The server writes at start and is healthy, but speaks only the per-request
    // generation while the file pins the handshake one: the start fails for that reason.
    let dir = TempDir::new();
    let config = json!({"mcpServers": {
        "chatty": {
            "command": FAKE,
            "args": ["--generation", "stateless", "--stderr-at-start", "300"],
            "pool": {"generation": "handshake"}
        },
    }});
    dir.write("mcp.json", &config.to_string());
    let run = mcp(&dir, &["chatty", "tools"], "");
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("mcp: chatty: "), "{}", run.stderr);
    assert!(!run.stderr.contains("server stderr"), "{}", run.stderr);
}

#[test]
fn the_shipped_config_works_from_any_directory() {
    let dir = TempDir::new();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mcp.json");
    let config = shipped.to_str().unwrap();
    let run = mcp(&dir, &["--config", config, "servers"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names: Vec<Value> = serde_json::from_str::<Vec<Value>>(&run.stdout)
        .unwrap()
        .into_iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, ["everything", "everything-local"]);
    // Its local server runs from here when the reference servers are installed.
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "target/interop/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    );
    let node = Command::new("node").arg("--version").output().is_ok();
    if !installed.exists() || !node {
        eprintln!("skipped running everything-local: no node or no .ci/install-reference-servers");
        return;
    }
    let run = mcp(&dir, &["--config", config, "everything-local", "ping"], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
}
