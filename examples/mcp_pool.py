"""mcp-pool from Python: its C library (libmcp_pool.so) through ctypes, standard library only.

    import mcp_pool

    with mcp_pool.Pool.from_file("mcp.json") as pool:
        result = pool.call_tool("files", "list_directory", {"path": "/tmp"}, timeout=10)
        print(result["content"][0]["text"])

Every call takes the same keyword options: ``timeout`` (seconds), ``start_timeout``
(seconds: bounds waiting for a server's start on its own, so ``timeout`` counts only from
when the call has its session), ``on_progress`` (called
as ``f(progress, total, message)``, ``total`` None when unknown), ``cancel`` (a
``CancelToken`` another thread may fire), ``meta`` (a dict added to ``_meta``),
``log_level``, ``caller`` (the key of a per-caller server) and ``keep_deadline``.

A failure raises ``McpError`` or the subclass named after its status: ``Timeout``
(MCP_ERR_TIMEOUT), ``Cancelled``, ``UnknownServer``, ``Server`` (a JSON-RPC error: see
``.details["rpcError"]``), ``ToolError`` (the tool ran and returned ``isError``: the result
is ``.result``), ... one per code of the library, made from the library's own names.

A handler is any object with some of these methods; only what it has is declared to the
servers (``roots_list_changed``, ``sampling_tools``, ``sampling_context`` attributes add
those flags). Request methods return the result as a dict; raising ``ReplyError(code,
message)`` sends that JSON-RPC error, any other exception a refusal (the spec's error):

    roots(server, params) -> {"roots": [...]}
    sampling(server, params) -> {"role": "assistant", "content": {...}, "model": ...}
    elicitation(server, params) -> {"action": "accept", "content": {...}}
    elicitation_url(server, params) -> {"action": "accept" | "decline" | "cancel"}
    token(server, url, challenge) -> "bearer token"           (HTTP servers)
    on_list_changed(server, kind), on_resource_updated(server, uri),
    on_log(server, level, logger, data), on_task_status(server, task),
    on_elicitation_complete(server, elicitation_id), on_notification(server, method, params)

Request methods run on a library thread each and may block; the ``on_*`` methods run on the
thread reading the server's output and must return quickly without calling the same server.

The library is looked for in $MCP_POOL_LIB, then target/release and target/debug of this
repository, then where the dynamic linker looks (``cargo build --release`` builds it).
"""
import atexit
import ctypes
import ctypes.util
import itertools
import json
import math
import os
import sys
import threading
import traceback
import types
import weakref
from pathlib import Path

__all__ = ["Pool", "Session", "CancelToken", "McpError", "ReplyError"]

c_char_p, c_void_p, c_int, c_bool, c_double = (
    ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_bool, ctypes.c_double)
_OUT = ctypes.POINTER(c_void_p)

# Callback types (src/ffi/options.rs, src/ffi/handler.rs). Strings the library passes in
# are `c_char_p` (copied to bytes); the reply is an opaque pointer.
_PROGRESS = ctypes.CFUNCTYPE(None, c_void_p, c_double, c_double, c_char_p)
_RESULT = ctypes.CFUNCTYPE(None, c_void_p, ctypes.c_size_t, c_int, c_char_p)
_REQUEST = ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_char_p, c_void_p)
_TOKEN = ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_char_p, c_char_p, c_void_p)
_TELL2 = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_char_p)
_TELL3 = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_char_p, c_char_p)
_TELL4 = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_char_p, c_char_p, c_char_p)
_RELEASE = ctypes.CFUNCTYPE(None, c_void_p)


class _Handler(ctypes.Structure):
    """struct mcp_handler, member for member."""
    _fields_ = [
        ("userdata", c_void_p),
        ("roots", _REQUEST), ("roots_list_changed", c_bool),
        ("sampling", _REQUEST), ("sampling_tools", c_bool), ("sampling_context", c_bool),
        ("elicitation", _REQUEST), ("elicitation_url", _REQUEST),
        ("token", _TOKEN),
        ("on_list_changed", _TELL2), ("on_resource_updated", _TELL2),
        ("on_log", _TELL4), ("on_task_status", _TELL2),
        ("on_elicitation_complete", _TELL2), ("on_notification", _TELL3),
        ("release", _RELEASE),
    ]


