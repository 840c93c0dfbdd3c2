"""Full tier: in a copy of the rendered front/, `npm ci`, `npm run check`,
`npm run lint`, `npm test -- --run` and `npm run build` all pass (coverage:
test_front_coverage.py), other answers still check and lint, and neither
the sources nor the build carry anything of the database.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harness import compose
from harness.node import npm, shown
from harness.render import EXAMPLES, example_answers


# ---------------------------------------------------------------------------
# Full tier: npm in a copy of the rendered front/ (conftest: front_installed, front_built)
# ---------------------------------------------------------------------------
@pytest.mark.full
def test_npm_ci_installs_exactly_the_lockfile(front_installed):
    assert (front_installed / "node_modules/.bin/vite").exists()
    lock = json.loads((front_installed / "package-lock.json").read_text())
    package = json.loads((front_installed / "package.json").read_text())
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"]
    pinned = {**package.get("dependencies", {}), **package["devDependencies"]}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in pinned.values()), pinned
    assert pinned["@sveltejs/kit"].startswith("2."), "Kit 3 needs Node >= 22.17"


@pytest.mark.full
def test_npm_run_check(front_installed):
    result = npm(front_installed, "run", "check")
    assert result.returncode == 0, shown(result)
    assert "0 errors" in result.stdout, shown(result)


@pytest.mark.full
def test_npm_run_lint(front_installed):
    result = npm(front_installed, "run", "lint")
    assert result.returncode == 0, shown(result)


@pytest.mark.full
def test_npm_test(front_installed):
    result = npm(front_installed, "test", "--", "--run")
    assert result.returncode == 0, shown(result)
    passed = re.search(r"Tests\s+(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) > 0, shown(result)
    assert "failed" not in result.stdout.split("Test Files", 1)[-1], shown(result)


@pytest.mark.full
def test_npm_run_build(front_built):
    assert (front_built / "build/index.js").is_file()
    assert (front_built / "build/handler.js").is_file()
    assert list((front_built / "build/client/_app/immutable").rglob("*.js"))


@pytest.mark.full
def test_other_answers_still_check_and_lint(render, front_installed, tmp_path):
    """The templated files (vite.config.ts above all) stay valid and prettier-clean for other names and ports."""
    for path in EXAMPLES:
        if path.stem == "giga":
            continue
        front = tmp_path / path.stem
        shutil.copytree(render(example_answers(path.stem)) / "front", front)
        (front / "node_modules").symlink_to(front_installed / "node_modules")
        for script in ("check", "lint"):
            result = npm(front, "run", script)
            assert result.returncode == 0, f"{path.stem}: {shown(result)}"


@pytest.mark.full
def test_no_database_secret_or_name_in_front_or_its_build(giga_project, front_built):
    containers = compose.environments(giga_project)
    db_env, back_env = containers["db"], containers["backend"]
    values = {
        "POSTGRES_PASSWORD": db_env["POSTGRES_PASSWORD"],
        "APP_DB_PASSWORD": db_env["APP_DB_PASSWORD"],
        "DB_PASSWORD": back_env["DB_PASSWORD"],
        "DJANGO_SECRET_KEY": back_env["DJANGO_SECRET_KEY"],
    }
    assert all(len(v) >= 32 for v in values.values()), "expected generated secrets"
    needles = {f"the value of {k}": v for k, v in values.items()}
    needles |= {"DB_PASSWORD": "DB_PASSWORD", "POSTGRES_": "POSTGRES_",
                "the db user": db_env["APP_DB_USER"]}

    def files(root: Path):
        return [p for p in root.rglob("*") if p.is_file() and "node_modules" not in p.relative_to(root).parts]

    searched = files(giga_project / "front") + files(front_built / "build")
    assert any(p.name == "index.js" for p in searched) and any(p.name == "+page.svelte" for p in searched)
    found = [f"{p}: {what}" for p in searched for what, needle in needles.items()
             if needle.encode() in p.read_bytes()]
    assert not found, found
