//! Call options, batch options and the cancel token: what a C caller can say about one call.

use std::ffi::{c_char, c_void};
use std::ptr;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{
    c_text, error_json, mcp_status, null_argument, opt_object_arg, opt_str_arg, pointer, quietly,
    status,
};
use crate::{BatchOptions, CallOptions, CallToolResult, CancelHandle, Error, LogLevel, Progress};

/// A progress callback: `progress` so far, `total` (NaN when the server gave none) and the
/// server's `message` (NULL when it sent none; valid only during the callback). Runs on the
/// thread that made the call, in the order the server sent the reports, each before the call
/// returns.
pub type mcp_progress_callback = Option<
    unsafe extern "C" fn(userdata: *mut c_void, progress: f64, total: f64, message: *const c_char),
>;

/// A batch's callback for each finished call: its `index` in the batch, its `status`
/// (`MCP_OK`, `MCP_TOOL_ERROR` or an error code) and its element of the results array as
/// JSON (valid only during the callback). Runs on the thread that called `mcp_pool_batch`.
pub type mcp_result_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        index: usize,
        status: mcp_status,
        result_json: *const c_char,
    ),
>;

/// Options of one call: deadline, progress callback, cancel token, `_meta`, log level and
/// caller key. Create with `mcp_call_options_new`, free with `mcp_call_options_free`. Pass
/// NULL instead to a call for the defaults. Setting an option while a call uses the object
/// is a bug in the caller; using one object in several calls at once is fine (its progress
/// callback then runs on each calling thread).
#[allow(non_camel_case_types)]
#[derive(Default)]
pub struct mcp_call_options {
    timeout: Option<Duration>,
    start_timeout: Option<Duration>,
    keep_deadline: bool,
    progress: Option<(
        unsafe extern "C" fn(*mut c_void, f64, f64, *const c_char),
        *mut c_void,
    )>,
    cancel: Option<CancelHandle>,
    meta: Option<Map<String, Value>>,
    log_level: Option<LogLevel>,
    caller: Option<String>,
}

/// Options of a batch: one deadline for the whole batch, a cancel token, a callback for each
/// finished call, and the caller key. Create with `mcp_batch_options_new`, free with
/// `mcp_batch_options_free`; NULL means the defaults.
#[allow(non_camel_case_types)]
#[derive(Default)]
pub struct mcp_batch_options {
    timeout: Option<Duration>,
    cancel: Option<CancelHandle>,
    on_result: Option<(
        unsafe extern "C" fn(*mut c_void, usize, mcp_status, *const c_char),
        *mut c_void,
    )>,
    caller: Option<String>,
}

/// A way for another thread to cancel calls. Give it to calls with
/// `mcp_call_options_set_cancel` or `mcp_batch_options_set_cancel`; `mcp_cancel_token_cancel`
/// from any thread ends every call using it at once with `MCP_ERR_CANCELLED` (the server is
/// told with `notifications/cancelled`). A fired token stays fired: calls started with it
/// fail at once. Create with `mcp_cancel_token_new`, free with `mcp_cancel_token_free`
/// (options that were given it keep what they need).
#[allow(non_camel_case_types)]
pub struct mcp_cancel_token {
    handle: CancelHandle,
}

fn timeout_from_ms(ms: u32) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms.into()))
}

