//! One call through the pool, top to bottom: make its deadline, lease a session, run the
//! call on it, decide about a retry, count it. Direct mode and batches are here too.
//!
//! A retry never runs a tool twice: a request none of whose bytes reached the server may
//! go again (on another session, up to twice more); one that was written goes again once,
//! and only when the method is read-only or the tool's annotations (known from the last
//! tool list the pool saw, never fetched from a new server to decide) say it is safe,
//! unless the policy says otherwise. The decision never waits for a new session.
//!
//! The caller key of the options (a per-caller server's) goes with every lease, retries
//! included: a call never leaves its key's sessions.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use crate::config::RetryPolicy;
use crate::deadline::Deadline;
use crate::error::{Error, Phase};
use crate::protocol::{Call, CallToolResult, Tool, ToolCall, ToolIndex};
use crate::session::{BatchOptions, CallOptions, Session};

use super::slot::Slot;
use super::stats::Counters;

/// Attempts of a request that was never written (each on another session).
const UNWRITTEN_ATTEMPTS: usize = 3;

/// Runs one call on a server with its options (in direct mode when the server's settings
/// or `direct` say so).
pub(crate) fn run<T>(
    slot: &Arc<Slot>,
    call: &Call<T>,
    options: CallOptions<'_>,
    direct: bool,
) -> Result<T, Error> {
    run_then(slot, call, options, direct, &mut |_, _, _| {})
}

/// Lists a server's tools, from the cache (of the caller's key) when it is still valid,
/// and keeps them as the cache.
pub(crate) fn list_tools(
    slot: &Arc<Slot>,
    options: CallOptions<'_>,
) -> Result<Arc<Vec<Tool>>, Error> {
    if !slot.settings.direct {
        if let Some(tools) = slot.cached_tools(slot.key(options.caller.as_deref())?) {
            Counters::add(&slot.counters.list_cache_hits);
            return Ok(tools);
        }
    }
    let mut kept = None;
    let tools = run_then(
        slot,
        &Call::list_tools(),
        options,
        false,
        &mut |session, epoch, tools| {
            kept = Some(slot.learn_tools(session, epoch, tools.clone()));
        },
    )?;
    Ok(kept.unwrap_or_else(|| Arc::new(tools)))
}

/// [`run`], then `then` sees the session that answered, its tool-list change count from
/// before the call, and the result.
fn run_then<T>(
    slot: &Arc<Slot>,
    call: &Call<T>,
    options: CallOptions<'_>,
    direct: bool,
    then: &mut dyn FnMut(&Session, u64, &T),
) -> Result<T, Error> {
    let meta = options.meta_with_level();
    let CallOptions {
        timeout,
        mut progress,
        cancel,
        keep_deadline,
        caller,
        start_timeout,
        ..
    } = options;
    let pooled = !(direct || slot.settings.direct);
    // Direct mode shares nothing: no key needed.
    let key = if pooled {
        slot.key(caller.as_deref())?
    } else {
        None
    };
    let config = &slot.config;
    let call_deadline = || {
        Deadline::for_call(
            timeout,
            config.request_timeout,
            config.max_request_timeout,
            keep_deadline,
        )
    };
    // With a start bound, the wait for a session has its own deadline and the call's
    // starts once it has one.
    let wait_bound = || start_timeout.map(Deadline::fixed);
    let began = Instant::now();
    let mut deadline = call_deadline();
    Counters::add(&slot.counters.calls);
    if !pooled {
        Counters::add(&slot.counters.direct_calls);
        let waiting = wait_bound();
        let session = slot.start_direct(waiting.as_ref().unwrap_or(&deadline), caller.as_deref());
        if waiting.is_some() {
            deadline = call_deadline();
        }
        let result = session.and_then(|session| {
            let result = session.run_within(
                call,
                &mut deadline,
                progress.as_mut(),
                cancel.as_ref(),
                meta.as_ref(),
            );
            slot.end_direct(session);
            result
        });
        finish(slot, began, &result);
        return result;
    }
    let mut exclude = None;
    let mut attempts = 0;
    let mut written_retry = false;
    let result = loop {
        // Only the first wait has a bound of its own: a retry is part of the call and waits
        // under the call's deadline.
        let waiting = if attempts == 0 { wait_bound() } else { None };
        let acquired = slot.acquire(
            waiting.as_ref().unwrap_or(&deadline),
            exclude,
            cancel.as_ref(),
            key,
        );
        let lease = match acquired {
            Ok(lease) => lease,
            Err(e) => break Err(e),
        };
        if attempts == 0 && waiting.is_some() {
            deadline = call_deadline();
        }
        if attempts == 0 {
            Counters::add(if lease.hit {
                &slot.counters.hits
            } else {
                &slot.counters.misses
            });
        }
        attempts += 1;
        slot.share_index(&lease.session);
        let epoch = lease.session.tools_epoch();
        let result = lease.session.run_within(
            call,
            &mut deadline,
            progress.as_mut(),
            cancel.as_ref(),
            meta.as_ref(),
        );
        if let Ok(value) = &result {
            then(&lease.session, epoch, value);
        }
        if matches!(
            result,
            Err(Error::Timeout {
                phase: Phase::Request,
                ..
            } | Error::Cancelled)
        ) {
            slot.suspect(lease.serial);
        }
        slot.share_index(&lease.session);
        let serial = lease.serial;
        let known = lease.session.tool_index();
        drop(lease);
        match result {
            Err(e)
                if may_retry(
                    slot,
                    known.as_deref(),
                    call,
                    &e,
                    &deadline,
                    attempts,
                    written_retry,
                ) =>
            {
                log::info!(
                    "[{}] retrying {} on another session after: {e}",
                    slot.name,
                    call.method
                );
                Counters::add(&slot.counters.retries);
                written_retry |= matches!(e, Error::OutcomeUnknown { .. });
                exclude = Some(serial);
            }
            other => break other,
        }
    };
    finish(slot, began, &result);
    result
}

