#!/usr/bin/env python3
"""The official Python MCP SDK's client against the repository's fake MCP server.

One session; `echo` calls one at a time, then from 8, 64 and 256 concurrent tasks, each for a
fixed interval, each with the client's CPU time and context switches per call (getrusage of
the whole process over the interval). Prints a table, or one JSON object with --json (read by
compare.py).

    target/interop/venv/bin/python benches/peers/python_sdk.py \
        [--server target/release/mcp-fake-server] [--seconds 2] [--json]

Needs the venv that .ci/install-reference-servers creates (mcp 2.3.0, pinned); see
benches/peers/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = Path(__file__).resolve().parents[2]
ARGS = {"text": "hello"}
CONCURRENCY = (8, 64, 256)


def usage() -> tuple[float, int]:
    """This process's CPU time (user + system, seconds) and context switches so far."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime, u.ru_nvcsw + u.ru_nivcsw


def per_call(before: tuple[float, int], calls: int) -> tuple[float, float]:
    """CPU µs and context switches per call since `before`."""
    cpu, switches = usage()
    calls = max(calls, 1)
    return (cpu - before[0]) * 1e6 / calls, (switches - before[1]) / calls


async def sequential(session: ClientSession, seconds: float) -> tuple[float, list[float], tuple]:
    latencies = []
    before = usage()
    start = time.perf_counter()
    end = start + seconds
    while True:
        t = time.perf_counter()
        if t >= end:
            break
        result = await session.call_tool("echo", ARGS)
        latencies.append(time.perf_counter() - t)
        assert not result.is_error
    return len(latencies) / (time.perf_counter() - start), latencies, per_call(before, len(latencies))


async def concurrent(session: ClientSession, tasks: int, seconds: float) -> tuple[float, tuple]:
    done = 0
    end = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < end:
            result = await session.call_tool("echo", ARGS)
            assert not result.is_error
            done += 1

    before = usage()
    start = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(tasks):
            group.start_soon(caller)
    return done / (time.perf_counter() - start), per_call(before, done)


async def measure(server: str, seconds: float) -> dict:
    params = StdioServerParameters(command=server, args=[])
    with open(os.devnull, "w") as devnull:
        async with stdio_client(params, errlog=devnull) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                for _ in range(200):  # warm-up
                    await session.call_tool("echo", ARGS)
                rate, latencies, (cpu, switches) = await sequential(session, seconds)
                figures = {
                    "client": f"Python SDK (mcp {version('mcp')})",
                    "protocol_version": init.protocol_version,
                    "sequential_p50_ms": statistics.median(latencies) * 1e3,
                    "sequential_per_s": rate,
                    "sequential_cpu_us_per_call": cpu,
                    "sequential_switches_per_call": switches,
                }
                for tasks in CONCURRENCY:
                    rate, (cpu, switches) = await concurrent(session, tasks, seconds)
                    figures[f"concurrent_{tasks}_per_s"] = rate
                    figures[f"concurrent_{tasks}_cpu_us_per_call"] = cpu
                    figures[f"concurrent_{tasks}_switches_per_call"] = switches
                return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--server", default=str(ROOT / "target/release/mcp-fake-server"))
    parser.add_argument("--seconds", type=float, default=2.0, help="per figure")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if not Path(args.server).exists():
        sys.exit(f"{args.server} is missing: cargo build --release --bin mcp-fake-server")
    figures = anyio.run(measure, args.server, args.seconds)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{figures['client']}, protocol {figures['protocol_version']}, {args.server}")
    f = figures
    print(
        f"sequential: p50 {f['sequential_p50_ms']:.3f} ms, {f['sequential_per_s']:,.0f} calls/s,"
        f" {f['sequential_cpu_us_per_call']:.1f} µs CPU and"
        f" {f['sequential_switches_per_call']:.1f} context switches per call"
    )
    for tasks in CONCURRENCY:
        print(
            f"{tasks} concurrent tasks: {f[f'concurrent_{tasks}_per_s']:,.0f} calls/s,"
            f" {f[f'concurrent_{tasks}_cpu_us_per_call']:.1f} µs CPU and"
            f" {f[f'concurrent_{tasks}_switches_per_call']:.1f} context switches per call"
        )


if __name__ == "__main__":
    main()