/// The options behind a pointer, for a call: NULL gives the defaults.
///
/// # Safety
/// `options` is NULL or a live `mcp_call_options` that no thread changes during the call.
pub(super) unsafe fn call_options<'a>(
    options: *const mcp_call_options,
) -> Result<CallOptions<'a>, Error> {
    // SAFETY: the caller's contract; only read.
    let Some(options) = (unsafe { options.as_ref() }) else {
        return Ok(CallOptions::new());
    };
    let mut out = CallOptions::new().keep_deadline(options.keep_deadline);
    if let Some(timeout) = options.timeout {
        out = out.timeout(timeout);
    }
    if let Some(timeout) = options.start_timeout {
        out = out.start_timeout(timeout);
    }
    if let Some((callback, userdata)) = options.progress {
        out = out.on_progress(move |report: &Progress| {
            let message = report.message.as_deref().map(c_text);
            let message_ptr = message.as_ref().map_or(ptr::null(), |m| m.as_ptr());
            // SAFETY: the callback and its userdata as the caller set them, on the calling
            // thread (the callback's contract); the message outlives the call.
            unsafe {
                callback(
                    userdata,
                    report.progress,
                    report.total.unwrap_or(f64::NAN),
                    message_ptr,
                )
            };
        });
    }
    if let Some(cancel) = &options.cancel {
        out = out.cancel_with(cancel);
    }
    if let Some(meta) = &options.meta {
        out = out.meta(meta.clone());
    }
    if let Some(level) = options.log_level {
        out = out.log_level(level);
    }
    if let Some(caller) = &options.caller {
        out = out.caller(caller.clone());
    }
    Ok(out)
}

/// The options behind a pointer, for a batch: NULL gives the defaults.
///
/// # Safety
/// `options` is NULL or a live `mcp_batch_options` that no thread changes during the batch.
pub(super) unsafe fn batch_options<'a>(
    options: *const mcp_batch_options,
) -> Result<BatchOptions<'a>, Error> {
    // SAFETY: the caller's contract; only read.
    let Some(options) = (unsafe { options.as_ref() }) else {
        return Ok(BatchOptions::new());
    };
    let mut out = BatchOptions::new();
    if let Some(timeout) = options.timeout {
        out = out.timeout(timeout);
    }
    if let Some(cancel) = &options.cancel {
        out = out.cancel_with(cancel);
    }
    if let Some(caller) = &options.caller {
        out = out.caller(caller.clone());
    }
    if let Some((callback, userdata)) = options.on_result {
        out = out.on_result(move |index, result: &Result<CallToolResult, Error>| {
            let (code, element) = batch_element(result);
            let text = c_text(&element.to_string());
            // SAFETY: the callback and its userdata as the caller set them, on the calling
            // thread (the callback's contract); the text outlives the call.
            unsafe { callback(userdata, index, code, text.as_ptr()) };
        });
    }
    Ok(out)
}

/// One call of a batch: its status and its element of the results array.
pub(super) fn batch_element(result: &Result<CallToolResult, Error>) -> (mcp_status, Value) {
    match result {
        Ok(result) => {
            let code = if result.is_error {
                mcp_status::MCP_TOOL_ERROR
            } else {
                mcp_status::MCP_OK
            };
            (code, serde_json::to_value(result).unwrap_or(Value::Null))
        }
        Err(error) => (mcp_status::of(error), error_json(error)),
    }
}

/// Applies `change` to the options behind a pointer.
///
/// # Safety
/// `options` is NULL or a live options object no other thread uses during the call.
unsafe fn change<T>(
    function: &str,
    options: *mut T,
    change: impl FnOnce(&mut T) -> Result<(), Error>,
) -> mcp_status {
    status(function, || {
        // SAFETY: the caller's contract: live and used by no one else meanwhile.
        let options = unsafe { options.as_mut() }.ok_or_else(|| null_argument("options"))?;
        change(options)?;
        Ok(mcp_status::MCP_OK)
    })
}

/// The cancel handle behind a token pointer; NULL gives `None`.
///
/// # Safety
/// `token` is NULL or a live token.
unsafe fn cancel_arg(token: *const mcp_cancel_token) -> Option<CancelHandle> {
    // SAFETY: the caller's contract; only read.
    unsafe { token.as_ref() }.map(|t| t.handle.clone())
}

