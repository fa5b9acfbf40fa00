//! What the benches share: the fake server, the raw client that measures the floors, timing
//! and tables, and readings from `/proc`.
//!
//! Every bench is a plain `harness = false` binary that prints markdown tables. `cargo bench`
//! passes `--bench`; without it (`cargo test --benches`), or with `MCP_BENCH_QUICK=1`, each
//! bench runs a short version that takes seconds.
#![allow(dead_code)] // each bench uses a different part

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mcp_pool::{Generation, Pool, PoolSettings, ServerConfig, Session};
use serde_json::{json, Value};

/// The repository's fake MCP server, built by cargo for the benches.
pub const FAKE: &str = env!("CARGO_BIN_EXE_mcp-fake-server");

/// The bench's server name in pools (short, so thread names stay readable in `/proc`).
pub const SERVER: &str = "fake";

/// Whether to run the short version: `MCP_BENCH_QUICK=1`, or not run by `cargo bench`.
pub fn quick() -> bool {
    let env = std::env::var("MCP_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    env || !std::env::args().any(|a| a == "--bench")
}

/// The header every bench prints first.
pub fn header(title: &str) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mode = if quick() { "quick run" } else { "full run" };
    println!("\n## {title}\n");
    println!("fake server `{FAKE}`, {cores} cores, {mode}\n");
}

// ---- the fake server through the library ------------------------------------------------------

/// The fake server, pinned to the handshake generation: the raw client speaks it too, so
/// both send the same lines.
pub fn config() -> ServerConfig {
    ServerConfig::new(SERVER, FAKE).generation(Generation::Handshake)
}

pub fn echo_args() -> Value {
    json!({"text": "hello"})
}

pub fn session() -> Session {
    Session::start(config()).expect("start the fake server")
}

/// A pool over the fake server with `sessions` sessions started (warm) before it returns.
pub fn pool(sessions: usize) -> Pool {
    let settings = PoolSettings::new()
        .max_sessions(sessions)
        .min_sessions(sessions);
    Pool::builder()
        .server_with(config(), settings)
        .warm_eagerly(true)
        .build()
        .expect("build the pool")
}

pub fn pool_call(pool: &Pool) {
    let r = pool.call_tool(SERVER, "echo", echo_args()).unwrap();
    assert!(!r.is_error);
}

pub fn session_call(session: &Session) {
    let r = session.call_tool("echo", echo_args()).unwrap();
    assert!(!r.is_error);
}

// ---- the raw client: the floors ---------------------------------------------------------------

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

fn echo_line(id: u64, out: &mut Vec<u8>) {
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"hello"}}}}}}"#
    );
    out.extend_from_slice(line.as_bytes());
    out.push(b'\n');
}

/// The smallest possible client: lines out, lines in, on the calling thread. No ids are
/// matched, no JSON parsed beyond a substring check. What any client must at least spend.
pub struct Raw {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
    buf: Vec<u8>,
    /// The answer line of [`Raw::request`], as bytes (no UTF-8 pass before the parse).
    answer: Vec<u8>,
    next_id: u64,
}

/// The size of the raw clients' read buffers: a pipe's capacity, so that a big answer is read
/// in as few system calls as the pipe allows.
const READ_BUFFER: usize = 64 * 1024;

