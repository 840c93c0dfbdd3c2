"""Benchmark: a team's first hour on the real engine (scripts/docker-engine).

  * cold: `copier copy` of examples/giga.yml, then `make db-up`, `make up`,
    `make migrate`, until the frontend's first 200, with no image or build
    cache beyond the stand-in base images;
  * warm: the same project after a one-line change to the backend and to the
    frontend, `make db-up up` again (both rebuild from the build cache) until
    the first 200; the ratio warm/cold is the cache's effect;
  * memory: each container's peak (cgroup v1 memory.max_usage_in_bytes,
    page cache included) during a light load on the frontend's home page,
    which calls the API, against its compose mem_limit.

Usage: .venv/bin/python -m tests.benchmarks.bench_first_hour [--load-seconds 30]
(root; the engine is started if it is not running)
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from harness import engine, traffic
from harness.render import render_example

STEPS = ("db-up", "up", "migrate")


def timed(label: str, action) -> float:
    started = time.monotonic()
    action()
    elapsed = time.monotonic() - started
    print(f"  {label:<34} {elapsed:7.1f} s", flush=True)
    return elapsed


def make(project: Path, target: str) -> None:
    subprocess.run(["make", "--no-print-directory", target], cwd=project, check=True, capture_output=True,
                   timeout=1800)


def first_200(url: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}: no 200 within {timeout} s")


def forget_project_images() -> None:
    """Every image but the stand-ins, and the build cache."""
    standins = set(subprocess.run(["scripts/docker-engine", "images"], cwd=engine.REPO, capture_output=True,
                                  text=True, check=True).stdout.split()) | {"standin-debian:trixie"}
    listed = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout.splitlines()
    doomed = sorted({image_id for line in listed for name, image_id in [line.split()] if name not in standins})
    if doomed:
        engine.docker("rmi", "--force", *doomed, check=False)
    engine.docker("builder", "prune", "--all", "--force")


def run_to_first_200(project: Path) -> dict[str, float]:
    times = {target: timed(f"make {target}", lambda t=target: make(project, t)) for target in STEPS}
    times["first 200"] = timed("until the frontend's first 200", lambda: first_200("http://localhost:5173/"))
    return times


def one_line_change(project: Path) -> None:
    with (project / "back/giga/urls.py").open("a") as urls:
        urls.write("# one line\n")
    with (project / "front/src/routes/+page.svelte").open("a") as page:
        page.write("<!-- one line -->\n")


def peak_memory(container: str) -> tuple[int, int]:
    """(peak bytes, limit bytes) of a running container."""
    data = engine.inspect(container)
    path = Path(f"/sys/fs/cgroup/memory/docker/{data['Id']}/memory.max_usage_in_bytes")
    return int(path.read_text()), data["HostConfig"]["Memory"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--load-seconds", type=float, default=30)
    args = parser.parse_args()
    engine.start()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        project = Path(tmp) / "giga"
        try:
            print("cold (no image or build cache beyond the stand-ins):")
            forget_project_images()
            copy = timed("copier copy", lambda: render_example("giga", project))
            cold = run_to_first_200(project)
            cold_total = copy + sum(cold.values())
            print(f"  {'total':<34} {cold_total:7.1f} s")

            print("warm (a one-line change to back/ and front/, rebuilt from the cache):")
            one_line_change(project)
            warm = {target: timed(f"make {target}", lambda t=target: make(project, t)) for target in STEPS[:2]}
            warm["first 200"] = timed("until the frontend's first 200", lambda: first_200("http://localhost:5173/"))
            warm_total = sum(warm.values())
            print(f"  {'total':<34} {warm_total:7.1f} s   warm/cold {warm_total / cold_total:.2f}x")

            print(f"memory under {args.load_seconds:.0f} s of load (4 clients on the home page, 2 on /api/health/):")
            pages = traffic.Traffic("http://127.0.0.1:5173", [("GET", "/", {})], clients=4, timeout=30)
            api = traffic.Traffic("http://127.0.0.1:8000", [("GET", "/api/health/", {})], clients=2, timeout=30)
            with pages, api:
                time.sleep(args.load_seconds)
            print(f"  requests: home {pages.counts()}, health {api.counts()}")
            for container in ("giga_db_dev", "giga_backend_dev", "giga_frontend_dev", "giga_mailpit_dev"):
                peak, limit = peak_memory(container)
                print(f"  {container:<20} peak {peak / 2**20:7.1f} MiB of {limit / 2**20:6.0f} MiB "
                      f"({peak / limit:.0%})")
        finally:
            engine.compose_down(project, "docker-compose.dev.yml")
            engine.compose_down(project / "db")


if __name__ == "__main__":
    main()
