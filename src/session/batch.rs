//! Batches: many tool calls on one session without waiting between them, each answer
//! under the same result rules as a single call's.
//!
//! Over stdio the whole batch is one hand-over to the worker (its request lines in one
//! buffer, registered under one lock, one doorbell), and its answers come on one channel
//! shared by its requests, tagged with their ids. The batch's thread reads them itself
//! while it holds the read token, as a single call's does; an answer that needs more
//! exchanges (input rounds, a task) is followed with the token handed back, so those
//! exchanges can read their own answers. Over HTTP each request is its own POST.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{unbounded, RecvTimeoutError, Sender};
use serde_json::Value;

use crate::deadline::Deadline;
use crate::error::{Error, Phase};
use crate::jsonrpc;
use crate::protocol::{
    check_name_and_arguments, tool_result, Call, CallToolResult, ResultType, ToolCall,
};

use super::call::{self, InFlight, Read, Stop};
use super::handle::Session;
use super::options::CancelHandle;
use super::pending::Event;
use super::shared::{Command, Shared};

/// The most calls of one batch in flight at once over HTTP (each is a POST read by its own
/// thread).
const HTTP_BATCH_THREADS: usize = 8;

type Outcome = Result<CallToolResult, Error>;

impl Session {
    /// The batch on a deadline made by the caller (the pool's). `on_result` gets each
    /// call's index, result, and when it was sent, in order: over stdio as soon as the
    /// results before it are known too, over HTTP as each comes.
    pub(crate) fn batch_within(
        &self,
        calls: &[ToolCall],
        deadline: &mut Deadline,
        cancel: Option<&CancelHandle>,
        on_result: impl FnMut(usize, &Outcome, Instant),
    ) -> Vec<Outcome> {
        // What single calls learn first (output schemas, annotations), once per tool.
        let mut learned = std::collections::HashSet::new();
        for c in calls {
            if learned.insert(c.tool.as_str()) {
                self.learn_tool_for(&c.tool, deadline);
            }
        }
        if self.shared().http.get().is_some() {
            self.batch_over_http(calls, deadline, cancel, on_result)
        } else {
            self.batch_over_stdio(calls, deadline, cancel, on_result)
        }
    }

