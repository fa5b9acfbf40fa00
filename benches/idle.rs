//! What an idle pool costs: memory per live session, and wake-ups while nothing is due.
//!
//! Starts a pool whose fake server has 50 warm sessions (`min_sessions(50)`: never closed
//! for idleness, so nothing is due for an hour), reads this process's RSS and thread count
//! before and after (`/proc/self/status`), then sleeps through an idle interval and counts
//! the context switches of every thread of this process (`/proc/self/task/*/status`), its CPU
//! time (`/proc/self/stat`, `getrusage`) and the servers' context switches. A wake-up is a
//! context switch; an idle pool should have none: the reaper sleeps until its next deadline,
//! workers and readers block on their channels and pipes.
//!
//! `cargo bench --bench idle`.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{ms, table};

const SESSIONS: usize = 50;

/// Thread names without the server's name: `mcp-worker-fake` → `mcp-worker`.
fn group(name: &str) -> String {
    name.strip_suffix(&format!("-{}", common::SERVER))
        .unwrap_or(name)
        .to_owned()
}

fn main() {
    common::header("An idle pool: memory per session and wake-ups");
    let idle = if common::quick() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(3)
    };

    // ---- memory per live session ----
    let (rss0, threads0, vm0) = (
        common::self_status("VmRSS"),
        common::self_status("Threads"),
        common::self_status("VmSize"),
    );
    let start = Instant::now();
    let pool = common::pool(SESSIONS);
    let started_in = start.elapsed();
    // Let the reaper's first pass and the starter threads finish.
    std::thread::sleep(Duration::from_millis(300));
    let (rss1, threads1, vm1) = (
        common::self_status("VmRSS"),
        common::self_status("Threads"),
        common::self_status("VmSize"),
    );
    let n = SESSIONS as f64;
    println!(
        "{SESSIONS} sessions started in {} ({} each, one after another)\n",
        ms(started_in),
        ms(started_in / SESSIONS as u32)
    );
    table(
        &[
            "client process",
            "before",
            "with 50 sessions",
            "per session",
        ],
        &[
            vec![
                "RSS (resident memory)".into(),
                format!("{rss0} kB"),
                format!("{rss1} kB"),
                format!("{:.0} kB", (rss1 as f64 - rss0 as f64) / n),
            ],
            vec![
                "threads".into(),
                threads0.to_string(),
                threads1.to_string(),
                format!("{:.1}", (threads1 as f64 - threads0 as f64) / n),
            ],
            vec![
                "virtual size (thread stacks are reserved, not resident)".into(),
                format!("{} MB", vm0 / 1024),
                format!("{} MB", vm1 / 1024),
                format!("{:.1} MB", (vm1 as f64 - vm0 as f64) / n / 1024.0),
            ],
        ],
    );

    // ---- wake-ups over an idle interval ----
    let me = this_tid();
    // CPU time is read right around the sleep: reading /proc itself costs this thread CPU.
    let (before, kids0) = (common::threads(), common::children());
    let cpu0 = common::cpu_time();
    std::thread::sleep(idle);
    let cpu1 = common::cpu_time();
    let (after, kids1) = (common::threads(), common::children());

    // thread group → (threads, wake-ups, CPU time)
    let mut groups: BTreeMap<String, (usize, u64, Duration)> = BTreeMap::new();
    let mut woke = Vec::new();
    for (tid, a) in &after {
        if *tid == me {
            continue; // this thread: it slept through the interval, once
        }
        let Some(b) = before.get(tid) else {
            woke.push(format!("{} (new thread {tid})", a.name));
            continue;
        };
        let g = groups.entry(group(&a.name)).or_default();
        let switches = a.switches - b.switches;
        g.0 += 1;
        g.1 += switches;
        g.2 += a.cpu.zip(b.cpu).map_or(Duration::ZERO, |(x, y)| x - y);
        if switches > 0 {
            woke.push(format!("{} (tid {tid}): {switches}", a.name));
        }
    }
    let gone = before.keys().filter(|t| !after.contains_key(t)).count();
    let mut rows: Vec<Vec<String>> = groups
        .iter()
        .map(|(name, (count, switches, cpu))| {
            vec![
                format!("`{name}`"),
                count.to_string(),
                switches.to_string(),
                format!("{:.0} µs", cpu.as_secs_f64() * 1e6),
            ]
        })
        .collect();
    let server_switches: u64 = kids1
        .iter()
        .map(|(pid, s)| s - kids0.get(pid).copied().unwrap_or(*s))
        .sum();
    rows.push(vec![
        "the 50 server processes".into(),
        kids1.len().to_string(),
        server_switches.to_string(),
        "—".into(),
    ]);
    println!(
        "idle for {:.1} s with {SESSIONS} warm sessions (this thread, which sleeps, is left out):\n",
        idle.as_secs_f64()
    );
    table(&["threads", "count", "wake-ups", "CPU time"], &rows);
    let cpu_stat = cpu1.0.saturating_sub(cpu0.0);
    let cpu_rusage = cpu1.1.saturating_sub(cpu0.1);
    println!(
        "process CPU time over the interval: {} (/proc/self/stat, 10 ms ticks), {:.0} µs (getrusage)",
        ms(cpu_stat),
        cpu_rusage.as_secs_f64() * 1e6
    );
    if gone > 0 {
        println!("{gone} thread(s) ended during the interval");
    }
    let total: u64 = groups.values().map(|g| g.1).sum();
    if woke.is_empty() {
        println!("no thread of the pool woke up");
    } else {
        println!("threads that woke up: {}", woke.join(", "));
    }
    println!(
        "target: zero wake-ups between deadlines: {total} wake-ups, {}",
        common::verdict(total == 0)
    );

    pool.close();
    std::thread::sleep(Duration::from_millis(100));
    println!(
        "after `close`: {} threads (before the pool: {threads0}), {} child processes left",
        common::self_status("Threads"),
        common::children().len()
    );
    common::emit_json(
        "idle",
        serde_json::json!({
            "rss_kb_per_session": (rss1 as f64 - rss0 as f64) / n,
            "threads_per_session": (threads1 as f64 - threads0 as f64) / n,
            "idle_wakeups": total,
        }),
    );
}

/// This thread's id (`gettid`).
fn this_tid() -> u64 {
    // /proc/thread-self links to /proc/PID/task/TID.
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}
