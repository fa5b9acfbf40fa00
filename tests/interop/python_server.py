"""A small MCP server on the Python `mcp` 2.3.0 SDK, for mcp-pool's interop tests.

Usage (.ci/install-reference-servers creates the venv):

    target/interop/venv/bin/python tests/interop/python_server.py [--extra] [--http PORT [--json]]

    (no flag)    stdio, newline-delimited JSON-RPC on stdin/stdout, logs on stderr. The SDK
                 serves both protocol generations on one process; the client's first request
                 decides which (see tests/interop/NOTES.md).
    --extra      also register the extra tools below (elicitation, sampling, roots through the
                 SDK's resolvers, a typed structured result, log messages, change
                 notifications), and declare the `logging` capability. Off by default so the
                 default tool list stays the five tools tests/interop.rs counts.
    --http PORT  serve Streamable HTTP instead of stdio, with the SDK's own server (uvicorn),
                 on http://127.0.0.1:PORT/mcp (loopback only; DNS-rebinding protection on).
                 Both generations: 2026-07-28 requests are self-contained POSTs (no session),
                 `initialize` starts a 2025-11-25 session (Mcp-Session-Id). PORT 0 picks a free
                 port. Once listening it prints one line on stdout:
                     listening http://127.0.0.1:PORT/mcp
                 and runs until SIGTERM/SIGINT (uvicorn shuts down gracefully) or, with
                 --exit-on-stdin-eof, until its stdin closes.
    --json       with --http: answer requests with application/json instead of an SSE stream
                 (then progress/log notifications of a call are not delivered).
    --exit-on-stdin-eof
                 with --http: exit when stdin reaches EOF (so a parent that dies takes the
                 server with it).

Environment:
    MCP_POOL_PAGE_SIZE=N   page tools/list N tools at a time (nextCursor); unset = one page.
                           MCPServer itself never paginates, so this overrides its handler.
    MCP_POOL_EXTRA=1       same as --extra.
    MCP_POOL_CACHE_TTL_MS=N  ttlMs hint (and cacheScope "public") on the cacheable results
                           (tools/list, prompts/list, resources/list, resources/read,
                           resources/templates/list, server/discover) in the 2026-07-28
                           generation; unset = the SDK default (ttlMs 0, cacheScope "private").

Tools, always:
    echo(text) -> text                 add(a:int, b:int) -> structuredContent {"result": a+b}
    slow(steps:int)  0.05 s per step, a progress notification per step (if progressToken)
    fail()           isError result "Error executing tool fail: this tool always fails"
    roots()          ctx.session.list_roots(): a server->client roots/list in the handshake
                     generation; a JSON-RPC error -32600 in 2026-07-28 (no back-channel)
Tools with --extra (each works in both generations: in the handshake generation the SDK sends
a server->client request mid-call; in 2026-07-28 it answers `resultType:"input_required"`
with `inputRequests`/`requestState` and the tool body runs on the client's retry):
    ask_name()           form elicitation {name: string, age?: integer} -> "hello NAME (AGE)" or
                         "declined" / "cancelled" (the tool sees the outcome, never an error)
    sample(prompt)       sampling/createMessage {messages:[user prompt], maxTokens:50}
                         -> "MODEL: TEXT"
    ask_roots()          roots/list -> the root URIs joined by ", " or "(no roots)"
    ask_all(prompt)      elicitation + sampling + roots in ONE round (three inputRequests; in
                         the handshake generation three server->client requests in a row)
    ask_twice()          two rounds: name first, then a yes/no confirmation that quotes it
                         (the second round's requestState carries the first answer)
    ask_url(url)         URL-mode elicitation: ctx.elicit_url in the handshake generation; a
                         hand-rolled InputRequiredResult (the tool body reads inputResponses /
                         requestState itself) in 2026-07-28 -> "url accept|decline|cancel";
                         2026-07-28 without elicitation.url declared: error -32021
    forecast(city)       typed return (a pydantic model): outputSchema is the model's schema and
                         structuredContent {city, temperature_c, conditions} (not wrapped)
    log_levels()         one notifications/message per level, debug..emergency (logger
                         "mcp-pool-interop"); 2026-07-28 delivers only levels >= the request's
                         _meta "io.modelcontextprotocol/logLevel" (none without it); handshake:
                         levels >= the last logging/setLevel (all before one) -> "sent N"
    chatty(steps:int)    per step: a progress notification and an info log message
    notify_changes()     tools/prompts/resources list_changed + resources/updated
                         interop://greeting: on subscriptions/listen streams (2026-07-28) and,
                         in the handshake generation, as plain notifications
    end_subscriptions()  ends every open subscriptions/listen stream gracefully (each gets its
                         final {resultType:"complete"} response)
Resource interop://greeting (text/plain); prompt greet(name).
"""

import asyncio
import os
import sys
import threading
import warnings
from typing import Annotated

