//! Every call kind: on a pool, naming the server, and on a session handed out by the pool.
//!
//! Each function reads its arguments, makes the call through the Rust API with the caller's
//! options, and writes its result as JSON last. Tool results go through [`tool_result`], so
//! `MCP_TOOL_ERROR` means the same everywhere.

use std::ffi::c_char;

use serde_json::Value;

use super::options::{
    batch_element, batch_options, call_options, mcp_batch_options, mcp_call_options,
};
use super::pool::{mcp_pool, mcp_session, pool_arg, session_arg};
use super::{json_arg, mcp_status, opt_json_arg, set_last_error, status, str_arg, to_json, Out};
use crate::{CallOptions, CallToolResult, Error, Pool, ToolCall};

/// Writes a tool's result; `MCP_TOOL_ERROR` (with the tool's text as the last error) when
/// the tool reported a failure.
///
/// # Safety
/// `out` is a writable `char *` by the caller's contract.
unsafe fn tool_result(
    out: Out<*mut c_char>,
    tool: &str,
    result: &CallToolResult,
) -> Result<mcp_status, Error> {
    // SAFETY: the caller's contract, passed on.
    unsafe { out.write_json(result) }?;
    if !result.is_error {
        return Ok(mcp_status::MCP_OK);
    }
    let message = format!("tool `{tool}` returned an error: {}", result.text());
    set_last_error(mcp_status::MCP_TOOL_ERROR, &message);
    Ok(mcp_status::MCP_TOOL_ERROR)
}

/// Arguments as JSON; NULL is none (`null`, which the call kinds take as `{}`).
///
/// # Safety
/// `text` is NULL or NUL-terminated.
unsafe fn arguments_arg(text: *const c_char, name: &str) -> Result<Value, Error> {
    // SAFETY: the caller's contract, passed on.
    Ok(unsafe { opt_json_arg(text, name) }?.unwrap_or(Value::Null))
}

/// The shared shape of the pool calls that take a server and options and write one JSON
/// text (what `call` returns).
///
/// # Safety
/// `pool` is NULL or a live handle; `server` NULL or NUL-terminated; `options` NULL or live
/// options; `out` NULL or a writable `char *`.
unsafe fn pool_call(
    function: &str,
    pool: *const mcp_pool,
    server: *const c_char,
    options: *const mcp_call_options,
    out: *mut *mut c_char,
    out_name: &str,
    call: impl FnOnce(&Pool, &str, CallOptions<'_>) -> Result<String, Error>,
) -> mcp_status {
    status(function, || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (pool, server, options) = unsafe {
            (
                pool_arg(pool)?,
                str_arg(server, "server")?,
                call_options(options)?,
            )
        };
        let out = Out::new(out, out_name)?;
        let text = call(pool, server, options)?;
        // SAFETY: `out` is a writable `char *` by the caller's contract.
        unsafe { out.write_string(text) };
        Ok(mcp_status::MCP_OK)
    })
}

/// Lists a server's tools (from the pool's cache when it is valid; on a per-caller server
/// the cache is the caller key's). On `MCP_OK` writes to `*tools_json` a JSON array of tool
/// objects (`name`, `description`, `inputSchema`, `annotations`, ...); free it with
/// `mcp_string_free`. `options` may be NULL (the defaults), as for every call.
///
/// # Safety
/// `pool` is NULL or a live handle; `server` NULL or a NUL-terminated string; `options` NULL
/// or live options; `tools_json` NULL or a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_list_tools(
    pool: *const mcp_pool,
    server: *const c_char,
    options: *const mcp_call_options,
    tools_json: *mut *mut c_char,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        pool_call(
            "mcp_pool_list_tools",
            pool,
            server,
            options,
            tools_json,
            "tools_json",
            |pool, server, options| to_json(&*pool.list_tools_with(server, options)?),
        )
    }
}

