//! When a pooled session is closed or pinged: a pure function of the session's state and
//! `now`, and the reaper thread that applies it, sleeping until the next deadline.

use std::sync::Weak;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::config::PoolSettings;
use crate::pool::PoolInner;

/// What the reaper knows about one session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    /// Calls using it now (pool leases plus calls in flight).
    pub leases: usize,
    /// Already past its lifetime: takes no new calls.
    pub retiring: bool,
    /// When its last call ended.
    pub last_used: Instant,
    /// When its lifetime (less jitter) ends.
    pub expires: Instant,
    /// When it was last pinged (or started).
    pub last_ping: Instant,
    /// Counts toward the warm minimum: never closed for idleness.
    pub protected: bool,
}

/// What to do with a session now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing now; look again at `recheck` (if anything is due).
    Keep { recheck: Option<Instant> },
    /// Past its lifetime with calls in flight: no new calls, close when they end (the slot
    /// looks again shortly).
    Retire,
    /// Past its lifetime and unused: close.
    CloseAged,
    /// Idle too long: close.
    CloseIdle,
    /// Idle and due a keepalive ping; look again at `recheck`.
    Ping { recheck: Instant },
}

/// Decides a session's fate. Never closes a session with calls in flight.
pub(crate) fn verdict(v: &View, s: &PoolSettings, now: Instant) -> Verdict {
    if v.retiring || now >= v.expires {
        return if v.leases == 0 {
            Verdict::CloseAged
        } else {
            // Its last call's end closes it (see `Slot::give_back`).
            Verdict::Retire
        };
    }
    let mut recheck = v.expires;
    if v.leases > 0 {
        // The soonest it could be idle long enough is a full idle timeout from now.
        if !v.protected {
            recheck = recheck.min(now + s.idle_timeout);
        }
        return Verdict::Keep {
            recheck: Some(recheck),
        };
    }
    let idle_until = v.last_used + s.idle_timeout;
    if !v.protected {
        if now >= idle_until {
            return Verdict::CloseIdle;
        }
        recheck = recheck.min(idle_until);
    }
    if let Some(interval) = s.keepalive {
        let due = v.last_used.max(v.last_ping) + interval;
        if now >= due {
            return Verdict::Ping {
                recheck: recheck.min(now + interval),
            };
        }
        recheck = recheck.min(due);
    }
    Verdict::Keep {
        recheck: Some(recheck),
    }
}

/// Starts the reaper thread of a pool. It holds only a weak reference, sleeps until the next
/// deadline (or a wake-up), and ends when the pool is gone or the wake channel closes.
pub(crate) fn spawn(pool: Weak<PoolInner>, wake: Receiver<()>) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("mcp-reaper".into())
        .spawn(move || loop {
            let next = {
                let Some(pool) = pool.upgrade() else { return };
                if pool.is_closed() {
                    return;
                }
                pool.reap(Instant::now())
            };
            let woke = match next {
                Some(at) => wake.recv_deadline(at),
                None => wake.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            if let Err(RecvTimeoutError::Disconnected) = woke {
                return;
            }
            // Coalesce a burst of wake-ups into one pass.
            while wake.try_recv().is_ok() {}
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings() -> PoolSettings {
        PoolSettings::new()
            .idle_timeout(Duration::from_secs(10))
            .max_lifetime(Duration::from_secs(100))
    }

    fn view(now: Instant) -> View {
        View {
            leases: 0,
            retiring: false,
            last_used: now,
            expires: now + Duration::from_secs(100),
            last_ping: now,
            protected: false,
        }
    }

    #[test]
    fn idle_sessions_close_after_the_idle_timeout() {
        let t0 = Instant::now();
        let s = settings();
        let v = view(t0);
        assert_eq!(
            verdict(&v, &s, t0 + Duration::from_secs(5)),
            Verdict::Keep {
                recheck: Some(t0 + Duration::from_secs(10))
            }
        );
        assert_eq!(
            verdict(&v, &s, t0 + Duration::from_secs(10)),
            Verdict::CloseIdle
        );
        // The warm minimum is never closed for idleness.
        let protected = View {
            protected: true,
            ..v
        };
        assert_eq!(
            verdict(&protected, &s, t0 + Duration::from_secs(50)),
            Verdict::Keep {
                recheck: Some(t0 + Duration::from_secs(100))
            }
        );
    }

    #[test]
    fn aged_sessions_retire_but_never_under_a_call() {
        let t0 = Instant::now();
        let s = settings();
        let busy = View {
            leases: 2,
            ..view(t0)
        };
        let late = t0 + Duration::from_secs(100);
        assert_eq!(verdict(&busy, &s, late), Verdict::Retire);
        assert_eq!(verdict(&view(t0), &s, late), Verdict::CloseAged);
        // Busy sessions are looked at again no sooner than an idle timeout away.
        assert_eq!(
            verdict(&busy, &s, t0),
            Verdict::Keep {
                recheck: Some(t0 + Duration::from_secs(10))
            }
        );
    }

    #[test]
    fn keepalive_pings_idle_sessions() {
        let t0 = Instant::now();
        let s = settings().keepalive(Some(Duration::from_secs(3)));
        let v = view(t0);
        assert_eq!(
            verdict(&v, &s, t0 + Duration::from_secs(1)),
            Verdict::Keep {
                recheck: Some(t0 + Duration::from_secs(3))
            }
        );
        assert_eq!(
            verdict(&v, &s, t0 + Duration::from_secs(3)),
            Verdict::Ping {
                recheck: t0 + Duration::from_secs(6)
            }
        );
    }
}
