//! The callback table (`mcp_handler`), the reply a request callback fills (`mcp_reply`), and
//! the Rust [`ClientHandler`] and [`TokenProvider`] over them.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;
use std::sync::Arc;

use serde_json::Value;

use super::{
    c_text, json_arg, mcp_error_code_name, mcp_status, null_argument, quietly, status, str_arg,
};
use crate::jsonrpc::METHOD_NOT_FOUND;
use crate::{
    ClientHandler, ElicitAction, Error, HandlerError, HandlerSupport, ListKind, LogMessage,
    ServerRequest, Task, TokenProvider, TokenRequest, UrlElicitation,
};

/// A callback answering a request of the server (`roots/list`, `sampling/createMessage`,
/// `elicitation/create`): `server` is the server's name, `params_json` the request's params
/// as the server sent them (`{}` when it sent none). It answers through `reply` (valid only
/// during the call) with `mcp_reply_json` and returns `MCP_OK`; or it returns another code
/// (the server then gets the spec's error: -1 "User rejected sampling request" for sampling,
/// -32603 internal error otherwise), or sets its own error with `mcp_reply_error`. Returns
/// an `int` rather than `mcp_status` so that any value a callback returns is defined: 0 is
/// `MCP_OK`, anything else a failure.
pub type mcp_request_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        server: *const c_char,
        params_json: *const c_char,
        reply: *mut mcp_reply,
    ) -> c_int,
>;

/// A callback giving the bearer token of an HTTP server's requests: asked before the
/// session's first request, and once more after a refusal (401, or 403 with `error="insufficient_scope"`),
/// then with `challenge`, the refusal's `WWW-Authenticate` value (NULL the first time). It
/// answers with `mcp_reply_text(reply, token)` and returns `MCP_OK`; any other return, or
/// `mcp_reply_error`, fails the call with `MCP_ERR_UNAUTHORIZED`. The token is sent only to
/// the configured server's origin, never logged.
pub type mcp_token_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        server: *const c_char,
        url: *const c_char,
        challenge: *const c_char,
        reply: *mut mcp_reply,
    ) -> c_int,
>;

