//! The C ABI: opaque handles over a [`Pool`](crate::Pool), JSON text in and out, callbacks
//! for what the server asks and tells.
//!
//! | file | what it exports |
//! |---|---|
//! | `mod.rs` | the status codes, the panic boundary and this thread's last error, strings, versions |
//! | `pool.rs` | `mcp_pool` and `mcp_pool_builder` (building, closing, stats, warnings, details), `mcp_session` |
//! | `calls.rs` | every call kind, on a pool (by server name) and on a session; batches |
//! | `options.rs` | `mcp_call_options`, `mcp_batch_options`, `mcp_cancel_token` |
//! | `handler.rs` | `mcp_handler` (the callback table), `mcp_reply`, and the Rust handler over them |
//!
//! These files, `session/sys.rs`, `session/process.rs` and `session/watchdog.rs` are the
//! only places with `unsafe`; every block says why it is sound. `include/mcp_pool.h` is
//! generated from them by cbindgen (settings in `cbindgen.toml`, overview text in its
//! `header`): the doc comments of the exported items are the C documentation, so they speak
//! C.
//!
//! Shape of every exported function: check the pointers it was given (NULL, UTF-8, JSON),
//! do the work through the safe Rust API, write outputs last, and run all of it inside
//! [`status()`] or [`pointer()`], which hold the panic boundary and this thread's last error.
#![deny(unsafe_op_in_unsafe_fn)]
// The C names: `mcp_pool`, `mcp_status`, `mcp_progress_callback`, ...
#![allow(non_camel_case_types)]

// In the header's order (cbindgen follows the source): pools, calls, options, callbacks.
mod pool;

mod calls;

mod options;

mod handler;

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use crate::Error;

/// The version of the C ABI this header describes. It changes when a function's signature or
/// a struct's layout changes incompatibly (`mcp_handler` is read by value: a member added to
/// it is such a change), and it is the number in the shared library's
/// `SONAME` (`libmcp_pool.so.1`). Compare it with `mcp_abi_version()` at start-up to catch a
/// program built against another header than the library it loaded.
// `build.rs` reads the next line for the `SONAME`: keep it a literal.
pub const MCP_POOL_ABI_VERSION: u32 = 1;

/// The status codes every fallible function returns. The numbers are stable: codes are only
/// ever added, at the end. `mcp_error_code_name` gives a code's name.
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
    /// shape (arguments that are not an object, ...); a call to a per-caller server without
    /// a caller key.
    MCP_ERR_INVALID_ARGUMENT = 2,
    /// The configuration given to `mcp_pool_new` (or a builder) is invalid, including JSON
    /// that does not parse; also a call to a server the configuration skipped (the message
    /// says why) and a server whose `cwd` does not exist.
    MCP_ERR_CONFIG = 3,
    /// The server's process could not be started (or a thread of the pool could not be).
    MCP_ERR_SPAWN = 4,
    /// The server started but the MCP handshake failed.
    MCP_ERR_HANDSHAKE = 5,
    /// The call's deadline passed (its options' timeout, or the server's configured one).
    MCP_ERR_TIMEOUT = 6,
    /// The server answered with a JSON-RPC error (an unknown method, bad params, ...);
    /// `mcp_last_error_json` has its code, message and data.
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
    /// The call was cancelled through its `mcp_cancel_token`.
    MCP_ERR_CANCELLED = 15,
    /// A bug: the library panicked. The message says where; the handle stays usable.
    MCP_ERR_PANIC = 16,
    /// The server's answer was over the message size limit (`maxMessageBytes`); it was
    /// dropped and the session goes on. Repeating the call gives the same.
    MCP_ERR_TOO_LARGE = 17,
    /// The server asked for input (elicitation, sampling, roots) the client did not give:
    /// no callback for it, or the callback failed.
    MCP_ERR_INPUT_REFUSED = 18,
    /// The tool's structured result does not match its declared output schema; the result
    /// is in `mcp_last_error_json` (`"result"`).
    MCP_ERR_INVALID_OUTPUT = 19,
    /// Refused before sending: the protocol version removed the method, or the server did
    /// not declare the capability it needs.
    MCP_ERR_UNSUPPORTED = 20,
    /// The server needs the user to complete URL elicitations first (error -32042); they
    /// are in `mcp_last_error_json` (`"elicitations"`).
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
    /// The last code. The codes are numbered 0 to `LAST` without a gap (a unit test reads
    /// the enum above to check it); a new code goes at the end and moves this.
    const LAST: mcp_status = mcp_status::MCP_ERR_UNAUTHORIZED;

    /// The code numbered `code`, if there is one.
    fn from_code(code: c_int) -> Option<mcp_status> {
        const _: () = assert!(std::mem::size_of::<mcp_status>() == std::mem::size_of::<c_int>());
        if !(0..=mcp_status::LAST as c_int).contains(&code) {
            return None;
        }
        // SAFETY: `mcp_status` is a `repr(C)` enum the size of a `c_int` (asserted above)
        // whose discriminants are exactly 0..=LAST (checked by the unit test
        // `codes_are_numbered_without_a_gap`), and `code` is in that range.
        Some(unsafe { std::mem::transmute::<c_int, mcp_status>(code) })
    }

    /// The code's C name.
    fn name(self) -> &'static CStr {
        static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
        let names = NAMES.get_or_init(|| {
            (0..=mcp_status::LAST as c_int)
                .filter_map(mcp_status::from_code)
                .map(|code| CString::new(format!("{code:?}")).unwrap_or_default())
                .collect()
        });
        &names[self as usize]
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
            // Made only by `CallToolResult::into_result`: the tool ran and failed.
            Error::Tool { .. } => mcp_status::MCP_TOOL_ERROR,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The panic boundary and this thread's last error.

