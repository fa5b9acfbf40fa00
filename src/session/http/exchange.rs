//! One request over HTTP, on the thread that waits for it: POST it, then read its reply
//! (a JSON body or an event stream) on the same thread, handling every message on the way
//! as the stdio reader does (progress for this call, server requests answered through the
//! worker, notifications), until this call's outcome comes, its deadline passes or it is
//! cancelled. A stream cut before the answer is resumed with `Last-Event-ID` when the
//! server numbered its events (handshake generation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use serde_json::Value;

use crate::config::Generation;
use crate::deadline::Deadline;
use crate::error::{CloseReason, Error};

use super::super::call::{self, Sent, Stop};
use super::super::inbound::{self, Frame};
use super::super::options::{CancelHandle, ProgressFn};
use super::super::pending::Event;
use super::super::shared::{Command, Shared};
use super::super::sys::Bell;
use super::link::{Failed, Link, Reply};
use super::net::Scope;
use super::sse;

/// Bytes read from a reply stream at a time.
const CHUNK: usize = 16 << 10;
/// Resumptions of one reply stream in a row that brought nothing new.
const MAX_RESUMES: u32 = 5;
/// How long the end of an answered event stream is waited for (see `drain`).
const DRAIN_WAIT: Duration = Duration::from_millis(20);
/// The wait before resuming when the stream gave no `retry`.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);

/// How an exchange ended on the caller's side.
pub(crate) enum Exchanged {
    /// With the call's outcome.
    Done(Result<Value, Error>),
    /// The request was accepted; its answer comes on the session's event stream (HTTP+SSE).
    Posted,
}

/// A reply being read: one JSON body, or an event stream.
pub(crate) enum ReplyReader {
    Json(Option<ureq::Body>),
    Stream {
        reader: Box<ureq::BodyReader<'static>>,
        parser: sse::Parser,
    },
}

/// What one read of a reply gave.
pub(crate) enum Read {
    Frames(Vec<Frame>),
    /// The reply ended.
    End,
    Failed(Failed),
}

impl ReplyReader {
    pub(crate) fn new(reply: Reply, max: usize) -> ReplyReader {
        if reply.is_sse() {
            ReplyReader::Stream {
                reader: Box::new(reply.body.into_reader()),
                parser: sse::Parser::new(max),
            }
        } else {
            ReplyReader::Json(Some(reply.body))
        }
    }

    /// Continues a stream on a new connection (a resumption), keeping the parser's last
    /// event id and retry.
    fn resume(&mut self, reply: Reply) {
        if let ReplyReader::Stream { reader, .. } = self {
            **reader = reply.body.into_reader();
        }
    }

    /// After the answer: reads what is left of an event stream for a moment, so a server
    /// that ends the stream right after its answer (as it should) leaves the connection
    /// reusable. A stream still open after that is closed.
    pub(crate) fn drain(&mut self, shared: &Arc<Shared>, link: &Link, scope: &Scope) {
        if let ReplyReader::Stream { .. } = self {
            scope.set_deadline(Some(Instant::now() + DRAIN_WAIT));
            while let Read::Frames(frames) = self.next(link, scope, link.max_message) {
                for frame in frames {
                    inbound::route(shared, frame, &mut |line| {
                        shared.submit(Command::Answer(line))
                    });
                }
            }
        }
    }

    /// The last event id and retry of a stream.
    pub(crate) fn cursor(&self) -> Option<(Option<String>, Option<u64>)> {
        match self {
            ReplyReader::Stream { parser, .. } => Some((parser.last_id.clone(), parser.retry_ms)),
            ReplyReader::Json(_) => None,
        }
    }

    /// The next events of a stream, whatever their type (the HTTP+SSE start reads its
    /// `endpoint` event). `Err` with what ended it.
    pub(crate) fn next_events(
        &mut self,
        link: &Link,
        scope: &Scope,
    ) -> Result<Vec<sse::Event>, Read> {
        let ReplyReader::Stream { reader, parser } = self else {
            return Err(Read::End);
        };
        let mut buf = [0u8; CHUNK];
        loop {
            let n = match std::io::Read::read(reader, &mut buf) {
                Ok(0) => return Err(Read::End),
                Ok(n) => n,
                Err(e) => return Err(Read::Failed(link.failed(scope, ureq::Error::from(e)))),
            };
            let parsed = parser.feed(&buf[..n]);
            if let Some(&size) = parsed.oversize.first() {
                return Err(Read::Frames(vec![Frame::TooLarge { size, id: None }]));
            }
            if !parsed.events.is_empty() {
                return Ok(parsed.events);
            }
        }
    }

