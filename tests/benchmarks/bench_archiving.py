"""Benchmark: db/'s continuous WAL archiving (pgBackRest): its cost, what a host's
sudden death loses, and how long a physical restore takes against a logical one.

    PYTHONPATH=. .venv/bin/python -m tests.benchmarks.bench_archiving [--scale 70] [--clients 8] [--threads 2]
        [--tps-duration 20] [--rounds 5] [--light-rate 20] [--light-seconds 150]
        [--restore-rounds 2] [--quick]

(root, like the full tier: the servers and db/bin's scripts run as `postgres`;
Debian's PostgreSQL 15 and pgbackrest, which scripts/bootstrap installs.)

What runs, in one run, on the same machine (nothing of it is a mock):

* the giga project (examples/giga.yml) rendered with postgres_version = the
  major of Debian's pg_waldump (15; what test_db_pitr.py renders), from this
  repository's HEAD plus uncommitted changes of tracked files;
* two servers of the same binaries (harness/postgres.py), each
  initialised as the container is (initdb, init/, so pgBackRest's stanza is
  created), from the same rendered postgresql.conf:
  - archiving: harness/pitr.py's `Archived`, exactly as rendered: archive_mode
    on, archive_command = pgbackrest archive-push into a repository of its own
    through the rendered pgbackrest.conf (zstd, AES-256, synchronous push);
  - off: the same files, with only `-c archive_mode=off` on the command line;
* pgbench of Debian's PostgreSQL (the server's major), as the application
  role over the Unix socket; `pgbench -i -s SCALE` (70: about 1 GB) on both.

1. Overhead: TPC-B-like read-write, --clients/--threads, --tps-duration
   seconds, each run after a CHECKPOINT; the two servers alternate within
   each round and the order flips every round; median TPS of the rounds and
   the ratio archiving/off. Also CPU per transaction, which other load on a
   shared machine moves less than TPS: the server's (the postmaster and every
   process under it, with the children they reaped: exited backends, and
   archive-push under the archiver; /proc) plus pgbench's.

2. Recovery point: what is lost if the host dies now is every commit whose
   WAL is not yet in the repository. A sampler asks the archiving server every
   0.2 s for the time, pg_current_wal_flush_lsn() and pg_stat_archiver's
   last_archived_wal; a sample's loss is its time minus that of the newest
   earlier sample whose flushed WAL ends within the archived segments. Sampled
   under the read-write runs of (1) (heavy: segments fill in seconds) and under
   a light, rate-limited load (`pgbench -R --light-rate`, where
   archive_timeout decides) for --light-seconds; median and max. Theory: at
   most archive_timeout (or the time to fill a segment, if shorter) plus one
   archive-push, as long as the archiver keeps up. At the end of the light
   load the server and every process under it are SIGKILLed (the host dies)
   and its data directory deleted (the data volume is lost with it; the
   repository survives, as repository 2 on S3 would): the commits the
   repository still holds give one measured loss to set beside the sampled
   ones.

3. Restore of the same data: a full backup (`backup-physical full`) and a
   logical dump (`backup`, pg_dump custom format) are taken back to back of
   the database of (1), before the light load. The target of the physical
   restores is just before the newest commit archived before the kill; each
   is timed until the server has replayed the WAL and takes writes.
   - new volume: the data volume lost, a new one initialised (initdb and
     init/) and stopped, then `pitr TARGET --yes` as db/README.md says; where
     pitr refuses to run there (it does: its range check's archive-get wants
     the backed-up cluster's pg_control), pitr's own commands instead:
     `pgbackrest verify`, then `pgbackrest restore` with pitr's options;
   - logical, the `make restore` path: with the pgbench tables dropped (a new
     server's empty database), the project's `restore --yes DUMP`
     (pg_restore, one transaction) into the server, archiving as the
     project's does;
   - pitr: what scripts/db-pitr runs, less its copy of the volume:
     `pitr --check TARGET` with the server up (not timed), then stopped,
     `pitr TARGET --yes` (range check, verify, delta restore) and a start.
   Row counts are checked after each. --restore-rounds alternates the order
   (new volume, logical, pitr; then backwards); medians.

The machine may be shared with other work: the report gives the load average,
and every figure that matters is a ratio of runs side by side.
"""

