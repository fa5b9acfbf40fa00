//! Counters the pool keeps per server, and the snapshot `Pool::stats` returns.
//!
//! Counts are exact (atomics, incremented once per event). Latencies go into a log-linear
//! histogram (4 buckets per power of two, so a percentile is within about 19% of the truth).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use crate::error::ErrorKind;

/// Latencies from 1 µs to about 70 minutes.
const SUB_BUCKETS: usize = 4;
const BUCKETS: usize = 32 * SUB_BUCKETS;

/// A log-linear latency histogram.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max_us: 0,
        }
    }
}

impl Histogram {
    fn bucket(us: u64) -> usize {
        let us = us.max(1);
        let power = 63 - us.leading_zeros() as usize;
        let sub = if power >= 2 {
            ((us >> (power - 2)) & 0b11) as usize
        } else {
            0
        };
        (power * SUB_BUCKETS + sub).min(BUCKETS - 1)
    }

    /// The upper bound of a bucket, in microseconds.
    fn upper(bucket: usize) -> u64 {
        let power = bucket / SUB_BUCKETS;
        let sub = (bucket % SUB_BUCKETS) as u64;
        if power < 2 {
            return (1 << (power + 1)) - 1;
        }
        (1u64 << power) + ((sub + 1) << (power - 2)) - 1
    }

    pub(crate) fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.counts[Self::bucket(us)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    /// The latency below which a fraction `p` of the samples fall, in milliseconds.
    pub(crate) fn percentile_ms(&self, p: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((self.total as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Self::upper(bucket).min(self.max_us) as f64 / 1000.0);
            }
        }
        Some(self.max_us as f64 / 1000.0)
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max_us = self.max_us.max(other.max_us);
    }
}

/// The live counters of one server.
#[derive(Default)]
pub(crate) struct Counters {
    pub calls: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub spawns: AtomicU64,
    pub spawn_failures: AtomicU64,
    pub retries: AtomicU64,
    pub crashes: AtomicU64,
    pub closed_idle: AtomicU64,
    pub closed_aged: AtomicU64,
    pub closed_ping_failed: AtomicU64,
    pub closed_unresponsive: AtomicU64,
    pub keepalive_pings: AtomicU64,
    pub list_cache_hits: AtomicU64,
    pub direct_calls: AtomicU64,
    pub errors: Mutex<BTreeMap<ErrorKind, u64>>,
    pub latency: Mutex<Histogram>,
    pub handshake: Mutex<Histogram>,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn error(&self, kind: ErrorKind) {
        *self.errors.lock().entry(kind).or_default() += 1;
    }

    pub(crate) fn snapshot(&self, gauges: Gauges) -> ServerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let latency = self.latency.lock().clone();
        let handshake = self.handshake.lock().clone();
        let errors = self.errors.lock().clone();
        ServerStats {
            transport: gauges.transport.to_owned(),
            calls: get(&self.calls),
            hits: get(&self.hits),
            misses: get(&self.misses),
            spawns: get(&self.spawns),
            spawn_failures: get(&self.spawn_failures),
            errors: errors
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), *v))
                .collect(),
            timeouts: errors.get(&ErrorKind::Timeout).copied().unwrap_or(0),
            retries: get(&self.retries),
            crashes: get(&self.crashes),
            closed_idle: get(&self.closed_idle),
            closed_aged: get(&self.closed_aged),
            closed_ping_failed: get(&self.closed_ping_failed),
            closed_unresponsive: get(&self.closed_unresponsive),
            keepalive_pings: get(&self.keepalive_pings),
            list_cache_hits: get(&self.list_cache_hits),
            direct_calls: get(&self.direct_calls),
            live_sessions: gauges.live_sessions,
            callers: gauges.callers,
            starting_sessions: gauges.starting_sessions,
            in_flight: gauges.in_flight,
            waiting: gauges.waiting,
            failing: gauges.failing,
            latency_ms: Percentiles::of(&latency),
            handshake_ms: Percentiles::of(&handshake),
            latency_histogram: latency,
            handshake_histogram: handshake,
        }
    }
}

/// Values read from the session set at snapshot time.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Gauges {
    pub transport: &'static str,
    pub live_sessions: usize,
    pub callers: usize,
    pub starting_sessions: usize,
    pub in_flight: usize,
    pub waiting: usize,
    pub failing: bool,
}

/// Latency percentiles in milliseconds (`null` when nothing was measured).
///
/// Each is the upper bound of a histogram bucket (four buckets per power of two, from 1 µs),
/// so it is at most about 19% above the true value and never below it; with few samples a
/// percentile is one of them, rounded up to its bucket.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Default)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// How many samples.
    pub count: u64,
}

impl Percentiles {
    fn of(h: &Histogram) -> Percentiles {
        Percentiles {
            p50: h.percentile_ms(0.50),
            p90: h.percentile_ms(0.90),
            p99: h.percentile_ms(0.99),
            count: h.total,
        }
    }
}

