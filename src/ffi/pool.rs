//! The pool handle and its builder, and a session handed out from a pool.

use std::collections::HashMap;
use std::ffi::c_char;
use std::sync::Arc;

use serde_json::{json, Value};

use super::handler::{mcp_handler, CHandler, CToken};
use super::{
    c_string_out, mcp_status, null_argument, opt_str_arg, pointer, quietly, status, str_arg,
    to_json, Out,
};
use crate::{Error, Generation, Pool, PoolBuilder, Session};

/// A pool of MCP sessions over the servers of one configuration. Opaque: create it with
/// `mcp_pool_new` or `mcp_pool_builder_build`, free it with `mcp_pool_free`. Every function
/// taking a `const mcp_pool *` may be called from any number of threads at once.
#[allow(non_camel_case_types)]
pub struct mcp_pool {
    pool: Pool,
    /// What loading the configuration warned about (unknown keys, skipped servers).
    warnings: Vec<String>,
}

/// A configuration being made into a pool: callbacks are added to it before the pool
/// starts. Create with `mcp_pool_builder_new`; `mcp_pool_builder_build` turns it into a
/// pool (and frees it); `mcp_pool_builder_free` abandons it. Not for several threads at once.
#[allow(non_camel_case_types)]
pub struct mcp_pool_builder {
    builder: PoolBuilder,
    /// The handler of every server without one of its own.
    everyone: Option<Arc<CHandler>>,
    by_server: HashMap<String, Arc<CHandler>>,
}

/// One live session of a server, handed out by `mcp_pool_session` for callers that need
/// the same server process across calls (subscriptions, a stateful tool). It stays in the
/// pool: other calls may use it too, and the pool may close it when idle or old, after
/// which calls on it fail with `MCP_ERR_SESSION_CLOSED` (get another). Free it with
/// `mcp_session_free`, which does not close it. Every function taking a
/// `const mcp_session *` may be called from any number of threads at once.
#[allow(non_camel_case_types)]
pub struct mcp_session {
    pub(super) session: Session,
}

/// The pool behind a handle.
///
/// # Safety
/// `pool` is NULL or a handle from `mcp_pool_new` that was not freed.
pub(super) unsafe fn pool_arg<'a>(pool: *const mcp_pool) -> Result<&'a Pool, Error> {
    // SAFETY: the caller promises NULL or a live handle, which stays alive while it is used
    // (freeing a handle in use is documented as the caller's bug). Only shared references are
    // made, and `Pool` is `Sync`, so any number of threads may hold one at once.
    match unsafe { pool.as_ref() } {
        Some(handle) => Ok(&handle.pool),
        None => Err(null_argument("pool")),
    }
}

/// The session behind a handle.
///
/// # Safety
/// `session` is NULL or a handle from `mcp_pool_session` that was not freed.
pub(super) unsafe fn session_arg<'a>(session: *const mcp_session) -> Result<&'a Session, Error> {
    // SAFETY: as for `pool_arg`; `Session` is `Sync`.
    match unsafe { session.as_ref() } {
        Some(handle) => Ok(&handle.session),
        None => Err(null_argument("session")),
    }
}

/// # Safety
/// `builder` is NULL or a live builder that no other thread uses meanwhile.
unsafe fn builder_arg<'a>(
    builder: *mut mcp_pool_builder,
) -> Result<&'a mut mcp_pool_builder, Error> {
    // SAFETY: the caller's contract: live and used by this thread only.
    unsafe { builder.as_mut() }.ok_or_else(|| null_argument("builder"))
}

impl mcp_pool_builder {
    /// A builder of these servers, with no callbacks yet.
    fn new(builder: PoolBuilder) -> mcp_pool_builder {
        mcp_pool_builder {
            builder,
            everyone: None,
            by_server: HashMap::new(),
        }
    }

    /// Gives every server its handler (and HTTP servers its token callback), then builds.
    fn build(self) -> Result<mcp_pool, Error> {
        let mcp_pool_builder {
            mut builder,
            everyone,
            by_server,
        } = self;
        for config in builder.servers_mut() {
            let Some(handler) = by_server.get(config.name()).or(everyone.as_ref()) else {
                continue;
            };
            let mut changed = config.clone().handler(handler.clone());
            if config.url().is_some() && handler.gives_tokens() {
                changed = changed.token_provider(CToken(handler.clone()));
            }
            *config = changed;
        }
        let warnings = builder.warnings().to_vec();
        let pool = builder.build()?;
        Ok(mcp_pool { pool, warnings })
    }
}

