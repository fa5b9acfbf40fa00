//! The MCP messages this crate reads into types; `serde_json::Value` for the rest.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::Generation;
use crate::error::Error;

/// The version offered in `initialize`.
pub(crate) const LATEST_HANDSHAKE_VERSION: &str = "2025-11-25";
/// The handshake-generation versions this client accepts in reply.
pub(crate) const HANDSHAKE_VERSIONS: &[&str] =
    &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The per-request generation's version.
pub(crate) const PER_REQUEST_VERSION: &str = "2026-07-28";

/// `_meta` keys of the per-request generation.
pub(crate) const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub(crate) const META_CLIENT_CAPS: &str = "io.modelcontextprotocol/clientCapabilities";
pub(crate) const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub(crate) const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// The name, version and optional title of a client or server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Implementation {
    /// The program's name.
    #[serde(default)]
    pub name: String,
    /// Its version.
    #[serde(default)]
    pub version: String,
    /// A display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// What a session learned about its server when it started.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerDetails {
    /// The generation the session speaks.
    pub generation: Generation,
    /// The agreed protocol version, e.g. `2025-11-25` or `2026-07-28`.
    pub protocol_version: String,
    /// The server's declared capabilities, as sent.
    pub capabilities: Value,
    /// The server's name and version.
    pub server_info: Implementation,
    /// The server's instructions for the model, if any.
    pub instructions: Option<String>,
}

impl ServerDetails {
    /// Whether the server declared a capability, e.g. `"tools"`, `"resources"`, `"logging"`.
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities
            .get(name)
            .is_some_and(|v| !v.is_null() && v != &Value::Bool(false))
    }
}

/// A tool the server offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// Its name, used in [`call_tool`](crate::Session::call_tool).
    pub name: String,
    /// A display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON Schema of its arguments.
    #[serde(default)]
    pub input_schema: Value,
    /// The JSON Schema of its `structuredContent`, if declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// Hints about its behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<ToolAnnotations>,
    /// Any other fields, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Tool {
    /// Whether the server says calling this tool twice is harmless: it is read-only or
    /// idempotent. These are hints from the server, not guarantees.
    pub fn safe_to_repeat(&self) -> bool {
        self.annotations
            .as_ref()
            .is_some_and(|a| a.read_only_hint == Some(true) || a.idempotent_hint == Some(true))
    }
}

/// A tool's behaviour hints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    /// A display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The tool does not modify its environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    /// The tool may destroy data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    /// Calling it again with the same arguments has no further effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    /// The tool reaches an open world (the web, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

/// The result of `tools/call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CallToolResult {
    /// The unstructured content items.
    #[serde(default)]
    pub content: Vec<Content>,
    /// The structured result, when the tool has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    /// `true` when the tool itself failed (a tool error, not a protocol error).
    #[serde(default)]
    pub is_error: bool,
    /// The result's `_meta`, if any.
    #[serde(default, rename = "_meta", skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

impl CallToolResult {
    /// The text of all text content items, joined by newlines.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for text in self.content.iter().filter_map(Content::as_text) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(text);
        }
        out
    }
}

/// One content item of a tool result or prompt message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Content {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Any other fields (annotations, `_meta`).
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// An image, base64 encoded.
    #[serde(rename_all = "camelCase")]
    Image {
        /// Base64 data.
        data: String,
        /// Its MIME type.
        mime_type: String,
        /// Any other fields.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// Audio, base64 encoded.
    #[serde(rename_all = "camelCase")]
    Audio {
        /// Base64 data.
        data: String,
        /// Its MIME type.
        mime_type: String,
        /// Any other fields.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// A link to a resource.
    ResourceLink {
        /// The resource's URI.
        uri: String,
        /// Any other fields (name, mimeType, ...).
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    /// An embedded resource.
    Resource {
        /// The resource contents (`uri` with `text` or `blob`).
        resource: Value,
        /// Any other fields.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
}

impl Content {
    /// The text of a text item.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Content::Text { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// One tool call of a batch: `{"tool": NAME, "arguments": {...}}` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The tool's name.
    pub tool: String,
    /// Its arguments (an object; `null` or absent means none).
    #[serde(default)]
    pub arguments: Value,
}

impl ToolCall {
    /// A call of `tool` with `arguments`.
    pub fn new(tool: impl Into<String>, arguments: Value) -> Self {
        ToolCall {
            tool: tool.into(),
            arguments,
        }
    }
}

/// A progress report for a request (`notifications/progress`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Progress {
    /// Progress so far; increases with each report.
    pub progress: f64,
    /// The total, if known.
    #[serde(default)]
    pub total: Option<f64>,
    /// A message, if any.
    #[serde(default)]
    pub message: Option<String>,
}

/// The result of `prompts/get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GetPromptResult {
    /// A description of the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The messages: each has `role` and `content`.
    #[serde(default)]
    pub messages: Vec<PromptMessage>,
}

/// One message of a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// The content.
    pub content: Content,
}

