"""Benchmark: the rendered backend, served as its Dockerfile serves it, against
the real PostgreSQL of the rendered db/, under 16 concurrent clients.

    .venv/bin/python -m tests.benchmarks.bench_back [--duration 10] [--rounds 2] [--configs defaults,shipped,pool,gunicorn]

(any Python with the tests' requirements: copier, psycopg, pyyaml).

What runs (nothing of it is a mock):

* the giga project (examples/giga.yml), rendered from this repository's HEAD
  plus uncommitted changes of tracked files;
* PostgreSQL of the major its db/Dockerfile names, from its rendered
  postgresql.conf, pg_hba.conf and init/ (harness/postgres.py); the
  backend reaches it as `giga-db` on this machine's network address, so the
  samenet scram-sha-256 rule of pg_hba.conf applies, as on the Docker network;
* the backend with the production image's ENTRYPOINT + CMD and ENV (granian,
  WSGI, 2 workers x 4 blocking threads), with back/.env as its environment
  (harness/backend.py), listening on loopback;
* wrk (Debian package `wrk`): 2 threads, 16 connections, --latency.

Configurations, alternated round by round so drift hits all alike:

* defaults: Django's defaults, CONN_MAX_AGE=0: a new connection (TCP +
  SCRAM-SHA-256 login) for every request;
* shipped:  what the template ships, CONN_MAX_AGE=600 + CONN_HEALTH_CHECKS;
* pool:     psycopg's pool (DB_POOL=1, min 2 / max 4 per worker);
* gunicorn: the shipped settings under gunicorn gthread (2 workers x 4
  threads) instead of granian, to compare servers (installed for the
  benchmark only, in a venv of its own; leave it out of --configs to skip it).

Besides requests/s and latency (which other load on a shared machine moves),
it reports the CPU time spent per request by the backend's processes and by
PostgreSQL's (from /proc), which such load barely moves.

Endpoints: GET /api/health/ (one COUNT on personas_usuario, in a transaction
with a statement timeout) and GET /api/users/<id>/ with a staff token (knox's
token lookup and hash + user fetch).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from harness.backend import Backend, http
from harness.load import require_wrk, wrk
from harness.net import free_port
from harness.postgres import start_project_db
from harness.python import venv_for
from harness.render import render_example

CONFIGS = {
    "defaults": {"server": "image", "env": {"DB_CONN_MAX_AGE": "0"}},
    "shipped": {"server": "image", "env": {}},
    "pool": {"server": "image", "env": {"DB_POOL": "1"}},
    "gunicorn": {"server": "gunicorn", "env": {}},
}
GUNICORN = "gunicorn==27.0.1"


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Token {token}"} if token else {}


# -- CPU spent per request: robust to other load on a shared machine ---------
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stats():
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        yield int(stat.parent.name), fields


def _ticks(fields, children=True):
    used = int(fields[11]) + int(fields[12])  # utime, stime
    return used + (int(fields[13]) + int(fields[14]) if children else 0)  # + reaped children


def backend_cpu(session: int) -> float:
    """CPU seconds of every process of the backend's session (it runs with start_new_session)."""
    return sum(_ticks(f) for _, f in _proc_stats() if int(f[3]) == session) / CLOCK_TICKS


def database_cpu(postmaster: int) -> float:
    """CPU seconds of the postmaster, its reaped backends and its live ones."""
    total = 0
    for pid, fields in _proc_stats():
        if pid == postmaster:
            total += _ticks(fields)
        elif int(fields[1]) == postmaster:
            total += _ticks(fields, children=False)
    return total / CLOCK_TICKS


