"""The three tiers running together, wired as compose wires them, on loopback:
a PostgreSQL of their own from the rendered db/ (callers may stop it), the
migrated backend served as its Dockerfile serves it, and `node build` of front/
reaching it by its network alias, and the backend's task worker, which
sends the account mails. The backend trusts the client address the
frontend forwards (DJANGO_TRUSTED_PROXIES names the frontend's alias), so that
alias resolves to where SvelteKit's server calls from."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from . import node
from .answers import alias, recorded
from .backend import Backend
from .net import free_port
from .postgres import PostgresServer, start_project_db
from .python import venv_for


@dataclass
class Stack:
    db: PostgresServer
    backend: Backend
    api_url: str
    front_url: str
    staff: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def running(project: Path, front_built: Path, staff: dict[str, str] | None = None,
            backend_env: dict[str, str] | None = None):
    """Yields the Stack of `project`, whose front/ was built in `front_built`
    (harness.node.install, then build); `staff`: a superuser to create
    (username, email, password); `backend_env`: overrides of the backend's
    compose environment."""
    answers = recorded(project)
    db = start_project_db(project)
    try:
        backend = Backend(project, db, venv_for(project / "back"), hosts={alias(answers, "frontend"): "127.0.0.1"})
        backend.manage("migrate", "--noinput", check=True)
        if staff:
            backend.manage("shell", "-c", "from personas.models import Usuario; Usuario.objects.create_superuser("
                           f"{staff['username']!r}, {staff['email']!r}, {staff['password']!r})", check=True)
        api_port, front_port = free_port(), free_port()
        # The links of account mails open this frontend.
        backend_env = {"FRONTEND_URL": f"http://127.0.0.1:{front_port}", **(backend_env or {})}
        with backend.serve(port=api_port, env=backend_env) as (api_url, _), backend.work(env=backend_env):
            with node.serve_front(project, front_built, api_port, port=front_port) as front_url:
                yield Stack(db, backend, api_url, front_url, dict(staff or {}))
    finally:
        db.destroy()
