//! Whether a server may be started now: restarts back off after failed starts, and after
//! enough failures in a row the server is "failing" until a cool-down passes. A pure state
//! machine of the start outcomes and `now`.

use std::time::{Duration, Instant};

use crate::config::PoolSettings;
use crate::error::Error;

/// What the slot may do about starting a session now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Start one.
    Open,
    /// Wait: the last failure's back-off ends then.
    Backoff(Instant),
    /// The server is failing: calls fail fast until then.
    Failing(Instant),
}

/// A server's start history.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failures_in_row: u32,
    next_start_at: Option<Instant>,
    failing_until: Option<Instant>,
    last_failure: Option<Error>,
    /// Counts failures, so a caller can tell whether one happened while it waited.
    failures: u64,
}

impl Health {
    /// Whether a start may happen at `now`. A cool-down that is over ends the failing
    /// state (the next start is the test).
    pub(crate) fn gate(&mut self, now: Instant) -> Gate {
        if let Some(until) = self.failing_until {
            if now < until {
                return Gate::Failing(until);
            }
            log::debug!("cool-down over; the next start is a test");
            self.failing_until = None;
        }
        match self.next_start_at {
            Some(t) if now < t => Gate::Backoff(t),
            _ => Gate::Open,
        }
    }

    /// A start succeeded: the history is forgotten. Returns the failures it ends.
    pub(crate) fn started(&mut self) -> u32 {
        let ended = self.failures_in_row;
        self.failures_in_row = 0;
        self.next_start_at = None;
        self.failing_until = None;
        self.last_failure = None;
        ended
    }

    /// A start failed at `now`: back off, and mark the server failing past the threshold.
    /// Returns the back-off and whether the server is now failing.
    pub(crate) fn failed(
        &mut self,
        error: Error,
        now: Instant,
        settings: &PoolSettings,
    ) -> (Duration, bool) {
        self.failures_in_row += 1;
        self.failures += 1;
        let n = self.failures_in_row;
        let backoff = settings
            .backoff_base
            .saturating_mul(1u32 << (n - 1).min(20))
            .min(settings.backoff_max);
        self.next_start_at = Some(now + backoff);
        let failing = n >= settings.failure_threshold;
        if failing {
            self.failing_until = Some(now + settings.cooldown);
        }
        self.last_failure = Some(error);
        (backoff, failing)
    }

    /// How many starts have failed so far.
    pub(crate) fn failures(&self) -> u64 {
        self.failures
    }

    /// The last start's error, if the last start failed.
    pub(crate) fn last_failure(&self) -> Option<&Error> {
        self.last_failure.as_ref()
    }

    /// Whether the server is failing at `now`.
    pub(crate) fn is_failing(&self, now: Instant) -> bool {
        self.failing_until.is_some_and(|t| now < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PoolSettings {
        PoolSettings::new()
            .failure_threshold(3)
            .cooldown(Duration::from_secs(30))
            .backoff(Duration::from_millis(100), Duration::from_millis(250))
    }

    fn boom() -> Error {
        Error::Protocol("boom".into())
    }

    #[test]
    fn failures_back_off_doubling_then_the_server_is_failing() {
        let s = settings();
        let t0 = Instant::now();
        let mut h = Health::default();
        assert_eq!(h.gate(t0), Gate::Open);
        assert_eq!(
            h.failed(boom(), t0, &s),
            (Duration::from_millis(100), false)
        );
        assert_eq!(h.gate(t0), Gate::Backoff(t0 + Duration::from_millis(100)));
        assert_eq!(h.gate(t0 + Duration::from_millis(100)), Gate::Open);
        assert_eq!(
            h.failed(boom(), t0, &s),
            (Duration::from_millis(200), false)
        );
        let (backoff, failing) = h.failed(boom(), t0, &s);
        assert_eq!(backoff, Duration::from_millis(250), "capped at the maximum");
        assert!(failing && h.is_failing(t0));
        assert_eq!(h.gate(t0), Gate::Failing(t0 + Duration::from_secs(30)));
        assert!(h.last_failure().is_some());
        assert_eq!(h.failures(), 3);
    }

    #[test]
    fn a_cool_down_ends_and_a_success_forgets() {
        let s = settings();
        let t0 = Instant::now();
        let mut h = Health::default();
        for _ in 0..3 {
            h.failed(boom(), t0, &s);
        }
        let later = t0 + Duration::from_secs(31);
        assert_eq!(h.gate(later), Gate::Open, "the cool-down is over");
        assert!(!h.is_failing(later));
        assert_eq!(h.started(), 3);
        assert_eq!(h.gate(t0), Gate::Open);
        assert!(h.last_failure().is_none());
    }
}
