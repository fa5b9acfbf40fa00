//! From a call kind to its final result, on one session: refusing what the server cannot
//! take, paging, reading `resultType` (a result that is not complete is never taken for
//! one), the multi round-trip flow (input requests answered by the handler, the request
//! sent again with a new id), following a task to its end, and checking a tool's output
//! against its schema. Every step shares the call's deadline and cancel handle.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, RecvTimeoutError};
use serde_json::{json, Map, Value};

use crate::config::Generation;
use crate::deadline::Deadline;
use crate::error::{Error, Phase};
use crate::handler;
use crate::protocol::{
    self, kind_of, Call, LogLevel, ResultType, Task, TaskStatus, TaskSupport, Tool, ToolIndex,
    META_LOG_LEVEL,
};

use super::call;
use super::handle::Session;
use super::inbound;
use super::options::{CancelHandle, ProgressFn};
use super::shared::{CacheHints, Shared};

/// The most pages a list call follows before it gives up.
const MAX_PAGES: usize = 10_000;
/// How long a task is polled at first when the server suggests no interval, and at most.
const TASK_POLL: Duration = Duration::from_millis(250);
const TASK_POLL_MAX: Duration = Duration::from_secs(5);
/// How long the `tasks/cancel` requests for tasks a call gave up on wait for their answers.
const TASK_CANCEL_WAIT: Duration = Duration::from_secs(1);

/// What a call needs besides its kind: its deadline, progress callback, cancel handle and
/// `_meta`.
pub(crate) struct Ctx<'d, 'p, 'c> {
    pub deadline: &'d mut Deadline,
    pub progress: Option<&'p mut ProgressFn<'c>>,
    pub cancel: Option<&'d CancelHandle>,
    pub meta: Option<Map<String, Value>>,
}

