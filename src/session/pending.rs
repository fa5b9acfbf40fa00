//! The table of requests in flight: the one owner of "which requests are outstanding", of
//! whether any byte of each reached the server, and of who reads the server's output.
//!
//! A request is registered here before it is handed to the worker, so whoever reads its
//! answer always finds it. Each waiting caller gets the events of its own request, in the
//! order they were read, on its own channel (a batch's requests share one, their outcomes
//! tagged with their ids): progress reports, then the outcome. Reading is
//! done by whoever holds the read token: a waiting caller (the leader), or the worker when
//! no caller waits. A leader whose answer has come hands the token to another waiting
//! caller, so a call costs no thread hop on the way back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::Sender;
use serde_json::Value;

use crate::error::{CloseReason, Error};
use crate::protocol::Progress;

/// Progress reports queued for one call beyond which new ones are dropped (a caller whose
/// callback cannot keep up with a flooding server must not grow memory without bound).
const MAX_QUEUED_PROGRESS: usize = 4096;

/// What a waiting caller is told.
#[derive(Debug)]
pub(crate) enum Event {
    /// A progress report for its request.
    Progress(Progress),
    /// Its request's outcome. Always the last event of a request.
    Done(Result<Value, Error>),
    /// The outcome of the request with this id, on a channel that several requests share
    /// (a batch's).
    Answer(u64, Result<Value, Error>),
    /// It now holds the read token.
    Lead,
    /// Its cancel handle fired.
    Cancel,
    /// A notification that belongs to its request (the acknowledgement of a
    /// `subscriptions/listen`), its params as sent.
    Notice(Value),
}

/// Who reads the server's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    /// Nobody: the next caller to register takes it; the worker looks again soon.
    Vacant,
    /// The caller waiting for this request id.
    Caller(u64),
    /// The session's worker (no caller waits, or the session is ending).
    Worker,
}

struct Waiter {
    events: Sender<Event>,
    /// Some byte of the request reached the server: it may have run.
    sent: bool,
    /// A thread is blocked waiting for this request's events (and so can take the token).
    waiting: bool,
    /// Its channel is shared with other requests: its outcome comes as `Answer`.
    shared_channel: bool,
    queued: Arc<AtomicUsize>,
}

impl Waiter {
    fn done(&self, id: u64, outcome: Result<Value, Error>) {
        let _ = self.events.send(if self.shared_channel {
            Event::Answer(id, outcome)
        } else {
            Event::Done(outcome)
        });
    }
}

/// The pending requests of a session and the read token.
pub(crate) struct Table {
    waiters: HashMap<u64, Waiter>,
    /// The requests a thread is blocked waiting for, in the order they began (few: one
    /// per waiting thread), so handing the token on does not scan every request.
    waiting: Vec<u64>,
    reader: Reader,
    /// Set when the session ended: every waiter was failed and no request is taken any more.
    ended: Option<(CloseReason, String)>,
    /// The worker took the token for good (the session is ending).
    forced: bool,
}

/// What a caller keeps of its registration: the count of its queued progress reports.
pub(crate) struct Ticket {
    pub queued: Arc<AtomicUsize>,
}

impl Table {
    pub(crate) fn new() -> Table {
        Table {
            waiters: HashMap::new(),
            waiting: Vec::new(),
            reader: Reader::Worker,
            ended: None,
            forced: false,
        }
    }

    /// Registers a request before it is written. Fails once the session has ended.
    pub(crate) fn register(&mut self, id: u64, events: Sender<Event>) -> Result<Ticket, Error> {
        self.taking()?;
        let queued = Arc::new(AtomicUsize::new(0));
        self.insert(id, events, queued.clone(), false);
        Ok(Ticket { queued })
    }

    /// Registers requests that share one channel (a batch's), before they are written; the
    /// outcome of each comes as [`Event::Answer`]. Fails once the session has ended.
    pub(crate) fn register_shared(
        &mut self,
        ids: impl Iterator<Item = u64>,
        events: &Sender<Event>,
    ) -> Result<(), Error> {
        self.taking()?;
        let queued = Arc::new(AtomicUsize::new(0));
        for id in ids {
            self.insert(id, events.clone(), queued.clone(), true);
        }
        Ok(())
    }

    /// Registers a request of the worker's own (the start-up ones), which the worker reads
    /// the answer of itself.
    pub(crate) fn register_quiet(&mut self, id: u64, events: Sender<Event>) {
        self.insert(id, events, Arc::new(AtomicUsize::new(0)), false);
    }

