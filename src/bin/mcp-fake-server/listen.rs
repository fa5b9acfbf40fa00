//! `subscriptions/listen` (per-request generation, stdio): opening a stream (the
//! acknowledgement), delivering opted-in change notifications tagged with
//! `_meta["io.modelcontextprotocol/subscriptionId"]`, the client's `notifications/cancelled`
//! ending one, and the server ending them (`end_listens`); how change notifications reach a
//! connection of either generation (`list_changed`, `notify_changed`, `touch`, task status).

use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;

use super::dispatch::ClientCtx;
use super::state::{lock, Shared};
use super::tasks::TASKS_EXTENSION;
use super::tools::{arg, arg_str, bad_arg, ok, Call};
use super::wire::{invalid_params, missing_capability, Outcome};

pub(super) const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// One open stream: the listen request's id and what it opted in to.
pub(super) struct Listen {
    id: Value,
    tools: bool,
    prompts: bool,
    resources: bool,
    uris: Vec<String>,
    task_ids: Vec<String>,
}

/// What a change notification is about.
pub(super) enum Topic<'a> {
    Tools,
    Prompts,
    Resources,
    Resource(&'a str),
    Task(&'a str),
}

impl Listen {
    fn wants(&self, topic: &Topic<'_>) -> bool {
        match topic {
            Topic::Tools => self.tools,
            Topic::Prompts => self.prompts,
            Topic::Resources => self.resources,
            Topic::Resource(uri) => self.uris.iter().any(|u| u == uri),
            Topic::Task(id) => self.task_ids.iter().any(|t| t == id),
        }
    }

    /// The filter the server agreed to honour: what was asked for, without `false` flags and
    /// empty lists.
    fn agreed(&self) -> Value {
        let mut filter = Map::new();
        for (key, on) in [
            ("toolsListChanged", self.tools),
            ("promptsListChanged", self.prompts),
            ("resourcesListChanged", self.resources),
        ] {
            if on {
                filter.insert(key.into(), true.into());
            }
        }
        for (key, list) in [
            ("resourceSubscriptions", &self.uris),
            ("taskIds", &self.task_ids),
        ] {
            if !list.is_empty() {
                filter.insert(key.into(), json!(list));
            }
        }
        Value::Object(filter)
    }
}

/// `params` with `_meta["io.modelcontextprotocol/subscriptionId"] = id` added.
fn tagged(params: &Value, id: &Value) -> Value {
    let mut params = match params {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(META_SUBSCRIPTION_ID.into(), id.clone());
    }
    Value::Object(params)
}

/// `subscriptions/listen`: validates the filter, sends the acknowledgement, keeps the stream
/// open (no response until the server ends it).
pub(super) fn open(
    shared: &Shared,
    id: &Value,
    params: &Map<String, Value>,
    client: &ClientCtx,
) -> Outcome {
    let filter = params
        .get("notifications")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid_params("subscriptions/listen: notifications must be an object"))?;
    let flag = |key: &str| match filter.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid_params(format!(
            "subscriptions/listen: notifications.{key} must be a boolean"
        ))),
    };
    let list = |key: &str| match filter.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| {
                invalid_params(format!(
                    "subscriptions/listen: notifications.{key} must be an array of strings"
                ))
            }),
        Some(_) => Err(invalid_params(format!(
            "subscriptions/listen: notifications.{key} must be an array of strings"
        ))),
    };
    let listen = Listen {
        id: id.clone(),
        tools: flag("toolsListChanged")?,
        prompts: flag("promptsListChanged")?,
        resources: flag("resourcesListChanged")?,
        uris: list("resourceSubscriptions")?,
        task_ids: list("taskIds")?,
    };
    if !listen.task_ids.is_empty() && !client.has_tasks_extension() {
        return Err(missing_capability(
            json!({"extensions": {TASKS_EXTENSION: {}}}),
        ));
    }
    // Held while acknowledging, so no notification for this stream can come first.
    let mut listens = lock(&shared.listens);
    if listens.iter().any(|l| l.id == *id) {
        return Err(invalid_params(format!(
            "subscriptions/listen: a stream with id {id} is already open"
        )));
    }
    let ack = json!({"_meta": {META_SUBSCRIPTION_ID: id}, "notifications": listen.agreed()});
    shared.notify("notifications/subscriptions/acknowledged", ack);
    listens.push(listen);
    shared.listen_seen.store(true, Ordering::SeqCst);
    Ok(None)
}