    /// Reads what comes next. A message over `max` bytes is a `TooLarge` frame (and ends a
    /// stream, whose framing cannot be trusted past it).
    pub(crate) fn next(&mut self, link: &Link, scope: &Scope, max: usize) -> Read {
        match self {
            ReplyReader::Json(body) => {
                let Some(mut body) = body.take() else {
                    return Read::End;
                };
                let declared = body.content_length();
                match body.with_config().limit(max as u64).read_to_vec() {
                    Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Read::End,
                    Ok(bytes) => Read::Frames(vec![inbound::frame_of(&bytes)]),
                    Err(ureq::Error::BodyExceedsLimit(_)) => Read::Frames(vec![Frame::TooLarge {
                        size: declared.map_or(max + 1, |n| n as usize),
                        id: None,
                    }]),
                    Err(e) => Read::Failed(link.failed(scope, e)),
                }
            }
            ReplyReader::Stream { reader, parser } => {
                let mut buf = [0u8; CHUNK];
                loop {
                    let n = match std::io::Read::read(reader, &mut buf) {
                        Ok(0) => return Read::End,
                        Ok(n) => n,
                        Err(e) => return Read::Failed(link.failed(scope, ureq::Error::from(e))),
                    };
                    let parsed = parser.feed(&buf[..n]);
                    let mut frames: Vec<Frame> = parsed
                        .events
                        .into_iter()
                        .filter(|e| e.kind == "message" && !e.data.trim().is_empty())
                        .map(|e| inbound::frame_of(e.data.as_bytes()))
                        .collect();
                    frames.extend(
                        parsed
                            .oversize
                            .into_iter()
                            .map(|size| Frame::TooLarge { size, id: None }),
                    );
                    if !frames.is_empty() {
                        return Read::Frames(frames);
                    }
                }
            }
        }
    }
}

/// Posts a sent request and waits for its outcome (see the module docs).
pub(crate) fn exchange(
    shared: &Arc<Shared>,
    link: &Arc<Link>,
    sent: &Sent,
    request: (Vec<u8>, Vec<(String, String)>),
    deadline: &mut Deadline,
    progress: &mut Option<&mut ProgressFn<'_>>,
    cancel: Option<&CancelHandle>,
) -> Exchanged {
    // A bell of its own (not one kept per thread: no descriptor outlives the call).
    let bell = match Bell::new() {
        Ok(b) => Arc::new(b),
        Err(e) => {
            shared.table.lock().abandon(sent.id);
            return Exchanged::Done(Err(Error::spawn("an HTTP call's stop bell (eventfd)", e)));
        }
    };
    let _open = link.open_reply(sent.id, bell.clone());
    let _cancel = cancel.map(|c| {
        let (events, bell) = (sent.sender.clone(), bell.clone());
        c.on_cancel(move || {
            let _ = events.send(Event::Cancel);
            bell.ring();
        })
    });
    let scope = Scope::enter(Some(deadline.at()), Some(bell));
    // Marked sent from its first byte on the wire, not once the reply's head came: a
    // session ending in between must not fail a request the server has as unsent.
    let (table_of, id) = (shared.clone(), sent.id);
    scope.on_write(move || table_of.table.lock().mark_sent(&[id]));
    let (line, headers) = request;
    let posted = link.post(&scope, &line, &headers);
    let wrote = scope.wrote();
    let reply = match posted {
        Ok(reply) => reply,
        Err(failed) => {
            let outcome = stopped(shared, link, sent, deadline, failed, wrote);
            return Exchanged::Done(written(outcome, wrote));
        }
    };
    if link.is_legacy() {
        if (200..300).contains(&reply.status) {
            return Exchanged::Posted;
        }
        shared.table.lock().abandon(sent.id);
        return Exchanged::Done(Err(link.http_error_with_body(reply)));
    }
    let mut reader = match open(shared, link, sent, reply) {
        Ok(reader) => reader,
        Err(outcome) => return Exchanged::Done(outcome),
    };
    let handshake = shared.generation() == Some(Generation::Handshake);
    let outcome = match read_reply(
        shared,
        link,
        sent,
        &mut reader,
        &scope,
        deadline,
        progress,
        handshake,
    ) {
        Exchanged::Done(outcome) => Exchanged::Done(written(outcome, true)),
        posted => posted,
    };
    if let Exchanged::Done(Ok(_)) = outcome {
        reader.drain(shared, link, &scope);
    }
    outcome
}

/// A request some byte of which went out is never reported as unsent, whatever the
/// pending table said when the session ended (it may have failed the request in the
/// moment before the transport marked it sent).
fn written(outcome: Result<Value, Error>, wrote: bool) -> Result<Value, Error> {
    match outcome {
        Err(Error::SessionClosed {
            reason,
            stderr_tail,
        }) if wrote => Err(Error::OutcomeUnknown {
            reason,
            stderr_tail,
        }),
        other => other,
    }
}

