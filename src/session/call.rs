//! One request on a session, top to bottom: register it, hand it to the worker, then wait
//! for its outcome on the caller's own thread, reading the server's output itself while it
//! holds the read token, and give up at the deadline or on cancel.
//!
//! The caller keeps its own deadline, so every call ends on time even when the worker or
//! the server is stuck. A waiting caller that is the only one waiting reads the answer
//! itself (no thread hop on the way back); one that waits behind another reader gets its
//! events on its own channel, in order, and may be handed the read token later.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use serde_json::{json, Map, Value};

use crate::deadline::Deadline;
use crate::error::{CloseReason, Error, Phase};
use crate::jsonrpc;
use crate::protocol::kind_of;

use super::inbound::{self, Fill};
use super::options::{CancelGuard, CancelHandle, ProgressFn};
use super::pending::Event;
use super::shared::{Command, Shared};
use super::sys::{self, Watch};

/// An HTTP request ready to be posted: its JSON-RPC line and metadata headers.
pub(crate) type HttpRequest = (Vec<u8>, Vec<(String, String)>);

/// A request handed to the worker (or, on HTTP, ready to be posted), not yet answered.
pub(crate) struct Sent {
    pub(crate) id: u64,
    pub(crate) events: Receiver<Event>,
    pub(crate) sender: Sender<Event>,
    pub(crate) queued: Arc<AtomicUsize>,
    /// HTTP sessions: the request line and its metadata headers, posted by the waiting
    /// caller itself.
    pub(crate) http: Option<HttpRequest>,
    _in_flight: InFlight,
}

/// Counts calls in flight for their duration (one, or a batch's), and when the session
/// was last used.
pub(crate) struct InFlight {
    shared: Arc<Shared>,
    calls: usize,
}

impl InFlight {
    /// Counts `calls` more calls in flight (and as calls of the session when `counted`).
    pub(crate) fn new(shared: &Arc<Shared>, calls: usize, counted: bool) -> InFlight {
        shared
            .counters
            .in_flight
            .fetch_add(calls, Ordering::Relaxed);
        if counted {
            shared
                .counters
                .calls
                .fetch_add(calls as u64, Ordering::Relaxed);
        }
        InFlight {
            shared: shared.clone(),
            calls,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.shared.last_used.lock() = Instant::now();
        self.shared
            .counters
            .in_flight
            .fetch_sub(self.calls, Ordering::SeqCst);
        self.shared.call_ended();
    }
}

/// Registers a request and queues it for the worker. `progress` asks for progress reports
/// (the request id is the progress token); `meta` adds the caller's `_meta` entries;
/// `counted` counts it as a call of the session (the library's own requests are not). The
/// params are serialized where they are, never copied.
pub(crate) fn send(
    shared: &Arc<Shared>,
    method: &str,
    params: Option<&Value>,
    meta: Option<&Map<String, Value>>,
    progress: bool,
    counted: bool,
) -> Result<Sent, Error> {
    may_send(shared)?;
    let params = match params {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(other) => {
            return Err(Error::InvalidArgument(format!(
                "params of `{method}` must be a JSON object, not {}",
                kind_of(other)
            )))
        }
    };
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let fields = meta_of(shared, method, params, meta, progress.then_some(id))?;
    let line = if params.is_none() && fields.is_empty() {
        jsonrpc::request_line(id, method, None)
    } else {
        let with = jsonrpc::WithMeta {
            tool: None,
            params,
            meta: &fields,
        };
        jsonrpc::request_line_with_meta(id, method, &with)
    };
    let (sender, events) = unbounded();
    let ticket = shared.table.lock().register(id, sender.clone())?;
    let in_flight = InFlight::new(shared, 1, counted);
    let http = match shared.http.get() {
        Some(_) => {
            let headers = if shared.generation() == Some(crate::config::Generation::PerRequest) {
                let tools = shared.tools.lock().as_ref().map(|(i, _)| i.clone());
                super::http::request_headers(method, params, tools.as_deref())
            } else {
                Vec::new()
            };
            Some((line, headers))
        }
        None => {
            shared.submit(Command::Write { id, line });
            None
        }
    };
    Ok(Sent {
        id,
        events,
        sender,
        queued: ticket.queued,
        http,
        _in_flight: in_flight,
    })
}

/// Whether a request may be sent now: the session is ready, and this thread is not
/// running one of its handler hooks (which run while its output is read).
pub(crate) fn may_send(shared: &Shared) -> Result<(), Error> {
    if shared.reading_here() {
        return Err(Error::InvalidArgument(format!(
            "a handler hook of session `{}` called the same session: hooks run while the \
             session's output is read; hand the work to another thread",
            shared.name
        )));
    }
    if !shared.lifecycle.is_ready() {
        return Err(shared.closed_error());
    }
    Ok(())
}

/// The `_meta` of a request: the params' own `_meta`, then the caller's entries, the
/// progress token, the session's envelope (later ones win).
pub(crate) fn meta_of(
    shared: &Shared,
    method: &str,
    params: Option<&Map<String, Value>>,
    meta: Option<&Map<String, Value>>,
    progress_token: Option<u64>,
) -> Result<Map<String, Value>, Error> {
    let mut fields = match params.and_then(|p| p.get("_meta")) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(own)) => own.clone(),
        Some(_) => {
            return Err(Error::InvalidArgument(format!(
                "`_meta` in params of `{method}` must be an object"
            )))
        }
    };
    for (k, v) in meta.into_iter().flatten() {
        fields.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if let Some(id) = progress_token {
        fields.insert("progressToken".into(), json!(id));
    }
    for (k, v) in shared.envelope.get().into_iter().flatten() {
        fields.insert(k.clone(), v.clone());
    }
    Ok(fields)
}