/// Calls a tool. `arguments_json` is a JSON object, or NULL for none.
///
/// On `MCP_OK`, and on `MCP_TOOL_ERROR` (the tool ran and returned `"isError": true`), writes
/// to `*result_json` the result: `{"content": [{"type": "text", "text": ...}, ...],
/// "structuredContent": ..., "isError": ...}`; free it with `mcp_string_free`. Nothing is
/// written on any other code.
///
/// A call that fails on a session that died before the request was written is retried on a
/// fresh session; one whose request was written is retried only when the tool is annotated
/// read-only or idempotent (otherwise `MCP_ERR_OUTCOME_UNKNOWN`).
///
/// # Safety
/// `pool` is NULL or a live handle; the strings NULL or NUL-terminated; `options` NULL or
/// live options; `result_json` NULL or a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_call_tool(
    pool: *const mcp_pool,
    server: *const c_char,
    tool: *const c_char,
    arguments_json: *const c_char,
    options: *const mcp_call_options,
    result_json: *mut *mut c_char,
) -> mcp_status {
    status("mcp_pool_call_tool", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (pool, server, tool, arguments, options) = unsafe {
            (
                pool_arg(pool)?,
                str_arg(server, "server")?,
                str_arg(tool, "tool")?,
                arguments_arg(arguments_json, "arguments_json")?,
                call_options(options)?,
            )
        };
        let out = Out::new(result_json, "result_json")?;
        let result = pool.call_tool_with(server, tool, arguments, options)?;
        // SAFETY: `result_json` is a writable `char *` by the caller's contract.
        unsafe { tool_result(out, tool, &result) }
    })
}

/// Lists a server's resources (every page): on `MCP_OK` writes a JSON array of resource
/// objects (`uri`, `name`, `mimeType`, ...) to `*resources_json`.
///
/// # Safety
/// As `mcp_pool_list_tools`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_list_resources(
    pool: *const mcp_pool,
    server: *const c_char,
    options: *const mcp_call_options,
    resources_json: *mut *mut c_char,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        pool_call(
            "mcp_pool_list_resources",
            pool,
            server,
            options,
            resources_json,
            "resources_json",
            |pool, server, options| to_json(&pool.list_resources_with(server, options)?),
        )
    }
}

/// Lists a server's resource templates (every page): on `MCP_OK` writes a JSON array of
/// template objects (`uriTemplate`, `name`, ...) to `*templates_json`.
///
/// # Safety
/// As `mcp_pool_list_tools`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_list_resource_templates(
    pool: *const mcp_pool,
    server: *const c_char,
    options: *const mcp_call_options,
    templates_json: *mut *mut c_char,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        pool_call(
            "mcp_pool_list_resource_templates",
            pool,
            server,
            options,
            templates_json,
            "templates_json",
            |pool, server, options| to_json(&pool.list_resource_templates_with(server, options)?),
        )
    }
}

/// Reads a resource: on `MCP_OK` writes the `resources/read` result (`{"contents": [{"uri",
/// "mimeType", "text" or "blob"}, ...]}`) to `*result_json`.
///
/// # Safety
/// As `mcp_pool_call_tool`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_read_resource(
    pool: *const mcp_pool,
    server: *const c_char,
    uri: *const c_char,
    options: *const mcp_call_options,
    result_json: *mut *mut c_char,
) -> mcp_status {
    let call = |pool: &Pool, server: &str, options: CallOptions<'_>| {
        // SAFETY: the caller's contract for `uri`.
        let uri = unsafe { str_arg(uri, "uri") }?;
        to_json(&pool.read_resource_with(server, uri, options)?)
    };
    // SAFETY: the caller's contract, passed on.
    unsafe {
        pool_call(
            "mcp_pool_read_resource",
            pool,
            server,
            options,
            result_json,
            "result_json",
            call,
        )
    }
}

