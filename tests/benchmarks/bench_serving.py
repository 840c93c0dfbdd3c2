"""Benchmark: the rendered backend as its image serves it, against two peers'
serving stacks and a bare limit, on one PostgreSQL, one data set, one client.

    PATH=$PWD/.venv/bin:$PATH .venv/bin/python -m tests.benchmarks.bench_serving \\
        [--duration 8] [--rounds 2] [--users 10000] [--servers ours,cookiecutter,fastapi,django-floor,bare] [--no-ssr]

(root, wrk, git, npm, PyPI; the peers are fetched and installed under
/var/tmp at run time, never into this repository.)

Servers, each with 2 worker processes, started in turn, their order flipped
every round so that drift on a shared machine hits all alike:

* ours: giga (examples/giga.yml) rendered from this repository, its image's
  ENTRYPOINT + CMD and ENV (granian WSGI, 2 workers x 4 threads,
  CONN_MAX_AGE=600 + health checks), as tests/benchmarks/bench_back.py;
* cookiecutter: the same rendered project served the way
  cookiecutter-django's production serves Django (compose/production/
  django/start with use_async: gunicorn <project>.asgi -k
  uvicorn_worker.UvicornWorker, the versions its requirements pin, in a venv
  of its own; WEB_CONCURRENCY=2, CONN_MAX_AGE=60 as its production settings);
* fastapi: full-stack-fastapi-template's backend/, with its own database and
  role on the same server, its alembic migrations, its Dockerfile's CMD
  (`fastapi run --workers N`, here 2);
* django-floor: Django alone on the same granian WSGI (harness/django_floor.py):
  no middleware, no app, no database, the health check's bytes from a plain
  view; what any Django backend can reach at best;
* bare: granian RSGI with no framework (harness/bare_serving.py): our two
  endpoints' SQL and JSON bytes through psycopg, 4 connections per worker.

Endpoints: the health check (ours: GET /api/health/, `SELECT 1` for the
public once the migrations are known applied; fastapi: /api/v1/utils/health-check/,
no database) and reading the current user with its token (ours, the bare
limit and cookiecutter: GET /api/auth/me/ with a knox token; fastapi:
GET /api/v1/users/me with its JWT). Each database holds --users users.
wrk -t2, 16 and 64 connections, --latency. CPU ms per request of the
server's processes and of PostgreSQL's come from /proc; statements per
request from pg_stat_statements.

SSR: GET / of front/ (`node build`, calling our backend's /api/health/)
against the same app whose home page's load makes no API call.

Profile: py-spy (installed in a tools venv under /var/tmp) samples our
granian workers under the authenticated read; the top costs are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from harness import load, node, peers
from harness.answers import alias, recorded
from harness.backend import Backend, http, raw_request
from harness.load import require_wrk, wrk
from harness.net import free_port, listening, serving
from harness.postgres import start_project_db
from harness.python import find_python, venv_for
from harness.render import render_example
from harness.request_cost import VARIANTS
from tests.benchmarks.bench_back import serve

CACHE = Path(os.environ.get("BENCH_SERVING_CACHE", "/var/tmp/bench-serving"))
SERVERS = ("ours", "cookiecutter", "fastapi", "django-floor", "bare")
CONNECTIONS = (16, 64)
ENDPOINTS = ("health", "me")
SERVER_ENDPOINTS = {"django-floor": ("health",)}  # no database: no token to read
# The development compose file's environment (plain HTTP), with production's
# debug and log settings: no query recording, one JSON line per request.
AS_IN_PRODUCTION = {"DJANGO_DEBUG": "0", "DJANGO_LOG_FORMAT": "json"}
WORKERS = 2


def tool(name: str, package: str) -> str:
    """`name` on PATH, else from a tools venv of the benchmark's own."""
    found = shutil.which(name)
    if found:
        return found
    venv = CACHE / "tools"
    if not (venv / "bin" / name).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "--quiet", package], check=True,
                       env={**os.environ, "UV_SYSTEM_CERTS": "1"})
    return str(venv / "bin" / name)


def load_with(url: str, duration: int, headers: dict[str, str], connections: int) -> dict:
    saved, load.CONNECTIONS = load.CONNECTIONS, connections
    try:
        return wrk(url, duration, headers)
    finally:
        load.CONNECTIONS = saved


