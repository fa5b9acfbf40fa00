//! Tasks. Handshake generation, 2025-11-25: `tools/call` with `params.task` answers a
//! `CreateTaskResult`; `tasks/get`, `tasks/result` (blocks until the task ends), `tasks/list`,
//! `tasks/cancel`, `notifications/tasks/status`. Per-request generation, the 2026 tasks
//! extension (`io.modelcontextprotocol/tasks`, only for requests that declare it):
//! `resultType: "task"`, `tasks/get`, `tasks/update`, `tasks/cancel`, `notifications/tasks` on
//! listen streams that asked for the task. The task tools `task_job`, `task_required` and
//! `task_input`; each task runs on a thread of its own and is kept for the life of the process.

use serde_json::{json, Map, Value};
use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::catalog::paginate;
use super::dispatch::{ClientCtx, Generation};
use super::listen::{publish, Topic};
use super::mrtr::{greeting, require_form};
use super::state::{lock, ActiveGuard, Shared, Slot};
use super::tools::{arg_bool, arg_u64, error_result, text_result, tool_sleep, Call};
use super::wire::{
    invalid_params, method_not_found, missing_capability, Outcome, RpcError, INTERNAL_ERROR,
    METHOD_NOT_FOUND,
};

pub(super) const TASKS_EXTENSION: &str = "io.modelcontextprotocol/tasks";
const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";
/// The `ttl` / `ttlMs` of a task when the client asks for none (never enforced).
const TASK_TTL_MS: u64 = 300_000;

/// 2025-11-25 `execution.taskSupport` of the task tools (absent: "forbidden").
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Support {
    Optional,
    Required,
}

impl Support {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Support::Optional => "optional",
            Support::Required => "required",
        }
    }
}

pub(super) fn task_support(tool: &str) -> Option<Support> {
    match tool {
        "task_job" => Some(Support::Optional),
        "task_required" | "task_input" => Some(Support::Required),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Working,
    InputRequired,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Working => "working",
            Status::InputRequired => "input_required",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }
}

/// What a task's thread does.
enum Job {
    /// Sleep `ms`, then `slept MS` (or, with `fail`, the JSON-RPC error -32603 `job failed`).
    Sleep { ms: u64, fail: bool },
    /// One elicitation of `name` through the task, then `hello NAME`; 2026: still
    /// `input_required` for `settle_ms` after the answer came.
    Input { settle_ms: u64 },
}

pub(super) struct Task {
    id: String,
    generation: Generation,
    /// Cancelled by `tasks/cancel`; gets the `inputResponses` of `tasks/update` (2026) or
    /// the client's answer to the task's `elicitation/create` (2025).
    slot: Arc<Slot>,
    state: Mutex<TaskState>,
    changed: Condvar,
}

struct TaskState {
    status: Status,
    message: Option<String>,
    created_at: String,
    updated_at: String,
    ttl: Option<u64>,
    /// The tool's result (completed; or failed with `isError` in 2025-11-25).
    result: Option<Value>,
    /// The JSON-RPC error object (failed).
    error: Option<Value>,
    /// Outstanding input requests (2026, `input_required`).
    input_requests: Option<Value>,
}

impl Task {
    /// The `Task` object of the task's generation.
    fn json(&self, shared: &Shared, st: &TaskState) -> Value {
        let poll = shared.cfg.task_poll_ms();
        let (ttl_key, poll_key) = match self.generation {
            Generation::Handshake => ("ttl", "pollInterval"),
            Generation::Stateless => ("ttlMs", "pollIntervalMs"),
        };
        let mut task = Map::new();
        task.insert("taskId".into(), self.id.clone().into());
        task.insert("status".into(), st.status.as_str().into());
        if let Some(message) = &st.message {
            task.insert("statusMessage".into(), message.clone().into());
        }
        task.insert("createdAt".into(), st.created_at.clone().into());
        task.insert("lastUpdatedAt".into(), st.updated_at.clone().into());
        task.insert(ttl_key.into(), st.ttl.map_or(Value::Null, Value::from));
        task.insert(poll_key.into(), poll.into());
        Value::Object(task)
    }

    /// 2026 `DetailedTask`: the `Task` plus `inputRequests`, `result` or `error`.
    fn detailed(&self, shared: &Shared, st: &TaskState) -> Value {
        let mut task = self.json(shared, st);
        let extra = match st.status {
            Status::InputRequired => ("inputRequests", st.input_requests.clone()),
            Status::Completed => ("result", st.result.clone()),
            Status::Failed => ("error", st.error.clone()),
            _ => ("", None),
        };
        if let (Some(value), Some(obj)) = (extra.1, task.as_object_mut()) {
            obj.insert(extra.0.into(), value);
        }
        task
    }

