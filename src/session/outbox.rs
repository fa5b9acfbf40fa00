//! The worker's write path: the bytes waiting for the server's stdin, and which request
//! each line belongs to. Writes never block; what the pipe does not take now stays here,
//! bounded, and a request counts as sent from the moment its first byte reaches the pipe.

use std::collections::{HashSet, VecDeque};
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
    /// The hand-overs larger than the limit still in `buf` (start, end), in order: their
    /// bytes do not count against the limit. A big batch is as large as its caller asked,
    /// it is withdrawn when its caller gives up, and a server reading it at its own pace
    /// has not stopped reading.
    big: VecDeque<(usize, usize)>,
    segments: VecDeque<Segment>,
    limit: usize,
    shrink: Shrink,
}

impl Outbox {
    /// An outbox that refuses more once `limit` bytes are waiting (besides hand-overs larger
    /// than the limit).
    pub(crate) fn new(limit: usize) -> Outbox {
        Outbox {
            buf: Vec::new(),
            written: 0,
            big: VecDeque::new(),
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

    /// Refuses more while `limit` bytes wait, not counting what is left of the hand-overs
    /// larger than the limit.
    fn check_room(&self) -> Result<(), Full> {
        let exempt: usize = self
            .big
            .iter()
            .map(|&(start, end)| end - start.max(self.written))
            .sum();
        if self.pending() - exempt > self.limit {
            return Err(Full);
        }
        Ok(())
    }

    /// Queues a line (a request when `id` is given). One line of any size is always taken;
    /// more is refused while `limit` bytes already wait (see [`check_room`](Self::check_room)).
    pub(crate) fn push(&mut self, line: &[u8], id: Option<u64>) -> Result<(), Full> {
        self.check_room()?;
        let start = self.buf.len();
        self.buf.extend_from_slice(line);
        self.record(start, id);
        if line.len() > self.limit {
            self.big.push_back((start, self.buf.len()));
        }
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
    /// in `lines`, in order. Taken whole, like one line, or refused whole; one larger than
    /// the limit does not count against what comes after it.
    pub(crate) fn push_many(&mut self, lines: Vec<u8>, ends: &[(u64, usize)]) -> Result<(), Full> {
        self.check_room()?;
        let oversize = lines.len() > self.limit;
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
        if oversize {
            self.big.push_back((base, self.buf.len()));
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
            while self
                .big
                .front()
                .is_some_and(|&(_, end)| end <= self.written)
            {
                self.big.pop_front();
            }
        }
        if self.written == self.buf.len() {
            let used = self.buf.len();
            self.buf.clear();
            self.written = 0;
            self.big.clear();
            self.shrink.emptied(&mut self.buf, used, 64 << 10);
        }
        Ok(())
    }

    /// Drops the requests none of whose bytes were written, in one pass over the buffer.
    /// Returns the others (some of their bytes were written, or they are gone already):
    /// the server has those, and must be told to cancel them.
    pub(crate) fn withdraw(&mut self, ids: &[u64]) -> Vec<u64> {
        let wanted: HashSet<u64> = ids.iter().copied().collect();
        let mut kept = VecDeque::with_capacity(self.segments.len());
        // The byte ranges to cut, in order, and the ids withdrawn.
        let mut cuts: Vec<(usize, usize)> = Vec::new();
        let mut withdrawn = HashSet::new();
        for seg in self.segments.drain(..) {
            if !seg.sent && wanted.contains(&seg.id) {
                cuts.push((seg.start, seg.end));
                withdrawn.insert(seg.id);
            } else {
                kept.push_back(seg);
            }
        }
        // Every cut is unwritten, so after `written`: the rest moves down over each one.
        if let Some(&(first, _)) = cuts.first() {
            let mut to = first;
            for (i, &(_, end)) in cuts.iter().enumerate() {
                let next = cuts.get(i + 1).map_or(self.buf.len(), |&(start, _)| start);
                self.buf.copy_within(end..next, to);
                to += next - end;
            }
            self.buf.truncate(to);
            // No cut is inside a kept segment: each moves down by what was cut before it.
            let mut before = CutBefore::new(&cuts);
            for seg in kept.iter_mut() {
                let shift = before.at(seg.start);
                seg.start -= shift;
                seg.end -= shift;
            }
            // A big hand-over loses what was cut inside it too.
            let mut before = CutBefore::new(&cuts);
            for (start, end) in self.big.iter_mut() {
                *start -= before.at(*start);
                *end -= before.at(*end);
            }
            self.big.retain(|&(start, end)| end > start);
        }
        self.segments = kept;
        ids.iter()
            .copied()
            .filter(|id| !withdrawn.contains(id))
            .collect()
    }

    /// Forgets everything (the session ended).
    pub(crate) fn clear(&mut self) {
        self.buf = Vec::new();
        self.written = 0;
        self.big.clear();
        self.segments.clear();
    }
}

/// How many bytes the cuts (sorted, apart) remove before a position, for positions asked
/// in order: one walk over the cuts for all of them.
struct CutBefore<'a> {
    cuts: &'a [(usize, usize)],
    next: usize,
    whole: usize,
}

impl<'a> CutBefore<'a> {
    fn new(cuts: &'a [(usize, usize)]) -> Self {
        CutBefore {
            cuts,
            next: 0,
            whole: 0,
        }
    }

    fn at(&mut self, pos: usize) -> usize {
        while let Some(&(start, end)) = self.cuts.get(self.next).filter(|c| c.1 <= pos) {
            self.whole += end - start;
            self.next += 1;
        }
        let inside = self
            .cuts
            .get(self.next)
            .map_or(0, |&(start, _)| pos.saturating_sub(start));
        self.whole + inside
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
        assert_eq!(o.withdraw(&[2]), [2], "2 reached the server: it stays");
        let mut o = Outbox::new(1 << 20);
        o.push(b"{\"id\":1}\n", Some(1)).unwrap();
        o.push(b"{\"id\":2}\n", Some(2)).unwrap();
        let sent = flush_at_most(&mut o, 8);
        assert_eq!(sent, [1], "the newline of 1 is not written, but 1 may run");
        assert_eq!(o.pending(), 10);
        assert_eq!(
            o.withdraw(&[1, 2]),
            [1],
            "1 is partly written: it stays; 2 goes"
        );
        assert_eq!(o.pending(), 1);
        drain(&mut o);
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

    /// Writes what a pipe taking `budget` bytes takes; returns the requests it sent.
    fn flush_at_most(o: &mut Outbox, mut budget: usize) -> Vec<u64> {
        let mut sent = Vec::new();
        o.flush(
            |b| {
                let n = b.len().min(budget);
                budget -= n;
                Ok(n)
            },
            &mut sent,
        )
        .unwrap();
        sent
    }

    /// Writes everything waiting and returns it.
    fn drain(o: &mut Outbox) -> Vec<u8> {
        let mut out = Vec::new();
        o.flush(
            |b| {
                out.extend_from_slice(b);
                Ok(b.len())
            },
            &mut Vec::new(),
        )
        .unwrap();
        out
    }

    #[test]
    fn withdrawing_many_cuts_only_their_unwritten_lines_in_one_pass() {
        let mut o = Outbox::new(1 << 20);
        o.push(b"r1\n", Some(1)).unwrap();
        o.push_many(b"r2\nr3\nr4\n".to_vec(), &[(2, 3), (3, 6), (4, 9)])
            .unwrap();
        o.push(b"note\n", None).unwrap();
        o.push(b"r5\n", Some(5)).unwrap();
        o.push(b"r6\n", Some(6)).unwrap();
        // The pipe takes `r1` and the first byte of `r2`.
        let sent = flush_at_most(&mut o, 4);
        assert_eq!(sent, [1, 2]);
        let left = o.withdraw(&[1, 2, 3, 5, 7]);
        assert_eq!(
            left,
            [1, 2, 7],
            "written (1), partly written (2), unknown (7)"
        );
        // What stays is whole and in order, and 4 and 6 still count as requests.
        assert_eq!(drain(&mut o), b"2\nr4\nnote\nr6\n");
        o.push(b"r8\n", Some(8)).unwrap();
        assert_eq!(o.withdraw(&[8]), Vec::<u64>::new());
        assert!(o.is_empty());
    }

    #[test]
    fn a_hand_over_larger_than_the_limit_does_not_count_against_what_follows() {
        let mut o = Outbox::new(10);
        let ends: Vec<(u64, usize)> = (0..100).map(|i| (i, (i as usize + 1) * 4)).collect();
        o.push_many(b"big\n".repeat(100), &ends).unwrap();
        // Other lines are taken until they alone are over the limit.
        for _ in 0..3 {
            o.push(b"abcd\n", None).unwrap();
        }
        assert!(o.push(b"abcd\n", None).is_err());
        // Withdrawing lines of the big one keeps the rest of it exempt.
        assert_eq!(o.withdraw(&[0, 99]), Vec::<u64>::new());
        assert!(o.push(b"abcd\n", None).is_err());
        let out = drain(&mut o);
        assert_eq!(out.len(), 98 * 4 + 3 * 5);
        assert!(out.starts_with(b"big\n") && out.ends_with(b"big\nabcd\nabcd\nabcd\n"));
        // Empty again: lines under the limit count from the first.
        for _ in 0..3 {
            o.push(b"abcd\n", None).unwrap();
        }
        assert!(o.push(b"abcd\n", None).is_err());

        // What waited before a big hand-over still counts, during it and once it is
        // withdrawn (a server that never reads is still found out, however many big
        // batches give up on it).
        let mut o = Outbox::new(10);
        o.push(b"abcd\n", None).unwrap();
        o.push(b"abcd\n", None).unwrap();
        o.push_many(b"big\n".repeat(100), &ends).unwrap();
        o.push_many(b"big\n".repeat(100), &ends).unwrap();
        o.push(b"e\n", None).unwrap();
        assert!(
            o.push(b"f\n", None).is_err(),
            "12 bytes of small lines wait"
        );
        assert_eq!(o.withdraw(&(0..100).collect::<Vec<_>>()), Vec::<u64>::new());
        assert_eq!(o.pending(), 12);
        assert!(o.push(b"f\n", None).is_err(), "the small lines still count");
    }

    #[test]
    fn a_full_outbox_refuses_and_shrinks_back() {
        let mut o = Outbox::new(10);
        o.push(&[b'x'; 4 << 20], None).unwrap();
        for _ in 0..3 {
            o.push(b"abcd\n", None).unwrap();
        }
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
