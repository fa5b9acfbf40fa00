//! What the client answers when the server asks (`roots/list`, `sampling/createMessage`,
//! `elicitation/create` in form or URL mode), and what it does with the server's
//! notifications (list changes, resource updates, log messages, task status, completed
//! URL elicitations).
//!
//! The same handler answers both generations: the handshake generation's server-to-client
//! requests and the per-request generation's input requests (multi round-trip). Only what
//! [`HandlerSupport`] declares is offered to the server, in each generation's shape.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use crate::jsonrpc::{self, RpcError, INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND};
use crate::protocol::{LogLevel, Task};

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
            code: INTERNAL_ERROR,
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

/// Which server-to-client features a handler supports. Only these are declared to the
/// server as client capabilities, and a request for anything else is refused before it
/// reaches the handler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandlerSupport {
    /// Answers `roots/list`.
    pub roots: bool,
    /// Sends `notifications/roots/list_changed` (declared as `roots.listChanged` in the
    /// handshake generation; the per-request generation removed it).
    pub roots_list_changed: bool,
    /// Answers `sampling/createMessage`.
    pub sampling: bool,
    /// Sampling requests may carry `tools` and `toolChoice` (`sampling.tools`).
    pub sampling_tools: bool,
    /// Sampling requests may ask for context (`includeContext` other than `none`;
    /// `sampling.context`).
    pub sampling_context: bool,
    /// Answers form-mode `elicitation/create` ([`ClientHandler::elicitation`]).
    pub elicitation_form: bool,
    /// Answers URL-mode `elicitation/create` ([`ClientHandler::elicitation_url`]).
    pub elicitation_url: bool,
}

/// A request the server made of the client, as a handler sees it.
#[derive(Debug)]
pub struct ServerRequest<'a> {
    server: &'a str,
    caller: Option<&'a str>,
    method: &'a str,
    params: &'a Value,
    cancelled: &'a AtomicBool,
}

impl<'a> ServerRequest<'a> {
    /// The name of the server asking.
    pub fn server(&self) -> &'a str {
        self.server
    }

    /// The caller key of the session asking, on a pool server with
    /// [`Sharing::PerCaller`](crate::Sharing::PerCaller) (whose user's roots, model or
    /// consent this is); `None` on a shared server or a session started directly.
    pub fn caller(&self) -> Option<&'a str> {
        self.caller
    }

    /// The method asked for (`roots/list`, `sampling/createMessage`, `elicitation/create`).
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The request's params as the server sent them (`{}` when it sent none).
    pub fn params(&self) -> &'a Value {
        self.params
    }

    /// Whether the answer is no longer wanted: the server cancelled its request, the call
    /// it belongs to ended (deadline, cancel), or the session ended (closed, the pool
    /// closed, the server gone). A handler that waits on a user checks
    /// this and gives up; whatever it returns then is not sent.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

/// A URL-mode elicitation: the server asks the user to open a page (to sign in, consent or
/// pay) out of band. The client shows the URL and asks the user's consent; it never
/// fetches the page itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlElicitation {
    /// The page to open.
    pub url: String,
    /// Why the server asks.
    pub message: String,
    /// The id `notifications/elicitation/complete` will carry (handshake generation).
    pub elicitation_id: Option<String>,
}

/// What the user did with an elicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElicitAction {
    /// The user agreed (for a URL elicitation: to open the page).
    Accept,
    /// The user said no.
    Decline,
    /// The user dismissed it without choosing.
    Cancel,
}

impl ElicitAction {
    fn as_str(self) -> &'static str {
        match self {
            ElicitAction::Accept => "accept",
            ElicitAction::Decline => "decline",
            ElicitAction::Cancel => "cancel",
        }
    }
}

/// A log message the server sent (`notifications/message`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogMessage {
    /// Its severity.
    pub level: LogLevel,
    /// The logger that wrote it, if named.
    pub logger: Option<String>,
    /// The message: any JSON.
    pub data: Value,
}

