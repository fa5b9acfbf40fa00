//! The warm-up curve: a pool of N sessions of the fake server started before `build` returns
//! (`min_sessions(N).max_sessions(N).warm_eagerly(true)`), for N = 1, 10, 100, 300 (quick
//! run: 1, 10, 50), and the start cost per session (build time / N). Floors in the same run:
//!
//! * a raw spawn-and-handshake of one process (`common::Raw::start`: spawn the fake server,
//!   write `initialize`, read its answer, write `notifications/initialized`);
//! * N of those one after another, all kept alive as the pool keeps its sessions: what the
//!   system charges per process when N are running (the pool's `warm_eagerly` also starts
//!   its sessions one after another, on the calling thread).
//!
//! Each pool is closed and timed closing (next to the raw processes' stdin closed and each
//! waited for, one after another); no server process may be left after `close`.
//!
//! `cargo bench --bench warmup`. The subjects take turns, so that the noise of a shared
//! machine lands on all of them alike.

mod common;

use std::time::{Duration, Instant};

use common::{ms, ratio, table, Raw, Samples, Usage};
use mcp_pool::{Pool, PoolSettings};

/// Server processes (the fake server) that are still children of this process, zombies too.
fn servers_left() -> usize {
    common::children()
        .keys()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "mcp-fake-server")
        })
        .count()
}

