#!/usr/bin/env python3
"""Probe a reference MCP server by hand over raw stdio JSON-RPC and print transcripts.

    python3 tests/interop/probe.py everything|python [SCENARIO ...] [--full]

Needs only the standard library; the servers come from .ci/install-reference-servers
(target/interop/). With no SCENARIO every scenario for that server runs, each on a
fresh process (except the slow `shutdown_after_task`, run only when named); `--list`
names them. `--full` prints messages without trimming.

Without --full, a request's `_meta` that carries the standard envelope is printed as
`{"…envelope": "MENV"}` (MENV: clientCapabilities elicitation {form, url}, sampling, roots)
or `"ENVELOPE"` (clientCapabilities {}), followed by any other `_meta` keys.

Transcript lines:  `+123ms → {...}` client to server, `← {...}` server to client,
`stderr| ...` the server's stderr, `-- ...` a remark. Every read has a timeout and
every process is killed at the end of its scenario, so a probe never hangs.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INTEROP = ROOT / "target" / "interop"
COMMANDS = {
    "everything": [
        "node",
        str(INTEROP / "npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
        "stdio",
    ],
    "python": [str(INTEROP / "venv/bin/python"), str(ROOT / "tests/interop/python_server.py")],
}

MODERN = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "probe", "version": "0"},
}
CLIENT_CAPS = {"roots": {"listChanged": True}, "sampling": {}, "elicitation": {}}
# The capabilities the brief's 2026-07-28 scenarios declare (and the handshake ones, FULL_CAPS).
FULL_CAPS = {"elicitation": {"form": {}, "url": {}}, "sampling": {}, "roots": {}}
MENV = {**ENVELOPE, "io.modelcontextprotocol/clientCapabilities": FULL_CAPS}
SAMPLED = {"role": "assistant", "content": {"type": "text", "text": "sampled by probe"},
           "model": "probe-model", "stopReason": "endTurn"}
ROOTS = [{"uri": "file:///tmp/probe", "name": "probe-root"}]
FULL = False


# --------------------------------------------------------------------------- output


def elicit_answer(params):
    """What the probe's user 'types' into an elicitation."""
    params = params or {}
    if params.get("mode") == "url":
        return {"action": "accept"}
    props = (params.get("requestedSchema") or {}).get("properties") or {}
    if "ok" in props:
        return {"action": "accept", "content": {"ok": True}}
    if "interpretation" in props:  # server-everything's simulate-research-query
        return {"action": "accept", "content": {"interpretation": "technical"}}
    if "name" in props and "age" in props:
        return {"action": "accept", "content": {"name": "Ada", "age": 36}}
    return {"action": "decline"}


def _short_envelope(meta):
    """Print a request's standard 2026-07-28 envelope as one marker key (MENV or ENVELOPE)."""
    for name, env in (("MENV", MENV), ("ENVELOPE", ENVELOPE)):
        if all(meta.get(k) == v for k, v in env.items()):
            rest = {k: v for k, v in meta.items() if k not in env}
            return {"…envelope": name, **rest}
    return meta