/// The callbacks of a client: what it answers when a server asks (roots, sampling,
/// elicitation in form and URL mode, an HTTP bearer token) and what it does with the
/// server's notifications. Every member is optional: zero the struct (`mcp_handler h = {0};`)
/// and set what you support. The capabilities declared to servers follow what is set:
/// `roots` (with `listChanged` when `roots_list_changed`), `sampling` (with `tools`,
/// `context` when those flags are set), `elicitation` with `form` and/or `url`. A request
/// for anything not declared is refused without reaching a callback. Both protocol
/// generations use the same callbacks: the handshake generation's server-to-client requests
/// and the per-request generation's input requests.
///
/// Given to `mcp_pool_builder_set_handler`, which copies the struct. Every string a callback
/// gets is UTF-8, NUL-terminated, and valid only during the callback.
///
/// Threads: the request callbacks (`roots`, `sampling`, `elicitation`, `elicitation_url`)
/// run on a library thread of their own (`mcp-handler-SERVER`, one per request being
/// answered, at most 32 per session), may block (a user, a model), should look at
/// `mcp_reply_is_cancelled` now and then while they do, and may call any function of the
/// library, calls on the same pool included. `token` runs on the thread sending the request.
/// The notification callbacks (`on_*`) run on the thread reading the session's output at
/// the time: the session's worker (`mcp-worker-SERVER`) or the thread of a caller waiting
/// for an answer on that session (one of yours, inside a call function). They must return
/// quickly and must not call the same server (a call that lands on the session being read
/// fails at once with `MCP_ERR_INVALID_ARGUMENT`; one on another session of the server
/// would hold up this session's output while it waits) or wait for one: record the news and hand work to another
/// thread; `mcp_cancel_token_cancel`, `mcp_pool_stats_json` and the string functions are
/// fine. Any callback may run on several threads at once, so `userdata` must be
/// thread-safe. A callback must return normally: a `longjmp` out of it, or a C++ exception
/// through it, is undefined behaviour.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy)]
pub struct mcp_handler {
    /// Passed to every callback.
    pub userdata: *mut c_void,
    /// Answers `roots/list`: `{"roots": [{"uri": "file:///...", "name": "..."}]}`.
    pub roots: mcp_request_callback,
    /// Declares `roots.listChanged` (handshake generation): the application sends
    /// `notifications/roots/list_changed` itself, with `mcp_session_notify`.
    pub roots_list_changed: bool,
    /// Answers `sampling/createMessage`: a `CreateMessageResult` (`{"role": "assistant",
    /// "content": {"type": "text", "text": "..."}, "model": "..."}`).
    pub sampling: mcp_request_callback,
    /// Sampling requests may carry `tools` and `toolChoice` (`sampling.tools`).
    pub sampling_tools: bool,
    /// Sampling requests may ask for context (`includeContext`; `sampling.context`).
    pub sampling_context: bool,
    /// Answers a form-mode `elicitation/create`: `{"action": "accept", "content": {...}}`,
    /// or `{"action": "decline"}` / `{"action": "cancel"}`.
    pub elicitation: mcp_request_callback,
    /// Answers a URL-mode `elicitation/create` (`params_json` has `url`, `message` and, in
    /// the handshake generation, `elicitationId`; the URL is http or https): show the URL,
    /// ask the user, and answer `{"action": "accept"}` (the user will open it), `"decline"`
    /// or `"cancel"`. The library never opens the URL.
    pub elicitation_url: mcp_request_callback,
    /// Gives HTTP servers their bearer token (ignored for servers started as commands).
    pub token: mcp_token_callback,
    /// A list of the server's changed (`notifications/tools/list_changed` and the same for
    /// resources and prompts): `kind` is `"tools"`, `"resources"` or `"prompts"`.
    pub on_list_changed: Option<
        unsafe extern "C" fn(userdata: *mut c_void, server: *const c_char, kind: *const c_char),
    >,
    /// A subscribed resource changed (`notifications/resources/updated`; subscribe with
    /// `mcp_session_subscribe`).
    pub on_resource_updated: Option<
        unsafe extern "C" fn(userdata: *mut c_void, server: *const c_char, uri: *const c_char),
    >,
    /// A log message of the server (`notifications/message`): `level` (`"debug"` ...
    /// `"emergency"`), `logger` (NULL when unnamed) and `data_json`, the message as JSON.
    pub on_log: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            server: *const c_char,
            level: *const c_char,
            logger: *const c_char,
            data_json: *const c_char,
        ),
    >,
    /// A task's status changed (`notifications/tasks/status`): the task as JSON (`taskId`,
    /// `status`, `statusMessage`, ...).
    pub on_task_status: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            server: *const c_char,
            task_json: *const c_char,
        ),
    >,
    /// The out-of-band part of a URL elicitation is done
    /// (`notifications/elicitation/complete`).
    pub on_elicitation_complete: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            server: *const c_char,
            elicitation_id: *const c_char,
        ),
    >,
    /// Any other notification (a server's own, say): its method and params as JSON.
    pub on_notification: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            server: *const c_char,
            method: *const c_char,
            params_json: *const c_char,
        ),
    >,
    /// Called once per copy the library keeps (once per successful
    /// `mcp_pool_builder_set_handler`; a table given for two servers is released twice),
    /// on any thread, when the library will call none of that copy's callbacks any
    /// more (after the pool is freed and the last callback returned, or when the builder it
    /// was given to is freed or fails to build): free `userdata` here.
    pub release: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

/// Where a request callback puts its answer (`mcp_reply_json`, `mcp_reply_error`) and a
/// token callback its token (`mcp_reply_text`). Handed to the callback, valid only until it
/// returns; the last answer set wins.
#[allow(non_camel_case_types)]
pub struct mcp_reply {
    answer: Option<Answer>,
    /// The request being answered, alive during the callback (NULL for a token).
    request: *const ServerRequest<'static>,
    /// The caller key of the session asking (per-caller servers).
    caller: Option<CString>,
}

enum Answer {
    Json(Value),
    Text(String),
    Error(HandlerError),
}

