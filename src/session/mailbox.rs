//! The channel that carries a call's events (progress, its outcome, the read token) to the
//! waiting caller: one receiver, any number of senders, unbounded, in order.
//!
//! A crossbeam channel did this before; its receiver spins and yields before it sleeps,
//! which on 2 cores with dozens of waiting callers burns the CPU the reading caller needs
//! (about a quarter of it at 64 callers). A waiting caller here sleeps at once, on a
//! condition variable, and is woken by exactly the send it waits for.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

pub(crate) use crossbeam_channel::{RecvTimeoutError, TryRecvError};
use parking_lot::{Condvar, Mutex};

struct Mailbox<T> {
    queue: Mutex<Queue<T>>,
    ready: Condvar,
}

struct Queue<T> {
    items: VecDeque<T>,
    /// The receiver is asleep waiting for an item.
    waiting: bool,
}

/// Puts events in a mailbox. Cheap to clone.
pub(crate) struct Sender<T>(Arc<Mailbox<T>>);

/// Takes events out of a mailbox, in the order they were put in.
pub(crate) struct Receiver<T>(Arc<Mailbox<T>>);

/// A new, empty mailbox.
pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let mailbox = Arc::new(Mailbox {
        queue: Mutex::new(Queue {
            items: VecDeque::new(),
            waiting: false,
        }),
        ready: Condvar::new(),
    });
    (Sender(mailbox.clone()), Receiver(mailbox))
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}

impl<T> Sender<T> {
    /// Adds an item, waking the receiver if it sleeps. Never fails (the result keeps the
    /// call sites as they were with a channel).
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        let mut q = self.0.queue.lock();
        q.items.push_back(item);
        let wake = q.waiting;
        drop(q);
        if wake {
            self.0.ready.notify_one();
        }
        Ok(())
    }
}

impl<T> Receiver<T> {
    /// The next item, if one is there.
    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        self.0
            .queue
            .lock()
            .items
            .pop_front()
            .ok_or(TryRecvError::Empty)
    }

    /// Every item there now, then none.
    pub(crate) fn try_iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.try_recv().ok())
    }

    /// The next item, waiting for it until `deadline`. An item that is there wins over a
    /// passed deadline. The mailbox's senders live as long as its waiters, so it never
    /// reports `Disconnected`.
    pub(crate) fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        let mut q = self.0.queue.lock();
        loop {
            if let Some(item) = q.items.pop_front() {
                return Ok(item);
            }
            q.waiting = true;
            let timed_out = self.0.ready.wait_until(&mut q, deadline).timed_out();
            q.waiting = false;
            if timed_out {
                return q.items.pop_front().ok_or(RecvTimeoutError::Timeout);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn items_come_in_order_and_a_sleeping_receiver_is_woken() {
        let (tx, rx) = unbounded();
        tx.send(1).unwrap();
        tx.clone().send(2).unwrap();
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
        assert!(rx.try_recv().is_err());
        let far = Instant::now() + Duration::from_secs(30);
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            tx.send(3).unwrap();
        });
        let began = Instant::now();
        assert_eq!(rx.recv_deadline(far).unwrap(), 3);
        assert!(began.elapsed() < Duration::from_secs(10));
        sender.join().unwrap();
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(matches!(
            rx.recv_deadline(soon),
            Err(RecvTimeoutError::Timeout)
        ));
    }
}
