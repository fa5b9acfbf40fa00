//! The session's worker thread: it owns the server (the child process, or whatever the
//! connector made), writes everything the server receives, reads the server's output while
//! no caller waits for an answer, drains its stderr, watches for the child's exit, runs the
//! handshake and, when the session ends, fails every call at once and shuts the child down.
//!
//! The worker sleeps in one `poll` over: its doorbell (rung by whoever hands it a command),
//! the child's exit (a pidfd), the child's stderr, the child's stdout (while it holds the
//! read token) and the child's stdin (while bytes wait to be written).

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use serde_json::json;

use crate::config::ServerConfig;
use crate::error::{CloseReason, Error};
use crate::jsonrpc;

use super::handle::{Joiner, Session};
use super::inbound::{self, Fill, Lines};
use super::outbox::Outbox;
use super::pending::Reader;
use super::process::{Process, StderrDrain};
use super::shared::{Command, Shared};
use super::sys::{self, Watch};

/// The least room the outbox has before a server that does not read is a broken session.
const MIN_OUTBOX_LIMIT: usize = 32 << 20;
/// Chunks of output read in one turn before the worker looks at its other work again.
const READS_PER_TURN: usize = 16;
/// How soon the worker first looks again at a read token held by a caller (doubling up to
/// the maximum while the caller keeps it): bounds how long unsolicited server messages wait
/// after the last caller stopped reading.
const TOKEN_CHECK_MIN: Duration = Duration::from_millis(5);
const TOKEN_CHECK_MAX: Duration = Duration::from_millis(500);
/// How long a session that ended on end of output waits for the child's exit status.
const EXIT_STATUS_WAIT: Duration = Duration::from_millis(100);
/// Without pidfds, how often the worker checks whether the child has exited.
const EXIT_POLL: Duration = Duration::from_millis(100);

/// A connection to a server speaking newline-delimited JSON-RPC: the descriptors the worker
/// writes to and reads from, and the process behind them, if any. Every descriptor is
/// non-blocking.
pub(crate) struct Conn {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: Option<OwnedFd>,
    pub process: Option<Process>,
}

/// Makes a session's connection, on its worker thread: spawns the server, or (in tests)
/// connects in-memory pipes to a server thread.
pub(crate) type Connect = Box<dyn FnOnce(&ServerConfig) -> Result<Conn, Error> + Send>;

/// The standard connector: spawns the configured command.
pub(crate) fn spawn_process() -> Connect {
    Box::new(|config| {
        let spawned = Process::spawn(config)?;
        Ok(Conn {
            stdin: spawned.stdin,
            stdout: spawned.stdout,
            stderr: Some(spawned.stderr),
            process: Some(spawned.process),
        })
    })
}

/// How the worker tells the outcome of the start.
pub(crate) enum Report {
    /// On a channel a starter waits on (it builds the session handle).
    Wait(Sender<Result<(), Error>>),
    /// To a callback, run on the worker thread before it starts serving: no thread waits.
    Call(Box<dyn FnOnce(Joiner, Result<Session, Error>) + Send>),
}

impl Report {
    /// Tells the outcome; `false` when nobody takes the session.
    pub(crate) fn tell(self, shared: &Arc<Shared>, outcome: Result<(), Error>) -> bool {
        match self {
            Report::Wait(tx) => tx.send(outcome).is_ok(),
            Report::Call(f) => {
                let joiner = Joiner::new(shared.clone());
                f(
                    joiner,
                    outcome.map(|()| Session::from_shared(shared.clone())),
                );
                true
            }
        }
    }
}

/// Starts a session's worker thread, which connects, runs the handshake and reports.
pub(crate) fn launch(
    config: ServerConfig,
    connect: Connect,
    report: Report,
) -> Result<Arc<Shared>, Error> {
    let name = config.name.clone();
    let (commands, command_rx) = unbounded();
    let (finished_tx, finished) = bounded::<()>(0);
    let shared = Arc::new(
        Shared::new(&config, commands, finished)
            .map_err(|e| Error::spawn(format!("the session of `{name}` (eventfd)"), e))?,
    );
    if let Some(http) = &config.http {
        let link = super::http::Link::new(
            &name,
            http,
            config.max_message_size,
            &config.client_name,
            config.caller.clone(),
        )?;
        let _ = shared.http.set(Arc::new(link));
        // Callers read their own replies: nobody takes the stdio read token.
        shared.table.lock().force();
    }
    let for_worker = shared.clone();
    // The handle is stored before the worker can finish, so `join` always finds it.
    let mut slot = shared.worker.lock();
    let worker = thread::Builder::new()
        .name(format!("mcp-worker-{name}"))
        .spawn(move || {
            let _finished = finished_tx;
            let shared = for_worker.clone();
            if shared.http.get().is_some() {
                drop(connect);
                super::http::serve(config, for_worker, command_rx, report);
            } else {
                run(config, connect, for_worker, command_rx, report);
            }
            shared.worker_done();
        })
        .map_err(|e| Error::spawn(format!("worker thread for `{name}`"), e))?;
    *slot = Some(worker);
    drop(slot);
    Ok(shared)
}

pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    commands: Receiver<Command>,
    stdin: Option<OwnedFd>,
    /// The server's output, owned by `shared.lines`; closed only by `finish`.
    stdout: Option<std::os::fd::RawFd>,
    stderr: Option<OwnedFd>,
    pub(crate) drain: StderrDrain,
    pub(crate) process: Option<Process>,
    pub(crate) outbox: Outbox,
    grace: Duration,
    token_check: Duration,
}

fn run(
    config: ServerConfig,
    connect: Connect,
    shared: Arc<Shared>,
    commands: Receiver<Command>,
    report: Report,
) {
    // Writes to a dead child must fail with EPIPE, not kill a C host that keeps SIGPIPE.
    sys::block_sigpipe_in_this_thread();
    let conn = match connect(&config) {
        Ok(conn) => conn,
        Err(e) => {
            let reason = CloseReason::Broken(e.to_string());
            shared.lifecycle.ending(reason.clone());
            shared.table.lock().fail_all(&reason, "");
            shared.lifecycle.ended(reason, String::new());
            shared.doorbell.close();
            shared.wake.close();
            report.tell(&shared, Err(e));
            return;
        }
    };
    if let Some(p) = &conn.process {
        let _ = shared.pid.set(p.pid());
    }
    let stdout = conn.stdout.as_raw_fd();
    *shared.lines.lock() = Lines::new(Some(conn.stdout), config.max_message_size);
    let mut worker = Worker {
        shared: shared.clone(),
        commands,
        stdin: Some(conn.stdin),
        stdout: Some(stdout),
        stderr: conn.stderr,
        drain: StderrDrain::new(
            &config.name,
            config.stderr_tail_lines,
            config.stderr_tail_bytes,
        ),
        process: conn.process,
        outbox: Outbox::new(MIN_OUTBOX_LIMIT.max(config.max_message_size.saturating_mul(2))),
        grace: config.close_grace,
        token_check: TOKEN_CHECK_MIN,
    };
    match worker.handshake(&config) {
        Ok(()) => {
            let took = shared.started.elapsed();
            let _ = shared.handshake_time.set(took);
            *shared.last_used.lock() = Instant::now();
            shared.lifecycle.ready();
            if let Some(d) = shared.details.get() {
                log::info!(
                    "[{}] session ready in {:.1} ms: {} {} ({:?} {}), pid {:?}",
                    config.name,
                    took.as_secs_f64() * 1e3,
                    d.server_info.name,
                    d.server_info.version,
                    d.generation,
                    d.protocol_version,
                    shared.pid.get(),
                );
            }
            if !report.tell(&shared, Ok(())) {
                // Nobody waits for it any more.
                worker.finish(CloseReason::Closed);
                return;
            }
        }
        Err((error, reason)) => {
            log::warn!("[{}] session failed to start: {error}", config.name);
            shared.lifecycle.ending(reason.clone());
            // Report first: the kill ladder may take seconds and is not the caller's wait.
            report.tell(&shared, Err(error));
            worker.finish(reason);
            return;
        }
    }
    let reason = worker.serve();
    worker.finish(reason);
}

impl Worker {
    pub(crate) fn name(&self) -> &str {
        &self.shared.name
    }

    /// Serves until the session must end; returns why.
    fn serve(&mut self) -> CloseReason {
        loop {
            if let Some(reason) = self.turn(None) {
                return reason;
            }
        }
    }