# Every function: (argument types, result type). Statuses are ints; strings the library
# hands over are void pointers, read and freed by `_take`.
_SIGNATURES = {
    "mcp_string_free": ([c_void_p], None),
    "mcp_last_error_json": ([], c_char_p),
    "mcp_last_error_code": ([], c_int),
    "mcp_error_code_name": ([c_int], c_char_p),
    "mcp_version": ([], c_char_p),
    "mcp_abi_version": ([], ctypes.c_uint32),
    "mcp_pool_builder_new": ([c_char_p], c_void_p),
    "mcp_pool_builder_from_file": ([c_char_p], c_void_p),
    "mcp_pool_builder_set_handler": ([c_void_p, c_char_p, ctypes.POINTER(_Handler)], c_int),
    "mcp_pool_builder_build": ([c_void_p, _OUT], c_int),
    "mcp_pool_builder_free": ([c_void_p], None),
    "mcp_pool_free": ([c_void_p], None),
    "mcp_pool_close": ([c_void_p], c_int),
    "mcp_pool_stats_json": ([c_void_p], c_void_p),
    "mcp_pool_warnings_json": ([c_void_p], c_void_p),
    "mcp_pool_servers_json": ([c_void_p], c_void_p),
    "mcp_pool_details_json": ([c_void_p, c_char_p, c_char_p, _OUT], c_int),
    "mcp_pool_session": ([c_void_p, c_char_p, c_char_p, _OUT], c_int),
    "mcp_pool_list_tools": ([c_void_p, c_char_p, c_void_p, _OUT], c_int),
    "mcp_pool_call_tool": ([c_void_p, c_char_p, c_char_p, c_char_p, c_void_p, _OUT], c_int),
    "mcp_pool_list_resources": ([c_void_p, c_char_p, c_void_p, _OUT], c_int),
    "mcp_pool_list_resource_templates": ([c_void_p, c_char_p, c_void_p, _OUT], c_int),
    "mcp_pool_read_resource": ([c_void_p, c_char_p, c_char_p, c_void_p, _OUT], c_int),
    "mcp_pool_list_prompts": ([c_void_p, c_char_p, c_void_p, _OUT], c_int),
    "mcp_pool_get_prompt": ([c_void_p, c_char_p, c_char_p, c_char_p, c_void_p, _OUT], c_int),
    "mcp_pool_complete": ([c_void_p, c_char_p, c_char_p, c_char_p, c_void_p, _OUT], c_int),
    "mcp_pool_ping": ([c_void_p, c_char_p, c_void_p, ctypes.POINTER(ctypes.c_uint64)], c_int),
    "mcp_pool_request": ([c_void_p, c_char_p, c_char_p, c_char_p, c_void_p, _OUT], c_int),
    "mcp_pool_notify": ([c_void_p, c_char_p, c_char_p, c_char_p], c_int),
    "mcp_pool_batch": ([c_void_p, c_char_p, c_char_p, c_void_p, _OUT], c_int),
    "mcp_session_free": ([c_void_p], None),
    "mcp_session_details_json": ([c_void_p, _OUT], c_int),
    "mcp_session_call_tool": ([c_void_p, c_char_p, c_char_p, c_void_p, _OUT], c_int),
    "mcp_session_request": ([c_void_p, c_char_p, c_char_p, c_void_p, _OUT], c_int),
    "mcp_session_notify": ([c_void_p, c_char_p, c_char_p], c_int),
    "mcp_session_subscribe": ([c_void_p, c_char_p], c_int),
    "mcp_session_unsubscribe": ([c_void_p, c_char_p], c_int),
    "mcp_call_options_new": ([], c_void_p),
    "mcp_call_options_free": ([c_void_p], None),
    "mcp_call_options_set_timeout_ms": ([c_void_p, ctypes.c_uint32], c_int),
    "mcp_call_options_set_start_timeout_ms": ([c_void_p, ctypes.c_uint32], c_int),
    "mcp_call_options_set_keep_deadline": ([c_void_p, c_bool], c_int),
    "mcp_call_options_set_progress": ([c_void_p, _PROGRESS, c_void_p], c_int),
    "mcp_call_options_set_cancel": ([c_void_p, c_void_p], c_int),
    "mcp_call_options_set_meta_json": ([c_void_p, c_char_p], c_int),
    "mcp_call_options_set_log_level": ([c_void_p, c_char_p], c_int),
    "mcp_call_options_set_caller": ([c_void_p, c_char_p], c_int),
    "mcp_batch_options_new": ([], c_void_p),
    "mcp_batch_options_free": ([c_void_p], None),
    "mcp_batch_options_set_timeout_ms": ([c_void_p, ctypes.c_uint32], c_int),
    "mcp_batch_options_set_cancel": ([c_void_p, c_void_p], c_int),
    "mcp_batch_options_set_on_result": ([c_void_p, _RESULT, c_void_p], c_int),
    "mcp_batch_options_set_caller": ([c_void_p, c_char_p], c_int),
    "mcp_cancel_token_new": ([], c_void_p),
    "mcp_cancel_token_cancel": ([c_void_p], c_int),
    "mcp_cancel_token_is_cancelled": ([c_void_p], c_bool),
    "mcp_cancel_token_free": ([c_void_p], None),
    "mcp_reply_json": ([c_void_p, c_char_p], c_int),
    "mcp_reply_text": ([c_void_p, c_char_p], c_int),
    "mcp_reply_error": ([c_void_p, ctypes.c_int64, c_char_p], c_int),
    "mcp_reply_is_cancelled": ([c_void_p], c_bool),
}
_ABI_VERSION = 1  # MCP_POOL_ABI_VERSION of the header these signatures follow


