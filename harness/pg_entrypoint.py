"""docker-entrypoint.sh's first start, replayed on the native test server
(harness.postgres): initdb with POSTGRES_USER and POSTGRES_PASSWORD (plus
POSTGRES_INITDB_ARGS), a socket-only temporary server, CREATE DATABASE
POSTGRES_DB, then init/ in sorted order (*.sh run when executable, sourced
otherwise; *.sql piped to psql with ON_ERROR_STOP), then a stop before the
real start.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .pg_builds import RUN_AS, psql_binary


class EntrypointFirstStart:
    """harness.postgres.PostgresServer's first start, as the official image's entrypoint does it."""

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
