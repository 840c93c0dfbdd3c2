"""Caches shared by processes: the suite runs in pytest-xdist workers, which
share /var/tmp's caches (virtualenvs, PostgreSQL builds, actionlint)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Held by one process at a time: `path`.lock, created beside `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def build_once(path: Path, done: Callable[[], bool], build: Callable[[], None]) -> None:
    """build() unless done(); one process builds while the others wait, then
    find it done."""
    if done():
        return
    with exclusive(path):
        if not done():
            build()
