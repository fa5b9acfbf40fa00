//! Batches: many tool calls on one session without waiting between them, each answer
//! under the same result rules as a single call's.
//!
//! Over stdio the whole batch is one hand-over to the worker (its request lines in one
//! buffer, registered under one lock, one doorbell), and its answers come on one channel
//! shared by its requests, tagged with their ids. The batch's thread reads them itself
//! while it holds the read token, as a single call's does; an answer that needs more
//! exchanges (input rounds, a task) is followed with the token handed back, so those
//! exchanges can read their own answers. Over HTTP each request is its own POST.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{unbounded, RecvTimeoutError, Sender};
use serde_json::{Map, Value};

use crate::deadline::Deadline;
use crate::error::Error;
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
/// How many of a batch's calls are serialized between two looks at its deadline and
/// cancel handle.
const STOP_CHECK_EVERY: usize = 1024;

type Outcome = Result<CallToolResult, Error>;

/// A batch's results, in the calls' order, and whether any of its requests was handed to
/// the server (a batch that stopped before sending any says nothing of the server's health).
pub(crate) struct Batched {
    pub(crate) results: Vec<Outcome>,
    pub(crate) sent: bool,
}

impl Session {
    /// The batch on a deadline made by the caller (the pool's). `on_result` gets each
    /// call's index, result, and when it was sent (handed to the worker): over stdio in
    /// the calls' order, each as soon as the results before it are known too; over HTTP
    /// in the order they finish.
    pub(crate) fn batch_within(
        &self,
        calls: &[ToolCall],
        deadline: &mut Deadline,
        cancel: Option<&CancelHandle>,
        on_result: impl FnMut(usize, &Outcome, Instant),
    ) -> Batched {
        // Over stdio, what refuses a whole batch is known before anything is sent, the
        // tool listing included (over HTTP each call is refused as a single one).
        let stdio = self.shared().http.get().is_none();
        let meta = if stdio {
            self.batch_meta(cancel)
        } else {
            Ok(Map::new())
        };
        // What single calls learn first (output schemas, annotations), once per tool.
        let mut learned = HashSet::new();
        for c in calls {
            if learned.insert(c.tool.as_str()) && meta.is_ok() {
                self.learn_tool_for(&c.tool, deadline);
            }
        }
        if !stdio {
            Batched {
                results: self.batch_over_http(calls, deadline, cancel, on_result),
                sent: !calls.is_empty(),
            }
        } else {
            // A tool that must run as a task goes on its own, as a single call (decided
            // once per tool: it takes the tool index's lock).
            let as_tasks: HashSet<&str> = learned
                .into_iter()
                .filter(|t| self.runs_as_task(t))
                .collect();
            self.batch_over_stdio(calls, meta, &as_tasks, deadline, cancel, on_result)
        }
    }

