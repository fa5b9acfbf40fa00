"""A small MCP server on the Python `mcp` 2.3.0 SDK, for mcp-pool's interop tests.

Run over stdio (newline-delimited JSON-RPC):

    target/interop/venv/bin/python tests/interop/python_server.py

(.ci/install-reference-servers creates that venv.) The SDK serves both protocol
generations on one stdio process; the client's first request decides which one
(see tests/interop/NOTES.md).

Environment:
    MCP_POOL_PAGE_SIZE=N   page tools/list N tools at a time (nextCursor); unset = one page.
                           MCPServer itself never paginates, so this overrides its handler.
"""

import asyncio
import os

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, ListToolsResult, PaginatedRequestParams, ToolAnnotations

PAGE_SIZE = int(os.environ.get("MCP_POOL_PAGE_SIZE", "0"))


class PagedServer(MCPServer):
    """MCPServer whose tools/list is paginated when MCP_POOL_PAGE_SIZE is set.

    Overrides a private hook of MCPServer 2.3.0 (the handler it registers for tools/list).
    The cursor is the decimal index of the next tool: opaque to the client.
    """

    async def _handle_list_tools(self, ctx, params: PaginatedRequestParams | None) -> ListToolsResult:
        tools = await self.list_tools()
        if PAGE_SIZE <= 0:
            return ListToolsResult(tools=tools)
        cursor = params.cursor if params else None
        if cursor is not None and not cursor.isdigit():
            raise MCPError(INVALID_PARAMS, f"invalid cursor: {cursor!r}")
        start = int(cursor or 0)
        end = start + PAGE_SIZE
        return ListToolsResult(tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None)


mcp = PagedServer("mcp-pool-python-interop", version="0.1.0")


# A str return gives a text content block (plus structuredContent {"result": ...}
# and an outputSchema, as the SDK wraps primitive returns).
@mcp.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@mcp.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
def add(a: int, b: int) -> int:
    """Add two integers: structuredContent {"result": a+b} with an outputSchema."""
    return a + b


@mcp.tool()
async def slow(steps: int, ctx: Context) -> str:
    """Sleep 0.05 s per step, reporting progress (if the request has a progressToken)."""
    for i in range(1, steps + 1):
        await asyncio.sleep(0.05)
        await ctx.report_progress(i, steps, f"step {i}/{steps}")
    return f"done after {steps} steps"


@mcp.tool()
def fail() -> str:
    """Always raise: the result is {isError: true} with this text, not a JSON-RPC error."""
    # ToolError's text reaches the client. Any other exception gives the text
    # "Error executing tool fail" and a traceback on stderr.
    raise ToolError("this tool always fails")


@mcp.tool()
async def roots(ctx: Context) -> str:
    """Ask the client for roots/list (handshake generation only) and report the answer."""
    result = await ctx.session.list_roots()
    return ", ".join(str(r.uri) for r in result.roots) or "(no roots)"


@mcp.resource("interop://greeting", mime_type="text/plain")
def greeting() -> str:
    """A fixed text resource."""
    return "hello from the python interop server"


@mcp.prompt()
def greet(name: str) -> str:
    """A one-message prompt with one required argument."""
    return f"Say hello to {name}."


if __name__ == "__main__":
    mcp.run()  # stdio