    /// Moves to `status` unless the task has ended; sends the status notification.
    fn transition<F>(&self, shared: &Shared, status: Status, message: &str, update: F) -> bool
    where
        F: FnOnce(&mut TaskState),
    {
        let mut st = lock(&self.state);
        if st.status.is_terminal() {
            return false;
        }
        st.status = status;
        st.message = Some(message.to_string());
        st.updated_at = now_iso8601();
        update(&mut st);
        match self.generation {
            Generation::Handshake => {
                shared.notify("notifications/tasks/status", self.json(shared, &st));
            }
            Generation::Stateless => {
                let params = self.detailed(shared, &st);
                publish(
                    shared,
                    &Topic::Task(&self.id),
                    "notifications/tasks",
                    &params,
                );
            }
        }
        drop(st);
        self.changed.notify_all();
        true
    }

    /// The tool returned a result: completed (2025-11-25: failed if `isError`). The result is
    /// stored as `tools/call` would have answered it (with `resultType` in 2026).
    fn finish(&self, shared: &Shared, result: Value) {
        let result = shared.finish(result);
        let is_error = result.get("isError").and_then(Value::as_bool) == Some(true);
        let (status, message) = match (self.generation, is_error) {
            (Generation::Handshake, true) => (Status::Failed, "The tool returned isError."),
            _ => (Status::Completed, "The operation completed."),
        };
        self.transition(shared, status, message, |st| st.result = Some(result));
    }

    /// The tool failed with a JSON-RPC error.
    fn fail(&self, shared: &Shared, error: &RpcError) {
        let error = error.to_json();
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("failed");
        let message = format!("Tool execution failed: {message}");
        self.transition(shared, Status::Failed, &message, |st| {
            st.error = Some(error)
        });
    }

    /// What `tasks/result` answers for an ended task.
    fn final_outcome(&self, st: &TaskState) -> Outcome {
        if let Some(result) = &st.result {
            let mut result = result.clone();
            if let Some(obj) = result.as_object_mut() {
                let meta = obj.entry("_meta").or_insert_with(|| json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    meta.insert(RELATED_TASK.into(), json!({"taskId": self.id}));
                }
            }
            return Ok(Some(result));
        }
        if let Some(error) = &st.error {
            return Err(RpcError::from_json(error));
        }
        Err(
            invalid_params(format!("task {} was cancelled: it has no result", self.id))
                .with_data(json!({"taskId": self.id, "status": st.status.as_str()})),
        )
    }
}

/// Decides whether a `tools/call` becomes a task (or is refused for want of one); `None`:
/// serve it as usual. The `CreateTaskResult` is sent from here, before the task's thread
/// starts, so no status notification can come first.
pub(super) fn intercept(
    shared: &Arc<Shared>,
    call: &Call,
    task_param: Option<&Value>,
) -> Option<Outcome> {
    let support = task_support(&call.tool);
    let ttl = match call.client.generation {
        Generation::Handshake => match (task_param.filter(|t| !t.is_null()), support) {
            (None, Some(Support::Required)) => {
                let message = format!(
                    "tool {} requires task augmentation (params.task)",
                    call.tool
                );
                return Some(Err(RpcError::new(METHOD_NOT_FOUND, message)));
            }
            (None, _) => return None,
            (Some(_), None) => {
                let message = format!("tool {} does not support task augmentation", call.tool);
                return Some(Err(RpcError::new(METHOD_NOT_FOUND, message)));
            }
            (Some(Value::Object(t)), Some(_)) => match t.get("ttl") {
                None | Some(Value::Null) => Some(TASK_TTL_MS),
                Some(v) => match v.as_u64() {
                    Some(ttl) => Some(ttl),
                    None => return Some(Err(invalid_params("params.task.ttl must be an integer"))),
                },
            },
            (Some(_), Some(_)) => {
                return Some(Err(invalid_params("params.task must be an object")))
            }
        },
        Generation::Stateless => match (support, call.client.has_tasks_extension()) {
            (Some(_), true) => Some(TASK_TTL_MS),
            (Some(Support::Required), false) => {
                let required = json!({"extensions": {TASKS_EXTENSION: {}}});
                return Some(Err(missing_capability(required)));
            }
            _ => return None,
        },
    };
    Some(create(shared, call, ttl))
}