/// Lists a server's prompts (every page): on `MCP_OK` writes a JSON array of prompt objects
/// (`name`, `description`, `arguments`, ...) to `*prompts_json`.
///
/// # Safety
/// As `mcp_pool_list_tools`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_list_prompts(
    pool: *const mcp_pool,
    server: *const c_char,
    options: *const mcp_call_options,
    prompts_json: *mut *mut c_char,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        pool_call(
            "mcp_pool_list_prompts",
            pool,
            server,
            options,
            prompts_json,
            "prompts_json",
            |pool, server, options| to_json(&pool.list_prompts_with(server, options)?),
        )
    }
}

/// Gets a prompt with its arguments (a JSON object of strings, or NULL for none): on
/// `MCP_OK` writes `{"description": ..., "messages": [{"role", "content"}, ...]}` to
/// `*result_json`.
///
/// # Safety
/// As `mcp_pool_call_tool`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_get_prompt(
    pool: *const mcp_pool,
    server: *const c_char,
    name: *const c_char,
    arguments_json: *const c_char,
    options: *const mcp_call_options,
    result_json: *mut *mut c_char,
) -> mcp_status {
    let call = |pool: &Pool, server: &str, options: CallOptions<'_>| {
        // SAFETY: the caller's contract for the strings.
        let (name, arguments) = unsafe {
            (
                str_arg(name, "name")?,
                arguments_arg(arguments_json, "arguments_json")?,
            )
        };
        to_json(&pool.get_prompt_with(server, name, arguments, options)?)
    };
    // SAFETY: the caller's contract, passed on.
    unsafe {
        pool_call(
            "mcp_pool_get_prompt",
            pool,
            server,
            options,
            result_json,
            "result_json",
            call,
        )
    }
}

/// Asks for completions (`completion/complete`): `reference_json` is the reference
/// (`{"type": "ref/prompt", "name": ...}` or `{"type": "ref/resource", "uri": ...}`),
/// `argument_json` the argument being completed (`{"name": ..., "value": ...}`). On `MCP_OK`
/// writes the `completion` object (`{"values": [...], "total", "hasMore"}`) to
/// `*completion_json`.
///
/// # Safety
/// As `mcp_pool_call_tool`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_complete(
    pool: *const mcp_pool,
    server: *const c_char,
    reference_json: *const c_char,
    argument_json: *const c_char,
    options: *const mcp_call_options,
    completion_json: *mut *mut c_char,
) -> mcp_status {
    let call = |pool: &Pool, server: &str, options: CallOptions<'_>| {
        // SAFETY: the caller's contract for the strings.
        let (reference, argument) = unsafe {
            (
                str_arg(reference_json, "reference_json")?,
                str_arg(argument_json, "argument_json")?,
            )
        };
        let reference = json_arg(reference, "reference_json")?;
        let argument = json_arg(argument, "argument_json")?;
        to_json(&pool.complete_with(server, reference, argument, options)?)
    };
    // SAFETY: the caller's contract, passed on.
    unsafe {
        pool_call(
            "mcp_pool_complete",
            pool,
            server,
            options,
            completion_json,
            "completion_json",
            call,
        )
    }
}

/// Checks that a server answers (`ping`, or `server/discover` in the per-request
/// generation) on one of its sessions. On `MCP_OK` writes the round trip in microseconds to
/// `*micros` unless it is NULL.
///
/// # Safety
/// `pool` is NULL or a live handle; `server` NULL or NUL-terminated; `options` NULL or live
/// options; `micros` NULL or a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_ping(
    pool: *const mcp_pool,
    server: *const c_char,
    options: *const mcp_call_options,
    micros: *mut u64,
) -> mcp_status {
    status("mcp_pool_ping", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (pool, server, options) = unsafe {
            (
                pool_arg(pool)?,
                str_arg(server, "server")?,
                call_options(options)?,
            )
        };
        let took = pool.ping_with(server, options)?;
        if let Ok(out) = Out::new(micros, "micros") {
            // SAFETY: not NULL; a writable `uint64_t` by the caller's contract.
            unsafe { out.write(u64::try_from(took.as_micros()).unwrap_or(u64::MAX)) };
        }
        Ok(mcp_status::MCP_OK)
    })
}

