//! The C ABI: an opaque `mcp_pool` handle over a [`Pool`], JSON text in and out.
//!
//! This module and `process.rs` (a few system calls) are the only places with `unsafe`; every
//! block says why it is sound. `include/mcp_pool.h` is generated from this file by cbindgen
//! (settings in `cbindgen.toml`, overview text in its `header`): the doc comments of the
//! exported items are the C documentation, so they speak C.
//!
//! Shape of every exported function: check the pointers it was given (NULL, UTF-8, JSON),
//! do the work through the safe Rust API, write outputs last, and run all of it inside
//! [`status()`] or [`pointer()`], which hold the panic boundary and this thread's last error.
#![deny(unsafe_op_in_unsafe_fn)]

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{CallOptions, Error, Pool, PoolBuilder, ToolCall};

/// A pool of MCP sessions over the servers of one configuration. Opaque: create it with
/// `mcp_pool_new`, free it with `mcp_pool_free`. One handle may be used from any number of
/// threads at once.
#[allow(non_camel_case_types)]
pub struct mcp_pool {
    pool: Pool,
    /// What loading the configuration warned about (unknown keys, skipped servers).
    warnings: Vec<String>,
}

/// The status codes returned by the functions that return `int`. The numbers are stable:
/// codes are only ever added, at the end. `mcp_error_code_name` gives a code's name.
#[repr(C)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum mcp_status {
    /// Success: the outputs are written.
    MCP_OK = 0,
    /// The tool ran and reported a failure (`"isError": true`). The result JSON is still
    /// written (and must be freed); `mcp_last_error` gives the tool's text.
    MCP_TOOL_ERROR = 1,
    /// A NULL pointer, a string that is not UTF-8, JSON that does not parse or has the wrong
    /// shape (arguments that are not an object, ...).
    MCP_ERR_INVALID_ARGUMENT = 2,
    /// The configuration given to `mcp_pool_new` is invalid (including JSON that does not
    /// parse).
    MCP_ERR_CONFIG = 3,
    /// The server's process could not be started (or a thread of the pool could not be).
    MCP_ERR_SPAWN = 4,
    /// The server started but the MCP handshake failed.
    MCP_ERR_HANDSHAKE = 5,
    /// The call's deadline passed (`timeout_ms`, or the server's configured timeout).
    MCP_ERR_TIMEOUT = 6,
    /// The server answered with a JSON-RPC error (an unknown method, bad params, ...).
    MCP_ERR_SERVER = 7,
    /// The session ended before the request was written: it did not run. Safe to retry.
    MCP_ERR_SESSION_CLOSED = 8,
    /// The request was written but the session ended (the server crashed) before an answer
    /// came: the tool may or may not have run. Not retried automatically.
    MCP_ERR_OUTCOME_UNKNOWN = 9,
    /// `mcp_pool_close` was called on this pool.
    MCP_ERR_POOL_CLOSED = 10,
    /// Every session of the server stayed busy for longer than the queue timeout.
    MCP_ERR_POOL_BUSY = 11,
    /// The server failed to start repeatedly and is cooling down; calls fail fast.
    MCP_ERR_SERVER_FAILING = 12,
    /// No server of that name is configured.
    MCP_ERR_UNKNOWN_SERVER = 13,
    /// The server broke the protocol (an answer of the wrong shape, an oversize message, ...).
    MCP_ERR_PROTOCOL = 14,
    /// The request was cancelled.
    MCP_ERR_CANCELLED = 15,
    /// A bug: the library panicked. The message says where; the handle stays usable.
    MCP_ERR_PANIC = 16,
    /// The server's answer was over the message size limit (`maxMessageBytes`); it was
    /// dropped and the session goes on. Repeating the call gives the same.
    MCP_ERR_TOO_LARGE = 17,
    /// The server asked for input (elicitation, sampling, roots) the client did not give:
    /// no handler for it, or the handler refused.
    MCP_ERR_INPUT_REFUSED = 18,
    /// The tool's structured result does not match its declared output schema.
    MCP_ERR_INVALID_OUTPUT = 19,
    /// Refused before sending: the protocol version removed the method, or the server did
    /// not declare the capability it needs.
    MCP_ERR_UNSUPPORTED = 20,
    /// The server needs the user to complete URL elicitations first (error -32042).
    MCP_ERR_URL_ELICITATION_REQUIRED = 21,
    /// An HTTP server could not be reached (refused, unknown host, TLS, a broken
    /// connection).
    MCP_ERR_CONNECT = 22,
    /// An HTTP server answered a status that carries no MCP answer.
    MCP_ERR_HTTP = 23,
    /// An HTTP server refused the credentials (401, or 403 for too narrow a scope).
    MCP_ERR_UNAUTHORIZED = 24,
}