def statements(admin) -> int:
    try:
        return int(admin.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements").fetchone()[0])
    except Exception:  # noqa: BLE001 -- not loaded: no count
        return 0


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="bench-serving-", dir="/var/tmp"))
        self.results: dict[tuple, list[dict]] = {}
        self.notes: list[str] = []

    # -- setting up the four servers on one database server -----------------------
    def setup(self) -> None:
        args = self.args
        self.project = render_example("giga", self.work / "giga")
        self.db = self.project_db = start_project_db(self.project)
        self.postmaster = int((self.db.data / "postmaster.pid").read_text().split()[0])
        hosts = {alias(recorded(self.project), "frontend"): "127.0.0.1"}
        self.backend = Backend(self.project, self.db, venv_for(self.project / "back"), hosts=hosts)
        self.backend.manage("migrate", "--noinput", check=True)
        out = self.backend.manage("shell", "-c", (
            "from personas.models import Usuario; from knox.models import AuthToken\n"
            "u = Usuario.objects.create_user('bench', 'bench@example.com', 'bench-Passw0rd!', email_verified=True)\n"
            "print(u.id, AuthToken.objects.create(u)[1])"), check=True).stdout.split()
        self.token = out[-1]
        with self.db.connect(**self.db.app) as conn:
            conn.execute(
                "INSERT INTO personas_usuario (password, is_superuser, username, first_name, last_name, email, "
                "is_staff, is_active, date_joined, email_verified) SELECT (SELECT password FROM personas_usuario "
                "WHERE username = 'bench'), false, 'user' || i, '', '', 'user' || i || '@example.com', false, true, "
                "now(), true FROM generate_series(1, %s) AS i", (args.users,))
            conn.execute("ANALYZE personas_usuario")
            self.ours_users = conn.execute("SELECT count(*) FROM personas_usuario").fetchone()[0]
        self.admin = self.db.connect(**self.db.admin, host="127.0.0.1")
        package = self.backend.compose_env["DJANGO_SETTINGS_MODULE"].partition(".")[0]
        if "cookiecutter" in args.servers:
            source = self.work / "cookiecutter-django"
            commit = peers.checkout("cookiecutter-django", source)
            self.cc_command, pins = peers.cookiecutter_stack(source, package)
            self.cc_backend = Backend(self.project, self.db, venv_for(self.project / "back", extra=tuple(pins)),
                                      hosts=hosts)
            self.notes.append(f"cookiecutter-django {commit[:10]}: {' '.join(self.cc_command)} ({', '.join(pins)})")
        if "fastapi" in args.servers:
            self.fastapi = peers.FastAPITemplate(self.work, CACHE, self.db, find_python(), tool("uv", "uv"))
            commit = self.fastapi.install()
            self.fastapi.prepare(args.users)
            ported = f"; ported to {find_python()}: {', '.join(self.fastapi.ported)}" if self.fastapi.ported else ""
            self.notes.append(f"full-stack-fastapi-template {commit[:10]}: {' '.join(self.fastapi.command(2, 0)[:4])}"
                              f"{ported}")

    @contextlib.contextmanager
    def server(self, name: str):
        """Yields (base URL, session leader pid, {endpoint: (path, headers)})."""
        ours = {"health": ("/api/health/", {}), "me": ("/api/auth/me/", {"Authorization": f"Token {self.token}"})}
        if name == "ours":
            with serve(self.backend, None, AS_IN_PRODUCTION) as (base, process):
                yield base, process.pid, ours
        elif name == "cookiecutter":
            env = {**AS_IN_PRODUCTION, "WEB_CONCURRENCY": str(WORKERS), "DB_CONN_MAX_AGE": "60"}
            with serve(self.cc_backend, self.cc_command, env) as (base, process):
                yield base, process.pid, ours
        elif name == "fastapi":
            with self.fastapi.serve(WORKERS) as (base, process):
                token = self.fastapi.token(base)
                yield base, process.pid, {"health": ("/api/v1/utils/health-check/", {}),
                                          "me": ("/api/v1/users/me", {"Authorization": f"Bearer {token}"})}
        elif name == "django-floor":
            with self.granian("django_floor", ["--interface", "wsgi", "--blocking-threads", "4"]) as (base, process):
                yield base, process.pid, {"health": ours["health"]}
        else:
            app = self.db.app
            dsn = (f"host={self.db.address} port={self.db.port} user={app['user']} password={app['password']} "
                   f"dbname={app['dbname']} application_name=bare")
            with self.granian("bare_serving", ["--interface", "rsgi"], BARE_DSN=dsn) as (base, process):
                yield base, process.pid, ours

    @contextlib.contextmanager
    def granian(self, module: str, options: list[str], **env: str):
        """harness.<module>:app on the backend's granian, WORKERS processes; yields (base URL, Popen)."""
        port = free_port()
        command = [str(self.backend.venv / "bin/granian"), *options, "--workers", str(WORKERS),
                   "--host", "127.0.0.1", "--port", str(port), f"harness.{module}:app"]
        env = {"PATH": f"{self.backend.venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8", **env}
        with serving(command, cwd=Path(__file__).resolve().parents[2], env=env, ready=listening(port),
                     timeout=60, name=module) as process:
            yield f"http://127.0.0.1:{port}", process

    # -- one measurement ----------------------------------------------------------
    def measure(self, key: tuple, url: str, headers: dict, connections: int, sessions: list[int]) -> dict:
        before = [peers.session_cpu(s) for s in sessions], peers.postgres_cpu(self.postmaster), statements(self.admin)
        result = load_with(url, self.args.duration, headers, connections)
        after = [peers.session_cpu(s) for s in sessions], peers.postgres_cpu(self.postmaster), statements(self.admin)
        n = max(result["requests"], 1)
        result["cpu"] = [1000 * (a - b) / n for a, b in zip(after[0], before[0])]
        result["db_cpu"] = 1000 * (after[1] - before[1]) / n
        result["stmts"] = (after[2] - before[2] - 2) / n  # minus the two sums themselves
        self.results.setdefault(key, []).append(result)
        print(f"  {' '.join(map(str, key)):28} {result['rps']:8.1f} req/s  p50 {result['p50']:7.2f}  "
              f"p99 {result['p99']:7.2f} ms  CPU/req {'+'.join(f'{c:.2f}' for c in result['cpu'])} / "
              f"PG {result['db_cpu']:.2f} ms  stmts/req {result['stmts']:.1f}  "
              f"non-2xx {result['non_2xx']} {result['socket_errors']}", flush=True)
        return result

    def round(self, number: int) -> None:
        order = list(self.args.servers) if number % 2 else list(reversed(self.args.servers))
        print(f"round {number}: {', '.join(order)}", flush=True)
        for name in order:
            # A fresh start per endpoint: cookiecutter's stack keeps the last run's
            # connections in its idle threads, and would start the next at PostgreSQL's limit.
            for endpoint in SERVER_ENDPOINTS.get(name, ENDPOINTS):
                with self.server(name) as (base, session, endpoints):
                    path, headers = endpoints[endpoint]
                    for _ in range(20):  # PostgreSQL may still be closing the last server's connections
                        status, body, _ = http("GET", base + path, headers=headers)
                        if status == 200:
                            break
                        time.sleep(1)
                    assert status == 200, (name, path, status, body)
                    raw = raw_request(base, "GET", path, headers=list(headers.items()))
                    self.bodies.setdefault((name, endpoint), raw[2])
                    load_with(base + path, self.args.warmup, headers, CONNECTIONS[0])
                    for connections in CONNECTIONS:
                        self.measure((name, endpoint, connections), base + path, headers, connections, [session])

    # -- SSR: front/ against the same app with no API call on its home page -----------
    def build_fronts(self) -> None:
        installed = node.install(self.project / "front", self.work / "front")
        self.fronts = {"front": node.build(installed),
                       "bare-kit": node.build(peers.bare_front(installed, self.work / "front-bare"))}

    def ssr_round(self, number: int) -> None:
        port = free_port()
        with serve(self.backend, None, AS_IN_PRODUCTION) as (api, backend_process):
            api_port = int(api.rsplit(":", 1)[1])
            order = ["front", "bare-kit"] if number % 2 else ["bare-kit", "front"]
            for name in order:
                with node.serve_front(self.project, self.fronts[name], api_port, port=port) as base:
                    session = next(int(f[3]) for pid, f in peers._stats()
                                   if os.path.realpath(f"/proc/{pid}/cwd") == str(self.fronts[name])
                                   and f[0] != "Z")
                    status, body, _ = http("GET", base + "/")
                    assert status == 200 and "ok" in body, (name, status, body[:500])
                    load_with(base + "/", self.args.warmup, {}, 16)
                    for connections in CONNECTIONS:
                        self.measure(("ssr", name, connections), base + "/", {}, connections,
                                     [session, backend_process.pid])
            port = free_port()

    # -- profiles of our two endpoints under load ----------------------------------------
    def profile(self) -> None:
        """py-spy --gil: only the thread holding the GIL is sampled, so the
        shares are of the Python CPU time, not of waits for the GIL or the DB."""
        pyspy = tool("py-spy", "py-spy")
        self.profile_lines = []
        for endpoint in ENDPOINTS:
            out = self.work / f"profile-{endpoint}.raw"
            with self.server("ours") as (base, session, endpoints):
                path, headers = endpoints[endpoint]
                master = min(pid for pid, f in peers._stats() if int(f[3]) == session
                             and b"granian" in Path(f"/proc/{pid}/cmdline").read_bytes())
                load_with(base + path, self.args.warmup, headers, 16)
                spy = subprocess.Popen([pyspy, "record", "--pid", str(master), "--subprocesses", "--nonblocking",
                                        "--gil", "--format", "raw", "--rate", "250", "--duration",
                                        str(self.args.duration), "--output", str(out)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                time.sleep(1)
                load_with(base + path, self.args.duration, headers, 16)
                _, err = spy.communicate(timeout=120)
            if not out.exists():
                print(f"py-spy failed: {err[-2000:]}")
                continue
            keep = CACHE / f"profile-{endpoint}-{date.today()}.raw"
            shutil.copy(out, keep)
            categories, leaves = peers.summarise_profile(out)
            self.profile_lines += [f"py-spy --gil, our {path} under wrk -c16 ({keep}); share of samples, inclusive:"]
            self.profile_lines += [f"  {share:6.1%}  {name}" for name, share in categories]
            self.profile_lines += ["top self time:"] + [f"  {share:6.1%}  {frame}" for frame, share in leaves]

    # -- where a request's CPU goes: in-process, with parts of it switched off ---------------
    def costs(self) -> None:
        repo = Path(__file__).resolve().parents[2]
        env = {**AS_IN_PRODUCTION, "BENCH_TOKEN": self.token, "PYTHONPATH": f"{self.backend.dir}:{repo}"}
        self.cost_runs: dict[str, list[dict]] = {}
        for number in range(1, self.args.rounds + 1):
            order = list(VARIANTS) if number % 2 else list(reversed(VARIANTS))
            for variant in order:
                out = self.backend.run(str(self.backend.venv / "bin/python"), "-m", "harness.request_cost", variant,
                                       env=env, check=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                self.cost_runs.setdefault(variant, []).append(result)
                print(f"  in-process, {variant}: health {result['health']:.3f}, me {result['me']:.3f} ms CPU",
                      flush=True)

    def report_costs(self) -> None:
        if not getattr(self, "cost_runs", None):
            return
        cpu = {variant: {e: statistics.median(r[e] for r in runs) for e in ("health", "me")}
               for variant, runs in self.cost_runs.items()}
        shipped = cpu["as shipped"]
        print("\nIn-process CPU per request (harness.request_cost: the WSGI app called directly, no server), "
              f"median of {self.args.rounds} rounds:\n")
        print("| switched off | health ms | health saved | me ms | me saved |")
        print("|---|---|---|---|---|")
        for variant, ms in cpu.items():
            print(f"| {variant} | {ms['health']:.3f} | {1 - ms['health'] / shipped['health']:.0%} | "
                  f"{ms['me']:.3f} | {1 - ms['me'] / shipped['me']:.0%} |")

    # -- the table ---------------------------------------------------------------------
    def report(self) -> None:
        med = lambda key, field: statistics.median(r[field] for r in self.results[key])  # noqa: E731

        def ratio(a: tuple, b: tuple) -> float | None:
            if a not in self.results or b not in self.results:
                return None
            return statistics.median(x["rps"] / y["rps"] for x, y in zip(self.results[a], self.results[b]))

        cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                    if l.startswith("model name")), platform.processor())
        print(f"\n{date.today()}, {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
              f"load average {os.getloadavg()[0]:.1f}; PostgreSQL {self.db.major}; {self.ours_users} users in "
              f"personas_usuario; wrk -t2 -d{self.args.duration}s; medians of {self.args.rounds} rounds; "
              f"ratios: median of the per-round ratios")
        for note in self.notes:
            print(f"  {note}")
        print("\n| server | endpoint | conns | req/s | p50 ms | p99 ms | CPU ms/req server | CPU ms/req PostgreSQL "
              "| SQL statements/req | vs bare | ours vs it |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for endpoint in ("health", "me"):
            for connections in CONNECTIONS:
                for name in self.args.servers:
                    key = (name, endpoint, connections)
                    if key not in self.results:
                        continue
                    vs_bare = ratio(key, ("bare", endpoint, connections))
                    ours_vs = ratio(("ours", endpoint, connections), key) if name != "ours" else None
                    print(f"| {name} | {endpoint} | {connections} | {med(key, 'rps'):.0f} | {med(key, 'p50'):.2f} | "
                          f"{med(key, 'p99'):.2f} | "
                          f"{statistics.median(r['cpu'][0] for r in self.results[key]):.2f} | "
                          f"{med(key, 'db_cpu'):.2f} | {med(key, 'stmts'):.1f} | "
                          f"{f'{vs_bare:.0%}' if vs_bare else '-'} | {f'{ours_vs:.2f}x' if ours_vs else '-'} |")
        for connections in CONNECTIONS:
            key = ("ssr", "front", connections)
            if key in self.results:
                bare = ("ssr", "bare-kit", connections)
                print(f"| SSR front/ (+ our backend) | GET / | {connections} | {med(key, 'rps'):.0f} | "
                      f"{med(key, 'p50'):.2f} | {med(key, 'p99'):.2f} | "
                      f"{statistics.median(r['cpu'][0] for r in self.results[key]):.2f} node + "
                      f"{statistics.median(r['cpu'][1] for r in self.results[key]):.2f} backend | "
                      f"{med(key, 'db_cpu'):.2f} | {med(key, 'stmts'):.1f} | - | - |")
                print(f"| SSR bare SvelteKit (no API call) | GET / | {connections} | {med(bare, 'rps'):.0f} | "
                      f"{med(bare, 'p50'):.2f} | {med(bare, 'p99'):.2f} | "
                      f"{statistics.median(r['cpu'][0] for r in self.results[bare]):.2f} node | "
                      f"{med(bare, 'db_cpu'):.2f} | - | {ratio(key, bare):.0%} (front/ vs it) | - |")
        print("\nTargets:")
        for connections in CONNECTIONS:
            for endpoint, share in (("health", 0.50), ("me", 0.35)):
                ours = ("ours", endpoint, connections)
                cc = ratio(ours, ("cookiecutter", endpoint, connections))
                if cc is not None:
                    p99 = med(ours, "p99") <= med(("cookiecutter", endpoint, connections), "p99")
                    print(f"  c{connections} {endpoint}: vs cookiecutter {cc:.2f}x (>= 1.2x: "
                          f"{'met' if cc >= 1.2 else 'NOT met'}), p99 no worse: {'met' if p99 else 'NOT met'}")
                fa = ratio(ours, ("fastapi", endpoint, connections))
                if fa is not None and endpoint == "me":
                    print(f"  c{connections} me: vs fastapi {fa:.2f}x (>= 1.0x: {'met' if fa >= 1 else 'NOT met'})")
                bare = ratio(ours, ("bare", endpoint, connections))
                if bare is not None:
                    print(f"  c{connections} {endpoint}: {bare:.0%} of the bare limit (>= {share:.0%}: "
                          f"{'met' if bare >= share else 'NOT met'})")
        for line in getattr(self, "profile_lines", []):
            print(line)
        self.report_costs()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run (default 8)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per endpoint and start")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--users", type=int, default=10_000, help="users added to each database")
    parser.add_argument("--servers", default=",".join(SERVERS), help="subset of " + ",".join(SERVERS))
    parser.add_argument("--no-ssr", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-costs", action="store_true", help="no in-process CPU ledger (harness.request_cost)")
    args = parser.parse_args()
    args.servers = [s for s in args.servers.split(",") if s]
    require_wrk()
    CACHE.mkdir(parents=True, exist_ok=True)
    bench = Bench(args)
    bench.bodies = {}
    started = time.monotonic()
    try:
        bench.setup()
        if not args.no_ssr:
            bench.build_fronts()
        print(f"set up in {time.monotonic() - started:.0f} s", flush=True)
        for number in range(1, args.rounds + 1):
            bench.round(number)
            if not args.no_ssr:
                bench.ssr_round(number)
        if "bare" in args.servers and "django-floor" in args.servers:
            assert bench.bodies[("bare", "health")] == bench.bodies[("django-floor", "health")]
        if "bare" in args.servers and "ours" in args.servers:
            for endpoint in ("health", "me"):
                assert bench.bodies[("bare", endpoint)] == bench.bodies[("ours", endpoint)], \
                    (endpoint, bench.bodies[("bare", endpoint)], bench.bodies[("ours", endpoint)])
        if not args.no_profile:
            bench.profile()
        if not args.no_costs:
            bench.costs()
        bench.report()
        print(f"\ntook {(time.monotonic() - started) / 60:.1f} min")
    finally:
        with contextlib.suppress(Exception):
            bench.admin.close()
        with contextlib.suppress(Exception):
            bench.db.destroy()
        shutil.rmtree(bench.work, ignore_errors=True)


if __name__ == "__main__":
    main()