impl mcp_reply {
    fn new(request: Option<&ServerRequest<'_>>, caller: Option<&str>) -> mcp_reply {
        mcp_reply {
            answer: None,
            request: request.map_or(ptr::null(), |r| {
                (r as *const ServerRequest<'_>).cast::<ServerRequest<'static>>()
            }),
            caller: caller.map(c_text),
        }
    }
}

/// The library's copy of a callback table, shared by the servers it was given to.
pub(super) struct CHandler {
    table: mcp_handler,
}

// SAFETY: the contract of `mcp_handler` (documented above): its callbacks may be called from
// any thread, several at once, with its userdata.
unsafe impl Send for CHandler {}
// SAFETY: as for `Send`; the table itself is never changed after the copy.
unsafe impl Sync for CHandler {}

impl Drop for CHandler {
    fn drop(&mut self) {
        if let Some(release) = self.table.release {
            // SAFETY: the table's contract: `release` takes its userdata, once; no callback of
            // this copy can run any more (this is its last reference).
            quietly((), || unsafe { release(self.table.userdata) });
        }
    }
}

impl CHandler {
    /// Copies a table.
    ///
    /// # Safety
    /// `table` is NULL or points to a readable `mcp_handler`.
    pub(super) unsafe fn copy(table: *const mcp_handler) -> Result<Arc<CHandler>, Error> {
        // SAFETY: the caller's contract; the struct is plain data, copied.
        let table = unsafe { table.as_ref() }.ok_or_else(|| null_argument("handler"))?;
        Ok(Arc::new(CHandler { table: *table }))
    }

    /// Whether the table gives HTTP tokens.
    pub(super) fn gives_tokens(&self) -> bool {
        self.table.token.is_some()
    }

    /// Asks a request callback, and reads its reply.
    fn ask(
        &self,
        callback: mcp_request_callback,
        request: &ServerRequest<'_>,
    ) -> Result<Value, HandlerError> {
        let method = request.method();
        let Some(callback) = callback else {
            // Not reached: `supports` declares only what has a callback.
            return Err(HandlerError {
                code: METHOD_NOT_FOUND,
                message: format!("{method} is not supported by this client"),
            });
        };
        let server = c_text(request.server());
        let params = c_text(&request.params().to_string());
        let mut reply = mcp_reply::new(Some(request), request.caller());
        // SAFETY: the table's contract for a request callback; the strings and the reply
        // outlive the call.
        let code = unsafe {
            callback(
                self.table.userdata,
                server.as_ptr(),
                params.as_ptr(),
                &mut reply,
            )
        };
        match (code, reply.answer) {
            (_, Some(Answer::Error(error))) => Err(error),
            (0, Some(Answer::Json(result))) => Ok(result),
            (0, _) => Err(HandlerError::internal(format!(
                "the client's {method} callback returned MCP_OK without mcp_reply_json"
            ))),
            // The spec's error for a refused sampling request.
            _ if method == "sampling/createMessage" => Err(HandlerError {
                code: -1,
                message: "User rejected sampling request".into(),
            }),
            (code, _) => Err(HandlerError::internal(format!(
                "the client's {method} callback failed ({})",
                code_name(code)
            ))),
        }
    }

    /// Runs a notification callback, if set, with C strings of `args`.
    fn tell<F: Copy, const N: usize>(
        &self,
        callback: Option<F>,
        args: [Option<&str>; N],
        call: impl FnOnce(F, *mut c_void, [*const c_char; N]),
    ) {
        let Some(callback) = callback else { return };
        quietly((), || {
            let texts = args.map(|a| a.map(c_text));
            let pointers =
                std::array::from_fn(|i| texts[i].as_ref().map_or(ptr::null(), |t| t.as_ptr()));
            call(callback, self.table.userdata, pointers);
        });
    }
}

fn code_name(code: c_int) -> String {
    // SAFETY: `mcp_error_code_name` returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(mcp_error_code_name(code)) }
        .to_string_lossy()
        .into_owned()
}

impl ClientHandler for CHandler {
    fn supports(&self) -> HandlerSupport {
        let t = &self.table;
        HandlerSupport {
            roots: t.roots.is_some(),
            roots_list_changed: t.roots.is_some() && t.roots_list_changed,
            sampling: t.sampling.is_some(),
            sampling_tools: t.sampling.is_some() && t.sampling_tools,
            sampling_context: t.sampling.is_some() && t.sampling_context,
            elicitation_form: t.elicitation.is_some(),
            elicitation_url: t.elicitation_url.is_some(),
        }
    }

    fn roots(&self, request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        self.ask(self.table.roots, request)
    }