/// Log levels for `logging/setLevel` (RFC 5424 severities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
            LogLevel::Alert => "alert",
            LogLevel::Emergency => "emergency",
        }
    }

    /// The `log` level a server message of this level is logged at.
    pub(crate) fn log_level(level: &str) -> log::Level {
        match level {
            "debug" => log::Level::Debug,
            "info" | "notice" => log::Level::Info,
            "warning" => log::Level::Warn,
            _ => log::Level::Error,
        }
    }
}

/// Methods that never change anything on the server, so repeating one is harmless.
pub fn is_read_only_method(method: &str) -> bool {
    matches!(
        method,
        "ping"
            | "server/discover"
            | "tools/list"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
            | "prompts/list"
            | "prompts/get"
            | "completion/complete"
    )
}

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
    /// Reads the result (all pages' items as one array, for a paging method).
    pub parse: fn(Value, &str) -> Result<T, Error>,
}

fn parse_as<T: DeserializeOwned>(value: Value, method: &str) -> Result<T, Error> {
    serde_json::from_value(value)
        .map_err(|e| Error::Protocol(format!("`{method}` result has the wrong shape: {e}")))
}

fn nothing(_: Value, _: &str) -> Result<(), Error> {
    Ok(())
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
    if name.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} name is empty")));
    }
    match arguments {
        Value::Null => Ok(json!({ "name": name, "arguments": {} })),
        Value::Object(_) => Ok(json!({ "name": name, "arguments": arguments })),
        other => Err(Error::InvalidArgument(format!(
            "arguments of {what} `{name}` must be a JSON object, not {}",
            kind_of(&other)
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
            method: Cow::Owned(method.to_owned()),
            params,
            tool: None,
            pages: None,
            parse: |v, _| Ok(v),
        })
    }

    /// `resources/read`: the result (`contents`: items with `uri` and `text` or `blob`).
    pub(crate) fn read_resource(uri: &str) -> Call<Value> {
        Call::of("resources/read", Some(json!({ "uri": uri })), |v, _| Ok(v))
    }

    /// `completion/complete`: the `completion` object.
    pub(crate) fn complete(reference: Value, argument: Value) -> Call<Value> {
        let params = json!({ "ref": reference, "argument": argument });
        Call::of("completion/complete", Some(params), completion)
    }
}

impl Call<Vec<Tool>> {
    /// `tools/list`, every page.
    pub(crate) fn list_tools() -> Call<Vec<Tool>> {
        Call::of("tools/list", None, parse_as).paged("tools")
    }
}

impl Call<Vec<Value>> {
    /// `resources/list`, every page.
    pub(crate) fn list_resources() -> Call<Vec<Value>> {
        Call::of("resources/list", None, parse_as).paged("resources")
    }

    /// `resources/templates/list`, every page.
    pub(crate) fn list_resource_templates() -> Call<Vec<Value>> {
        Call::of("resources/templates/list", None, parse_as).paged("resourceTemplates")
    }

    /// `prompts/list`, every page.
    pub(crate) fn list_prompts() -> Call<Vec<Value>> {
        Call::of("prompts/list", None, parse_as).paged("prompts")
    }
}

impl Call<CallToolResult> {
    /// `tools/call`.
    pub(crate) fn call_tool(name: &str, arguments: Value) -> Result<Call<CallToolResult>, Error> {
        let params = name_and_arguments(name, arguments, "tool")?;
        let mut call = Call::of("tools/call", Some(params), parse_as);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn call_result_parses_every_content_kind() {
        let r: CallToolResult = serde_json::from_value(json!({
            "content": [
                {"type":"text","text":"a"},
                {"type":"image","data":"AA==","mimeType":"image/png"},
                {"type":"resource_link","uri":"file:///x","name":"x"},
                {"type":"resource","resource":{"uri":"file:///y","text":"y"}},
                {"type":"text","text":"b","annotations":{"priority":1}}
            ],
            "structuredContent": {"sum": 3},
            "isError": false
        }))
        .unwrap();
        assert_eq!(r.text(), "a\nb");
        assert_eq!(r.structured_content, Some(json!({"sum": 3})));
        assert!(matches!(&r.content[2], Content::ResourceLink { uri, .. } if uri == "file:///x"));
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["content"][1]["mimeType"], "image/png");
    }

    #[test]
    fn tool_annotations_decide_repeat_safety() {
        let t: Tool = serde_json::from_value(json!({
            "name":"t","inputSchema":{"type":"object"},
            "annotations":{"readOnlyHint":true}
        }))
        .unwrap();
        assert!(t.safe_to_repeat());
        let t: Tool = serde_json::from_value(json!({"name":"t","inputSchema":{}})).unwrap();
        assert!(!t.safe_to_repeat());
        assert!(is_read_only_method("tools/list") && !is_read_only_method("tools/call"));
    }
}
