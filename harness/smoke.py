"""Smoke-test a rendered project as its own CI would: `scripts/smoke ANSWERS [DEST]`.

Renders the template with an answers file (`copier copy --data-file ANSWERS
--defaults --vcs-ref HEAD`, no --trust) into DEST (default: a new temporary
directory, kept for inspection), then runs the checks of the project's
.github/workflows/ci.yml natively, no Docker engine needed:

* lint: the .pre-commit-config.yaml hooks that need no network (leftover
  conflict markers, ruff, hadolint, shellcheck) and the compose files against
  the compose-spec schema (CI runs `docker compose config`);
* back: mypy (strict), then its pytest suite with coverage (`pytest --cov`,
  held to its threshold) against a real PostgreSQL started from the rendered
  db/ (harness.postgres), in the environment its container gets (harness.backend);
* front: npm ci, then `npm run check`, `npm run test:coverage` (vitest, held
  to vite.config.ts's coverage thresholds), `npm run lint` (prettier, eslint)
  and `npm run build` (harness.node).

Exits 0 when every check passes; prints each with its duration.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from subprocess import CompletedProcess, run

import yaml

from . import compose, node
from .backend import Backend
from .postgres import start_project_db
from .python import venv_for
from .render import REPO, copier_cli, project_files


def shell_scripts(project: Path) -> list[Path]:
    """*.sh, and files whose shebang names a shell."""
    return [path for path in project_files(project)
            if "node_modules" not in path.parts
            and (path.suffix == ".sh" or path.read_bytes()[:2] == b"#!" and b"sh" in path.read_bytes().split(b"\n")[0])]


def hook_args(project: Path, hook_id: str) -> list[str]:
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    (hook,) = [hook for repo in config["repos"] for hook in repo["hooks"] if hook["id"] == hook_id]
    return hook.get("args", [])


def tool(*args: str | Path, cwd: Path | None = None, timeout: float = 300) -> CompletedProcess:
    return run([str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def lint(project: Path, workdir: Path) -> list[CompletedProcess]:
    files = [path for path in project_files(project) if "node_modules" not in path.parts]
    return [
        tool("check-merge-conflict", *hook_args(project, "check-merge-conflict"), *files),
        tool("ruff", "check", "--no-cache", "back", cwd=project),
        *(tool("hadolint", dockerfile) for dockerfile in sorted(project.rglob("Dockerfile"))),
        tool("shellcheck", *shell_scripts(project)),
        tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec",
             *compose.spec_documents(project, workdir)),
    ]


def back(project: Path, workdir: Path) -> list[CompletedProcess]:
    server = start_project_db(project)
    try:
        backend = Backend(project, server, venv_for(project / "back"))
        # Caches and coverage data in workdir: nothing is written into the render.
        return [backend.run("mypy", env={"MYPY_CACHE_DIR": str(workdir / "mypy-cache")}, timeout=900),
                backend.run("pytest", "-q", "-p", "no:cacheprovider", "--cov", timeout=900,
                            env={"COVERAGE_FILE": str(workdir / ".coverage")})]
    finally:
        server.destroy()


def front(project: Path, workdir: Path) -> list[CompletedProcess]:
    installed = node.install(project / "front", workdir / "front")
    return [node.npm(installed, "run", script) for script in ("check", "test:coverage", "lint", "build")]


def render(answers_file: Path, destination: Path) -> CompletedProcess:
    return copier_cli("copy", "--data-file", str(answers_file), "--defaults", "--vcs-ref", "HEAD",
                      str(REPO), str(destination))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/smoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("answers", type=Path, help="answers file, e.g. examples/giga.yml")
    parser.add_argument("destination", type=Path, nargs="?", help="where to render (default: a new temporary directory)")
    options = parser.parse_args(argv)
    # absolute, without `..`: Copier refuses _external_data under a path spelled with `..`
    destination = (options.destination or Path(tempfile.mkdtemp(prefix="smoke-")) / options.answers.stem).resolve()
    workdir = Path(tempfile.mkdtemp(prefix="smoke-work-"))
    failed = []

    def step(name: str, action) -> None:
        started = time.monotonic()
        try:
            results = action()
            errors = [node.shown(r) for r in results if r.returncode != 0]
        except Exception as error:  # a failed install or server start is a failed check, reported as such
            errors = [f"{type(error).__name__}: {error}"]
        print(f"[smoke] {name}: {'FAILED' if errors else 'ok'} ({time.monotonic() - started:.0f} s)", flush=True)
        if errors:
            failed.append(name)
            print("\n".join(errors), file=sys.stderr, flush=True)

    step(f"render {options.answers} -> {destination}", lambda: [render(options.answers.resolve(), destination)])
    if failed:
        return 1
    step("lint", lambda: lint(destination, workdir))
    step("back: mypy, pytest --cov against PostgreSQL", lambda: back(destination, workdir))
    step("front: check, test, lint, build", lambda: front(destination, workdir))
    print(f"[smoke] {'FAILED: ' + ', '.join(failed) if failed else 'all checks passed'} ({destination})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
