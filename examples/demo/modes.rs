//! The four ways of calling, each timed into a row of the table, with a progress line.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mcp_pool::{BatchOptions, Error, Pool, ToolCall};
use serde_json::Value;

/// Where spawn-per-call stops: this many calls or this much time, whichever comes first.
pub const SPAWN_CALLS: usize = 50;
const SPAWN_BUDGET: Duration = Duration::from_secs(3);

/// A progress line on stderr, redrawn in place on a terminal.
struct Progress {
    label: String,
    shown: Instant,
    tty: bool,
}

impl Progress {
    fn new(label: String) -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress {
            label,
            shown: Instant::now(),
            tty,
        }
    }

    fn update(&mut self, done: usize, total: usize) {
        if self.tty && (done == total || self.shown.elapsed() > Duration::from_millis(80)) {
            self.shown = Instant::now();
            eprint!("\r  {}: {done}/{total}  ", self.label);
            let _ = std::io::stderr().flush();
        }
    }

    fn done(self, calls: usize, took: Duration) {
        let back = if self.tty { "\r" } else { "" };
        eprintln!("{back}  {}: {calls} calls in {}  ", self.label, ms(took));
    }
}

/// One mode's result: its calls' latencies (none for a batch, whose calls finish together).
pub struct Row {
    mode: String,
    calls: usize,
    total: Duration,
    latencies: Vec<Duration>,
}

/// What every mode calls.
pub struct Target<'a> {
    pub pool: &'a Pool,
    pub server: &'a str,
    pub tool: &'a str,
    pub args: &'a Value,
}

impl Target<'_> {
    fn call(&self, direct: bool) -> Result<Duration, Error> {
        let start = Instant::now();
        let args = self.args.clone();
        match direct {
            true => self.pool.call_tool_direct(self.server, self.tool, args)?,
            false => self.pool.call_tool(self.server, self.tool, args)?,
        };
        Ok(start.elapsed())
    }

    /// Calls one after another, spawn per call stopping at its time budget.
    pub fn sequential(&self, mode: &str, calls: usize, direct: bool) -> Result<Row, Error> {
        let mut progress = Progress::new(mode.to_owned());
        let (start, mut latencies) = (Instant::now(), Vec::with_capacity(calls));
        while latencies.len() < calls && !(direct && start.elapsed() > SPAWN_BUDGET) {
            latencies.push(self.call(direct)?);
            progress.update(latencies.len(), calls);
        }
        let row = Row::new(mode, latencies.len(), start.elapsed(), latencies);
        progress.done(row.calls, row.total);
        Ok(row)
    }

    /// All calls written at once on one session, then the answers collected.
    pub fn batch(&self, calls: usize) -> Result<Row, Error> {
        let mode = format!("one batch of {calls}");
        let mut progress = Progress::new(mode.clone());
        let batch = vec![ToolCall::new(self.tool, self.args.clone()); calls];
        let start = Instant::now();
        let mut done = 0;
        let options = BatchOptions::new().on_result(|_, _| {
            done += 1;
            progress.update(done, calls)
        });
        let results = self.pool.batch(self.server, &batch, options)?;
        let total = start.elapsed();
        results.into_iter().collect::<Result<Vec<_>, Error>>()?;
        progress.done(calls, total);
        Ok(Row::new(&mode, calls, total, Vec::new()))
    }

    /// `threads` threads calling through the pool at once.
    pub fn threads(&self, calls: usize, threads: usize) -> Result<Row, Error> {
        let mode = format!("{threads} threads at once");
        let mut progress = Progress::new(mode.clone());
        let (done, start) = (AtomicUsize::new(0), Instant::now());
        let latencies = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (done, mine) = (&done, calls / threads + usize::from(t < calls % threads));
                    scope.spawn(move || {
                        let mut latencies = Vec::with_capacity(mine);
                        for _ in 0..mine {
                            latencies.push(self.call(false)?);
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok::<_, Error>(latencies)
                    })
                })
                .collect();
            while !handles.iter().all(|h| h.is_finished()) {
                progress.update(done.load(Ordering::Relaxed), calls);
                std::thread::sleep(Duration::from_millis(10));
            }
            let all = handles
                .into_iter()
                .map(|h| h.join().expect("a demo thread panicked"));
            all.collect::<Result<Vec<_>, Error>>().map(|v| v.concat())
        })?;
        progress.done(calls, start.elapsed());
        Ok(Row::new(&mode, calls, start.elapsed(), latencies))
    }
}

impl Row {
    fn new(mode: &str, calls: usize, total: Duration, mut latencies: Vec<Duration>) -> Row {
        latencies.sort();
        let mode = mode.to_owned();
        Row {
            mode,
            calls,
            total,
            latencies,
        }
    }

    pub fn per_call(&self) -> Duration {
        self.total / self.calls.max(1) as u32
    }

    /// The median of the sorted latencies (the mean of the middle two for an even count).
    pub fn median(&self) -> Duration {
        let n = self.latencies.len();
        match n {
            0 => Duration::ZERO,
            _ if n % 2 == 1 => self.latencies[n / 2],
            _ => (self.latencies[n / 2 - 1] + self.latencies[n / 2]) / 2,
        }
    }

    /// How many latencies the percentiles come from.
    pub fn samples(&self) -> usize {
        self.latencies.len()
    }

    /// The median as the table shows it: a dash when a mode has no per-call latencies.
    fn p50(&self) -> String {
        match self.latencies.is_empty() {
            true => "—".into(),
            false => ms(self.median()),
        }
    }

    fn pct(&self, p: f64) -> String {
        let i = ((self.latencies.len().max(1) - 1) as f64 * p).round() as usize;
        self.latencies.get(i).map_or("—".into(), |d| ms(*d))
    }
}

pub fn ms(d: Duration) -> String {
    match d.as_secs_f64() * 1e3 {
        ms if ms < 10.0 => format!("{ms:.3} ms"),
        ms => format!("{ms:.1} ms"),
    }
}

pub fn print_table(rows: &[Row]) {
    let base = rows[0].per_call().as_secs_f64();
    println!("\n| mode | calls | total | per call | p50 | p99 | speedup vs spawn per call |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let speedup = base / r.per_call().as_secs_f64().max(1e-9);
        let (total, per_call, p50, p99) = (ms(r.total), ms(r.per_call()), r.p50(), r.pct(0.99));
        println!(
            "| {} | {} | {total} | {per_call} | {p50} | {p99} | {speedup:.0}× |",
            r.mode, r.calls
        );
    }
}
