#!/usr/bin/env python3
"""List the tools of an MCP server, or call one, from Python through mcp-pool's C library.

    python3 examples/mcp_ctypes.py CONFIG.json SERVER               # the server's tools
    python3 examples/mcp_ctypes.py CONFIG.json SERVER TOOL [ARGS]   # one call, ARGS a JSON object

CONFIG.json is an `mcpServers` file (Claude Desktop, Cursor). Only the standard library is
used (ctypes); build the library first with `cargo build --release`. It is looked for in
$MCP_POOL_LIB, then target/release, then target/debug.
"""
import ctypes
import json
import os
import sys
from pathlib import Path

MCP_OK = 0
MCP_TOOL_ERROR = 1


class McpError(Exception):
    pass


def load_library():
    root = Path(__file__).resolve().parent.parent
    candidates = [os.environ.get("MCP_POOL_LIB")] + [
        str(root / "target" / profile / "libmcp_pool.so") for profile in ("release", "debug")
    ]
    path = next((p for p in candidates if p and Path(p).exists()), None)
    if path is None:
        raise McpError("libmcp_pool.so not found: run `cargo build --release` or set MCP_POOL_LIB")
    lib = ctypes.CDLL(path)
    c_str, c_ptr, out = ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
    # Strings the library hands over are taken as c_void_p so they can be freed.
    lib.mcp_pool_new.argtypes, lib.mcp_pool_new.restype = [c_str], c_ptr
    lib.mcp_pool_list_tools.argtypes = [c_ptr, c_str, out]
    lib.mcp_pool_call_tool.argtypes = [c_ptr, c_str, c_str, c_str, ctypes.c_uint32, out]
    lib.mcp_pool_free.argtypes, lib.mcp_pool_free.restype = [c_ptr], None
    lib.mcp_string_free.argtypes, lib.mcp_string_free.restype = [c_ptr], None
    lib.mcp_last_error.restype = c_str  # owned by the library: copied, never freed
    lib.mcp_error_code_name.argtypes, lib.mcp_error_code_name.restype = [ctypes.c_int], c_str
    return lib


def failure(lib, what, code):
    message = (lib.mcp_last_error() or b"?").decode()
    return McpError(f"{what}: {message} ({lib.mcp_error_code_name(code).decode()})")


def take_json(lib, pointer):
    """Decodes a JSON string the library returned, then frees it."""
    try:
        return json.loads(ctypes.string_at(pointer).decode())
    finally:
        lib.mcp_string_free(pointer)


def run(argv):
    if not 3 <= len(argv) <= 5:
        raise McpError("usage: mcp_ctypes.py CONFIG.json SERVER [TOOL [ARGUMENTS_JSON]]")
    config, server = Path(argv[1]).read_text(), argv[2].encode()
    lib = load_library()
    pool = lib.mcp_pool_new(config.encode())
    if not pool:
        raise failure(lib, "configuration", lib.mcp_last_error_code())
    try:
        result = ctypes.c_void_p()
        if len(argv) == 3:
            code = lib.mcp_pool_list_tools(pool, server, ctypes.byref(result))
            if code != MCP_OK:
                raise failure(lib, "list tools", code)
            for tool in take_json(lib, result):
                print(f"{tool['name']}: {tool.get('description', '')}")
            return 0
        tool = argv[3]
        arguments = argv[4].encode() if len(argv) > 4 else None
        code = lib.mcp_pool_call_tool(pool, server, tool.encode(), arguments, 0, ctypes.byref(result))
        if code not in (MCP_OK, MCP_TOOL_ERROR):
            raise failure(lib, tool, code)
        for item in take_json(lib, result)["content"]:
            print(item["text"] if item.get("type") == "text" else json.dumps(item))
        return 0 if code == MCP_OK else 1
    finally:
        lib.mcp_pool_free(pool)  # closes the server processes


if __name__ == "__main__":
    try:
        sys.exit(run(sys.argv))
    except (McpError, OSError) as e:
        print(f"mcp_ctypes: {e}", file=sys.stderr)
        sys.exit(1)