    fn batch_over_stdio(
        &self,
        calls: &[ToolCall],
        deadline: &mut Deadline,
        cancel: Option<&CancelHandle>,
        mut on_result: impl FnMut(usize, &Outcome, Instant),
    ) -> Vec<Outcome> {
        let shared = self.shared();
        let mut results: Vec<Option<Outcome>> = (0..calls.len()).map(|_| None).collect();
        let at = Instant::now();
        // `on_result` is told in order: each result once those before it are known.
        let mut told = 0;
        let mut finish = |k: usize, r: Outcome, results: &mut Vec<Option<Outcome>>| {
            results[k] = Some(r);
            while let Some(Some(r)) = results.get(told) {
                on_result(told, r, at);
                told += 1;
            }
        };
        let refused = if cancel.is_some_and(CancelHandle::is_cancelled) {
            Err(Error::Cancelled)
        } else {
            call::may_send(shared)
                .and_then(|()| call::meta_of(shared, "tools/call", None, None, None))
        };
        let meta = match refused {
            Ok(meta) => meta,
            Err(e) => {
                for k in 0..calls.len() {
                    finish(k, Err(e.clone()), &mut results);
                }
                return collect(results);
            }
        };
        // Ids in one block: a call's index is its id's offset in it.
        let first = shared
            .next_id
            .fetch_add(calls.len() as u64, Ordering::Relaxed);
        let index_of = |id: u64| id.checked_sub(first).map(|k| k as usize);
        let (tx, rx) = unbounded();
        // All the requests in one hand-over (handing them over in growing chunks, so the
        // server could start sooner, measured slower: more wake-ups on 2 cores).
        let mut requests = Requests::default();
        for (k, c) in calls.iter().enumerate() {
            match check_name_and_arguments(&c.tool, &c.arguments, "tool") {
                Ok(()) => requests.add(first + k as u64, c, &meta),
                Err(e) => finish(k, Err(e), &mut results),
            }
        }
        // In flight before it is handed over, so the session never looks idle meanwhile.
        let _in_flight = InFlight::new(shared, requests.ends.len(), false);
        let ids = match requests.hand_over(shared, &tx) {
            Ok(ids) => {
                shared
                    .counters
                    .calls
                    .fetch_add(ids.len() as u64, Ordering::Relaxed);
                ids
            }
            Err((e, refused)) => {
                for id in refused {
                    finish(index_of(id).unwrap_or(0), Err(e.clone()), &mut results);
                }
                return collect(results);
            }
        };
        if ids.is_empty() {
            return collect(results);
        }
        let _cancel = cancel.map(|c| {
            let (events, shared) = (tx.clone(), shared.clone());
            c.on_cancel(move || {
                let _ = events.send(Event::Cancel);
                shared.wake.ring();
            })
        });

        // Answers come in any order; the batch waits (and leads) under the first id still
        // unanswered.
        let mut answered = vec![false; calls.len()];
        let mut left = ids.len();
        let mut cursor = 0;
        // Answers that need more exchanges (input rounds, a task), followed once the read
        // token is handed back.
        let mut deferred: Vec<(usize, Value)> = Vec::new();
        let mut stopped = None;
        while left > 0 {
            while index_of(ids[cursor]).is_some_and(|k| answered[k]) {
                cursor += 1;
            }
            let id = ids[cursor];
            if !deferred.is_empty() {
                shared.table.lock().pause_wait(id);
                for (k, value) in deferred.drain(..) {
                    let r = self.settle_batched(&calls[k], value, deadline, cancel);
                    finish(k, r, &mut results);
                }
            }
            let first_event = if shared.table.lock().begin_wait(id) {
                match call::read_until_event(shared, &rx, deadline) {
                    Read::Event(e) => Some(e),
                    // The session is ending: the failures come on the channel.
                    Read::Lost => None,
                    Read::Deadline => {
                        stopped = Some(Stop::Deadline);
                        break;
                    }
                }
            } else {
                match rx.recv_deadline(deadline.at()) {
                    Ok(e) => Some(e),
                    Err(RecvTimeoutError::Timeout) => {
                        stopped = Some(Stop::Deadline);
                        break;
                    }
                    // The batch holds a sender: cannot happen.
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            for event in first_event
                .into_iter()
                .chain(std::iter::from_fn(|| rx.try_recv().ok()))
            {
                match event {
                    Event::Answer(aid, outcome) => {
                        let Some(k) = index_of(aid).filter(|&k| k < calls.len() && !answered[k])
                        else {
                            continue;
                        };
                        answered[k] = true;
                        left -= 1;
                        if aid == id {
                            // The token, if this thread led under the answered id, goes on.
                            shared.table.lock().hand_off(id);
                        }
                        match self.first_answer(&calls[k], outcome) {
                            Ok(r) => finish(k, r, &mut results),
                            Err(value) => deferred.push((k, value)),
                        }
                    }
                    Event::Cancel => stopped = Some(Stop::Cancelled),
                    Event::Lead | Event::Notice(_) | Event::Progress(_) | Event::Done(_) => {}
                }
            }
            if stopped.is_some() {
                break;
            }
        }
        if let Some(why) = stopped {
            // Every call still waiting gives up at once; an answer already here wins.
            let reason = match why {
                Stop::Deadline => "timed out",
                Stop::Cancelled => "cancelled by the client",
            };
            let mut abandoned = Vec::new();
            {
                let mut table = shared.table.lock();
                for &id in &ids {
                    if index_of(id).is_some_and(|k| !answered[k]) && table.abandon(id).is_some() {
                        abandoned.push(id);
                    }
                }
            }
            for event in rx.try_iter() {
                if let Event::Answer(aid, outcome) = event {
                    if let Some(k) = index_of(aid).filter(|&k| k < calls.len() && !answered[k]) {
                        answered[k] = true;
                        abandoned.retain(|&id| id != aid);
                        match self.first_answer(&calls[k], outcome) {
                            Ok(r) => finish(k, r, &mut results),
                            Err(value) => deferred.push((k, value)),
                        }
                    }
                }
            }
            for id in abandoned {
                shared.submit(Command::Abandon { id, reason });
            }
            for &id in &ids {
                if let Some(k) = index_of(id).filter(|&k| !answered[k]) {
                    let e = match why {
                        Stop::Deadline => deadline.expired(Phase::Request),
                        Stop::Cancelled => Error::Cancelled,
                    };
                    finish(k, Err(e), &mut results);
                }
            }
        }
        for (k, value) in deferred {
            let r = self.settle_batched(&calls[k], value, deadline, cancel);
            finish(k, r, &mut results);
        }
        collect(results)
    }

    /// A batched call's first answer. A complete one is final here (the tool's output
    /// check, then the result, as [`settle_within`](Self::settle_within) does for it); one
    /// that is not comes back, to be followed.
    fn first_answer(
        &self,
        call: &ToolCall,
        outcome: Result<Value, Error>,
    ) -> Result<Outcome, Value> {
        match outcome {
            Ok(value) if ResultType::of(&value) == ResultType::Complete => Ok(self
                .check_output(&call.tool, &value)
                .and_then(|()| tool_result(value, "tools/call"))),
            Ok(value) => Err(value),
            Err(e) => Ok(Err(e)),
        }
    }

    /// A batched call's answer that is not complete, followed to its final result as a
    /// single call's would be (input rounds, a task), under the batch's deadline.
    fn settle_batched(
        &self,
        c: &ToolCall,
        value: Value,
        deadline: &mut Deadline,
        cancel: Option<&CancelHandle>,
    ) -> Outcome {
        let call = Call::call_tool(&c.tool, c.arguments.clone())?;
        let value = self.settle_within(&call, value, deadline, cancel)?;
        (call.parse)(value, &call.method)
    }

    /// A batch over HTTP: each request is its own POST whose reply the posting thread
    /// reads, so up to [`HTTP_BATCH_THREADS`] calls go at once, from scoped threads, each
    /// on its own kept-alive connection; results are collected here, on the caller's
    /// thread, as they come.
    fn batch_over_http(
        &self,
        calls: &[ToolCall],
        deadline: &mut Deadline,
        cancel: Option<&CancelHandle>,
        mut on_result: impl FnMut(usize, &Outcome, Instant),
    ) -> Vec<Outcome> {
        if let [c] = calls {
            let at = Instant::now();
            let result = self.one_over_http(c, deadline, cancel);
            on_result(0, &result, at);
            return vec![result];
        }
        let shared = self.shared();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (tx, rx) = unbounded();
        let within = *deadline;
        let mut results: Vec<Option<Outcome>> = (0..calls.len()).map(|_| None).collect();
        std::thread::scope(|scope| {
            for _ in 0..calls.len().min(HTTP_BATCH_THREADS) {
                let (tx, next) = (tx.clone(), &next);
                let spawned = std::thread::Builder::new()
                    .name(format!("mcp-batch-{}", shared.name))
                    .spawn_scoped(scope, move || loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(c) = calls.get(i) else {
                            break;
                        };
                        let at = Instant::now();
                        let mut deadline = within;
                        let result = self.one_over_http(c, &mut deadline, cancel);
                        if tx.send((i, result, at)).is_err() {
                            break;
                        }
                    });
                if let Err(e) = spawned {
                    log::warn!("[{}] a batch thread could not start: {e}", shared.name);
                }
            }
            drop(tx);
            for (i, result, at) in rx.iter() {
                on_result(i, &result, at);
                results[i] = Some(result);
            }
        });
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(Error::spawn(
                        "a batch thread",
                        std::io::Error::other("no thread could run the call"),
                    ))
                })
            })
            .collect()
    }

    /// One call of a batch over HTTP, posted and read on this thread.
    fn one_over_http(
        &self,
        c: &ToolCall,
        deadline: &mut Deadline,
        cancel: Option<&CancelHandle>,
    ) -> Outcome {
        if cancel.is_some_and(CancelHandle::is_cancelled) {
            return Err(Error::Cancelled);
        }
        let shared = self.shared();
        let call = Call::call_tool(&c.tool, c.arguments.clone())?;
        let sent = call::send(
            shared,
            &call.method,
            call.params.as_ref(),
            None,
            false,
            true,
        )?;
        let value = call::wait(shared, sent, deadline, None, cancel)?;
        let value = self.settle_within(&call, value, deadline, cancel)?;
        (call.parse)(value, &call.method)
    }
}

