//! Tools: the static tool table and its JSON form, the dynamic tools (`--extra-tools`, those
//! `list_changed` adds, and the `--bad-tool-entry` entries), argument helpers, and the
//! well-behaved tools. The tools that misbehave on purpose live in `faults.rs`; those of
//! multi round-trip requests in `mrtr.rs`, of subscriptions in `listen.rs`, of tasks in
//! `tasks.rs`, of URL elicitation and server-side cancels in `elicit.rs`.

use serde_json::{json, Map, Number, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::dispatch::{ClientCtx, Generation, LOG_LEVELS};
use super::elicit::{
    tool_ask_then_cancel, tool_ask_url, tool_elicitation_complete, tool_url_required,
};
use super::faults::{
    tool_block, tool_crash, tool_duplicate_id, tool_exit_stdout, tool_flood_requests, tool_garbage,
    tool_hang, tool_kill_self, tool_late, tool_no_content, tool_opaque_content, tool_oversize,
    tool_refuse_next, tool_result_type, tool_spawn_background, tool_stderr_flood,
    tool_stop_reading, tool_wrong_id,
};
use super::listen::{announce, tool_end_listens, tool_listen_streams, tool_notify_changed, Topic};
use super::mrtr::{
    tool_mrtr_elicit, tool_mrtr_forever, tool_mrtr_many, tool_mrtr_multi, tool_mrtr_roots,
    tool_mrtr_rounds, tool_mrtr_sampling, tool_mrtr_state_only, tool_mrtr_url,
};
use super::state::{lock, Shared, Slot};
use super::tasks::{task_support, tool_task_job, tool_task_only};
use super::wire::{invalid_params, Outcome, RpcError};

/// Everything a tool function gets.
pub(super) struct Call {
    pub(super) id: Value,
    pub(super) tool: String,
    pub(super) args: Map<String, Value>,
    pub(super) progress_token: Option<Value>,
    pub(super) client: ClientCtx,
    pub(super) slot: Arc<Slot>,
    /// `params.inputResponses` and `params.requestState` (multi round-trip requests).
    pub(super) input_responses: Option<Value>,
    pub(super) request_state: Option<Value>,
    /// `params._meta` as received.
    pub(super) meta: Option<Value>,
}

pub(super) type ToolFn = fn(&Shared, &Call) -> Outcome;

#[derive(Clone, Copy)]
enum Hints {
    Plain,
    ReadOnly,
    Destructive,
    Idempotent,
}

struct Param {
    name: &'static str,
    /// JSON Schema type, or "" for any value.
    ty: &'static str,
    required: bool,
}

const fn req(name: &'static str, ty: &'static str) -> Param {
    Param {
        name,
        ty,
        required: true,
    }
}

const fn opt(name: &'static str, ty: &'static str) -> Param {
    Param {
        name,
        ty,
        required: false,
    }
}

struct ToolDef {
    name: &'static str,
    description: &'static str,
    params: &'static [Param],
    hints: Hints,
    threaded: bool,
    run: ToolFn,
}

impl ToolDef {
    fn to_json(&self, generation: Generation) -> Value {
        let mut properties = Map::new();
        for p in self.params {
            let schema = if p.ty.is_empty() {
                json!({})
            } else {
                json!({ "type": p.ty })
            };
            properties.insert(p.name.into(), schema);
        }
        let required: Vec<&str> = self
            .params
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name)
            .collect();
        let mut schema = json!({"type": "object", "properties": properties});
        if let (false, Some(obj)) = (required.is_empty(), schema.as_object_mut()) {
            obj.insert("required".into(), json!(required));
        }
        let mut tool = json!({
            "name": self.name, "description": self.description, "inputSchema": schema
        });
        let annotations = match self.hints {
            Hints::Plain => Value::Null,
            Hints::ReadOnly => json!({"readOnlyHint": true}),
            Hints::Destructive => {
                json!({"readOnlyHint": false, "idempotentHint": false, "destructiveHint": true})
            }
            Hints::Idempotent => {
                json!({"readOnlyHint": false, "idempotentHint": true, "destructiveHint": false})
            }
        };
        let output_schema = match self.name {
            "add" => json!({
                "type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]
            }),
            "structured" => json!({"type": "object", "properties": {
                "answer": {"type": "integer"},
                "items": {"type": "array", "items": {"type": "integer"}}
            }, "required": ["answer", "items"]}),
            "bad_structured" | "good_structured" => json!({
                "type": "object", "properties": {"count": {"type": "integer"}}, "required": ["count"]
            }),
            _ => Value::Null,
        };
        // 2025-11-25 tool-level task negotiation (the 2026 extension has no such field).
        let execution = match (generation, task_support(self.name)) {
            (Generation::Handshake, Some(support)) => json!({"taskSupport": support.as_str()}),
            _ => Value::Null,
        };
        if let Some(obj) = tool.as_object_mut() {
            for (key, value) in [
                ("annotations", annotations),
                ("outputSchema", output_schema),
                ("execution", execution),
            ] {
                if !value.is_null() {
                    obj.insert(key.into(), value);
                }
            }
        }
        tool
    }
}