/// The client's `notifications/cancelled` for a listen request: the stream ends, nothing is
/// sent. False if no stream has that id.
pub(super) fn cancel(shared: &Shared, request_id: &Value) -> bool {
    let mut listens = lock(&shared.listens);
    let before = listens.len();
    listens.retain(|l| l.id != *request_id);
    listens.len() != before
}

/// Sends `method` with `params`, tagged, on every open stream that opted in to `topic`;
/// returns how many got it.
pub(super) fn publish(shared: &Shared, topic: &Topic<'_>, method: &str, params: &Value) -> usize {
    let listens = lock(&shared.listens);
    let mut sent = 0;
    for listen in listens.iter().filter(|l| l.wants(topic)) {
        shared.notify(method, tagged(params, &listen.id));
        sent += 1;
    }
    sent
}

/// A list changed (`Topic::Tools`, `Prompts` or `Resources`): the handshake generation gets
/// the plain `notifications/KIND/list_changed`; the per-request one gets it tagged on each
/// stream that opted in, and also plain unless `--strict-per-request` or a stream was ever
/// opened on the connection (so a client that never listens still hears of changes).
pub(super) fn announce(shared: &Shared, client: &ClientCtx, topic: Topic<'_>) {
    let method = match topic {
        Topic::Prompts => "notifications/prompts/list_changed",
        Topic::Resources => "notifications/resources/list_changed",
        _ => "notifications/tools/list_changed",
    };
    let params = json!({});
    let plain = !client.is_stateless()
        || !(shared.cfg.strict_per_request || shared.listen_seen.load(Ordering::SeqCst));
    if client.is_stateless() {
        publish(shared, &topic, method, &params);
    }
    if plain {
        shared.notify(method, params);
    }
}

/// `notify_changed {kind}`: announces a change of the tools, prompts or resources list.
pub(super) fn tool_notify_changed(shared: &Shared, call: &Call) -> Outcome {
    let topic = match arg_str(call, "kind")? {
        "tools" => Topic::Tools,
        "prompts" => Topic::Prompts,
        "resources" => Topic::Resources,
        _ => {
            return Err(bad_arg(
                call,
                "kind",
                "\"tools\", \"prompts\" or \"resources\"",
            ))
        }
    };
    announce(shared, &call.client, topic);
    ok("ok")
}

/// `end_listens {id?, mode?}`: the server ends the stream with that id, or all of them.
/// `mode` `"both"` (default): the listen request's final response, then
/// `notifications/cancelled` for it; `"response"`: only the response; `"cancelled"`: only
/// the notification. Answers `ended N` after the streams are gone.
pub(super) fn tool_end_listens(shared: &Shared, call: &Call) -> Outcome {
    let mode = match arg(call, "mode").map(Value::as_str) {
        None => "both",
        Some(Some(m @ ("both" | "response" | "cancelled"))) => m,
        Some(_) => {
            return Err(bad_arg(
                call,
                "mode",
                "\"both\", \"response\" or \"cancelled\"",
            ))
        }
    };
    let which = arg(call, "id");
    let mut listens = lock(&shared.listens);
    let (ending, open): (Vec<Listen>, Vec<Listen>) = listens
        .drain(..)
        .partition(|l| which.is_none_or(|id| l.id == *id));
    *listens = open;
    for listen in &ending {
        let tag = json!({ META_SUBSCRIPTION_ID: listen.id });
        if mode != "cancelled" {
            let result = json!({"resultType": "complete", "_meta": tag});
            shared.respond(&listen.id, Ok(Some(result)));
        }
        if mode != "response" {
            let params = json!({
                "requestId": listen.id, "reason": "the server ended the subscription", "_meta": tag
            });
            shared.notify("notifications/cancelled", params);
        }
    }
    ok(&format!("ended {}", ending.len()))
}

/// `listen_streams`: the ids of the open streams, as a JSON array in the order opened.
pub(super) fn tool_listen_streams(shared: &Shared, _: &Call) -> Outcome {
    let ids: Vec<Value> = lock(&shared.listens).iter().map(|l| l.id.clone()).collect();
    ok(&Value::Array(ids).to_string())
}
