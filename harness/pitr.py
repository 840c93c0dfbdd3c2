"""Continuous archiving and point-in-time recovery on the native test server
(harness.postgres): a server of the rendered db/ archiving through the
rendered pgbackrest.conf into a repository of its own, db/bin/'s scripts run
as the container runs them, and the rows a PITR must bring back.

The tests of db/'s pgBackRest (test_db_pitr.py, test_db_drill.py,
test_db_s3.py) and the archiving benchmark share these; their fixture,
`pitr_project`, is conftest's.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from .postgres import RUN_AS, PostgresServer


def waldump_major() -> int:
    """The major of the pg_waldump on this machine (Debian's server package),
    which pitr reads the archive with; pgBackRest must support it too."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_waldump"))
    assert found, "pg_waldump not found: scripts/bootstrap installs Debian's postgresql"
    return int(Path(found[-1]).parts[-3])


class Archived:
    """A server of the rendered db/, archiving through the rendered
    pgbackrest.conf into a repository of its own."""

    def __init__(self, project: Path, trace: bool = False):
        self.server = server = PostgresServer(project / "db")
        if trace:
            server.trace_exec()
        self.repo = server.repo
        # the image's /usr/local/bin: the postgres user cannot read the rendered project
        self.bin = server.root / "bin"
        shutil.copytree(project / "db/bin", self.bin)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", f"{RUN_AS}:{RUN_AS}", str(self.bin)], check=True)
        server.initialize()
        server.start()

    def script(self, name: str, *args: str, stdin=subprocess.DEVNULL, traced: bool = False,
               **env: str) -> subprocess.CompletedProcess:
        """db/bin/<name> as `docker exec -u postgres <db> name ...` runs it."""
        server = self.server
        path = f"{Path(glob.glob('/usr/lib/postgresql/*/bin/pg_waldump')[-1]).parent}:{os.environ['PATH']}"
        return server._run([str(self.bin / name), *args], check=False, stdin=stdin, timeout=300, errors="replace",
                           traced=traced,
                           env={**server.env, "PGHOST": str(server.sockets), "PGPORT": str(server.port),
                                "PATH": path, **env})

    def pgbackrest(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return self.server._run(["pgbackrest", *args], check=False, errors="replace", env={**self.server.env, **env})

    def sql(self, statement: str, params=None) -> list[tuple]:
        return self.server.query(statement, params=params, **self.server.app)

    def data_snapshot(self) -> dict[str, tuple[int, str]]:
        """Every file of the data directory: size and content hash."""
        snapshot = {}
        for path in sorted(self.server.data.rglob("*")):
            if path.is_file():
                snapshot[path.relative_to(self.server.data).as_posix()] = (
                    path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
        return snapshot

    def destroy(self) -> None:
        self.server.destroy()


def server_now(db: Archived) -> str:
    return db.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")[0][0]


def rows(db: Archived, table: str = "orders") -> list[int]:
    return [row[0] for row in db.sql(f"SELECT id FROM {table} ORDER BY id")]


def write_rows(db: Archived, first: int, last: int) -> None:
    db.sql("INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(%s::int, %s::int) g", (first, last))


def writes_around_a_noted_time(db: Archived, drop: bool = True) -> str:
    """What a PITR undoes, on a backed-up server with an empty `orders`
    table: rows 1..100 written, the server's time noted, rows 101..150
    written and (`drop`) the table dropped. A PITR to the returned time
    brings back exactly 1..100."""
    time.sleep(1.1)  # backups end on a whole second; recovery can stop only after
    write_rows(db, 1, 100)
    noted = server_now(db)
    time.sleep(0.2)
    write_rows(db, 101, 150)
    if drop:
        db.sql("DROP TABLE orders")
    return noted


def wait_until_promoted(db: Archived) -> None:
    """The server answers reads while it replays the WAL; done once it takes writes."""
    deadline = time.monotonic() + 120
    while db.server.query("SELECT pg_is_in_recovery()", host=str(db.server.sockets), **db.server.admin)[0][0]:
        assert time.monotonic() < deadline, "the server never finished recovery:\n" + db.server.server_log()[-3000:]
        time.sleep(0.2)


def corrupt_backup(db: Archived) -> dict[str, str]:
    """Flips bytes in the middle of the largest file of the backup set; no
    environment to change (the tests' breakers return one)."""
    files = sorted((p for p in db.repo.glob("backup/*/*/pg_data/**/*") if p.is_file()), key=lambda p: p.stat().st_size)
    victim = files[-1]
    data = bytearray(victim.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    victim.write_bytes(bytes(data))
    return {}
