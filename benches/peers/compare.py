#!/usr/bin/env python3
"""mcp-pool next to other MCP clients, against the same fake server binary, in one run.

    python3 benches/peers/compare.py [--seconds 2] [--rounds 1] [--no-rmcp] [--no-python]

Runs, in turn:
  * this crate: `cargo bench --bench throughput` (one `Pool` session; 1, 8, 64 and 256 caller
    threads; the raw write-line/read-line loop as the floor), reading its BENCH-JSON line;
  * the official Python SDK client (`mcp` 2.3.0) from target/interop/venv, made by
    .ci/install-reference-servers: benches/peers/python_sdk.py;
  * the official async Rust SDK client (rmcp 3.11.0, tokio), its own Cargo project in
    benches/peers/rmcp/, outside this crate's dependency tree (built on first use, ~1 min).
Each client runs its calls on one session; "callers" are threads for mcp-pool and tasks for
the async clients. Every client also reports its CPU time and context switches per call
(getrusage of its whole process over each interval; the server's are not counted). With
--rounds N every client runs N times, in turn, and each figure is the median. Prints the
calls/s, the CPU and switches per call, and mcp-pool's ratios against each peer (target: with
8 and 64 callers, ≥ 1.2× rmcp's calls/s). Standard library only.
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
CONCURRENCY = [8, 64, 256]
# Columns: the sequential figure, then each concurrency.
COLUMNS = ["sequential"] + [f"concurrent_{n}" for n in CONCURRENCY]
FIGURES = ["sequential_p50_ms"] + [
    f"{c}_{what}" for c in COLUMNS for what in ("per_s", "cpu_us_per_call", "switches_per_call")
]
# mcp-pool against rmcp: calls/s with 8 and 64 callers at least this many times rmcp's.
TARGET_VS_RMCP = 1.2


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
    one, cpu, switches = f["one_session"], f["one_session_cpu_us_per_call"], f["one_session_switches_per_call"]
    raw = {
        "client": "raw write-line/read-line loop (floor)",
        "sequential_per_s": f["raw_1"],
        "sequential_cpu_us_per_call": f["raw_1_cpu_us_per_call"],
        "sequential_switches_per_call": f["raw_1_switches_per_call"],
    }
    pool = {"client": "mcp-pool (this crate, threads)", "sequential_p50_ms": f["sequential_p50_ms"]}
    for column, callers in zip(COLUMNS, ["1"] + [str(n) for n in CONCURRENCY]):
        pool[f"{column}_per_s"] = one[callers]
        pool[f"{column}_cpu_us_per_call"] = cpu[callers]
        pool[f"{column}_switches_per_call"] = switches[callers]
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
    heads = ["sequential"] + [f"{n} callers" for n in CONCURRENCY]
    print(f"\nfake server {FAKE}, {os.cpu_count()} cores, median of {args.rounds} round(s)\n")
    print("calls per second, one session:\n")
    print("| client | sequential p50 | " + " | ".join(f"{h}, calls/s" for h in heads) + " |")
    print("|---|---:|" + "---:|" * len(heads))
    for r in rows:
        cells = [cell(r, f"{c}_per_s", "{:,.0f}") for c in COLUMNS]
        print(f"| {r['client']} | {cell(r, 'sequential_p50_ms', '{:.3f} ms')} | " + " | ".join(cells) + " |")

    print("\nclient CPU time per call / client context switches per call (getrusage, whole process):\n")
    print("| client | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * len(heads))
    for r in rows:
        cells = []
        for c in COLUMNS:
            cpu, sw = f"{c}_cpu_us_per_call", f"{c}_switches_per_call"
            cells.append(f"{r[cpu]:.1f} µs / {r[sw]:.1f}" if cpu in r and sw in r else "—")
        print(f"| {r['client']} | " + " | ".join(cells) + " |")

    pool = rows[1]
    print("\nmcp-pool's calls/s against each client's (and its CPU per call against theirs):\n")
    print("| mcp-pool vs | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * len(heads))
    for r in [rows[0]] + rows[2:]:
        cells = []
        for c in COLUMNS:
            k, cpu = f"{c}_per_s", f"{c}_cpu_us_per_call"
            if k not in r:
                cells.append("—")
                continue
            text = f"{pool[k] / r[k]:.2f}×"
            if cpu in r and r[cpu] > 0:
                text += f" (CPU {pool[cpu] / r[cpu]:.2f}×)"
            cells.append(text)
        print(f"| {r['client']} | " + " | ".join(cells) + " |")
    rmcp = results.get("rmcp") and median_of(results["rmcp"])
    if rmcp:
        print()
        for n in (8, 64):
            k = f"concurrent_{n}_per_s"
            x = pool[k] / rmcp[k]
            verdict = "met" if x >= TARGET_VS_RMCP else "**missed**"
            print(f"target: {n} callers ≥ {TARGET_VS_RMCP}× rmcp 3.11's calls/s: {x:.2f}×, {verdict}")
    print()


if __name__ == "__main__":
    main()