/// Answers the server's requests and receives its notifications.
///
/// Every method has a default, so a handler implements only what it supports and says so
/// in [`supports`](Self::supports). Requests run on a thread of their own and may block (at
/// most 32 at once per session; more get an error answer); a blocked one should look at
/// [`ServerRequest::is_cancelled`] now and then. The `on_*` methods run on the thread
/// reading the session's output and must return quickly: calling the same session from
/// inside one fails at once with [`Error::InvalidArgument`](crate::Error::InvalidArgument).
/// Set a flag or send to a channel instead.
///
/// ```
/// use mcp_pool::{ClientHandler, HandlerError, HandlerSupport, ServerRequest};
/// use serde_json::{json, Value};
///
/// struct Workspace;
///
/// impl ClientHandler for Workspace {
///     fn supports(&self) -> HandlerSupport {
///         HandlerSupport { roots: true, ..HandlerSupport::default() }
///     }
///     fn roots(&self, _request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
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
    fn roots(&self, _request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        Err(not_supported("roots/list"))
    }

    /// Answers `sampling/createMessage`: a `CreateMessageResult`.
    fn sampling(&self, _request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        Err(not_supported("sampling/createMessage"))
    }

    /// Answers a form-mode `elicitation/create`: `{"action": "accept", "content": {…}}`,
    /// or `decline` / `cancel`.
    fn elicitation(&self, _request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        Err(not_supported("elicitation/create"))
    }

    /// Answers a URL-mode `elicitation/create`: show the URL, ask the user, and say what
    /// they chose. Opening the page is the user's (or the host application's) business.
    fn elicitation_url(
        &self,
        _request: &ServerRequest<'_>,
        _elicitation: &UrlElicitation,
    ) -> Result<ElicitAction, HandlerError> {
        Err(not_supported("elicitation/create in URL mode"))
    }

    /// The out-of-band part of a URL elicitation is done
    /// (`notifications/elicitation/complete`).
    fn on_elicitation_complete(&self, _server: &str, _elicitation_id: &str) {}

    /// A list of the server's changed (`notifications/{tools,resources,prompts}/list_changed`).
    fn on_list_changed(&self, _server: &str, _kind: ListKind) {}

    /// A subscribed resource changed (`notifications/resources/updated`).
    fn on_resource_updated(&self, _server: &str, _uri: &str) {}

    /// A log message from the server (`notifications/message`). It is also logged through
    /// the `log` crate (target `mcp_pool::server`).
    fn on_log(&self, _server: &str, _message: &LogMessage) {}

    /// A task's status changed (`notifications/tasks/status`, or a task notification of a
    /// subscription).
    fn on_task_status(&self, _server: &str, _task: &Task) {}

    /// Any other notification, for example a server's custom one.
    fn on_notification(&self, _server: &str, _method: &str, _params: &Value) {}
}

fn not_supported(method: &str) -> HandlerError {
    HandlerError {
        code: METHOD_NOT_FOUND,
        message: format!("{method} is not supported by this client"),
    }
}

/// A shared handler, so the caller can keep a handle on its state.
impl<T: ClientHandler + ?Sized> ClientHandler for Arc<T> {
    fn supports(&self) -> HandlerSupport {
        (**self).supports()
    }
    fn roots(&self, request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        (**self).roots(request)
    }
    fn sampling(&self, request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        (**self).sampling(request)
    }
    fn elicitation(&self, request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        (**self).elicitation(request)
    }
    fn elicitation_url(
        &self,
        request: &ServerRequest<'_>,
        elicitation: &UrlElicitation,
    ) -> Result<ElicitAction, HandlerError> {
        (**self).elicitation_url(request, elicitation)
    }
    fn on_elicitation_complete(&self, server: &str, elicitation_id: &str) {
        (**self).on_elicitation_complete(server, elicitation_id)
    }
    fn on_list_changed(&self, server: &str, kind: ListKind) {
        (**self).on_list_changed(server, kind)
    }
    fn on_resource_updated(&self, server: &str, uri: &str) {
        (**self).on_resource_updated(server, uri)
    }
    fn on_log(&self, server: &str, message: &LogMessage) {
        (**self).on_log(server, message)
    }
    fn on_task_status(&self, server: &str, task: &Task) {
        (**self).on_task_status(server, task)
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

    fn roots(&self, _request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        Ok(self.roots.clone())
    }
}

/// The server requests a session's handler is answering, by request id (as JSON text), so
/// a `notifications/cancelled` from the server reaches the one it names.
#[derive(Default)]
pub(crate) struct Asks {
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

impl Asks {
    /// Records a request being answered; its flag is raised when the server cancels it.
    pub(crate) fn begin(&self, id: &Value) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.running.lock().insert(id.to_string(), flag.clone());
        flag
    }

    /// The answer is done (sent or dropped).
    pub(crate) fn end(&self, id: &Value) {
        self.running.lock().remove(&id.to_string());
    }

    /// The session ended: no answer can reach the server any more, so every request being
    /// answered is cancelled.
    pub(crate) fn cancel_all(&self) {
        for flag in self.running.lock().values() {
            flag.store(true, Ordering::Release);
        }
    }