impl Session {
    /// Runs a call kind to its final result on a deadline made by the caller.
    pub(crate) fn run_within<T>(
        &self,
        call: &Call<T>,
        deadline: &mut Deadline,
        progress: Option<&mut ProgressFn<'_>>,
        cancel: Option<&CancelHandle>,
        meta: Option<&Map<String, Value>>,
    ) -> Result<T, Error> {
        if cancel.is_some_and(CancelHandle::is_cancelled) {
            return Err(Error::Cancelled);
        }
        let shared = self.shared();
        let generation = shared.generation();
        self.refuse(call, generation)?;
        let method: &str = match (&*call.method, generation) {
            ("ping", Some(Generation::PerRequest)) => "server/discover",
            (m, _) => m,
        };
        let meta = self.with_log_level(meta);
        let mut ctx = Ctx {
            deadline,
            progress,
            cancel,
            meta,
        };
        if let Some(tool) = &call.tool {
            self.learn_tool(tool, &mut ctx);
        }
        let Some(key) = call.pages else {
            let value = self.exchange(call, method, call.params.as_ref(), &mut ctx)?;
            return (call.parse)(value, method);
        };
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut params = call.params.clone().unwrap_or_else(|| json!({}));
            if let (Some(c), Some(map)) = (&cursor, params.as_object_mut()) {
                map.insert("cursor".into(), json!(c));
            }
            let params = (params != json!({})).then_some(params);
            let mut page = self.exchange(call, method, params.as_ref(), &mut ctx)?;
            if cursor.is_none() && method == "tools/list" {
                *shared.tools_hints.lock() = Some(CacheHints::of(&page));
            }
            match page.get_mut(key).map(Value::take) {
                Some(Value::Array(list)) => items.extend(list),
                _ => {
                    return Err(Error::Protocol(format!(
                        "`{method}` result has no `{key}` array"
                    )))
                }
            }
            match page.get("nextCursor") {
                None | Some(Value::Null) => return (call.parse)(Value::Array(items), method),
                Some(Value::String(next)) => {
                    if !seen.insert(next.clone()) {
                        return Err(Error::Protocol(format!(
                            "`{method}` pagination loops: cursor {next:?} came twice"
                        )));
                    }
                    cursor = Some(next.clone());
                }
                Some(other) => {
                    return Err(Error::Protocol(format!(
                        "`{method}` nextCursor is {}, not a string",
                        kind_of(other)
                    )))
                }
            }
        }
        Err(Error::Protocol(format!(
            "`{method}` returned more than {MAX_PAGES} pages"
        )))
    }

    /// A request's `_meta` with the log level the caller set, in the per-request generation
    /// (which carries it in every request's envelope; the handshake one sets it once).
    pub(super) fn with_log_level(
        &self,
        meta: Option<&Map<String, Value>>,
    ) -> Option<Map<String, Value>> {
        let shared = self.shared();
        let mut meta = meta.cloned();
        if shared.generation() == Some(Generation::PerRequest) {
            if let Some(level) = *shared.log_level.lock() {
                meta.get_or_insert_with(Map::new)
                    .entry(META_LOG_LEVEL)
                    .or_insert_with(|| json!(level.as_str()));
            }
        }
        meta
    }

    /// Refuses, without sending, a typed call the agreed version removed or whose
    /// capability the server did not declare.
    pub(super) fn refuse<T>(
        &self,
        call: &Call<T>,
        generation: Option<Generation>,
    ) -> Result<(), Error> {
        let unsupported = |reason: String| {
            Err(Error::Unsupported {
                method: call.method.to_string(),
                reason,
            })
        };
        let Some(details) = self.shared().details.get() else {
            return Ok(());
        };
        if generation == Some(Generation::PerRequest)
            && matches!(
                &*call.method,
                "logging/setLevel" | "resources/subscribe" | "resources/unsubscribe"
            )
        {
            return unsupported(format!(
                "protocol version {} removed it",
                details.protocol_version
            ));
        }
        match call.needs {
            // The per-request generation has no `logging` capability to check.
            Some("logging") if generation == Some(Generation::PerRequest) => Ok(()),
            Some(cap) if !details.has_capability(cap) => {
                unsupported(format!("the server did not declare the `{cap}` capability"))
            }
            _ => Ok(()),
        }
    }

    /// One request (sent again once, under a new id, when the server refused the
    /// protocol version it carried but lists it as supported: a replica behind a load
    /// balancer that had not caught up, or a server that rejects a client's first request).
    fn once(
        &self,
        method: &str,
        params: Option<&Value>,
        ctx: &mut Ctx<'_, '_, '_>,
    ) -> Result<Value, Error> {
        self.send_wait(method, params, ctx, true, true)
    }

    /// The same request again, a round of the same call (input given): not counted as
    /// another call, its progress reported to the same callback.
    fn again(
        &self,
        method: &str,
        params: Option<&Value>,
        ctx: &mut Ctx<'_, '_, '_>,
    ) -> Result<Value, Error> {
        self.send_wait(method, params, ctx, false, true)
    }

    /// A request of the library's own on the caller's behalf (a task poll, a tool listing):
    /// not counted as a call, no progress.
    fn aside(
        &self,
        method: &str,
        params: Option<&Value>,
        ctx: &mut Ctx<'_, '_, '_>,
    ) -> Result<Value, Error> {
        self.send_wait(method, params, ctx, false, false)
    }

    fn send_wait(
        &self,
        method: &str,
        params: Option<&Value>,
        ctx: &mut Ctx<'_, '_, '_>,
        counted: bool,
        wants_progress: bool,
    ) -> Result<Value, Error> {
        let shared = self.shared();
        let mut counted = counted;
        let mut resent = false;
        loop {
            let progress = if wants_progress {
                ctx.progress.as_deref_mut()
            } else {
                None
            };
            let sent = call::send(
                shared,
                method,
                params,
                ctx.meta.as_ref(),
                progress.is_some(),
                counted,
            )?;
            let outcome = call::wait(shared, sent, ctx.deadline, progress, ctx.cancel);
            match outcome {
                Err(Error::Server {
                    code: protocol::UNSUPPORTED_VERSION,
                    ref data,
                    ..
                }) if !resent
                    && shared.generation() == Some(Generation::PerRequest)
                    && protocol::supported_versions(data.as_ref())
                        .iter()
                        .any(|v| v == protocol::PER_REQUEST_VERSION) =>
                {
                    log::debug!(
                        "[{}] `{method}` refused the protocol version it lists as supported; sending it again",
                        shared.name
                    );
                    resent = true;
                    counted = false;
                }
                // Over HTTP, the server says the `Mcp-Param-*` headers do not match the
                // body: the tool's schema may have changed. List the tools again and send
                // once more with the headers the new list gives.
                Err(Error::Server {
                    code: protocol::HEADER_MISMATCH,
                    ..
                }) if !resent && method == "tools/call" && shared.http.get().is_some() => {
                    log::debug!(
                        "[{}] `{method}` refused its headers; listing the tools again",
                        shared.name
                    );
                    let epoch = self.tools_epoch();
                    let mut tools = self.list_all_tools(ctx)?;
                    self.index_tools(&mut tools, epoch);
                    resent = true;
                    counted = false;
                }
                other => return other,
            }
        }
    }

    /// Sends a request and follows it to its final result: answers input requests (multi
    /// round-trip), follows a task, checks a tool's output.
    fn exchange<T>(
        &self,
        call: &Call<T>,
        method: &str,
        params: Option<&Value>,
        ctx: &mut Ctx<'_, '_, '_>,
    ) -> Result<Value, Error> {
        let as_task = call.tool.as_deref().is_some_and(|t| self.runs_as_task(t));
        let value = if as_task {
            let mut augmented = params.cloned().unwrap_or_else(|| json!({}));
            augmented["task"] = json!({});
            let created = self.once(method, Some(&augmented), ctx)?;
            self.follow_task_2025(created, ctx)?
        } else {
            self.once(method, params, ctx)?
        };
        self.settle(call, method, params, value, ctx)
    }

    /// Follows a first answer to the call's final result: input rounds, a task, the tool's
    /// output check. Every answer of a call goes through here, batched ones too, so none
    /// is taken at face value.
    fn settle<T>(
        &self,
        call: &Call<T>,
        method: &str,
        params: Option<&Value>,
        mut value: Value,
        ctx: &mut Ctx<'_, '_, '_>,
    ) -> Result<Value, Error> {
        let shared = self.shared();
        let mut rounds = 0;
        loop {
            match ResultType::of(&value) {
                ResultType::Complete => break,
                ResultType::InputRequired if call.takes_input => {
                    rounds += 1;
                    if rounds > shared.max_input_rounds {
                        return Err(Error::Protocol(format!(
                            "`{method}` still asked for input after {} rounds",
                            shared.max_input_rounds
                        )));
                    }
                    let (retry, state_only) = self.answer_round(method, params, &value, ctx)?;
                    if state_only {
                        // Only `requestState` came back (the server sheds load): wait a
                        // little longer each round before trying again.
                        let pause = Duration::from_millis(25 << (rounds - 1).min(6));
                        pause_for(pause, ctx)?;
                    }
                    value = self.again(method, Some(&retry), ctx)?;
                }
                ResultType::InputRequired => {
                    return Err(Error::Protocol(format!(
                        "`{method}` answered input_required, which only tools/call, prompts/get and resources/read may"
                    )))
                }
                ResultType::Task if shared.tasks_enabled => {
                    value = self.follow_task(value, ctx)?;
                }
                ResultType::Task => {
                    return Err(Error::Protocol(format!(
                        "`{method}` answered with a task, though this client did not declare the tasks extension"
                    )))
                }
                ResultType::Other(t) => {
                    return Err(Error::Protocol(format!(
                        "`{method}` answered resultType `{t}`, which this client does not know"
                    )))
                }
            }
        }
        if let Some(tool) = &call.tool {
            self.check_output(tool, &value)?;
        }
        Ok(value)
    }

    /// Answers one input-required result: each input request through the handler. Returns
    /// the params of the retry (the original ones, with `inputResponses` and the exact
    /// `requestState`) and whether only a state came back.
    fn answer_round(
        &self,
        method: &str,
        params: Option<&Value>,
        result: &Value,
        ctx: &mut Ctx<'_, '_, '_>,
    ) -> Result<(Value, bool), Error> {
        let requests = match result.get("inputRequests") {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(other) => {
                return Err(Error::Protocol(format!(
                    "`{method}` inputRequests is {}, not an object",
                    kind_of(other)
                )))
            }
        };
        let state = match result.get("requestState") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                return Err(Error::Protocol(format!(
                    "`{method}` requestState is {}, not a string",
                    kind_of(other)
                )))
            }
        };
        if requests.is_none() && state.is_none() {
            return Err(Error::Protocol(format!(
                "`{method}` answered input_required with neither inputRequests nor requestState"
            )));
        }
        let mut retry = match params {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        retry.remove("inputResponses");
        retry.remove("requestState");
        if let Some(requests) = requests {
            let responses = answer_input(self.shared(), requests, ctx)?;
            retry.insert("inputResponses".into(), Value::Object(responses));
        }
        if let Some(state) = state {
            retry.insert("requestState".into(), Value::String(state.clone()));
        }
        Ok((Value::Object(retry), requests.is_none()))
    }

    /// Follows a 2026 task (`resultType: "task"`) until it ends: polls `tasks/get`, answers
    /// its input requests with `tasks/update`, cancels it if the call gives up. Returns
    /// what the original request returns. Once the task exists, a session that dies makes
    /// the outcome unknown: the task is never run again.
    fn follow_task(&self, created: Value, ctx: &mut Ctx<'_, '_, '_>) -> Result<Value, Error> {
        let mut task = read_task(created)?;
        let mut pause = TASK_POLL;
        let mut answered: HashSet<String> = HashSet::new();
        loop {
            match task.status {
                TaskStatus::Completed => {
                    return match task.extra.remove("result") {
                        Some(result @ Value::Object(_)) => Ok(result),
                        _ => Err(Error::Protocol(format!(
                            "task `{}` completed without a `result` object",
                            task.task_id
                        ))),
                    }
                }
                TaskStatus::Failed => return Err(task_error(&task)),
                TaskStatus::Cancelled => return Err(Error::Cancelled),
                TaskStatus::InputRequired => {
                    // The server's view is eventually consistent: a key answered already
                    // may still be listed for a while. Answer each key once, and wait a
                    // poll interval when nothing new is asked.
                    let mut requests = match task.extra.get("inputRequests") {
                        Some(Value::Object(map)) => map.clone(),
                        _ => Map::new(),
                    };
                    requests.retain(|key, _| !answered.contains(key));
                    if requests.is_empty() {
                        let wait = task
                            .poll_interval_ms
                            .map_or(pause, Duration::from_millis)
                            .min(TASK_POLL_MAX);
                        pause = (pause * 2).min(TASK_POLL_MAX);
                        if let Err(e) = pause_for(wait, ctx) {
                            self.cancel_task(&task, ctx);
                            return Err(e);
                        }
                    } else {
                        let responses = match answer_input(self.shared(), &requests, ctx) {
                            Ok(responses) => responses,
                            Err(e) => {
                                // Refused, past the deadline, cancelled: the task goes too.
                                self.cancel_task(&task, ctx);
                                return Err(e);
                            }
                        };
                        answered.extend(responses.keys().cloned());
                        let params = json!({"taskId": task.task_id, "inputResponses": responses});
                        self.task_step("tasks/update", &params, &task, ctx)?;
                    }
                }
                TaskStatus::Working => {
                    let wait = task
                        .poll_interval_ms
                        .map_or(pause, Duration::from_millis)
                        .min(TASK_POLL_MAX);
                    pause = (pause * 2).min(TASK_POLL_MAX);
                    if let Err(e) = pause_for(wait, ctx) {
                        self.cancel_task(&task, ctx);
                        return Err(e);
                    }
                }
            }
            let params = json!({ "taskId": task.task_id });
            task = read_task(self.task_step("tasks/get", &params, &task, ctx)?)?;
        }
    }

    /// Follows a 2025-11-25 task created by a task-augmented request: `tasks/result`
    /// waits for its end and returns what the tool returns (a server asks its own
    /// questions, an elicitation say, while that request is open). Past the call's
    /// deadline or on cancel the task is cancelled.
    fn follow_task_2025(&self, created: Value, ctx: &mut Ctx<'_, '_, '_>) -> Result<Value, Error> {
        let Some(task) = created.get("task") else {
            // The server ran it without a task after all.
            return Ok(created);
        };
        let task: Task = serde_json::from_value(task.clone())
            .map_err(|e| Error::Protocol(format!("a CreateTaskResult has the wrong shape: {e}")))?;
        if task.status == TaskStatus::Cancelled {
            return Err(Error::Cancelled);
        }
        let params = json!({ "taskId": task.task_id });
        self.task_step("tasks/result", &params, &task, ctx)
    }

    /// A request about an existing task. A session that fails under it makes the call's
    /// outcome unknown (the task exists; it must not run again).
    fn task_step(
        &self,
        method: &str,
        params: &Value,
        task: &Task,
        ctx: &mut Ctx<'_, '_, '_>,
    ) -> Result<Value, Error> {
        match self.aside(method, Some(params), ctx) {
            Err(Error::SessionClosed {
                reason,
                stderr_tail,
            }) => Err(Error::OutcomeUnknown {
                reason,
                stderr_tail,
            }),
            Err(e @ (Error::Timeout { .. } | Error::Cancelled)) => {
                self.cancel_task(task, ctx);
                Err(e)
            }
            other => other,
        }
    }

    /// Tells the server to cancel a task the call gave up on (best effort, briefly).
    fn cancel_task(&self, task: &Task, ctx: &Ctx<'_, '_, '_>) {
        self.cancel_tasks([task.task_id.as_str()], ctx.meta.as_ref());
    }

    /// Tells the server to cancel the tasks among answers a batch gave up on before it
    /// followed them (2026 tasks; an input round holds nothing on the server).
    pub(crate) fn cancel_tasks_of(&self, answers: &[Value]) {
        let tasks: Vec<&str> = answers
            .iter()
            .filter(|v| ResultType::of(v) == ResultType::Task)
            .filter_map(|v| v.get("taskId").and_then(Value::as_str))
            .collect();
        if !tasks.is_empty() {
            self.cancel_tasks(tasks, self.with_log_level(None).as_ref());
        }
    }

    /// Sends `tasks/cancel` for each task, then waits for their answers, together at most
    /// [`TASK_CANCEL_WAIT`] (best effort: the call has already given up).
    fn cancel_tasks<'t>(
        &self,
        tasks: impl IntoIterator<Item = &'t str>,
        meta: Option<&Map<String, Value>>,
    ) {
        let mut brief = Deadline::fixed(TASK_CANCEL_WAIT);
        let shared = self.shared();
        let sent: Vec<_> = tasks
            .into_iter()
            .filter_map(|id| {
                let params = json!({ "taskId": id });
                let sent = call::send(shared, "tasks/cancel", Some(&params), meta, false, false);
                sent.ok().map(|sent| (id, sent))
            })
            .collect();
        for (id, sent) in sent {
            if let Err(e) = call::wait(shared, sent, &mut brief, None, None) {
                log::debug!("[{}] tasks/cancel of `{id}`: {e}", shared.name);
            }
        }
    }

    /// Whether a tool must run as a 2025-11-25 task: it says `taskSupport: required`, the
    /// server takes task-augmented tool calls, and tasks are enabled.
    pub(super) fn runs_as_task(&self, tool: &str) -> bool {
        let shared = self.shared();
        if !shared.tasks_enabled || shared.generation() != Some(Generation::Handshake) {
            return false;
        }
        let takes = shared.details.get().is_some_and(|d| {
            d.capabilities
                .pointer("/tasks/requests/tools/call")
                .is_some_and(|v| !v.is_null() && v != &Value::Bool(false))
        });
        takes
            && self
                .tool_index()
                .is_some_and(|i| i.task_support(tool) == TaskSupport::Required)
    }

    /// How long the last tool list stays fresh: `None` when it does not expire (the
    /// handshake generation: a change is announced), `Some(0)` when it must not be kept.
    pub(crate) fn tools_ttl(&self) -> Option<Duration> {
        if self.shared().generation() != Some(Generation::PerRequest) {
            return None;
        }
        let hints = self.shared().tools_hints.lock().clone();
        Some(Duration::from_millis(
            hints.and_then(|h| h.ttl_ms).unwrap_or(0),
        ))
    }

    /// The tool index, if the session has listed its tools.
    pub(crate) fn tool_index(&self) -> Option<Arc<ToolIndex>> {
        self.shared().tools.lock().as_ref().map(|(i, _)| i.clone())
    }

    /// Keeps what a tool list says (safety, task support, output validators, the
    /// arguments mirrored into headers). Over HTTP, first drops the tools whose
    /// `x-mcp-header` marks are invalid (the specification requires it), with a warning.
    pub(crate) fn index_tools(&self, tools: &mut Vec<Tool>, epoch: u64) -> Arc<ToolIndex> {
        let shared = self.shared();
        let http = shared.http.get().is_some();
        if http {
            tools.retain(|t| match protocol::header_params(&t.input_schema) {
                Ok(_) => true,
                Err(why) => {
                    log::warn!("[{}] tool `{}` left out: {why}", shared.name, t.name);
                    false
                }
            });
        }
        let index = Arc::new(ToolIndex::new(tools, shared.validate_output, http));
        *self.shared().tools.lock() = Some((index.clone(), epoch));
        index
    }

    /// Uses an index learned elsewhere (another session of the same server).
    pub(crate) fn install_index(&self, index: Arc<ToolIndex>) {
        let mut tools = self.shared().tools.lock();
        if tools.is_none() {
            *tools = Some((index, self.tools_epoch()));
        }
    }

    /// Before the first call of a tool it has not seen in a tool list (since the last
    /// change of the list), the session lists the tools: so it knows the tool's output
    /// schema, whether it needs a task, and (for the pool) whether it is safe to repeat.
    /// A failed listing is only logged.
    fn learn_tool(&self, tool: &str, ctx: &mut Ctx<'_, '_, '_>) {
        let shared = self.shared();
        let current = |s: &Shared| {
            let epoch = self.tools_epoch();
            s.tools
                .lock()
                .as_ref()
                .is_some_and(|(i, e)| i.knows(tool) || *e == epoch)
        };
        if current(shared) {
            return;
        }
        // One listing at a time, but never waiting past this call's deadline for another
        // call's listing: without it the call goes on knowing nothing new of the tool.
        let Some(_one_at_a_time) = shared.indexing.try_lock_until(ctx.deadline.at()) else {
            return;
        };
        if current(shared) {
            return;
        }
        let epoch = self.tools_epoch();
        let mut within = *ctx.deadline;
        let mut listing = Ctx {
            deadline: &mut within,
            progress: None,
            cancel: ctx.cancel,
            meta: ctx.meta.clone(),
        };
        match self.list_all_tools(&mut listing) {
            Ok(mut tools) => {
                self.index_tools(&mut tools, epoch);
            }
            Err(e) => log::debug!("[{}] cannot list tools to learn `{tool}`: {e}", shared.name),
        }
    }

    /// [`settle`](Self::settle) for a batched call's answer, under the batch's deadline and
    /// cancel handle.
    pub(crate) fn settle_within<T>(
        &self,
        call: &Call<T>,
        value: Value,
        deadline: &mut Deadline,
        cancel: Option<&CancelHandle>,
    ) -> Result<Value, Error> {
        let mut ctx = Ctx {
            deadline,
            progress: None,
            cancel,
            meta: self.with_log_level(None),
        };
        self.settle(call, &call.method, call.params.as_ref(), value, &mut ctx)
    }

    /// [`learn_tool`](Self::learn_tool) on a deadline of its own (a batch learns before it
    /// sends its calls).
    pub(crate) fn learn_tool_for(&self, tool: &str, deadline: &Deadline) {
        let mut within = *deadline;
        let mut ctx = Ctx {
            deadline: &mut within,
            progress: None,
            cancel: None,
            meta: None,
        };
        self.learn_tool(tool, &mut ctx);
    }

    /// Every page of `tools/list`, as requests of the library's own.
    fn list_all_tools(&self, ctx: &mut Ctx<'_, '_, '_>) -> Result<Vec<Tool>, Error> {
        let call = Call::list_tools();
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        loop {
            let params = cursor.as_ref().map(|c| json!({ "cursor": c }));
            let mut page = self.aside("tools/list", params.as_ref(), ctx)?;
            if ResultType::of(&page) != ResultType::Complete {
                return Err(Error::Protocol("`tools/list` did not complete".into()));
            }
            match page.get_mut("tools").map(Value::take) {
                Some(Value::Array(list)) => items.extend(list),
                _ => {
                    return Err(Error::Protocol(
                        "`tools/list` result has no `tools` array".into(),
                    ))
                }
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) if seen.insert(next.to_owned()) => cursor = Some(next.to_owned()),
                Some(_) => return Err(Error::Protocol("`tools/list` pagination loops".into())),
                None => return (call.parse)(Value::Array(items), "tools/list"),
            }
        }
    }

    /// A successful tool result whose tool declares an output schema must match it.
    pub(super) fn check_output(&self, tool: &str, value: &Value) -> Result<(), Error> {
        if value.get("isError").and_then(Value::as_bool) == Some(true) {
            return Ok(());
        }
        let Some(index) = self.tool_index() else {
            return Ok(());
        };
        if let Err(message) = index.check_output(tool, value.get("structuredContent")) {
            let result = protocol::tool_result(value.clone(), "tools/call")?;
            return Err(Error::InvalidOutput {
                tool: tool.to_owned(),
                message,
                result: Box::new(result),
            });
        }
        Ok(())
    }

    /// Sets the log level of the server's messages: `logging/setLevel` in the handshake
    /// generation, the per-request `_meta` field in the per-request one.
    pub(crate) fn apply_log_level(
        &self,
        level: LogLevel,
        ctx_deadline: &mut Deadline,
    ) -> Result<(), Error> {
        let shared = self.shared();
        if shared.generation() == Some(Generation::PerRequest) {
            *shared.log_level.lock() = Some(level);
            return Ok(());
        }
        self.run_within(
            &Call::set_logging_level(level),
            ctx_deadline,
            None,
            None,
            None,
        )
    }
}

