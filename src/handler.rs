//! What the client answers when the server asks: `roots/list`, `sampling/createMessage`,
//! `elicitation/create`, and what it does with the server's change notifications.

use serde_json::{json, Value};

/// An error a handler returns to the server as a JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerError {
    /// The JSON-RPC error code (for example -32603, internal error).
    pub code: i64,
    /// A message for the server.
    pub message: String,
}

impl HandlerError {
    /// An internal error (-32603) with this message.
    pub fn internal(message: impl Into<String>) -> Self {
        HandlerError {
            code: crate::jsonrpc::INTERNAL_ERROR,
            message: message.into(),
        }
    }
}

/// A list of server features that changed (`notifications/*/list_changed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListKind {
    /// `notifications/tools/list_changed`.
    Tools,
    /// `notifications/resources/list_changed`.
    Resources,
    /// `notifications/prompts/list_changed`.
    Prompts,
}

/// Which server-to-client features a handler supports. Only these are declared to the server
/// as client capabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandlerSupport {
    /// Answers `roots/list`.
    pub roots: bool,
    /// Sends `notifications/roots/list_changed` (declared as `roots.listChanged`).
    pub roots_list_changed: bool,
    /// Answers `sampling/createMessage`.
    pub sampling: bool,
    /// Answers `elicitation/create`.
    pub elicitation: bool,
}

/// Answers the server's requests and receives its notifications.
///
/// Every method has a default, so a handler implements only what it supports and says so in
/// [`supports`](Self::supports). Requests (`roots`, `sampling`, `elicitation`) run on a thread
/// of their own and may block (at most 32 at once per session; more get an error answer).
/// The `on_*` notification methods run on the session's worker thread and must return
/// quickly: calling the same session from inside one (say, `list_tools` on
/// `on_list_changed`) would wait on the worker that is running it, until the call's
/// timeout. Set a flag or send to a channel instead.
///
/// ```
/// use mcp_pool::{ClientHandler, HandlerError, HandlerSupport};
/// use serde_json::{json, Value};
///
/// struct Workspace;
///
/// impl ClientHandler for Workspace {
///     fn supports(&self) -> HandlerSupport {
///         HandlerSupport { roots: true, ..HandlerSupport::default() }
///     }
///     fn roots(&self, _params: &Value) -> Result<Value, HandlerError> {
///         Ok(json!({"roots": [{"uri": "file:///work", "name": "work"}]}))
///     }
/// }
/// ```
pub trait ClientHandler: Send + Sync + 'static {
    /// What this handler answers. Defaults to nothing.
    fn supports(&self) -> HandlerSupport {
        HandlerSupport::default()
    }

    /// Answers `roots/list`: a result such as `{"roots": [{"uri": "file:///…"}]}`.
    fn roots(&self, _params: &Value) -> Result<Value, HandlerError> {
        Err(not_supported("roots/list"))
    }

    /// Answers `sampling/createMessage`.
    fn sampling(&self, _params: &Value) -> Result<Value, HandlerError> {
        Err(not_supported("sampling/createMessage"))
    }

    /// Answers `elicitation/create`.
    fn elicitation(&self, _params: &Value) -> Result<Value, HandlerError> {
        Err(not_supported("elicitation/create"))
    }

    /// A list of the server's changed (`notifications/{tools,resources,prompts}/list_changed`).
    fn on_list_changed(&self, _server: &str, _kind: ListKind) {}

    /// A subscribed resource changed (`notifications/resources/updated`).
    fn on_resource_updated(&self, _server: &str, _uri: &str) {}

    /// Any other notification, for example a server's custom one.
    fn on_notification(&self, _server: &str, _method: &str, _params: &Value) {}
}

fn not_supported(method: &str) -> HandlerError {
    HandlerError {
        code: crate::jsonrpc::METHOD_NOT_FOUND,
        message: format!("{method} is not supported by this client"),
    }
}

/// A shared handler, so the caller can keep a handle on its state.
impl<T: ClientHandler + ?Sized> ClientHandler for std::sync::Arc<T> {
    fn supports(&self) -> HandlerSupport {
        (**self).supports()
    }
    fn roots(&self, params: &Value) -> Result<Value, HandlerError> {
        (**self).roots(params)
    }
    fn sampling(&self, params: &Value) -> Result<Value, HandlerError> {
        (**self).sampling(params)
    }
    fn elicitation(&self, params: &Value) -> Result<Value, HandlerError> {
        (**self).elicitation(params)
    }
    fn on_list_changed(&self, server: &str, kind: ListKind) {
        (**self).on_list_changed(server, kind)
    }
    fn on_resource_updated(&self, server: &str, uri: &str) {
        (**self).on_resource_updated(server, uri)
    }
    fn on_notification(&self, server: &str, method: &str, params: &Value) {
        (**self).on_notification(server, method, params)
    }
}