from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    ListRoots,
    MCPServer,
    Resolve,
    Sample,
)
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import (
    INVALID_PARAMS,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestURLParams,
    ElicitResult,
    EmptyResult,
    InputRequiredResult,
    ListRootsResult,
    ListToolsResult,
    PaginatedRequestParams,
    SamplingMessage,
    SetLevelRequestParams,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel, Field

PAGE_SIZE = int(os.environ.get("MCP_POOL_PAGE_SIZE", "0"))
EXTRA = "--extra" in sys.argv[1:] or os.environ.get("MCP_POOL_EXTRA") == "1"
CACHE_TTL_MS = os.environ.get("MCP_POOL_CACHE_TTL_MS")
MODERN = "2026-07-28"
LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]


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


def _cache_hints():
    if CACHE_TTL_MS is None:
        return None
    from mcp.server.caching import CACHEABLE_METHODS, CacheHint

    hint = CacheHint(ttl_ms=int(CACHE_TTL_MS), scope="public")
    return {m: hint for m in CACHEABLE_METHODS}


mcp = PagedServer("mcp-pool-python-interop", version="0.1.0", cache_hints=_cache_hints())


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


# --------------------------------------------------------------------------- --extra tools
#
# Input from the client goes through the SDK's resolvers (mcp.server.mcpserver.resolve): a
# parameter annotated Annotated[T, Resolve(fn)] is filled by running fn before the tool body;
# fn returns a marker (Elicit / Sample / ListRoots) and the SDK asks the client in whatever
# way the request's protocol version requires. At 2026-07-28 the tool body does not run until
# every resolver has its answer; answers ride the (AES-GCM sealed) requestState across rounds.


class NameForm(BaseModel):
    name: str = Field(description="Your name")
    age: int | None = Field(default=None, description="Your age (optional)")


class Confirm(BaseModel):
    ok: bool = Field(description="Is that right?")


class Forecast(BaseModel):
    city: str
    temperature_c: float = Field(description="Temperature in degrees Celsius")
    conditions: str


def _name_question() -> Elicit[NameForm]:
    return Elicit("What is your name?", NameForm)


def _sample_question(prompt: str) -> Sample:
    return Sample([SamplingMessage(role="user", content=TextContent(type="text", text=prompt))], max_tokens=50)


def _roots_question() -> ListRoots:
    return ListRoots()


def _confirm_question(person: Annotated[NameForm, Resolve(_name_question)]) -> Elicit[Confirm]:
    # Depends on the first answer, so it is asked in a second round.
    return Elicit(f"Is your name really {person.name}?", Confirm)


def _outcome_text(outcome: ElicitationResult[NameForm]) -> str:
    if isinstance(outcome, AcceptedElicitation):
        p = outcome.data
        return f"hello {p.name}" + (f" ({p.age})" if p.age is not None else "")
    return outcome.action  # "decline" / "cancel"


def _sampled_text(result: CreateMessageResult) -> str:
    content = result.content
    text = getattr(content, "text", None) or str(content)
    return f"{result.model}: {text}"


def _roots_text(result: ListRootsResult) -> str:
    return ", ".join(str(r.uri) for r in result.roots) or "(no roots)"


# Handshake generation: logging/setLevel filters log_levels/chatty (one level per process).
_min_level = {"level": "debug"}


async def _log(ctx: Context, level: str, data) -> None:
    # At 2026-07-28 the SDK itself drops levels below the request's _meta logLevel.
    if ctx.protocol_version != MODERN and LEVELS.index(level) < LEVELS.index(_min_level["level"]):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await ctx.log(level, data, logger_name="mcp-pool-interop")