def trim(value, depth=0):
    """Shorten big payloads for printing: long strings, long tool lists, base64 blobs."""
    if FULL:
        return value
    if isinstance(value, str):
        return value if len(value) <= 160 else value[:120] + f"…[{len(value)} chars]"
    if isinstance(value, list):
        return [trim(v, depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "tools" and isinstance(v, list) and len(v) > 2:
                # first tool in full, the rest by name and annotations
                out[k] = [trim(v[0], depth + 1)] + [
                    {"name": t.get("name"), "annotations": t.get("annotations"), "…": "trimmed"} for t in v[1:]
                ]
            elif k in ("inputSchema", "outputSchema") and depth > 3:
                out[k] = "…"
            elif k == "_meta" and isinstance(v, dict):
                out[k] = trim(_short_envelope(v), depth + 1)
            else:
                out[k] = trim(v, depth + 1)
        return out
    return value


class Transcript:
    def __init__(self):
        self.t0 = time.monotonic()
        self.lock = threading.Lock()

    def ms(self):
        return int((time.monotonic() - self.t0) * 1000)

    def line(self, tag, text):
        with self.lock:
            print(f"+{self.ms():>5}ms {tag} {text}", flush=True)

    def msg(self, arrow, obj):
        self.line(arrow, json.dumps(trim(obj), ensure_ascii=False))

    def note(self, text):
        self.line("--", text)


# --------------------------------------------------------------------------- a server process


class Server:
    """One child process; stdout lines parsed into a queue, stderr echoed to the transcript."""

    def __init__(self, kind, tr: Transcript, env=None):
        self.kind, self.tr, self.env = kind, tr, env
        self.others: list[Server] = []
        self.next_id = 1
        self.t_spawn = time.monotonic()
        self.proc = subprocess.Popen(
            COMMANDS[kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        self.inbox: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        # reply to server->client requests: method -> function(params) -> ("result"|"error", value)
        self.handlers = {
            "roots/list": lambda p: ("result", {"roots": ROOTS}),
            "ping": lambda p: ("result", {}),
            "elicitation/create": lambda p: ("result", elicit_answer(p)),
            "sampling/createMessage": lambda p: ("result", SAMPLED),
        }

    def _read_stdout(self):
        for raw in self.proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                self.tr.line("!!", f"non-JSON on stdout: {raw!r}")
                continue
            self.tr.msg("←", msg)
            self.inbox.put(msg)
        self.inbox.put(None)  # EOF

    def _read_stderr(self):
        for raw in self.proc.stderr:
            self.tr.line("stderr|", raw.decode(errors="replace").rstrip())

    # -- sending

    def send(self, msg):
        self.tr.msg("→", msg)
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, method, params=None, meta=None):
        """Send a request; return its id. `meta` is merged into params._meta."""
        rid = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None or meta:
            params = dict(params or {})
            if meta:
                params["_meta"] = {**params.get("_meta", {}), **meta}
            msg["params"] = params
        self.send(msg)
        return rid

    def notify(self, method, params=None):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    # -- receiving

    def _handle(self, msg):
        """Answer a server->client request with the configured handler."""
        if "method" in msg and "id" in msg:
            h = self.handlers.get(msg["method"])
            if h is None:
                kind, val = "error", {"code": -32601, "message": "Method not found"}
            else:
                kind, val = h(msg.get("params"))
            self.send({"jsonrpc": "2.0", "id": msg["id"], kind: val})

    def wait_response(self, rid, timeout=5.0):
        """Messages until the response to `rid` (answering server requests); None on timeout/EOF."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.tr.note(f"no response to id {rid} within {timeout}s")
                return None
            try:
                msg = self.inbox.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                self.tr.note("stdout closed")
                return None
            self._handle(msg)
            if msg.get("id") == rid and "method" not in msg:
                return msg

    def call(self, method, params=None, meta=None, timeout=5.0):
        return self.wait_response(self.request(method, params, meta), timeout)

    def answer_inputs(self, input_requests):
        """inputResponses for an inputRequests map, from the same handlers as server requests."""
        out = {}
        for key, req in input_requests.items():
            h = self.handlers.get(req.get("method"))
            kind, val = h(req.get("params")) if h else ("error", None)
            if kind == "result":
                out[key] = val
        return out

    def mrtr(self, method, params, meta, rounds=4, timeout=5.0):
        """A 2026-07-28 multi-round-trip request: retry (new id) while the result is
        input_required, echoing requestState and answering every inputRequests entry."""
        r = self.call(method, params, meta=meta, timeout=timeout)
        for _ in range(rounds):
            res = (r or {}).get("result") or {}
            if res.get("resultType") != "input_required":
                return r
            retry = dict(params)
            if "inputRequests" in res:
                retry["inputResponses"] = self.answer_inputs(res["inputRequests"])
            if "requestState" in res:
                retry["requestState"] = res["requestState"]
            r = self.call(method, retry, meta=meta, timeout=timeout)
        return r

    def drain(self, seconds):
        """Collect (and answer) everything arriving for `seconds`."""
        deadline = time.monotonic() + seconds
        got = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self.inbox.get(timeout=left)
            except queue.Empty:
                break
            if msg is None:
                break
            self._handle(msg)
            got.append(msg)
        return got

    def handshake(self, version="2025-11-25", caps=None, settle=0.0):
        t = time.monotonic()
        r = self.call(
            "initialize",
            {"protocolVersion": version, "capabilities": CLIENT_CAPS if caps is None else caps,
             "clientInfo": {"name": "probe", "version": "0"}},
            timeout=15,
        )
        self.tr.note(f"initialize answered {int((time.monotonic() - t) * 1000)} ms after sending, "
                     f"{int((time.monotonic() - self.t_spawn) * 1000)} ms after spawn")
        self.notify("notifications/initialized")
        if settle:
            self.drain(settle)
        return r

    def close(self, timeout=5.0):
        """Close stdin and time the exit; SIGTERM/SIGKILL if it lingers."""
        t = time.monotonic()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
            self.tr.note(f"exited {int((time.monotonic() - t) * 1000)} ms after stdin closed, code {self.proc.returncode}")
        except subprocess.TimeoutExpired:
            self.tr.note(f"still running {timeout}s after stdin closed: SIGTERM")
            self.proc.terminate()
            try:
                self.proc.wait(3)
                self.tr.note(f"exited after SIGTERM, code {self.proc.returncode}")
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.tr.note("SIGKILLed")
        time.sleep(0.1)  # let the stderr reader flush

    def fresh(self):
        """Another process of the same server, on the same transcript (killed with this one)."""
        self.tr.note("spawning a fresh process")
        other = Server(self.kind, self.tr, self.env)
        self.others.append(other)
        return other

    def kill(self):
        for other in self.others:
            other.kill()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------- scenarios

SCENARIOS: dict[str, dict[str, callable]] = {"everything": {}, "python": {}}


def scenario(*kinds):
    def deco(fn):
        for k in kinds:
            SCENARIOS[k][fn.__name__] = fn
        return fn
    return deco


@scenario("everything", "python")
def discover_bare(s: Server):
    """server/discover without the _meta envelope, then initialize on the same process."""
    s.call("server/discover", {}, timeout=10)
    s.handshake()
    s.call("tools/list", {})
    s.call("ping")
    s.drain(0.6)  # let server-everything's roots/list (~350 ms after initialized) be answered


@scenario("everything", "python")
def discover_envelope(s: Server):
    """server/discover with the envelope; then initialize, a bare request, ping, discover again."""
    s.call("server/discover", {}, meta=ENVELOPE, timeout=10)
    s.call("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                          "clientInfo": {"name": "probe", "version": "0"}})
    s.call("tools/list", {})  # no envelope
    s.call("ping")
    s.call("ping", meta=ENVELOPE)
    s.call("server/discover", {}, meta=ENVELOPE)


@scenario("python")
def modern_calls(s: Server):
    """Per-request generation: tools after discover, each request with the envelope."""
    s.call("server/discover", {}, meta=ENVELOPE, timeout=10)
    s.call("tools/list", {}, meta=ENVELOPE)
    s.call("tools/call", {"name": "echo", "arguments": {"text": "hi"}}, meta=ENVELOPE)
    s.call("tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}}, meta=ENVELOPE)
    s.call("tools/call", {"name": "fail", "arguments": {}}, meta=ENVELOPE)
    s.call("tools/call", {"name": "nope", "arguments": {}}, meta=ENVELOPE)
    s.call("tools/call", {"name": "slow", "arguments": {"steps": 3}}, meta={**ENVELOPE, "progressToken": "p1"})
    s.call("tools/call", {"name": "roots", "arguments": {}}, meta=ENVELOPE)
    s.call("tools/call", {"name": "echo", "arguments": {"text": "hi"}},
           meta={k: v for k, v in ENVELOPE.items() if "clientInfo" not in k})  # no clientInfo
    s.call("tools/call", {"name": "echo", "arguments": {"text": "hi"}},
           meta={**ENVELOPE, "io.modelcontextprotocol/protocolVersion": "2099-01-01"})  # unknown version
    s.call("tools/call", {"name": "echo", "arguments": {"text": "hi"}})  # no envelope
    s.call("resources/list", {}, meta=ENVELOPE)
    s.call("prompts/get", {"name": "greet", "arguments": {"name": "Ada"}}, meta=ENVELOPE)
    # cancel in the per-request generation
    rid = s.request("tools/call", {"name": "slow", "arguments": {"steps": 40}}, meta={**ENVELOPE, "progressToken": "p2"})
    s.drain(0.3)
    s.notify("notifications/cancelled", {"requestId": rid, "reason": "probe"})
    s.drain(2.5)
    s.call("server/discover", {}, meta=ENVELOPE)


@scenario("everything", "python")
def handshake(s: Server):
    """initialize offering 2025-11-25 with roots/sampling/elicitation; what follows initialized."""
    s.handshake()
    s.drain(1.5)
    r = s.call("tools/list", {})
    cursor = (r or {}).get("result", {}).get("nextCursor")
    while cursor:
        r = s.call("tools/list", {"cursor": cursor})
        cursor = (r or {}).get("result", {}).get("nextCursor")
    s.call("resources/list", {})
    s.call("prompts/list", {})
    s.call("ping")


@scenario("everything")
def tools_everything(s: Server):
    s.handshake(settle=1.0)
    s.call("tools/call", {"name": "echo", "arguments": {"message": "hi"}})
    s.call("tools/call", {"name": "nope", "arguments": {}})
    s.call("tools/call", {"name": "echo", "arguments": {}})  # missing argument
    s.call("tools/call", {"name": "get-structured-content", "arguments": {"location": "Chicago"}})
    s.call("tools/call", {"name": "get-sum", "arguments": {"a": 2, "b": 3}})
    s.call("tools/call", {"name": "get-annotated-message", "arguments": {"messageType": "error", "includeImage": False}})
    s.call("tools/call", {"name": "trigger-long-running-operation", "arguments": {"duration": 1, "steps": 4}},
           meta={"progressToken": "tok-1"})
    s.call("tools/call", {"name": "toggle-simulated-logging", "arguments": {}})
    s.drain(0.5)
    s.call("tools/call", {"name": "toggle-simulated-logging", "arguments": {}})
    s.call("logging/setLevel", {"level": "error"})
    s.call("ping")


@scenario("python")
def tools_python(s: Server):
    s.handshake(settle=0.5)
    s.call("tools/call", {"name": "echo", "arguments": {"text": "hi"}})
    s.call("tools/call", {"name": "nope", "arguments": {}})
    s.call("tools/call", {"name": "echo", "arguments": {}})  # missing argument
    s.call("tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}})
    s.call("tools/call", {"name": "fail", "arguments": {}})
    s.call("tools/call", {"name": "slow", "arguments": {"steps": 3}}, meta={"progressToken": "tok-1"})
    s.call("resources/read", {"uri": "interop://greeting"})
    s.call("prompts/get", {"name": "greet", "arguments": {"name": "Ada"}})
    s.call("tools/list", {}, meta=ENVELOPE)  # envelope on a handshake connection
    s.call("ping")


@scenario("everything")
def roots_midcall(s: Server):
    """get-roots-list straight after initialized (before the server's own 350 ms roots sync)."""
    s.handshake()
    s.call("tools/call", {"name": "get-roots-list", "arguments": {}})
    s.drain(1.0)
    s.notify("notifications/roots/list_changed")
    s.drain(1.0)


@scenario("everything")
def roots_refused(s: Server):
    """The client answers roots/list with -32601."""
    s.handlers["roots/list"] = lambda p: ("error", {"code": -32601, "message": "Method not found"})
    s.handshake()
    s.call("tools/call", {"name": "get-roots-list", "arguments": {}})
    s.drain(1.0)
    s.call("tools/call", {"name": "echo", "arguments": {"message": "still alive"}})


@scenario("python")
def roots_python(s: Server):
    """The python `roots` tool asks the client for roots/list mid-call; then refused with -32601."""
    s.handshake(settle=0.3)
    s.call("tools/call", {"name": "roots", "arguments": {}})
    s.handlers["roots/list"] = lambda p: ("error", {"code": -32601, "message": "Method not found"})
    s.call("tools/call", {"name": "roots", "arguments": {}})


@scenario("everything")
def cancel_everything(s: Server):
    s.handshake(settle=1.0)
    rid = s.request("tools/call", {"name": "trigger-long-running-operation", "arguments": {"duration": 3, "steps": 6}},
                    meta={"progressToken": "tok-c"})
    s.drain(1.2)
    s.notify("notifications/cancelled", {"requestId": rid, "reason": "probe"})
    s.drain(3.0)
    s.call("ping")


@scenario("python")
def cancel_python(s: Server):
    s.handshake(settle=0.3)
    rid = s.request("tools/call", {"name": "slow", "arguments": {"steps": 40}}, meta={"progressToken": "tok-c"})
    s.drain(0.3)
    s.notify("notifications/cancelled", {"requestId": rid, "reason": "probe"})
    s.drain(2.5)
    s.call("ping")


@scenario("python")
def paging_python(s: Server):
    """tools/list with MCP_POOL_PAGE_SIZE=2."""
    s.handshake(settle=0.3)
    r = s.call("tools/list", {})
    while (cursor := (r or {}).get("result", {}).get("nextCursor")):
        r = s.call("tools/list", {"cursor": cursor})
    s.call("tools/list", {"cursor": "bogus"})


ENV = {"paging_python": {"MCP_POOL_PAGE_SIZE": "2"}}


@scenario("everything")
def server_requests(s: Server):
    """sampling/createMessage answered with -32601; elicitation/create answered with decline."""
    s.handlers["sampling/createMessage"] = lambda p: ("error", {"code": -32601, "message": "Method not found"})
    s.handlers["elicitation/create"] = lambda p: ("result", {"action": "decline"})
    s.handshake(settle=1.0)
    s.call("tools/call", {"name": "trigger-sampling-request", "arguments": {"prompt": "hi"}})
    s.call("tools/call", {"name": "trigger-elicitation-request", "arguments": {}})


@scenario("everything", "python")
def versions(s: Server):
    """initialize offering an unknown version, then 2025-06-18 and 2024-11-05 (fresh processes)."""
    s.handshake(version="2099-01-01", caps={})
    for v in ("2025-06-18", "2024-11-05"):
        s.fresh().handshake(version=v, caps={})


@scenario("everything", "python")
def startup_shutdown(s: Server):
    """Spawn to initialize response and exit time after stdin close, 3 times (idle server)."""
    for i in range(3):
        srv = s.fresh() if i else s
        srv.handshake(caps={})
        srv.drain(0.5)
        srv.close()


@scenario("everything")
def shutdown_busy(s: Server):
    """Close stdin with simulated logging on (an interval timer): does the process exit?"""
    s.handshake(caps={}, settle=0.5)
    s.call("tools/call", {"name": "toggle-simulated-logging", "arguments": {}})
    s.close(timeout=8)


@scenario("everything", "python")
def shutdown_inflight(s: Server):
    """Close stdin while a 5 s tool call is in flight: is the call finished, answered, abandoned?"""
    s.handshake(caps={}, settle=0.5)
    if s.kind == "python":
        call = {"name": "slow", "arguments": {"steps": 100}}
    else:
        call = {"name": "trigger-long-running-operation", "arguments": {"duration": 5, "steps": 5}}
    s.request("tools/call", call, meta={"progressToken": "t"})
    s.drain(0.2)
    s.close(timeout=8)


@scenario("everything")
def shutdown_pending(s: Server):
    """Close stdin right after initialized, before the server's roots/list (sent ~350 ms later) can be answered."""
    s.handshake()
    s.close(timeout=70)


# --------------------------------------------------------------------------- python --extra

EXTRA_ENV = {"MCP_POOL_EXTRA": "1"}


def _call(name, arguments=None, **extra):
    return {"name": name, "arguments": arguments or {}, **extra}


@scenario("python")
def mrtr_python(s: Server):
    """2026-07-28 multi-round trip (--extra): input_required, the retry, bad/missing requestState."""
    s.call("server/discover", {}, meta=MENV, timeout=10)
    # 1. ask_name: round 1, then the retry with a new id
    r = s.call("tools/call", _call("ask_name"), meta=MENV)
    res = r["result"]
    state, reqs = res["requestState"], res["inputRequests"]
    key = next(iter(reqs))
    good = {key: {"action": "accept", "content": {"name": "Ada", "age": 36}}}
    s.call("tools/call", _call("ask_name", inputResponses=good, requestState=state), meta=MENV)
    # the same retry again (replay of one requestState)
    s.call("tools/call", _call("ask_name", inputResponses=good, requestState=state), meta=MENV)
    # 2. a tampered requestState
    bad = state[:-4] + ("AAAA" if not state.endswith("AAAA") else "BBBB")
    s.call("tools/call", _call("ask_name", inputResponses=good, requestState=bad), meta=MENV)
    s.call("tools/call", _call("ask_name", inputResponses=good, requestState="garbage"), meta=MENV)
    # 3. inputResponses without requestState
    s.call("tools/call", _call("ask_name", inputResponses=good), meta=MENV)
    # 4. requestState without inputResponses
    s.call("tools/call", _call("ask_name", requestState=state), meta=MENV)
    # 5. requestState from ask_name presented to another tool / other arguments
    s.call("tools/call", _call("ask_roots", inputResponses={key: {"roots": ROOTS}}, requestState=state), meta=MENV)
    r = s.call("tools/call", _call("sample", {"prompt": "one"}), meta=MENV)
    st = r["result"]["requestState"]
    k = next(iter(r["result"]["inputRequests"]))
    s.call("tools/call", _call("sample", {"prompt": "two"}, inputResponses={k: SAMPLED}, requestState=st), meta=MENV)
    s.call("tools/call", _call("sample", {"prompt": "one"}, inputResponses={k: SAMPLED}, requestState=st), meta=MENV)
    # 6. a wrong-kind answer, an answer under an unknown key, decline
    s.call("tools/call", _call("ask_name", inputResponses={key: {"roots": ROOTS}}, requestState=state), meta=MENV)
    s.call("tools/call", _call("ask_name", inputResponses={"nope": good[key]}, requestState=state), meta=MENV)
    s.call("tools/call", _call("ask_name", inputResponses={key: {"action": "decline"}}, requestState=state), meta=MENV)
    s.call("tools/call", _call("ask_name", inputResponses={key: {"action": "accept", "content": {"age": 3}}},
                               requestState=state), meta=MENV)
    # 7. requestState on a tool without resolvers, and on tools/list
    s.call("tools/call", _call("echo", {"text": "x"}, requestState="garbage"), meta=MENV)
    s.call("tools/list", {"requestState": "garbage"}, meta=MENV)


@scenario("python")
def mrtr_more_python(s: Server):
    """2026-07-28 (--extra): sampling, roots, three requests in one round, two rounds, URL mode, no capability."""
    s.call("server/discover", {}, meta=MENV, timeout=10)
    s.mrtr("tools/call", _call("sample", {"prompt": "Capital of France?"}), MENV)
    s.mrtr("tools/call", _call("ask_roots"), MENV)
    s.mrtr("tools/call", _call("ask_all", {"prompt": "hi"}), MENV)
    s.mrtr("tools/call", _call("ask_twice"), MENV)
    s.mrtr("tools/call", _call("ask_url", {"url": "https://example.com/login"}), MENV)
    # a hand-rolled tool sees whatever comes back: a retry without requestState starts over
    s.call("tools/call", _call("ask_url", {"url": "https://example.com/login"},
                               inputResponses={"open_url": {"action": "accept"}}), meta=MENV)
    # client capabilities without elicitation / sampling / roots
    s.call("tools/call", _call("ask_name"), meta=ENVELOPE)
    s.call("tools/call", _call("sample", {"prompt": "x"}), meta=ENVELOPE)
    s.call("tools/call", _call("ask_roots"), meta=ENVELOPE)
    # the old API in this generation (ctx.session.list_roots / ctx.elicit): no back-channel
    s.call("tools/call", _call("roots"), meta=MENV)


@scenario("python")
def structured_python(s: Server):
    """Typed structured output (forecast) and the wrapped primitive (add), both generations (--extra)."""
    s.call("server/discover", {}, meta=MENV, timeout=10)
    r = s.call("tools/list", {}, meta=MENV)
    for t in (r or {}).get("result", {}).get("tools", []):
        if t["name"] in ("forecast", "add"):
            s.tr.note("tool " + json.dumps(t))
    s.call("tools/call", _call("forecast", {"city": "Paris"}), meta=MENV)
    s.call("tools/call", _call("forecast", {}), meta=MENV)
    o = s.fresh()
    o.handshake(caps=FULL_CAPS)
    o.call("tools/call", _call("forecast", {"city": "Paris"}))


@scenario("python")
def logs_python(s: Server):
    """Log messages and progress, 2026-07-28 (--extra): without/with io.modelcontextprotocol/logLevel."""
    r = s.call("server/discover", {}, meta=MENV, timeout=10)
    s.call("tools/call", _call("log_levels"), meta=MENV)
    s.call("tools/call", _call("log_levels"), meta={**MENV, "io.modelcontextprotocol/logLevel": "warning"})
    s.call("tools/call", _call("log_levels"), meta={**MENV, "io.modelcontextprotocol/logLevel": "bogus"})
    s.call("tools/call", _call("chatty", {"steps": 2}),
           meta={**MENV, "io.modelcontextprotocol/logLevel": "info", "progressToken": 7})
    s.call("tools/call", _call("chatty", {"steps": 2}), meta={**MENV, "progressToken": "p"})
    s.call("logging/setLevel", {"level": "info"}, meta=MENV)


@scenario("python")
def handshake_extra_python(s: Server):
    """Handshake generation (--extra): the same tools as server-to-client requests; setLevel; logs."""
    s.handshake(caps=FULL_CAPS, settle=0.3)
    s.call("tools/call", _call("ask_name"))
    s.call("tools/call", _call("sample", {"prompt": "Capital of France?"}))
    s.call("tools/call", _call("ask_roots"))
    s.call("tools/call", _call("ask_all", {"prompt": "hi"}))
    s.call("tools/call", _call("ask_twice"))
    s.call("tools/call", _call("ask_url", {"url": "https://example.com/login"}))
    s.handlers["elicitation/create"] = lambda p: ("result", {"action": "decline"})
    s.call("tools/call", _call("ask_name"))
    s.call("tools/call", _call("ask_twice"))
    s.handlers["sampling/createMessage"] = lambda p: ("error", {"code": -32601, "message": "Method not found"})
    s.call("tools/call", _call("sample", {"prompt": "x"}))
    s.call("tools/call", _call("log_levels"))
    s.call("logging/setLevel", {"level": "error"})
    s.call("tools/call", _call("log_levels"))
    s.call("tools/call", _call("chatty", {"steps": 2}), meta={"progressToken": "c"})
    s.call("tools/call", _call("notify_changes"))
    s.call("subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    o = s.fresh()
    o.handshake(caps={}, settle=0.2)  # no client capabilities at all
    o.call("tools/call", _call("ask_name"))
    o.call("tools/call", _call("ask_roots"))


@scenario("python")
def subscriptions_python(s: Server):
    """subscriptions/listen (--extra): ack, notifications, cancel; a second one ended by the server."""
    s.call("server/discover", {}, meta=MENV, timeout=10)
    lid = s.request("subscriptions/listen", {"notifications": {
        "toolsListChanged": True, "resourceSubscriptions": ["interop://greeting"], "promptsListChanged": False}},
        meta=MENV)
    s.drain(0.3)
    s.call("tools/call", _call("notify_changes"), meta=MENV)
    s.drain(0.3)
    s.notify("notifications/cancelled", {"requestId": lid, "reason": "probe done"})
    s.drain(0.3)
    s.call("tools/call", _call("notify_changes"), meta=MENV)  # nothing may arrive for lid now
    lid2 = s.request("subscriptions/listen", {"notifications": {"resourcesListChanged": True}}, meta=MENV)
    s.drain(0.3)
    s.call("tools/call", _call("end_subscriptions"), meta=MENV)
    s.drain(0.5)
    s.request("subscriptions/listen", {"notifications": {}}, meta=MENV)
    s.drain(0.3)
    s.request("subscriptions/listen", {}, meta=MENV)
    s.drain(0.3)
    s.request("subscriptions/listen", {"notifications": {"toolsListChanged": True}}, meta=MENV)
    s.drain(0.3)
    s.tr.note("closing stdin with a listen stream open")


@scenario("python")
def cache_python(s: Server):
    """ttlMs/cacheScope with MCP_POOL_CACHE_TTL_MS=60000 (--extra), then the defaults on a fresh process."""
    s.call("server/discover", {}, meta=MENV, timeout=10)
    s.call("tools/list", {}, meta=MENV)
    s.call("resources/read", {"uri": "interop://greeting"}, meta=MENV)
    s.call("resources/templates/list", {}, meta=MENV)
    s.call("prompts/get", {"name": "greet", "arguments": {"name": "Ada"}}, meta=MENV)
    s.env = EXTRA_ENV  # the fresh process without MCP_POOL_CACHE_TTL_MS
    o = s.fresh()
    o.call("server/discover", {}, meta=MENV, timeout=10)
    o.call("resources/read", {"uri": "interop://greeting"}, meta=MENV)
    o.call("resources/list", {}, meta=MENV)
    o.call("tools/call", _call("echo", {"text": "x"}), meta=MENV)


ENV.update({
    "mrtr_python": EXTRA_ENV, "mrtr_more_python": EXTRA_ENV, "structured_python": EXTRA_ENV,
    "logs_python": EXTRA_ENV, "handshake_extra_python": EXTRA_ENV, "subscriptions_python": EXTRA_ENV,
    "cache_python": {**EXTRA_ENV, "MCP_POOL_CACHE_TTL_MS": "60000"},
})


# --------------------------------------------------------------------------- everything: tasks, URL


def _task_tool(s, name="simulate-research-query"):
    r = s.call("tools/list", {})
    for t in (r or {}).get("result", {}).get("tools", []):
        if t["name"] == name:
            s.tr.note("tool " + json.dumps(t))


@scenario("everything")
def tasks_everything(s: Server):
    """2025-11-25 tasks: task-augmented tools/call, tasks/get, notifications/tasks/status, tasks/result, tasks/list."""
    s.handshake(caps=FULL_CAPS, settle=1.0)
    _task_tool(s)
    r = s.call("tools/call", _call("simulate-research-query", {"topic": "rust"}, task={"ttl": 60000}))
    tid = r["result"]["task"]["taskId"]
    s.call("tasks/get", {"taskId": tid})
    s.drain(1.2)
    s.call("tasks/get", {"taskId": tid})
    s.call("tasks/list", {})
    s.call("tasks/result", {"taskId": tid}, timeout=10)  # blocks until the task is terminal
    s.call("tasks/get", {"taskId": tid})
    s.call("tasks/result", {"taskId": tid})
    s.call("tasks/get", {"taskId": "no-such-task"})
    s.call("tasks/result", {"taskId": "no-such-task"})
    # task augmentation on a taskSupport:"forbidden" tool
    s.call("tools/call", _call("echo", {"message": "hi"}, task={"ttl": 60000}))
    s.drain(0.5)


@scenario("everything")
def tasks_input_everything(s: Server):
    """Task with ambiguous:true: status input_required, elicitation/create delivered via tasks/result."""
    s.handshake(caps=FULL_CAPS, settle=1.0)
    r = s.call("tools/call", _call("simulate-research-query", {"topic": "python", "ambiguous": True}, task={"ttl": 60000}))
    tid = r["result"]["task"]["taskId"]
    s.drain(2.5)
    s.call("tasks/get", {"taskId": tid})
    s.call("tasks/result", {"taskId": tid}, timeout=10)
    s.call("tasks/get", {"taskId": tid})


@scenario("everything")
def tasks_cancel_everything(s: Server):
    """tasks/cancel on a working task, then tasks/get, tasks/result, cancel again; a plain call."""
    s.handshake(caps=FULL_CAPS, settle=1.0)
    r = s.call("tools/call", _call("simulate-research-query", {"topic": "go"}, task={"ttl": 60000}))
    tid = r["result"]["task"]["taskId"]
    s.drain(0.5)
    s.call("tasks/cancel", {"taskId": tid})
    s.call("tasks/get", {"taskId": tid})
    s.call("tasks/result", {"taskId": tid})
    s.call("tasks/cancel", {"taskId": tid})
    s.drain(4.5)  # does the background work still finish / notify?
    s.call("tasks/get", {"taskId": tid})
    s.call("tools/call", _call("simulate-research-query", {"topic": "go"}))  # no task field


@scenario("everything")
def url_elicitation_everything(s: Server):
    """With elicitation {form, url}: trigger-url-elicitation (request path, then errorPath -32042)."""
    s.handshake(caps=FULL_CAPS, settle=1.0)
    _task_tool(s, "trigger-url-elicitation")
    s.call("tools/call", _call("trigger-url-elicitation", {"url": "https://example.com/login"}))
    s.call("tools/call", _call("trigger-url-elicitation", {"url": "https://example.com/login", "errorPath": True}))
    s.call("tools/call", _call("trigger-url-elicitation", {"url": "https://example.com/login", "errorPath": True}))
    s.call("tools/call", _call("trigger-elicitation-request"))


@scenario("everything")
def modern_everything(s: Server):
    """Does it speak 2026-07-28 at all? initialize offering it; subscriptions/listen; an enveloped call."""
    s.call("initialize", {"protocolVersion": MODERN, "capabilities": FULL_CAPS,
                          "clientInfo": {"name": "probe", "version": "0"}}, timeout=10)
    s.notify("notifications/initialized")
    s.drain(0.6)
    s.call("subscriptions/listen", {"notifications": {"toolsListChanged": True}}, meta=MENV)
    s.call("tools/call", _call("get-sum", {"a": 1, "b": 2}), meta={**MENV, "io.modelcontextprotocol/logLevel": "debug"})
    s.call("tools/list", {}, meta=MENV)


@scenario("everything")
def shutdown_after_task(s: Server):
    """Close stdin after a task completed: the task store's TTL timer (300 s) keeps the process alive."""
    s.handshake(caps={}, settle=0.5)
    r = s.call("tools/call", _call("simulate-research-query", {"topic": "x"}, task={"ttl": 1000}))
    s.call("tasks/result", {"taskId": r["result"]["task"]["taskId"]}, timeout=10)
    s.close(timeout=330)


SLOW = {"shutdown_after_task"}  # ~5 min; run only when named


def main(argv):
    global FULL
    if "--full" in argv:
        FULL = True
        argv = [a for a in argv if a != "--full"]
    if not argv or argv[0] not in SCENARIOS:
        sys.exit(__doc__)
    kind, names = argv[0], argv[1:]
    if names == ["--list"]:
        print("\n".join(SCENARIOS[kind]))
        return
    installed = COMMANDS[kind][1] if kind == "everything" else COMMANDS[kind][0]
    if not Path(installed).exists():
        sys.exit(f"{COMMANDS[kind]} not installed: run .ci/install-reference-servers")
    if not names:  # the default run skips the scenarios that take minutes
        names = [n for n in SCENARIOS[kind] if n not in SLOW]
    for name in names:
        fn = SCENARIOS[kind][name]
        print(f"\n### {kind}: {name}" + (f" — {fn.__doc__.strip()}" if fn.__doc__ else ""), flush=True)
        tr = Transcript()
        s = Server(kind, tr, env=ENV.get(name))
        try:
            fn(s)
            if s.proc.poll() is None and not name.startswith(("startup", "shutdown")):
                s.close()
        finally:
            s.kill()


if __name__ == "__main__":
    main(sys.argv[1:])