def server_command(backend: Backend, server: str) -> list[str] | None:
    if server == "image":
        return None  # the Dockerfile's CMD
    package = backend.compose_env["DJANGO_SETTINGS_MODULE"].partition(".")[0]
    return ["gunicorn", "--bind", "0.0.0.0:{PORT}", "--worker-class", "gthread", "--workers", "2",
            "--threads", "4", "--no-control-socket", f"{package}.wsgi"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per server start")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over all configurations (default 2)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ",".join(CONFIGS))
    args = parser.parse_args()
    require_wrk()
    configs = [name for name in args.configs.split(",") if name]

    work = Path(tempfile.mkdtemp(prefix="bench-back-"))
    project = render_example("giga", work / "giga")
    db = start_project_db(project)
    try:
        # gunicorn only in a venv of the benchmark's own, never in the tests' one.
        venv = venv_for(project / "back", extra=(GUNICORN,) if "gunicorn" in configs else ())
        backend = Backend(project, db, venv)
        backend.manage("migrate", "--noinput", check=True)
        out = backend.manage("shell", "-c", (
            "from personas.models import Usuario; from knox.models import AuthToken\n"
            "s = Usuario.objects.create_user('bench', 'bench@example.com', 'bench-Passw0rd!', is_staff=True)\n"
            "for i in range(50): Usuario.objects.create_user(f'user{i}', f'user{i}@example.com')\n"
            "print(s.id, AuthToken.objects.create(s)[1])"), check=True).stdout.split()
        user_id, token = out[-2], out[-1]

        results: dict[tuple[str, str], list[dict]] = {}
        for round_number in range(1, args.rounds + 1):
            for name in configs:
                config = CONFIGS[name]
                command = server_command(backend, config["server"])
                postmaster = int((db.data / "postmaster.pid").read_text().split()[0])
                with serve(backend, command, config["env"]) as (base, process):
                    for endpoint, path, tok in (("health", "/api/health/", None),
                                                ("user", f"/api/users/{user_id}/", token)):
                        status, body, _ = http("GET", base + path, token=tok)
                        assert status == 200, (name, path, status, body)
                        wrk(base + path, args.warmup, auth(tok))
                        cpu_before = backend_cpu(process.pid), database_cpu(postmaster)
                        result = wrk(base + path, args.duration, auth(tok))
                        cpu_after = backend_cpu(process.pid), database_cpu(postmaster)
                        result["backend_cpu"] = 1000 * (cpu_after[0] - cpu_before[0]) / result["requests"]
                        result["db_cpu"] = 1000 * (cpu_after[1] - cpu_before[1]) / result["requests"]
                        results.setdefault((name, endpoint), []).append(result)
                        print(f"round {round_number} {name:9} {endpoint:6} {result['rps']:8.1f} req/s  "
                              f"p50 {result['p50']:7.2f} ms  p99 {result['p99']:7.2f} ms  "
                              f"CPU/request: backend {result['backend_cpu']:.2f} ms, "
                              f"PostgreSQL {result['db_cpu']:.2f} ms  "
                              f"non-2xx {result['non_2xx']} {result['socket_errors']}", flush=True)
        report(results, configs, args, db)
    finally:
        db.destroy()
        shutil.rmtree(work, ignore_errors=True)


class serve:
    """Backend.serve with an optional replacement for the Dockerfile's CMD."""

    def __init__(self, backend: Backend, command: list[str] | None, env: dict[str, str]):
        self.backend, self.command, self.env = backend, command, env

    def __enter__(self) -> str:
        stage = self.backend.stage
        self.saved_cmd = stage.cmd
        if self.command:
            self.port = free_port()
            stage.cmd = [part.replace("{PORT}", str(self.port)) for part in self.command]
        else:
            self.port = None
        self.context = self.backend.serve(port=self.port, env=self.env)
        base, process = self.context.__enter__()
        time.sleep(1)
        return base, process

    def __exit__(self, *exc):
        self.backend.stage.cmd = self.saved_cmd
        return self.context.__exit__(*exc)


def report(results, configs, args, db) -> None:
    def median(values):
        values = sorted(values)
        return values[len(values) // 2] if len(values) % 2 else sum(values[len(values) // 2 - 1:][:2]) / 2

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print()
    print(f"Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}; "
          f"PostgreSQL {db.major} on {db.address}; wrk -t2 -c16 -d{args.duration}s, "
          f"median of {args.rounds} round(s)")
    print()
    print("| configuration | endpoint | req/s | p50 ms | p99 ms | vs defaults | CPU ms/req backend | CPU ms/req PostgreSQL |")
    print("|---|---|---|---|---|---|---|---|")
    for endpoint in ("health", "user"):
        base = median([r["rps"] for r in results.get(("defaults", endpoint), [])] or [0])
        for name in configs:
            runs = results[(name, endpoint)]
            rps = median([r["rps"] for r in runs])
            ratio = f"{rps / base:.2f}x" if base else "-"
            print(f"| {name} | {endpoint} | {rps:.0f} | {median([r['p50'] for r in runs]):.2f} | "
                  f"{median([r['p99'] for r in runs]):.2f} | {ratio} | "
                  f"{median([r['backend_cpu'] for r in runs]):.2f} | {median([r['db_cpu'] for r in runs]):.2f} |")


if __name__ == "__main__":
    main()