fn create(shared: &Arc<Shared>, call: &Call, ttl: Option<u64>) -> Outcome {
    let job = match call.tool.as_str() {
        "task_input" => {
            if call.client.is_stateless() {
                require_form(&call.client.capabilities)?;
            }
            Job::Input {
                settle_ms: arg_u64(call, "settle_ms", Some(0))?,
            }
        }
        _ => Job::Sleep {
            ms: arg_u64(call, "ms", None)?,
            fail: arg_bool(call, "fail", false)?,
        },
    };
    let now = now_iso8601();
    let task = Arc::new(Task {
        id: random_id(),
        generation: call.client.generation,
        slot: Arc::new(Slot::default()),
        state: Mutex::new(TaskState {
            status: Status::Working,
            message: Some("The operation is now in progress.".into()),
            created_at: now.clone(),
            updated_at: now,
            ttl,
            result: None,
            error: None,
            input_requests: None,
        }),
        changed: Condvar::new(),
    });
    lock(&shared.tasks).push(Arc::clone(&task));
    let created = {
        let st = lock(&task.state);
        match task.generation {
            Generation::Handshake => json!({"task": task.json(shared, &st)}),
            Generation::Stateless => {
                let mut result = task.json(shared, &st);
                if let Some(obj) = result.as_object_mut() {
                    obj.insert("resultType".into(), "task".into());
                }
                result
            }
        }
    };
    shared.respond(&call.id, Ok(Some(created)));
    let guard = ActiveGuard::new(shared);
    let worker = Arc::clone(&task);
    let spawned = thread::Builder::new()
        .name(format!("task-{}", call.tool))
        .spawn(move || run(&guard.0, &worker, job));
    if let Err(e) = spawned {
        task.fail(
            shared,
            &RpcError::new(INTERNAL_ERROR, format!("cannot spawn: {e}")),
        );
    }
    Ok(None)
}

fn job_failed() -> RpcError {
    RpcError::new(INTERNAL_ERROR, "job failed").with_data(json!({"tool": "task_job"}))
}

/// A task's thread.
fn run(shared: &Shared, task: &Task, job: Job) {
    match job {
        Job::Sleep { ms, fail } => {
            let deadline = Instant::now().checked_add(Duration::from_millis(ms));
            if !task.slot.sleep_until(deadline) {
                return; // cancelled: tasks/cancel has set the status
            }
            match fail {
                true => task.fail(shared, &job_failed()),
                false => task.finish(shared, text_result(&format!("slept {ms}"))),
            }
        }
        Job::Input { settle_ms } => {
            let waiting = "Waiting for the user's name.";
            let params = json!({
                "mode": "form",
                "message": "What is your name?",
                "requestedSchema": {
                    "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]
                }
            });
            let answer = match task.generation {
                Generation::Handshake => {
                    task.transition(shared, Status::InputRequired, waiting, |_| {});
                    let mut params = params;
                    if let Some(obj) = params.as_object_mut() {
                        let meta = json!({ RELATED_TASK: {"taskId": task.id} });
                        obj.insert("_meta".into(), meta);
                    }
                    let Some(reply) =
                        shared.ask_client(&task.slot, "elicitation/create", Some(params))
                    else {
                        return;
                    };
                    task.transition(shared, Status::Working, "Got the name.", |_| {});
                    match reply.get("result") {
                        Some(result) => greeting(result, "name"),
                        None => {
                            let error = reply.get("error").unwrap_or(&reply).to_string();
                            return task.finish(shared, error_result(&error));
                        }
                    }
                }
                Generation::Stateless => {
                    let request = json!({"method": "elicitation/create", "params": params});
                    let requests = json!({ "name": request });
                    task.transition(shared, Status::InputRequired, waiting, |st| {
                        st.input_requests = Some(requests)
                    });
                    let responses = loop {
                        match task.slot.wait_reply() {
                            None => return, // cancelled
                            Some(r) if r.get("name").is_some() => break r,
                            Some(_) => {}
                        }
                    };
                    // Eventually consistent: the answer is in, the status not yet.
                    let settled = Instant::now().checked_add(Duration::from_millis(settle_ms));
                    if settle_ms > 0 && !task.slot.sleep_until(settled) {
                        return; // cancelled
                    }
                    task.transition(shared, Status::Working, "Got the name.", |st| {
                        st.input_requests = None
                    });
                    greeting(&responses["name"], "name")
                }
            };
            match answer {
                Ok(text) => task.finish(shared, text_result(&text)),
                Err(e) => task.fail(shared, &e),
            }
        }
    }
}

/// `task_job` called without a task: like `sleep` (text `slept MS`), or -32603 with `fail`.
pub(super) fn tool_task_job(shared: &Shared, call: &Call) -> Outcome {
    let fail = arg_bool(call, "fail", false)?;
    match tool_sleep(shared, call)? {
        None => Ok(None),
        Some(_) if fail => Err(job_failed()),
        Some(result) => Ok(Some(result)),
    }
}

