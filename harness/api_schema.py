"""The API's contract, as the generated project commits it: the OpenAPI
schema dumped by the backend (front/src/lib/api/openapi.json) and the
TypeScript types openapi-typescript makes of it (schema.d.ts).

`generate(project, front_installed)` runs the project's own commands (the
dump of `make api-types`, then `npm run gen:api`) on the rendered backend
and front; `update_template()` (scripts/api-types) writes the result back
into template/, the schema's title templated again from project_name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

from .answers import recorded
from .backend import Backend
from .node import npm
from .python import venv_for

SCHEMA = Path("front/src/lib/api/openapi.json")
TYPES = Path("front/src/lib/api/schema.d.ts")
TEMPLATE = Path(__file__).resolve().parents[1] / "template"
# What `make api-types` runs in the backend container (a test checks the
# Makefile says the same). English, whatever LANGUAGE_CODE: the committed
# files are the same in every project.
DUMP = ("python", "manage.py", "spectacular", "--validate", "--fail-on-warn", "--lang", "en",
        "--format", "openapi-json")
# The dump reads no database: the settings only need their variables.
NO_DATABASE = SimpleNamespace(port=5432, address="127.0.0.1")


def dump_schema(project: Path) -> str:
    backend = Backend(project, NO_DATABASE, venv_for(project / "back"))
    return backend.run(*DUMP, check=True, timeout=120).stdout


def generate(project: Path, front_installed: Path) -> dict[Path, str]:
    """{SCHEMA: the dumped schema, TYPES: `npm run gen:api` of it}, from
    `project`'s back/ and front/ (`front_installed`: a front/ with its
    node_modules, e.g. harness.node.install)."""
    schema = dump_schema(project)
    with tempfile.TemporaryDirectory(prefix="gen-api-") as tmp:
        front = Path(tmp) / "front"
        shutil.copytree(project / "front", front, ignore=shutil.ignore_patterns("node_modules", "build", ".svelte-kit"))
        (front / "node_modules").symlink_to(front_installed / "node_modules")
        (front / SCHEMA.relative_to("front")).write_text(schema)
        result = npm(front, "run", "gen:api")
        if result.returncode != 0:
            raise AssertionError(f"npm run gen:api failed:\n{result.stdout}\n{result.stderr}")
        types = (front / TYPES.relative_to("front")).read_text()
    return {SCHEMA: schema, TYPES: types}


def templated_schema(schema: str, project_name: str) -> str:
    """The dumped schema as template/'s openapi.json.jinja: verbatim, but for
    the title, which the backend takes from project_name."""
    title = json.dumps(f"{project_name} API", ensure_ascii=False)
    line = f'        "title": {title},\n'
    if schema.count(line) != 1:
        raise AssertionError(f"the schema's title line is not {line!r}")
    before, after = schema.split(line)
    return ("{%- from 'includes/python.jinja' import python_str -%}\n"
            f"{{% raw %}}{before}{{% endraw %}}"
            '        "title": {{ python_str(project_name ~ " API") }},\n'
            f"{{% raw %}}{after}{{% endraw %}}")


def update_template(project: Path, front_installed: Path) -> list[Path]:
    """Rewrites template/'s committed schema and types from `project` (a
    render of the working tree); returns the files written."""
    generated = generate(project, front_installed)
    schema_template = TEMPLATE / "front" / SCHEMA.relative_to("front").with_suffix(".json.jinja")
    schema_template.write_text(templated_schema(generated[SCHEMA], recorded(project)["project_name"]))
    types = TEMPLATE / TYPES
    types.write_text(generated[TYPES])
    return [schema_template, types]


def git_diff(expected: str, actual: str, name: str) -> str:
    """A unified diff of two texts, for a failure message."""
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "committed", Path(tmp) / "generated"
        a.write_text(expected)
        b.write_text(actual)
        out = subprocess.run(["diff", "-u", "--label", f"{name} (committed)", "--label", f"{name} (generated)",
                              str(a), str(b)], capture_output=True, text=True)
        return out.stdout[:6000]
