"""What the DB container gets from a rendered db/, for the native test server
(harness.postgres):

* the image: the major, minor and Debian release its Dockerfile starts FROM;
* the files the Dockerfile copies into the image: postgresql.conf and
  pg_hba.conf verbatim (`conf_settings` reads a postgresql.conf as the server
  does), init/ as /docker-entrypoint-initdb.d, executable;
* the rendered pgbackrest.conf, verbatim, with this machine's pgBackRest:
  PGBACKREST_* variables point its repository, data directory, socket and
  lock files at the server's own directory (archive_command stays the
  rendered one). Debian's pgBackRest may not know the newest majors: their
  stanza is then not created, and init/ says so and goes on, as in a
  container whose repository cannot be reached;
* the environment compose would give the container (db/.env, parsed like
  compose does, plus the service's `environment:`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from . import compose
from .dockerfile import base_images
from .pg_builds import RUN_AS


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


class ContainerFiles:
    """harness.postgres.PostgresServer's container: the image's files staged
    in the server's private directory, and the container recreated from
    updated ones."""

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