/// Why a wait stopped without an outcome.
#[derive(Clone, Copy)]
pub(crate) enum Stop {
    Deadline,
    Cancelled,
}

impl Stop {
    /// What the server is told (`notifications/cancelled`).
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Stop::Deadline => "timed out",
            Stop::Cancelled => "cancelled by the client",
        }
    }

    /// What the caller gets.
    pub(crate) fn error(self, deadline: &Deadline) -> Error {
        match self {
            Stop::Deadline => deadline.expired(Phase::Request),
            Stop::Cancelled => Error::Cancelled,
        }
    }
}

/// Puts [`Event::Cancel`] on `events` and wakes the session's reader when `cancel` fires,
/// until the guard goes.
pub(crate) fn on_cancel(
    cancel: &CancelHandle,
    events: &Sender<Event>,
    shared: &Arc<Shared>,
) -> CancelGuard {
    let (events, shared) = (events.clone(), shared.clone());
    cancel.on_cancel(move || {
        let _ = events.send(Event::Cancel);
        shared.wake.ring();
    })
}

/// What leading ended with.
enum Led {
    Done(Result<Value, Error>),
    /// Progress for this call came in: the token was handed on before the callback runs.
    SteppedOut(crate::protocol::Progress),
    /// The session is ending: the worker took the token.
    Lost,
    Stopped(Stop),
}

/// Waits for a sent request's outcome until `deadline` (which progress reports may push
/// back) or its cancellation. An outcome that is already there wins over a passed deadline.
pub(crate) fn wait(
    shared: &Arc<Shared>,
    mut sent: Sent,
    deadline: &mut Deadline,
    mut progress: Option<&mut ProgressFn<'_>>,
    cancel: Option<&CancelHandle>,
) -> Result<Value, Error> {
    if let (Some(link), Some(request)) = (shared.http.get(), sent.http.take()) {
        match super::http::exchange(
            shared,
            link,
            &sent,
            request,
            deadline,
            &mut progress,
            cancel,
        ) {
            super::http::Exchanged::Done(outcome) => return outcome,
            // HTTP+SSE: the answer comes on the session's event stream.
            super::http::Exchanged::Posted => {}
        }
    }
    let _cancel: Option<CancelGuard> = cancel.map(|c| on_cancel(c, &sent.sender, shared));
    // A progress report runs its callback with the thread not waiting (so the token is
    // never held by a thread that is busy elsewhere), then waits again.
    let mut report = |sent: &Sent, deadline: &mut Deadline, p: &crate::protocol::Progress| {
        sent.queued.fetch_sub(1, Ordering::AcqRel);
        shared.table.lock().pause_wait(sent.id);
        if let Some(f) = progress.as_mut() {
            f(p);
        }
        deadline.progressed();
    };
    loop {
        if shared.table.lock().begin_wait(sent.id) {
            match lead(shared, &sent, deadline) {
                Led::Done(outcome) => return outcome,
                Led::SteppedOut(p) => report(&sent, deadline, &p),
                Led::Lost => {}
                Led::Stopped(why) => return give_up(shared, &sent, why, deadline),
            }
            continue;
        }
        match sent.events.recv_deadline(deadline.at()) {
            Ok(Event::Done(outcome)) => return outcome,
            Ok(Event::Progress(p)) => report(&sent, deadline, &p),
            // Taken up by `begin_wait` at the top of the loop.
            Ok(Event::Lead | Event::Notice(_) | Event::Answer(..)) => {}
            Ok(Event::Cancel) => return give_up(shared, &sent, Stop::Cancelled, deadline),
            Err(RecvTimeoutError::Timeout) => {
                return give_up(shared, &sent, Stop::Deadline, deadline)
            }
            // The sender lives in `sent`: cannot happen.
            Err(RecvTimeoutError::Disconnected) => return Err(shared.closed_error()),
        }
    }
}

