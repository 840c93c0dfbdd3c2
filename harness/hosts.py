"""Resolve compose service names the way Docker's embedded DNS does.

Inside the network the backend reaches the database as `<db_service>`. To run
the backend natively with its settings untouched, we give the process its own
mount namespace where /etc/hosts also maps the service names (needs root, as
CI is). Nothing on the machine changes.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path


def with_hosts(names: dict[str, str]) -> list[str]:
    """A command prefix that runs the rest with `names` (host -> IP) resolvable."""
    hosts = _hosts_file(tuple(sorted(names.items())))
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]


@functools.cache
def _hosts_file(entries: tuple[tuple[str, str], ...]) -> Path:
    """/etc/hosts plus `entries`, written once per mapping and process."""
    hosts = Path(tempfile.mkstemp(prefix="hosts-")[1])
    lines = [f"{ip} {name}" for name, ip in entries]
    hosts.write_text(Path("/etc/hosts").read_text() + "\n" + "\n".join(lines) + "\n")
    hosts.chmod(0o644)
    return hosts