impl mcp_status {
    /// Every code, in numeric order (`ALL[i] as c_int == i`).
    const ALL: [mcp_status; 25] = [
        mcp_status::MCP_OK,
        mcp_status::MCP_TOOL_ERROR,
        mcp_status::MCP_ERR_INVALID_ARGUMENT,
        mcp_status::MCP_ERR_CONFIG,
        mcp_status::MCP_ERR_SPAWN,
        mcp_status::MCP_ERR_HANDSHAKE,
        mcp_status::MCP_ERR_TIMEOUT,
        mcp_status::MCP_ERR_SERVER,
        mcp_status::MCP_ERR_SESSION_CLOSED,
        mcp_status::MCP_ERR_OUTCOME_UNKNOWN,
        mcp_status::MCP_ERR_POOL_CLOSED,
        mcp_status::MCP_ERR_POOL_BUSY,
        mcp_status::MCP_ERR_SERVER_FAILING,
        mcp_status::MCP_ERR_UNKNOWN_SERVER,
        mcp_status::MCP_ERR_PROTOCOL,
        mcp_status::MCP_ERR_CANCELLED,
        mcp_status::MCP_ERR_PANIC,
        mcp_status::MCP_ERR_TOO_LARGE,
        mcp_status::MCP_ERR_INPUT_REFUSED,
        mcp_status::MCP_ERR_INVALID_OUTPUT,
        mcp_status::MCP_ERR_UNSUPPORTED,
        mcp_status::MCP_ERR_URL_ELICITATION_REQUIRED,
        mcp_status::MCP_ERR_CONNECT,
        mcp_status::MCP_ERR_HTTP,
        mcp_status::MCP_ERR_UNAUTHORIZED,
    ];

