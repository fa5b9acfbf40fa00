//! When a pooled session is closed or pinged: a pure function of what the pool knows about
//! the session and `now`, and the reaper thread, which runs a pass (a closure it is given)
//! and sleeps until the next deadline the pass returns, or until it is woken.

use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::config::PoolSettings;

/// What the reaper knows about one session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    /// Calls using it now (pool leases plus calls on a handed-out session).
    pub busy: usize,
    /// Already past its lifetime: takes no new calls.
    pub retiring: bool,
    /// When its last call ended, or when it became ready.
    pub last_used: Instant,
    /// When its lifetime (less jitter) ends.
    pub expires: Instant,
    /// When it was last pinged (or became ready).
    pub last_ping: Instant,
    /// Counts toward the warm minimum: never closed for idleness.
    pub protected: bool,
}

/// What to do with a session now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing now; look again at `recheck`.
    Keep { recheck: Instant },
    /// Past its lifetime with calls in flight: no new calls; the last lease to return
    /// closes it.
    Retire,
    /// Past its lifetime and unused: close.
    CloseAged,
    /// Idle too long: close.
    CloseIdle,
    /// Idle and due a keepalive ping; look again at `recheck`.
    Ping { recheck: Instant },
}

/// Decides a session's fate. Never closes a session with calls in flight. A busy session
/// needs no look until it is idle again (its last lease wakes the reaper), except for its
/// expiry.
pub(crate) fn verdict(v: &View, s: &PoolSettings, now: Instant) -> Verdict {
    if v.retiring || now >= v.expires {
        return if v.busy == 0 {
            Verdict::CloseAged
        } else {
            Verdict::Retire
        };
    }
    let mut recheck = v.expires;
    if v.busy > 0 {
        return Verdict::Keep { recheck };
    }
    if !v.protected {
        let idle_until = v.last_used + s.idle_timeout;
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
    Verdict::Keep { recheck }
}

/// What a reaper pass tells the thread.
pub(crate) enum Pass {
    /// Sleep until this instant (or forever), or until woken.
    Sleep(Option<Instant>),
    /// The pool is gone or closed: end.
    Stop,
}

/// Starts a reaper thread that runs `pass` and sleeps as it says, until `wake` brings a
/// message (look again now) or disconnects (end).
pub(crate) fn spawn(
    mut pass: impl FnMut(Instant) -> Pass + Send + 'static,
    wake: Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("mcp-reaper".into())
        .spawn(move || loop {
            let next = match pass(Instant::now()) {
                Pass::Stop => return,
                Pass::Sleep(next) => next,
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
            busy: 0,
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
                recheck: t0 + Duration::from_secs(10)
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
                recheck: t0 + Duration::from_secs(100)
            }
        );
    }

    #[test]
    fn aged_sessions_retire_but_never_under_a_call() {
        let t0 = Instant::now();
        let s = settings();
        let busy = View {
            busy: 2,
            ..view(t0)
        };
        let late = t0 + Duration::from_secs(100);
        assert_eq!(verdict(&busy, &s, late), Verdict::Retire);
        assert_eq!(verdict(&view(t0), &s, late), Verdict::CloseAged);
        // A busy session is looked at again at its expiry (its last lease wakes the reaper
        // sooner).
        assert_eq!(
            verdict(&busy, &s, t0),
            Verdict::Keep {
                recheck: t0 + Duration::from_secs(100)
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
                recheck: t0 + Duration::from_secs(3)
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
