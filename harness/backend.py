"""Run a rendered project's back/ natively, the way its container runs it.

The backend runs as a process on this machine, for speed and for the many
answer sets the docker tier (test_docker_*.py, which runs its image) cannot
afford, with what the container would have:

* Python >= 3.12 in a virtualenv with the rendered requirements-dev.txt
  (harness.python);
* the environment compose gives the container: the Dockerfile's ENV lines of
  the target stage, overridden by the backend service's env_file (back/.env,
  parsed exactly like compose's, harness.dotenv) and `environment:` in
  docker-compose.dev.yml (harness.compose.service_environment);
* the image's PATH: every file the Dockerfile COPYs into /usr/local/bin (the
  entrypoint, the healthcheck) is found under the same name, executable;
* the network view: DB_HOST stays the rendered service name (e.g. giga-db),
  resolved through a private /etc/hosts (harness.hosts) to the address where
  the test's PostgreSQL listens; only DB_PORT changes, to that server's port;
  other compose names (e.g. the frontend's alias) may be mapped the same way;
* the file system view: an empty /var/lib, since this machine's own
  PostgreSQL packages (/var/lib/postgresql) are no part of the container.
"""

from __future__ import annotations

import contextlib
from http.client import HTTPConnection
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import compose
from .dockerfile import dockerfile_stages
from .hosts import with_hosts
from .net import exchange, free_port, listening, serving


class Backend:
    """back/ of `project`, talking to the PostgreSQL `db` (harness.postgres.PostgresServer)."""

    def __init__(self, project: Path, db, venv: Path, target: str = "", hide_var_lib: bool = True,
                 hosts: dict[str, str] | None = None, compose_file: str = "docker-compose.dev.yml"):
        self.project = project
        self.hosts = hosts or {}
        self.dir = project / "back"
        self.db = db
        self.venv = venv
        self.stage = dockerfile_stages(self.dir / "Dockerfile")[target]
        self.compose_file = compose_file
        self.compose_env = compose.service_environment(project, compose_file, "backend")
        self.db_service = self.compose_env["DB_HOST"]
        self.hide_var_lib = hide_var_lib
        self.bin = Path(tempfile.mkdtemp(prefix="back-bin-"))
        for name, source in self.stage.bin_files.items():
            # COPY --chmod=0755: executable in the image whatever its mode in back/
            shutil.copy(self.dir / source, self.bin / name)
            (self.bin / name).chmod(0o755)
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
        env.update(self.compose_env)  # compose's env_file and environment win over the image
        env["DB_PORT"] = str(self.db.port)  # the only change: the test server's port
        if "PROMETHEUS_MULTIPROC_DIR" in env:
            # In the container's own /tmp: not shared with the other backends of this machine.
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.bin / "prometheus")
        env.update(overrides)
        return env

    def port_env(self, port: int) -> dict[str, str]:
        """The image's port variables (PORT, GRANIAN_PORT, ...) all say the
        published port; here they all say `port`."""
        published = self.stage.env.get("PORT")
        return {"PORT": str(port), **{name: str(port) for name, value in self.stage.env.items()
                                      if name.endswith("_PORT") and value == published}}

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
    def serve(self, port: int | None = None, env: dict[str, str] | None = None, ready_timeout: float = 60,
              host: str = "127.0.0.1", log: Path | None = None):
        """The container's main process: ENTRYPOINT + CMD of the stage, on
        PORT; yields (base URL, Popen) once it listens on `host` (the
        process's own address, if `env` gives it one: GRANIAN_HOST...); its
        output goes to `log`, if given."""
        port = port or free_port()
        # The published port, wherever the command names it (runserver 0.0.0.0:<port>).
        published = self.stage.env.get("PORT")
        command = [arg.replace(f":{published}", f":{port}") if published else arg
                   for arg in [*self.stage.entrypoint, *self.stage.cmd]]
        with serving([*self.prefix(), *command], cwd=self.dir,
                     env=self.environment(**{**self.port_env(port), **(env or {})}),
                     ready=listening(port, host), timeout=ready_timeout, name="backend", log=log) as process:
            yield f"http://{host}:{port}", process


    @contextlib.contextmanager
    def work(self, env: dict[str, str] | None = None):
        """The compose file's `worker` service: the image's ENTRYPOINT and the
        service's command (`manage.py db_worker`), which sends the mails the
        backend queues. Yields the Popen once it started."""
        command = compose.load(self.project / self.compose_file)["services"]["worker"]["command"]
        own = {name: value for name, value in
               compose.service_environment(self.project, self.compose_file, "worker").items()
               if self.compose_env.get(name) != value}
        environment = self.environment(**own, **(env or {}))
        if "PROMETHEUS_MULTIPROC_DIR" in environment:  # another container: another /tmp
            environment["PROMETHEUS_MULTIPROC_DIR"] = str(self.bin / "prometheus-worker")
        with serving([*self.prefix(), *self.stage.entrypoint, *command], cwd=self.dir,
                     env=environment, ready=lambda: True, timeout=60, name="worker") as process:
            yield process


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
    (unless `headers` has one) and Content-Length. `source`: the client's address (any 127/8 address
    reaches a server listening on loopback). (status, headers, body)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    connection = HTTPConnection(host, int(port), timeout=timeout, source_address=(source, 0) if source else None)
    headers = headers or []
    return exchange(connection, method, path, headers, body,
                    skip_host=any(name.lower() == "host" for name, _ in headers))