/// `tool!("name" => function, hints [+ threaded], "description", [params])`.
macro_rules! tool {
    ($name:literal => $run:ident, $hints:ident $(+ $t:ident)?, $desc:literal, [$($p:expr),*]) => {
        ToolDef {
            name: $name,
            description: $desc,
            params: &[$($p),*],
            hints: Hints::$hints,
            threaded: tool!(@threaded $($t)?),
            run: $run,
        }
    };
    (@threaded) => { false };
    (@threaded threaded) => { true };
}

#[rustfmt::skip]
static TOOLS: &[ToolDef] = &[
    tool!("echo" => tool_echo, ReadOnly, "Returns `text` verbatim.", [req("text", "string")]),
    tool!("add" => tool_add, ReadOnly, "Adds two numbers.",
        [req("a", "number"), req("b", "number")]),
    tool!("structured" => tool_structured, ReadOnly, "Returns structured content.", []),
    tool!("fail" => tool_fail, Plain, "Returns isError with `message`.",
        [opt("message", "string")]),
    tool!("rpc_error" => tool_rpc_error, Plain, "Answers a JSON-RPC error.",
        [opt("code", "integer"), opt("message", "string")]),
    tool!("sleep" => tool_sleep, Plain + threaded, "Sleeps `ms`, with optional progress.",
        [req("ms", "integer"), opt("progress_steps", "integer")]),
    tool!("slow_read" => tool_sleep, ReadOnly + threaded, "Like `sleep`, annotated read-only.",
        [req("ms", "integer"), opt("progress_steps", "integer")]),
    tool!("slow_write" => tool_sleep, Destructive + threaded, "Like `sleep`, annotated destructive.",
        [req("ms", "integer"), opt("progress_steps", "integer")]),
    tool!("hang" => tool_hang, Plain + threaded, "Never answers.", []),
    tool!("late" => tool_late, Plain + threaded, "Sleeps `ms`, ignoring cancellation.",
        [req("ms", "integer")]),
    tool!("stop_reading" => tool_stop_reading, Plain, "Stops reading stdin for good.", []),
    tool!("crash" => tool_crash, Plain, "Exits the process without answering.",
        [opt("code", "integer"), opt("after_ms", "integer")]),
    tool!("kill_self" => tool_kill_self, Plain, "Kills itself with `signal`.",
        [opt("signal", "integer")]),
    tool!("garbage" => tool_garbage, Plain, "Writes a non-JSON line, then answers.", []),
    tool!("oversize" => tool_oversize, Plain, "Answers `bytes` x characters.",
        [req("bytes", "integer")]),
    tool!("stderr_flood" => tool_stderr_flood, Plain, "Writes `bytes` bytes to stderr.",
        [req("bytes", "integer")]),
    tool!("ask_roots" => tool_ask_roots, Plain + threaded, "Sends roots/list to the client.", []),
    tool!("ask_sampling" => tool_ask_sampling, Plain + threaded,
        "Sends sampling/createMessage to the client.", []),
    tool!("ask_elicitation" => tool_ask_elicitation, Plain + threaded,
        "Sends elicitation/create to the client.", []),
    tool!("ping_client" => tool_ping_client, Plain + threaded, "Pings the client.", []),
    tool!("list_changed" => tool_list_changed, Plain, "Adds a tool, sends list_changed.", []),
    tool!("touch" => tool_touch, Plain, "Sends resources/updated for a subscribed `uri`.",
        [req("uri", "string")]),
    tool!("log" => tool_log, Plain, "Sends notifications/message.",
        [req("level", "string"), req("message", "")]),
    tool!("wrong_id" => tool_wrong_id, Plain, "Sends a response with a stray id first.", []),
    tool!("duplicate_id" => tool_duplicate_id, Plain, "Sends its response twice.", []),
    tool!("string_id_echo" => tool_string_id_echo, Plain, "Returns the request id as JSON.", []),
    tool!("count" => tool_count, Destructive, "Increments a per-process counter.", []),
    tool!("set" => tool_set, Idempotent, "Idempotent setter.", [req("value", "")]),
    tool!("exit_stdout" => tool_exit_stdout, Plain, "Closes stdout, exits 5 s later.", []),
    tool!("env" => tool_env, Plain, "Returns an environment variable.", [req("name", "string")]),
    tool!("cwd" => tool_cwd, Plain, "Returns the current directory.", []),
    tool!("client_caps" => tool_client_caps, Plain, "What the server knows of the client.", []),
    tool!("meta_echo" => tool_meta_echo, ReadOnly, "Returns the request's `_meta` as JSON.", []),
    tool!("refuse_next" => tool_refuse_next, Plain,
        "Answers the next `count` enveloped requests -32022.", [opt("count", "integer")]),
    tool!("spawn_background" => tool_spawn_background, Plain,
        "Spawns `sleep 1000` in the server's process group; answers its pid.", []),
    tool!("block" => tool_block, Destructive, "Blocks the main loop for `ms`.",
        [req("ms", "integer")]),
    tool!("progress_burst" => tool_progress_burst, Plain,
        "Sends `steps` progress reports right before its answer.", [req("steps", "integer")]),
    tool!("flood_requests" => tool_flood_requests, Plain,
        "Sends `count` requests to the client, then stops reading stdin; no answer.",
        [req("count", "integer"), req("id_bytes", "integer"), req("method_bytes", "integer")]),
    tool!("blob" => tool_oversize, ReadOnly, "Answers `bytes` x characters (read-only).",
        [req("bytes", "integer")]),
    tool!("mrtr_elicit" => tool_mrtr_elicit, ReadOnly,
        "MRTR: one form elicitation, then `hello NAME`.", [opt("with_state", "boolean")]),
    tool!("mrtr_sampling" => tool_mrtr_sampling, ReadOnly,
        "MRTR: one sampling request, then the sampled text.", []),
    tool!("mrtr_roots" => tool_mrtr_roots, ReadOnly, "MRTR: one roots/list, then its JSON.", []),
    tool!("mrtr_multi" => tool_mrtr_multi, ReadOnly,
        "MRTR: elicitation, sampling and roots in one round.", []),
    tool!("mrtr_many" => tool_mrtr_many, ReadOnly,
        "MRTR: `count` roots/list requests in one round, then `COUNT answered`.",
        [req("count", "integer")]),
    tool!("mrtr_rounds" => tool_mrtr_rounds, ReadOnly, "MRTR: `rounds` input_required rounds.",
        [req("rounds", "integer")]),
    tool!("mrtr_state_only" => tool_mrtr_state_only, ReadOnly,
        "MRTR: input_required with requestState only (load shedding).", [opt("rounds", "integer")]),
    tool!("mrtr_forever" => tool_mrtr_forever, ReadOnly, "MRTR: input_required forever.", []),
    tool!("mrtr_url" => tool_mrtr_url, ReadOnly,
        "MRTR: one URL-mode elicitation, then the action.", []),
    tool!("result_type" => tool_result_type, Plain, "Answers only `resultType: value`.",
        [req("value", "string")]),
    tool!("no_content" => tool_no_content, Plain, "Answers a result without `content`.", []),
    tool!("opaque_content" => tool_opaque_content, Plain,
        "Answers a text block and a block of an unknown type.", []),
    tool!("bad_structured" => tool_bad_structured, ReadOnly,
        "structuredContent that violates the outputSchema.", []),
    tool!("good_structured" => tool_good_structured, ReadOnly,
        "structuredContent that conforms to the outputSchema.", []),
    tool!("notify_changed" => tool_notify_changed, Plain,
        "Sends notifications/KIND/list_changed.", [req("kind", "string")]),
    tool!("end_listens" => tool_end_listens, Plain, "Ends subscriptions/listen streams.",
        [opt("id", ""), opt("mode", "string")]),
    tool!("listen_streams" => tool_listen_streams, ReadOnly,
        "The ids of the open subscriptions/listen streams.", []),
    tool!("task_job" => tool_task_job, Plain + threaded, "Sleeps `ms`, as a task if asked.",
        [req("ms", "integer"), opt("fail", "boolean")]),
    tool!("task_required" => tool_task_only, Plain, "Sleeps `ms`; only as a task.",
        [req("ms", "integer"), opt("fail", "boolean")]),
    tool!("task_input" => tool_task_only, Plain,
        "A task that needs one elicitation, then `hello NAME`.", [opt("settle_ms", "integer")]),
    tool!("ask_then_cancel" => tool_ask_then_cancel, Plain + threaded,
        "Sends elicitation/create, cancels it 100 ms later, answers.", []),
    tool!("ask_url" => tool_ask_url, Plain + threaded, "Sends a URL-mode elicitation/create.",
        [opt("id", "string")]),
    tool!("url_required" => tool_url_required, Plain, "Answers -32042 (URL elicitation required).",
        [opt("id", "string")]),
    tool!("elicitation_complete" => tool_elicitation_complete, Plain,
        "Sends notifications/elicitation/complete.", [req("id", "string")]),
];

