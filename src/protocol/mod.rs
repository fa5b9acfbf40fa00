//! The MCP messages this crate reads into types (`serde_json::Value` for the rest), the
//! protocol's versions and `_meta` keys, and each call kind described once (`calls.rs`).

mod calls;
mod content;
mod tasks;
mod tools;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Generation;

pub(crate) use calls::{check_name_and_arguments, kind_of, tool_result, Call, ResultType};
pub use content::{
    CallToolResult, Content, GetPromptResult, Prompt, PromptArgument, PromptMessage,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate, ToolCall,
};
pub(crate) use tasks::TASKS_EXTENSION;
pub use tasks::{Task, TaskStatus};
pub(crate) use tools::{header_params, ToolIndex};
pub use tools::{TaskSupport, Tool, ToolAnnotations, ToolExecution};

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
pub(crate) const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub(crate) const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

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
    pub(crate) fn to_log(self) -> log::Level {
        match self {
            LogLevel::Debug => log::Level::Debug,
            LogLevel::Info | LogLevel::Notice => log::Level::Info,
            LogLevel::Warning => log::Level::Warn,
            _ => log::Level::Error,
        }
    }
}

/// The JSON-RPC error code of "unsupported protocol version" (per-request generation);
/// its `data.supported` lists the versions the server speaks.
pub(crate) const UNSUPPORTED_VERSION: i64 = -32022;

/// The JSON-RPC error code of "header mismatch" (Streamable HTTP, per-request generation):
/// the request's `Mcp-*` headers do not match its body.
pub(crate) const HEADER_MISMATCH: i64 = -32020;

/// The versions an unsupported-version error's `data.supported` lists.
pub(crate) fn supported_versions(data: Option<&Value>) -> Vec<String> {
    data.and_then(|d| d.get("supported"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
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
