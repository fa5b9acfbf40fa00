#!/usr/bin/env python3
"""mcp-pool next to other MCP clients, against the same fake server binary, in one run.

    python3 benches/peers/compare.py [--seconds 2] [--rounds 1] [--no-rmcp] [--no-python]

Runs, in turn:
  * this crate: `cargo bench --bench throughput` (one `Pool` session; 1, 8 and 64 caller
    threads; the raw write-line/read-line loop as the floor), reading its BENCH-JSON line;
  * the official Python SDK client (`mcp` 2.3.0) from target/interop/venv, made by
    .ci/install-reference-servers: benches/peers/python_sdk.py;
  * the official async Rust SDK client (rmcp 3.11.0, tokio), its own Cargo project in
    benches/peers/rmcp/, outside this crate's dependency tree (built on first use, ~1 min).
Each client runs its calls on one session; "callers" are threads for mcp-pool and tasks for
the async clients. With --rounds N every client runs N times, in turn, and each figure is the
median. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "target/release/mcp-fake-server"
VENV_PYTHON = Path(os.environ.get("MCP_POOL_INTEROP_DIR", ROOT / "target/interop")) / "venv/bin/python"
RMCP_BIN = ROOT / "target/peers/release/rmcp-peer"
FIGURES = ["sequential_p50_ms", "sequential_per_s", "concurrent_8_per_s", "concurrent_64_per_s"]


def run(cmd: list[str], env: dict | None = None) -> str:
    print("$", " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(str(c) for c in cmd)}")
    return done.stdout


def ours() -> dict:
    env = dict(os.environ, MCP_BENCH_JSON="1")
    out = run(["cargo", "bench", "-q", "--bench", "throughput"], env)
    line = next(l for l in out.splitlines() if l.startswith("BENCH-JSON "))
    f = json.loads(line.removeprefix("BENCH-JSON "))["figures"]
    one = f["one_session"]
    raw = {"client": "raw write-line/read-line loop (floor)", "sequential_per_s": f["raw_1"]}
    pool = {
        "client": "mcp-pool (this crate, threads)",
        "sequential_p50_ms": f["sequential_p50_ms"],
        "sequential_per_s": one["1"],
        "concurrent_8_per_s": one["8"],
        "concurrent_64_per_s": one["64"],
    }
    return {"raw": raw, "pool": pool}


def peer(cmd: list) -> dict:
    return json.loads(run([str(c) for c in cmd]).strip().splitlines()[-1])


def median_of(runs: list[dict]) -> dict:
    out = dict(runs[0])
    for key in FIGURES:
        values = [r[key] for r in runs if key in r]
        if values:
            out[key] = statistics.median(values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per figure, for the peers")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-rmcp", action="store_true")
    parser.add_argument("--no-python", action="store_true")
    args = parser.parse_args()

    run(["cargo", "build", "-q", "--release", "--bin", "mcp-fake-server"])
    clients: dict[str, list] = {}
    if not args.no_python:
        if VENV_PYTHON.exists():
            script = ROOT / "benches/peers/python_sdk.py"
            clients["python"] = [VENV_PYTHON, script, "--server", FAKE, "--seconds", args.seconds, "--json"]
        else:
            print(f"skipping the Python SDK: no {VENV_PYTHON} (run .ci/install-reference-servers)", file=sys.stderr)
    if not args.no_rmcp:
        manifest = ROOT / "benches/peers/rmcp/Cargo.toml"
        run(["cargo", "build", "-q", "--release", "--manifest-path", manifest, "--target-dir", ROOT / "target/peers"])
        clients["rmcp"] = [RMCP_BIN, "--server", FAKE, "--seconds", args.seconds, "--json"]

    results: dict[str, list[dict]] = {"raw": [], "pool": []}
    for _ in range(args.rounds):
        mine = ours()
        results["raw"].append(mine["raw"])
        results["pool"].append(mine["pool"])
        for name, cmd in clients.items():
            results.setdefault(name, []).append(peer(cmd))

    rows = [median_of(r) for r in results.values()]
    cell = lambda r, k, fmt: fmt.format(r[k]) if k in r else "—"
    print(f"\nfake server {FAKE}, {os.cpu_count()} cores, median of {args.rounds} round(s)\n")
    print("| client | sequential p50 | sequential calls/s | 8 callers, calls/s | 64 callers, calls/s |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['client']} | {cell(r, 'sequential_p50_ms', '{:.3f} ms')} | {cell(r, 'sequential_per_s', '{:,.0f}')}"
            f" | {cell(r, 'concurrent_8_per_s', '{:,.0f}')} | {cell(r, 'concurrent_64_per_s', '{:,.0f}')} |"
        )
    pool = rows[1]
    for r in rows[2:]:
        ratios = [f"{pool[k] / r[k]:.1f}×" for k in FIGURES[1:] if k in r]
        print(f"\nmcp-pool vs {r['client']}: {', '.join(ratios)} the calls/s (sequential, 8, 64 callers)", end="")
    print()


if __name__ == "__main__":
    main()
