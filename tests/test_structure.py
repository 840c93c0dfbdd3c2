"""The repository's own shape, held by budgets: the harness is imported
through the path pytest.ini (and the scripts' PYTHONPATH) gives it, never by
editing sys.path, and no module grows past its budget unnoticed."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Lines per module. Each harness module has one job; the largest today
# (postgres.py, the native server) sits under its budget.
BUDGETS = {"harness": 450, "tests": 1400, "tests/benchmarks": 600}
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