/// # Safety
/// `level` is NULL or a NUL-terminated string.
unsafe fn log_level_arg(level: *const c_char) -> Result<Option<LogLevel>, Error> {
    // SAFETY: the caller's contract, passed on.
    let Some(level) = (unsafe { opt_str_arg(level, "level") })? else {
        return Ok(None);
    };
    serde_json::from_value(Value::String(level.to_owned()))
        .map(Some)
        .map_err(|_| {
            Error::InvalidArgument(format!(
                "`level` must be one of debug, info, notice, warning, error, critical, alert, \
                 emergency, not `{level}`"
            ))
        })
}

// ---------------------------------------------------------------------------------------
// Call options.

/// New call options with the defaults: the server's request timeout, no progress callback,
/// no cancel token, no `_meta`, no log level, no caller key. Returns NULL only on a panic.
/// Free with `mcp_call_options_free`.
#[no_mangle]
pub extern "C" fn mcp_call_options_new() -> *mut mcp_call_options {
    pointer("mcp_call_options_new", || Ok(Box::into_raw(Box::default())))
}

/// Frees call options. NULL is fine. Calls that were given them must have returned.
///
/// # Safety
/// `options` is NULL or from `mcp_call_options_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn mcp_call_options_free(options: *mut mcp_call_options) {
    if options.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `mcp_call_options_new`, freed once.
    let options = unsafe { Box::from_raw(options) };
    quietly((), move || drop(options));
}

/// The call's deadline in milliseconds, counted from when the call starts (waiting for a
/// session and its start included, unless `mcp_call_options_set_start_timeout_ms` bounds
/// that wait on its own); 0 means the server's configured request timeout. A
/// progress report pushes the deadline back by this much (up to the server's maximum
/// request timeout) unless `mcp_call_options_set_keep_deadline` says not to.
///
/// # Safety
/// `options` is NULL or live, and no call is using it.
#[no_mangle]
pub unsafe extern "C" fn mcp_call_options_set_timeout_ms(
    options: *mut mcp_call_options,
    timeout_ms: u32,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        change("mcp_call_options_set_timeout_ms", options, |o| {
            o.timeout = timeout_from_ms(timeout_ms);
            Ok(())
        })
    }
}

/// Bounds waiting for a session (a server's start, or room on a busy session) on its own,
/// in milliseconds, so the timeout counts only from when the call has its session: a server
/// that takes 8 s to start and a 2 s call timeout then work together. 0 (the default) means
/// no separate bound: the timeout covers the wait. Calls on an `mcp_session` ignore it.
///
/// # Safety
/// `options` is NULL or live, and no call is using it.
#[no_mangle]
pub unsafe extern "C" fn mcp_call_options_set_start_timeout_ms(
    options: *mut mcp_call_options,
    timeout_ms: u32,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        change("mcp_call_options_set_start_timeout_ms", options, |o| {
            o.start_timeout = timeout_from_ms(timeout_ms);
            Ok(())
        })
    }
}

/// Whether progress reports leave the deadline where it is (`true`) instead of pushing it
/// back. Defaults to `false`.
///
/// # Safety
/// `options` is NULL or live, and no call is using it.
#[no_mangle]
pub unsafe extern "C" fn mcp_call_options_set_keep_deadline(
    options: *mut mcp_call_options,
    keep: bool,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        change("mcp_call_options_set_keep_deadline", options, |o| {
            o.keep_deadline = keep;
            Ok(())
        })
    }
}

/// Asks the server for progress reports and passes each to `callback` with `userdata`, on
/// the calling thread, in order, all before the call returns. NULL `callback` removes it.
///
/// # Safety
/// `options` is NULL or live, and no call is using it; `callback` is NULL or a function
/// with this signature, which may be called with `userdata` during any call given these
/// options.
#[no_mangle]
pub unsafe extern "C" fn mcp_call_options_set_progress(
    options: *mut mcp_call_options,
    callback: mcp_progress_callback,
    userdata: *mut c_void,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        change("mcp_call_options_set_progress", options, |o| {
            o.progress = callback.map(|f| (f, userdata));
            Ok(())
        })
    }
}