def _load():
    root = Path(__file__).resolve().parent.parent
    candidates = [os.environ.get("MCP_POOL_LIB")]
    candidates += [str(root / "target" / p / "libmcp_pool.so") for p in ("release", "debug")]
    path = next((p for p in candidates if p and Path(p).exists()), None)
    path = path or ctypes.util.find_library("mcp_pool")
    if path is None:
        raise ImportError("libmcp_pool.so not found: run `cargo build --release` or set MCP_POOL_LIB")
    lib = ctypes.CDLL(path)
    for name, (args, result) in _SIGNATURES.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = args, result
    if lib.mcp_abi_version() != _ABI_VERSION:
        raise ImportError(f"{path} has C ABI {lib.mcp_abi_version()}, this module {_ABI_VERSION}")
    return lib


_lib = _load()
OK, TOOL_ERROR = 0, 1


# --- errors ------------------------------------------------------------------------------

class McpError(Exception):
    """A failed call: ``status`` (the code), ``name`` (``MCP_ERR_...``), ``kind``,
    ``message`` and ``details`` (the library's whole error object)."""

    def __init__(self, status, details):
        super().__init__(details.get("message", "?"))
        self.status, self.details = status, details
        self.name, self.kind, self.message = details.get("name"), details.get("kind"), str(self)

    def __str__(self):
        return f"{self.details.get('message', '?')} ({self.details.get('name', self.status)})"