    /// One turn: take the commands waiting, write what can be written, then sleep until
    /// something happens (or `until`) and handle it. Returns a reason when the session must
    /// end.
    pub(crate) fn turn(&mut self, until: Option<Instant>) -> Option<CloseReason> {
        while let Ok(command) = self.commands.try_recv() {
            if let Some(reason) = self.command(command) {
                return Some(reason);
            }
        }
        if let Some(reason) = self.flush() {
            return Some(reason);
        }
        if self.shared.lifecycle.is_ending() {
            return Some(
                self.shared
                    .lifecycle
                    .reason()
                    .map_or(CloseReason::Closed, |(r, _)| r),
            );
        }
        let reading = {
            let mut table = self.shared.table.lock();
            let vacant = table.reader() == Reader::Vacant;
            let reading = table.worker_takes();
            if vacant && reading {
                self.token_check = TOKEN_CHECK_MIN;
            }
            reading
        };
        // (Not read from `lines`, which a reading caller holds while it waits.)
        let stdout = self.stdout;
        let Some(doorbell) = self.shared.doorbell.fd() else {
            return Some(CloseReason::Closed);
        };
        let mut watches = Vec::with_capacity(5);
        watches.push(Watch::new(doorbell, sys::IN));
        let exit_fd = self.process.as_ref().and_then(Process::exit_fd);
        if let Some(fd) = exit_fd {
            watches.push(Watch::new(fd, sys::IN));
        }
        if let Some(fd) = &self.stderr {
            watches.push(Watch::new(fd.as_raw_fd(), sys::IN));
        }
        let stdout_at = match (reading, stdout) {
            (true, Some(fd)) => {
                watches.push(Watch::new(fd, sys::IN));
                Some(watches.len() - 1)
            }
            _ => None,
        };
        let stdin_at = match (&self.stdin, self.outbox.is_empty()) {
            (Some(fd), false) => {
                watches.push(Watch::new(fd.as_raw_fd(), sys::OUT));
                Some(watches.len() - 1)
            }
            _ => None,
        };
        let mut wake_at = until;
        if !reading {
            let check = Instant::now() + self.token_check;
            wake_at = Some(wake_at.map_or(check, |u| u.min(check)));
        }
        if self.process.is_some() && exit_fd.is_none() {
            let check = Instant::now() + EXIT_POLL;
            wake_at = Some(wake_at.map_or(check, |u| u.min(check)));
        }
        // Announce the sleep, then look once more: a command sent before the announcement
        // is seen here, one sent after it rings the doorbell.
        self.shared.parked.store(true, Ordering::SeqCst);
        if !self.commands.is_empty() || self.shared.lifecycle.is_ending() {
            self.shared.parked.store(false, Ordering::SeqCst);
            return None;
        }
        let woke = sys::poll(&mut watches, wake_at);
        self.shared.parked.store(false, Ordering::SeqCst);
        if let Err(e) = woke {
            return Some(CloseReason::Broken(format!("poll: {e}")));
        }
        let mut i = 1;
        if watches[0].readable() {
            self.shared.doorbell.drain();
        }
        if exit_fd.is_some() {
            if watches[i].readable() {
                if let Some(reason) = self.process.as_ref().and_then(Process::exited) {
                    return Some(reason);
                }
            }
            i += 1;
        } else if let Some(reason) = self.process.as_ref().and_then(Process::exited) {
            return Some(reason);
        }
        if let Some(fd) = &self.stderr {
            if watches[i].readable() && !self.drain.read(fd.as_raw_fd()) {
                self.stderr = None;
            }
        }
        if let Some(at) = stdout_at {
            if watches[at].readable() {
                if let Some(reason) = self.read_output(READS_PER_TURN) {
                    return Some(reason);
                }
            }
        }
        if stdin_at.is_some_and(|at| watches[at].writable()) {
            if let Some(reason) = self.flush() {
                return Some(reason);
            }
        }
        if !reading && !watches.iter().any(|w| w.ready != 0) {
            // The token check came due and a caller still holds it: look again later.
            self.token_check = (self.token_check * 2).min(TOKEN_CHECK_MAX);
        }
        None
    }

    /// Reads and handles the server's output while the worker holds the read token, up to
    /// `max_reads` reads. Returns a reason when the output ended. Never waits for a caller
    /// that holds the output (it may be waiting for the worker to write its request), except
    /// when the session is ending and that caller has been told to let go.
    pub(crate) fn read_output(&mut self, max_reads: usize) -> Option<CloseReason> {
        let shared = self.shared.clone();
        if shared.table.lock().reader() != Reader::Worker {
            return None;
        }
        let mut lines = if shared.lifecycle.is_ending() {
            shared.lock_lines()
        } else {
            shared.try_lock_lines()?
        };
        if shared.table.lock().reader() != Reader::Worker {
            return None;
        }
        let mut answers = Vec::new();
        let mut ended = None;
        for _ in 0..max_reads {
            match lines.fill() {
                Fill::Data => {}
                Fill::Empty => break,
                Fill::Eof => {
                    ended = Some(CloseReason::Eof);
                    break;
                }
                Fill::Failed(e) => {
                    ended = Some(CloseReason::Broken(format!("reading server output: {e}")));
                    break;
                }
            }
            while let Some(frame) = lines.next() {
                inbound::route(&shared, frame, &mut |line| answers.push(line));
            }
        }
        drop(lines);
        for line in answers {
            if self.outbox.push(&line, None).is_err() {
                return Some(self.outbox_full());
            }
        }
        ended
    }

