//! The deadline of one call: made once where the call enters the library (a `Pool` or a
//! `Session` method) and carried down to the wait, so waiting for a session, retrying and
//! progress all count against the same clock.

use std::time::{Duration, Instant};

use crate::error::{Error, Phase};

/// The longest duration a setting may have: deadlines are `now + duration`, which must stay
/// representable.
pub(crate) const MAX_DURATION_YEARS: u64 = 100;
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(MAX_DURATION_YEARS * 365 * 24 * 3600);

/// `from + d`, with `d` capped at the longest setting so it never overflows (a caller may
/// pass `Duration::MAX` as "no deadline").
pub(crate) fn after(from: Instant, d: Duration) -> Instant {
    from + d.min(MAX_DURATION)
}

/// One call's deadline. Progress reports may push it back by the call's timeout, never past
/// a hard limit counted from the call's start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    start: Instant,
    timeout: Duration,
    at: Instant,
    hard: Instant,
    extends: bool,
}

impl Deadline {
    /// A deadline `timeout` from now. With `extends`, each progress report moves it to
    /// `timeout` after the report, up to `max` after the start.
    pub(crate) fn new(timeout: Duration, max: Duration, extends: bool) -> Deadline {
        let start = Instant::now();
        Deadline {
            start,
            timeout,
            at: after(start, timeout),
            hard: after(start, max.max(timeout)),
            extends,
        }
    }

    /// A deadline `timeout` from now that progress reports do not move (a batch, a start,
    /// a request of the library's own).
    pub(crate) fn fixed(timeout: Duration) -> Deadline {
        Deadline::new(timeout, timeout, false)
    }

    /// A call's deadline: its own `timeout`, else the server's `default`; progress pushes it
    /// back, up to `max` after the start, unless the call keeps its deadline.
    pub(crate) fn for_call(
        timeout: Option<Duration>,
        default: Duration,
        max: Duration,
        keep: bool,
    ) -> Deadline {
        Deadline::new(timeout.unwrap_or(default), max, !keep)
    }

    /// When it passes.
    pub(crate) fn at(&self) -> Instant {
        self.at
    }

    /// When the call started.
    pub(crate) fn started(&self) -> Instant {
        self.start
    }

    /// Whether it has passed.
    pub(crate) fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// A progress report arrived: push the deadline back if this call allows it.
    pub(crate) fn progressed(&mut self) {
        if self.extends {
            self.at = after(Instant::now(), self.timeout).min(self.hard);
        }
    }

    /// The earlier of this deadline and `limit` from now (a phase with its own bound, such
    /// as starting a session).
    pub(crate) fn capped(&self, limit: Duration) -> Instant {
        self.at.min(after(Instant::now(), limit))
    }

    /// The timeout error for this call: how long it has waited, in which phase.
    pub(crate) fn expired(&self, phase: Phase) -> Error {
        Error::Timeout {
            phase,
            after: self.start.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_extends_by_the_whole_timeout_up_to_the_hard_limit() {
        let mut d = Deadline::new(Duration::from_secs(30), Duration::from_secs(100), true);
        let first = d.at();
        std::thread::sleep(Duration::from_millis(5));
        d.progressed();
        assert!(d.at() > first);
        assert!(d.at() <= d.started() + Duration::from_secs(100));
        let mut fixed = Deadline::new(Duration::from_secs(30), Duration::from_secs(100), false);
        let at = fixed.at();
        fixed.progressed();
        assert_eq!(fixed.at(), at);
        let huge = Deadline::new(Duration::MAX, Duration::MAX, true);
        assert!(!huge.passed());
    }
}