    /// The code's C name, NUL-terminated.
    fn name(self) -> &'static str {
        match self {
            mcp_status::MCP_OK => "MCP_OK\0",
            mcp_status::MCP_TOOL_ERROR => "MCP_TOOL_ERROR\0",
            mcp_status::MCP_ERR_INVALID_ARGUMENT => "MCP_ERR_INVALID_ARGUMENT\0",
            mcp_status::MCP_ERR_CONFIG => "MCP_ERR_CONFIG\0",
            mcp_status::MCP_ERR_SPAWN => "MCP_ERR_SPAWN\0",
            mcp_status::MCP_ERR_HANDSHAKE => "MCP_ERR_HANDSHAKE\0",
            mcp_status::MCP_ERR_TIMEOUT => "MCP_ERR_TIMEOUT\0",
            mcp_status::MCP_ERR_SERVER => "MCP_ERR_SERVER\0",
            mcp_status::MCP_ERR_SESSION_CLOSED => "MCP_ERR_SESSION_CLOSED\0",
            mcp_status::MCP_ERR_OUTCOME_UNKNOWN => "MCP_ERR_OUTCOME_UNKNOWN\0",
            mcp_status::MCP_ERR_POOL_CLOSED => "MCP_ERR_POOL_CLOSED\0",
            mcp_status::MCP_ERR_POOL_BUSY => "MCP_ERR_POOL_BUSY\0",
            mcp_status::MCP_ERR_SERVER_FAILING => "MCP_ERR_SERVER_FAILING\0",
            mcp_status::MCP_ERR_UNKNOWN_SERVER => "MCP_ERR_UNKNOWN_SERVER\0",
            mcp_status::MCP_ERR_PROTOCOL => "MCP_ERR_PROTOCOL\0",
            mcp_status::MCP_ERR_CANCELLED => "MCP_ERR_CANCELLED\0",
            mcp_status::MCP_ERR_PANIC => "MCP_ERR_PANIC\0",
            mcp_status::MCP_ERR_TOO_LARGE => "MCP_ERR_TOO_LARGE\0",
            mcp_status::MCP_ERR_INPUT_REFUSED => "MCP_ERR_INPUT_REFUSED\0",
            mcp_status::MCP_ERR_INVALID_OUTPUT => "MCP_ERR_INVALID_OUTPUT\0",
            mcp_status::MCP_ERR_UNSUPPORTED => "MCP_ERR_UNSUPPORTED\0",
            mcp_status::MCP_ERR_URL_ELICITATION_REQUIRED => "MCP_ERR_URL_ELICITATION_REQUIRED\0",
            mcp_status::MCP_ERR_CONNECT => "MCP_ERR_CONNECT\0",
            mcp_status::MCP_ERR_HTTP => "MCP_ERR_HTTP\0",
            mcp_status::MCP_ERR_UNAUTHORIZED => "MCP_ERR_UNAUTHORIZED\0",
        }
    }

    /// The code of an error. Exhaustive on purpose: a new `Error` variant must pick a code.
    fn of(error: &Error) -> mcp_status {
        match error {
            Error::Spawn { .. } => mcp_status::MCP_ERR_SPAWN,
            Error::Handshake { .. } => mcp_status::MCP_ERR_HANDSHAKE,
            Error::Server { .. } => mcp_status::MCP_ERR_SERVER,
            Error::Timeout { .. } => mcp_status::MCP_ERR_TIMEOUT,
            Error::Cancelled => mcp_status::MCP_ERR_CANCELLED,
            Error::SessionClosed { .. } => mcp_status::MCP_ERR_SESSION_CLOSED,
            Error::OutcomeUnknown { .. } => mcp_status::MCP_ERR_OUTCOME_UNKNOWN,
            Error::TooLarge { .. } => mcp_status::MCP_ERR_TOO_LARGE,
            Error::InputRefused { .. } => mcp_status::MCP_ERR_INPUT_REFUSED,
            Error::InvalidOutput { .. } => mcp_status::MCP_ERR_INVALID_OUTPUT,
            Error::Unsupported { .. } => mcp_status::MCP_ERR_UNSUPPORTED,
            Error::UrlElicitationRequired { .. } => mcp_status::MCP_ERR_URL_ELICITATION_REQUIRED,
            Error::Protocol(_) => mcp_status::MCP_ERR_PROTOCOL,
            Error::Connect { .. } => mcp_status::MCP_ERR_CONNECT,
            Error::Http { .. } => mcp_status::MCP_ERR_HTTP,
            Error::Unauthorized { .. } => mcp_status::MCP_ERR_UNAUTHORIZED,
            Error::InvalidArgument(_) => mcp_status::MCP_ERR_INVALID_ARGUMENT,
            Error::Config(_) => mcp_status::MCP_ERR_CONFIG,
            Error::PoolClosed => mcp_status::MCP_ERR_POOL_CLOSED,
            Error::PoolBusy { .. } => mcp_status::MCP_ERR_POOL_BUSY,
            Error::ServerFailing { .. } => mcp_status::MCP_ERR_SERVER_FAILING,
            Error::UnknownServer(_) => mcp_status::MCP_ERR_UNKNOWN_SERVER,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The panic boundary and this thread's last error.

thread_local! {
    /// The last failure of a call on this thread: its code and message.
    static LAST_ERROR: RefCell<Option<(mcp_status, CString)>> = const { RefCell::new(None) };
}

fn set_last_error(code: mcp_status, message: &str) {
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // `try_with`: called while this thread's locals are being destroyed (from an `atexit`
    // handler or a thread-exit destructor), there is nowhere to keep the message.
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = Some((code, message)));
}

fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = None);
}

