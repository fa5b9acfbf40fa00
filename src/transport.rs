//! The seam between a session and the bytes it exchanges: send a message, receive messages,
//! close. The stdio transport here owns the child process; a Streamable HTTP transport can
//! implement the same trait without any change to the session or the pool.

use std::io::{self, BufReader, Write};
use std::process::{Child, ChildStdin};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::ServerConfig;
use crate::error::{CloseReason, Error};
use crate::jsonrpc::{brief, Frame, LineReader, Message};
use crate::process::{self, SharedTail, StderrTail};

/// What a transport delivers to its session.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A JSON-RPC message from the server.
    Message(Message),
    /// A line that is not a JSON-RPC message: logged and counted, not fatal.
    Invalid(String),
    /// The server's side is gone or unusable; nothing more will come.
    Closed(Ended),
}

/// Why the inbound side ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// End of stream.
    Eof,
    /// A message longer than the size limit.
    TooLong(usize),
    /// A read error.
    Io(io::Error),
}

/// Where a transport delivers what the server sends, on the transport's own thread. Returns
/// `false` when nobody listens any more.
pub(crate) type Sink = Box<dyn FnMut(Inbound) -> bool + Send>;

/// A session's connection to its server. A transport is built with a [`Sink`] that receives
/// every inbound message; `send` and `close` are called from the session's worker thread.
pub(crate) trait Transport: Send {
    /// Writes what it can of `bytes` without blocking and returns how many bytes it took
    /// (0 when the connection cannot take more now). The caller keeps the rest and tries
    /// again later, and so always knows which messages reached the server.
    fn send(&mut self, bytes: &[u8]) -> io::Result<usize>;
    /// After the inbound side ended: why the server went away (for stdio, waits briefly for
    /// the exit status).
    fn end_reason(&mut self, ended: &Ended) -> CloseReason;
    /// Closes the connection and releases everything behind it. May take seconds.
    fn close(&mut self);
    /// The server's recent diagnostics (stderr tail for stdio).
    fn diagnostics(&self) -> String;
    /// The server process id, if there is one.
    fn pid(&self) -> Option<u32>;
}

/// A transport over a child's stdin and stdout, with stderr drained into a tail.
pub(crate) struct StdioTransport {
    child: Child,
    stdin: Option<ChildStdin>,
    readers: Vec<JoinHandle<()>>,
    tail: SharedTail,
    grace: Duration,
}

impl StdioTransport {
    /// Spawns the server (from the calling thread, which must outlive the child) and starts
    /// its stdout reader and stderr drain threads.
    pub(crate) fn spawn(config: &ServerConfig, sink: Sink) -> Result<StdioTransport, Error> {
        let mut child = process::spawn(config)?;
        let pid = child.id();
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => unreachable!("all three stdio streams are piped in process::spawn"),
            };
        let tail: SharedTail = Arc::new(Mutex::new(StderrTail::new(
            config.stderr_tail_lines,
            config.stderr_tail_bytes,
        )));
        let mut readers = Vec::with_capacity(2);
        let name = config.name.clone();
        let max = config.max_message_size;
        let started = thread::Builder::new()
            .name(format!("mcp-read-{}", config.name))
            .spawn(move || read_stdout(stdout, max, &name, sink))
            .and_then(|reader| {
                readers.push(reader);
                let name = config.name.clone();
                let tail = tail.clone();
                thread::Builder::new()
                    .name(format!("mcp-stderr-{}", config.name))
                    .spawn(move || process::drain_stderr(stderr, &name, &tail))
            });
        // Writes never block the worker: a server that stops reading cannot wedge it.
        let nonblocking = process::set_nonblocking(&stdin);
        let started = started.and_then(|drain| nonblocking.map(|()| drain));
        let mut transport = StdioTransport {
            child,
            stdin: Some(stdin),
            readers,
            tail,
            grace: config.close_grace,
        };
        match started {
            Ok(drain) => {
                transport.readers.push(drain);
                log::debug!(
                    "[{}] spawned pid {pid}: {}",
                    config.name,
                    config.command_line()
                );
                Ok(transport)
            }
            Err(source) => {
                transport.close();
                Err(Error::Spawn {
                    command: format!("{} (setting up its pipes)", config.command_line()),
                    source,
                })
            }
        }
    }
}

fn read_stdout(stdout: std::process::ChildStdout, max: usize, name: &str, mut sink: Sink) {
    let mut reader = LineReader::new(BufReader::with_capacity(64 << 10, stdout), max);
    let mut messages = Vec::with_capacity(1);
    loop {
        let inbound = match reader.next_line() {
            Ok(Frame::Line(line)) => match serde_json::from_slice(&line) {
                Ok(value) => {
                    Message::classify(value, &mut messages);
                    for m in messages.drain(..) {
                        let item = match m {
                            Ok(m) => Inbound::Message(m),
                            Err(why) => Inbound::Invalid(why),
                        };
                        if !sink(item) {
                            return;
                        }
                    }
                    continue;
                }
                Err(e) => Inbound::Invalid(format!(
                    "not JSON ({e}): {}",
                    brief(&String::from_utf8_lossy(&line))
                )),
            },
            Ok(Frame::TooLong(n)) => Inbound::Closed(Ended::TooLong(n)),
            Ok(Frame::Eof) => Inbound::Closed(Ended::Eof),
            Err(e) => Inbound::Closed(Ended::Io(e)),
        };
        let last = matches!(inbound, Inbound::Closed(_));
        if !sink(inbound) || last {
            log::trace!("[{name}] stdout reader done");
            return;
        }
    }
}

impl Transport for StdioTransport {
    fn send(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "stdin closed"));
        };
        loop {
            return match stdin.write(bytes) {
                Ok(n) => Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    fn end_reason(&mut self, ended: &Ended) -> CloseReason {
        match ended {
            Ended::TooLong(n) => {
                return CloseReason::Broken(format!(
                    "server sent a message of more than {n} bytes, over the size limit"
                ))
            }
            Ended::Io(e) => return CloseReason::Broken(format!("reading server output: {e}")),
            Ended::Eof => {}
        }
        // A crashed server closes stdout as it exits: give the exit status a moment to land,
        // and its last stderr lines a moment to reach the tail.
        let reason = process::wait_exit(&self.child, Duration::from_millis(250));
        let until = Instant::now() + Duration::from_millis(100);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < until {
            thread::sleep(Duration::from_millis(1));
        }
        reason.unwrap_or(CloseReason::Eof)
    }

    fn close(&mut self) {
        drop(self.stdin.take());
        let reason = process::shut_down(&mut self.child, self.grace);
        log::debug!("child {} ended: {reason}", self.child.id());
        // The pipes' other ends are closed now that the group is gone, so the readers end;
        // a process that escaped the group could keep them open, so wait a bounded time.
        let deadline = Instant::now() + Duration::from_secs(2);
        for reader in self.readers.drain(..) {
            while !reader.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(2));
            }
            if reader.is_finished() {
                let _ = reader.join();
            } else {
                log::warn!(
                    "a reader thread of child {} did not end; leaving it",
                    self.child.id()
                );
            }
        }
    }

    fn diagnostics(&self) -> String {
        self.tail.lock().text()
    }

    fn pid(&self) -> Option<u32> {
        Some(self.child.id())
    }
}
