//! Shared helpers for the integration tests: the fake server, and leak checks.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mcp_pool::ServerConfig;
use parking_lot::{Mutex, MutexGuard};

/// Path of the fake server binary built by cargo for the tests.
pub const FAKE: &str = env!("CARGO_BIN_EXE_mcp-fake-server");

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs the tests of one file one at a time, so process, thread and fd counts are exact.
pub fn serial() -> MutexGuard<'static, ()> {
    let _ = env_logger::builder().is_test(true).try_init();
    // The watchdog (one child and one socket for the life of the process) is there before
    // any test takes its snapshot.
    mcp_pool::__watchdog_pid();
    SERIAL.lock()
}

/// A config for the fake server with these flags.
pub fn fake(args: &[&str]) -> ServerConfig {
    ServerConfig::new("fake", FAKE)
        .args(args.iter().copied())
        .close_grace(Duration::from_millis(500))
}

/// What this process holds that a session could leak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub children: BTreeSet<u32>,
    pub threads: BTreeSet<String>,
    pub fds: usize,
}

/// Direct children of this process (any state, zombies included).
pub fn children() -> BTreeSet<u32> {
    let me = std::process::id();
    let mut out = BTreeSet::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, pgrp, ...
        if stat_field(&stat, 1) == Some(me) && !is_watchdog(pid) {
            out.insert(pid);
        }
    }
    out
}

/// Whether `pid` is the library's watchdog (one per process, for as long as it lives; see
/// `src/session/watchdog.rs`), which is not a server's child.
pub fn is_watchdog(pid: u32) -> bool {
    // By pid first: just after its spawn its command line can still read empty (the kernel
    // sets it up after the exec has released the parent).
    mcp_pool::__watchdog_pid() == Some(pid)
        || fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|&b| b == 0).any(|arg| arg == b"mcp-pool-watchdog"))
}

/// Field `n` after the command in `/proc/PID/stat` (0 state, 1 ppid, 2 pgrp), if it reads
/// as a number (a process that is exiting can leave a short or empty file).
fn stat_field(stat: &str, n: usize) -> Option<u32> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split(' ').nth(n)?.parse().ok()
}

/// Processes in this process group (the child's group has the child's pid as its id).
pub fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if stat_field(&stat, 2) == Some(pgid) {
            out.push(pid);
        }
    }
    out
}

/// Threads of this process whose name starts with `mcp-`.
pub fn mcp_threads() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(name) = fs::read_to_string(entry.path().join("comm")) {
            let name = name.trim();
            if name.starts_with("mcp-") {
                out.insert(format!("{name}/{}", entry.file_name().to_string_lossy()));
            }
        }
    }
    out
}

pub fn snapshot() -> Resources {
    Resources {
        children: children(),
        threads: mcp_threads(),
        fds: fs::read_dir("/proc/self/fd").unwrap().count(),
    }
}

/// Asserts that, within a few seconds, the process is back to `before`: no child, no `mcp-`
/// thread and no file descriptor more.
pub fn assert_clean(before: &Resources) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let now = snapshot();
        if now == *before {
            return;
        }
        if Instant::now() > until {
            panic!("leaked resources:\nbefore {before:?}\nafter  {now:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process exists (a zombie counts: it was not reaped).
pub fn process_exists(pid: u32) -> bool {
    fs::metadata(format!("/proc/{pid}")).is_ok()
}

/// The cleanup guard of a test: takes the file's serial lock (as [`serial`]) and a
/// [`snapshot`]; when dropped at the end of a test that has not failed, asserts (as
/// [`assert_clean`]) that no child, `mcp-` thread or file descriptor is left.
///
/// ```ignore
/// let clean = common::Clean::new();
/// // ... the test; `clean.check()` asserts the same mid-test.
/// ```
///
/// Declare guards that must run first (say, a [`KillOnDrop`] for a process the test made)
/// after it: locals drop in reverse order.
pub struct Clean {
    before: Resources,
    // Dropped after `drop` has run its check: the lock is held until then.
    _serial: MutexGuard<'static, ()>,
}

impl Clean {
    pub fn new() -> Clean {
        let serial = serial();
        Clean {
            before: snapshot(),
            _serial: serial,
        }
    }

    /// What the process held when the test started.
    pub fn before(&self) -> &Resources {
        &self.before
    }

    /// Asserts now that the process is back to where it started.
    pub fn check(&self) {
        assert_clean(&self.before);
    }
}

impl Drop for Clean {
    fn drop(&mut self) {
        // A failing test reports its own failure, not the leaks it left on the way out.
        if !std::thread::panicking() {
            assert_clean(&self.before);
        }
    }
}

/// Polls `f` every 5 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The children of any process (any state), from /proc.
pub fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if stat_field(&stat, 1) == Some(parent) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// Whether `pid` runs this program now: its first argument, once it has exec'd, is
/// `program` or a path to it.
pub fn runs(pid: u32, program: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        c.split(|&b| b == 0).next().is_some_and(|arg0| {
            arg0 == program.as_bytes() || arg0.ends_with(format!("/{program}").as_bytes())
        })
    })
}