    fn batch_over_stdio(
        &self,
        calls: &[ToolCall],
        meta: Result<Map<String, Value>, Error>,
        as_tasks: &HashSet<&str>,
        deadline: &mut Deadline,
        cancel: Option<&CancelHandle>,
        on_result: impl FnMut(usize, &Outcome, Instant),
    ) -> Batched {
        let shared = self.shared();
        let mut tally = Tally::new(calls.len(), on_result);
        let meta = match meta {
            Ok(meta) => meta,
            Err(e) => {
                tally.fill_rest(&e);
                return tally.finish();
            }
        };
        // Ids in one block: a call's index is its id's offset in it.
        let first = shared
            .next_id
            .fetch_add(calls.len() as u64, Ordering::Relaxed);
        let index_of = |id: u64| {
            id.checked_sub(first)
                .map(|k| k as usize)
                .filter(|&k| k < calls.len())
        };
        // Nothing is sent, no handler asked, once the batch is cancelled or past its deadline.
        let stop = |deadline: &Deadline| {
            if cancel.is_some_and(CancelHandle::is_cancelled) {
                Some(Stop::Cancelled)
            } else {
                deadline.passed().then_some(Stop::Deadline)
            }
        };
        let (tx, rx) = unbounded();
        // All the requests in one hand-over (handing them over in growing chunks, so the
        // server could start sooner, measured slower: more wake-ups on 2 cores).
        let mut requests = Requests::default();
        let mut singles = Vec::new();
        for (k, c) in calls.iter().enumerate() {
            // Writing out a huge batch takes a while: it stops at the deadline or on
            // cancel, and then nothing is sent.
            if k % STOP_CHECK_EVERY == STOP_CHECK_EVERY - 1 {
                if let Some(why) = stop(deadline) {
                    tally.fill_rest(&why.error(deadline));
                    return tally.finish();
                }
            }
            match check_name_and_arguments(&c.tool, &c.arguments, "tool") {
                Ok(()) if as_tasks.contains(c.tool.as_str()) => singles.push(k),
                Ok(()) => requests.add(first + k as u64, c, &meta),
                Err(e) => tally.store(k, Err(e)),
            }
        }
        // In flight before it is handed over, so the session never looks idle meanwhile.
        let _in_flight = InFlight::new(shared, requests.ends.len(), false);
        let ids = match requests.hand_over(shared, &tx) {
            Ok(ids) => {
                tally.sent |= !ids.is_empty();
                shared
                    .counters
                    .calls
                    .fetch_add(ids.len() as u64, Ordering::Relaxed);
                ids
            }
            Err((e, refused)) => {
                for k in refused.into_iter().filter_map(index_of) {
                    tally.store(k, Err(e.clone()));
                }
                Vec::new()
            }
        };
        let _cancel = cancel.map(|c| call::on_cancel(c, &tx, shared));

        // Answers come in any order; the batch waits (and leads) under the first id still
        // unanswered. `on_result` and the follow-ups (the handler answering input
        // requests, a task's polling) run only while this thread does not hold the read
        // token.
        let mut answered = vec![false; calls.len()];
        let mut left = ids.len();
        let mut cursor = 0;
        // Answers that need more exchanges (input rounds, a task), followed once the read
        // token is handed back.
        let mut deferred: Vec<(usize, Value)> = Vec::new();
        // Those the batch stopped before following: a task among them is cancelled.
        let mut unfollowed: Vec<Value> = Vec::new();
        let mut stopped = None;
        let take = |k: usize, outcome, tally: &mut Tally<_>, deferred: &mut Vec<_>| match self
            .first_answer(&calls[k], outcome)
        {
            First::Final(r) => tally.store(k, r),
            First::Follow(value) => deferred.push((k, value)),
        };
        while left > 0 || !singles.is_empty() || !deferred.is_empty() {
            let id = loop {
                match ids.get(cursor) {
                    Some(&id) if index_of(id).is_some_and(|k| answered[k]) => cursor += 1,
                    other => break other.copied(),
                }
            };
            // Anything new to tell means the cursor moved past it: if this thread led, the
            // token went on with the answer the cursor waited for (or below, by
            // `pause_wait`). So `on_result` never runs while this thread holds the token.
            tally.tell();
            if !deferred.is_empty() || !singles.is_empty() {
                if let Some(id) = id {
                    shared.table.lock().pause_wait(id);
                }
                // Each checks the batch's stop first.
                for (k, value) in deferred.drain(..) {
                    let r = match stop(deadline) {
                        Some(why) => {
                            unfollowed.push(value);
                            Err(why.error(deadline))
                        }
                        None => self.settle_batched(&calls[k], value, deadline, cancel),
                    };
                    tally.store(k, r);
                    tally.tell();
                }
                for k in singles.drain(..) {
                    let r = match stop(deadline) {
                        Some(why) => Err(why.error(deadline)),
                        None => {
                            tally.sent = true;
                            self.single_batched(&calls[k], deadline, cancel)
                        }
                    };
                    tally.store(k, r);
                    tally.tell();
                }
            }
            // None only once every id is answered (`left` is 0).
            let Some(id) = id else {
                break;
            };
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
            let more = std::iter::from_fn(|| rx.try_recv().ok());
            for event in first_event.into_iter().chain(more) {
                match event {
                    Event::Answer(aid, outcome) => {
                        let Some(k) = index_of(aid).filter(|&k| !answered[k]) else {
                            continue;
                        };
                        answered[k] = true;
                        left -= 1;
                        if aid == id {
                            // The token, if this thread led under the answered id, goes on.
                            shared.table.lock().hand_off(id);
                        }
                        take(k, outcome, &mut tally, &mut deferred);
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
            // Every call still waiting gives up at once (its token with it); an answer
            // already here wins, unless it still had to be followed: then
            // it ends with the stop too, and its task, if it is one, is cancelled.
            let mut abandoned = Vec::new();
            {
                let mut table = shared.table.lock();
                for &id in &ids {
                    let waiting = index_of(id).is_some_and(|k| !answered[k]);
                    if waiting && table.abandon(id).is_some() {
                        abandoned.push(id);
                    }
                }
            }
            for event in rx.try_iter() {
                if let Event::Answer(aid, outcome) = event {
                    if let Some(k) = index_of(aid).filter(|&k| !answered[k]) {
                        answered[k] = true;
                        take(k, outcome, &mut tally, &mut deferred);
                    }
                }
            }
            // One command for all of them: the worker withdraws them in one pass.
            abandoned.retain(|&id| index_of(id).is_some_and(|k| !answered[k]));
            if !abandoned.is_empty() {
                shared.submit(Command::Abandon {
                    ids: abandoned,
                    reason: why.reason(),
                });
            }
            // (The singles ran in the first round, before anything could stop.) What is
            // left, the answers still to be followed and the calls still unanswered, ends
            // with the stop.
            unfollowed.extend(deferred.drain(..).map(|(_, value)| value));
            tally.fill_rest(&why.error(deadline));
        }
        self.cancel_tasks_of(&unfollowed);
        tally.finish()
    }

    /// The `_meta` every request of a batch carries, or why the session takes none now.
    fn batch_meta(&self, cancel: Option<&CancelHandle>) -> Result<Map<String, Value>, Error> {
        if cancel.is_some_and(CancelHandle::is_cancelled) {
            return Err(Error::Cancelled);
        }
        let shared = self.shared();
        self.refuse(&Call::call_tool("batch", Value::Null)?, shared.generation())?;
        call::may_send(shared)?;
        let level = self.with_log_level(None);
        call::meta_of(shared, "tools/call", None, level.as_ref(), None)
    }

    /// A batched call's first answer. A complete one is final here (the tool's output
    /// check, then the result, as [`settle_within`](Self::settle_within) does for it); one
    /// that is not is to be followed.
    fn first_answer(&self, call: &ToolCall, outcome: Result<Value, Error>) -> First {
        match outcome {
            Ok(value) if ResultType::of(&value) == ResultType::Complete => First::Final(
                self.check_output(&call.tool, &value)
                    .and_then(|()| tool_result(value, "tools/call")),
            ),
            Ok(value) => First::Follow(value),
            Err(e) => First::Final(Err(e)),
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

    /// A call of a batch run on its own, as a single call is (refusals, log level, a task
    /// when the tool must run as one, the result rules): over stdio a tool that must run
    /// as a task, over HTTP every call.
    fn single_batched(
        &self,
        c: &ToolCall,
        deadline: &mut Deadline,
        cancel: Option<&CancelHandle>,
    ) -> Outcome {
        let call = Call::call_tool(&c.tool, c.arguments.clone())?;
        self.run_within(&call, deadline, None, cancel, None)
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
            let result = self.single_batched(c, deadline, cancel);
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
                        let result = self.single_batched(c, &mut deadline, cancel);
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
}

/// A batch's request lines, before they are handed to the worker.
#[derive(Default)]
struct Requests {
    lines: Vec<u8>,
    /// Each request's id and where its line ends in `lines`.
    ends: Vec<(u64, usize)>,
}

impl Requests {
    fn add(&mut self, id: u64, c: &ToolCall, meta: &Map<String, Value>) {
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

/// What a batched call's first answer is.
enum First {
    /// Its result.
    Final(Outcome),
    /// A result that is not complete: to be followed (input rounds, a task).
    Follow(Value),
}

/// A batch's results as they come, and the callback told of them in the calls' order:
/// each once those before it are known.
struct Tally<F> {
    results: Vec<Option<Outcome>>,
    told: usize,
    at: Instant,
    on_result: F,
    /// Some request was handed to the server.
    sent: bool,
}

impl<F: FnMut(usize, &Outcome, Instant)> Tally<F> {
    fn new(calls: usize, on_result: F) -> Self {
        Tally {
            results: (0..calls).map(|_| None).collect(),
            told: 0,
            at: Instant::now(),
            on_result,
            sent: false,
        }
    }

    fn store(&mut self, k: usize, r: Outcome) {
        self.results[k] = Some(r);
    }

    /// Every call without a result yet gets this error.
    fn fill_rest(&mut self, e: &Error) {
        for r in &mut self.results {
            r.get_or_insert_with(|| Err(e.clone()));
        }
    }

    fn tell(&mut self) {
        while let Some(Some(r)) = self.results.get(self.told) {
            (self.on_result)(self.told, r, self.at);
            self.told += 1;
        }
    }

    /// Tells the rest and returns every result. A call without one (cannot happen: every
    /// path stores one) reads as a protocol error rather than a success.
    fn finish(mut self) -> Batched {
        for r in &mut self.results {
            r.get_or_insert_with(|| {
                Err(Error::Protocol(
                    "a batched call ended without an outcome".into(),
                ))
            });
        }
        self.tell();
        Batched {
            results: self.results.into_iter().flatten().collect(),
            sent: self.sent,
        }
    }
}