/// The entries `--bad-tool-entry` adds to `tools/list` (the first two are callable echoes).
const BAD_TOOL_NAMES: [&str; 2] = ["bad_readonly_hint", "bad_description"];

fn bad_tool_entries() -> Vec<Value> {
    let schema = json!({"type": "object", "properties": {"text": {"type": "string"}}});
    vec![
        json!({"name": BAD_TOOL_NAMES[0], "description": "Its readOnlyHint is a string.",
               "inputSchema": schema, "annotations": {"readOnlyHint": "yes"}}),
        json!({"name": BAD_TOOL_NAMES[1], "description": 42, "inputSchema": schema}),
        json!({"description": "This entry has no name.", "inputSchema": schema}),
    ]
}

/// The tools of `tools/list`: the table, then `extra_*`, then `added_*`, then `header_echo`
/// and the `--http-bad-header-tools` entries (`http/headers.rs`), then the `--bad-tool-entry`
/// entries.
pub(super) fn tool_list(shared: &Shared, generation: Generation) -> Vec<Value> {
    let mut tools: Vec<Value> = TOOLS.iter().map(|t| t.to_json(generation)).collect();
    let added = shared.added_tools.load(Ordering::SeqCst);
    let dynamic = (0..shared.cfg.extra_tools)
        .map(|i| format!("extra_{i}"))
        .chain((0..added).map(|i| format!("added_{i}")));
    tools.extend(dynamic.map(|name| {
        json!({
            "name": name,
            "description": "Echoes `text` (or its arguments as JSON).",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}
        })
    }));
    tools.extend(super::http::http_tools(&shared.cfg));
    if shared.cfg.bad_tool_entry {
        tools.extend(bad_tool_entries());
    }
    tools
}