/// Creates a pool from the JSON text of an `mcpServers` configuration (as Claude Desktop or
/// Cursor write it; VS Code's `servers` works too; see the README), with no callbacks: a
/// server that asks for roots, sampling or elicitation is refused. Servers start on first
/// use. `mcp_pool_builder_new` and `mcp_pool_builder_build` do the same with callbacks.
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
        let builder = mcp_pool_builder::new(PoolBuilder::from_json(text)?);
        Ok(Box::into_raw(Box::new(builder.build()?)))
    })
}

/// Reads a configuration (as `mcp_pool_new`) into a builder, to which callbacks are added
/// before the pool starts. Returns NULL on failure (`MCP_ERR_INVALID_ARGUMENT`,
/// `MCP_ERR_CONFIG`); `mcp_last_error` says why. Settings are checked by
/// `mcp_pool_builder_build`.
///
/// # Safety
/// `config_json` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_builder_new(config_json: *const c_char) -> *mut mcp_pool_builder {
    pointer("mcp_pool_builder_new", || {
        // SAFETY: the caller's contract for `config_json`; the text is used only here.
        let text = unsafe { str_arg(config_json, "config_json") }?;
        Ok(Box::into_raw(Box::new(mcp_pool_builder::new(
            PoolBuilder::from_json(text)?,
        ))))
    })
}

/// Reads a configuration file (as `mcp_pool_builder_new` reads its text) into a builder.
/// Unlike the text, a file gives relative `command`, `args` and `cwd` paths a base (the
/// file's own directory; see the README) and its name to every warning and error. Returns
/// NULL on failure (`MCP_ERR_INVALID_ARGUMENT` for a NULL or non-UTF-8 path,
/// `MCP_ERR_CONFIG` for a file that cannot be read or parsed); `mcp_last_error` says why.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_builder_from_file(path: *const c_char) -> *mut mcp_pool_builder {
    pointer("mcp_pool_builder_from_file", || {
        // SAFETY: the caller's contract for `path`; the text is used only here.
        let path = unsafe { str_arg(path, "path") }?;
        Ok(Box::into_raw(Box::new(mcp_pool_builder::new(
            PoolBuilder::from_file(path)?,
        ))))
    })
}

/// Gives the callbacks of `handler` to server `server`, or with `server` NULL to every
/// server that is given none of its own (in any order). The struct is copied, and each copy
/// kept calls `release` once: a table given in two calls is released twice, so give each
/// call its own `userdata` or make `release` count. `userdata` must stay valid until the
/// copy's `release` callback runs (or, without one, until the pool is freed and no callback
/// is running). Setting a server's handler again replaces it
/// (the replaced copy's `release` runs at once).
///
/// Returns `MCP_OK` (also for a server the configuration skipped or disabled: nothing is
/// kept, and the copy's `release` runs before this returns); `MCP_ERR_UNKNOWN_SERVER` for a server the
/// configuration does not name;
/// `MCP_ERR_INVALID_ARGUMENT` for NULL `builder` or `handler`, or a name that is not UTF-8.
/// On failure the library keeps nothing (`release` is not called).
///
/// # Safety
/// `builder` is NULL or live and used by no other thread; `server` NULL or NUL-terminated;
/// `handler` NULL or a readable `mcp_handler` whose callbacks follow its documented contract.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_builder_set_handler(
    builder: *mut mcp_pool_builder,
    server: *const c_char,
    handler: *const mcp_handler,
) -> mcp_status {
    status("mcp_pool_builder_set_handler", || {
        // SAFETY: the caller's contract for each pointer.
        let (builder, server) = unsafe { (builder_arg(builder)?, opt_str_arg(server, "server")?) };
        if handler.is_null() {
            return Err(null_argument("handler"));
        }
        if let Some(server) = server {
            if builder
                .builder
                .skipped_servers()
                .iter()
                .any(|s| s.name == server)
            {
                // Skipped (a broken entry) or disabled: its calls fail with the reason; one
                // broken entry must not fail the whole pool through its handler. The copy
                // is released at once (its drop), as a replaced one is.
                // SAFETY: the caller's contract for `handler` (checked not NULL above).
                drop(unsafe { CHandler::copy(handler) }?);
                return Ok(mcp_status::MCP_OK);
            }
            if !builder.builder.servers_mut().any(|c| c.name() == server) {
                return Err(Error::UnknownServer(server.to_owned()));
            }
        }
        // SAFETY: the caller's contract for `handler` (checked not NULL above).
        let handler = unsafe { CHandler::copy(handler) }?;
        match server {
            Some(server) => {
                builder.by_server.insert(server.to_owned(), handler);
            }
            None => builder.everyone = Some(handler),
        }
        Ok(mcp_status::MCP_OK)
    })
}

