"""Benchmark: the rendered postgresql.conf against PostgreSQL's stock one, with pgbench.

    .venv/bin/python -m tests.benchmarks.bench_postgresql_conf [--db-memory-mb 1024] [--scale 100]
        [--clients 8] [--threads 2] [--rw-duration 300] [--ro-duration 60] [--rounds 3] [--quick]

What runs, in one run, on the same machine (nothing of it is a mock):

* the giga project (examples/giga.yml) rendered with `db_memory_mb` = --db-memory-mb,
  from this repository's HEAD plus uncommitted changes of tracked files;
* two clusters of the same server binaries (the major its db/Dockerfile names,
  harness/postgres.py), both initdb'd with the image's POSTGRES_INITDB_ARGS
  (--data-checksums), so only the configuration differs:
  - tuned: the rendered postgresql.conf, started as the container would be
    (docker-entrypoint.sh's first start and init/ included);
  - stock: the postgresql.conf initdb writes, untouched; only port, socket
    directory and listen_addresses are given on the command line;
* pgbench of the official 16.14 build (harness.postgres.client_bindir), over
  the Unix socket, as the superuser, into the same-named database:
  `pgbench -i -s SCALE` identically on both, then TPC-B-like read-write (the
  default script) and select-only (-S), with the same clients, threads and
  durations.

Each server runs inside a memory cgroup of db_memory_mb, as the container
does (`mem_limit`): its shared memory, backends and page cache all count
against it, so data larger than the limit is read from storage, not from the
host's spare RAM (needs root). The report gives what a commit's WAL flush
costs on the data's storage (8 kB write + fdatasync) and the load average.

Before each measurement: CHECKPOINT, so both start from the same state and
pay their own checkpoints (and the full-page writes after each) inside the
run. The read-write run defaults to 300 s, long enough for stock's
max_wal_size (1GB) to force checkpoints. fsync, full_page_writes and
synchronous_commit are read back with SHOW on each server and must be on.

Configurations alternate within each round (the order flips every round) so
drift hits both alike; the median of the rounds is reported. Exits 1 if the
target is missed: read-write tuned/stock >= 1.2, select-only >= 1.0 minus
--ro-margin (default 0.03: 3 %, within the run-to-run noise of a shared machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.postgres import PostgresServer, client_bindir
from harness.render import copier_cli, data_args, example_answers

DURABILITY = ("fsync", "full_page_writes", "synchronous_commit", "data_checksums")
SHOWN = ("shared_buffers", "max_wal_size", "checkpoint_timeout", "wal_buffers", "wal_compression")
MODES = {"read-write": [], "select-only": ["-S"]}
TARGET = {"read-write": 1.2, "select-only": 1.0}


def render(destination: Path, db_memory_mb: int) -> Path:
    answers = {**example_answers("giga"), "db_memory_mb": db_memory_mb}
    result = copier_cli("copy", "--defaults", "--vcs-ref", "HEAD", *data_args(answers),
                        str(Path(__file__).resolve().parents[2]), str(destination))
    if result.returncode != 0:
        raise RuntimeError(f"copier failed:\n{result.stderr}")
    return destination


class StockServer(PostgresServer):
    """The same binaries and initdb arguments, with the configuration initdb writes."""

    def initialize(self) -> None:
        password_file = self.root / "pwfile"
        password_file.write_text(self.env["POSTGRES_PASSWORD"] + "\n", encoding="utf-8")
        if os.geteuid() == 0:
            shutil.chown(password_file, "postgres", "postgres")
        self._run([str(self.bindir / "initdb"), "-D", str(self.data), f"--username={self.superuser}",
                   f"--pwfile={password_file}", *self.env.get("POSTGRES_INITDB_ARGS", "").split()])
        password_file.unlink()
        self.config_file = self.data / "postgresql.conf"
        self.hba_file = self.data / "pg_hba.conf"
        self._pg_ctl("-w", "-o", self._server_options(listen=""), "start")
        try:
            self._create_database()
        finally:
            self._pg_ctl("-m", "fast", "-w", "stop")


def memory_hierarchy() -> tuple[Path, str]:
    """(root of the memory cgroups, the limit's file name): cgroup v1 or v2."""
    v1 = Path("/sys/fs/cgroup/memory")
    if v1.is_dir():
        return v1, "memory.limit_in_bytes"
    controllers = Path("/sys/fs/cgroup/cgroup.controllers")
    if controllers.exists() and "memory" in controllers.read_text().split():
        return controllers.parent, "memory.max"
    raise SystemExit("no memory cgroup to limit the servers with: run as root on cgroup v1 (memory) or v2")


class ContainerMemory:
    """A memory cgroup with the db container's limit (`mem_limit: <db_memory_mb>m`).

    Docker charges a container's page cache to its memory cgroup, so inside the
    container the database gets db_memory_mb in all, not the host's free memory;
    the rendered conf is tuned for exactly that. Each server runs in one of its
    own, stock included (the same limit, the same container). Needs root and a
    cgroup v1 memory hierarchy or cgroup v2 with the memory controller."""

    def __init__(self, name: str, megabytes: int):
        hierarchy, limit_file = memory_hierarchy()
        self.path = hierarchy / name
        self.path.mkdir()
        (self.path / limit_file).write_text(str(megabytes * 1024 * 1024))
        # The server's user moves its own pg_ctl there; the server it starts inherits it.
        shutil.chown(self.path / "cgroup.procs", "postgres")

    def peak_mb(self) -> int | None:
        peak = next((self.path / f for f in ("memory.max_usage_in_bytes", "memory.peak")
                     if (self.path / f).exists()), None)
        return int(peak.read_text()) // 2**20 if peak else None

    def remove(self) -> None:
        if self.path.exists():
            self.path.rmdir()


def limited(server_class):
    """`server_class` whose server starts inside `self.memory` (a ContainerMemory)."""

    class Limited(server_class):
        memory: ContainerMemory

        def _pg_ctl(self, *args: str) -> None:
            self._run(["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.memory.path / "cgroup.procs"),
                       str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args])

    return Limited


def fdatasync_ms(directory: Path, writes: int = 500) -> float:
    """Mean time of an 8 kB write + fdatasync in `directory`: what a commit's
    WAL flush costs on this storage (pg_test_fsync's fdatasync case)."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        started = time.perf_counter()
        for i in range(writes):
            os.pwrite(fd, b"\0" * 8192, (i % 16) * 8192)
            os.fdatasync(fd)
        return (time.perf_counter() - started) / writes * 1000
    finally:
        os.close(fd)
        path.unlink()


class Bench:
    def __init__(self, name: str, server: PostgresServer, pgbench: Path):
        self.name, self.server, self.pgbench = name, server, pgbench

    def env(self) -> dict[str, str]:
        s = self.server
        return {**os.environ, "PGHOST": str(s.sockets), "PGPORT": str(s.port), "PGUSER": s.superuser,
                "PGPASSWORD": s.env["POSTGRES_PASSWORD"], "PGDATABASE": s.database}

    def run(self, *args: str) -> str:
        result = subprocess.run([str(self.pgbench), *args], env=self.env(), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"pgbench {' '.join(args)} on {self.name}: exit {result.returncode}\n"
                               f"{result.stdout}\n{result.stderr}\n{self.server.server_log()[-3000:]}")
        return result.stdout

    def query(self, sql: str) -> list[tuple]:
        return self.server.query(sql, **self.server.admin, host=str(self.server.sockets))

    def show(self, setting: str) -> str:
        (value,), = self.query(f"SHOW {setting}")
        return value

    def checkpoints(self) -> int:
        """Checkpoints started by WAL volume or by time (log_checkpoints is on in both:
        the default since PostgreSQL 15), not the CHECKPOINT commands run here."""
        return len(re.findall(r"checkpoint starting: (?:wal|time)", self.server.server_log()))

    def measure(self, mode: str, clients: int, threads: int, duration: int) -> dict:
        self.query("CHECKPOINT")
        before = self.checkpoints()
        (lsn,), = self.query("SELECT pg_current_wal_lsn()")
        out = self.run(*MODES[mode], "-c", str(clients), "-j", str(threads), "-T", str(duration))
        (wal,), = self.query(f"SELECT pg_current_wal_lsn() - '{lsn}'::pg_lsn")
        transactions = int(re.search(r"^number of transactions actually processed: (\d+)", out, re.M).group(1))
        tps = float(re.search(r"^tps = ([\d.]+)", out, re.M).group(1))
        latency = float(re.search(r"^latency average = ([\d.]+) ms", out, re.M).group(1))
        return {"tps": tps, "latency": latency, "checkpoints": self.checkpoints() - before,
                "wal_per_tx": float(wal) / transactions}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-memory-mb", type=int, default=1024, help="the db_memory_mb answer (default 1024)")
    parser.add_argument("--scale", type=int, default=100,
                        help="pgbench scale factor, ~15 MB each (default 100: 1.5 GB, more than the 1024 MB limit)")
    parser.add_argument("--clients", type=int, default=8, help="pgbench -c (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="pgbench -j (default 2)")
    parser.add_argument("--rw-duration", type=int, default=300, help="seconds per read-write run (default 300)")
    parser.add_argument("--ro-duration", type=int, default=60, help="seconds per select-only run (default 60)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    parser.add_argument("--ro-margin", type=float, default=0.03, help="select-only noise margin (default 0.03)")
    parser.add_argument("--quick", action="store_true", help="development: 20 s runs, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.rw_duration, args.ro_duration, args.rounds = 20, 20, 1

    work = Path(tempfile.mkdtemp(prefix="bench-pgconf-"))
    project = render(work / "giga", args.db_memory_mb)
    pgbench = client_bindir(16) / "pgbench"
    benches: list[Bench] = []
    memories: list[ContainerMemory] = []
    try:
        tuned = limited(PostgresServer)(project / "db")
        stock = limited(StockServer)(project / "db", major=tuned.major)
        for name, server in (("tuned", tuned), ("stock", stock)):
            server.memory = ContainerMemory(f"{work.name}-{name}", args.db_memory_mb)
            memories.append(server.memory)
            benches.append(Bench(name, server, pgbench))
            server.initialize()
            server.start()

        for bench in benches:
            values = {s: bench.show(s) for s in DURABILITY}
            assert all(v == "on" for v in values.values()), (bench.name, values)
            bench.run("-i", "-q", "-s", str(args.scale))
            (size,), = bench.query("SELECT pg_size_pretty(pg_database_size(current_database()))")
            print(f"{bench.name}: {', '.join(f'{s}={v}' for s, v in values.items())}; "
                  f"{', '.join(f'{s}={bench.show(s)}' for s in SHOWN)}; database {size}", flush=True)

        results: dict[tuple[str, str], list[dict]] = {}
        for round_number in range(1, args.rounds + 1):
            order = benches if round_number % 2 else benches[::-1]
            for mode, duration in (("select-only", args.ro_duration), ("read-write", args.rw_duration)):
                for bench in order:
                    r = bench.measure(mode, args.clients, args.threads, duration)
                    results.setdefault((bench.name, mode), []).append(r)
                    print(f"round {round_number} {bench.name:5} {mode:11} {r['tps']:9.1f} tps  "
                          f"latency {r['latency']:7.3f} ms  checkpoints {r['checkpoints']}  "
                          f"WAL {r['wal_per_tx']:.0f} B/tx  memory peak {bench.server.memory.peak_mb()} MB",
                          flush=True)
        return report(results, args, tuned, fdatasync_ms(tuned.root))
    finally:
        for bench in benches:
            bench.server.destroy()
        for memory in memories:
            memory.remove()
        shutil.rmtree(work, ignore_errors=True)


def report(results, args, server: PostgresServer, flush_ms: float) -> int:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    print()
    print(f"Machine: {os.cpu_count()} cores ({cpu}), {memory} MiB, {platform.system()} {platform.release()}; "
          f"PostgreSQL {server.major}; db_memory_mb {args.db_memory_mb}; pgbench -s {args.scale} "
          f"-c {args.clients} -j {args.threads}, read-write {args.rw_duration} s, select-only "
          f"{args.ro_duration} s; median of {args.rounds} round(s); each server in a memory cgroup of "
          f"{args.db_memory_mb} MB; 8 kB write + fdatasync on the data's storage: {flush_ms:.2f} ms; "
          f"load average {os.getloadavg()[0]:.1f}")
    print()
    print("| config | mode | TPS | latency avg ms | checkpoints in run | WAL bytes/tx | tuned / stock |")
    print("|---|---|---|---|---|---|---|")
    missed = []
    for mode in ("read-write", "select-only"):
        tps = {name: statistics.median(r["tps"] for r in results[(name, mode)]) for name in ("stock", "tuned")}
        ratio = tps["tuned"] / tps["stock"]
        for name in ("stock", "tuned"):
            runs = results[(name, mode)]
            print(f"| {name} | {mode} | {tps[name]:.0f} | {statistics.median(r['latency'] for r in runs):.2f} | "
                  f"{statistics.median(r['checkpoints'] for r in runs):g} | "
                  f"{statistics.median(r['wal_per_tx'] for r in runs):.0f} | "
                  f"{f'**{ratio:.2f}x**' if name == 'tuned' else '1.00x'} |")
        floor = TARGET[mode] - (args.ro_margin if mode == "select-only" else 0)
        if ratio < floor:
            missed.append(f"{mode}: {ratio:.2f}x < {floor:.2f}x")
    print()
    print("Target missed: " + "; ".join(missed) if missed else "Target met: read-write >= 1.20x, "
          f"select-only >= {1 - args.ro_margin:.2f}x")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