/// Lets `token` cancel the calls given these options. NULL removes it. The options keep
/// their own reference: the token may be freed before them.
///
/// # Safety
/// `options` is NULL or live, and no call is using it; `token` NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn mcp_call_options_set_cancel(
    options: *mut mcp_call_options,
    token: *const mcp_cancel_token,
) -> mcp_status {
    // SAFETY: the caller's contract for `token`; the handle is cloned.
    let cancel = unsafe { cancel_arg(token) };
    // SAFETY: the caller's contract, passed on.
    unsafe {
        change("mcp_call_options_set_cancel", options, |o| {
            o.cancel = cancel;
            Ok(())
        })
    }
}

/// `_meta` entries added to the request, as a JSON object (for example a `traceparent`);
/// keys the library sets itself (the progress token, the per-request generation's envelope)
/// win. NULL removes them. Not an object: `MCP_ERR_INVALID_ARGUMENT`, options unchanged.
///
/// # Safety
/// `options` is NULL or live, and no call is using it; `meta_json` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mcp_call_options_set_meta_json(
    options: *mut mcp_call_options,
    meta_json: *const c_char,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        change("mcp_call_options_set_meta_json", options, |o| {
            // SAFETY: the caller's contract for `meta_json`.
            o.meta = opt_object_arg(meta_json, "meta_json")?;
            Ok(())
        })
    }
}

/// The level of the server's log messages for this call (`"debug"`, `"info"`, `"notice"`,
/// `"warning"`, `"error"`, `"critical"`, `"alert"`, `"emergency"`), sent with the request
/// in the per-request generation. NULL removes it. Another name: `MCP_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `options` is NULL or live, and no call is using it; `level` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mcp_call_options_set_log_level(
    options: *mut mcp_call_options,
    level: *const c_char,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        change("mcp_call_options_set_log_level", options, |o| {
            // SAFETY: the caller's contract for `level`.
            o.log_level = log_level_arg(level)?;
            Ok(())
        })
    }
}

/// Whose call this is, for a server with `"sharing": "per-caller"`: the call goes only to a
/// session started for this key (a user id, a tenant, a conversation), never to another
/// key's. A shared server ignores it. NULL removes it.
///
/// # Safety
/// `options` is NULL or live, and no call is using it; `caller` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mcp_call_options_set_caller(
    options: *mut mcp_call_options,
    caller: *const c_char,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        change("mcp_call_options_set_caller", options, |o| {
            // SAFETY: the caller's contract for `caller`.
            o.caller = opt_str_arg(caller, "caller")?.map(str::to_owned);
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------
// Batch options.

/// New batch options with the defaults: the server's request timeout for the whole batch,
/// no cancel token, no callback, no caller key. Returns NULL only on a panic. Free with
/// `mcp_batch_options_free`.
#[no_mangle]
pub extern "C" fn mcp_batch_options_new() -> *mut mcp_batch_options {
    pointer("mcp_batch_options_new", || {
        Ok(Box::into_raw(Box::default()))
    })
}

/// Frees batch options. NULL is fine. Batches that were given them must have returned.
///
/// # Safety
/// `options` is NULL or from `mcp_batch_options_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn mcp_batch_options_free(options: *mut mcp_batch_options) {
    if options.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `mcp_batch_options_new`, freed once.
    let options = unsafe { Box::from_raw(options) };
    quietly((), move || drop(options));
}

/// The deadline of the whole batch in milliseconds, from when it starts; 0 means the
/// server's configured request timeout. Calls still unanswered then end with
/// `MCP_ERR_TIMEOUT` in their element; the batch itself returns `MCP_OK`.
///
/// # Safety
/// `options` is NULL or live, and no batch is using it.
#[no_mangle]
pub unsafe extern "C" fn mcp_batch_options_set_timeout_ms(
    options: *mut mcp_batch_options,
    timeout_ms: u32,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        change("mcp_batch_options_set_timeout_ms", options, |o| {
            o.timeout = timeout_from_ms(timeout_ms);
            Ok(())
        })
    }
}

