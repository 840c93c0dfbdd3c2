"""Benchmark: the server-rendered home page of front/, against the running stack.

    .venv/bin/python -m tests.benchmarks.bench_front [--duration 10] [--rounds 3]

Renders giga (examples/giga.yml) from this repository, then runs the three
tiers as the end-to-end tests do (harness/stack.py): PostgreSQL from
the rendered db/, the migrated backend as its Dockerfile serves it, and
`node build` of front/ reaching it by its alias. wrk (Debian package `wrk`)
loads GET / with 16 connections; every request renders the page on the
server, which calls GET /api/health/ (a database round trip) on the backend.
Reports requests/s, p50 and p99 per round and their medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from pathlib import Path

from harness import node
from harness.load import CONNECTIONS, require_wrk, wrk
from harness.render import render_example
from harness.stack import running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per round (default 10)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        project = render_example("giga", Path(tmp) / "giga")
        built = node.build(node.install(project / "front", Path(tmp) / "front"))
        with running(project, built) as stack:
            front = stack.front_url
            wrk(front + "/", 2)  # warm-up
            rounds = [wrk(front + "/", args.duration) for _ in range(args.rounds)]
    print(f"GET / (server-rendered home page), {CONNECTIONS} connections, {args.duration}s x {args.rounds}; "
          f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs")
    for i, r in enumerate(rounds, 1):
        print(f"  round {i}: {r['rps']:8.1f} req/s  p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  "
              f"non-2xx {r['non_2xx']}  {r['socket_errors']}")
    print(f"  median : {statistics.median(r['rps'] for r in rounds):8.1f} req/s  "
          f"p50 {statistics.median(r['p50'] for r in rounds):6.1f} ms  "
          f"p99 {statistics.median(r['p99'] for r in rounds):6.1f} ms")


if __name__ == "__main__":
    main()
