"""A generated project's stack on the docker tier's engine (harness.engine),
driven through its own Makefile: make targets that must pass, the names of
its containers and networks, the HTTP status of its endpoints, a data set
with its fingerprint, the newest dump, and everything removed afterwards.

Shared by the docker tier's modules (test_docker_*.py); each renders its own
project, with names and ports of its own where two may run at once.
"""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from . import engine, make
from .answers import recorded


def run_make(project: Path, *args: str, ok: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    result = make.make(project, *args, timeout=timeout)
    if ok:
        assert result.returncode == 0, f"make {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


class Names:
    """The rendered project's names for the containers and networks."""

    def __init__(self, project: Path):
        self.answers = a = recorded(project)
        slug = a["project_slug"]
        self.db, self.backend = f"{slug}_db_dev", f"{slug}_backend_dev"
        self.frontend, self.mailpit = f"{slug}_frontend_dev", f"{slug}_mailpit_dev"
        self.worker = f"{slug}_worker_dev"
        self.db_network, self.app_network = a["network_name"], f"{slug}_app_network"
        self.db_default = f"{slug}_db_default"
        self.front_url = f"http://localhost:{a['frontend_port']}"
        self.api_url = f"http://127.0.0.1:{a['backend_port']}"

    def psql(self, sql: str) -> str:
        """psql in the database container, as the app role, over its Unix socket."""
        a = self.answers
        return engine.docker("exec", self.db, "psql", "-U", a["db_user"], "-d", a["db_name"], "--no-psqlrc",
                             "-v", "ON_ERROR_STOP=1", "-At", "-c", sql).stdout.strip()


def own_names(slug: str, offset: int, **answers) -> dict:
    """Answers that share no name or port with the examples' stacks, nor
    with another `offset`'s."""
    return {"project_slug": slug, "db_service": f"{slug}-db", "db_name": slug, "db_user": f"{slug}_user",
            "network_name": f"{slug}_dev_network", "db_host_port": 0, "backend_port": 18000 + offset,
            "frontend_port": 15173 + offset, "mail_ui_port": 18025 + offset, **answers}


def teardown(project: Path) -> None:
    engine.compose_down(project, "docker-compose.dev.yml")
    engine.compose_down(project / "db")


def status(url: str, timeout: float = 10, context=None) -> int | str:
    """The HTTP status of a GET (`context`: an ssl.SSLContext for https), or
    the name of the error when none came."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError as error:
        return type(error).__name__


# A data set of the app's own (notes) beside its users, and the fingerprint
# that proves both came back whole (psql through Names.psql).
DATA = """CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL);
INSERT INTO notes (body) SELECT md5(g::text) || E'\\t''"ü' FROM generate_series(1, 3000) g;"""
STATE = ("SELECT (SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY id)) FROM notes t) || ' ' || "
         "(SELECT count(*) || ':' || md5(string_agg(u.username || u.email || u.password, '|' ORDER BY u.id)) "
         "FROM personas_usuario u)")


def newest_dump(project: Path) -> str:
    """The first dump `make backups` lists (newest first)."""
    listed = re.findall(r"^\S+\.dump\b", run_make(project, "-s", "backups").stdout, re.M)
    assert listed, "make backups lists no dump"
    return listed[0]