/// Each session holds a handful of descriptors (pipes, pidfd, eventfds): lifts the soft limit
/// of open files to the hard one, for systems where it is 1024.
fn raise_open_files() {
    // SAFETY: a plain C struct that getrlimit fills in, and a valid pointer to it.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// One timed start of N (sessions or processes): the time to start them all, the time to
/// close them all, and the client's CPU time and context switches while starting.
struct Run {
    start: Duration,
    close: Duration,
    usage: Usage,
}

fn pool_run(n: usize) -> Run {
    let settings = PoolSettings::new().min_sessions(n).max_sessions(n);
    let before = common::usage();
    let t = Instant::now();
    let pool = Pool::builder()
        .server_with(common::config(), settings)
        .warm_eagerly(true)
        .build()
        .expect("build the pool");
    let start = t.elapsed();
    let usage = common::usage().since(before);
    assert_eq!(pool.live_children(), n, "the pool's live children");
    let t = Instant::now();
    pool.close();
    let close = t.elapsed();
    assert_eq!(pool.live_children(), 0, "live children after close");
    let left = servers_left();
    assert_eq!(left, 0, "{left} server processes left after `Pool::close`");
    Run {
        start,
        close,
        usage,
    }
}

fn raw_run(n: usize) -> Run {
    let before = common::usage();
    let t = Instant::now();
    let raws: Vec<Raw> = (0..n).map(|_| Raw::start()).collect();
    let start = t.elapsed();
    let usage = common::usage().since(before);
    let t = Instant::now();
    for raw in raws {
        raw.close();
    }
    Run {
        start,
        close: t.elapsed(),
        usage,
    }
}

fn median_f(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median of seconds, as a duration.
fn median(v: &[f64]) -> Duration {
    Duration::from_secs_f64(median_f(v))
}

#[derive(Default)]
struct Curve {
    /// Per session (or process): start, close, CPU; and the switches.
    start: Vec<f64>,
    close: Vec<f64>,
    cpu: Vec<f64>,
    switches: Vec<f64>,
}

impl Curve {
    fn push(&mut self, n: usize, run: Run) {
        let n = n as f64;
        self.start.push(run.start.as_secs_f64() / n);
        self.close.push(run.close.as_secs_f64() / n);
        self.cpu.push(run.usage.cpu.as_secs_f64() / n);
        self.switches.push(run.usage.switches as f64 / n);
    }
}

fn main() {
    common::header("Warm-up: starting a pool of N sessions");
    raise_open_files();
    let quick = common::quick();
    let (sizes, rounds, singles): (&[usize], usize, usize) = if quick {
        (&[1, 10, 50], 3, 20)
    } else {
        (&[1, 10, 100, 300], 3, 30)
    };
    // Runs of a size per round: more of the small ones, whose single figures are noisier.
    let reps = |n: usize| (singles / n).max(1);

    // Warm-up: the first pool also starts the watchdog process, once per host process.
    pool_run(1);
    raw_run(1);

    let mut floor = Samples::default();
    let mut pools: Vec<Curve> = sizes.iter().map(|_| Curve::default()).collect();
    let mut raws: Vec<Curve> = sizes.iter().map(|_| Curve::default()).collect();
    for round in 0..rounds {
        for (i, &n) in sizes.iter().enumerate() {
            // The three take turns: each round and size starts with another.
            for k in 0..3 {
                match (k + round + i) % 3 {
                    0 => {
                        for _ in 0..singles {
                            let t = Instant::now();
                            let raw = Raw::start();
                            floor.push(t.elapsed());
                            raw.close();
                        }
                    }
                    1 => {
                        for _ in 0..reps(n) {
                            raws[i].push(n, raw_run(n));
                        }
                    }
                    _ => {
                        for _ in 0..reps(n) {
                            pools[i].push(n, pool_run(n));
                        }
                    }
                }
            }
        }
    }

    let floor_p50 = floor.p50();
    println!(
        "floor: a raw spawn-and-handshake of one process, p50 {} (p99 {}, {} runs)\n",
        ms(floor_p50),
        ms(floor.p99()),
        floor.len()
    );
    let one = median(&pools[0].start).as_secs_f64();
    let mut rows = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let (pool, raw) = (&pools[i], &raws[i]);
        let per = median(&pool.start);
        let raw_per = median(&raw.start);
        rows.push(vec![
            n.to_string(),
            pool.start.len().to_string(),
            ms(per * n as u32),
            ms(per),
            ratio(per.as_secs_f64(), one),
            ratio(per.as_secs_f64(), floor_p50.as_secs_f64()),
            ms(raw_per),
            ratio(per.as_secs_f64(), raw_per.as_secs_f64()),
            format!("{:.0} µs", median(&pool.cpu).as_secs_f64() * 1e6),
            format!("{:.0} µs", median(&raw.cpu).as_secs_f64() * 1e6),
            format!("{:.1}", median_f(&pool.switches)),
            ms(median(&pool.close)),
            ms(median(&raw.close)),
        ]);
    }
    table(
        &[
            "sessions N",
            "runs",
            "pool build (p50)",
            "per session",
            "vs a pool of 1",
            "vs raw spawn-and-handshake of one (floor)",
            "raw: N one after another, per process",
            "pool vs raw N",
            "client CPU per session",
            "raw client CPU per process",
            "client context switches per session",
            "pool close, per session",
            "raw close (stdin closed, waited), per process",
        ],
        &rows,
    );
    println!(
        "Medians over the runs. Client CPU time and context switches are this process's \
         (getrusage, all threads) while starting; the servers' are not counted. Each pool was \
         closed with no server process left.\n"
    );
    let last = median(&pools[sizes.len() - 1].start).as_secs_f64();
    let flat = last / one;
    let cold = one / floor_p50.as_secs_f64();
    println!(
        "target: per-session start cost flat in the pool's size ({} sessions ≤ 1.5× a pool of \
         1): {flat:.2}×, {}",
        sizes[sizes.len() - 1],
        common::verdict(flat <= 1.5)
    );
    println!(
        "target: cold start (a pool of 1) ≤ 1.2× a raw spawn-and-handshake: {cold:.2}×, {}",
        common::verdict(cold <= 1.2)
    );
    let curve: serde_json::Map<String, serde_json::Value> = sizes
        .iter()
        .zip(&pools)
        .map(|(n, c)| (n.to_string(), (median(&c.start).as_secs_f64() * 1e3).into()))
        .collect();
    common::emit_json(
        "warmup",
        serde_json::json!({
            "raw_start_ms": floor_p50.as_secs_f64() * 1e3,
            "pool_per_session_ms": curve,
        }),
    );
}