/// Returns (function, runs-on-own-thread) for a tool name.
pub(super) fn find_tool(shared: &Shared, name: &str) -> Option<(ToolFn, bool)> {
    if let Some(def) = TOOLS.iter().find(|t| t.name == name) {
        return Some((def.run, def.threaded));
    }
    if let Some(run) = super::http::find_http_tool(&shared.cfg, name) {
        return Some((run, false));
    }
    let index_below = |prefix: &str, limit: usize| {
        name.strip_prefix(prefix)
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n < limit)
    };
    let added = shared.added_tools.load(Ordering::SeqCst);
    if index_below("extra_", shared.cfg.extra_tools) || index_below("added_", added) {
        return Some((tool_dynamic_echo, false));
    }
    if shared.cfg.bad_tool_entry && BAD_TOOL_NAMES.contains(&name) {
        return Some((tool_dynamic_echo, false));
    }
    None
}

pub(super) fn text_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}]})
}

pub(super) fn error_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}

pub(super) fn ok(text: &str) -> Outcome {
    Ok(Some(text_result(text)))
}

pub(super) fn arg<'a>(call: &'a Call, name: &str) -> Option<&'a Value> {
    call.args.get(name).filter(|v| !v.is_null())
}

pub(super) fn bad_arg(call: &Call, name: &str, expected: &str) -> RpcError {
    let message = format!("{}: argument '{name}' must be {expected}", call.tool);
    invalid_params(message).with_data(json!({"tool": call.tool}))
}

