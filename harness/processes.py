"""Processes the tests start and end as a container's would end: every
process below a pid (read from /proc), to kill a whole tree as a killed
container loses it, and a loop stopped by SIGTERM, as `docker stop` stops it."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every process below `pid`."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_promptly(process: subprocess.Popen, timeout: float = 10) -> float:
    """SIGTERM, as `docker stop` sends it; the process must exit with 0 within
    `timeout` seconds (killed in any case). Returns how long it took to exit."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=timeout) == 0
    finally:
        process.kill()
    return time.monotonic() - started