/// `task_required` and `task_input` never run outside a task (`intercept` refuses them).
pub(super) fn tool_task_only(_: &Shared, call: &Call) -> Outcome {
    let message = format!("tool {} runs only as a task", call.tool);
    Err(RpcError::new(INTERNAL_ERROR, message))
}

/// The task `params.taskId` names; -32602 if there is none.
pub(super) fn find(shared: &Shared, params: &Map<String, Value>) -> Result<Arc<Task>, RpcError> {
    let id = params
        .get("taskId")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_params("taskId must be a string"))?;
    let tasks = lock(&shared.tasks);
    let task = tasks.iter().find(|t| t.id == id).cloned();
    task.ok_or_else(|| invalid_params("Failed to retrieve task: Task not found"))
}

/// `tasks/result` (2025-11-25), on a thread: waits for the task to end (or for `slot`, the
/// request's, to be cancelled), then answers what the tool call would have.
pub(super) fn wait_result(_: &Shared, task: &Task, slot: &Slot) -> Outcome {
    let mut st = lock(&task.state);
    loop {
        if st.status.is_terminal() {
            return task.final_outcome(&st);
        }
        st = match task.changed.wait_timeout(st, Duration::from_millis(20)) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        };
        if slot.is_cancelled() {
            return Ok(None);
        }
    }
}

/// `tasks/get`, `tasks/list`, `tasks/cancel`, `tasks/update` (`tasks/result` is
/// `wait_result`). The 2026 extension has no `tasks/list`, 2025-11-25 no `tasks/update`.
pub(super) fn request(
    shared: &Shared,
    method: &str,
    params: &Map<String, Value>,
    client: &ClientCtx,
) -> Result<Value, RpcError> {
    let stateless = client.is_stateless();
    if (stateless && method == "tasks/list") || (!stateless && method == "tasks/update") {
        return Err(method_not_found(method));
    }
    if stateless && !client.has_tasks_extension() {
        return Err(missing_capability(
            json!({"extensions": {TASKS_EXTENSION: {}}}),
        ));
    }
    if method == "tasks/list" {
        let tasks: Vec<Arc<Task>> = lock(&shared.tasks).clone();
        let items = tasks
            .iter()
            .map(|t| t.json(shared, &lock(&t.state)))
            .collect();
        return paginate(&shared.cfg, params, "tasks", items);
    }
    let task = find(shared, params)?;
    match method {
        "tasks/get" => {
            let st = lock(&task.state);
            Ok(match stateless {
                false => task.json(shared, &st),
                true => {
                    let mut result = task.detailed(shared, &st);
                    if let Some(obj) = result.as_object_mut() {
                        obj.insert("resultType".into(), "complete".into());
                    }
                    result
                }
            })
        }
        "tasks/cancel" => {
            let status = lock(&task.state).status;
            if status.is_terminal() && !stateless {
                return Err(invalid_params(format!(
                    "Cannot cancel task: already in terminal status '{}'",
                    status.as_str()
                )));
            }
            let message = "The task was cancelled by request.";
            task.transition(shared, Status::Cancelled, message, |_| {});
            task.slot.cancel();
            Ok(match stateless {
                false => task.json(shared, &lock(&task.state)),
                true => json!({"resultType": "complete"}),
            })
        }
        _ => {
            // tasks/update: responses for outstanding keys reach the task; others are ignored.
            let responses = params
                .get("inputResponses")
                .and_then(Value::as_object)
                .ok_or_else(|| invalid_params("tasks/update: inputResponses must be an object"))?;
            let st = lock(&task.state);
            if let (Status::InputRequired, Some(Value::Object(outstanding))) =
                (st.status, &st.input_requests)
            {
                let answered: Map<String, Value> = responses
                    .iter()
                    .filter(|(key, _)| outstanding.contains_key(*key))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !answered.is_empty() {
                    task.slot.deliver(Value::Object(answered));
                }
            }
            Ok(json!({"resultType": "complete"}))
        }
    }
}

/// Now as an ISO 8601 UTC timestamp with milliseconds: `2026-08-22T10:01:07.123Z`.
fn now_iso8601() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A random UUID (version 4) from /dev/urandom; a time-and-counter hash if it is missing.
fn random_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut b = [0u8; 16];
    let read = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if read.is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mix = |x: u64| x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        b[..8].copy_from_slice(&mix(nanos ^ u64::from(std::process::id())).to_le_bytes());
        b[8..].copy_from_slice(&mix(n ^ nanos.rotate_left(17)).to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_687), (2026, 8, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