/// The last failure of a call on one thread.
struct LastError {
    code: mcp_status,
    message: CString,
    /// The error itself, for `mcp_last_error_json` (none for a panic or a tool error).
    error: Option<Error>,
    /// `mcp_last_error_json`'s text, made when first asked for.
    json: Option<CString>,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

fn set_last(code: mcp_status, message: &str, error: Option<Error>) {
    let last = LastError {
        code,
        message: c_text(message),
        error,
        json: None,
    };
    // `try_with`: called while this thread's locals are being destroyed (from an `atexit`
    // handler or a thread-exit destructor), there is nowhere to keep the message.
    let _ = LAST_ERROR.try_with(|cell| *cell.borrow_mut() = Some(last));
}

/// Records a failure that is not an [`Error`] (a tool's `isError`, a panic).
fn set_last_error(code: mcp_status, message: &str) {
    set_last(code, message, None);
}

fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|cell| *cell.borrow_mut() = None);
}

fn panic_message(function: &str, payload: &(dyn Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("panic in {function}: {what}")
}

/// Runs the body of a function that returns a status code: catches a panic, and records
/// the message of a failure as this thread's last error. The last error is cleared when the
/// body starts and again when it succeeds, so a callback's own failed call during the body
/// does not show after a success.
fn status(function: &str, body: impl FnOnce() -> Result<mcp_status, Error>) -> mcp_status {
    match catch_unwind(AssertUnwindSafe(|| {
        clear_last_error();
        body()
    })) {
        Ok(Ok(mcp_status::MCP_OK)) => {
            clear_last_error();
            mcp_status::MCP_OK
        }
        // The body recorded its own message (`MCP_TOOL_ERROR`).
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            let code = mcp_status::of(&error);
            set_last(code, &error.to_string(), Some(error));
            code
        }
        Err(payload) => {
            set_last_error(
                mcp_status::MCP_ERR_PANIC,
                &panic_message(function, &*payload),
            );
            mcp_status::MCP_ERR_PANIC
        }
    }
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

/// A string argument, checked for NULL and UTF-8.
///
/// # Safety
/// `text` is NULL or points to a NUL-terminated string that stays unchanged while `'a` lasts.
unsafe fn str_arg<'a>(text: *const c_char, name: &str) -> Result<&'a str, Error> {
    // SAFETY: the caller's contract, passed on.
    unsafe { opt_str_arg(text, name) }?.ok_or_else(|| null_argument(name))
}

/// A string argument that may be NULL (`None`), checked for UTF-8.
///
/// # Safety
/// As [`str_arg`].
unsafe fn opt_str_arg<'a>(text: *const c_char, name: &str) -> Result<Option<&'a str>, Error> {
    if text.is_null() {
        return Ok(None);
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for `'a`.
    let text = unsafe { CStr::from_ptr(text) };
    text.to_str()
        .map(Some)
        .map_err(|e| Error::InvalidArgument(format!("`{name}` is not valid UTF-8: {e}")))
}

fn json_arg(text: &str, name: &str) -> Result<Value, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::InvalidArgument(format!("`{name}` is not valid JSON: {e}")))
}