from __future__ import annotations

import argparse
import bisect
import datetime
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[2]

from harness.pitr import Archived, wait_until_promoted, waldump_major
from harness.postgres import RUN_AS, PostgresServer
from harness.processes import descendants
from harness.render import render_example

from tests.benchmarks.bench_postgresql_conf import Bench, fdatasync_ms

PGBENCH_TABLES = ("pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history")
SAMPLE_INTERVAL = 0.2
RESTORES = ("new volume", "logical", "pitr")


class ArchiveOff(PostgresServer):
    """The rendered db/ with archiving off on the command line: nothing else differs."""

    def _server_options(self, listen: str) -> str:
        return super()._server_options(listen) + " -c archive_mode=off"


class AppBench(Bench):
    """pgbench as the application role, so that the tables are its own, as the
    application's are: the project's `backup` and `restore` log in as it."""

    def env(self) -> dict[str, str]:
        app = self.server.app
        return {**super().env(), "PGUSER": app["user"], "PGPASSWORD": app["password"]}


# -- the recovery point ------------------------------------------------------
class ArchiveLag(threading.Thread):
    """Every SAMPLE_INTERVAL s: (time, flushed WAL position, last archived
    segment, segments waiting for the archiver)."""

    def __init__(self, server: PostgresServer):
        super().__init__(daemon=True)
        self.server = server
        self.samples: list[tuple[float, int, str | None, int]] = []
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        status = self.server.data / "pg_wal/archive_status"
        try:
            with self.server.connect(**self.server.admin, host=str(self.server.sockets)) as conn:
                while not self.halt.is_set():
                    t, flush, archived = conn.execute(
                        "SELECT extract(epoch FROM clock_timestamp())::float8,"
                        " (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint, last_archived_wal"
                        " FROM pg_stat_archiver").fetchone()
                    ready = sum(1 for name in os.listdir(status) if name.endswith(".ready"))
                    self.samples.append((t, flush, archived, ready))
                    self.halt.wait(SAMPLE_INTERVAL)
        except (psycopg.Error, OSError) as error:  # reported by stop()
            self.error = error

    def stop(self) -> list[tuple[float, int, str | None, int]]:
        self.halt.set()
        self.join()
        if self.error:
            raise self.error
        return self.samples


def segment_end(name: str, segment_size: int) -> int:
    """The WAL position just after segment `name` (TTTTTTTTLLLLLLLLSSSSSSSS)."""
    per_log = 2**32 // segment_size
    return (int(name[8:16], 16) * per_log + int(name[16:24], 16) + 1) * segment_size


def losses(samples, segment_size: int) -> list[float]:
    """Each sample's loss: seconds since the newest moment whose flushed WAL
    (every commit acknowledged by then) lies within the archived segments."""
    times, flushed, result = [], [], []
    archived_end = None
    for t, flush, archived, _ in samples:
        times.append(t)
        flushed.append(flush)
        if archived and re.fullmatch(r"[0-9A-F]{24}", archived):  # not a .history or .backup file
            archived_end = max(archived_end or 0, segment_end(archived, segment_size))
        if archived_end is None:
            continue
        newest = bisect.bisect_right(flushed, archived_end) - 1  # flushed positions only grow
        if newest >= 0:
            result.append(t - times[newest])
    return result


def push_times(log: str) -> list[float]:
    """Seconds of each successful archive-push pgBackRest logged (its own timing)."""
    return [int(ms) / 1000 for ms in re.findall(r"archive-push command end: completed successfully \((\d+)ms\)", log)]