fn panic_message(function: &str, payload: &(dyn Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("panic in {function}: {what}")
}

/// Runs the body of a function that returns a status code: clears the last error, catches a
/// panic, and records the message of a failure as this thread's last error.
fn status(function: &str, body: impl FnOnce() -> Result<mcp_status, Error>) -> c_int {
    let code = match catch_unwind(AssertUnwindSafe(|| {
        clear_last_error();
        body()
    })) {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            let code = mcp_status::of(&error);
            set_last_error(code, &error.to_string());
            code
        }
        Err(payload) => {
            set_last_error(
                mcp_status::MCP_ERR_PANIC,
                &panic_message(function, &*payload),
            );
            mcp_status::MCP_ERR_PANIC
        }
    };
    code as c_int
}

/// [`status`] for a function that returns a pointer: NULL on failure.
fn pointer<T>(function: &str, body: impl FnOnce() -> Result<*mut T, Error>) -> *mut T {
    let mut out = ptr::null_mut();
    status(function, || {
        out = body()?;
        Ok(mcp_status::MCP_OK)
    });
    out
}

/// Runs the body of a function that reports no errors, ignoring a panic (the panic hook
/// has printed it); gives `fallback` then.
fn quietly<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

// ---------------------------------------------------------------------------------------
// Reading arguments and writing outputs.

fn null_argument(name: &str) -> Error {
    Error::InvalidArgument(format!("`{name}` is NULL"))
}

/// The pool behind a handle.
///
/// # Safety
/// `pool` is NULL or a handle from `mcp_pool_new` that was not freed.
unsafe fn pool_arg<'a>(pool: *const mcp_pool) -> Result<&'a Pool, Error> {
    // SAFETY: the caller promises NULL or a live handle, which stays alive while it is used
    // (freeing a handle in use is documented as the caller's bug). Only shared references are
    // made, and `Pool` is `Sync`, so any number of threads may hold one at once.
    match unsafe { pool.as_ref() } {
        Some(handle) => Ok(&handle.pool),
        None => Err(null_argument("pool")),
    }
}

/// A string argument, checked for NULL and UTF-8.
///
/// # Safety
/// `text` is NULL or points to a NUL-terminated string that stays unchanged while `'a` lasts.
unsafe fn str_arg<'a>(text: *const c_char, name: &str) -> Result<&'a str, Error> {
    if text.is_null() {
        return Err(null_argument(name));
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for `'a`.
    let text = unsafe { CStr::from_ptr(text) };
    text.to_str()
        .map_err(|e| Error::InvalidArgument(format!("`{name}` is not valid UTF-8: {e}")))
}

fn json_arg(text: &str, name: &str) -> Result<Value, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::InvalidArgument(format!("`{name}` is not valid JSON: {e}")))
}

/// Where a function writes a string it returns. Checked before any work is done, written
/// last, so nothing is written on failure.
struct Out {
    at: *mut *mut c_char,
}

impl Out {
    fn new(at: *mut *mut c_char, name: &str) -> Result<Out, Error> {
        if at.is_null() {
            return Err(null_argument(name));
        }
        Ok(Out { at })
    }

    /// Writes a new string for the caller to free with `mcp_string_free`.
    ///
    /// # Safety
    /// `at` points to a writable, aligned `char *` (the caller's contract for outputs).
    unsafe fn write(self, text: String) -> Result<(), Error> {
        let text = c_string(text)?;
        // SAFETY: not NULL (checked in `new`); writable and aligned by the caller's contract.
        // Ownership of the string passes to the caller, who gives it back to `mcp_string_free`.
        unsafe { self.at.write(text.into_raw()) };
        Ok(())
    }
}

fn c_string(text: String) -> Result<CString, Error> {
    // JSON text never holds a raw NUL (serde_json escapes it), so this does not fail.
    CString::new(text).map_err(|_| Error::Protocol("a result holds a NUL byte".into()))
}

fn to_json(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string(value)
        .map_err(|e| Error::Protocol(format!("cannot serialize a result: {e}")))
}

// ---------------------------------------------------------------------------------------
// The pool.