/// The default handler: supports no server-to-client request.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHandler;

impl ClientHandler for NoHandler {}

/// A handler that answers `roots/list` with a fixed list of `(uri, name)` pairs.
///
/// ```
/// let roots = mcp_pool::StaticRoots::new([("file:///work", "work")]);
/// ```
#[derive(Debug, Clone)]
pub struct StaticRoots {
    roots: Value,
}

impl StaticRoots {
    /// Roots given as `(uri, name)` pairs.
    pub fn new<I, U, N>(roots: I) -> Self
    where
        I: IntoIterator<Item = (U, N)>,
        U: Into<String>,
        N: Into<String>,
    {
        let list: Vec<Value> = roots
            .into_iter()
            .map(|(uri, name)| json!({"uri": uri.into(), "name": name.into()}))
            .collect();
        StaticRoots {
            roots: json!({ "roots": list }),
        }
    }
}

impl ClientHandler for StaticRoots {
    fn supports(&self) -> HandlerSupport {
        HandlerSupport {
            roots: true,
            ..HandlerSupport::default()
        }
    }

    fn roots(&self, _params: &Value) -> Result<Value, HandlerError> {
        Ok(self.roots.clone())
    }
}

/// Answers one request the server made of the client (a server-to-client request, or one
/// entry of an input-required result) through the handler: the result for the server, or
/// the JSON-RPC error the protocol prescribes (method not found for what the handler does
/// not support, invalid params for an elicitation mode not declared). A panicking handler
/// gives an internal error.
pub(crate) fn answer(
    handler: &dyn ClientHandler,
    support: HandlerSupport,
    method: &str,
    params: &Value,
) -> Result<Value, crate::jsonrpc::RpcError> {
    use crate::jsonrpc::{RpcError, INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND};
    let refuse = |code, message: String| {
        Err(RpcError {
            code,
            message,
            data: None,
        })
    };
    let supported = match method {
        "roots/list" => support.roots,
        "sampling/createMessage" => support.sampling,
        "elicitation/create" => {
            let mode = params.get("mode").and_then(Value::as_str).unwrap_or("form");
            if mode != "form" || !support.elicitation {
                return refuse(
                    INVALID_PARAMS,
                    format!("elicitation mode `{mode}` is not supported by this client"),
                );
            }
            true
        }
        _ => false,
    };
    if !supported {
        return refuse(
            METHOD_NOT_FOUND,
            format!("method not found: {}", crate::jsonrpc::brief(&method)),
        );
    }
    let call = std::panic::AssertUnwindSafe(|| match method {
        "roots/list" => handler.roots(params),
        "sampling/createMessage" => handler.sampling(params),
        _ => handler.elicitation(params),
    });
    match std::panic::catch_unwind(call) {
        Ok(result) => result.map_err(|e| RpcError {
            code: e.code,
            message: e.message,
            data: None,
        }),
        Err(_) => refuse(
            INTERNAL_ERROR,
            format!("the client's {method} handler failed"),
        ),
    }
}

/// The `capabilities` object declared for a handler, in a generation: the per-request one
/// (`per_request`) has no `roots.listChanged`, and declares the tasks extension when
/// `tasks` is on.
pub(crate) fn client_capabilities(
    support: HandlerSupport,
    per_request: bool,
    tasks: bool,
) -> Value {
    let mut caps = serde_json::Map::new();
    if support.roots {
        caps.insert(
            "roots".into(),
            if per_request {
                json!({})
            } else {
                json!({ "listChanged": support.roots_list_changed })
            },
        );
    }
    if support.sampling {
        caps.insert("sampling".into(), json!({}));
    }
    if support.elicitation {
        caps.insert("elicitation".into(), json!({ "form": {} }));
    }
    if per_request && tasks {
        caps.insert(
            "extensions".into(),
            json!({ crate::protocol::TASKS_EXTENSION: {} }),
        );
    }
    Value::Object(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_declare_only_what_is_supported() {
        assert_eq!(
            client_capabilities(NoHandler.supports(), false, true),
            json!({})
        );
        let roots = StaticRoots::new([("file:///a", "a")]).supports();
        let caps = client_capabilities(roots, false, true);
        assert_eq!(caps, json!({"roots": {"listChanged": false}}));
        // The per-request generation removed `roots.listChanged`.
        let caps = client_capabilities(roots, true, true);
        assert_eq!(
            caps,
            json!({"roots": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}})
        );
        assert_eq!(
            NoHandler.roots(&Value::Null).unwrap_err().code,
            crate::jsonrpc::METHOD_NOT_FOUND
        );
    }
}
