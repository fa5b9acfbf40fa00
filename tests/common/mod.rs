//! Shared helpers for the integration tests: the fake server, and leak checks.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
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
    fs::read(format!("/proc/{pid}/cmdline"))
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
