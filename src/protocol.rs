//! The MCP messages this crate reads into types; `serde_json::Value` for the rest.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::Generation;

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