/// A snapshot of one server's counters. Serializes to JSON.
#[derive(Clone, Serialize, Default)]
pub struct ServerStats {
    /// How the server is reached: `stdio`, `streamable-http` or `http+sse` (`http` for an
    /// HTTP server with no session yet). Empty in the pool's total.
    pub transport: String,
    /// Calls made through the pool (each counted once, retries included in `retries`).
    pub calls: u64,
    /// Calls served by a session that was already live.
    pub hits: u64,
    /// Calls that had to wait for a session to start. Calls that never reach a session
    /// (pool busy, server failing, a start that failed, direct mode) are neither hits nor
    /// misses.
    pub misses: u64,
    /// Sessions started.
    pub spawns: u64,
    /// Spawns or handshakes that failed.
    pub spawn_failures: u64,
    /// Failed calls by error kind (see [`Error::kind`](crate::Error::kind)).
    pub errors: BTreeMap<String, u64>,
    /// Calls that timed out.
    pub timeouts: u64,
    /// Calls retried on a fresh session.
    pub retries: u64,
    /// Sessions whose server died (exit, signal, end of output, broken protocol).
    pub crashes: u64,
    /// Sessions closed for being idle.
    pub closed_idle: u64,
    /// Sessions closed for reaching their maximum lifetime.
    pub closed_aged: u64,
    /// Sessions closed because a keepalive ping failed.
    pub closed_ping_failed: u64,
    /// Sessions replaced because, after a call on them timed out or was cancelled, the
    /// server did not answer a health probe.
    pub closed_unresponsive: u64,
    /// Keepalive pings sent to idle sessions.
    pub keepalive_pings: u64,
    /// `list_tools` calls answered from the cache.
    pub list_cache_hits: u64,
    /// Calls made in direct mode (spawn, call, close).
    pub direct_calls: u64,
    /// Sessions live now.
    pub live_sessions: usize,
    /// Distinct caller keys with a live session now ([`Sharing::PerCaller`] servers; 0 for
    /// shared ones).
    ///
    /// [`Sharing::PerCaller`]: crate::Sharing::PerCaller
    pub callers: usize,
    /// Sessions starting now.
    pub starting_sessions: usize,
    /// Calls in flight now.
    pub in_flight: usize,
    /// Callers waiting for a session now.
    pub waiting: usize,
    /// Whether the server is marked failing (calls fail fast until the cool-down passes).
    pub failing: bool,
    /// Call latency, from the call's entry into the pool to its result: waiting for a
    /// session (or for one to start) and retries included. A batch's calls are timed each
    /// from when it was written, not from the batch's start.
    pub latency_ms: Percentiles,
    /// Spawn + handshake time.
    pub handshake_ms: Percentiles,
    #[serde(skip)]
    latency_histogram: Histogram,
    #[serde(skip)]
    handshake_histogram: Histogram,
}

impl std::fmt::Debug for ServerStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

/// A snapshot of the whole pool: per server and in total. Serializes to JSON.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PoolStats {
    /// Per server, by name.
    pub servers: BTreeMap<String, ServerStats>,
    /// All servers added up (latency percentiles over all calls).
    pub total: ServerStats,
}

impl PoolStats {
    pub(crate) fn from_servers(servers: BTreeMap<String, ServerStats>) -> PoolStats {
        let mut total = ServerStats::default();
        for s in servers.values() {
            total.calls += s.calls;
            total.hits += s.hits;
            total.misses += s.misses;
            total.spawns += s.spawns;
            total.spawn_failures += s.spawn_failures;
            for (k, v) in &s.errors {
                *total.errors.entry(k.clone()).or_default() += v;
            }
            total.timeouts += s.timeouts;
            total.retries += s.retries;
            total.crashes += s.crashes;
            total.closed_idle += s.closed_idle;
            total.closed_aged += s.closed_aged;
            total.closed_ping_failed += s.closed_ping_failed;
            total.closed_unresponsive += s.closed_unresponsive;
            total.keepalive_pings += s.keepalive_pings;
            total.list_cache_hits += s.list_cache_hits;
            total.direct_calls += s.direct_calls;
            total.live_sessions += s.live_sessions;
            total.callers += s.callers;
            total.starting_sessions += s.starting_sessions;
            total.in_flight += s.in_flight;
            total.waiting += s.waiting;
            total.failing |= s.failing;
            total.latency_histogram.merge(&s.latency_histogram);
            total.handshake_histogram.merge(&s.handshake_histogram);
        }
        total.latency_ms = Percentiles::of(&total.latency_histogram);
        total.handshake_ms = Percentiles::of(&total.handshake_histogram);
        PoolStats { servers, total }
    }

    /// One server's figures, `None` for a name the pool does not have.
    pub fn server(&self, name: &str) -> Option<&ServerStats> {
        self.servers.get(name)
    }

    /// The snapshot as a JSON string.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("stats serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_a_bucket() {
        let mut h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.percentile_ms(0.5).unwrap();
        assert!((0.45..=0.62).contains(&p50), "{p50}");
        let p99 = h.percentile_ms(0.99).unwrap();
        assert!((0.95..=1.0).contains(&p99), "{p99}");
        assert_eq!(Histogram::default().percentile_ms(0.5), None);
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for us in [1u64, 2, 3, 4, 5, 7, 8, 100, 1000, 10_000, 1 << 30] {
            let b = Histogram::bucket(us);
            assert!(b >= last);
            assert!(
                Histogram::upper(b) >= us,
                "{us} in bucket {b} up to {}",
                Histogram::upper(b)
            );
            last = b;
        }
    }
}