/// Builds a pool from configuration JSON text: `{"mcpServers": {NAME: {"command": ...,
/// "args": [...], "env": {...}, "pool": {...}}}, "pool": {...}}` (VS Code's `"servers"` works
/// too; see the README). Servers start on first use.
///
/// Returns NULL on failure (`MCP_ERR_INVALID_ARGUMENT` for NULL or non-UTF-8 text,
/// `MCP_ERR_CONFIG` for JSON that does not parse or an invalid setting, and any start error
/// such as `MCP_ERR_SPAWN`, `MCP_ERR_HANDSHAKE` or `MCP_ERR_TIMEOUT` when `"warmEagerly"`
/// servers cannot start); `mcp_last_error` and `mcp_last_error_code` say why. What the
/// configuration warned about (unknown keys, skipped servers) is in
/// `mcp_pool_warnings_json`. Free the pool with `mcp_pool_free`.
///
/// # Safety
/// `config_json` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_new(config_json: *const c_char) -> *mut mcp_pool {
    pointer("mcp_pool_new", || {
        // SAFETY: the caller's contract for `config_json`; the text is used only here.
        let text = unsafe { str_arg(config_json, "config_json") }?;
        let builder = PoolBuilder::from_json(text)?;
        let warnings = builder.warnings().to_vec();
        let pool = builder.build()?;
        Ok(Box::into_raw(Box::new(mcp_pool { pool, warnings })))
    })
}

/// Lists a server's tools (from the pool's cache when it is valid). On `MCP_OK` writes to
/// `*tools_json` a JSON array of tool objects (`name`, `description`, `inputSchema`,
/// `annotations`, ...); free it with `mcp_string_free`.
///
/// # Safety
/// `pool` is NULL or a live handle; `server` NULL or a NUL-terminated string; `tools_json`
/// NULL or a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_list_tools(
    pool: *mut mcp_pool,
    server: *const c_char,
    tools_json: *mut *mut c_char,
) -> c_int {
    status("mcp_pool_list_tools", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (pool, server) = unsafe { (pool_arg(pool)?, str_arg(server, "server")?) };
        let out = Out::new(tools_json, "tools_json")?;
        let tools = pool.list_tools(server)?;
        // SAFETY: `tools_json` is a writable `char *` by the caller's contract.
        unsafe { out.write(to_json(&*tools)?) }?;
        Ok(mcp_status::MCP_OK)
    })
}

/// Calls a tool. `arguments_json` is a JSON object, or NULL for none. `timeout_ms` is the
/// call's deadline in milliseconds; 0 means the server's configured request timeout.
///
/// On `MCP_OK`, and on `MCP_TOOL_ERROR` (the tool ran and returned `"isError": true`), writes
/// to `*result_json` the result: `{"content": [{"type": "text", "text": ...}, ...],
/// "structuredContent": ..., "isError": ...}`; free it with `mcp_string_free`. Nothing is
/// written on any other code.
///
/// A call that fails on a session that died before the request was written is retried once
/// on a fresh session; one whose request was written is retried only when the tool is
/// annotated read-only or idempotent (otherwise `MCP_ERR_OUTCOME_UNKNOWN`).
///
/// # Safety
/// `pool` is NULL or a live handle; the strings NULL or NUL-terminated; `result_json` NULL or
/// a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_call_tool(
    pool: *mut mcp_pool,
    server: *const c_char,
    tool: *const c_char,
    arguments_json: *const c_char,
    timeout_ms: u32,
    result_json: *mut *mut c_char,
) -> c_int {
    status("mcp_pool_call_tool", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (pool, server, tool) = unsafe {
            (
                pool_arg(pool)?,
                str_arg(server, "server")?,
                str_arg(tool, "tool")?,
            )
        };
        let arguments = if arguments_json.is_null() {
            Value::Null
        } else {
            // SAFETY: as above; not NULL.
            json_arg(
                unsafe { str_arg(arguments_json, "arguments_json") }?,
                "arguments_json",
            )?
        };
        let out = Out::new(result_json, "result_json")?;
        let mut options = CallOptions::new();
        if timeout_ms > 0 {
            options = options.timeout(Duration::from_millis(timeout_ms.into()));
        }
        let result = pool.call_tool_with(server, tool, arguments, options)?;
        let is_error = result.is_error;
        let text = result.text();
        // SAFETY: `result_json` is a writable `char *` by the caller's contract.
        unsafe { out.write(to_json(&result)?) }?;
        if !is_error {
            return Ok(mcp_status::MCP_OK);
        }
        let message = format!("tool `{tool}` returned an error: {text}");
        set_last_error(mcp_status::MCP_TOOL_ERROR, &message);
        Ok(mcp_status::MCP_TOOL_ERROR)
    })
}

