"""A `docker` command for the generated scripts (scripts/verify), with no
Docker engine.

It replaces only the docker CLI; what answers is the real native stack:

* `docker exec <backend> CMD...`: harness.backend.Backend.run, i.e. the
  rendered back/ run natively against the real PostgreSQL, with the served
  container's port variables (so its `docker-healthcheck` reaches it);
* `docker exec <db> psql ...`: the real psql, as the server's user, with the
  DB container's environment (env_file and environment:), over the server's Unix socket;
* `docker inspect --format F <container>`: the processes' real state: the DB
  is running while its postmaster is, and its health is the rendered compose
  healthcheck run now (on the test server's port); the backend is running while its served process is,
  and started when that process did;
* `docker network inspect --format F <network>`: the compose files' topology
  (harness.compose) as after `make db-up up`, among the containers running;
* `docker restart <db>`: the real server stopped and started again.

Only the subcommands and --format strings scripts/verify uses are known;
anything else exits 2 saying so, so a script that starts using more fails
here until the shim learns it. `installed()` puts an executable `docker` first
on a PATH; it sends each argv to this process over a Unix socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socketserver
import sys
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path

from . import compose
from .answers import recorded
from .backend import Backend
from .postgres import PostgresServer, psql_binary

HEALTH = "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"
STARTED = "{{.State.StartedAt}} {{.RestartCount}}"
MEMBERS = "{{range .Containers}}{{println .Name}}{{end}}"

CLIENT = """#!{python}
# docker, for tests: forwards argv to harness.docker_shim (see there).
import json, socket, sys
with socket.socket(socket.AF_UNIX) as s:
    s.connect({socket!r})
    s.sendall(json.dumps(sys.argv[1:]).encode() + b"\\n")
    answer = json.loads(s.makefile().readline())
sys.stdout.write(answer["stdout"])
sys.stderr.write(answer["stderr"])
sys.exit(answer["rc"])
"""


def process_started(pid: int) -> str:
    """When process `pid` started, as Docker writes State.StartedAt."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("btime "))
    started = boot + ticks / os.sysconf("SC_CLK_TCK")
    return datetime.fromtimestamp(started, timezone.utc).isoformat().replace("+00:00", "Z")