/// A JSON argument that may be NULL (`None`).
///
/// # Safety
/// As [`str_arg`].
unsafe fn opt_json_arg(text: *const c_char, name: &str) -> Result<Option<Value>, Error> {
    // SAFETY: the caller's contract, passed on.
    match unsafe { opt_str_arg(text, name) }? {
        Some(text) => json_arg(text, name).map(Some),
        None => Ok(None),
    }
}

/// A JSON object argument that may be NULL (`None`).
///
/// # Safety
/// As [`str_arg`].
unsafe fn opt_object_arg(
    text: *const c_char,
    name: &str,
) -> Result<Option<Map<String, Value>>, Error> {
    // SAFETY: the caller's contract, passed on.
    match unsafe { opt_json_arg(text, name) }? {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Error::InvalidArgument(format!(
            "`{name}` must be a JSON object"
        ))),
    }
}

/// Where a function writes a value it returns. Checked before any work is done, written
/// last, so nothing is written on failure.
struct Out<T> {
    at: *mut T,
}

impl<T> Out<T> {
    fn new(at: *mut T, name: &str) -> Result<Out<T>, Error> {
        if at.is_null() {
            return Err(null_argument(name));
        }
        Ok(Out { at })
    }

    /// Writes the value.
    ///
    /// # Safety
    /// `at` points to a writable, aligned `T` (the caller's contract for outputs).
    unsafe fn write(self, value: T) {
        // SAFETY: not NULL (checked in `new`); writable and aligned by the caller's contract.
        // A `T` here is a pointer or a number: nothing is dropped by overwriting.
        unsafe { self.at.write(value) };
    }
}

impl Out<*mut c_char> {
    /// Writes a new string for the caller to free with `mcp_string_free`.
    ///
    /// # Safety
    /// As [`Out::write`].
    unsafe fn write_string(self, text: String) {
        // SAFETY: the caller's contract, passed on. Ownership of the string passes to the
        // caller, who gives it back to `mcp_string_free`.
        unsafe { self.write(c_text(&text).into_raw()) };
    }

    /// Writes a value as JSON text.
    ///
    /// # Safety
    /// As [`Out::write`].
    unsafe fn write_json(self, value: &impl serde::Serialize) -> Result<(), Error> {
        let text = to_json(value)?;
        // SAFETY: the caller's contract, passed on.
        unsafe { self.write_string(text) };
        Ok(())
    }
}

/// A C string of `text`. JSON text never holds a raw NUL (serde_json escapes it); a NUL in
/// other text (a server's name, a message) is written `\0`.
fn c_text(text: &str) -> CString {
    CString::new(text)
        .or_else(|_| CString::new(text.replace('\0', "\\0")))
        .unwrap_or_default()
}

/// A string the library hands over, for the caller to free with `mcp_string_free`.
fn c_string_out(text: &str) -> *mut c_char {
    c_text(text).into_raw()
}

fn to_json(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string(value)
        .map_err(|e| Error::Protocol(format!("cannot serialize a result: {e}")))
}

/// A failure as JSON: `{"code", "name", "kind", "message"}` and, by kind, the server's
/// JSON-RPC error (`"rpcError"`), the URL elicitations asked for (`"elicitations"`), the
/// result that failed its schema (`"result"`) or the HTTP status (`"httpStatus"`).
fn failure_json(code: mcp_status, message: &str, error: Option<&Error>) -> Value {
    let kind = match (error, code) {
        (Some(error), _) => error.kind().as_str(),
        (None, mcp_status::MCP_TOOL_ERROR) => "tool_error",
        (None, _) => "panic",
    };
    let mut object = json!({
        "code": code as c_int,
        "name": code.name().to_str().unwrap_or_default(),
        "kind": kind,
        "message": message,
    });
    let details = match error {
        Some(Error::Server {
            code,
            message,
            data,
        }) => Some((
            "rpcError",
            json!({"code": code, "message": message, "data": data}),
        )),
        Some(Error::UrlElicitationRequired { elicitations, .. }) => {
            Some(("elicitations", json!(elicitations)))
        }
        Some(Error::InvalidOutput { result, .. }) => {
            serde_json::to_value(result).ok().map(|r| ("result", r))
        }
        Some(Error::Http { status, .. } | Error::Unauthorized { status, .. }) => {
            Some(("httpStatus", json!(status)))
        }
        _ => None,
    };
    if let (Some((key, value)), Some(map)) = (details, object.as_object_mut()) {
        map.insert(key.into(), value);
    }
    object
}