/// Calls many tools of one server on one session without waiting between them.
/// `calls_json` is a JSON array of `{"tool": NAME, "arguments": {...}}` (`arguments` may be
/// left out). The whole batch has the server's request timeout.
///
/// Returns `MCP_OK` when the batch ran, whatever each call's outcome, and writes to
/// `*results_json` a JSON array with one element per call, in order: the call's result
/// object (as `mcp_pool_call_tool` writes it, `"isError"` included), or
/// `{"error": {"code": MCP_ERR_..., "name": "MCP_ERR_...", "kind": "timeout", "message":
/// "..."}}`. Free it with `mcp_string_free`. An unknown server or a closed pool fails the
/// whole call (`MCP_ERR_UNKNOWN_SERVER`, `MCP_ERR_POOL_CLOSED`) and writes nothing.
///
/// # Safety
/// `pool` is NULL or a live handle; the strings NULL or NUL-terminated; `results_json` NULL
/// or a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_batch(
    pool: *mut mcp_pool,
    server: *const c_char,
    calls_json: *const c_char,
    results_json: *mut *mut c_char,
) -> c_int {
    status("mcp_pool_batch", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (pool, server, calls) = unsafe {
            (
                pool_arg(pool)?,
                str_arg(server, "server")?,
                str_arg(calls_json, "calls_json")?,
            )
        };
        let calls: Vec<ToolCall> = serde_json::from_value(json_arg(calls, "calls_json")?)
            .map_err(|e| {
                Error::InvalidArgument(format!(
                    "`calls_json` must be an array of {{\"tool\": NAME, \"arguments\": {{...}}}}: {e}"
                ))
            })?;
        let out = Out::new(results_json, "results_json")?;
        let outcomes = pool.batch(server, &calls, crate::BatchOptions::new())?;
        let results = outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Ok(result) => serde_json::to_value(result)
                    .map_err(|e| Error::Protocol(format!("cannot serialize a result: {e}"))),
                Err(error) => Ok(error_json(&error)),
            })
            .collect::<Result<Vec<Value>, Error>>()?;
        // SAFETY: `results_json` is a writable `char *` by the caller's contract.
        unsafe { out.write(to_json(&results)?) }?;
        Ok(mcp_status::MCP_OK)
    })
}

/// One failed call of a batch, as JSON.
fn error_json(error: &Error) -> Value {
    let code = mcp_status::of(error);
    json!({"error": {
        "code": code as c_int,
        "name": code.name().trim_end_matches('\0'),
        "kind": error.kind().as_str(),
        "message": error.to_string(),
    }})
}

/// The pool's statistics as a JSON object: `{"servers": {NAME: {...}}, "total": {...}}` with
/// calls, hits, misses, spawns, errors by kind, live sessions, latency percentiles, ...
/// Returns NULL only when `pool` is NULL (or on a panic). Free it with `mcp_string_free`.
///
/// # Safety
/// `pool` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_stats_json(pool: *const mcp_pool) -> *mut c_char {
    pointer("mcp_pool_stats_json", || {
        // SAFETY: the caller's contract for `pool`; the borrow ends with this call.
        let pool = unsafe { pool_arg(pool) }?;
        Ok(c_string(pool.stats().to_json())?.into_raw())
    })
}

/// What loading the configuration warned about, as a JSON array of strings (`[]` when
/// nothing): unknown keys, servers skipped for an unsupported type. Returns NULL only when
/// `pool` is NULL (or on a panic). Free it with `mcp_string_free`.
///
/// # Safety
/// `pool` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_warnings_json(pool: *const mcp_pool) -> *mut c_char {
    pointer("mcp_pool_warnings_json", || {
        // SAFETY: the caller's contract for `pool`; the borrow ends with this call.
        let handle = unsafe { pool.as_ref() }.ok_or_else(|| null_argument("pool"))?;
        Ok(c_string(to_json(&handle.warnings)?)?.into_raw())
    })
}