    fn sampling(&self, request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        self.ask(self.table.sampling, request)
    }

    fn elicitation(&self, request: &ServerRequest<'_>) -> Result<Value, HandlerError> {
        self.ask(self.table.elicitation, request)
    }

    fn elicitation_url(
        &self,
        request: &ServerRequest<'_>,
        _elicitation: &UrlElicitation,
    ) -> Result<ElicitAction, HandlerError> {
        let answer = self.ask(self.table.elicitation_url, request)?;
        match answer.get("action").and_then(Value::as_str) {
            Some("accept") => Ok(ElicitAction::Accept),
            Some("decline") => Ok(ElicitAction::Decline),
            Some("cancel") => Ok(ElicitAction::Cancel),
            _ => Err(HandlerError::internal(
                "the client's URL elicitation callback answered no action \
                 (accept, decline or cancel)",
            )),
        }
    }

    fn on_elicitation_complete(&self, server: &str, elicitation_id: &str) {
        self.tell(
            self.table.on_elicitation_complete,
            [Some(server), Some(elicitation_id)],
            // SAFETY: the table's contract; the strings outlive the call.
            |f, userdata, [s, id]| unsafe { f(userdata, s, id) },
        );
    }

    fn on_list_changed(&self, server: &str, kind: ListKind) {
        let kind = match kind {
            ListKind::Tools => "tools",
            ListKind::Resources => "resources",
            ListKind::Prompts => "prompts",
        };
        self.tell(
            self.table.on_list_changed,
            [Some(server), Some(kind)],
            // SAFETY: the table's contract; the strings outlive the call.
            |f, userdata, [s, k]| unsafe { f(userdata, s, k) },
        );
    }

    fn on_resource_updated(&self, server: &str, uri: &str) {
        self.tell(
            self.table.on_resource_updated,
            [Some(server), Some(uri)],
            // SAFETY: the table's contract; the strings outlive the call.
            |f, userdata, [s, u]| unsafe { f(userdata, s, u) },
        );
    }

    fn on_log(&self, server: &str, message: &LogMessage) {
        let data = message.data.to_string();
        self.tell(
            self.table.on_log,
            [
                Some(server),
                Some(message.level.as_str()),
                message.logger.as_deref(),
                Some(&data),
            ],
            // SAFETY: the table's contract; the strings outlive the call.
            |f, userdata, [s, level, logger, data]| unsafe { f(userdata, s, level, logger, data) },
        );
    }

    fn on_task_status(&self, server: &str, task: &Task) {
        let task = serde_json::to_string(task).unwrap_or_default();
        self.tell(
            self.table.on_task_status,
            [Some(server), Some(&task)],
            // SAFETY: the table's contract; the strings outlive the call.
            |f, userdata, [s, t]| unsafe { f(userdata, s, t) },
        );
    }