impl Raw {
    /// Spawns the fake server and runs the handshake.
    pub fn start() -> Raw {
        let mut child = Command::new(FAKE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the fake server");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::with_capacity(READ_BUFFER, child.stdout.take().unwrap());
        let mut raw = Raw {
            child,
            stdin,
            stdout,
            line: String::new(),
            buf: Vec::with_capacity(16 * 1024),
            answer: Vec::new(),
            next_id: 1,
        };
        raw.send(INITIALIZE.as_bytes());
        raw.read_line();
        raw.send(INITIALIZED.as_bytes());
        raw
    }

    fn send(&mut self, line: &[u8]) {
        self.buf.clear();
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        self.stdin.write_all(&self.buf).unwrap();
    }

    fn read_line(&mut self) {
        self.line.clear();
        self.stdout.read_line(&mut self.line).unwrap();
        assert!(self.line.contains("\"result\""), "{}", self.line);
    }

    /// One call: write a request line, read the answer line.
    pub fn call(&mut self) {
        self.buf.clear();
        echo_line(self.next_id, &mut self.buf);
        self.next_id += 1;
        self.stdin.write_all(&self.buf).unwrap();
        self.read_line();
        assert!(self.line.contains("hello"));
    }

    /// A pipelined window: `n` request lines in one write, then `n` answer lines.
    pub fn window(&mut self, n: usize) {
        self.buf.clear();
        for _ in 0..n {
            echo_line(self.next_id, &mut self.buf);
            self.next_id += 1;
        }
        self.stdin.write_all(&self.buf).unwrap();
        for _ in 0..n {
            self.read_line();
        }
    }

    /// One `tools/call` of `tool` with `arguments`, done as any client must at least do it:
    /// the request serialized from the `Value` (`serde_json::to_writer`), one write, the answer
    /// line read as bytes and, with `parse`, parsed into a `serde_json::Value` (without, only
    /// checked for a `"result"`). Returns the answer line's length.
    pub fn request(&mut self, tool: &str, arguments: &Value, parse: bool) -> usize {
        self.buf.clear();
        let request = json!({
            "jsonrpc": "2.0",
            "id": self.next_id,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        });
        self.next_id += 1;
        serde_json::to_writer(&mut self.buf, &request).unwrap();
        self.buf.push(b'\n');
        self.stdin.write_all(&self.buf).unwrap();
        self.answer.clear();
        self.stdout.read_until(b'\n', &mut self.answer).unwrap();
        if parse {
            let answer: Value = serde_json::from_slice(&self.answer).expect("an answer in JSON");
            assert!(answer.get("result").is_some(), "{answer}");
        } else {
            let head = &self.answer[..self.answer.len().min(64)];
            assert!(head.windows(8).any(|w| w == b"\"result\""));
        }
        self.answer.len()
    }

    /// Closes stdin and waits for the server to exit.
    pub fn close(self) {
        let Raw {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        child.wait().unwrap();
    }
}

/// The raw client in the design's shape: the calling thread hands each request line over a
/// crossbeam channel to a writer thread, which writes it to the server's stdin, and reads the
/// answer line itself. A sequential call crosses three threads (caller → writer → server →
/// caller), as in mcp-pool, where the worker owns stdin: the best that shape allows.
pub struct ThreeHop {
    child: Child,
    to_writer: Option<crossbeam_channel::Sender<Vec<u8>>>,
    writer: Option<JoinHandle<ChildStdin>>,
    stdout: BufReader<ChildStdout>,
    line: String,
    next_id: u64,
}

impl ThreeHop {
    /// Spawns the fake server, runs the handshake on the calling thread, then starts the
    /// writer thread.
    pub fn start() -> ThreeHop {
        let Raw {
            child,
            mut stdin,
            stdout,
            ..
        } = Raw::start();
        let (to_writer, from_caller) = crossbeam_channel::unbounded::<Vec<u8>>();
        let writer = std::thread::Builder::new()
            .name("raw-writer".into())
            .spawn(move || {
                for line in from_caller {
                    stdin.write_all(&line).unwrap();
                }
                stdin
            })
            .expect("spawn the writer thread");
        ThreeHop {
            child,
            to_writer: Some(to_writer),
            writer: Some(writer),
            stdout,
            line: String::new(),
            next_id: 1,
        }
    }

    /// One call: a request line to the writer thread, the answer line read here.
    pub fn call(&mut self) {
        let mut buf = Vec::with_capacity(128);
        echo_line(self.next_id, &mut buf);
        self.next_id += 1;
        self.to_writer.as_ref().unwrap().send(buf).unwrap();
        self.line.clear();
        self.stdout.read_line(&mut self.line).unwrap();
        assert!(self.line.contains("\"result\"") && self.line.contains("hello"));
    }

    /// Stops the writer thread, closes stdin and waits for the server to exit.
    pub fn close(mut self) {
        drop(self.to_writer.take());
        let stdin = self.writer.take().unwrap().join().unwrap();
        drop(stdin);
        self.child.wait().unwrap();
    }
}

/// The raw cold start: spawn, handshake, one call (the first duration), close stdin and
/// wait for the exit (the second).
pub fn raw_cold() -> (Duration, Duration) {
    let start = Instant::now();
    let mut raw = Raw::start();
    raw.call();
    let first = start.elapsed();
    raw.close();
    (first, start.elapsed())
}

// ---- timing and tables ------------------------------------------------------------------------

/// Latency samples.
#[derive(Default, Clone)]
pub struct Samples {
    sorted: bool,
    all: Vec<Duration>,
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.all.push(d);
        self.sorted = false;
    }

    pub fn extend(&mut self, other: &Samples) {
        self.all.extend_from_slice(&other.all);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// The `q` quantile (0.0 to 1.0), nearest rank.
    pub fn q(&mut self, q: f64) -> Duration {
        if !self.sorted {
            self.all.sort_unstable();
            self.sorted = true;
        }
        if self.all.is_empty() {
            return Duration::ZERO;
        }
        self.all[((self.all.len() - 1) as f64 * q).round() as usize]
    }

    pub fn p50(&mut self) -> Duration {
        self.q(0.5)
    }

    pub fn p99(&mut self) -> Duration {
        self.q(0.99)
    }

    pub fn mean(&self) -> Duration {
        if self.all.is_empty() {
            return Duration::ZERO;
        }
        self.all.iter().sum::<Duration>() / self.all.len() as u32
    }
}

/// Times `f` `n` times into `samples`; returns the CPU time and the context switches of this
/// process over the `n` runs (see [`usage`]).
pub fn time_n(samples: &mut Samples, n: usize, mut f: impl FnMut()) -> Usage {
    let before = usage();
    for _ in 0..n {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    usage().since(before)
}

/// A duration for a table: milliseconds with three decimals below 10 ms.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.3} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

pub fn ratio(x: f64, floor: f64) -> String {
    format!("{:.2}×", x / floor)
}

/// A rate with thousands separators.
pub fn rate(per_sec: f64) -> String {
    let n = per_sec.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints a markdown table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    println!("| {} |", headers.join(" | "));
    println!("|{}", "---|".repeat(headers.len()));
    for row in rows {
        println!("| {} |", row.join(" | "));
    }
    println!();
}

/// `met` or `missed` for a target.
pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

/// With `MCP_BENCH_JSON=1`, prints one machine-readable line (read by
/// `benches/peers/compare.py`).
pub fn emit_json(bench: &str, figures: Value) {
    if std::env::var("MCP_BENCH_JSON").is_ok_and(|v| v == "1") {
        println!("BENCH-JSON {}", json!({"bench": bench, "figures": figures}));
    }
}

/// Runs `f` once per round on each subject in turn, rotating the order, so that the noise of
/// a shared machine lands on all of them alike.
pub fn rounds<const N: usize>(rounds: usize, mut f: impl FnMut(usize)) {
    for round in 0..rounds {
        for k in 0..N {
            f((round + k) % N);
        }
    }
}

// ---- /proc ------------------------------------------------------------------------------------

/// One thread of this process.
#[derive(Debug, Clone)]
pub struct ThreadInfo {
    pub name: String,
    /// Voluntary plus involuntary context switches: each is a wake-up (or preemption).
    pub switches: u64,
    /// Time on a CPU (`/proc/self/task/TID/schedstat`), if the kernel reports it.
    pub cpu: Option<Duration>,
}

fn status_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Every thread of this process, by thread id.
pub fn threads() -> BTreeMap<u64, ThreadInfo> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let path = entry.path();
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let switches = status_field(&status, "voluntary_ctxt_switches").unwrap_or(0)
            + status_field(&status, "nonvoluntary_ctxt_switches").unwrap_or(0);
        let cpu = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .map(Duration::from_nanos);
        out.insert(
            tid,
            ThreadInfo {
                name: name.trim().to_owned(),
                switches,
                cpu,
            },
        );
    }
    out
}

/// A field of `/proc/self/status` in its unit (kB for `Vm*`).
pub fn self_status(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status_field(&text, field).unwrap_or(0)
}

/// This process's CPU time, user plus system, from `/proc/self/stat` (clock ticks, usually
/// 10 ms each) and from `getrusage` (microseconds).
pub fn cpu_time() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`, which may contain spaces: utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let from_stat = Duration::from_nanos(ticks * 1_000_000_000 / hz);
    // SAFETY: `usage` is a plain C struct that getrusage fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage struct.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (from_stat, tv(usage.ru_utime) + tv(usage.ru_stime))
}

/// Context switches of this process so far, all its threads (ended ones too), voluntary
/// and involuntary (`getrusage`). Each voluntary one is a thread blocking to wait.
pub fn switches() -> u64 {
    usage().switches
}

/// This process's CPU time and context switches so far (`getrusage(RUSAGE_SELF)`: all its
/// threads, ended ones too; not its children, the servers), or the difference of two.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User plus system time, microsecond resolution.
    pub cpu: Duration,
    /// Voluntary plus involuntary context switches.
    pub switches: u64,
}

impl Usage {
    /// What was spent since `before`.
    pub fn since(self, before: Usage) -> Usage {
        Usage {
            cpu: self.cpu.saturating_sub(before.cpu),
            switches: self.switches.saturating_sub(before.switches),
        }
    }

    /// Client CPU time per call, in microseconds, for a table.
    pub fn cpu_per(&self, calls: f64) -> String {
        format!("{:.1} µs", self.cpu.as_secs_f64() * 1e6 / calls.max(1.0))
    }

    /// Context switches per call, for a table.
    pub fn switches_per(&self, calls: f64) -> String {
        format!("{:.1}", self.switches as f64 / calls.max(1.0))
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.cpu += other.cpu;
        self.switches += other.switches;
    }
}

/// See [`Usage`].
pub fn usage() -> Usage {
    // SAFETY: `usage` is a plain C struct that getrusage fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage struct.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Usage {
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        switches: (usage.ru_nvcsw + usage.ru_nivcsw) as u64,
    }
}

/// Direct children of this process (pid, voluntary + involuntary context switches).
pub fn children() -> BTreeMap<u32, u64> {
    let me = std::process::id();
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        if status_field(&status, "PPid") != Some(u64::from(me)) {
            continue;
        }
        let switches = status_field(&status, "voluntary_ctxt_switches").unwrap_or(0)
            + status_field(&status, "nonvoluntary_ctxt_switches").unwrap_or(0);
        out.insert(pid, switches);
    }
    out
}