def summary(values: list[float], unit: str = "s") -> str:
    if not values:
        return "none"
    return f"median {statistics.median(values):.1f} {unit}, max {max(values):.1f} {unit} ({len(values)})"


# -- helpers -----------------------------------------------------------------
def timed(action):
    started = time.monotonic()
    result = action()
    return result, time.monotonic() - started


def checked(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if result.returncode != 0:
        raise RuntimeError(f"{what} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def counts(db: Archived) -> dict[str, int]:
    return {table: db.sql(f"SELECT count(*) FROM {table}")[0][0] for table in PGBENCH_TABLES}


def kill_tree(server: PostgresServer) -> float:
    """SIGKILL of the postmaster and every process under it, as when the host
    dies; returns the moment."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    tree = descendants(postmaster) + [postmaster]
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    killed = time.time()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in tree):
        if time.monotonic() > deadline:
            raise RuntimeError("the killed processes did not exit")
        time.sleep(0.05)
    return killed


def lose_data_volume(server: PostgresServer) -> None:
    shutil.rmtree(server.data)
    server.data.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(server.data, RUN_AS, RUN_AS)


def epoch(utc: str) -> float:
    """'YYYY-mm-dd HH:MM:SS.ffffff+00' (list-backups-physical) as a Unix time."""
    return datetime.datetime.fromisoformat(utc).timestamp()


def du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU, that of its children it has waited for), /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def server_cpu(server: PostgresServer) -> tuple[float, float]:
    """(CPU seconds of the whole server so far: the postmaster and every process
    under it, with the children they have reaped, so exited backends and
    archive-push runs too; the archiver's share: itself and its archive-pushes)."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    total = archiver = 0.0
    for pid in [postmaster, *descendants(postmaster)]:
        try:
            own, reaped = cpu_seconds(pid)
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):  # exited meanwhile: counted once reaped
            continue
        total += own + reaped
        if title.startswith(b"postgres: archiver"):
            archiver += own + reaped
    return total, archiver


# -- the three measurements --------------------------------------------------
def overhead(benches: dict[str, AppBench], db: Archived, args, segment_size: int) -> dict:
    """Interleaved read-write runs; the archiving server's are sampled for its lag."""
    results: dict[str, list[dict]] = {"archiving": [], "off": []}
    lags, pushes, backlog = [], [], []
    for round_number in range(1, args.rounds + 1):
        order = ["archiving", "off"] if round_number % 2 else ["off", "archiving"]
        for name in order:
            bench = benches[name]
            bench.query("CHECKPOINT")
            if name == "archiving":
                checked(db.pgbackrest("check"), "pgbackrest check")  # nothing waits to be archived
            log_start = len(bench.server.server_log())
            sampler = ArchiveLag(bench.server)
            sampler.start()
            server0, archiver0 = server_cpu(bench.server)
            client0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = bench.measure("read-write", args.clients, args.threads, args.tps_duration)
            client1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            time.sleep(1)  # the postmaster reaps pgbench's backends
            server1, archiver1 = server_cpu(bench.server)
            samples = sampler.stop()
            transactions = r["tps"] * args.tps_duration
            r["server_ms"] = (server1 - server0) / transactions * 1000
            r["client_ms"] = (client1.ru_utime + client1.ru_stime - client0.ru_utime - client0.ru_stime) \
                / transactions * 1000
            r["archiver_ms"] = (archiver1 - archiver0) / transactions * 1000
            results[name].append(r)
            line = (f"round {round_number} {name:9} {r['tps']:8.1f} tps  latency {r['latency']:6.2f} ms  "
                    f"WAL {r['wal_per_tx']:.0f} B/tx  checkpoints {r['checkpoints']}  CPU ms/tx server "
                    f"{r['server_ms']:.3f} (archiver {r['archiver_ms']:.3f}) pgbench {r['client_ms']:.3f}")
            if name == "archiving":
                lag = losses(samples, segment_size)
                pushed = push_times(bench.server.server_log()[log_start:])
                lags += lag
                pushes += pushed
                backlog.append(max(s[3] for s in samples))
                line += (f"  archive-push {summary(pushed)}; loss if the host died: {summary(lag)}; "
                         f"most segments waiting {backlog[-1]}")
            print(line, flush=True)
    return {"results": results, "lags": lags, "pushes": pushes, "backlog": max(backlog)}


def light_load_then_host_dies(db: Archived, bench: AppBench, args, segment_size: int) -> dict:
    """A steady, light load; its lag sampled; then the host dies under it."""
    server = db.server
    checked(db.pgbackrest("check"), "pgbackrest check")
    log_start = len(server.server_log())
    # -n: pgbench_history is not emptied first, so it keeps every commit
    load = subprocess.Popen([str(bench.pgbench), "-n", "-c", "2", "-j", "1", "-R", str(args.light_rate),
                             "-T", str(args.light_seconds + 120)], env=bench.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sampler = ArchiveLag(server)
    sampler.start()
    try:
        time.sleep(args.light_seconds)
        samples = sampler.stop()
        pushed = push_times(server.server_log()[log_start:])
        killed = kill_tree(server)
    finally:
        load.kill()
        load.wait()
    lag = losses(samples, segment_size)
    # what the sampler says the kill lost: since the newest moment within the archive
    estimate = losses(samples + [(killed, samples[-1][1], samples[-1][2], 0)], segment_size)[-1]
    print(f"light load ({args.light_rate} tps): archive-push {summary(pushed)}; "
          f"loss if the host died: {summary(lag)}", flush=True)
    # read from the repository alone (archive-get still finds the dead server's pg_control)
    span = checked(db.script("list-backups-physical", "--range"), "list-backups-physical --range").stdout
    _, newest = span.strip().split("\t")
    lost = killed - epoch(newest)
    print(f"host died: the newest commit in the repository is {lost:.1f} s older than the kill "
          f"(the sampler's estimate: {estimate:.1f} s)", flush=True)
    # pitr's target must lie before the newest archived commit
    target = (datetime.datetime.fromisoformat(newest)
              - datetime.timedelta(microseconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    return {"lags": lag, "pushes": pushed, "killed": killed, "lost": lost, "estimate": estimate,
            "target": target, "samples": len(samples)}


def stop(server: PostgresServer) -> None:
    """A clean stop, unless the server was killed (its postmaster.pid outlives it)."""
    pid_file = server.data / "postmaster.pid"
    if pid_file.exists() and Path(f"/proc/{pid_file.read_text().split()[0]}").exists():
        server.stop()


def promoted(db: Archived) -> float:
    """Seconds until the restored server has replayed the WAL and takes writes."""
    started = time.monotonic()
    db.server.start()
    wait_until_promoted(db)
    return time.monotonic() - started


def restore_seconds(output: str) -> float:
    match = re.search(r"restore command end: completed successfully \((\d+)ms\)", output)
    return int(match.group(1)) / 1000 if match else float("nan")


def pitr_restore(db: Archived, target: str) -> dict:
    """The shipped path (scripts/db-pitr, less its copy of the volume) on a
    server with its data (a bad migration): `pitr --check TARGET` while it
    runs (archives its newest WAL; not timed), then stopped, `pitr TARGET
    --yes` (range check, verify, delta restore), then start."""
    if db.server.is_running():
        checked(db.script("pitr", "--check", target), "pitr --check")
    stop(db.server)
    restored, pitr_s = timed(lambda: checked(db.script("pitr", target, "--yes"), "pitr"))
    restore_s = restore_seconds(restored.stdout)
    replay_s = promoted(db)
    return {"total": pitr_s + replay_s, "restore": restore_s, "checks": pitr_s - restore_s, "replay": replay_s}


def new_volume_restore(db: Archived, target: str, failures: list[str]) -> dict:
    """The data volume lost: a new, empty one started (initdb and init/, as
    the container does) and stopped, then `pitr` as db/README.md says. Where
    pitr cannot run there, its own commands: pgbackrest verify, then
    pgbackrest restore with pitr's options."""
    server = db.server
    stop(server)
    lose_data_volume(server)
    server.initialize()
    started = time.monotonic()
    attempt = db.script("pitr", target, "--yes")
    if attempt.returncode == 0:
        restore_s = restore_seconds(attempt.stdout)
        checks_s = time.monotonic() - started - restore_s
    else:
        failures.append(attempt.stderr.strip())
        _, checks_s = timed(lambda: checked(db.pgbackrest("verify"), "pgbackrest verify"))
        _, restore_s = timed(lambda: checked(db.pgbackrest("restore", "--delta", "--type=time", f"--target={target}",
                                                           "--target-action=promote"), "pgbackrest restore"))
    replay_s = promoted(db)
    return {"total": checks_s + restore_s + replay_s, "restore": restore_s, "checks": checks_s,
            "replay": replay_s, "pitr": attempt.returncode == 0}


def logical_restore(db: Archived, dump: Path) -> dict:
    db.sql(f"DROP TABLE IF EXISTS {', '.join(PGBENCH_TABLES)}")
    db.server.query("CHECKPOINT", host=str(db.server.sockets), **db.server.admin)
    result, total = timed(lambda: db.script("restore", str(dump), "--yes"))
    checked(result, "restore")
    return {"total": total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=70, help="pgbench scale factor (default 70: about 1 GB)")
    parser.add_argument("--clients", type=int, default=8, help="pgbench -c of the read-write runs (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="pgbench -j of the read-write runs (default 2)")
    parser.add_argument("--tps-duration", type=int, default=20, help="seconds per read-write run (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating read-write rounds (default 5)")
    parser.add_argument("--light-rate", type=int, default=20, help="transactions/s of the light load (default 20)")
    parser.add_argument("--light-seconds", type=int, default=150,
                        help="seconds of light load before the host dies (default 150: 2.5 archive_timeouts)")
    parser.add_argument("--restore-rounds", type=int, default=2, help="alternating restore rounds (default 2)")
    parser.add_argument("--quick", action="store_true", help="development: scale 5, 10 s runs, 1 round, 70 s light")
    args = parser.parse_args()
    if args.quick:
        args.scale, args.tps_duration, args.rounds, args.light_seconds = 5, 10, 1, 70
    if os.geteuid() != 0:
        raise SystemExit("run as root: the servers and db/bin's scripts run as the postgres user")

    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-archiving-"))
    major = waldump_major()
    project = render_example("giga", work / "giga", {"postgres_version": major})
    pgbench = Path(f"/usr/lib/postgresql/{major}/bin/pgbench")
    servers: list[PostgresServer] = []
    try:
        db = Archived(project)
        servers.append(db.server)
        off = ArchiveOff(project / "db")
        servers.append(off)
        off.initialize()
        off.start()
        benches = {"archiving": AppBench("archiving", db.server, pgbench), "off": AppBench("off", off, pgbench)}
        for name, bench in benches.items():
            _, seconds = timed(lambda bench=bench: bench.run("-i", "-q", "-s", str(args.scale)))
            shown = {s: bench.show(s) for s in ("archive_mode", "wal_level", "archive_timeout", "synchronous_commit")}
            (size,), = bench.query("SELECT pg_database_size(current_database())")
            print(f"{name}: {', '.join(f'{k}={v}' for k, v in shown.items())}; pgbench -i -s {args.scale} "
                  f"{seconds:.0f} s; database {size / 2**20:.0f} MB", flush=True)
        (segment_size,), = benches["archiving"].query(
            "SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'")

        heavy = overhead(benches, db, args, segment_size)
        flush_ms = fdatasync_ms(db.server.root)
        off.destroy()
        servers.remove(off)

        # the same data, twice: a full backup, then a dump, nothing written between
        before = counts(db)
        (size,), = benches["archiving"].query("SELECT pg_database_size(current_database())")
        _, backup_s = timed(lambda: checked(db.script("backup-physical", "full"), "backup-physical full"))
        dumps = db.server.root / "backups"
        dumps.mkdir()
        shutil.chown(dumps, RUN_AS, RUN_AS)
        _, dump_s = timed(lambda: checked(db.script("backup", BACKUP_DIR=str(dumps)), "backup"))
        (dump,) = dumps.glob("*.dump")
        repo_mb = du_mb(db.repo / "backup")
        print(f"database {size / 2**20:.0f} MB: backup-physical full {backup_s:.1f} s "
              f"(repository's backup {repo_mb:.0f} MB); backup (pg_dump) {dump_s:.1f} s "
              f"({dump.stat().st_size / 2**20:.0f} MB)", flush=True)

        light = light_load_then_host_dies(db, benches["archiving"], args, segment_size)

        restores: dict[str, list[dict]] = {kind: [] for kind in RESTORES}
        failures: list[str] = []
        for round_number in range(1, args.restore_rounds + 1):
            order = list(RESTORES) if round_number % 2 else list(RESTORES)[::-1]
            for kind in order:
                if kind == "logical":
                    r = logical_restore(db, dump)
                    assert counts(db) == before, (before, counts(db))
                    detail = "restore --yes (pg_restore, one transaction)"
                else:
                    r = (new_volume_restore(db, light["target"], failures) if kind == "new volume"
                         else pitr_restore(db, light["target"]))
                    after = counts(db)
                    assert after["pgbench_accounts"] == before["pgbench_accounts"], (before, after)
                    assert after["pgbench_history"] >= before["pgbench_history"], (before, after)
                    (newest,), = db.sql("SELECT extract(epoch FROM max(mtime)::timestamptz)::float8 FROM pgbench_history")
                    light.setdefault("restored_lost", light["killed"] - newest)
                    detail = (f"checks and verify {r['checks']:.1f} s, pgbackrest restore {r['restore']:.1f} s, "
                              f"start and WAL replay {r['replay']:.1f} s")
                restores[kind].append(r)
                print(f"restore round {round_number} {kind}: {r['total']:.1f} s to a writable database ({detail})",
                      flush=True)
        if failures:
            print(f"pitr failed on the new volume ({len(failures)} of {len(failures)} times), so its commands ran "
                  f"instead: {failures[0]}", flush=True)
        report(args, major, heavy, light, restores, size, flush_ms, segment_size, dump, repo_mb,
               backup_s, dump_s, time.monotonic() - began)
        return 0
    finally:
        for server in servers:
            try:
                server.destroy()
            except RuntimeError:  # a killed server's stale postmaster.pid
                shutil.rmtree(server.root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def report(args, major, heavy, light, restores, size, flush_ms, segment_size, dump, repo_mb,
           backup_s, dump_s, elapsed) -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    pgbackrest = subprocess.run(["pgbackrest", "version"], capture_output=True, text=True, check=False).stdout.strip()
    print()
    print(f"Machine: {os.cpu_count()} cores ({cpu}), {memory} MiB, {platform.system()} {platform.release()}; "
          f"PostgreSQL {major}; {pgbackrest}; pgbench -s {args.scale} ({size / 2**20:.0f} MB) -c {args.clients} "
          f"-j {args.threads}, {args.tps_duration} s read-write runs, median of {args.rounds} round(s); "
          f"8 kB write + fdatasync: {flush_ms:.2f} ms; load average {os.getloadavg()[0]:.1f}; "
          f"whole run {elapsed / 60:.1f} min")
    print()
    print("| archive_mode | read-write TPS | latency avg ms | WAL bytes/tx | CPU ms/tx server (archiver) + pgbench "
          "| TPS on / off | CPU/tx on / off |")
    print("|---|---|---|---|---|---|---|")
    med: dict[str, dict[str, float]] = {}
    for name in ("off", "archiving"):
        runs = heavy["results"][name]
        med[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        med[name]["cpu"] = statistics.median(r["server_ms"] + r["client_ms"] for r in runs)
    for name in ("off", "archiving"):
        m = med[name]
        ratios = ("1.00x", "1.00x") if name == "off" else (
            f"**{m['tps'] / med['off']['tps']:.2f}x**", f"**{m['cpu'] / med['off']['cpu']:.2f}x**")
        print(f"| {'on (rendered)' if name == 'archiving' else 'off'} | {m['tps']:.0f} | {m['latency']:.2f} | "
              f"{m['wal_per_tx']:.0f} | {m['server_ms']:.3f} ({m['archiver_ms']:.3f}) + {m['client_ms']:.3f} | "
              f"{ratios[0]} | {ratios[1]} |")
    per_round = [a["tps"] / o["tps"] for a, o in zip(heavy["results"]["archiving"], heavy["results"]["off"],
                                                      strict=True)]
    print()
    print(f"TPS on / off, round by round: {', '.join(f'{x:.2f}' for x in per_round)}")
    wal_rate = statistics.median(r["wal_per_tx"] * r["tps"] for r in heavy["results"]["archiving"])
    fill = segment_size / wal_rate
    print()
    print("| load | segment fills in | archive-push, each | most segments waiting | "
          "loss if the host dies, median | max | theory: at most |")
    print("|---|---|---|---|---|---|---|")
    for label, lag, pushes, fills, backlog in (
            (f"read-write, {args.clients} clients, unthrottled", heavy["lags"], heavy["pushes"], fill,
             heavy["backlog"]),
            (f"light, {args.light_rate} tps (-R)", light["lags"], light["pushes"], None, None)):
        push_max = max(pushes) if pushes else 0.0
        bound = (f"{fills:.1f} + {push_max:.1f} s" if fills is not None else f"archive_timeout 60 + {push_max:.1f} s")
        print(f"| {label} | {f'{fills:.1f} s' if fills is not None else '> 60 s'} | "
              f"{statistics.median(pushes) if pushes else 0:.2f} s median, {push_max:.2f} s max | "
              f"{backlog if backlog is not None else '-'} | {statistics.median(lag):.1f} s | {max(lag):.1f} s | "
              f"{bound} |")
    print()
    print(f"The host killed after {args.light_seconds} s of light load: the repository's newest commit was "
          f"{light['lost']:.1f} s older than the kill ({light['lost'] * args.light_rate:.0f} transactions at "
          f"{args.light_rate}/s; the sampler's estimate {light['estimate']:.1f} s); the restored database's "
          f"newest pgbench_history row was written {light['restored_lost']:.1f} s before the kill.")
    print()
    logical = statistics.median(r["total"] for r in restores["logical"])
    print(f"| restore of the {size / 2**20:.0f} MB database | seconds to a writable database | of which | "
          "vs logical |")
    print("|---|---|---|---|")
    print(f"| logical: `restore --yes` of the `backup` dump ({dump.stat().st_size / 2**20:.0f} MB, made in "
          f"{dump_s:.0f} s) into the empty database | {logical:.1f} | pg_restore, one transaction | 1.00x |")
    labels = {"new volume": "physical, data volume lost: a new one initialised, then restored",
              "pitr": "physical, `pitr TARGET --yes` on the stopped server's data (delta)"}
    for kind, label in labels.items():
        med = {k: statistics.median(r[k] for r in restores[kind]) for k in ("total", "checks", "restore", "replay")}
        print(f"| {label} (full backup {repo_mb:.0f} MB, made in {backup_s:.0f} s) | {med['total']:.1f} | "
              f"checks and `pgbackrest verify` {med['checks']:.1f}, `pgbackrest restore` {med['restore']:.1f}, "
              f"start and WAL replay {med['replay']:.1f} | **{med['total'] / logical:.2f}x** |")
    print()
    print(f"median of {args.restore_rounds} restore round(s)")


if __name__ == "__main__":
    sys.exit(main())