    fn on_notification(&self, server: &str, method: &str, params: &Value) {
        let params = params.to_string();
        self.tell(
            self.table.on_notification,
            [Some(server), Some(method), Some(&params)],
            // SAFETY: the table's contract; the strings outlive the call.
            |f, userdata, [s, m, p]| unsafe { f(userdata, s, m, p) },
        );
    }
}

/// The table's `token` callback as a [`TokenProvider`].
pub(super) struct CToken(pub(super) Arc<CHandler>);

impl TokenProvider for CToken {
    fn token(&self, request: &TokenRequest<'_>) -> Result<String, String> {
        let table = &self.0.table;
        let Some(callback) = table.token else {
            return Err("no token callback".into());
        };
        let server = c_text(request.server);
        let url = c_text(request.url);
        let challenge = request.challenge.map(|c| c_text(&c.to_string()));
        let mut reply = mcp_reply::new(None, request.caller);
        // SAFETY: the table's contract for `token`; the strings and the reply outlive the
        // call.
        let code = unsafe {
            callback(
                table.userdata,
                server.as_ptr(),
                url.as_ptr(),
                challenge.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                &mut reply,
            )
        };
        match (code, reply.answer) {
            (_, Some(Answer::Error(error))) => Err(error.message),
            (0, Some(Answer::Text(token))) => Ok(token),
            (0, _) => Err("the token callback returned MCP_OK without mcp_reply_text".into()),
            (code, _) => Err(format!("the token callback failed ({})", code_name(code))),
        }
    }
}

/// The reply behind a pointer.
///
/// # Safety
/// `reply` is NULL or the reply handed to a callback that is still running.
unsafe fn reply_arg<'a>(reply: *mut mcp_reply) -> Result<&'a mut mcp_reply, Error> {
    // SAFETY: the caller's contract: a live reply, used by this thread only meanwhile.
    unsafe { reply.as_mut() }.ok_or_else(|| null_argument("reply"))
}

/// Answers the request with a result, a JSON object (see each callback for its shape).
/// Returns `MCP_ERR_INVALID_ARGUMENT` for NULL, text that is not UTF-8 or JSON, or JSON that
/// is not an object; the reply is then unchanged.
///
/// # Safety
/// `reply` is NULL or the reply of a callback still running; `result_json` NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mcp_reply_json(
    reply: *mut mcp_reply,
    result_json: *const c_char,
) -> mcp_status {
    status("mcp_reply_json", || {
        // SAFETY: the caller's contract for each pointer.
        let (reply, text) = unsafe { (reply_arg(reply)?, str_arg(result_json, "result_json")?) };
        let result = json_arg(text, "result_json")?;
        if !result.is_object() {
            return Err(Error::InvalidArgument(
                "`result_json` must be a JSON object".into(),
            ));
        }
        reply.answer = Some(Answer::Json(result));
        Ok(mcp_status::MCP_OK)
    })
}

/// Answers a token callback with the token (without `Bearer `).
///
/// # Safety
/// `reply` is NULL or the reply of a callback still running; `text` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mcp_reply_text(reply: *mut mcp_reply, text: *const c_char) -> mcp_status {
    status("mcp_reply_text", || {
        // SAFETY: the caller's contract for each pointer.
        let (reply, text) = unsafe { (reply_arg(reply)?, str_arg(text, "text")?) };
        reply.answer = Some(Answer::Text(text.to_owned()));
        Ok(mcp_status::MCP_OK)
    })
}

/// Answers the request with a JSON-RPC error of the callback's choosing (for example
/// -32602 for params it cannot use); whatever the callback then returns, the server gets
/// this error.
///
/// # Safety
/// `reply` is NULL or the reply of a callback still running; `message` NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mcp_reply_error(
    reply: *mut mcp_reply,
    code: i64,
    message: *const c_char,
) -> mcp_status {
    status("mcp_reply_error", || {
        // SAFETY: the caller's contract for each pointer.
        let (reply, message) = unsafe { (reply_arg(reply)?, str_arg(message, "message")?) };
        reply.answer = Some(Answer::Error(HandlerError {
            code,
            message: message.to_owned(),
        }));
        Ok(mcp_status::MCP_OK)
    })
}

/// The caller key of the session asking, on a pool server with `"sharing": "per-caller"`:
/// whose roots, model, consent or token this is. NULL on a shared server, and for NULL.
/// The string belongs to the reply: valid until the callback returns.
///
/// # Safety
/// `reply` is NULL or the reply of a callback still running.
#[no_mangle]
pub unsafe extern "C" fn mcp_reply_caller(reply: *const mcp_reply) -> *const c_char {
    quietly(ptr::null(), || {
        // SAFETY: the caller's contract: a live reply.
        unsafe { reply.as_ref() }
            .and_then(|r| r.caller.as_ref())
            .map_or(ptr::null(), |c| c.as_ptr())
    })
}

/// Whether the answer is no longer wanted: the server cancelled its request, the call it
/// belongs to ended (deadline, cancel), or the session ended (closed, `mcp_pool_close` or
/// `mcp_pool_free`, the server gone). A callback waiting on a user looks at this now and
/// then and gives up; what it answers then is not sent. `false` for NULL and for a token
/// request.
///
/// # Safety
/// `reply` is NULL or the reply of a callback still running.
#[no_mangle]
pub unsafe extern "C" fn mcp_reply_is_cancelled(reply: *const mcp_reply) -> bool {
    quietly(false, || {
        // SAFETY: the caller's contract: a live reply; its request lives as long as the
        // callback.
        unsafe { reply.as_ref().and_then(|r| r.request.as_ref()) }
            .is_some_and(ServerRequest::is_cancelled)
    })
}