    fn outbox_full(&self) -> CloseReason {
        CloseReason::Broken(format!(
            "the server stopped reading its input ({} bytes wait to be written)",
            self.outbox.pending()
        ))
    }

    /// Queues a command's output. Returns a reason on `Close` or when the outbox is full.
    fn command(&mut self, command: Command) -> Option<CloseReason> {
        let queued = match command {
            Command::Write { id, line } => self.outbox.push_owned(line, Some(id)),
            Command::WriteMany { lines, ends } => self.outbox.push_many(lines, &ends),
            Command::Notify(line) | Command::Answer(line) => self.outbox.push_owned(line, None),
            Command::Abandon { ids, reason } => {
                self.outbox.withdraw(&ids).into_iter().try_for_each(|id| {
                    let params = json!({ "requestId": id, "reason": reason });
                    let line = jsonrpc::notification_line("notifications/cancelled", Some(&params));
                    self.outbox.push(&line, None)
                })
            }
            Command::Close(reason) => return Some(reason),
        };
        queued.err().map(|_| self.outbox_full())
    }

    /// Writes as much of the outbox as the pipe takes without blocking, and records which
    /// requests reached the server. Returns a reason when the write failed.
    pub(crate) fn flush(&mut self) -> Option<CloseReason> {
        let Some(stdin) = &self.stdin else {
            return None;
        };
        if self.outbox.is_empty() {
            return None;
        }
        let fd = stdin.as_raw_fd();
        let mut sent = Vec::new();
        let result = self
            .outbox
            .flush(|bytes| sys::write_some(fd, bytes), &mut sent);
        if !sent.is_empty() {
            self.shared.table.lock().mark_sent(&sent);
        }
        result
            .err()
            .map(|e| CloseReason::Broken(format!("writing to the server: {e}")))
    }

    /// The best reason for an end seen as end of output or a failed write: the child's
    /// exit status, when it exits within a moment (a crashed server closes its output as it
    /// exits). Also takes in what is left of its stderr.
    pub(crate) fn settle(&mut self, reason: CloseReason) -> CloseReason {
        let mut reason = reason;
        if matches!(reason, CloseReason::Eof | CloseReason::Broken(_)) {
            if let Some(status) = self
                .process
                .as_ref()
                .and_then(|p| p.wait_exit(EXIT_STATUS_WAIT))
            {
                reason = status;
            }
        }
        if let Some(fd) = &self.stderr {
            self.drain.read(fd.as_raw_fd());
        }
        reason
    }

    /// Ends the session: every caller is failed at once (after what the server wrote before
    /// it went has been delivered), then the child is shut down through the kill ladder and
    /// every descriptor closed.
    pub(crate) fn finish(mut self, reason: CloseReason) {
        let shared = self.shared.clone();
        shared.lifecycle.ending(reason.clone());
        // The reading caller lets go of the output: the token is the worker's for good.
        shared.table.lock().force();
        shared.wake.ring();
        self.read_output(64);
        let reason = self.settle(shared.lifecycle.reason().map_or(reason, |(r, _)| r));
        let tail = self.drain.text();
        if reason == CloseReason::Closed {
            log::debug!("[{}] closing session", self.name());
        } else {
            log::warn!(
                "[{}] session ended: {reason}; stderr tail: {}",
                self.name(),
                tail.trim_end()
            );
        }
        shared.lifecycle.ending(reason.clone());
        shared.table.lock().fail_all(&reason, &tail);
        shared.asks.cancel_all();
        shared.lifecycle.ended(reason.clone(), tail.clone());
        // Subscriptions kept by the session hold it: let them go.
        shared.tool_listen.lock().take();
        let listens = std::mem::take(&mut *shared.resource_listens.lock());
        drop(listens);
        // Now the slow way out, with nobody waiting on it.
        self.outbox.clear();
        drop(self.stdin.take());
        {
            // No caller polls these any more once the worker holds `lines` with the session
            // ending (see `call::lead`).
            let mut lines = shared.lines.lock();
            lines.close();
            self.stdout = None;
            shared.wake.close();
        }
        shared.doorbell.close();
        if let Some(process) = &mut self.process {
            let how = process.shut_down(self.grace);
            log::debug!("[{}] child {} ended: {how}", shared.name, process.pid());
        }
        drop(self.stderr.take());
    }
}
