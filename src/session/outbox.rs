//! The worker's write path: the bytes waiting for the server's stdin, and which request
//! each line belongs to. Writes never block; what the pipe does not take now stays here,
//! bounded, and a request counts as sent from the moment its first byte reaches the pipe.

use std::collections::VecDeque;
use std::io;

use super::buffer::Shrink;

/// A request line not completely written yet.
#[derive(Debug)]
struct Segment {
    start: usize,
    end: usize,
    id: u64,
    /// Its first byte reached the server.
    sent: bool,
}

/// The outbox is over its limit: the server is not reading its input.
#[derive(Debug)]
pub(crate) struct Full;

/// Bytes waiting to be written, with an offset of what was written (never drained from the
/// front, which would copy the rest every time the pipe fills).
#[derive(Debug)]
pub(crate) struct Outbox {
    buf: Vec<u8>,
    written: usize,
    segments: VecDeque<Segment>,
    limit: usize,
    shrink: Shrink,
}

impl Outbox {
    /// An outbox that refuses more once `limit` bytes are waiting.
    pub(crate) fn new(limit: usize) -> Outbox {
        Outbox {
            buf: Vec::new(),
            written: 0,
            segments: VecDeque::new(),
            limit,
            shrink: Shrink::default(),
        }
    }

    /// Bytes waiting.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.written
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    /// Queues a line (a request when `id` is given). One line of any size is always taken;
    /// more is refused while `limit` bytes already wait.
    pub(crate) fn push(&mut self, line: &[u8], id: Option<u64>) -> Result<(), Full> {
        if self.pending() > self.limit {
            return Err(Full);
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(line);
        self.record(start, id);
        Ok(())
    }

    /// [`push`](Self::push) of a line the outbox may keep (no copy when nothing waits).
    pub(crate) fn push_owned(&mut self, line: Vec<u8>, id: Option<u64>) -> Result<(), Full> {
        let end = line.len();
        match id {
            Some(id) => self.push_many(line, &[(id, end)]),
            None => self.push_many(line, &[]),
        }
    }

    /// Queues many request lines at once: `ends` has each one's id and where its line ends
    /// in `lines`, in order. Taken whole, like one line, or refused whole.
    pub(crate) fn push_many(&mut self, lines: Vec<u8>, ends: &[(u64, usize)]) -> Result<(), Full> {
        if self.pending() > self.limit {
            return Err(Full);
        }
        let base = self.buf.len();
        if self.buf.is_empty() {
            self.buf = lines;
            self.written = 0;
        } else {
            self.buf.extend_from_slice(&lines);
        }
        let mut start = base;
        for &(id, end) in ends {
            self.segments.push_back(Segment {
                start,
                end: base + end,
                id,
                sent: false,
            });
            start = base + end;
        }
        Ok(())
    }

    fn record(&mut self, start: usize, id: Option<u64>) {
        if let Some(id) = id {
            self.segments.push_back(Segment {
                start,
                end: self.buf.len(),
                id,
                sent: false,
            });
        }
    }

    /// Writes what `write` takes (0: nothing now) and returns the requests whose first byte
    /// was written by this call. On an error, what was written before it still counts.
    pub(crate) fn flush(
        &mut self,
        mut write: impl FnMut(&[u8]) -> io::Result<usize>,
        sent: &mut Vec<u64>,
    ) -> io::Result<()> {
        while self.written < self.buf.len() {
            let n = write(&self.buf[self.written..])?;
            if n == 0 {
                break;
            }
            self.written += n;
            for s in self.segments.iter_mut() {
                if s.start >= self.written {
                    break;
                }
                if !s.sent {
                    s.sent = true;
                    sent.push(s.id);
                }
            }
            while self.segments.front().is_some_and(|s| s.end <= self.written) {
                self.segments.pop_front();
            }
        }
        if self.written == self.buf.len() {
            let used = self.buf.len();
            self.buf.clear();
            self.written = 0;
            self.shrink.emptied(&mut self.buf, used, 64 << 10);
        }
        Ok(())
    }

    /// Drops a request none of whose bytes were written. Returns `false` when some were
    /// (or it is gone already): then the server has it, and must be told to cancel it.
    pub(crate) fn withdraw(&mut self, id: u64) -> bool {
        let Some(i) = self.segments.iter().position(|s| s.id == id) else {
            return false;
        };
        if self.segments[i].sent {
            return false;
        }
        let seg = self.segments.remove(i).expect("found above");
        let len = seg.end - seg.start;
        self.buf.drain(seg.start..seg.end);
        for s in self.segments.iter_mut().skip(i) {
            s.start -= len;
            s.end -= len;
        }
        true
    }

    /// Forgets everything (the session ended).
    pub(crate) fn clear(&mut self) {
        self.buf = Vec::new();
        self.written = 0;
        self.segments.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_counts_as_sent_from_its_first_byte() {
        let mut o = Outbox::new(1 << 20);
        o.push(b"{\"id\":1}\n", Some(1)).unwrap();
        o.push(b"{\"n\":0}\n", None).unwrap();
        o.push(b"{\"id\":2}\n", Some(2)).unwrap();
        let mut sent = Vec::new();
        // The pipe takes everything but the last newline: request 2 reached the server
        // (it may parse what is left at end of input and run it).
        let mut first = true;
        o.flush(
            |b| {
                let n = if first { b.len() - 1 } else { 0 };
                first = false;
                Ok(n)
            },
            &mut sent,
        )
        .unwrap();
        assert_eq!(sent, [1, 2]);
        assert!(!o.withdraw(2));
        let mut o = Outbox::new(1 << 20);
        o.push(b"{\"id\":1}\n", Some(1)).unwrap();
        o.push(b"{\"id\":2}\n", Some(2)).unwrap();
        let mut sent = Vec::new();
        let mut budget = 8;
        o.flush(
            |b| {
                let n = b.len().min(budget);
                budget -= n;
                Ok(n)
            },
            &mut sent,
        )
        .unwrap();
        assert_eq!(sent, [1], "the newline of 1 is not written, but 1 may run");
        assert_eq!(o.pending(), 10);
        assert!(!o.withdraw(1), "1 is partly written: it stays");
        assert!(o.withdraw(2), "2 has no byte out: it can go");
        assert_eq!(o.pending(), 1);
        o.flush(|b| Ok(b.len()), &mut sent).unwrap();
        assert!(o.is_empty());
    }

    #[test]
    fn an_error_keeps_what_was_written_before_it() {
        let mut o = Outbox::new(1 << 20);
        o.push(b"aaaa\n", Some(1)).unwrap();
        o.push(b"bbbb\n", Some(2)).unwrap();
        let mut sent = Vec::new();
        let mut calls = 0;
        let r = o.flush(
            |_| {
                calls += 1;
                if calls == 1 {
                    Ok(5)
                } else {
                    Err(io::ErrorKind::BrokenPipe.into())
                }
            },
            &mut sent,
        );
        assert!(r.is_err());
        assert_eq!(sent, [1]);
    }

    use crate::session::buffer::KEEP_CAPACITY;

    #[test]
    fn a_full_outbox_refuses_and_shrinks_back() {
        let mut o = Outbox::new(10);
        o.push(&[b'x'; 4 << 20], None).unwrap();
        assert!(o.push(b"y", None).is_err());
        o.flush(|b| Ok(b.len()), &mut Vec::new()).unwrap();
        assert!(
            o.buf.capacity() > KEEP_CAPACITY,
            "kept for the next large one"
        );
        for _ in 0..8 {
            assert!(o.push(b"y", None).is_ok());
            o.flush(|b| Ok(b.len()), &mut Vec::new()).unwrap();
        }
        assert!(o.buf.capacity() <= KEEP_CAPACITY, "{}", o.buf.capacity());
    }
}
