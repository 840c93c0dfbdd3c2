"""Run a rendered project's back/ natively, the way its container runs it.

No Docker engine here, so the backend runs as a process on this machine,
with what the container would have:

* Python >= 3.12 in a virtualenv with the rendered requirements-dev.txt
  (cached by the requirements' contents);
* the environment compose gives the container: the Dockerfile's ENV lines of
  the target stage, overridden by back/.env parsed exactly like compose's
  env_file (harness.dotenv);
* the image's PATH: every file the Dockerfile COPYs into /usr/local/bin (the
  entrypoint, the healthcheck) is found under the same name;
* the network view: DB_HOST stays the rendered service name (e.g. giga-db),
  resolved through a private /etc/hosts (harness.hosts) to the address where
  the test's PostgreSQL listens; only DB_PORT changes, to that server's port;
  other compose names (e.g. the frontend's alias) may be mapped the same way;
* the file system view: an empty /var/lib, since this machine's own
  PostgreSQL packages (/var/lib/postgresql) are no part of the container.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
from http.client import HTTPConnection
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from . import dotenv
from .hosts import with_hosts

VENV_CACHE = Path(os.environ.get("BACKEND_VENV_CACHE", "/var/tmp/isolated-db-template/back-venvs"))


# ---------------------------------------------------------------------------
# Python and the virtualenv
# ---------------------------------------------------------------------------
def _version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    if out.returncode != 0:
        return None
    major, minor = map(int, out.stdout.split())
    return major, minor


def find_python(minimum: tuple[int, int] = (3, 12)) -> str:
    """An interpreter Django 6.1 runs on: $BACKEND_PYTHON, else the newest
    3.12+ found on PATH or in pyenv's versions."""
    candidates = [os.environ.get("BACKEND_PYTHON", "")]
    candidates += [shutil.which(f"python3.{minor}") or "" for minor in (14, 13, 12)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")), reverse=True)
    candidates += ["/usr/local/bin/python3", "/usr/bin/python3"]
    for candidate in filter(None, candidates):
        version = _version(candidate)
        if version and version >= minimum:
            return candidate
    raise RuntimeError(f"no Python >= {minimum[0]}.{minimum[1]} found; set BACKEND_PYTHON")


def venv_for(back: Path, extra: tuple[str, ...] = ()) -> Path:
    """A virtualenv with back/requirements-dev.txt (and `extra` requirement
    specifiers) installed; reused while all of them are the same."""
    requirements = [back / "requirements.txt", back / "requirements-dev.txt"]
    python = find_python()
    digest = hashlib.sha256()
    digest.update((python + str(_version(python))).encode())
    for path in requirements:
        digest.update(path.read_bytes())
    digest.update(repr(sorted(extra)).encode())
    venv = VENV_CACHE / digest.hexdigest()[:16]
    marker = venv / ".installed"
    if marker.exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv")
    env = {**os.environ, "UV_SYSTEM_CERTS": "1", "UV_PYTHON_DOWNLOADS": "never"}
    if uv:
        subprocess.run([uv, "venv", "--quiet", "--python", python, str(venv)], check=True, env=env)
        subprocess.run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin/python"),
                        "-r", str(back / "requirements-dev.txt"), *extra], check=True, env=env, cwd=back)
    else:
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet",
                        "-r", str(back / "requirements-dev.txt"), *extra], check=True, cwd=back)
    subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
    marker.write_text(python + "\n")
    return venv


# ---------------------------------------------------------------------------
# The Dockerfile: stages, ENV, COPY into /usr/local/bin, ENTRYPOINT, CMD
# ---------------------------------------------------------------------------
@dataclass
class Stage:
    name: str
    env: dict[str, str] = field(default_factory=dict)
    bin_files: dict[str, str] = field(default_factory=dict)  # name in /usr/local/bin -> source in back/
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    workdir: str = "/"
    user: str = "root"
    healthcheck: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)  # this stage's own RUN commands


def _instructions(text: str) -> list[tuple[str, str]]:
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        logical.append(current.strip())
        current = ""
    result = []
    for item in logical:
        keyword, _, rest = item.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def _exec_form(value: str) -> list[str]:
    value = value.strip()
    return json.loads(value) if value.startswith("[") else ["/bin/sh", "-c", value]