pub(super) fn arg_str<'a>(call: &'a Call, name: &str) -> Result<&'a str, RpcError> {
    arg(call, name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad_arg(call, name, "a string"))
}

pub(super) fn arg_u64(call: &Call, name: &str, default: Option<u64>) -> Result<u64, RpcError> {
    match (arg(call, name), default) {
        (None, Some(d)) => Ok(d),
        (v, _) => v
            .and_then(Value::as_u64)
            .ok_or_else(|| bad_arg(call, name, "a non-negative integer")),
    }
}

pub(super) fn arg_bool(call: &Call, name: &str, default: bool) -> Result<bool, RpcError> {
    arg(call, name).map_or(Ok(default), |v| {
        v.as_bool().ok_or_else(|| bad_arg(call, name, "a boolean"))
    })
}

pub(super) fn arg_i64(call: &Call, name: &str, default: i64) -> Result<i64, RpcError> {
    arg(call, name).map_or(Ok(default), |v| {
        v.as_i64().ok_or_else(|| bad_arg(call, name, "an integer"))
    })
}

fn tool_echo(_: &Shared, call: &Call) -> Outcome {
    ok(arg_str(call, "text")?)
}

fn tool_dynamic_echo(_: &Shared, call: &Call) -> Outcome {
    match arg(call, "text").and_then(Value::as_str) {
        Some(text) => ok(text),
        None => ok(&Value::Object(call.args.clone()).to_string()),
    }
}

fn tool_add(_: &Shared, call: &Call) -> Outcome {
    let number = |name: &str| match arg(call, name) {
        Some(Value::Number(n)) => Ok(n.clone()),
        _ => Err(bad_arg(call, name, "a number")),
    };
    let (a, b) = (number("a")?, number("b")?);
    let sum = match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) if x.checked_add(y).is_some() => Some(Number::from(x + y)),
        _ => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(x, y)| Number::from_f64(x + y)),
    };
    match sum {
        Some(sum) => Ok(Some(json!({
            "content": [{"type": "text", "text": sum.to_string()}],
            "structuredContent": {"sum": sum}
        }))),
        None => Ok(Some(error_result("the sum is not a finite number"))),
    }
}

fn tool_bad_structured(_: &Shared, _: &Call) -> Outcome {
    // The outputSchema wants an integer `count`.
    let value = json!({"count": "three"});
    Ok(Some(json!({
        "content": [{"type": "text", "text": value.to_string()}],
        "structuredContent": value
    })))
}