class DockerShim:
    """The containers of `project`: its DB (`db`), its backend (`backend`,
    served as `served`, a harness.net.serving Popen, on `port`); the frontend
    is taken as up (`frontend_up`) for the network's member list; any other
    service (a compose profile's) as not started."""

    def __init__(self, project: Path, db: PostgresServer, backend: Backend, served=None, port: int | None = None,
                 frontend_up: bool = True):
        self.project, self.db, self.backend = project, db, backend
        self.served, self.port, self.frontend_up = served, port, frontend_up
        services = {name: service for path in compose.COMPOSE_FILES
                    for name, service in compose.load(project / path)["services"].items()}
        # Optional services (compose profiles) may have no fixed name: they never run here.
        self.container = {name: service["container_name"] for name, service in services.items()
                          if "container_name" in service}
        self.service = {container: name for name, container in self.container.items()}
        self.db_service = compose.db_service(project)[0]
        self.calls: list[list[str]] = []

    # -- state -------------------------------------------------------------------
    def running(self, service: str) -> bool:
        if service == self.db_service:
            return self.db.is_running()
        if service == "backend":
            return self.served is not None and self.served.poll() is None
        return service == "frontend" and self.frontend_up

    def state(self, service: str) -> dict:
        up = self.running(service)
        state = {"Status": "running" if up else "exited", "Health": None, "StartedAt": ""}
        if service == self.db_service and up:
            state["Health"] = "healthy" if self.db_healthcheck().returncode == 0 else "unhealthy"
        if service == "backend" and up:
            state["StartedAt"] = process_started(self.served.pid)
        return state

    def db_healthcheck(self):
        """The rendered compose healthcheck, as Docker runs it in the DB
        container; only the port it names becomes the test server's."""
        command = compose.healthcheck_command(compose.db_service(self.project)[1])
        port = f"--port={recorded(self.project)['db_port']}"
        assert port in command[-1], command
        command[-1] = command[-1].replace(port, f"--port={self.db.port}")
        return self.db._run(command, env=self.db.env, check=False)

    # -- the CLI -----------------------------------------------------------------
    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        match argv:
            case ["exec", container, command, *args] if not container.startswith("-"):
                return self.exec(container, [command, *args])
            case ["inspect", "--format", fmt, container]:
                return self.inspect(fmt, container)
            case ["network", "inspect", "--format", fmt, network]:
                return self.network_inspect(fmt, network)
            case ["restart", container]:
                return self.restart(container)
        return 2, "", f"docker shim: unsupported: docker {' '.join(argv)}\n"

    def exec(self, container: str, command: list[str]) -> tuple[int, str, str]:
        service = self.service.get(container)
        if service is None:
            return 1, "", f"Error response from daemon: No such container: {container}\n"
        if not self.running(service):
            return 1, "", f"Error response from daemon: container {container} is not running\n"
        if service == "backend":
            result = self.backend.run(*command, env=self.backend.port_env(self.port) if self.port else None)
        elif service == self.db_service and command[0] == "psql":
            env = {**self.db.env, "PGHOST": str(self.db.sockets), "PGPORT": str(self.db.port)}
            result = self.db._run([psql_binary(), *command[1:]], env=env, check=False)
        else:
            return 2, "", f"docker shim: unsupported: docker exec {container} {' '.join(command)}\n"
        return result.returncode, result.stdout, result.stderr

    def inspect(self, fmt: str, container: str) -> tuple[int, str, str]:
        service = self.service.get(container)
        if service is None:
            return 1, "\n", f"Error: No such object: {container}\n"
        state = self.state(service)
        if fmt == HEALTH:
            return 0, f"{state['Health'] or state['Status']}\n", ""
        if fmt == STARTED:
            return 0, f"{state['StartedAt']} 0\n", ""
        return 2, "", f"docker shim: unsupported --format {fmt!r}\n"

    def network_inspect(self, fmt: str, network: str) -> tuple[int, str, str]:
        topology = compose.topology(self.project)
        if not any(network in networks for networks in topology.values()):
            return 1, "\n", f"Error response from daemon: network {network} not found\n"
        if fmt != MEMBERS:
            return 2, "", f"docker shim: unsupported --format {fmt!r}\n"
        members = [self.container[name] for name, networks in topology.items()
                   if network in networks and self.running(name)]
        return 0, "".join(f"{name}\n" for name in members), ""

    def restart(self, container: str) -> tuple[int, str, str]:
        if self.service.get(container) != self.db_service:
            return 2, "", f"docker shim: unsupported: docker restart {container}\n"
        if self.db.is_running():
            self.db.stop()
        self.db.start()
        return 0, f"{container}\n", ""


@contextlib.contextmanager
def installed(shim: DockerShim):
    """Yields an environment whose PATH finds `shim` as `docker` first."""
    directory = Path(tempfile.mkdtemp(prefix="docker-shim-"))
    socket_path = str(directory / "socket")

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            argv = json.loads(self.rfile.readline())
            try:
                rc, out, err = shim(argv)
            except Exception as error:  # noqa: BLE001 -- the caller sees it as docker's error
                rc, out, err = 125, "", f"docker shim: {error!r}\n"
            self.wfile.write(json.dumps({"rc": rc, "stdout": out, "stderr": err}).encode() + b"\n")

    server = socketserver.ThreadingUnixStreamServer(socket_path, Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    client = bin_dir / "docker"
    client.write_text(CLIENT.format(python=sys.executable, socket=socket_path))
    client.chmod(0o755)
    try:
        yield {"PATH": f"{bin_dir}:{os.environ['PATH']}", "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root")}
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(directory, ignore_errors=True)