/// Whether a failed call may run again on another session under the server's policy.
/// `known` is what the failed session knew of the tools (never asked of a new server).
fn may_retry<T>(
    slot: &Slot,
    known: Option<&ToolIndex>,
    call: &Call<T>,
    error: &Error,
    deadline: &Deadline,
    attempts: usize,
    written_retry: bool,
) -> bool {
    if deadline.passed() {
        return false;
    }
    match (slot.settings.retry, error) {
        (RetryPolicy::Never, _) => false,
        // Never written: it cannot have run. (A call that finds an HTTP server unreachable
        // was not sent either; its session ended.)
        (_, Error::SessionClosed { .. } | Error::Connect { .. }) => attempts < UNWRITTEN_ATTEMPTS,
        (_, Error::OutcomeUnknown { .. }) if written_retry => false,
        (RetryPolicy::Always, Error::OutcomeUnknown { .. }) => true,
        (RetryPolicy::Safe, Error::OutcomeUnknown { .. }) => {
            call.read_only
                || call
                    .tool
                    .as_deref()
                    .is_some_and(|t| known.is_some_and(|i| i.is_safe(t)))
        }
        _ => false,
    }
}

fn finish<T>(slot: &Slot, start: Instant, result: &Result<T, Error>) {
    slot.counters.latency.lock().record(start.elapsed());
    if let Err(e) = result {
        slot.counters.error(e.kind());
    }
}