def register_extra(server: MCPServer) -> None:
    @server.tool()
    async def ask_name(person: Annotated[ElicitationResult[NameForm], Resolve(_name_question)]) -> str:
        """Form elicitation {name, age?}: "hello NAME (AGE)", or "decline" / "cancel"."""
        return _outcome_text(person)

    @server.tool()
    async def sample(prompt: str, answer: Annotated[CreateMessageResult, Resolve(_sample_question)]) -> str:
        """Ask the client's LLM (sampling/createMessage): "MODEL: TEXT"."""
        return _sampled_text(answer)

    @server.tool()
    async def ask_roots(result: Annotated[ListRootsResult, Resolve(_roots_question)]) -> str:
        """Ask the client for its roots (roots/list): the URIs joined by ", "."""
        return _roots_text(result)

    @server.tool()
    async def ask_all(
        prompt: str,
        person: Annotated[ElicitationResult[NameForm], Resolve(_name_question)],
        answer: Annotated[CreateMessageResult, Resolve(_sample_question)],
        result: Annotated[ListRootsResult, Resolve(_roots_question)],
    ) -> str:
        """Elicitation, sampling and roots in one round: "NAME | MODEL: TEXT | ROOTS"."""
        return " | ".join([_outcome_text(person), _sampled_text(answer), _roots_text(result)])

    @server.tool()
    async def ask_twice(
        person: Annotated[NameForm, Resolve(_name_question)],
        confirm: Annotated[Confirm, Resolve(_confirm_question)],
    ) -> str:
        """Two rounds: a name, then a confirmation quoting it. Decline/cancel => isError."""
        return f"{person.name}: {'confirmed' if confirm.ok else 'not confirmed'}"

    @server.tool()
    async def ask_url(url: str, ctx: Context) -> str | InputRequiredResult:
        """URL-mode elicitation of `url`: "url accept" / "url decline" / "url cancel"."""
        if ctx.protocol_version != MODERN:
            outcome = await ctx.elicit_url("Please open this URL.", url, elicitation_id="interop-url-1")
            return f"url {outcome.action}"
        # Hand-rolled multi-round trip: the body sees input_responses / request_state itself
        # (the SDK still seals requestState on the way out and verifies it on the way in).
        caps = ctx.client_capabilities
        if caps is None or caps.elicitation is None or caps.elicitation.url is None:
            raise MCPError(
                MISSING_REQUIRED_CLIENT_CAPABILITY,
                "Client did not declare the url elicitation capability required by ask_url",
                data={"requiredCapabilities": {"elicitation": {"url": {}}}},
            )
        answer = (ctx.input_responses or {}).get("open_url")
        if ctx.request_state == "asked-url" and isinstance(answer, ElicitResult):
            return f"url {answer.action}"
        return InputRequiredResult(
            input_requests={
                "open_url": ElicitRequest(params=ElicitRequestURLParams(message="Please open this URL.", url=url))
            },
            request_state="asked-url",
        )

    @server.tool(annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True))
    def forecast(city: str) -> Forecast:
        """A typed (pydantic model) result: structuredContent {city, temperature_c, conditions}."""
        return Forecast(city=city, temperature_c=21.5, conditions="sunny")

    @server.tool()
    async def log_levels(ctx: Context) -> str:
        """One notifications/message per level, debug..emergency (logger "mcp-pool-interop")."""
        for level in LEVELS:
            await _log(ctx, level, f"{level} message")
        return f"sent {len(LEVELS)}"

    @server.tool()
    async def chatty(steps: int, ctx: Context) -> str:
        """Per step: a progress notification and an info log message {step, of}."""
        for i in range(1, steps + 1):
            await asyncio.sleep(0.02)
            await ctx.report_progress(i, steps, f"step {i}/{steps}")
            await _log(ctx, "info", {"step": i, "of": steps})
        return f"chatted {steps} steps"

    @server.tool()
    async def notify_changes(ctx: Context) -> str:
        """tools/prompts/resources list_changed and resources/updated interop://greeting."""
        await ctx.notify_tools_changed()
        await ctx.notify_prompts_changed()
        await ctx.notify_resources_changed()
        await ctx.notify_resource_updated("interop://greeting")
        if ctx.protocol_version != MODERN:
            await ctx.session.send_tool_list_changed()
            await ctx.session.send_prompt_list_changed()
            await ctx.session.send_resource_list_changed()
            await ctx.session.send_resource_updated("interop://greeting")
        return "notified"

    @server.tool()
    async def end_subscriptions() -> str:
        """End every open subscriptions/listen stream gracefully."""
        entry = server._lowlevel_server.get_request_handler("subscriptions/listen")
        entry.handler.close()  # ListenHandler.close (private wiring of MCPServer 2.3.0)
        return "closed"

    # Registering a logging/setLevel handler makes the SDK declare `logging: {}` (both
    # generations; the method itself is only served in the handshake generation).
    async def set_level(ctx, params: SetLevelRequestParams) -> EmptyResult:
        _min_level["level"] = params.level
        return EmptyResult()

    server._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)


if EXTRA:
    register_extra(mcp)


# --------------------------------------------------------------------------- HTTP


def _arg(name: str) -> str | None:
    argv = sys.argv[1:]
    if name in argv:
        i = argv.index(name)
        if i + 1 >= len(argv):
            sys.exit(f"{name} needs a value")
        return argv[i + 1]
    return None


def serve_http(port: int, json_response: bool, exit_on_eof: bool) -> None:
    import anyio
    import uvicorn

    app = mcp.streamable_http_app(json_response=json_response, host="127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))

    async def announce() -> None:
        while not server.started:
            await anyio.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()[1]
        print(f"listening http://127.0.0.1:{bound}/mcp", flush=True)

    if exit_on_eof:

        def watch_stdin() -> None:
            sys.stdin.buffer.read()
            server.should_exit = True

        threading.Thread(target=watch_stdin, daemon=True).start()

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(announce)
            await server.serve()
            tg.cancel_scope.cancel()

    anyio.run(main)


if __name__ == "__main__":
    http_port = _arg("--http")
    if http_port is not None:
        serve_http(int(http_port), "--json" in sys.argv[1:], "--exit-on-stdin-eof" in sys.argv[1:])
    else:
        mcp.run()  # stdio
