//! A parser of Server-Sent Events (the WHATWG `text/event-stream` rules), fed the bytes of
//! a response body as they come, with a bound on one event's size.
//!
//! Lines end with CRLF, LF or CR; a leading byte-order mark is dropped; `:` starts a comment;
//! `data` lines are joined with newlines; `event`, `id` (ignored if it holds NUL) and `retry`
//! (digits only) are kept; a blank line dispatches the event; an event with no data is not
//! dispatched (but its `id` and `retry` still count). An event over the size bound is
//! skipped to its end and reported by its size.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The event type (`message` when none was given).
    pub kind: String,
    /// Its data, lines joined with `\n`.
    pub data: String,
}

/// What a chunk of the stream produced.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub events: Vec<Event>,
    /// The sizes of the events skipped for being over the bound (so far, for the last).
    pub oversize: Vec<usize>,
}

/// The parser's state between chunks.
#[derive(Debug)]
pub(crate) struct Parser {
    line: Vec<u8>,
    data: String,
    has_data: bool,
    kind: String,
    /// The last event id set by the stream (sent back as `Last-Event-ID` on reconnect).
    pub last_id: Option<String>,
    /// The reconnection time the stream asked for, in milliseconds.
    pub retry_ms: Option<u64>,
    /// A CR was the last byte: an LF right after it belongs to the same line end.
    after_cr: bool,
    started: bool,
    max: usize,
    /// Skipping an event over the bound: the bytes seen of it so far.
    skipping: Option<usize>,
    /// The line being skipped is not the first of its event's end yet (a blank line ends
    /// the skip).
    line_empty: bool,
    /// The event being skipped was already reported (at the end of a chunk).
    reported: bool,
}

impl Parser {
    /// A parser refusing events (and lines) over `max` bytes.
    pub(crate) fn new(max: usize) -> Parser {
        Parser {
            line: Vec::new(),
            data: String::new(),
            has_data: false,
            kind: String::new(),
            last_id: None,
            retry_ms: None,
            after_cr: false,
            started: false,
            max,
            skipping: None,
            line_empty: true,
            reported: false,
        }
    }

    /// Feeds bytes; returns the events they completed.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Parsed {
        let mut out = Parsed::default();
        if !self.started && !bytes.is_empty() {
            self.started = true;
            if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
                bytes = rest;
            }
        }
        for &b in bytes {
            if let Some(seen) = self.skipping.as_mut() {
                *seen += 1;
                match b {
                    b'\n' if self.after_cr => self.after_cr = false,
                    b'\n' | b'\r' => {
                        self.after_cr = b == b'\r';
                        if self.line_empty {
                            let size = *seen;
                            self.skipping = None;
                            if !std::mem::take(&mut self.reported) {
                                out.oversize.push(size);
                            }
                        }
                        self.line_empty = true;
                    }
                    _ => {
                        self.after_cr = false;
                        self.line_empty = false;
                    }
                }
                continue;
            }
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    self.end_line(&mut out);
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() >= self.max {
                        self.skip();
                        continue;
                    }
                    self.line.push(b);
                }
            }
        }
        if let (Some(seen), false) = (self.skipping, self.reported) {
            // Reported once before its end too, so a caller need not wait for an end that
            // may never come.
            self.reported = true;
            out.oversize.push(seen);
        }
        out
    }

    /// Drops the event being read: it is over the bound.
    fn skip(&mut self) {
        let seen = self.line.len() + self.data.len() + 1;
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        self.kind.clear();
        self.skipping = Some(seen);
        self.line_empty = false;
    }

    fn end_line(&mut self, out: &mut Parsed) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let text = String::from_utf8_lossy(&line);
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&text[..], ""),
        };
        match field {
            "data" => {
                if self.data.len() + value.len() + 1 > self.max {
                    drop(text);
                    self.skip();
                    self.line_empty = true;
                    return;
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.kind = value.to_owned(),
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|c| c.is_ascii_digit()) => {
                self.retry_ms = value.parse().ok();
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Parsed) {
        let kind = std::mem::take(&mut self.kind);
        if !self.has_data {
            return;
        }
        self.has_data = false;
        out.events.push(Event {
            kind: if kind.is_empty() {
                "message".into()
            } else {
                kind
            },
            data: std::mem::take(&mut self.data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &mut Parser, chunks: &[&[u8]]) -> Vec<Event> {
        chunks.iter().flat_map(|c| p.feed(c).events).collect()
    }

    #[test]
    fn events_across_chunks_and_line_endings() {
        let mut p = Parser::new(1 << 20);
        let got = all(
            &mut p,
            &[
                b"\xEF\xBB\xBF: comment\r\nevent: message\r\nid: 7\r\nda",
                b"ta: {\"a\":\r\ndata:1}\r\n\r",
                b"\ndata: second\n\ndata: third\r\r",
            ],
        );
        assert_eq!(
            got,
            vec![
                Event {
                    kind: "message".into(),
                    data: "{\"a\":\n1}".into()
                },
                Event {
                    kind: "message".into(),
                    data: "second".into()
                },
                Event {
                    kind: "message".into(),
                    data: "third".into()
                },
            ]
        );
        assert_eq!(p.last_id.as_deref(), Some("7"));
    }

    #[test]
    fn a_priming_event_without_data_sets_id_and_retry_only() {
        let mut p = Parser::new(1 << 20);
        let got = all(&mut p, &[b"id: event-1\nretry: 500\ndata:\n\n"]);
        // `data:` with nothing after it is data: an empty string.
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, "");
        assert_eq!(
            (p.last_id.as_deref(), p.retry_ms),
            (Some("event-1"), Some(500))
        );
        let got = all(&mut p, &[b"id: 2\nretry: x\n\n"]);
        assert!(got.is_empty());
        assert_eq!((p.last_id.as_deref(), p.retry_ms), (Some("2"), Some(500)));
        let got = all(&mut p, &[b"event: endpoint\ndata: /messages?s=1\n\n"]);
        assert_eq!(got[0].kind, "endpoint");
    }

    #[test]
    fn an_event_over_the_limit_is_skipped_to_its_end() {
        let mut p = Parser::new(16);
        let got = p.feed(b"data: 0123456789\n");
        assert!(got.events.is_empty() && got.oversize.is_empty());
        let got = p.feed(b"data: 0123456789\ndata: more\n\ndata: ok\n\n");
        assert_eq!(got.oversize.len(), 1);
        assert_eq!(
            got.events,
            vec![Event {
                kind: "message".into(),
                data: "ok".into()
            }]
        );
        // A line over the bound with no end in sight is reported while it streams.
        let mut p = Parser::new(16);
        let got = p.feed(&[b'x'; 40]);
        assert_eq!(got.oversize, vec![40]);
        let got = p.feed(b"xx\n\ndata: after\n\n");
        assert_eq!(got.events.len(), 1);
        assert_eq!(got.events[0].data, "after");
    }
}