    /// Whether requests are still taken: not once the session has ended.
    fn taking(&self) -> Result<(), Error> {
        match &self.ended {
            Some((reason, tail)) => Err(Error::SessionClosed {
                reason: reason.clone(),
                stderr_tail: tail.clone(),
            }),
            None => Ok(()),
        }
    }

    fn insert(
        &mut self,
        id: u64,
        events: Sender<Event>,
        queued: Arc<AtomicUsize>,
        shared_channel: bool,
    ) {
        self.waiters.insert(
            id,
            Waiter {
                events,
                sent: false,
                waiting: false,
                shared_channel,
                queued,
            },
        );
    }

    /// A thread starts waiting for `id`'s events. It takes the read token when no other
    /// waiting caller holds it (the worker yields it). Returns whether it holds it.
    pub(crate) fn begin_wait(&mut self, id: u64) -> bool {
        let Some(w) = self.waiters.get_mut(&id) else {
            return false;
        };
        if !w.waiting {
            w.waiting = true;
            self.waiting.push(id);
        }
        if self.forced {
            return false;
        }
        match self.reader {
            Reader::Vacant | Reader::Worker => {
                self.reader = Reader::Caller(id);
                true
            }
            Reader::Caller(other) => other == id,
        }
    }

    /// The thread waiting for `id` stops for a while (to run a callback): the token, if it
    /// holds it, goes to a caller that waits.
    pub(crate) fn pause_wait(&mut self, id: u64) {
        if let Some(w) = self.waiters.get_mut(&id) {
            w.waiting = false;
        }
        self.waiting.retain(|&w| w != id);
        self.hand_off(id);
    }

    /// Takes a request out of the table (answered, abandoned).
    fn remove(&mut self, id: u64) -> Option<Waiter> {
        let waiter = self.waiters.remove(&id)?;
        if waiter.waiting {
            self.waiting.retain(|&w| w != id);
        }
        Some(waiter)
    }

    pub(crate) fn reader(&self) -> Reader {
        self.reader
    }

    /// The worker takes a vacant token. Returns whether it holds it now.
    pub(crate) fn worker_takes(&mut self) -> bool {
        if self.reader == Reader::Vacant {
            self.reader = Reader::Worker;
        }
        self.reader == Reader::Worker
    }

    /// The worker takes the token whoever holds it, for good: the session is ending.
    pub(crate) fn force(&mut self) {
        self.forced = true;
        self.reader = Reader::Worker;
    }

    /// The caller holding the token gives it to another caller that waits, or leaves it
    /// vacant.
    pub(crate) fn hand_off(&mut self, from: u64) {
        if self.reader != Reader::Caller(from) {
            return;
        }
        let next = self.waiting.iter().copied().find(|&id| id != from);
        self.reader = match next {
            Some(id) => {
                let _ = self.waiters[&id].events.send(Event::Lead);
                Reader::Caller(id)
            }
            None => Reader::Vacant,
        };
    }

    /// Requests any byte of which reached the server.
    pub(crate) fn mark_sent(&mut self, ids: &[u64]) {
        for id in ids {
            if let Some(w) = self.waiters.get_mut(id) {
                w.sent = true;
            }
        }
    }

    /// A request's outcome arrived. Returns `false` when no call waits for it.
    pub(crate) fn complete(&mut self, id: u64, outcome: Result<Value, Error>) -> bool {
        match self.remove(id) {
            Some(w) => {
                w.done(id, outcome);
                true
            }
            None => false,
        }
    }

    /// A notification for the request `id` (a subscription's acknowledgement). Returns
    /// `false` when no request waits for it.
    pub(crate) fn notice(&mut self, id: u64, params: Value) -> bool {
        match self.waiters.get(&id) {
            Some(w) => {
                let _ = w.events.send(Event::Notice(params));
                true
            }
            None => false,
        }
    }

    /// A progress report for the call whose token (its request id) is `id`. Returns `false`
    /// when no call waits for it.
    pub(crate) fn progress(&mut self, id: u64, report: Progress) -> bool {
        let Some(w) = self.waiters.get(&id) else {
            return false;
        };
        if w.queued.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED_PROGRESS {
            w.queued.fetch_sub(1, Ordering::AcqRel);
            log::debug!("dropping a progress report for request {id}: its caller is behind");
            return true;
        }
        let _ = w.events.send(Event::Progress(report));
        true
    }

    /// The caller stops waiting (deadline, cancel): its entry goes, and the token with it.
    /// Returns whether any byte of the request had reached the server (`None` when its
    /// outcome had already arrived).
    pub(crate) fn abandon(&mut self, id: u64) -> Option<bool> {
        let waiter = self.remove(id);
        self.hand_off(id);
        waiter.map(|w| w.sent)
    }