/// A batch's request lines, before they are handed to the worker.
#[derive(Default)]
struct Requests {
    lines: Vec<u8>,
    /// Each request's id and where its line ends in `lines`.
    ends: Vec<(u64, usize)>,
}

impl Requests {
    fn add(&mut self, id: u64, c: &ToolCall, meta: &serde_json::Map<String, Value>) {
        let with = jsonrpc::WithMeta {
            tool: Some((&c.tool, &c.arguments)),
            params: None,
            meta,
        };
        jsonrpc::write_request_with_meta(&mut self.lines, id, "tools/call", &with);
        self.ends.push((id, self.lines.len()));
    }

    /// Registers the requests on the batch's channel and hands them to the worker in one
    /// command. Returns their ids, or why the session takes none (with their ids).
    fn hand_over(
        self,
        shared: &Shared,
        events: &Sender<Event>,
    ) -> Result<Vec<u64>, (Error, Vec<u64>)> {
        let Requests { lines, ends } = self;
        let ids: Vec<u64> = ends.iter().map(|&(id, _)| id).collect();
        if ids.is_empty() {
            return Ok(ids);
        }
        if let Err(e) = shared
            .table
            .lock()
            .register_shared(ids.iter().copied(), events)
        {
            return Err((e, ids));
        }
        shared.submit(Command::WriteMany { lines, ends });
        Ok(ids)
    }
}

/// Every call has its result by now; one that somehow has none reads as never sent.
fn collect(results: Vec<Option<Outcome>>) -> Vec<Outcome> {
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(Error::Protocol(
                    "a batched call ended without an outcome".into(),
                ))
            })
        })
        .collect()
}
