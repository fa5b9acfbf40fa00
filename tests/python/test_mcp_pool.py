"""Tests of examples/mcp_pool.py (the ctypes module) against the fake MCP server.

    MCP_POOL_LIB=target/debug/libmcp_pool.so MCP_FAKE_SERVER=target/debug/mcp-fake-server \\
        python3 tests/python/test_mcp_pool.py

Run by tests/ffi.rs. Standard library only (unittest).
"""
import json
import os
import sys
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import mcp_pool  # noqa: E402

FAKE = os.environ["MCP_FAKE_SERVER"]


def config(**servers):
    """An mcpServers configuration of fake servers, each with its pool settings."""
    return {
        "pool": {"closeGraceSecs": 0.5},
        "mcpServers": {name: {"command": FAKE, "pool": pool} for name, pool in servers.items()},
    }


class Recorder:
    """A handler that answers everything and records what it was told."""

    roots_list_changed = True

    def __init__(self):
        self.lock, self.events = threading.Lock(), []

    def note(self, *event):
        with self.lock:
            self.events.append(event)

    def seen(self, kind):
        with self.lock:
            return [e for e in self.events if e[0] == kind]

    def roots(self, server, params):
        self.note("roots", server, threading.current_thread() is threading.main_thread())
        return {"roots": [{"uri": "file:///tmp/from-python", "name": "py"}]}

    def sampling(self, server, params):
        self.note("sampling", server, params["messages"][0]["content"]["text"])
        return {"role": "assistant", "content": {"type": "text", "text": "sampled in Python"},
                "model": "py"}

    def elicitation(self, server, params):
        self.note("elicitation", server)
        return {"action": "accept", "content": {"name": "Grace"}}

    def on_log(self, server, level, logger, data):
        self.note("log", server, level, logger, data)

    def on_list_changed(self, server, kind):
        self.note("list_changed", server, kind)

    def on_resource_updated(self, server, uri):
        self.note("updated", server, uri)


class Refuser:
    """A handler whose request methods fail."""

    def roots(self, server, params):
        raise RuntimeError("no roots here")

    def sampling(self, server, params):
        raise RuntimeError("no")

    def elicitation(self, server, params):
        raise mcp_pool.ReplyError(-32001, "no form from Python")


class PoolTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.recorder = Recorder()
        cls.pool = mcp_pool.Pool(
            config(fake={"maxSessions": 2}, hs={"generation": "handshake"},
                   pr={"generation": "per-request"}, refused={"generation": "handshake"}),
            handler=cls.recorder, handlers={"refused": Refuser()})

    @classmethod
    def tearDownClass(cls):
        cls.pool.close()

    def text(self, result):
        return result["content"][0]["text"]

    def test_calls_and_their_errors(self):
        self.assertEqual(self.text(self.pool.call_tool("fake", "echo", {"text": "py"})), "py")
        self.assertEqual(self.pool.servers(), ["fake", "hs", "pr", "refused"])
        with self.assertRaises(mcp_pool.UnknownServer) as caught:
            self.pool.call_tool("nope", "echo")
        self.assertEqual(caught.exception.name, "MCP_ERR_UNKNOWN_SERVER")
        self.assertIsInstance(caught.exception, mcp_pool.McpError)
        with self.assertRaises(mcp_pool.ToolError) as caught:
            self.pool.call_tool("fake", "fail", {"message": "boom"})
        self.assertTrue(caught.exception.result["isError"])
        with self.assertRaises(mcp_pool.Server) as caught:
            self.pool.call_tool("fake", "rpc_error", {"code": -32001, "message": "no"})
        self.assertEqual(caught.exception.details["rpcError"]["code"], -32001)
        with self.assertRaises(mcp_pool.InvalidArgument):
            self.pool.call_tool("fake", "echo", [1, 2])
        with self.assertRaises(mcp_pool.InvalidArgument):
            self.pool.call_tool("fake", "echo", log_level="loud")
        start = time.monotonic()
        with self.assertRaises(mcp_pool.Timeout):
            self.pool.call_tool("fake", "hang", timeout=0.3)
        self.assertLess(time.monotonic() - start, 5)

    def test_every_call_kind(self):
        self.assertEqual(len(self.pool.list_resources("fake")), 5)
        self.assertEqual(self.pool.list_resource_templates("fake")[0]["uriTemplate"], "fake://r/{n}")
        read = self.pool.read_resource("fake", "fake://r/2")
        self.assertEqual(read["contents"][0]["text"], "resource 2")
        self.assertEqual(self.pool.list_prompts("fake")[0]["name"], "greet")
        prompt = self.pool.get_prompt("fake", "greet", {"name": "Py"})
        self.assertIn("Hello Py", json.dumps(prompt))
        completion = self.pool.complete("fake", {"type": "ref/prompt", "name": "greet"},
                                        {"name": "name", "value": "Da"})
        self.assertEqual(completion["values"], ["Dave"])
        self.assertGreater(self.pool.ping("fake"), 0)
        self.assertIn("tools", self.pool.request("fake", "tools/list"))
        self.pool.notify("fake", "notifications/roots/list_changed")
        self.assertIn("protocolVersion", self.pool.details("fake"))
        self.assertIn("fake", self.pool.stats()["servers"])
        self.assertEqual(self.pool.warnings(), [])
        meta = self.pool.call_tool("fake", "meta_echo", meta={"traceparent": "00-py"})
        self.assertIn("00-py", self.text(meta))

    def test_progress_arrives_in_order(self):
        seen = []
        result = self.pool.call_tool("fake", "progress_burst", {"steps": 20},
                                     on_progress=lambda p, total, msg: seen.append((p, total, msg)))
        self.assertEqual(self.text(result), "burst 20")
        self.assertEqual(seen, [(float(i), 20.0, f"step {i}") for i in range(1, 21)])

    def test_a_failing_progress_callback_is_raised_after_the_call(self):
        def bad(*_):
            raise ValueError("bad callback")
        with self.assertRaises(ValueError):
            self.pool.call_tool("fake", "progress_burst", {"steps": 2}, on_progress=bad)

    def test_cancel_from_another_thread(self):
        token = mcp_pool.CancelToken()
        timer = threading.Timer(0.2, token.cancel)
        timer.start()
        start = time.monotonic()
        with self.assertRaises(mcp_pool.Cancelled):
            self.pool.call_tool("fake", "hang", cancel=token, timeout=30)
        self.assertLess(time.monotonic() - start, 2)
        self.assertTrue(token.cancelled)
        timer.join()

    def test_batch_with_a_deadline(self):
        finished = []
        results = self.pool.batch(
            "fake",
            [{"tool": "sleep", "arguments": {"ms": 5000}}, {"tool": "echo", "arguments": {"text": "b"}}],
            timeout=0.3, on_result=lambda i, element: finished.append(i))
        self.assertIsInstance(results[0], mcp_pool.Timeout)
        self.assertEqual(self.text(results[1]), "b")
        self.assertEqual(sorted(finished), [0, 1])
        with self.assertRaises(mcp_pool.UnknownServer):
            self.pool.batch("nope", [{"tool": "echo"}])

    def test_a_python_handler_answers_both_generations(self):
        self.assertIn("from-python", self.text(self.pool.call_tool("hs", "ask_roots")))
        self.assertIn("sampled in Python", self.text(self.pool.call_tool("hs", "ask_sampling")))
        self.assertIn("Grace", self.text(self.pool.call_tool("hs", "ask_elicitation")))
        self.assertIn("from-python", self.text(self.pool.call_tool("pr", "mrtr_roots")))
        self.assertEqual(self.text(self.pool.call_tool("pr", "mrtr_elicit")), "hello Grace")
        self.assertEqual(self.text(self.pool.call_tool("pr", "mrtr_sampling")), "sampled in Python")
        # Request methods run on library threads, never on the caller's.
        self.assertTrue(all(not on_main for _, _, on_main in self.recorder.seen("roots")))
        caps = self.text(self.pool.call_tool("hs", "client_caps"))
        self.assertIn('"listChanged":true', caps)

    def test_a_failing_handler_gives_the_server_an_error(self):
        self.assertIn("-32603", self.text(self.pool.call_tool("refused", "ask_roots")))
        self.assertIn("User rejected sampling request",
                      self.text(self.pool.call_tool("refused", "ask_sampling")))
        self.assertIn("no form from Python", self.text(self.pool.call_tool("refused", "ask_elicitation")))
        caps = self.text(self.pool.call_tool("refused", "client_caps"))
        self.assertNotIn("listChanged", caps)

    def test_notifications_and_log_messages(self):
        self.pool.call_tool("hs", "log", {"level": "error", "message": "from the fake"})
        self.assertIn(("log", "hs", "error", "fake", "from the fake"), self.recorder.seen("log"))
        self.pool.call_tool("hs", "notify_changed", {"kind": "resources"})
        self.assertIn(("list_changed", "hs", "resources"), self.recorder.seen("list_changed"))
        with self.pool.session("hs") as session:
            self.assertEqual(session.details()["generation"], "handshake")
            session.subscribe("fake://r/4")
            self.assertEqual(self.text(session.call_tool("touch", {"uri": "fake://r/4"})), "ok")
            self.assertIn(("updated", "hs", "fake://r/4"), self.recorder.seen("updated"))
            session.unsubscribe("fake://r/4")
            self.assertIn("Hello", json.dumps(session.request(
                "prompts/get", {"name": "greet", "arguments": {"name": "x"}})))

    def test_the_context_manager_closes_the_pool(self):
        with mcp_pool.Pool(config(one={})) as pool:
            self.assertEqual(self.text(pool.call_tool("one", "echo", {"text": "x"})), "x")
        with self.assertRaises(mcp_pool.PoolClosed):
            pool.call_tool("one", "echo")
        with self.assertRaises(mcp_pool.Config):
            mcp_pool.Pool("{not json")
        with self.assertRaises(mcp_pool.UnknownServer):
            mcp_pool.Pool(config(one={}), handlers={"two": Recorder()})

    def test_a_start_timeout_leaves_the_timeout_to_the_call(self):
        slow = {"pool": {"closeGraceSecs": 0.5}, "mcpServers": {
            "slow": {"command": FAKE, "args": ["--slow-start-ms", "700"]}}}
        with mcp_pool.Pool(slow) as pool:
            with self.assertRaises(mcp_pool.Timeout):
                pool.call_tool("slow", "echo", {"text": "a"}, timeout=0.3)
        with mcp_pool.Pool(slow) as pool:
            result = pool.call_tool("slow", "echo", {"text": "b"}, timeout=0.3, start_timeout=20)
            self.assertEqual(self.text(result), "b")

    def test_from_file_resolves_against_the_file_and_skips_a_broken_entry(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            os.symlink(os.path.abspath(FAKE), os.path.join(d, "srv"))
            path = os.path.join(d, "mcp.json")
            with open(path, "w") as f:
                json.dump({"pool": {"closeGraceSecs": 0.5}, "mcpServers": {
                    "rel": {"command": "./srv"},
                    "broken": {"command": "x", "env": {"T": "${MCP_POOL_PY_UNSET_VAR}"}}}}, f)
            # From another directory: `./srv` is the file's directory's.
            with mcp_pool.Pool.from_file(path, handlers={"broken": Recorder()}) as pool:
                self.assertEqual(self.text(pool.call_tool("rel", "echo", {"text": "r"})), "r")
                with self.assertRaises(mcp_pool.Config) as caught:
                    pool.call_tool("broken", "echo")
                self.assertIn("MCP_POOL_PY_UNSET_VAR", str(caught.exception))
        with self.assertRaises(mcp_pool.Config) as caught:
            mcp_pool.Pool.from_file("/nonexistent/mcp.json")
        self.assertIn("/nonexistent/mcp.json", str(caught.exception))

    def test_a_failing_progress_callback_is_raised_each_time_and_the_pool_goes_on(self):
        def boom(progress, total, message):
            raise ValueError("from the callback")
        for _ in range(3):
            with self.assertRaises(ValueError):
                self.pool.call_tool("fake", "progress_burst", {"steps": 2}, on_progress=boom)
        self.assertEqual(self.text(self.pool.call_tool("fake", "echo", {"text": "ok"})), "ok")

    def test_close_while_another_thread_is_in_a_call(self):
        pool = mcp_pool.Pool(config(one={}))
        outcome = []

        def call():
            try:
                outcome.append(pool.call_tool("one", "sleep", {"ms": 3000}, timeout=20))
            except mcp_pool.McpError as e:
                outcome.append(e)

        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(0.3)
        start = time.monotonic()
        pool.close()  # the other thread's call ends; the handle stays valid under it
        worker.join(10)
        self.assertFalse(worker.is_alive())
        self.assertIsInstance(outcome[0], mcp_pool.McpError)
        self.assertLess(time.monotonic() - start, 10)
        with self.assertRaises(mcp_pool.PoolClosed):
            pool.call_tool("one", "echo")


if __name__ == "__main__":
    unittest.main(verbosity=2)