/// Validates the configuration, starts the pool (and the warm sessions of `"warmEagerly"`)
/// and writes it to `*pool_out`. Frees the builder whatever the outcome (its handlers'
/// `release` run on failure). Returns `MCP_OK`, or what `mcp_pool_new` would fail with;
/// `MCP_ERR_INVALID_ARGUMENT` for a NULL argument.
///
/// # Safety
/// `builder` is NULL or live and used by no other thread, and not used after this call;
/// `pool_out` NULL or a writable `mcp_pool *`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_builder_build(
    builder: *mut mcp_pool_builder,
    pool_out: *mut *mut mcp_pool,
) -> mcp_status {
    status("mcp_pool_builder_build", || {
        if builder.is_null() {
            return Err(null_argument("builder"));
        }
        // SAFETY: not NULL; made by `Box::into_raw` in `mcp_pool_builder_new`, and the caller
        // gives it up with this call.
        let builder = unsafe { Box::from_raw(builder) };
        let out = Out::new(pool_out, "pool_out")?;
        let pool = Box::into_raw(Box::new(builder.build()?));
        // SAFETY: `pool_out` is a writable `mcp_pool *` by the caller's contract.
        unsafe { out.write(pool) };
        Ok(mcp_status::MCP_OK)
    })
}

/// Frees a builder that was not built. NULL is fine. Its handlers' `release` run.
///
/// # Safety
/// `builder` is NULL or from `mcp_pool_builder_new`, not built or freed, used by no other
/// thread.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_builder_free(builder: *mut mcp_pool_builder) {
    if builder.is_null() {
        return;
    }
    // SAFETY: not NULL; made by `Box::into_raw` in `mcp_pool_builder_new`, freed once.
    let builder = unsafe { Box::from_raw(builder) };
    quietly((), move || drop(builder));
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
        Ok(c_string_out(&pool.stats().to_json()))
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
        Ok(c_string_out(&to_json(&handle.warnings)?))
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
        Ok(c_string_out(&to_json(&pool.servers())?))
    })
}

/// What a session says of its server, as JSON.
fn session_details(session: &Session) -> Value {
    let details = session.details();
    let generation = match details.generation {
        Generation::Auto => "auto",
        Generation::Handshake => "handshake",
        Generation::PerRequest => "per-request",
    };
    json!({
        "server": session.server_name(),
        "generation": generation,
        "protocolVersion": details.protocol_version,
        "capabilities": details.capabilities,
        "serverInfo": details.server_info,
        "instructions": details.instructions,
        "transport": session.transport(),
        "pid": session.pid(),
    })
}

/// What a server said of itself, from one of its sessions (started if it has none): on
/// `MCP_OK` writes to `*details_json` `{"server", "generation": "handshake" or
/// "per-request", "protocolVersion", "capabilities": {...} as the server declared them,
/// "serverInfo": {"name", "version", ...}, "instructions", "transport": "stdio" or
/// "streamable-http" ..., "pid"}`; free it with `mcp_string_free`. `caller` is the caller
/// key for a per-caller server (NULL otherwise).
///
/// # Safety
/// `pool` is NULL or a live handle; the strings NULL or NUL-terminated; `details_json` NULL
/// or a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_details_json(
    pool: *const mcp_pool,
    server: *const c_char,
    caller: *const c_char,
    details_json: *mut *mut c_char,
) -> mcp_status {
    status("mcp_pool_details_json", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (pool, server, caller) = unsafe {
            (
                pool_arg(pool)?,
                str_arg(server, "server")?,
                opt_str_arg(caller, "caller")?,
            )
        };
        let out = Out::new(details_json, "details_json")?;
        let session = match caller {
            Some(key) => pool.session_for(server, key)?,
            None => pool.session(server)?,
        };
        // SAFETY: `details_json` is a writable `char *` by the caller's contract.
        unsafe { out.write_json(&session_details(&session)) }?;
        Ok(mcp_status::MCP_OK)
    })
}