fn tool_good_structured(_: &Shared, _: &Call) -> Outcome {
    let value = json!({"count": 3});
    Ok(Some(json!({
        "content": [{"type": "text", "text": value.to_string()}],
        "structuredContent": value
    })))
}

fn tool_structured(_: &Shared, _: &Call) -> Outcome {
    let value = json!({"answer": 42, "items": [1, 2, 3]});
    Ok(Some(json!({
        "content": [{"type": "text", "text": value.to_string()}],
        "structuredContent": value
    })))
}

fn tool_fail(_: &Shared, call: &Call) -> Outcome {
    let message = arg(call, "message").and_then(Value::as_str);
    Ok(Some(error_result(message.unwrap_or("tool failed"))))
}

fn tool_rpc_error(_: &Shared, call: &Call) -> Outcome {
    let code = arg_i64(call, "code", -32000)?;
    let message = arg(call, "message").and_then(Value::as_str);
    let message = message.unwrap_or("error requested by rpc_error");
    Err(RpcError::new(code, message).with_data(json!({"tool": "rpc_error"})))
}

pub(super) fn tool_sleep(shared: &Shared, call: &Call) -> Outcome {
    let ms = arg_u64(call, "ms", None)?;
    let steps = match call.progress_token {
        Some(_) => arg_u64(call, "progress_steps", Some(0))?,
        None => 0,
    };
    let start = Instant::now();
    let at = |elapsed_ms: u64| start.checked_add(Duration::from_millis(elapsed_ms));
    for i in 1..=steps {
        let elapsed = u128::from(ms) * u128::from(i) / u128::from(steps);
        if !call
            .slot
            .sleep_until(at(u64::try_from(elapsed).unwrap_or(ms)))
        {
            return Ok(None);
        }
        shared.notify(
            "notifications/progress",
            json!({"progressToken": call.progress_token, "progress": i, "total": steps,
                   "message": format!("step {i}")}),
        );
    }
    if !call.slot.sleep_until(at(ms)) {
        return Ok(None);
    }
    ok(&format!("slept {ms}"))
}

fn tool_progress_burst(shared: &Shared, call: &Call) -> Outcome {
    // On the main loop: the reports go out back to back, immediately followed by the answer.
    let steps = arg_u64(call, "steps", None)?;
    if let Some(token) = &call.progress_token {
        for i in 1..=steps {
            shared.notify(
                "notifications/progress",
                json!({"progressToken": token, "progress": i, "total": steps,
                       "message": format!("step {i}")}),
            );
        }
    }
    ok(&format!("burst {steps}"))
}

/// Shared body of the ask_* tools: text is the JSON of the result, or of the error object.
pub(super) fn ask_tool(shared: &Shared, call: &Call, method: &str, params: Value) -> Outcome {
    let Some(reply) = shared.ask_client(&call.slot, method, Some(params)) else {
        return Ok(None);
    };
    let shown = reply
        .get("result")
        .or_else(|| reply.get("error"))
        .unwrap_or(&reply);
    ok(&shown.to_string())
}

fn tool_ask_roots(shared: &Shared, call: &Call) -> Outcome {
    ask_tool(shared, call, "roots/list", json!({}))
}

fn tool_ask_sampling(shared: &Shared, call: &Call) -> Outcome {
    let params = json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}],
        "maxTokens": 10
    });
    ask_tool(shared, call, "sampling/createMessage", params)
}

fn tool_ask_elicitation(shared: &Shared, call: &Call) -> Outcome {
    let params = json!({
        "mode": "form",
        "message": "name?",
        "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}
    });
    ask_tool(shared, call, "elicitation/create", params)
}

fn tool_ping_client(shared: &Shared, call: &Call) -> Outcome {
    let Some(reply) = shared.ask_client(&call.slot, "ping", None) else {
        return Ok(None);
    };
    match reply.get("result") {
        Some(_) => ok("pong"),
        None => Ok(Some(error_result(
            &reply.get("error").unwrap_or(&reply).to_string(),
        ))),
    }
}