    /// The server cancelled its request `id`. Returns whether one was being answered.
    pub(crate) fn cancel(&self, id: &Value) -> bool {
        match self.running.lock().get(&id.to_string()) {
            Some(flag) => {
                flag.store(true, Ordering::Release);
                true
            }
            None => false,
        }
    }
}

/// Answers one request the server made of the client (a server-to-client request, or one
/// entry of an input-required result) through the handler: the result for the server, or
/// the JSON-RPC error the protocol prescribes: method not found for what the handler does
/// not support, invalid params for an elicitation mode or sampling feature not declared
/// (the handler never sees those). A panicking handler gives an internal error.
pub(crate) fn answer(
    handler: &dyn ClientHandler,
    support: HandlerSupport,
    request: &ServerRequest<'_>,
) -> Result<Value, RpcError> {
    let refuse = |code, message: String| {
        Err(RpcError {
            code,
            message,
            data: None,
        })
    };
    let params = request.params;
    let method = request.method;
    let url = match method {
        "roots/list" if support.roots => None,
        "sampling/createMessage" if support.sampling => {
            if params.get("tools").is_some_and(|t| !t.is_null()) && !support.sampling_tools {
                return refuse(
                    INVALID_PARAMS,
                    "sampling with tools is not supported by this client".into(),
                );
            }
            let context = params.get("includeContext").and_then(Value::as_str);
            if context.is_some_and(|c| c != "none") && !support.sampling_context {
                return refuse(
                    INVALID_PARAMS,
                    "sampling with includeContext is not supported by this client".into(),
                );
            }
            None
        }
        "elicitation/create" => {
            let mode = params.get("mode").and_then(Value::as_str).unwrap_or("form");
            let declared = match mode {
                "form" => support.elicitation_form,
                "url" => support.elicitation_url,
                _ => false,
            };
            if !declared {
                return refuse(
                    INVALID_PARAMS,
                    format!(
                        "elicitation mode `{}` is not supported by this client",
                        jsonrpc::brief(&mode)
                    ),
                );
            }
            if mode == "url" {
                match read_url_elicitation(params) {
                    Ok(url) => Some(url),
                    Err(why) => return refuse(INVALID_PARAMS, why),
                }
            } else {
                None
            }
        }
        _ => {
            return refuse(
                METHOD_NOT_FOUND,
                format!("method not found: {}", jsonrpc::brief(&method)),
            )
        }
    };
    let call = std::panic::AssertUnwindSafe(|| match (method, &url) {
        ("roots/list", _) => handler.roots(request),
        ("sampling/createMessage", _) => handler.sampling(request),
        (_, Some(url)) => handler
            .elicitation_url(request, url)
            .map(|action| json!({ "action": action.as_str() })),
        _ => handler.elicitation(request),
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

/// Runs [`answer`] for a request the server sent, with a fresh cancel flag: for callers
/// that have the parts, not a [`ServerRequest`].
pub(crate) fn answer_parts(
    handler: &dyn ClientHandler,
    support: HandlerSupport,
    (server, caller): (&str, Option<&str>),
    method: &str,
    params: &Value,
    cancelled: &AtomicBool,
) -> Result<Value, RpcError> {
    let request = ServerRequest {
        server,
        caller,
        method,
        params,
        cancelled,
    };
    answer(handler, support, &request)
}

fn read_url_elicitation(params: &Value) -> Result<UrlElicitation, String> {
    let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
    let url = text("url").ok_or("a URL elicitation needs a `url` string")?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!(
            "a URL elicitation's url must be http or https, not {}",
            jsonrpc::brief(&url)
        ));
    }
    Ok(UrlElicitation {
        url,
        message: text("message").unwrap_or_default(),
        elicitation_id: text("elicitationId"),
    })
}

/// Reads a `notifications/message`'s params.
pub(crate) fn log_message(params: &Value) -> LogMessage {
    LogMessage {
        level: params
            .get("level")
            .cloned()
            .and_then(|l| serde_json::from_value(l).ok())
            .unwrap_or(LogLevel::Info),
        logger: params
            .get("logger")
            .and_then(Value::as_str)
            .map(str::to_owned),
        data: params.get("data").cloned().unwrap_or(Value::Null),
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
    let mut caps = Map::new();
    if support.roots {
        caps.insert(
            "roots".into(),
            if per_request || !support.roots_list_changed {
                json!({})
            } else {
                json!({ "listChanged": true })
            },
        );
    }
    if support.sampling {
        let mut sampling = Map::new();
        if support.sampling_tools {
            sampling.insert("tools".into(), json!({}));
        }
        if support.sampling_context {
            sampling.insert("context".into(), json!({}));
        }
        caps.insert("sampling".into(), Value::Object(sampling));
    }
    if support.elicitation_form || support.elicitation_url {
        let mut elicitation = Map::new();
        if support.elicitation_form {
            elicitation.insert("form".into(), json!({}));
        }
        if support.elicitation_url {
            elicitation.insert("url".into(), json!({}));
        }
        caps.insert("elicitation".into(), Value::Object(elicitation));
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

    fn ask(support: HandlerSupport, method: &str, params: Value) -> Result<Value, RpcError> {
        struct Yes;
        impl ClientHandler for Yes {
            fn elicitation(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
                Ok(json!({"action": "accept", "content": {}}))
            }
            fn elicitation_url(
                &self,
                _: &ServerRequest<'_>,
                e: &UrlElicitation,
            ) -> Result<ElicitAction, HandlerError> {
                assert_eq!(e.url, "https://example.com/x");
                Ok(ElicitAction::Decline)
            }
            fn sampling(&self, _: &ServerRequest<'_>) -> Result<Value, HandlerError> {
                Ok(json!({"role": "assistant"}))
            }
        }
        let flag = AtomicBool::new(false);
        answer_parts(&Yes, support, ("s", None), method, &params, &flag)
    }

    #[test]
    fn capabilities_declare_only_what_is_supported() {
        assert_eq!(
            client_capabilities(NoHandler.supports(), false, true),
            json!({})
        );
        let roots = StaticRoots::new([("file:///a", "a")]).supports();
        assert_eq!(
            client_capabilities(roots, false, true),
            json!({"roots": {}})
        );
        let listing = HandlerSupport {
            roots_list_changed: true,
            ..roots
        };
        assert_eq!(
            client_capabilities(listing, false, true),
            json!({"roots": {"listChanged": true}})
        );
        // The per-request generation removed `roots.listChanged`.
        assert_eq!(
            client_capabilities(listing, true, true),
            json!({"roots": {}, "extensions": {"io.modelcontextprotocol/tasks": {}}})
        );
        let all = HandlerSupport {
            sampling: true,
            sampling_tools: true,
            sampling_context: true,
            elicitation_form: true,
            elicitation_url: true,
            ..HandlerSupport::default()
        };
        assert_eq!(
            client_capabilities(all, true, false),
            json!({"sampling": {"tools": {}, "context": {}}, "elicitation": {"form": {}, "url": {}}})
        );
        let url_only = HandlerSupport {
            elicitation_url: true,
            ..HandlerSupport::default()
        };
        assert_eq!(
            client_capabilities(url_only, false, false),
            json!({"elicitation": {"url": {}}})
        );
    }

    #[test]
    fn requests_outside_what_is_declared_never_reach_the_handler() {
        let form = HandlerSupport {
            elicitation_form: true,
            ..HandlerSupport::default()
        };
        let url = json!({"mode": "url", "url": "https://example.com/x", "message": "m"});
        assert_eq!(
            ask(form, "elicitation/create", url.clone())
                .unwrap_err()
                .code,
            INVALID_PARAMS
        );
        assert!(ask(form, "elicitation/create", json!({"message": "m"})).is_ok());
        let url_mode = HandlerSupport {
            elicitation_url: true,
            ..HandlerSupport::default()
        };
        assert_eq!(
            ask(url_mode, "elicitation/create", url).unwrap(),
            json!({"action": "decline"})
        );
        assert_eq!(
            ask(
                url_mode,
                "elicitation/create",
                json!({"mode": "url", "url": "file:///etc/passwd"})
            )
            .unwrap_err()
            .code,
            INVALID_PARAMS
        );
        assert_eq!(
            ask(url_mode, "elicitation/create", json!({}))
                .unwrap_err()
                .code,
            INVALID_PARAMS,
            "form mode is not declared"
        );
        let sampling = HandlerSupport {
            sampling: true,
            ..HandlerSupport::default()
        };
        assert!(ask(sampling, "sampling/createMessage", json!({"messages": []})).is_ok());
        assert_eq!(
            ask(sampling, "sampling/createMessage", json!({"tools": []}))
                .unwrap_err()
                .code,
            INVALID_PARAMS
        );
        assert_eq!(
            ask(
                sampling,
                "sampling/createMessage",
                json!({"includeContext": "thisServer"})
            )
            .unwrap_err()
            .code,
            INVALID_PARAMS
        );
        assert_eq!(
            ask(sampling, "roots/list", json!({})).unwrap_err().code,
            METHOD_NOT_FOUND
        );
    }

    #[test]
    fn a_cancelled_ask_is_remembered_by_id() {
        let asks = Asks::default();
        let flag = asks.begin(&json!(7));
        assert!(
            !asks.cancel(&json!("7")),
            "ids compare as JSON: 7 is not \"7\""
        );
        assert!(asks.cancel(&json!(7)));
        assert!(flag.load(Ordering::Acquire));
        asks.end(&json!(7));
        assert!(!asks.cancel(&json!(7)));
    }
}