/// Sends any request to a server and writes its raw result (a JSON object) to
/// `*result_json` on `MCP_OK`. `params_json` is a JSON object, or NULL for none. Retried on
/// another session only when the request was never written or the method is read-only.
///
/// # Safety
/// As `mcp_pool_call_tool`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_request(
    pool: *const mcp_pool,
    server: *const c_char,
    method: *const c_char,
    params_json: *const c_char,
    options: *const mcp_call_options,
    result_json: *mut *mut c_char,
) -> mcp_status {
    let call = |pool: &Pool, server: &str, options: CallOptions<'_>| {
        // SAFETY: the caller's contract for the strings.
        let (method, params) = unsafe {
            (
                str_arg(method, "method")?,
                opt_json_arg(params_json, "params_json")?,
            )
        };
        to_json(&pool.request_with(server, method, params, options)?)
    };
    // SAFETY: the caller's contract, passed on.
    unsafe {
        pool_call(
            "mcp_pool_request",
            pool,
            server,
            options,
            result_json,
            "result_json",
            call,
        )
    }
}

/// Sends a notification (`method`, `params_json` a JSON object or NULL) to the server on
/// one of its sessions. Returns once it is queued for writing.
///
/// # Safety
/// `pool` is NULL or a live handle; the strings NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_notify(
    pool: *const mcp_pool,
    server: *const c_char,
    method: *const c_char,
    params_json: *const c_char,
) -> mcp_status {
    status("mcp_pool_notify", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (pool, server, method, params) = unsafe {
            (
                pool_arg(pool)?,
                str_arg(server, "server")?,
                str_arg(method, "method")?,
                opt_json_arg(params_json, "params_json")?,
            )
        };
        pool.notify(server, method, params)?;
        Ok(mcp_status::MCP_OK)
    })
}

/// Calls many tools of one server on one session without waiting between them.
/// `calls_json` is a JSON array of `{"tool": NAME, "arguments": {...}}` (`arguments` may be
/// left out). `options` (NULL for the defaults) give the whole batch one deadline, a cancel
/// token, a callback for each finished call and the caller key.
///
/// Returns `MCP_OK` when the batch ran, whatever each call's outcome, and writes to
/// `*results_json` a JSON array with one element per call, in order: the call's result
/// object (as `mcp_pool_call_tool` writes it, `"isError"` included), or
/// `{"error": {"code": MCP_ERR_..., "name": "MCP_ERR_...", "kind": "timeout", "message":
/// "..."}}` (the shape of `mcp_last_error_json`). Free it with `mcp_string_free`. A failure
/// of the pool rather than of a call fails the whole batch with one status and writes
/// nothing (and runs no callback): `MCP_ERR_UNKNOWN_SERVER`, `MCP_ERR_POOL_CLOSED`, or
/// `MCP_ERR_INVALID_ARGUMENT` for a per-caller server without a caller key.
///
/// # Safety
/// `pool` is NULL or a live handle; the strings NULL or NUL-terminated; `options` NULL or
/// live batch options; `results_json` NULL or a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_batch(
    pool: *const mcp_pool,
    server: *const c_char,
    calls_json: *const c_char,
    options: *const mcp_batch_options,
    results_json: *mut *mut c_char,
) -> mcp_status {
    status("mcp_pool_batch", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (pool, server, calls, options) = unsafe {
            (
                pool_arg(pool)?,
                str_arg(server, "server")?,
                str_arg(calls_json, "calls_json")?,
                batch_options(options)?,
            )
        };
        let calls: Vec<ToolCall> = serde_json::from_value(json_arg(calls, "calls_json")?)
            .map_err(|e| {
                Error::InvalidArgument(format!(
                    "`calls_json` must be an array of {{\"tool\": NAME, \"arguments\": {{...}}}}: {e}"
                ))
            })?;
        let out = Out::new(results_json, "results_json")?;
        let outcomes = pool.batch(server, &calls, options)?;
        let results: Vec<Value> = outcomes.iter().map(|o| batch_element(o).1).collect();
        // SAFETY: `results_json` is a writable `char *` by the caller's contract.
        unsafe { out.write_json(&results) }?;
        Ok(mcp_status::MCP_OK)
    })
}