/// Reads a request's reply until its outcome (see [`exchange`]).
#[allow(clippy::too_many_arguments)]
fn read_reply(
    shared: &Arc<Shared>,
    link: &Arc<Link>,
    sent: &Sent,
    reader: &mut ReplyReader,
    scope: &Scope,
    deadline: &mut Deadline,
    progress: &mut Option<&mut ProgressFn<'_>>,
    handshake: bool,
) -> Exchanged {
    let mut resumes = 0;
    loop {
        for event in sent.events.try_iter() {
            match event {
                Event::Done(outcome) => return Exchanged::Done(outcome),
                Event::Progress(p) => {
                    sent.queued
                        .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                    if let Some(f) = progress.as_mut() {
                        f(&p);
                    }
                    deadline.progressed();
                    scope.set_deadline(Some(deadline.at()));
                    resumes = 0;
                }
                Event::Cancel => {
                    return Exchanged::Done(call::give_up(shared, sent, Stop::Cancelled, deadline))
                }
                Event::Lead | Event::Notice(_) | Event::Answer(..) => {}
            }
        }
        let cut = match reader.next(link, scope, link.max_message) {
            Read::Frames(frames) => {
                for frame in frames {
                    if let Frame::TooLarge { size, .. } = frame {
                        // On this request's own reply: its answer.
                        let limit = link.max_message;
                        shared
                            .table
                            .lock()
                            .complete(sent.id, Err(Error::TooLarge { limit, size }));
                        continue;
                    }
                    resumes = 0;
                    inbound::route(shared, frame, &mut |line| {
                        shared.submit(Command::Answer(line))
                    });
                }
                continue;
            }
            Read::End => "the server closed the reply stream before answering".to_owned(),
            Read::Failed(Failed::Stopped) => {
                scope.clear_stopped();
                if let Some(outcome) = after_stop(shared, link, sent, deadline) {
                    return Exchanged::Done(outcome);
                }
                continue;
            }
            Read::Failed(Failed::Expired) => {
                return Exchanged::Done(call::give_up(shared, sent, Stop::Deadline, deadline))
            }
            Read::Failed(Failed::Error(e)) => format!("the reply stream broke: {e}"),
        };
        // Anything routed last may have been the answer.
        if let Some(Event::Done(outcome)) =
            sent.events.try_iter().find(|e| matches!(e, Event::Done(_)))
        {
            return Exchanged::Done(outcome);
        }
        // Resumable: the handshake generation, with an event id to resume from.
        let cursor = reader.cursor();
        let resumable = handshake && resumes < MAX_RESUMES;
        let Some((Some(last_id), retry)) = cursor.filter(|_| resumable) else {
            shared.table.lock().abandon(sent.id);
            return Exchanged::Done(Err(Error::OutcomeUnknown {
                reason: CloseReason::Broken(cut),
                stderr_tail: String::new(),
            }));
        };
        resumes += 1;
        let wait = retry.map_or(DEFAULT_RETRY, Duration::from_millis);
        if Instant::now() + wait >= deadline.at() {
            return Exchanged::Done(call::give_up(shared, sent, Stop::Deadline, deadline));
        }
        log::debug!(
            "[{}] {cut}; resuming after event `{last_id}` in {wait:?}",
            shared.name
        );
        if !super::net::pause(wait) {
            scope.clear_stopped();
            if let Some(outcome) = after_stop(shared, link, sent, deadline) {
                return Exchanged::Done(outcome);
            }
        }
        match link.get_stream(scope, Some(&last_id)) {
            Ok(reply) if reply.status == 200 && reply.is_sse() => reader.resume(reply),
            Ok(reply) => {
                shared.table.lock().abandon(sent.id);
                let status = reply.status;
                if status == 404 && link.session_id().is_some() {
                    shared.end(CloseReason::Gone);
                }
                return Exchanged::Done(Err(Error::OutcomeUnknown {
                    reason: CloseReason::Broken(format!(
                        "{cut}, and resuming it was refused (HTTP {status})"
                    )),
                    stderr_tail: String::new(),
                }));
            }
            Err(failed) => {
                return Exchanged::Done(stopped(shared, link, sent, deadline, failed, true))
            }
        }
    }
}

