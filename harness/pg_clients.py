"""Talking to a test server (harness.postgres) as the DB project's clients do:
the superuser over the container's loopback, the application role over the
network, the rendered db/bin/ scripts from a host or in the container, the
environment compose gives the project's client services; and an
application's data set with the fingerprint that proves it came back whole.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from . import compose, dotenv
from .postgres import PostgresServer


def admin_query(db: PostgresServer, sql: str, params=None, dbname: str | None = None):
    """As the superuser, over the container-local loopback (allowed by pg_hba.conf)."""
    return db.query(sql, params=params, host="127.0.0.1",
                    **{**db.admin, **({"dbname": dbname} if dbname else {})})


def app_query(db: PostgresServer, sql: str, params=None):
    """As the application role, over the network address, like the backend."""
    return db.query(sql, params=params, **db.app)


def db_script(server: PostgresServer, name: str, *args: str, container: bool = False,
              **env: str) -> subprocess.CompletedProcess:
    """Runs db/bin/<name>. On a host: with the PG* variables pointing at the server.
    `container`: with the container's environment (db/.env), over the Unix socket."""
    if container:
        connection = {**server.env, "PGHOST": str(server.sockets), "PGPORT": str(server.port)}
    else:
        connection = {"PGHOST": server.address, "PGPORT": str(server.port), "PGUSER": server.app["user"],
                      "PGPASSWORD": server.app["password"], "PGDATABASE": server.app["dbname"]}
    return subprocess.run([str(server.db_dir / "bin" / name), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120,
                          env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **connection, **env})


APP_DATA = """
DROP TABLE IF EXISTS orders, users;
CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL, joined timestamptz NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, user_id int NOT NULL REFERENCES users, total numeric(10, 2),
                     note text);
CREATE INDEX orders_user ON orders (user_id);
INSERT INTO users (email, joined)
  SELECT format('user%s@example.com', g), timestamptz '2026-01-01' + g * interval '1 hour'
  FROM generate_series(1, 50) g;
INSERT INTO orders (user_id, total, note)
  SELECT 1 + g % 50, (g * 7919 % 100000) / 100.0, CASE WHEN g % 3 = 0 THEN NULL ELSE md5(g::text) || E'\\t''"ü' END
  FROM generate_series(1, 4000) g;
"""


def app_state(server: PostgresServer) -> dict:
    """Row counts and an ordered checksum of every column of each table, the sequences, the extension."""
    state = {}
    for table in ("users", "orders"):
        exists = app_query(server, "SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0]
        state[table] = app_query(server, f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY id)) FROM {table} t")[0] \
            if exists else None
    state["sequences"] = app_query(server, "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1")
    state["extensions"] = app_query(server, "SELECT extname, extowner::regrole::text FROM pg_extension ORDER BY 1")
    return state


def resolved_environment(project: Path, service: dict) -> dict[str, str]:
    """A service's `environment` as its container gets it: compose interpolates
    ${NAME} from db/.env (and refuses anything else, see compose.unescape)."""
    db_env = dotenv.load(project / "db/.env")
    return {key: compose.unescape(str(value), db_env) for key, value in service["environment"].items()}