/// Calls many tools on one session without waiting between them; one result per call, in
/// order. If the session dies mid-batch, calls never written go to another session (of
/// the same caller key) and written ones follow the retry policy. Fails as a whole only
/// when a per-caller server is given no caller key.
pub(crate) fn batch(
    slot: &Arc<Slot>,
    calls: &[ToolCall],
    mut options: BatchOptions<'_>,
) -> Result<Vec<Result<CallToolResult, Error>>, Error> {
    let caller = options.caller.take();
    let key = if slot.settings.direct {
        None
    } else {
        slot.key(caller.as_deref())?
    };
    let total = calls.len();
    let mut deadline = Deadline::fixed(options.timeout.unwrap_or(slot.config.request_timeout));
    let cancel = options.cancel.take();
    let mut tell = |i: usize, r: &Result<CallToolResult, Error>| {
        if let Some(f) = options.on_result.as_mut() {
            f(i, r);
        }
    };
    let counters = &slot.counters;
    for _ in 0..total {
        Counters::add(&counters.calls);
    }
    // Each call's latency counts from when it was sent, not from the batch's start (over
    // stdio: from when the batch began writing its requests out).
    let record = |sent: Instant, r: &Result<CallToolResult, Error>| {
        counters.latency.lock().record(sent.elapsed());
        if let Err(e) = r {
            counters.error(e.kind());
        }
    };
    if slot.settings.direct {
        for _ in 0..total {
            Counters::add(&counters.direct_calls);
        }
        // One session of its own for the whole batch.
        return Ok(match slot.start_direct(&deadline, caller.as_deref()) {
            Ok(session) => {
                let batched =
                    session.batch_within(calls, &mut deadline, cancel.as_ref(), |i, r, sent| {
                        record(sent, r);
                        tell(i, r);
                    });
                slot.end_direct(session);
                batched.results
            }
            Err(e) => (0..total)
                .map(|i| {
                    let r = Err(e.clone());
                    record(deadline.started(), &r);
                    tell(i, &r);
                    r
                })
                .collect(),
        });
    }
    let mut results: Vec<Option<Result<CallToolResult, Error>>> =
        (0..total).map(|_| None).collect();
    let mut todo: Vec<usize> = (0..total).collect();
    let mut exclude = None;
    for attempt in 0..UNWRITTEN_ATTEMPTS {
        if todo.is_empty() {
            break;
        }
        let lease = match slot.acquire(&deadline, exclude, cancel.as_ref(), key) {
            Ok(lease) => lease,
            Err(e) => {
                for &i in &todo {
                    let r = Err(e.clone());
                    record(deadline.started(), &r);
                    tell(i, &r);
                    results[i] = Some(r);
                }
                todo.clear();
                break;
            }
        };
        if attempt == 0 {
            let counter = if lease.hit {
                &counters.hits
            } else {
                &counters.misses
            };
            for _ in 0..total {
                Counters::add(counter);
            }
        }
        // The first attempt sends the caller's calls as they are; a retry only those left.
        let batch: Cow<'_, [ToolCall]> = if todo.len() == total {
            Cow::Borrowed(calls)
        } else {
            Cow::Owned(todo.iter().map(|&i| calls[i].clone()).collect())
        };
        slot.share_index(&lease.session);
        // The session's batch learns the tools first; what it knew is read once a call
        // failed, for the retry decision.
        let session = &lease.session;
        let mut again = Vec::new();
        let within = deadline;
        let batched =
            lease
                .session
                .batch_within(&batch, &mut deadline, cancel.as_ref(), |k, r, sent| {
                    // A call to be retried is not finished yet.
                    let retry = r.as_ref().err().is_some_and(|e| {
                        let call = Call::call_tool(&batch[k].tool, batch[k].arguments.clone());
                        call.is_ok_and(|c| {
                            may_retry(
                                slot,
                                session.tool_index().as_deref(),
                                &c,
                                e,
                                &within,
                                attempt + 1,
                                attempt > 0,
                            )
                        })
                    });
                    if retry {
                        again.push(k);
                    } else {
                        record(sent, r);
                        tell(todo[k], r);
                    }
                });
        // As for a single call: a batch call that timed out or was cancelled makes the
        // session suspect until a probe says it still answers (not when the batch stopped
        // before it sent anything).
        let outcomes = batched.results;
        if batched.sent
            && outcomes.iter().any(|r| {
                matches!(
                    r,
                    Err(Error::Timeout {
                        phase: Phase::Request,
                        ..
                    } | Error::Cancelled)
                )
            })
        {
            slot.suspect(lease.serial);
        }
        exclude = Some(lease.serial);
        drop(lease);
        let mut next = Vec::new();
        for (k, outcome) in outcomes.into_iter().enumerate() {
            let i = todo[k];
            if again.contains(&k) {
                Counters::add(&counters.retries);
                next.push(i);
            }
            results[i] = Some(outcome);
        }
        todo = next;
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or(Err(Error::PoolClosed)))
        .collect())
}

/// A session of the server (of the caller key `caller`, on a per-caller server) for
/// direct use. It stays in the pool (the reaper may close it when idle or old; calls on it
/// then fail with `SessionClosed`).
pub(crate) fn session(slot: &Arc<Slot>, caller: Option<&str>) -> Result<Session, Error> {
    let key = slot.key(caller)?;
    let deadline = Deadline::fixed(slot.config.start_timeout);
    let lease = slot.acquire(&deadline, None, None, key)?;
    Ok(lease.session.clone())
}