/// Reads the server's output until this call's outcome comes, handling every line on the
/// way (other callers' answers go to their channels).
fn lead(shared: &Arc<Shared>, sent: &Sent, deadline: &Deadline) -> Led {
    loop {
        match read_until_event(shared, &sent.events, deadline) {
            Read::Event(Event::Done(outcome)) => {
                shared.table.lock().hand_off(sent.id);
                return Led::Done(outcome);
            }
            Read::Event(Event::Progress(p)) => return Led::SteppedOut(p),
            Read::Event(Event::Cancel) => return Led::Stopped(Stop::Cancelled),
            Read::Event(Event::Lead | Event::Notice(_) | Event::Answer(..)) => {}
            Read::Lost => return Led::Lost,
            Read::Deadline => return Led::Stopped(Stop::Deadline),
        }
    }
}

/// What reading the server's output as the token holder ended with.
pub(crate) enum Read {
    /// An event came on the reader's own channel.
    Event(Event),
    /// The session is ending: the worker took the token.
    Lost,
    Deadline,
}

/// Reads the server's output, handling every line (answers go to their callers' channels),
/// until an event is on `events` (the token holder's own), the deadline, or the session's
/// end.
pub(crate) fn read_until_event(
    shared: &Arc<Shared>,
    events: &Receiver<Event>,
    deadline: &Deadline,
) -> Read {
    let mut lines = shared.lock_lines();
    // Output came in the last round: with output that keeps coming (a flood of
    // notifications, other callers' answers) `poll` never times out, so the deadline is
    // checked here too. Not before the first round, so what already waits is read once.
    let mut read_some = false;
    loop {
        if let Ok(event) = events.try_recv() {
            return Read::Event(event);
        }
        if read_some && deadline.passed() {
            return Read::Deadline;
        }
        if shared.lifecycle.is_ending() {
            return Read::Lost;
        }
        // Both are closed only by the worker, and only while it holds `lines`.
        let (Some(fd), Some(wake)) = (lines.fd(), shared.wake.fd()) else {
            return Read::Lost;
        };
        let mut watches = [Watch::new(fd, sys::IN), Watch::new(wake, sys::IN)];
        match sys::poll(&mut watches, Some(deadline.at())) {
            Ok(true) => {}
            Ok(false) => return Read::Deadline,
            Err(e) => {
                shared.end(CloseReason::Broken(format!("poll: {e}")));
                return Read::Lost;
            }
        }
        if watches[1].readable() {
            shared.wake.drain();
        }
        if !watches[0].readable() {
            continue;
        }
        match lines.fill() {
            Fill::Data => {
                read_some = true;
                while let Some(frame) = lines.next() {
                    inbound::route(shared, frame, &mut |line| {
                        shared.submit(Command::Answer(line))
                    });
                }
            }
            Fill::Empty => {}
            Fill::Eof => shared.end(CloseReason::Eof),
            Fill::Failed(e) => {
                shared.end(CloseReason::Broken(format!("reading server output: {e}")))
            }
        }
    }
}

/// Stops waiting: the entry goes (the token with it, to another waiting caller), unless
/// the outcome is already there; then the worker tells the server.
pub(crate) fn give_up(
    shared: &Arc<Shared>,
    sent: &Sent,
    why: Stop,
    deadline: &Deadline,
) -> Result<Value, Error> {
    let abandoned = shared.table.lock().abandon(sent.id);
    for event in sent.events.try_iter() {
        if let Event::Done(outcome) = event {
            return outcome;
        }
    }
    if abandoned.is_some() {
        shared.submit(Command::Abandon {
            ids: vec![sent.id],
            reason: why.reason(),
        });
    }
    Err(why.error(deadline))
}