/// One failed call of a batch, as JSON: `{"error": {...}}` (see [`failure_json`]).
fn error_json(error: &Error) -> Value {
    let code = mcp_status::of(error);
    json!({ "error": failure_json(code, &error.to_string(), Some(error)) })
}

// ---------------------------------------------------------------------------------------
// Strings, errors and the versions.

/// Frees a string returned by this library (`*result_json`, `mcp_pool_stats_json`, ...).
/// NULL is fine. Never pass it the pointer from `mcp_last_error`, `mcp_last_error_json`,
/// `mcp_error_code_name` or `mcp_version`, a string given to a callback, nor memory from
/// `malloc`. Pass it back unmodified: its size is found from its NUL terminator, so writing
/// into it (even a NUL, as `strtok` does) before freeing is undefined behaviour; copy it
/// first if you need to edit it.
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
/// succeeded. Every function that can fail (one returning a status code, or a pointer that
/// may be NULL on failure; not the `mcp_last_error*` functions, `mcp_error_code_name`,
/// `mcp_version`, `mcp_abi_version` or the `*_is_cancelled` queries) clears it when it
/// starts and when it succeeds, and sets it when it fails (and on `MCP_TOOL_ERROR`). The
/// string belongs to the library: valid until the next such call on this thread; do not
/// free it.
#[no_mangle]
pub extern "C" fn mcp_last_error() -> *const c_char {
    quietly(ptr::null(), || {
        LAST_ERROR
            .try_with(|cell| match &*cell.borrow() {
                Some(last) => last.message.as_ptr(),
                None => ptr::null(),
            })
            .unwrap_or(ptr::null())
    })
}

/// The code of the last failure on this thread (see `mcp_last_error`), or `MCP_OK` when
/// there is none. Tells why a function returning a pointer returned NULL.
#[no_mangle]
pub extern "C" fn mcp_last_error_code() -> mcp_status {
    quietly(mcp_status::MCP_ERR_PANIC, || {
        LAST_ERROR
            .try_with(|cell| match &*cell.borrow() {
                Some(last) => last.code,
                None => mcp_status::MCP_OK,
            })
            .unwrap_or(mcp_status::MCP_OK)
    })
}

/// The last failure on this thread as a JSON object, or NULL when there is none:
/// `{"code": 7, "name": "MCP_ERR_SERVER", "kind": "server", "message": "..."}` plus, by kind,
/// `"rpcError": {"code", "message", "data"}` (the server's JSON-RPC error), `"elicitations"`
/// (`MCP_ERR_URL_ELICITATION_REQUIRED`), `"result"` (`MCP_ERR_INVALID_OUTPUT`: the result
/// that failed its schema) or `"httpStatus"`. Belongs to the library like `mcp_last_error`'s
/// string: valid until the next call on this thread that can fail; do not free it.
#[no_mangle]
pub extern "C" fn mcp_last_error_json() -> *const c_char {
    quietly(ptr::null(), || {
        LAST_ERROR
            .try_with(|cell| match &mut *cell.borrow_mut() {
                Some(last) => {
                    let LastError {
                        code,
                        message,
                        error,
                        json,
                    } = last;
                    json.get_or_insert_with(|| {
                        let message = message.to_string_lossy();
                        c_text(&failure_json(*code, &message, error.as_ref()).to_string())
                    })
                    .as_ptr()
                }
                None => ptr::null(),
            })
            .unwrap_or(ptr::null())
    })
}

/// The name of a status code, e.g. `"MCP_ERR_TIMEOUT"`, or `"MCP_UNKNOWN_CODE"` for a number
/// that is not a code. A static string: do not free it.
#[no_mangle]
pub extern "C" fn mcp_error_code_name(code: c_int) -> *const c_char {
    quietly(c"MCP_UNKNOWN_CODE".as_ptr(), || {
        mcp_status::from_code(code).map_or(c"MCP_UNKNOWN_CODE".as_ptr(), |s| s.name().as_ptr())
    })
}

