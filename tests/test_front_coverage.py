"""front/'s unit-test coverage: statically (quick tier), vitest's V8 coverage
from the release of @vitest/coverage-v8 that matches vitest's, a threshold
of every kind, its reports kept out of git, lint and `docker build`; in a
copy of front/ (full tier), `npm run test:coverage` reports every source file,
its totals at most a few points above each threshold, and a threshold above a
total fails the run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.node import npm, shown


COVERAGE_KINDS = {"statements", "branches", "functions", "lines"}


def coverage_thresholds(front: Path) -> dict[str, float]:
    """vite.config.ts's `coverage.thresholds`, by kind."""
    block = re.search(r"^\t\t\tthresholds: \{([^}]*)\}", (front / "vite.config.ts").read_text(), re.M).group(1)
    return {kind: float(value) for kind, value in re.findall(r"(\w+): ([\d.]+)", block)}


def test_front_unit_tests_report_coverage_with_vitests_own_release(example):
    """`npm run test:coverage`: vitest's V8 coverage, from the release of
    @vitest/coverage-v8 that matches vitest's, held to a threshold of every
    kind; its reports are not committed, linted or sent to `docker build`."""
    front = example / "front"
    package = json.loads((front / "package.json").read_text())
    dev = package["devDependencies"]
    assert dev["@vitest/coverage-v8"] == dev["vitest"]
    assert package["scripts"]["test:coverage"] == "vitest run --coverage"
    lock = json.loads((front / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/@vitest/coverage-v8"]["version"] == lock["node_modules/vitest"]["version"] == dev["vitest"]
    vite = (front / "vite.config.ts").read_text()
    assert "provider: 'v8'" in vite and "reportsDirectory: 'coverage'" in vite
    thresholds = coverage_thresholds(front)
    assert set(thresholds) == COVERAGE_KINDS and all(50 <= v < 100 for v in thresholds.values()), thresholds
    # prettier and eslint skip what .gitignore lists
    assert "/coverage" in (front / ".gitignore").read_text().splitlines()
    assert "coverage" in (front / ".dockerignore").read_text().splitlines()


@pytest.mark.full
def test_npm_run_test_coverage_reports_it_and_holds_its_thresholds(front_installed, tmp_path):
    """The table (on the terminal, and plain in coverage.txt for CI's run
    summary) and the totals, over every source file, tests or not; each total
    at most a few points above its threshold (what the shipped tests reach,
    minus a small margin); and a threshold above the total fails the run."""
    reports = tmp_path / "coverage"
    result = npm(front_installed, "run", "test:coverage", "--", f"--coverage.reportsDirectory={reports}")
    assert result.returncode == 0, shown(result)
    assert re.search(r"^All files\s+\|", result.stdout, re.M), shown(result)
    table = (reports / "coverage.txt").read_text()
    assert re.search(r"^File\s+\| % Stmts \| % Branch \| % Funcs \| % Lines \|", table, re.M), table
    assert "All files" in table and "\x1b[" not in table, table
    summary = json.loads((reports / "coverage-summary.json").read_text())
    counted = {Path(name).relative_to(front_installed).as_posix() for name in summary if name != "total"}
    sources = {p.relative_to(front_installed).as_posix() for p in (front_installed / "src").rglob("*")
               if p.suffix in {".ts", ".svelte"} and not p.name.endswith((".spec.ts", ".d.ts"))
               and "testing" not in p.parts}
    assert counted == sources, counted ^ sources
    thresholds = coverage_thresholds(front_installed)
    totals = {kind: summary["total"][kind]["pct"] for kind in COVERAGE_KINDS}
    for kind, minimum in thresholds.items():
        assert minimum <= totals[kind] <= minimum + 5, (kind, minimum, totals[kind])

    over = npm(front_installed, "run", "test:coverage", "--", f"--coverage.reportsDirectory={tmp_path / 'over'}",
               f"--coverage.thresholds.statements={totals['statements'] + 0.5}")
    assert over.returncode != 0, shown(over)
    assert re.search(r"Coverage for statements \([\d.]+%\) does not meet global threshold", over.stdout + over.stderr), \
        shown(over)