/// The configured server names as a JSON array of strings, sorted. Returns NULL only when
/// `pool` is NULL (or on a panic). Free it with `mcp_string_free`.
///
/// # Safety
/// `pool` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_servers_json(pool: *const mcp_pool) -> *mut c_char {
    pointer("mcp_pool_servers_json", || {
        // SAFETY: the caller's contract for `pool`; the borrow ends with this call.
        let pool = unsafe { pool_arg(pool) }?;
        Ok(c_string(to_json(&pool.servers())?)?.into_raw())
    })
}

/// Closes every session (stdin closed, then SIGTERM and SIGKILL to laggards; every child
/// reaped) and waits for them, within a bounded time. The handle stays valid: later calls
/// return `MCP_ERR_POOL_CLOSED`, statistics still work, and it must still be freed.
/// Idempotent. Returns `MCP_OK`, or `MCP_ERR_INVALID_ARGUMENT` when `pool` is NULL.
///
/// # Safety
/// `pool` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_close(pool: *mut mcp_pool) -> c_int {
    status("mcp_pool_close", || {
        // SAFETY: the caller's contract for `pool`; the borrow ends with this call.
        unsafe { pool_arg(pool) }?.close();
        Ok(mcp_status::MCP_OK)
    })
}

/// Closes the pool as `mcp_pool_close` does (blocking until its sessions are closed) and
/// frees the handle. NULL is fine. Freeing a handle that another thread is still using, or freeing
/// it twice, is a bug in the caller (undefined behaviour).
///
/// # Safety
/// `pool` is NULL or a live handle that no other thread uses any more.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_free(pool: *mut mcp_pool) {
    if pool.is_null() {
        return;
    }
    // SAFETY: not NULL; the caller promises a handle from `mcp_pool_new` (made by
    // `Box::into_raw`), freed once and used by no one else, so we may take the box back.
    let handle = unsafe { Box::from_raw(pool) };
    quietly((), move || {
        handle.pool.close();
        drop(handle);
    });
}

// ---------------------------------------------------------------------------------------
// Strings, errors and the version.

/// Frees a string returned by this library (`*result_json`, `mcp_pool_stats_json`, ...).
/// NULL is fine. Never pass it the pointer from `mcp_last_error`, `mcp_error_code_name` or
/// `mcp_version`, nor memory from `malloc`. Pass it back unmodified: its size is found from
/// its NUL terminator, so writing into it (even a NUL, as `strtok` does) before freeing is
/// undefined behaviour; copy it first if you need to edit it.
///
/// # Safety
/// `s` is NULL or a string this library returned for the caller to free, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn mcp_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    // SAFETY: not NULL; the caller promises a string this library made with
    // `CString::into_raw` and has not freed, so we may take it back and drop it.
    let s = unsafe { CString::from_raw(s) };
    quietly((), move || drop(s));
}

/// The message of the last failure on this thread, or NULL when the last call that can fail
/// succeeded. Every function that returns a status code, a pool or a JSON string clears it
/// when it starts, and sets it when it fails (and on `MCP_TOOL_ERROR`). The string belongs to
/// the library: valid until the next such call on this thread; do not free it.
#[no_mangle]
pub extern "C" fn mcp_last_error() -> *const c_char {
    quietly(ptr::null(), || {
        LAST_ERROR
            .try_with(|last| match &*last.borrow() {
                Some((_, message)) => message.as_ptr(),
                None => ptr::null(),
            })
            .unwrap_or(ptr::null())
    })
}

/// The code of the last failure on this thread (see `mcp_last_error`), or `MCP_OK` when
/// there is none. Tells why `mcp_pool_new` returned NULL.
#[no_mangle]
pub extern "C" fn mcp_last_error_code() -> c_int {
    quietly(mcp_status::MCP_ERR_PANIC as c_int, || {
        LAST_ERROR
            .try_with(|last| match &*last.borrow() {
                Some((code, _)) => *code as c_int,
                None => mcp_status::MCP_OK as c_int,
            })
            .unwrap_or(mcp_status::MCP_OK as c_int)
    })
}