    /// The session ended: fails every waiter (written requests as outcome unknown, the
    /// others as never sent) and refuses new ones.
    pub(crate) fn fail_all(&mut self, reason: &CloseReason, tail: &str) {
        self.force();
        self.ended = Some((reason.clone(), tail.to_owned()));
        self.waiting.clear();
        for (id, w) in self.waiters.drain() {
            let error = if w.sent {
                Error::OutcomeUnknown {
                    reason: reason.clone(),
                    stderr_tail: tail.to_owned(),
                }
            } else {
                Error::SessionClosed {
                    reason: reason.clone(),
                    stderr_tail: tail.to_owned(),
                }
            };
            w.done(id, Err(error));
        }
    }

    /// Requests waiting for an answer.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.waiters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::{unbounded, Receiver};

    fn waiter(t: &mut Table, id: u64) -> (Ticket, Receiver<Event>) {
        let (tx, rx) = unbounded();
        (t.register(id, tx).unwrap(), rx)
    }

    #[test]
    fn the_first_waiting_caller_leads_and_hands_the_token_on() {
        let mut t = Table::new();
        assert_eq!(t.reader(), Reader::Worker);
        let (_a, _ra) = waiter(&mut t, 1);
        let (_b, rb) = waiter(&mut t, 2);
        let (_c, _rc) = waiter(&mut t, 3);
        assert!(t.begin_wait(1), "the worker yields to a waiting caller");
        assert!(!t.begin_wait(2));
        assert!(t.complete(1, Ok(Value::Null)));
        t.hand_off(1);
        // 3 is registered but nobody waits for it yet: the token goes to 2.
        assert_eq!(t.reader(), Reader::Caller(2));
        assert!(matches!(rb.try_recv(), Ok(Event::Lead)));
        assert!(t.complete(2, Ok(Value::Null)));
        t.hand_off(2);
        assert_eq!(t.reader(), Reader::Vacant);
        assert!(
            t.begin_wait(3),
            "a vacant token is taken by the next to wait"
        );
        t.pause_wait(3);
        assert_eq!(t.reader(), Reader::Vacant);
        assert!(t.worker_takes());
        // A caller takes the token back from the worker.
        assert!(t.begin_wait(3));
        assert!(!t.worker_takes());
    }

    #[test]
    fn progress_comes_before_the_outcome_in_order() {
        let mut t = Table::new();
        let (_a, ra) = waiter(&mut t, 1);
        for i in 0..3 {
            let report = Progress {
                progress: i as f64,
                total: None,
                message: None,
            };
            assert!(t.progress(1, report));
        }
        assert!(t.complete(1, Ok(Value::Bool(true))));
        assert!(!t.complete(1, Ok(Value::Null)), "a duplicate finds nobody");
        let events: Vec<Event> = ra.try_iter().collect();
        assert_eq!(events.len(), 4);
        for (i, e) in events[..3].iter().enumerate() {
            assert!(matches!(e, Event::Progress(p) if p.progress == i as f64));
        }
        assert!(matches!(&events[3], Event::Done(Ok(Value::Bool(true)))));
    }

    #[test]
    fn ending_fails_by_whether_a_byte_was_sent() {
        let mut t = Table::new();
        let (_a, ra) = waiter(&mut t, 1);
        let (_b, rb) = waiter(&mut t, 2);
        t.mark_sent(&[1]);
        t.fail_all(&CloseReason::Exited(3), "tail");
        assert!(matches!(
            ra.try_recv(),
            Ok(Event::Done(Err(Error::OutcomeUnknown { .. })))
        ));
        assert!(matches!(
            rb.try_recv(),
            Ok(Event::Done(Err(Error::SessionClosed { .. })))
        ));
        let (tx, _rx) = unbounded();
        assert!(matches!(
            t.register(3, tx),
            Err(Error::SessionClosed {
                reason: CloseReason::Exited(3),
                ..
            })
        ));
        assert_eq!(t.reader(), Reader::Worker);
    }

    #[test]
    fn an_abandoning_leader_passes_the_token() {
        let mut t = Table::new();
        let (_a, _ra) = waiter(&mut t, 1);
        let (_b, rb) = waiter(&mut t, 2);
        assert!(t.begin_wait(1));
        assert!(!t.begin_wait(2));
        t.mark_sent(&[1]);
        assert_eq!(t.abandon(1), Some(true));
        assert_eq!(t.reader(), Reader::Caller(2));
        assert!(matches!(rb.try_recv(), Ok(Event::Lead)));
        assert_eq!(t.abandon(1), None);
        assert_eq!(t.abandon(2), Some(false));
        assert_eq!(t.reader(), Reader::Vacant);
        assert_eq!(t.len(), 0);
    }
}