class ReplyError(Exception):
    """Raised by a handler's request method: the server gets this JSON-RPC error."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def _class_name(code_name):
    """MCP_ERR_UNKNOWN_SERVER -> UnknownServer, MCP_TOOL_ERROR -> ToolError."""
    words = code_name.split("_")[2 if code_name.startswith("MCP_ERR_") else 1:]
    return "".join(w.capitalize() for w in words)


def _codes():
    """Every status code of the library by name: {"MCP_OK": 0, ...}."""
    codes = {}
    for code in itertools.count():
        name = _lib.mcp_error_code_name(code).decode()
        if name == "MCP_UNKNOWN_CODE":
            return codes
        codes[name] = code


_CODES = _codes()
_ERRORS = {code: type(_class_name(name), (McpError,), {"__doc__": f"Status {name}."})
           for name, code in _CODES.items() if code != OK}
globals().update({cls.__name__: cls for cls in _ERRORS.values()})
__all__ += [cls.__name__ for cls in _ERRORS.values()]


def _error(status, details=None):
    if details is None:
        text = _lib.mcp_last_error_json()
        details = json.loads(text) if text else {"message": "?"}
    return _ERRORS.get(status, McpError)(status, details)


def _check(status):
    if status != OK:
        raise _error(status)


def _take(pointer):
    """A string the library handed over, decoded as JSON, then freed."""
    try:
        return json.loads(ctypes.string_at(pointer).decode())
    finally:
        _lib.mcp_string_free(pointer)


def _text(value):
    return None if value is None else value.encode()


def _json(value):
    return None if value is None else json.dumps(value).encode()


def _str(raw):
    return None if raw is None else raw.decode()


# --- callbacks ---------------------------------------------------------------------------
# One static thunk per callback type (never freed); the userdata is a key into `_live`,
# which holds the Python callables until the library is done with them.

_live, _live_lock, _keys = {}, threading.Lock(), itertools.count(1)


def _register(value):
    with _live_lock:
        key = next(_keys)
        _live[key] = value
        return key


def _unregister(key):
    with _live_lock:
        _live.pop(key, None)


def _lookup(key):
    with _live_lock:
        return _live.get(key)


@_PROGRESS
def _on_progress(key, progress, total, message):
    try:
        _lookup(key)(progress, None if math.isnan(total) else total, _str(message))
    except Exception as e:  # never through C
        _lookup(key).error = e


@_RESULT
def _on_result(key, index, status, result_json):
    sink = _lookup(key)
    try:
        sink.callback(index, _element(status, json.loads(result_json)))
    except Exception as e:  # never through C: raised when the batch returns
        sink.error = sink.error or e


def _answer(key, method, reply, *args):
    handler = _lookup(key)
    try:
        result = getattr(handler, method)(*args)
        return _lib.mcp_reply_json(reply, json.dumps(result).encode())
    except ReplyError as e:
        return _lib.mcp_reply_error(reply, e.code, e.message.encode())
    except Exception:
        return _CODES["MCP_ERR_INPUT_REFUSED"]  # the library sends the spec's error


def _request_thunk(method):
    return _REQUEST(lambda key, server, params, reply: _answer(
        key, method, reply, _str(server), json.loads(params)))


@_TOKEN
def _on_token(key, server, url, challenge, reply):
    try:
        token = _lookup(key).token(_str(server), _str(url), _str(challenge))
        return _lib.mcp_reply_text(reply, token.encode())
    except Exception as e:
        _lib.mcp_reply_error(reply, -32603, str(e).encode())
        return _CODES["MCP_ERR_UNAUTHORIZED"]


def _tell(kind, method, decode):
    def tell(key, *args):
        try:
            getattr(_lookup(key), method)(*decode(*(_str(a) for a in args)))
        except Exception:
            traceback.print_exc()  # a notification has no caller to raise to
    return kind(tell)


_REQUESTS = {m: _request_thunk(m) for m in ("roots", "sampling", "elicitation", "elicitation_url")}
_TELLS = {
    "on_list_changed": _tell(_TELL2, "on_list_changed", lambda s, k: (s, k)),
    "on_resource_updated": _tell(_TELL2, "on_resource_updated", lambda s, u: (s, u)),
    "on_log": _tell(_TELL4, "on_log", lambda s, lv, lg, d: (s, lv, lg, json.loads(d))),
    "on_task_status": _tell(_TELL2, "on_task_status", lambda s, t: (s, json.loads(t))),
    "on_elicitation_complete": _tell(_TELL2, "on_elicitation_complete", lambda s, i: (s, i)),
    "on_notification": _tell(_TELL3, "on_notification", lambda s, m, p: (s, m, json.loads(p))),
}


@_RELEASE
def _on_release(key):
    _unregister(key)


def _handler_table(handler):
    """The struct mcp_handler for a Python handler: a callback for each method it has."""
    table = _Handler(userdata=_register(handler), release=_on_release)
    has = lambda name: callable(getattr(handler, name, None))
    for name, thunk in list(_REQUESTS.items()) + list(_TELLS.items()):
        if has(name):
            setattr(table, name, thunk)
    if has("token"):
        table.token = _on_token
    for flag in ("roots_list_changed", "sampling_tools", "sampling_context"):
        setattr(table, flag, bool(getattr(handler, flag, False)))
    return table


# --- options -----------------------------------------------------------------------------

class CancelToken:
    """Cancels the calls it is given to (``cancel=token``), from any thread."""

    def __init__(self):
        self._token = _lib.mcp_cancel_token_new()

    def cancel(self):
        _check(_lib.mcp_cancel_token_cancel(self._token))

    @property
    def cancelled(self):
        return _lib.mcp_cancel_token_is_cancelled(self._token)

    def __del__(self):
        if getattr(self, "_token", None):
            _lib.mcp_cancel_token_free(self._token)
            self._token = None


def _ms(seconds):
    return max(1, int(seconds * 1000)) if seconds else 0


class _Options:
    """mcp_call_options for one call, freed after it (with its progress callback)."""

    def __init__(self, timeout=None, on_progress=None, cancel=None, meta=None, log_level=None,
                 caller=None, keep_deadline=False, start_timeout=None):
        self.pointer, self.key, self.progress = _lib.mcp_call_options_new(), None, on_progress
        try:
            _check(_lib.mcp_call_options_set_timeout_ms(self.pointer, _ms(timeout)))
            _check(_lib.mcp_call_options_set_start_timeout_ms(self.pointer, _ms(start_timeout)))
            _check(_lib.mcp_call_options_set_keep_deadline(self.pointer, keep_deadline))
            _check(_lib.mcp_call_options_set_meta_json(self.pointer, _json(meta)))
            _check(_lib.mcp_call_options_set_log_level(self.pointer, _text(log_level)))
            _check(_lib.mcp_call_options_set_caller(self.pointer, _text(caller)))
            if cancel is not None:
                _check(_lib.mcp_call_options_set_cancel(self.pointer, cancel._token))
            if on_progress is not None:
                self.key = _register(self)
                _check(_lib.mcp_call_options_set_progress(self.pointer, _on_progress, self.key))
        except BaseException:
            self.close()
            raise
        self.error = None

    def __call__(self, progress, total, message):
        self.progress(progress, total, message)

    def close(self):
        _lib.mcp_call_options_free(self.pointer)
        if self.key is not None:
            _unregister(self.key)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        if self.error is not None and exc[0] is None:
            raise self.error  # the progress callback failed (the result was taken and freed)


def _element(status, element):
    """One element of a batch's results: the result, or the error as an exception."""
    if "error" in element and status not in (OK, TOOL_ERROR):
        return _error(status, element["error"])
    return element


