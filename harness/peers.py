"""The peers of tests/benchmarks/bench_serving.py, fetched and installed at run
time under a work directory (never into this repository):

* cookiecutter-django's production serving stack, read from its
  compose/production/django/start and requirements/*.txt;
* full-stack-fastapi-template's backend, its own venv, database and role on
  the benchmark's PostgreSQL, its migrations, its CMD;
* a bare SvelteKit page: the rendered front/ with the home page's API call
  removed;
plus the CPU accounting of /proc and the summary of a py-spy profile.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from .net import free_port, listening, serving

SOURCES = {
    "cookiecutter-django": "https://github.com/cookiecutter/cookiecutter-django",
    "full-stack-fastapi-template": "https://github.com/fastapi/full-stack-fastapi-template",
}
MIRRORS = Path(os.environ.get("PEER_MIRRORS", "/work/.mirror"))
UV_ENV = {**os.environ, "UV_SYSTEM_CERTS": "1", "UV_PYTHON_DOWNLOADS": "never"}


def checkout(name: str, destination: Path) -> str:
    """The peer's newest tree in `destination` (a local mirror's HEAD, else a
    shallow clone); returns its commit."""
    owner = SOURCES[name].split("/")[-2]
    mirror = MIRRORS / f"{owner}+{name}" / "repo"
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    if mirror.exists():
        git = ["git", f"--git-dir={mirror}"]
        archive = subprocess.run([*git, "archive", "HEAD"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)
    else:
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", SOURCES[name], str(destination)], check=True)
        git = ["git", "-C", str(destination)]
    return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


# -- cookiecutter-django ------------------------------------------------------
def cookiecutter_stack(source: Path, package: str) -> tuple[list[str], list[str]]:
    """(command, pins) of cookiecutter-django's production Django with
    use_async: its start script's gunicorn line, on `package`'s asgi.py, and
    the exact versions its requirements pin for it."""
    slug = source / "{{cookiecutter.project_slug}}"
    start = (slug / "compose/production/django/start").read_text()
    line = next(line.strip() for line in start.splitlines() if "gunicorn config.asgi" in line)
    words = line.removeprefix("exec ").split()
    words = [w.replace("config.asgi", f"{package}.asgi") for w in words if not w.startswith("--chdir")]
    command = [w.replace("0.0.0.0:5000", "0.0.0.0:{PORT}") for w in words]
    requirements = (slug / "requirements/production.txt").read_text() + (slug / "requirements/base.txt").read_text()
    pins = [re.match(rf"^({re.escape(name)}(\[\w+\])?==[\w.]+)", line, re.M).group(1)
            for name in ("gunicorn", "uvicorn", "uvicorn-worker")
            for line in requirements.splitlines() if line.startswith(name + "=") or line.startswith(name + "[")]
    return command, pins


# -- full-stack-fastapi-template ------------------------------------------------
class FastAPITemplate:
    """Its backend/ on `python`, with a database of its own on `db`."""

    DB = "fastapi_app"
    PASSWORD = "fastapi-bench-Passw0rd"
    SUPERUSER = "admin@example.com"
    SUPERUSER_PASSWORD = "fastapi-bench-Admin-0"

    def __init__(self, work: Path, cache: Path, db, python: str, uv: str):
        self.work, self.db, self.python, self.uv = work, db, python, uv
        self.src = work / "fastapi-src"
        self.backend = self.src / "backend"
        self.venv = cache / "fastapi-venv"  # reused while its requirements are the same
        self.ported: list[str] = []

    def install(self) -> str:
        commit = checkout("full-stack-fastapi-template", self.src)
        requirements = self.work / "fastapi-requirements.txt"
        subprocess.run([self.uv, "export", "--quiet", "--frozen", "--package", "app", "--no-dev", "--no-hashes",
                        "--no-emit-workspace", "-o", str(requirements)], cwd=self.src, env=UV_ENV, check=True)
        marker = self.venv / ".installed"
        if not marker.exists() or marker.read_text() != requirements.read_text():
            shutil.rmtree(self.venv, ignore_errors=True)
            subprocess.run([self.uv, "venv", "--quiet", "--python", self.python, str(self.venv)], env=UV_ENV, check=True)
            subprocess.run([self.uv, "pip", "install", "--quiet", "--python", str(self.venv / "bin/python"),
                            "-r", str(requirements)], env=UV_ENV, check=True)
            marker.write_text(requirements.read_text())
        self._port_to_python()
        # The image copies the built frontend there; app.frontend() insists on the directory.
        (self.backend / "app/frontend").mkdir(exist_ok=True)
        (self.backend / "app/frontend/index.html").write_text("<!doctype html><title>app</title>\n")
        return commit

    def _port_to_python(self) -> None:
        """It targets Python 3.14; on an older one, the two 3.14-only spellings
        it uses are rewritten to their equivalents (PEP 758's unparenthesised
        except, PEP 649's forward reference), nothing else."""
        version = subprocess.run([self.python, "-c", "import sys; print(sys.version_info >= (3, 14))"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        if version == "True":
            return
        for path in self.backend.joinpath("app").rglob("*.py"):
            text = path.read_text()
            new = re.sub(r"^(\s*except) (\w+), (\w+):$", r"\1 (\2, \3):", text, flags=re.M)
            if path.name == "models.py":
                new = re.sub(r": list\[(Item)\] = Relationship", r': list["\1"] = Relationship', new)
            if new != text:
                path.write_text(new)
                self.ported.append(str(path.relative_to(self.src)))

    def environment(self) -> dict[str, str]:
        return {"PATH": f"{self.venv / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
                "LANG": "C.UTF-8", "PYTHONPATH": str(self.backend), "PROJECT_NAME": "Bench", "SECRET_KEY": "fastapi-bench-secret-key-0123456789",
                "FIRST_SUPERUSER": self.SUPERUSER, "FIRST_SUPERUSER_PASSWORD": self.SUPERUSER_PASSWORD,
                "DATABASE_URL": f"postgresql://{self.DB}:{self.PASSWORD}@127.0.0.1:{self.db.port}/{self.DB}"}

    def prepare(self, users: int) -> None:
        """Role and database, then its prestart.sh's steps (alembic, initial
        data), then `users` more users sharing the superuser's hash."""
        with self.db.connect(**self.db.admin, host="127.0.0.1") as conn:
            conn.execute(f"CREATE ROLE {self.DB} LOGIN PASSWORD '{self.PASSWORD}'")
            conn.execute(f"CREATE DATABASE {self.DB} OWNER {self.DB}")
        for step in (["alembic", "upgrade", "head"], ["python", "app/initial_data.py"]):
            result = subprocess.run(step, cwd=self.backend, env=self.environment(), capture_output=True, text=True)
            if result.returncode:
                raise RuntimeError(f"{' '.join(step)} exited {result.returncode}:\n{result.stderr[-3000:]}")
        with self.db.connect(self.DB, self.PASSWORD, self.DB, host="127.0.0.1") as conn:
            conn.execute(
                'INSERT INTO "user" (id, email, is_active, is_superuser, full_name, hashed_password, created_at) '
                "SELECT gen_random_uuid(), 'user' || i || '@example.com', true, false, 'User ' || i, "
                '(SELECT hashed_password FROM "user" LIMIT 1), now() FROM generate_series(1, %s) AS i', (users,))
            conn.execute('ANALYZE "user"')

    def command(self, workers: int, port: int) -> list[str]:
        """The Dockerfile's CMD (`fastapi run --workers 4`) with `workers`, on `port`."""
        line = next(l for l in (self.src / "backend/Dockerfile").read_text().splitlines() if l.startswith("CMD"))
        cmd = json.loads(line[3:])
        cmd[cmd.index("--workers") + 1] = str(workers)
        return [*cmd, "--host", "127.0.0.1", "--port", str(port)]

    @contextlib.contextmanager
    def serve(self, workers: int = 2):
        """Yields (base URL, Popen) of its CMD with `workers` workers."""
        port = free_port()
        with serving(self.command(workers, port), cwd=self.backend, env=self.environment(),
                     ready=listening(port), timeout=60, name="fastapi") as process:
            yield f"http://127.0.0.1:{port}", process

    def token(self, base: str) -> str:
        import urllib.parse
        import urllib.request
        data = urllib.parse.urlencode({"username": self.SUPERUSER, "password": self.SUPERUSER_PASSWORD}).encode()
        with urllib.request.urlopen(f"{base}/api/v1/login/access-token", data=data, timeout=10) as response:
            return json.loads(response.read())["access_token"]


# -- a bare SvelteKit page ------------------------------------------------------
def bare_front(installed: Path, destination: Path) -> Path:
    """A copy of the installed front/ whose home page's load returns what it
    returns when the API says ok, without calling it; `npm run build` in it."""
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(installed, destination, ignore=shutil.ignore_patterns("node_modules", "build", ".svelte-kit"))
    (destination / "node_modules").symlink_to(installed / "node_modules")
    (destination / "src/routes/+page.server.ts").write_text(
        "import type { PageServerLoad } from './$types';\n\n"
        "export const load: PageServerLoad = async () => {\n"
        "\treturn { status: { api: 'ok', database: 'ok', detail: null } as const };\n};\n")
    return destination


# -- CPU from /proc ---------------------------------------------------------------
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stats():
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        yield int(stat.parent.name), text[text.rindex(")") + 2:].split()


def session_cpu(session: int) -> float:
    """CPU seconds of every process of a session (live ones and what they reaped)."""
    return sum(int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
               for _, f in _stats() if int(f[3]) == session) / CLOCK_TICKS


def postgres_cpu(postmaster: int) -> float:
    """CPU seconds of the postmaster, its reaped backends and its live ones."""
    total = 0
    for pid, f in _stats():
        if pid == postmaster:
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        elif int(f[1]) == postmaster:
            total += int(f[11]) + int(f[12])
    return total / CLOCK_TICKS


# -- py-spy's collapsed stacks, summarised -----------------------------------------
CATEGORIES = {  # inclusive: the samples with such a frame anywhere on the stack
    "DRF APIView.initial (authentication, permissions, throttles)": r"initial \(rest_framework/views",
    "  knox token check (authenticate_credentials)": r"authenticate_credentials \(",
    "    SHA-512 hash_token": r"hash_token \(",
    "DB driver (psycopg send/wait/fetch)": r"\(psycopg/",
    "  CONN_HEALTH_CHECKS ping (is_usable)": r"is_usable \(",
    "Django ORM execute_sql (compiling + the driver under it)": r"\(django/db/models/sql/compiler",
    "DRF serializer (.data)": r"data \(rest_framework/serializers",
    "DRF JSONRenderer.render": r"render \(rest_framework/renderers",
    "logging (the request's log line)": r"\(logging/__init__",
    "prometheus_client (metrics)": r"\(prometheus_client/",
    "request_started/finished signals (connection checks)": r"send \(django/dispatch",
    "middleware around the view (Django's MiddlewareMixin)": r"__call__ \(django/utils/deprecation",
    "  RequestLogMiddleware (the log line and the metrics)": r"observability\.py",
    "    structlog (formatting the line)": r"\(structlog/",
    "URL resolving": r"resolve \(django/urls",
}


def summarise_profile(raw: Path, top: int = 12) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(share of the samples with Python frames per CATEGORY, inclusive; top
    self-time frames) from py-spy's --format raw output."""
    samples, inclusive, leaves = 0, Counter(), Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        if not frames:  # no Python frame: the thread is in granian's Rust code
            continue
        samples += n
        leaves[re.sub(r":\d+\)$", ")", frames[-1])] += n
        for name, pattern in CATEGORIES.items():
            if re.search(pattern, stack):
                inclusive[name] += n
    samples = samples or 1
    return ([(name, inclusive[name] / samples) for name in CATEGORIES],
            [(frame, n / samples) for frame, n in leaves.most_common(top)])
