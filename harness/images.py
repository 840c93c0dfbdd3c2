"""The image pins, read from the one place each is written: includes/images.jinja
(python, node, caddy, mailpit, the exporter; the CloudNativePG operator's and
the Barman Cloud plugin's releases) and includes/postgres.jinja (each
PostgreSQL major's release). The tests and the stand-in images read them here;
nothing else writes a pin down.

    python -m harness.images            every image the project runs, one a line
    python -m harness.images KEY        one pin (python, cloudnative_pg, postgres:18, ...)

Standard library only: scripts/docker-engine runs it before any virtualenv.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

INCLUDES = Path(__file__).resolve().parents[1] / "includes"
IMAGES_JINJA = INCLUDES / "images.jinja"
POSTGRES_JINJA = INCLUDES / "postgres.jinja"


def _block(text: str, name: str) -> dict[str, str]:
    """The `"key": "value",` (or `15: "value",`) lines of `{%- set NAME = {`."""
    body = re.search(r"\{%-? set " + name + r" = \{\n(.*?)\n\} -?%\}", text, re.S)
    if body is None:
        raise ValueError(f"no `set {name} = {{...}}` block")
    return dict(re.findall(r'^ +"?([\w]+)"?: "([^"]+)",$', body.group(1), re.M))


_images_text = IMAGES_JINJA.read_text()
# key -> the exact image reference (python -> python:<tag>)
IMAGES: dict[str, str] = _block(_images_text, "images")
# key -> a release the Kubernetes manifests target (cloudnative_pg -> <version>)
RELEASES: dict[str, str] = _block(_images_text, "releases")
# PostgreSQL major -> its release (18 -> 18.<minor>-trixie)
POSTGRES: dict[int, str] = {int(major): release
                            for major, release in _block(POSTGRES_JINJA.read_text(), "releases").items()}


def version(key: str) -> str:
    """The release an image's tag names: python:3.13.X-slim-bookworm -> 3.13.X (as images.jinja's macro)."""
    return IMAGES[key].rpartition(":")[2].split("-")[0].lstrip("v")


def postgres_image(major: int | str) -> str:
    return f"postgres:{POSTGRES[int(major)]}"


def all_images() -> list[str]:
    """Every image the compose files and Dockerfiles name, PostgreSQL's included."""
    return sorted({*IMAGES.values(), *(postgres_image(major) for major in POSTGRES)})


def pin(key: str) -> str:
    if key.startswith("postgres:"):
        return postgres_image(key.partition(":")[2])
    return IMAGES.get(key) or RELEASES[key]


if __name__ == "__main__":
    try:
        print(*(all_images() if len(sys.argv) < 2 else [pin(sys.argv[1])]), sep="\n")
    except KeyError as error:
        sys.exit(f"harness.images: no pin {error}")
