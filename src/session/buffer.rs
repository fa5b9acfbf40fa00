//! When a buffer grown for a large message gives its memory back: not at once (a server
//! that keeps sending large messages would pay a fresh allocation, and its page faults, for
//! each), but after a run of small ones.

/// A buffer keeps up to this much capacity whatever passes through it.
pub(crate) const KEEP_CAPACITY: usize = 1 << 20;
/// Messages at most [`KEEP_CAPACITY`] long in a row after which a larger buffer shrinks.
const SMALL_RUN: u32 = 8;

/// Tracks the messages through one buffer and shrinks it back when large ones stop.
#[derive(Debug, Default)]
pub(crate) struct Shrink {
    small_run: u32,
}

impl Shrink {
    /// `buf` was emptied after carrying `used` bytes: shrinks it to `to` once large
    /// messages have stopped coming.
    pub(crate) fn emptied(&mut self, buf: &mut Vec<u8>, used: usize, to: usize) {
        if used > KEEP_CAPACITY {
            self.small_run = 0;
            return;
        }
        if buf.capacity() <= KEEP_CAPACITY {
            return;
        }
        self.small_run += 1;
        if self.small_run >= SMALL_RUN {
            buf.shrink_to(to);
            self.small_run = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_buffer_shrinks_after_a_run_of_small_messages_only() {
        let mut s = Shrink::default();
        let mut buf: Vec<u8> = Vec::with_capacity(8 << 20);
        for _ in 0..20 {
            s.emptied(&mut buf, 8 << 20, 1024);
            assert!(buf.capacity() >= 8 << 20, "kept while large ones come");
        }
        for _ in 0..SMALL_RUN - 1 {
            s.emptied(&mut buf, 100, 1024);
        }
        s.emptied(&mut buf, 8 << 20, 1024);
        for _ in 0..SMALL_RUN - 1 {
            s.emptied(&mut buf, 100, 1024);
        }
        assert!(buf.capacity() >= 8 << 20, "a large one restarts the run");
        s.emptied(&mut buf, 100, 1024);
        assert!(buf.capacity() <= KEEP_CAPACITY, "{}", buf.capacity());
    }
}
