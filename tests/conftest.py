"""Shared fixtures: rendered projects and running PostgreSQL servers.

Rendering is cached per session (the same answers give the same project), and
so is the database server of the default project; tests that must change a
server get their own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.postgres import PostgresServer, start_project_db
from harness.render import example_answers


@pytest.fixture(scope="session")
def render(copie_session):
    """render(answers) -> path of a project rendered with those answers (cached)."""
    cache: dict[str, Path] = {}

    def _render(answers: dict | None = None) -> Path:
        key = json.dumps(answers or {}, sort_keys=True)
        if key not in cache:
            result = copie_session.copy(extra_answers=answers or {})
            if result.exit_code != 0:
                raise AssertionError(f"render failed for {answers}: {result.exception!r}")
            cache[key] = result.project_dir
        return cache[key]

    return _render


@pytest.fixture(scope="session")
def giga_project(render) -> Path:
    """The architecture document's project: examples/giga.yml."""
    return render(example_answers("giga"))


@pytest.fixture(scope="session")
def giga_db(giga_project):
    """PostgreSQL running from giga_project's rendered db/, init scripts done."""
    server = start_project_db(giga_project)
    yield server
    server.destroy()


@pytest.fixture
def fresh_db_server():
    """Factory for servers a test may break; all destroyed afterwards."""
    servers: list[PostgresServer] = []

    def _start(project: Path) -> PostgresServer:
        server = start_project_db(project)
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.destroy()
