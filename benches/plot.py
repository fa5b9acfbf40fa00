#!/usr/bin/env python3
"""Plots the demo's time per call, four ways, for each server it ran against, as an SVG.

    python3 benches/plot.py            # plot the saved demo outputs in benches/results/
    python3 benches/plot.py --run      # run the demo first (fake server, and server-everything
                                       # under node if .ci/install-reference-servers installed it)

Reads each benches/results/demo-*.md (the demo's stdout), writes benches/latency.svg: one
group of bars per server, on a log scale, with the time per call and the speedup over
spawning a server per call. Standard library only.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benches/results"
INTEROP = Path(os.environ.get("MCP_POOL_INTEROP_DIR", ROOT / "target/interop"))
EVERYTHING = INTEROP / "npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
RUNS = {
    "demo-fake.md": ("the repository's fake server (Rust)", []),
    "demo-everything.md": (
        "server-everything 2026.8.31 (node)",
        ["--server-command", f"node {EVERYTHING} stdio"],
    ),
}
COLORS = ["#c0392b", "#2e86c1", "#28b463", "#8e44ad"]


def run_demo() -> None:
    RESULTS.mkdir(exist_ok=True)
    for name, (_, args) in RUNS.items():
        if "everything" in name and not EVERYTHING.exists():
            print(f"skipping {name}: run .ci/install-reference-servers", file=sys.stderr)
            continue
        cmd = ["cargo", "run", "-q", "--release", "--example", "demo", "--", *args]
        print("$", " ".join(cmd), file=sys.stderr, flush=True)
        out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True).stdout
        (RESULTS / name).write_text(out)


def ms(cell: str) -> float:
    value = re.match(r"([\d.]+) ms", cell.strip())
    return float(value.group(1)) if value else float("nan")


def parse(path: Path) -> list[dict]:
    """The rows of the demo's table: mode, per call (ms), p50 (ms), speedup."""
    rows = []
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or cells[0] in ("mode",) or cells[0].startswith("---"):
            continue
        rows.append({"mode": cells[0], "per_call": ms(cells[3]), "p50": ms(cells[4]), "speedup": cells[6]})
    return rows


def svg(groups: list[tuple[str, list[dict]]]) -> str:
    bar, gap, left, right, top = 22, 6, 190, 170, 56
    plot_w = 480
    values = [r["per_call"] for _, rows in groups for r in rows]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    x = lambda v: left + plot_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    height = top + sum(28 + len(rows) * (bar + gap) + 14 for _, rows in groups) + 40
    width = left + plot_w + right
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
        "Time per tool call: spawn per call vs a pooled session</text>",
        f'<text x="{width / 2}" y="40" text-anchor="middle" fill="#555">'
        "cargo run --release --example demo (log scale; shorter is better)</text>",
    ]
    y = top
    axis_top = y
    bars = []  # drawn after the grid, over it
    for title, rows in groups:
        bars.append(f'<text x="10" y="{y + 16}" font-weight="bold">{escape(title)}</text>')
        y += 28
        for i, r in enumerate(rows):
            w = max(x(r["per_call"]) - left, 1)
            color = COLORS[i % len(COLORS)]
            bars.append(f'<text x="{left - 8}" y="{y + bar * 0.7}" text-anchor="end">{escape(r["mode"])}</text>')
            bars.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{color}"/>')
            label = f'{r["per_call"]:g} ms'
            if i > 0:
                label += f'  ({escape(r["speedup"])} faster)'
            bars.append(f'<text x="{left + w + 6:.1f}" y="{y + bar * 0.7}">{label}</text>')
            y += bar + gap
        y += 14
    # Decades on the axis.
    decade = lo
    while decade <= hi * 1.0001:
        gx = x(decade)
        out.append(f'<line x1="{gx:.1f}" y1="{axis_top}" x2="{gx:.1f}" y2="{y}" stroke="#ddd"/>')
        label = f"{decade:g} ms" if decade >= 0.001 else f"{decade * 1e3:g} µs"
        out.append(f'<text x="{gx:.1f}" y="{y + 16}" text-anchor="middle" fill="#555">{label}</text>')
        decade *= 10
    out.extend(bars)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run the demo first")
    parser.add_argument("--out", default=str(ROOT / "benches/latency.svg"))
    args = parser.parse_args()
    if args.run:
        run_demo()
    groups = []
    for name, (title, _) in RUNS.items():
        path = RESULTS / name
        if path.exists():
            groups.append((title, parse(path)))
    if not groups:
        sys.exit(f"no demo output in {RESULTS}: run with --run")
    Path(args.out).write_text(svg(groups))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
