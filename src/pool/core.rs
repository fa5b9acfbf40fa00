//! What every server of a pool shares: whether the pool is closed, the pool-wide cap on
//! child processes (children starting, live, or still being shut down all count), the
//! sessions still closing in the background, and the reaper's wake-up channel.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use crossbeam_channel::Sender;
use parking_lot::Mutex;

use crate::error::CloseReason;
use crate::session::{Joiner, Session};

pub(crate) struct Core {
    closed: AtomicBool,
    /// Workers still shutting their child down: closed sessions, failed or abandoned
    /// starts. They count against the cap until their child is reaped, and `Pool::close`
    /// waits for them.
    closing: Mutex<Vec<Joiner>>,
    /// Children reserved: starting or live in a session set.
    reserved: AtomicUsize,
    max_children: Option<usize>,
    /// Callers waiting for room under the cap: each is told once, on its own channel.
    cap_waiters: Mutex<Vec<Sender<()>>>,
    reaper: Mutex<Option<Sender<()>>>,
}

impl Core {
    pub(crate) fn new(max_children: Option<usize>, reaper: Sender<()>) -> Core {
        Core {
            closed: AtomicBool::new(false),
            closing: Mutex::new(Vec::new()),
            reserved: AtomicUsize::new(0),
            max_children,
            cap_waiters: Mutex::new(Vec::new()),
            reaper: Mutex::new(Some(reaper)),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the pool closed. Returns whether it was open.
    pub(crate) fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    /// Reserves one more child unless the cap is reached (children still closing count).
    pub(crate) fn reserve_child(&self) -> bool {
        let max = self.max_children.unwrap_or(usize::MAX);
        let closing = self.closing_count();
        self.reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n + closing < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Tells `waiter` (once) when room is made under the cap.
    pub(crate) fn wait_for_room(&self, waiter: Sender<()>) {
        self.cap_waiters.lock().push(waiter);
    }

    /// Gives a reservation back: a start failed before any child ran, or a live child's
    /// session moved to `closing`.
    pub(crate) fn release_child(&self) {
        self.reserved.fetch_sub(1, Ordering::AcqRel);
        self.room_made();
    }

    fn room_made(&self) {
        for w in std::mem::take(&mut *self.cap_waiters.lock()) {
            let _ = w.try_send(());
        }
    }

    /// The one way a live session leaves the pool: closed in the background by its own
    /// worker, its reservation moved to `closing` until its child is reaped.
    pub(crate) fn retire(self: &Arc<Self>, session: Session, reason: CloseReason) {
        session.close_because(reason);
        self.closing_worker(session.joiner());
    }

    /// A worker that is shutting a reserved child down (a failed or abandoned start): its
    /// reservation moves to `closing`, and its end makes room.
    pub(crate) fn closing_worker(self: &Arc<Self>, joiner: Joiner) {
        {
            let mut closing = self.closing.lock();
            closing.retain(|j| !j.is_finished());
            closing.push(joiner.clone());
        }
        self.reserved.fetch_sub(1, Ordering::AcqRel);
        let core: Weak<Core> = Arc::downgrade(self);
        joiner.when_done(move || {
            if let Some(core) = core.upgrade() {
                core.room_made();
            }
        });
    }

    fn closing_count(&self) -> usize {
        let mut closing = self.closing.lock();
        closing.retain(|j| !j.is_finished());
        closing.len()
    }

    /// Children live, starting or still closing.
    pub(crate) fn children(&self) -> usize {
        self.closing_count() + self.reserved.load(Ordering::Acquire)
    }

    /// Waits for every worker still closing, at most until `until`.
    pub(crate) fn join_closing(&self, until: Instant) {
        let closing = std::mem::take(&mut *self.closing.lock());
        for j in &closing {
            if !j.join(Some(until)) {
                log::warn!("a session of the pool is still shutting its server down");
            }
        }
        let mut left = self.closing.lock();
        left.extend(closing.into_iter().filter(|j| !j.is_finished()));
    }

    /// Asks the reaper to look again now.
    pub(crate) fn wake_reaper(&self) {
        if let Some(tx) = self.reaper.lock().as_ref() {
            let _ = tx.try_send(());
        }
    }

    /// Disconnects the reaper's wake channel: the reaper ends.
    pub(crate) fn stop_reaper(&self) {
        self.reaper.lock().take();
    }
}