def _tool_result(status, out, tool):
    result = _take(out) if out else None
    if status == TOOL_ERROR:
        error = _error(status)
        error.result = result
        raise error
    _check(status)
    return result


# --- pools and sessions ------------------------------------------------------------------

class Pool:
    """A pool of MCP sessions over the servers of an ``mcpServers`` configuration (a dict or
    its JSON text). ``handler`` serves every server; ``handlers`` maps server names to their
    own. Use it as a context manager, or call ``close()``."""

    def __init__(self, config, handler=None, handlers=None, _path=None):
        if _path is not None:
            builder = _lib.mcp_pool_builder_from_file(str(_path).encode())
        else:
            text = config if isinstance(config, str) else json.dumps(config)
            builder = _lib.mcp_pool_builder_new(text.encode())
        if not builder:
            raise _error(_lib.mcp_last_error_code())
        for server, h in [(None, handler)] + list((handlers or {}).items()):
            if h is None:
                continue
            table = _handler_table(h)  # copied by the library, released through `release`
            status = _lib.mcp_pool_builder_set_handler(builder, _text(server), table)
            if status != OK:
                error = _error(status)
                _unregister(table.userdata)  # not kept on failure
                _lib.mcp_pool_builder_free(builder)  # releases the tables set before
                raise error
        pool = c_void_p()
        _check(_lib.mcp_pool_builder_build(builder, ctypes.byref(pool)))
        self._pool = pool
        # Freed when the object goes (never while another thread is in a call on it, since
        # that thread holds the object; ``close`` only closes). The garbage collector may
        # run this inside a callback of the same pool, on a library thread: the pool is
        # then freed from a thread of its own. At exit other threads may still be in calls,
        # so the pool is only closed then, and never freed (the process is ending).
        freed = threading.Event()

        def free():
            freed.set()
            if sys.is_finalizing():
                return
            if isinstance(threading.current_thread(), threading._DummyThread):
                threading.Thread(target=_lib.mcp_pool_free, args=(pool,)).start()
            else:
                _lib.mcp_pool_free(pool)

        def close_at_exit():
            if not freed.is_set():
                _lib.mcp_pool_close(pool)

        self._free = weakref.finalize(self, free)
        self._free.atexit = False
        atexit.register(close_at_exit)

    @classmethod
    def from_file(cls, path, **kwargs):
        """A pool from a configuration file, read by the library: relative ``command``,
        ``args`` and ``cwd`` paths are the file's directory's, and errors name the file."""
        return cls(None, _path=Path(path), **kwargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Closes every session (waits for the servers to exit); later calls raise
        ``PoolClosed``. Safe while other threads are in calls: they end with ``PoolClosed``
        and the handle is freed only once the object is gone."""
        if getattr(self, "_pool", None):
            _lib.mcp_pool_close(self._pool)

    def _handle(self):
        if not self._pool:
            code = _CODES["MCP_ERR_POOL_CLOSED"]
            raise _ERRORS[code](code, {"name": "MCP_ERR_POOL_CLOSED", "message": "pool closed"})
        return self._pool

    def _json_call(self, function, *args, **options):
        out = c_void_p()
        with _Options(**options) as o:
            _check(function(self._handle(), *args, o.pointer, ctypes.byref(out)))
            return _take(out)  # freed before a failed progress callback is raised

    def _string(self, function):
        pointer = function(self._handle())
        if not pointer:
            raise _error(_lib.mcp_last_error_code())
        return _take(pointer)

    def servers(self):
        return self._string(_lib.mcp_pool_servers_json)

    def stats(self):
        return self._string(_lib.mcp_pool_stats_json)

    def warnings(self):
        return self._string(_lib.mcp_pool_warnings_json)

    def details(self, server, caller=None):
        out = c_void_p()
        _check(_lib.mcp_pool_details_json(self._handle(), server.encode(), _text(caller),
                                          ctypes.byref(out)))
        return _take(out)

    def call_tool(self, server, tool, arguments=None, **options):
        """The tool's result (``content``, ``structuredContent``, ``isError``); raises
        ``ToolError`` (with ``.result``) when the tool reported a failure."""
        out = c_void_p()
        with _Options(**options) as o:
            status = _lib.mcp_pool_call_tool(self._handle(), server.encode(), tool.encode(),
                                             _json(arguments), o.pointer, ctypes.byref(out))
            return _tool_result(status, out.value, tool)

    def list_tools(self, server, **options):
        return self._json_call(_lib.mcp_pool_list_tools, server.encode(), **options)

    def list_resources(self, server, **options):
        return self._json_call(_lib.mcp_pool_list_resources, server.encode(), **options)

    def list_resource_templates(self, server, **options):
        return self._json_call(_lib.mcp_pool_list_resource_templates, server.encode(), **options)

    def read_resource(self, server, uri, **options):
        return self._json_call(_lib.mcp_pool_read_resource, server.encode(), uri.encode(),
                               **options)

    def list_prompts(self, server, **options):
        return self._json_call(_lib.mcp_pool_list_prompts, server.encode(), **options)

    def get_prompt(self, server, name, arguments=None, **options):
        return self._json_call(_lib.mcp_pool_get_prompt, server.encode(), name.encode(),
                               _json(arguments), **options)

    def complete(self, server, reference, argument, **options):
        return self._json_call(_lib.mcp_pool_complete, server.encode(), _json(reference),
                               _json(argument), **options)

    def request(self, server, method, params=None, **options):
        return self._json_call(_lib.mcp_pool_request, server.encode(), method.encode(),
                               _json(params), **options)

    def ping(self, server, **options):
        """The round trip in seconds."""
        micros = ctypes.c_uint64()
        with _Options(**options) as o:
            _check(_lib.mcp_pool_ping(self._handle(), server.encode(), o.pointer,
                                      ctypes.byref(micros)))
        return micros.value / 1e6

    def notify(self, server, method, params=None):
        _check(_lib.mcp_pool_notify(self._handle(), server.encode(), method.encode(),
                                    _json(params)))

    def batch(self, server, calls, timeout=None, cancel=None, on_result=None, caller=None):
        """Runs ``calls`` (``[{"tool": ..., "arguments": {...}}, ...]``) on one session.
        Returns one element per call, in order: the result, or the call's ``McpError``
        (not raised). ``on_result(index, element)`` sees each as it finishes."""
        options, key, out = _lib.mcp_batch_options_new(), None, c_void_p()
        sink = types.SimpleNamespace(callback=on_result, error=None)
        try:
            _check(_lib.mcp_batch_options_set_timeout_ms(options, _ms(timeout)))
            _check(_lib.mcp_batch_options_set_caller(options, _text(caller)))
            if cancel is not None:
                _check(_lib.mcp_batch_options_set_cancel(options, cancel._token))
            if on_result is not None:
                key = _register(sink)
                _check(_lib.mcp_batch_options_set_on_result(options, _on_result, key))
            _check(_lib.mcp_pool_batch(self._handle(), server.encode(), json.dumps(calls).encode(),
                                       options, ctypes.byref(out)))
        finally:
            _lib.mcp_batch_options_free(options)
            if key is not None:
                _unregister(key)
        elements = _take(out)
        if sink.error is not None:
            raise sink.error  # the callback failed
        return [_element(_status_of(e), e) for e in elements]

    def session(self, server, caller=None):
        """One live session of the server, for calls that need the same process
        (subscriptions). Use it as a context manager, or call ``close()``."""
        out = c_void_p()
        _check(_lib.mcp_pool_session(self._handle(), server.encode(), _text(caller),
                                     ctypes.byref(out)))
        return Session(out)


def _status_of(element):
    if "error" in element:
        return element["error"]["code"]
    return TOOL_ERROR if element.get("isError") else OK


class Session:
    """A session handed out by ``Pool.session``: it stays in the pool; closing this object
    only lets go of it."""

    def __init__(self, pointer):
        self._session = pointer

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        session, self._session = getattr(self, "_session", None), None
        if session:
            _lib.mcp_session_free(session)

    def details(self):
        out = c_void_p()
        _check(_lib.mcp_session_details_json(self._session, ctypes.byref(out)))
        return _take(out)

    def call_tool(self, tool, arguments=None, **options):
        out = c_void_p()
        with _Options(**options) as o:
            status = _lib.mcp_session_call_tool(self._session, tool.encode(), _json(arguments),
                                                o.pointer, ctypes.byref(out))
            return _tool_result(status, out.value, tool)

    def request(self, method, params=None, **options):
        out = c_void_p()
        with _Options(**options) as o:
            _check(_lib.mcp_session_request(self._session, method.encode(), _json(params),
                                            o.pointer, ctypes.byref(out)))
            return _take(out)

    def notify(self, method, params=None):
        _check(_lib.mcp_session_notify(self._session, method.encode(), _json(params)))

    def subscribe(self, uri):
        _check(_lib.mcp_session_subscribe(self._session, uri.encode()))

    def unsubscribe(self, uri):
        _check(_lib.mcp_session_unsubscribe(self._session, uri.encode()))


version = _lib.mcp_version().decode()
