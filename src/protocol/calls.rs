//! Each kind of request the client makes, described once (method, params, whether
//! repeating it is harmless, whether it pages, which server capability it needs, whether
//! the server may ask for input on it, how its result is read); and how a result's
//! `resultType` is told.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::content::{
    CallToolResult, GetPromptResult, Prompt, ReadResourceResult, Resource, ResourceTemplate,
};
use super::tools::{read_tools, Tool};
use super::{is_read_only_method, LogLevel};
use crate::error::Error;

/// One kind of request, described once: its method and params, whether repeating it is
/// harmless, whether it pages (and the key of its items), and how its result is read.
/// `Session` and `Pool` methods build one and run it.
pub(crate) struct Call<T> {
    pub method: Cow<'static, str>,
    pub params: Option<Value>,
    /// Repeating it cannot change anything on the server. (For `tools/call` the tool's
    /// annotations decide; see `tool`.)
    pub read_only: bool,
    /// The tool called, for `tools/call`.
    pub tool: Option<String>,
    /// The key of the items, when the method pages with `cursor` / `nextCursor`.
    pub pages: Option<&'static str>,
    /// The server capability it needs (`tools`, `resources`, ...), if it is a typed call.
    pub needs: Option<&'static str>,
    /// The server may answer it with `resultType: "input_required"` (multi round-trip).
    pub takes_input: bool,
    /// Reads the result (all pages' items as one array, for a paging method).
    pub parse: fn(Value, &str) -> Result<T, Error>,
}

fn parse_as<T: DeserializeOwned>(value: Value, method: &str) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| wrong_shape(method, e))
}

/// A `tools/call` result, its parts taken out of the JSON rather than copied.
pub(crate) fn tool_result(value: Value, method: &str) -> Result<CallToolResult, Error> {
    CallToolResult::try_from(value).map_err(|e| wrong_shape(method, e))
}

fn wrong_shape(method: &str, e: impl std::fmt::Display) -> Error {
    Error::Protocol(format!("`{method}` result has the wrong shape: {e}"))
}

fn nothing(_: Value, _: &str) -> Result<(), Error> {
    Ok(())
}

/// A `resources/read` result must have its `contents`.
fn contents(value: Value, method: &str) -> Result<ReadResourceResult, Error> {
    match value.get("contents") {
        Some(Value::Array(_)) => parse_as(value, method),
        _ => Err(Error::Protocol(format!(
            "`{method}` result has no `contents` array"
        ))),
    }
}

fn completion(mut value: Value, _: &str) -> Result<Value, Error> {
    Ok(value
        .get_mut("completion")
        .map(Value::take)
        .unwrap_or(Value::Null))
}

/// What kind of JSON a value is, for messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `{"name": NAME, "arguments": ARGS}`, the arguments an object (`null` meaning none).
fn name_and_arguments(name: &str, arguments: Value, what: &str) -> Result<Value, Error> {
    check_name_and_arguments(name, &arguments, what)?;
    Ok(match arguments {
        Value::Null => json!({ "name": name, "arguments": {} }),
        arguments => json!({ "name": name, "arguments": arguments }),
    })
}

/// A tool's or prompt's name must not be empty, its arguments an object (`null` meaning
/// none). `what` names it in the error ("tool", "prompt").
pub(crate) fn check_name_and_arguments(
    name: &str,
    arguments: &Value,
    what: &str,
) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} name is empty")));
    }
    match arguments {
        Value::Null | Value::Object(_) => Ok(()),
        other => Err(Error::InvalidArgument(format!(
            "arguments of {what} `{name}` must be a JSON object, not {}",
            kind_of(other)
        ))),
    }
}

impl<T> Call<T> {
    fn of(
        method: &'static str,
        params: Option<Value>,
        parse: fn(Value, &str) -> Result<T, Error>,
    ) -> Call<T> {
        Call {
            read_only: is_read_only_method(method),
            needs: capability_of(method),
            takes_input: matches!(method, "tools/call" | "prompts/get" | "resources/read"),
            method: Cow::Borrowed(method),
            params,
            tool: None,
            pages: None,
            parse,
        }
    }

    fn paged(mut self, key: &'static str) -> Call<T> {
        self.pages = Some(key);
        self
    }
}

impl Call<Value> {
    /// Any request, its result as sent. `params` must be an object (or absent).
    pub(crate) fn raw(method: &str, params: Option<Value>) -> Result<Call<Value>, Error> {
        if method.is_empty() {
            return Err(Error::InvalidArgument("method name is empty".into()));
        }
        if let Some(p) = &params {
            if !p.is_object() && !p.is_null() {
                return Err(Error::InvalidArgument(format!(
                    "params of `{method}` must be a JSON object, not {}",
                    kind_of(p)
                )));
            }
        }
        Ok(Call {
            read_only: is_read_only_method(method),
            needs: None,
            takes_input: matches!(method, "tools/call" | "prompts/get" | "resources/read"),
            method: Cow::Owned(method.to_owned()),
            params,
            tool: None,
            pages: None,
            parse: |v, _| Ok(v),
        })
    }