def dockerfile_stages(dockerfile: Path) -> dict[str, Stage]:
    """Every stage of the Dockerfile, with what it inherits; the key "" is the last."""
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for keyword, rest in _instructions(dockerfile.read_text()):
        if keyword == "FROM":
            words = rest.split()
            words = [w for w in words if not w.startswith("--")]
            parent = stages.get(words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else f"stage{len(stages)}"
            stage = Stage(name=name)
            if parent:
                stage.env = dict(parent.env)
                stage.bin_files = dict(parent.bin_files)
                stage.entrypoint = list(parent.entrypoint)
                stage.cmd = list(parent.cmd)
                stage.workdir = parent.workdir
                stage.user = parent.user
                stage.healthcheck = list(parent.healthcheck)
            stages[name] = stage
            stages[""] = stage
        elif stage is None:
            continue
        elif keyword == "ENV":
            for word in shlex.split(rest):
                key, _, value = word.partition("=")
                stage.env[key] = value
        elif keyword == "COPY":
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            *sources, destination = words
            if destination.startswith("/usr/local/bin/") and len(sources) == 1:
                stage.bin_files[destination.rsplit("/", 1)[1]] = sources[0]
        elif keyword == "ENTRYPOINT":
            stage.entrypoint = _exec_form(rest)
        elif keyword == "CMD":
            stage.cmd = _exec_form(rest)
        elif keyword == "WORKDIR":
            stage.workdir = rest
        elif keyword == "USER":
            stage.user = rest
        elif keyword == "RUN":
            stage.runs.append(rest)
        elif keyword == "HEALTHCHECK":
            words = shlex.split(rest)
            if "CMD" in words:
                stage.healthcheck = _exec_form(rest.split("CMD", 1)[1])
    return stages


# ---------------------------------------------------------------------------
# The backend process
# ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend:
    """back/ of `project`, talking to the PostgreSQL `db` (harness.postgres.PostgresServer)."""

    def __init__(self, project: Path, db, venv: Path, target: str = "", hide_var_lib: bool = True,
                 hosts: dict[str, str] | None = None):
        self.project = project
        self.hosts = hosts or {}
        self.dir = project / "back"
        self.db = db
        self.venv = venv
        self.stage = dockerfile_stages(self.dir / "Dockerfile")[target]
        self.dotenv = dotenv.load(self.dir / ".env")
        self.db_service = self.dotenv["DB_HOST"]
        self.hide_var_lib = hide_var_lib
        self.bin = Path(tempfile.mkdtemp(prefix="back-bin-"))
        for name, source in self.stage.bin_files.items():
            (self.bin / name).symlink_to(self.dir / source)
        self.bin.chmod(0o755)

    # -- the container's environment -------------------------------------
    def environment(self, **overrides: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.bin}:{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "VIRTUAL_ENV": str(self.venv),
        }
        env.update(self.stage.env)  # the image's ENV
        env.update(self.dotenv)  # compose's env_file wins over the image
        env["DB_PORT"] = str(self.db.port)  # the only change: the test server's port
        env.update(overrides)
        return env

    def prefix(self) -> list[str]:
        """unshare: DB_HOST resolves to the server; /var/lib is empty."""
        prefix = with_hosts({**self.hosts, self.db_service: self.db.address})
        if self.hide_var_lib:
            prefix += ["sh", "-c", 'mount -t tmpfs -o mode=0755 tmpfs /var/lib && exec "$@"', "sh"]
        return prefix

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300,
            check: bool = False, **kwargs) -> subprocess.CompletedProcess:
        """`docker exec <backend> <args>`: WORKDIR, environment, no entrypoint."""
        result = subprocess.run([*self.prefix(), *args], cwd=self.dir, env=self.environment(**(env or {})),
                                capture_output=True, text=True, timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise AssertionError(f"{shlex.join(args)} exited {result.returncode}\n"
                                 f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result

    def manage(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("python", "manage.py", *args, **kwargs)

    @contextlib.contextmanager
    def serve(self, port: int | None = None, env: dict[str, str] | None = None, ready_timeout: float = 60):
        """The container's main process: ENTRYPOINT + CMD of the stage, on
        PORT; yields (base URL, Popen). Waits until it answers HTTP."""
        port = port or free_port()
        # The published port, wherever the command names it (runserver 0.0.0.0:<port>).
        published = self.stage.env.get("PORT")
        command = [arg.replace(f":{published}", f":{port}") if published else arg
                   for arg in [*self.stage.entrypoint, *self.stage.cmd]]
        log = tempfile.NamedTemporaryFile(prefix="backend-", suffix=".log", delete=False)
        # The image's port variables (PORT, GRANIAN_PORT, ...) all say the
        # published port; here they all say the free port chosen.
        ports = {name: str(port) for name, value in self.stage.env.items()
                 if name == "PORT" or (name.endswith("_PORT") and value == self.stage.env.get("PORT"))}
        process = subprocess.Popen([*self.prefix(), *command], cwd=self.dir,
                                   env=self.environment(**{"PORT": str(port), **ports, **(env or {})}),
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        process.log_path = Path(log.name)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + ready_timeout
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"backend exited {process.returncode}:\n{process.log_path.read_text()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"backend not listening after {ready_timeout}s:\n"
                                             f"{process.log_path.read_text()}") from None
                    time.sleep(0.2)
            yield base, process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            log.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is the answer; urllib then raises it as HTTPError


_OPENER = urllib.request.build_opener(_NoRedirect)


def http(method: str, url: str, body=None, token: str | None = None, headers: dict | None = None,
         timeout: float = 10, raw: bytes | None = None) -> tuple[int, dict | str, float]:
    """(status, JSON body or text, seconds taken). Redirects are not followed."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    started = time.monotonic()
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status, payload, content_type = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, payload, content_type = error.code, error.read(), error.headers.get("Content-Type", "")
    elapsed = time.monotonic() - started
    text = payload.decode("utf-8", errors="replace")
    if "json" in content_type and text:
        return status, json.loads(text), elapsed
    return status, text, elapsed


def raw_request(base: str, method: str, path: str, body: bytes | None = None,
                headers: list[tuple[str, bytes | str]] | None = None, source: str | None = None,
                timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """One request written as given: header values are sent byte for byte
    (control characters included), nothing is normalised or added but Host
    and Content-Length. `source`: the client's address (any 127/8 address
    reaches a server listening on loopback). (status, headers, body)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    connection = HTTPConnection(host, int(port), timeout=timeout,
                                            source_address=(source, 0) if source else None)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers or []:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