// ---------------------------------------------------------------------------------------
// On a session.

/// Calls a tool on this session, as `mcp_pool_call_tool` (without its retries: a session is
/// one server process). The options' caller key is ignored.
///
/// # Safety
/// `session` is NULL or a live handle; the strings NULL or NUL-terminated; `options` NULL or
/// live options; `result_json` NULL or a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn mcp_session_call_tool(
    session: *const mcp_session,
    tool: *const c_char,
    arguments_json: *const c_char,
    options: *const mcp_call_options,
    result_json: *mut *mut c_char,
) -> mcp_status {
    status("mcp_session_call_tool", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (session, tool, arguments, options) = unsafe {
            (
                session_arg(session)?,
                str_arg(tool, "tool")?,
                arguments_arg(arguments_json, "arguments_json")?,
                call_options(options)?,
            )
        };
        let out = Out::new(result_json, "result_json")?;
        let result = session.call_tool_with(tool, arguments, options)?;
        // SAFETY: `result_json` is a writable `char *` by the caller's contract.
        unsafe { tool_result(out, tool, &result) }
    })
}

/// Sends any request on this session, as `mcp_pool_request`: the way to every other call
/// kind on a session (`resources/read`, `prompts/get`, ...).
///
/// # Safety
/// As `mcp_session_call_tool`.
#[no_mangle]
pub unsafe extern "C" fn mcp_session_request(
    session: *const mcp_session,
    method: *const c_char,
    params_json: *const c_char,
    options: *const mcp_call_options,
    result_json: *mut *mut c_char,
) -> mcp_status {
    status("mcp_session_request", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (session, method, params, options) = unsafe {
            (
                session_arg(session)?,
                str_arg(method, "method")?,
                opt_json_arg(params_json, "params_json")?,
                call_options(options)?,
            )
        };
        let out = Out::new(result_json, "result_json")?;
        let result = session.request_with(method, params, options)?;
        // SAFETY: `result_json` is a writable `char *` by the caller's contract.
        unsafe { out.write_json(&result) }?;
        Ok(mcp_status::MCP_OK)
    })
}

/// Sends a notification on this session (for example `notifications/roots/list_changed`).
///
/// # Safety
/// `session` is NULL or a live handle; the strings NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mcp_session_notify(
    session: *const mcp_session,
    method: *const c_char,
    params_json: *const c_char,
) -> mcp_status {
    status("mcp_session_notify", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (session, method, params) = unsafe {
            (
                session_arg(session)?,
                str_arg(method, "method")?,
                opt_json_arg(params_json, "params_json")?,
            )
        };
        session.notify(method, params)?;
        Ok(mcp_status::MCP_OK)
    })
}

/// Subscribes to changes of a resource: the handler's `on_resource_updated` hears of them
/// (`resources/subscribe` in the handshake generation, a `subscriptions/listen` stream in
/// the per-request one). The subscription lives as long as the session.
///
/// # Safety
/// `session` is NULL or a live handle; `uri` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mcp_session_subscribe(
    session: *const mcp_session,
    uri: *const c_char,
) -> mcp_status {
    status("mcp_session_subscribe", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (session, uri) = unsafe { (session_arg(session)?, str_arg(uri, "uri")?) };
        session.subscribe(uri)?;
        Ok(mcp_status::MCP_OK)
    })
}

/// Ends a subscription made with `mcp_session_subscribe`.
///
/// # Safety
/// `session` is NULL or a live handle; `uri` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mcp_session_unsubscribe(
    session: *const mcp_session,
    uri: *const c_char,
) -> mcp_status {
    status("mcp_session_unsubscribe", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (session, uri) = unsafe { (session_arg(session)?, str_arg(uri, "uri")?) };
        session.unsubscribe(uri)?;
        Ok(mcp_status::MCP_OK)
    })
}