    /// `completion/complete`: the `completion` object.
    pub(crate) fn complete(reference: Value, argument: Value) -> Call<Value> {
        let params = json!({ "ref": reference, "argument": argument });
        Call::of("completion/complete", Some(params), completion)
    }
}

impl Call<Vec<Tool>> {
    /// `tools/list`, every page (an entry with a bad optional field keeps its other fields).
    pub(crate) fn list_tools() -> Call<Vec<Tool>> {
        Call::of("tools/list", None, |v, m| Ok(read_tools(v, m))).paged("tools")
    }
}

impl Call<ReadResourceResult> {
    /// `resources/read`: the result (`contents`: items with `uri` and `text` or `blob`).
    pub(crate) fn read_resource(uri: &str) -> Call<ReadResourceResult> {
        Call::of("resources/read", Some(json!({ "uri": uri })), contents)
    }
}

impl Call<Vec<Resource>> {
    /// `resources/list`, every page.
    pub(crate) fn list_resources() -> Call<Vec<Resource>> {
        Call::of("resources/list", None, parse_as).paged("resources")
    }
}

impl Call<Vec<ResourceTemplate>> {
    /// `resources/templates/list`, every page.
    pub(crate) fn list_resource_templates() -> Call<Vec<ResourceTemplate>> {
        Call::of("resources/templates/list", None, parse_as).paged("resourceTemplates")
    }
}

impl Call<Vec<Prompt>> {
    /// `prompts/list`, every page.
    pub(crate) fn list_prompts() -> Call<Vec<Prompt>> {
        Call::of("prompts/list", None, parse_as).paged("prompts")
    }
}

impl Call<CallToolResult> {
    /// `tools/call`.
    pub(crate) fn call_tool(name: &str, arguments: Value) -> Result<Call<CallToolResult>, Error> {
        let params = name_and_arguments(name, arguments, "tool")?;
        let mut call = Call::of("tools/call", Some(params), tool_result);
        call.tool = Some(name.to_owned());
        Ok(call)
    }
}

impl Call<GetPromptResult> {
    /// `prompts/get`.
    pub(crate) fn get_prompt(name: &str, arguments: Value) -> Result<Call<GetPromptResult>, Error> {
        let params = name_and_arguments(name, arguments, "prompt")?;
        Ok(Call::of("prompts/get", Some(params), parse_as))
    }
}

impl Call<()> {
    /// `ping` (in the per-request generation, which has none, the session sends
    /// `server/discover` instead).
    pub(crate) fn ping() -> Call<()> {
        Call::of("ping", None, nothing)
    }

    /// `resources/subscribe`.
    pub(crate) fn subscribe(uri: &str) -> Call<()> {
        Call::of("resources/subscribe", Some(json!({ "uri": uri })), nothing)
    }

    /// `resources/unsubscribe`.
    pub(crate) fn unsubscribe(uri: &str) -> Call<()> {
        Call::of(
            "resources/unsubscribe",
            Some(json!({ "uri": uri })),
            nothing,
        )
    }

    /// `logging/setLevel`.
    pub(crate) fn set_logging_level(level: LogLevel) -> Call<()> {
        Call::of(
            "logging/setLevel",
            Some(json!({ "level": level.as_str() })),
            nothing,
        )
    }
}

/// The server capability a method needs.
fn capability_of(method: &str) -> Option<&'static str> {
    Some(match method.split('/').next()? {
        "tools" => "tools",
        "resources" => "resources",
        "prompts" => "prompts",
        "completion" => "completions",
        "logging" => "logging",
        _ => return None,
    })
}

/// What a result says it is (`resultType`, 2026-07-28; absent means complete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResultType {
    Complete,
    InputRequired,
    Task,
    /// A value this client does not know.
    Other(String),
}

impl ResultType {
    pub(crate) fn of(result: &Value) -> ResultType {
        match result.get("resultType") {
            None | Some(Value::Null) => ResultType::Complete,
            Some(Value::String(t)) => match t.as_str() {
                "complete" => ResultType::Complete,
                "input_required" => ResultType::InputRequired,
                "task" => ResultType::Task,
                other => ResultType::Other(other.to_owned()),
            },
            Some(other) => ResultType::Other(other.to_string()),
        }
    }
}
