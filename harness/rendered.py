"""Reading a rendered project as the static checks do: its text files (no
node_modules, no lockfile, nothing binary) and its YAML, the database's and
the dev compose file among it."""

from __future__ import annotations

from pathlib import Path

from . import compose
from .render import project_files


def rendered_text_files(project: Path):
    for path in project_files(project):
        if "node_modules" in path.parts or path.name == "package-lock.json":
            continue
        try:
            yield path, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


def read_yaml(path: Path):
    return compose.parse(path.read_text())


def db_compose(project: Path) -> dict:
    return read_yaml(project / "db/docker-compose.yml")


def dev_compose(project: Path) -> dict:
    return read_yaml(project / "docker-compose.dev.yml")