/// Hands out a live session of the server (started if it has none; for a per-caller
/// server, one of key `caller`, else `caller` NULL), written to `*session_out` on `MCP_OK`.
/// Free it with `mcp_session_free`. See `mcp_session`.
///
/// # Safety
/// `pool` is NULL or a live handle; the strings NULL or NUL-terminated; `session_out` NULL
/// or a writable `mcp_session *`.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_session(
    pool: *const mcp_pool,
    server: *const c_char,
    caller: *const c_char,
    session_out: *mut *mut mcp_session,
) -> mcp_status {
    status("mcp_pool_session", || {
        // SAFETY: the caller's contract for each pointer; the borrows end with this call.
        let (pool, server, caller) = unsafe {
            (
                pool_arg(pool)?,
                str_arg(server, "server")?,
                opt_str_arg(caller, "caller")?,
            )
        };
        let out = Out::new(session_out, "session_out")?;
        let session = match caller {
            Some(key) => pool.session_for(server, key)?,
            None => pool.session(server)?,
        };
        // SAFETY: `session_out` is a writable `mcp_session *` by the caller's contract.
        unsafe { out.write(Box::into_raw(Box::new(mcp_session { session }))) };
        Ok(mcp_status::MCP_OK)
    })
}

/// What the session's server said of itself, as `mcp_pool_details_json` writes it (the
/// `pid` is this session's process). Works on a closed session too.
///
/// # Safety
/// `session` is NULL or a live handle; `details_json` NULL or a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn mcp_session_details_json(
    session: *const mcp_session,
    details_json: *mut *mut c_char,
) -> mcp_status {
    status("mcp_session_details_json", || {
        // SAFETY: the caller's contract for `session`; the borrow ends with this call.
        let session = unsafe { session_arg(session) }?;
        let out = Out::new(details_json, "details_json")?;
        // SAFETY: `details_json` is a writable `char *` by the caller's contract.
        unsafe { out.write_json(&session_details(session)) }?;
        Ok(mcp_status::MCP_OK)
    })
}

/// Frees a session handle. The session stays in the pool (it is closed only if the pool
/// already let it go). NULL is fine.
///
/// # Safety
/// `session` is NULL or from `mcp_pool_session`, not yet freed, used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn mcp_session_free(session: *mut mcp_session) {
    if session.is_null() {
        return;
    }
    // SAFETY: not NULL; made by `Box::into_raw` in `mcp_pool_session`, freed once.
    let session = unsafe { Box::from_raw(session) };
    quietly((), move || drop(session));
}

/// Closes every session (stdin closed, then SIGTERM and SIGKILL to laggards; every child
/// reaped) and waits for them, within a bounded time. Calls in flight on other threads end
/// with an error. The handle stays valid: later calls return `MCP_ERR_POOL_CLOSED`,
/// statistics still work, and it must still be freed. Idempotent. Returns `MCP_OK`, or
/// `MCP_ERR_INVALID_ARGUMENT` when `pool` is NULL.
///
/// # Safety
/// `pool` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn mcp_pool_close(pool: *const mcp_pool) -> mcp_status {
    status("mcp_pool_close", || {
        // SAFETY: the caller's contract for `pool`; the borrow ends with this call.
        unsafe { pool_arg(pool) }?.close();
        Ok(mcp_status::MCP_OK)
    })
}

/// Closes the pool as `mcp_pool_close` does (blocking until its sessions are closed) and
/// frees the handle. NULL is fine. Freeing a handle that another thread is still using, or
/// freeing it twice, or from a callback, is a bug in the caller (undefined behaviour).
/// Session handles from `mcp_pool_session` must be freed too (before or after).
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