/// Lets `token` cancel every call of the batch still waiting (each ends with
/// `MCP_ERR_CANCELLED` in its element). NULL removes it.
///
/// # Safety
/// `options` is NULL or live, and no batch is using it; `token` NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn mcp_batch_options_set_cancel(
    options: *mut mcp_batch_options,
    token: *const mcp_cancel_token,
) -> mcp_status {
    // SAFETY: the caller's contract for `token`; the handle is cloned.
    let cancel = unsafe { cancel_arg(token) };
    // SAFETY: the caller's contract, passed on.
    unsafe {
        change("mcp_batch_options_set_cancel", options, |o| {
            o.cancel = cancel;
            Ok(())
        })
    }
}

/// Calls `callback` with `userdata` for each call of the batch as it finishes (in the order
/// they finish), on the thread running the batch. NULL `callback` removes it.
///
/// # Safety
/// `options` is NULL or live, and no batch is using it; `callback` NULL or a function with
/// this signature.
#[no_mangle]
pub unsafe extern "C" fn mcp_batch_options_set_on_result(
    options: *mut mcp_batch_options,
    callback: mcp_result_callback,
    userdata: *mut c_void,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        change("mcp_batch_options_set_on_result", options, |o| {
            o.on_result = callback.map(|f| (f, userdata));
            Ok(())
        })
    }
}

/// The caller key of the batch, as `mcp_call_options_set_caller`. NULL removes it.
///
/// # Safety
/// `options` is NULL or live, and no batch is using it; `caller` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mcp_batch_options_set_caller(
    options: *mut mcp_batch_options,
    caller: *const c_char,
) -> mcp_status {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        change("mcp_batch_options_set_caller", options, |o| {
            // SAFETY: the caller's contract for `caller`.
            o.caller = opt_str_arg(caller, "caller")?.map(str::to_owned);
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------
// The cancel token.

/// A new cancel token that has not fired. Returns NULL only on a panic. Free with
/// `mcp_cancel_token_free`.
#[no_mangle]
pub extern "C" fn mcp_cancel_token_new() -> *mut mcp_cancel_token {
    pointer("mcp_cancel_token_new", || {
        Ok(Box::into_raw(Box::new(mcp_cancel_token {
            handle: CancelHandle::new(),
        })))
    })
}

/// Fires the token: every call using it ends at once with `MCP_ERR_CANCELLED`, and calls
/// started with it later fail at once. Any thread, any number of times (idempotent). Safe to
/// call from a callback. Returns `MCP_OK`, or `MCP_ERR_INVALID_ARGUMENT` for NULL.
///
/// # Safety
/// `token` is NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn mcp_cancel_token_cancel(token: *const mcp_cancel_token) -> mcp_status {
    status("mcp_cancel_token_cancel", || {
        // SAFETY: the caller's contract; `CancelHandle` is `Sync`.
        let token = unsafe { token.as_ref() }.ok_or_else(|| null_argument("token"))?;
        token.handle.cancel();
        Ok(mcp_status::MCP_OK)
    })
}

/// Whether the token has fired (`false` for NULL).
///
/// # Safety
/// `token` is NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn mcp_cancel_token_is_cancelled(token: *const mcp_cancel_token) -> bool {
    quietly(false, || {
        // SAFETY: the caller's contract; only read.
        unsafe { token.as_ref() }.is_some_and(|t| t.handle.is_cancelled())
    })
}

/// Frees a token. NULL is fine. Options it was given to keep working (and keep what they
/// need); firing a token while another thread frees it is a bug in the caller.
///
/// # Safety
/// `token` is NULL or from `mcp_cancel_token_new`, not yet freed, used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn mcp_cancel_token_free(token: *mut mcp_cancel_token) {
    if token.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `mcp_cancel_token_new`, freed once.
    let token = unsafe { Box::from_raw(token) };
    quietly((), move || drop(token));
}
