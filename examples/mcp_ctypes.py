#!/usr/bin/env python3
"""List the tools of an MCP server, or call one, from Python through mcp-pool's C library.

    python3 examples/mcp_ctypes.py CONFIG.json SERVER               # the server's tools
    python3 examples/mcp_ctypes.py CONFIG.json SERVER TOOL [ARGS]   # one call, ARGS a JSON object

CONFIG.json is an `mcpServers` file (Claude Desktop, Cursor). Uses `mcp_pool.py` beside it
(ctypes, standard library only); build the library first with `cargo build --release`.
Progress reports go to stderr, Ctrl-C cancels the call, a server asking for the client's
roots gets the current directory, and its log messages go to stderr. Output cut short by a
closed pipe (`| head`) ends the script quietly.
"""
import json
import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    import mcp_pool
except ImportError as e:  # the library is not built, or not found
    sys.exit(f"mcp_ctypes: {e}")


class Client:
    """What this script answers and hears: roots, and log messages."""

    def roots(self, server, params):
        return {"roots": [{"uri": Path.cwd().as_uri(), "name": "cwd"}]}

    def on_log(self, server, level, logger, data):
        print(f"[{server} {level}] {data}", file=sys.stderr)


def progress(done, total, message):
    of = f"/{total:g}" if total is not None else ""
    print(f"  {done:g}{of} {message or ''}", file=sys.stderr)


def call(pool, server, tool, arguments):
    """The call on a thread of its own, so that Ctrl-C here can cancel it."""
    cancel, outcome = mcp_pool.CancelToken(), {}

    def run():
        try:
            outcome["result"] = pool.call_tool(server, tool, arguments, on_progress=progress,
                                               cancel=cancel)
        except mcp_pool.McpError as e:
            outcome["error"] = e

    worker = threading.Thread(target=run)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        cancel.cancel()
        worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def run(argv):
    if not 3 <= len(argv) <= 5:
        print("usage: mcp_ctypes.py CONFIG.json SERVER [TOOL [ARGUMENTS_JSON]]", file=sys.stderr)
        return 2
    config, server = argv[1], argv[2]
    with mcp_pool.Pool.from_file(config, handler=Client()) as pool:
        if len(argv) == 3:
            for tool in pool.list_tools(server):
                print(f"{tool['name']}: {tool.get('description', '')}")
            return 0
        arguments = json.loads(argv[4]) if len(argv) > 4 else None
        try:
            result, status = call(pool, server, argv[3], arguments), 0
        except mcp_pool.ToolError as e:
            result, status = e.result, 1
        for item in result["content"]:
            print(item["text"] if item.get("type") == "text" else json.dumps(item))
        return status


def main():
    try:
        status = run(sys.argv)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:
        # The reader went away (`| head`): no traceback, and nothing more to flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 0
    except (mcp_pool.McpError, OSError, ValueError) as e:
        print(f"mcp_ctypes: {e}", file=sys.stderr)
        status = 1
    sys.exit(status)


if __name__ == "__main__":
    main()