/// The name of a status code, e.g. `"MCP_ERR_TIMEOUT"`, or `"MCP_UNKNOWN_CODE"` for a number
/// that is not a code. A static string: do not free it.
#[no_mangle]
pub extern "C" fn mcp_error_code_name(code: c_int) -> *const c_char {
    let name = usize::try_from(code)
        .ok()
        .and_then(|i| mcp_status::ALL.get(i))
        .map_or("MCP_UNKNOWN_CODE\0", |status| status.name());
    name.as_ptr().cast()
}

/// The library's version, e.g. `"0.1.0"`. A static string: do not free it.
#[no_mangle]
pub extern "C" fn mcp_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: *const c_char) -> String {
        assert!(!p.is_null());
        // SAFETY: a string of this library, alive for the assertion.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
    }

    #[test]
    fn codes_are_numbered_in_order_and_named() {
        for (i, code) in mcp_status::ALL.iter().enumerate() {
            assert_eq!(*code as usize, i);
            assert_eq!(text(mcp_error_code_name(i as c_int)), format!("{code:?}"));
        }
        assert_eq!(text(mcp_error_code_name(-1)), "MCP_UNKNOWN_CODE");
        assert_eq!(
            text(mcp_error_code_name(mcp_status::ALL.len() as c_int)),
            "MCP_UNKNOWN_CODE"
        );
    }

    #[test]
    fn a_panic_becomes_a_code_and_a_message() {
        let code = status("in_test", || panic!("boom"));
        assert_eq!(code, mcp_status::MCP_ERR_PANIC as c_int);
        assert_eq!(text(mcp_last_error()), "panic in in_test: boom");
        let p: *mut u8 = pointer("in_test", || panic!("{}", String::from("bang")));
        assert!(p.is_null());
        assert_eq!(text(mcp_last_error()), "panic in in_test: bang");
        assert_eq!(status("in_test", || Ok(mcp_status::MCP_OK)), 0);
        assert!(mcp_last_error().is_null());
    }

    #[test]
    fn bad_arguments_give_codes_and_messages() {
        // SAFETY: NULL and valid strings only.
        let pool = unsafe { mcp_pool_new(ptr::null()) };
        assert!(pool.is_null());
        assert_eq!(
            mcp_last_error_code(),
            mcp_status::MCP_ERR_INVALID_ARGUMENT as c_int
        );
        assert_eq!(
            text(mcp_last_error()),
            "invalid argument: `config_json` is NULL"
        );

        // SAFETY: a NUL-terminated string.
        let pool = unsafe { mcp_pool_new(c"{\xff}".as_ptr()) };
        assert!(pool.is_null());
        assert!(text(mcp_last_error()).contains("not valid UTF-8"));

        // SAFETY: a NUL-terminated string.
        let pool = unsafe { mcp_pool_new(c"{nope".as_ptr()) };
        assert!(pool.is_null());
        assert_eq!(mcp_last_error_code(), mcp_status::MCP_ERR_CONFIG as c_int);

        let config = b"{\"mcpServers\": {\"never\": {\"command\": \"/nonexistent\"}}}\0";
        // SAFETY: a NUL-terminated string; the pool is freed once.
        let pool = unsafe { mcp_pool_new(config.as_ptr().cast()) };
        assert!(!pool.is_null(), "{}", text(mcp_last_error()));
        assert!(mcp_last_error().is_null());
        // SAFETY: a live pool, a NUL-terminated server name, the result written once.
        unsafe {
            let mut out: *mut c_char = ptr::null_mut();
            let rc = mcp_pool_list_tools(pool, c"nope".as_ptr(), &mut out);
            assert_eq!(rc, mcp_status::MCP_ERR_UNKNOWN_SERVER as c_int);
            assert!(out.is_null());
            let stats = mcp_pool_stats_json(pool);
            assert!(text(stats).contains("\"total\""));
            mcp_string_free(stats);
            mcp_pool_free(pool);
            mcp_pool_free(ptr::null_mut());
            mcp_string_free(ptr::null_mut());
        }
    }
}