/// The process group of a process, while it exists.
pub fn pgid_of(pid: u32) -> Option<u32> {
    stat_field(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?, 2)
}

/// Gone, or a zombie: not running any more.
pub fn not_running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .get(stat.rfind(')').map_or(0, |i| i + 2)..)
            .is_some_and(|rest| rest.starts_with('Z')),
    }
}

/// Sends SIGKILL to a process.
pub fn kill9(pid: u32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Kills, on drop, the listed processes still running: processes a test made exist outside
/// the library's care (a daemon, a grandchild), so a failing test leaves none behind.
pub struct KillOnDrop(pub Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if !not_running(pid) {
                kill9(pid);
            }
        }
    }
}

/// The pid in the first line of a server's stderr that starts with `prefix` (the fake
/// server writes `grandchild pid N`, `daemon pid N`).
pub fn pid_in(stderr: &str, prefix: &str) -> Option<u32> {
    stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .and_then(|rest| rest.trim().parse().ok())
}

/// This process's resident set size, in KiB.
pub fn rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// A path under the temp dir unique to this test process, removed if it exists.
pub fn temp_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("mcp-pool-{}-{name}", std::process::id()));
    let _ = fs::remove_file(&path);
    path
}

/// What a pipe holds: its capacity and the bytes written to it and not read yet. `pid`'s
/// descriptor `fd` must be one end of a pipe (a server's stdin, say); the pipe is opened
/// again through /proc for a moment, and nothing is read.
pub fn pipe_fill(pid: u32, fd: u32) -> (usize, usize) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let pipe = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/{pid}/fd/{fd}"))
        .expect("open the pipe through /proc");
    // SAFETY: F_GETPIPE_SZ and FIONREAD on a descriptor we own; FIONREAD writes one c_int.
    unsafe {
        let capacity = libc::fcntl(pipe.as_raw_fd(), libc::F_GETPIPE_SZ);
        assert!(
            capacity > 0,
            "F_GETPIPE_SZ: {}",
            std::io::Error::last_os_error()
        );
        let mut queued: libc::c_int = 0;
        let rc = libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut queued);
        assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
        (capacity as usize, queued as usize)
    }
}

/// Bytes a process has written so far, to any file or pipe (`wchar` of /proc/PID/io).
pub fn bytes_written_by(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/io"))
        .expect("read /proc/PID/io")
        .lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("wchar in /proc/PID/io")
}

/// Builds the example `name` as this test run's profile builds (into the same target
/// directory) and returns its path.
pub fn build_example(name: &str) -> PathBuf {
    use std::path::Path;
    use std::process::Command;
    let exe = std::env::current_exe().unwrap(); // target/<profile>/deps/TEST-…
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "--example", name, "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(profile_dir.parent().unwrap());
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo to build the example");
    assert!(status.success(), "building the `{name}` example failed");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "no example binary at {}", path.display());
    path
}