/// Reads a 2026 task result (the `Task` fields at the top level).
fn read_task(value: Value) -> Result<Task, Error> {
    serde_json::from_value(value)
        .map_err(|e| Error::Protocol(format!("a task result has the wrong shape: {e}")))
}

/// A failed task's JSON-RPC error.
fn task_error(task: &Task) -> Error {
    let e = task.extra.get("error");
    Error::Server {
        code: e
            .and_then(|e| e.get("code"))
            .and_then(Value::as_i64)
            .unwrap_or(-32603),
        message: e
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("the task failed")
            .to_owned(),
        data: e.and_then(|e| e.get("data")).cloned(),
    }
}

/// Waits `pause`, no longer than the call's deadline, and not past its cancellation.
fn pause_for(pause: Duration, ctx: &Ctx<'_, '_, '_>) -> Result<(), Error> {
    let until = ctx.deadline.at().min(Instant::now() + pause);
    let (tx, rx) = bounded::<()>(1);
    let _cancel = ctx.cancel.map(|c| {
        c.on_cancel(move || {
            let _ = tx.try_send(());
        })
    });
    match rx.recv_deadline(until) {
        Ok(()) => return Err(Error::Cancelled),
        Err(RecvTimeoutError::Disconnected)
            if ctx.cancel.is_some_and(CancelHandle::is_cancelled) =>
        {
            return Err(Error::Cancelled)
        }
        _ => {}
    }
    if ctx.deadline.passed() {
        return Err(ctx.deadline.expired(Phase::Request));
    }
    Ok(())
}