/// The outcome of a call whose POST (or resumption) failed.
fn stopped(
    shared: &Arc<Shared>,
    link: &Arc<Link>,
    sent: &Sent,
    deadline: &Deadline,
    failed: Failed,
    wrote: bool,
) -> Result<Value, Error> {
    match failed {
        Failed::Stopped => after_stop(shared, link, sent, deadline).unwrap_or_else(|| {
            shared.table.lock().abandon(sent.id);
            Err(shared.closed_error())
        }),
        Failed::Expired => call::give_up(shared, sent, Stop::Deadline, deadline),
        Failed::Error(e @ Error::Connect { .. }) => {
            shared.table.lock().abandon(sent.id);
            let reason = CloseReason::Broken(e.to_string());
            if wrote {
                // The request went out and its connection broke: its outcome is unknown.
                // The server may well be there (a kept-alive connection it closed as the
                // request went out): the session goes on, and the next request finds out.
                return Err(Error::OutcomeUnknown {
                    reason,
                    stderr_tail: String::new(),
                });
            }
            // The server cannot be reached: the session is over. A request none of which
            // went out cannot have run.
            shared.end(reason);
            Err(e)
        }
        Failed::Error(e) => {
            shared.table.lock().abandon(sent.id);
            Err(e)
        }
    }
}

/// After the stop bell rang: the outcome if the call is over (answered, cancelled, its
/// session ending), `None` when it was only a poke and reading goes on.
fn after_stop(
    shared: &Arc<Shared>,
    link: &Link,
    sent: &Sent,
    deadline: &Deadline,
) -> Option<Result<Value, Error>> {
    for event in sent.events.try_iter() {
        match event {
            Event::Done(outcome) => return Some(outcome),
            Event::Cancel => return Some(call::give_up(shared, sent, Stop::Cancelled, deadline)),
            _ => {}
        }
    }
    if !(link.is_shut() || shared.lifecycle.is_ending()) {
        return None;
    }
    // The session is ending: its worker fails every call in a moment.
    loop {
        match sent.events.recv_deadline(deadline.at()) {
            Ok(Event::Done(outcome)) => return Some(outcome),
            Ok(Event::Cancel) => {
                return Some(call::give_up(shared, sent, Stop::Cancelled, deadline))
            }
            Ok(_) => continue,
            Err(RecvTimeoutError::Timeout) => {
                return Some(call::give_up(shared, sent, Stop::Deadline, deadline))
            }
            Err(RecvTimeoutError::Disconnected) => return Some(Err(shared.closed_error())),
        }
    }
}

/// Opens a reply for reading, or ends the call at once: an MCP error carried by an HTTP
/// error status (an unsupported version, a header mismatch, an unknown method), a session
/// the server forgot, a plain HTTP error, a request answered as if it were a notification.
pub(crate) fn open(
    shared: &Arc<Shared>,
    link: &Link,
    sent: &Sent,
    reply: Reply,
) -> Result<ReplyReader, Result<Value, Error>> {
    let status = reply.status;
    let fail = |e: Error| {
        shared.table.lock().abandon(sent.id);
        Err(Err(e))
    };
    if (200..300).contains(&status) {
        if status == 202 || !(reply.is_sse() || reply.is_json()) {
            let what = if reply.content_type.is_empty() {
                "no body type".to_owned()
            } else {
                format!("`{}`", reply.content_type)
            };
            return fail(Error::Protocol(format!(
                "the server answered a request with HTTP {status} and {what}"
            )));
        }
        return Ok(ReplyReader::new(reply, link.max_message));
    }
    if !(reply.is_json() || status == 404 && link.session_id().is_some()) {
        let e = link.http_error_with_body(reply);
        return fail(e);
    }
    let is_json = reply.is_json();
    let mut body = reply.body;
    let bytes = if is_json {
        body.with_config()
            .limit(link.max_message as u64)
            .read_to_vec()
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    if status == 404 && link.session_id().is_some() && !answers(&bytes, sent.id) {
        // The server forgot the session: this request did not run. (Servers commonly
        // say so with a JSON-RPC error whose id is null or their own, never this
        // request's: one that names this request is its answer, and is kept as such.)
        shared.end(CloseReason::Gone);
        return fail(Error::SessionClosed {
            reason: CloseReason::Gone,
            stderr_tail: String::new(),
        });
    }
    if let Some(e) = rpc_error(&bytes) {
        return fail(inbound::server_error(e));
    }
    fail(link.http_error(status, &super::link::quote(&bytes)))
}

/// Whether a body is a JSON-RPC response to request `id`.
fn answers(bytes: &[u8], id: u64) -> bool {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| v.get("id").and_then(crate::jsonrpc::our_id))
        == Some(id)
}

/// The error of a JSON-RPC error response, whatever its id (an HTTP error status may come
/// with one whose id is null).
pub(crate) fn rpc_error(bytes: &[u8]) -> Option<crate::jsonrpc::RpcError> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    value
        .get("error")
        .filter(|e| e.is_object())
        .map(crate::jsonrpc::RpcError::from_value)
}