/// The library's version, e.g. `"0.1.0"`. A static string: do not free it.
#[no_mangle]
pub extern "C" fn mcp_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The ABI version of the library that is loaded: `MCP_POOL_ABI_VERSION` of the header it
/// was built with. A program checks `mcp_abi_version() == MCP_POOL_ABI_VERSION` at start-up.
#[no_mangle]
pub extern "C" fn mcp_abi_version() -> u32 {
    MCP_POOL_ABI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: *const c_char) -> String {
        assert!(!p.is_null());
        // SAFETY: a string of this library, alive for the assertion.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
    }

    /// Reads `NAME = N,` lines of the enum from this file: the codes as written.
    fn codes_in_source() -> Vec<(String, c_int)> {
        let source = include_str!("mod.rs");
        let start = source.find("pub enum mcp_status {").unwrap();
        let end = start + source[start..].find("\n}").unwrap();
        source[start..end]
            .lines()
            .filter_map(|line| {
                let (name, number) = line.trim().strip_suffix(',')?.split_once(" = ")?;
                Some((name.to_owned(), number.parse().ok()?))
            })
            .collect()
    }

    #[test]
    fn codes_are_numbered_without_a_gap() {
        let codes = codes_in_source();
        assert_eq!(
            codes.len(),
            mcp_status::LAST as usize + 1,
            "LAST is the last code"
        );
        for (i, (name, number)) in codes.iter().enumerate() {
            assert_eq!(*number, i as c_int, "{name} is numbered in order");
            assert_eq!(text(mcp_error_code_name(*number)), *name);
            assert_eq!(mcp_status::from_code(*number).unwrap() as c_int, *number);
        }
        assert_eq!(text(mcp_error_code_name(-1)), "MCP_UNKNOWN_CODE");
        let past = mcp_status::LAST as c_int + 1;
        assert_eq!(text(mcp_error_code_name(past)), "MCP_UNKNOWN_CODE");
    }

    #[test]
    fn the_abi_version_is_where_build_rs_reads_it() {
        let build = include_str!("../../build.rs");
        assert!(build.contains("pub const MCP_POOL_ABI_VERSION: u32 = "));
        assert!(include_str!("mod.rs").contains(&format!(
            "pub const MCP_POOL_ABI_VERSION: u32 = {};",
            mcp_abi_version()
        )));
    }

    #[test]
    fn a_panic_becomes_a_code_and_a_message() {
        let code = status("in_test", || panic!("boom"));
        assert_eq!(code, mcp_status::MCP_ERR_PANIC);
        assert_eq!(text(mcp_last_error()), "panic in in_test: boom");
        assert!(text(mcp_last_error_json()).contains(r#""kind":"panic""#));
        let p: *mut u8 = pointer("in_test", || panic!("{}", String::from("bang")));
        assert!(p.is_null());
        assert_eq!(text(mcp_last_error()), "panic in in_test: bang");
        assert_eq!(
            status("in_test", || Ok(mcp_status::MCP_OK)),
            mcp_status::MCP_OK
        );
        assert!(mcp_last_error().is_null());
        assert!(mcp_last_error_json().is_null());
    }

    #[test]
    fn a_failure_inside_a_successful_call_does_not_show() {
        let code = status("outer", || {
            let inner = status("inner", || Err(Error::InvalidArgument("x".into())));
            assert_eq!(inner, mcp_status::MCP_ERR_INVALID_ARGUMENT);
            Ok(mcp_status::MCP_OK)
        });
        assert_eq!(code, mcp_status::MCP_OK);
        assert!(mcp_last_error().is_null());
    }

    #[test]
    fn server_errors_carry_their_json_rpc_error() {
        let error = Error::Server {
            code: -32001,
            message: "nope".into(),
            data: Some(json!({"why": 1})),
        };
        assert_eq!(status("in_test", || Err(error)), mcp_status::MCP_ERR_SERVER);
        let last: Value = serde_json::from_str(&text(mcp_last_error_json())).unwrap();
        assert_eq!(last["name"], "MCP_ERR_SERVER");
        assert_eq!(last["kind"], "server");
        assert_eq!(
            last["rpcError"],
            json!({"code": -32001, "message": "nope", "data": {"why": 1}})
        );
    }
}