/// Answers the server's input requests through the handler, each on a thread of its own
/// (a handler may block on a user), all within the call's deadline and cancel handle. The
/// first one the handler cannot or will not answer fails the call.
/// How often an input round looks whether its session has ended.
const ROUND_CHECK: Duration = Duration::from_millis(100);

fn answer_input(
    shared: &Arc<Shared>,
    requests: &Map<String, Value>,
    ctx: &Ctx<'_, '_, '_>,
) -> Result<Map<String, Value>, Error> {
    // One thread per input request: the server does not choose how many.
    if requests.len() > inbound::MAX_HANDLER_THREADS {
        return Err(Error::Protocol(format!(
            "the server asked for {} inputs in one round; at most {} are answered",
            requests.len(),
            inbound::MAX_HANDLER_THREADS
        )));
    }
    let (tx, rx) = unbounded();
    // Raised when the call stops waiting for the answers (error, deadline, cancel) or the
    // session ends (it is one of the session's asks): the handlers still running see it
    // through `ServerRequest::is_cancelled`.
    static ROUNDS: AtomicU64 = AtomicU64::new(0);
    let ask = json!(format!(
        "mcp-pool-input-round-{}",
        ROUNDS.fetch_add(1, Ordering::Relaxed)
    ));
    let stop = shared.asks.begin(&ask);
    struct Raise<'s>(&'s Shared, Value, Arc<AtomicBool>);
    impl Drop for Raise<'_> {
        fn drop(&mut self) {
            self.2.store(true, Ordering::Release);
            self.0.asks.end(&self.1);
        }
    }
    let _raise = Raise(shared, ask, stop.clone());
    for (key, request) in requests {
        let method = request
            .get("method")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Protocol(format!("input request `{key}` has no `method`")))?
            .to_owned();
        let params = request.get("params").cloned().unwrap_or_else(|| json!({}));
        let (tx, key, shared) = (tx.clone(), key.clone(), shared.clone());
        let over = stop.clone();
        let spawned = thread::Builder::new()
            .name(format!("mcp-handler-{}", shared.name))
            .spawn(move || {
                let answer = handler::answer_parts(
                    &*shared.handler,
                    shared.support,
                    (&shared.name, shared.caller.as_deref()),
                    &method,
                    &params,
                    &over,
                );
                let _ = tx.send((key, method, answer));
            });
        if let Err(e) = spawned {
            return Err(Error::spawn("a handler thread", e));
        }
    }
    drop(tx);
    // Without a cancel handle, a channel that never fires (a dropped sender would make
    // the `select!` below see a disconnected channel at once).
    let cancel_rx = match ctx.cancel {
        Some(c) => {
            let (ctx_tx, ctx_rx) = bounded::<()>(1);
            let guard = c.on_cancel(move || {
                let _ = ctx_tx.try_send(());
            });
            (ctx_rx, Some(guard))
        }
        None => (crossbeam_channel::never(), None),
    };
    let mut responses = Map::new();
    while responses.len() < requests.len() {
        crossbeam_channel::select! {
            recv(rx) -> answer => match answer {
                Ok((key, _, Ok(result))) => {
                    responses.insert(key, result);
                }
                Ok((_, method, Err(e))) => {
                    return Err(Error::InputRefused { method, reason: e.message })
                }
                Err(_) => break,
            },
            recv(cancel_rx.0) -> _ => return Err(Error::Cancelled),
            recv(crossbeam_channel::at(ctx.deadline.at())) -> _ => return Err(ctx.deadline.expired(Phase::Request)),
            // The session may end while a handler waits on a user: looked at now and then.
            recv(crossbeam_channel::after(ROUND_CHECK)) -> _ => {
                if !shared.lifecycle.is_ready() {
                    return Err(shared.closed_error());
                }
            }
        }
    }
    Ok(responses)
}