fn tool_list_changed(shared: &Shared, call: &Call) -> Outcome {
    shared.added_tools.fetch_add(1, Ordering::SeqCst);
    announce(shared, &call.client, Topic::Tools);
    ok("ok")
}

fn tool_touch(shared: &Shared, call: &Call) -> Outcome {
    let uri = arg_str(call, "uri")?;
    let params = json!({"uri": uri});
    // Subscribed with resources/subscribe: the plain notification; subscribed on listen
    // streams (per-request generation): the tagged one on each of them.
    let legacy = lock(&shared.subscriptions).contains(uri);
    if legacy {
        shared.notify("notifications/resources/updated", params.clone());
    }
    let streams = super::listen::publish(
        shared,
        &Topic::Resource(uri),
        "notifications/resources/updated",
        &params,
    );
    if !legacy && streams == 0 {
        return ok(&format!("not subscribed: {uri}"));
    }
    ok("ok")
}

fn tool_log(shared: &Shared, call: &Call) -> Outcome {
    let level = arg_str(call, "level")?;
    let index = LOG_LEVELS.iter().position(|l| *l == level);
    let index = index.ok_or_else(|| bad_arg(call, "level", "a syslog level name"))?;
    let message = arg(call, "message").ok_or_else(|| bad_arg(call, "message", "present"))?;
    // Per-request generation: the request's `_meta` logLevel decides; without one, nothing
    // with --strict-per-request, else the level of logging/setLevel as in the handshake one.
    let min = match (call.client.is_stateless(), call.client.log_level) {
        (true, Some(requested)) => Some(requested),
        (true, None) if shared.cfg.strict_per_request => return ok("suppressed"),
        _ => *lock(&shared.log_level),
    };
    if min.is_some_and(|min| index < min) {
        return ok("suppressed");
    }
    let params = json!({"level": level, "logger": "fake", "data": message});
    shared.notify("notifications/message", params);
    ok("ok")
}

fn tool_string_id_echo(_: &Shared, call: &Call) -> Outcome {
    ok(&call.id.to_string())
}

fn tool_count(shared: &Shared, _: &Call) -> Outcome {
    ok(&(shared.counter.fetch_add(1, Ordering::SeqCst) + 1).to_string())
}

fn tool_set(_: &Shared, call: &Call) -> Outcome {
    arg(call, "value").ok_or_else(|| bad_arg(call, "value", "present"))?;
    ok("ok")
}

fn tool_env(_: &Shared, call: &Call) -> Outcome {
    let name = arg_str(call, "name")?;
    let valid = !name.is_empty() && !name.contains(['=', '\0']);
    match std::env::var_os(name).filter(|_| valid) {
        Some(v) => ok(&v.to_string_lossy()),
        None => ok("<unset>"),
    }
}

fn tool_cwd(_: &Shared, _: &Call) -> Outcome {
    match std::env::current_dir() {
        Ok(dir) => ok(&dir.display().to_string()),
        Err(e) => Ok(Some(error_result(&format!("current_dir: {e}")))),
    }
}

fn tool_client_caps(_: &Shared, call: &Call) -> Outcome {
    let generation = match call.client.generation {
        Generation::Handshake => "handshake",
        Generation::Stateless => "stateless",
    };
    let value = json!({
        "generation": generation,
        "protocolVersion": call.client.protocol_version,
        "capabilities": call.client.capabilities,
        "clientInfo": call.client.client_info
    });
    Ok(Some(json!({
        "content": [{"type": "text", "text": value.to_string()}],
        "structuredContent": value
    })))
}

fn tool_meta_echo(_: &Shared, call: &Call) -> Outcome {
    let meta = call.meta.clone().unwrap_or(Value::Null);
    let mut result = text_result(&meta.to_string());
    if let (true, Some(obj)) = (meta.is_object(), result.as_object_mut()) {
        obj.insert("structuredContent".into(), meta);
    }
    Ok(Some(result))
}
