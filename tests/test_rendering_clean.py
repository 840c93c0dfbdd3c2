"""Quick tier: every render is clean: the defaults, every example and every
`postgres_version` render with no Jinja left over and valid YAML, under the
names docs/architecture.md gives; examples/giga/ is the current render of
examples/giga.yml, with placeholders for secrets and its env files committed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path


from harness.answers import as_typed, recorded as answers, secrets as secrets_of
from harness import compose, dotenv
from harness.render import (PLACEHOLDER_SECRETS, REFRESH_COMMAND, RENDER_SPECIFIC, REPO, project_files,
                            render_reference, tree_differences)
from harness.rendered import dev_compose, read_yaml, rendered_text_files


JINJA_LEFTOVER = re.compile(r"\{\{|\}\}|\{%|%\}")
GITHUB_EXPRESSION = re.compile(r"\$\{\{ [^{}]* \}\}")  # GitHub Actions' own ${{ }} in .github/
# docker's --format takes a Go template, whose actions are written {{...}} too.
DOCKER_FORMAT = re.compile(r"docker (?:network )?inspect --format '\{\{[^'\n]*\}\}'")


def without_foreign_templates(path: Path, text: str) -> str:
    """The text minus what other template languages write with braces too:
    GitHub Actions' ${{ }} in .github/, docker's --format Go templates,
    Django's templates (an app's templates/*.html)."""
    if ".github" in path.parts:
        text = GITHUB_EXPRESSION.sub("", text)
    if "templates" in path.parts and path.suffix == ".html":
        return ""
    return DOCKER_FORMAT.sub("docker-format", text)


# ---------------------------------------------------------------------------
# Every render is clean
# ---------------------------------------------------------------------------


def assert_clean_render(project: Path) -> None:
    leftovers = [f"{p.relative_to(project)}: {m.group(0)!r}"
                 for p, text in rendered_text_files(project)
                 if p.suffix not in {".svelte", ".ts", ".js"}  # {{ }} is legitimate outside Jinja files there
                 for m in [JINJA_LEFTOVER.search(without_foreign_templates(p, text))] if m]
    assert not leftovers, f"Jinja left in the output: {leftovers}"
    assert not [p for p in project_files(project) if p.suffix == ".jinja"]
    for path in project_files(project):
        if path.suffix in {".yml", ".yaml"}:
            read_yaml(path)  # raises on invalid YAML


def test_defaults_render_cleanly(default_project):
    assert_clean_render(default_project)


def test_examples_render_cleanly(example):
    assert_clean_render(example)


def test_every_postgres_version_renders_cleanly(versioned_project):
    assert_clean_render(versioned_project)


def test_defaults_reproduce_the_architecture_document(default_project):
    # The document's names, with no answers given at all.
    a = answers(default_project)
    assert (a["project_slug"], a["db_service"], a["db_name"], a["db_user"], a["network_name"]) == (
        "giga", "giga-db", "giga", "giga_user", "giga_dev_network")
    name, service = compose.db_service(default_project)
    assert name == "giga-db" and service["container_name"] == "giga_db_dev"
    dev = dev_compose(default_project)["services"]
    assert dev["backend"]["container_name"] == "giga_backend_dev"
    assert dev["frontend"]["container_name"] == "giga_frontend_dev"


def test_giga_example_is_the_documents_names(giga_project):
    a = answers(giga_project)
    assert (a["db_service"], a["db_name"], a["db_user"], a["network_name"]) == (
        "giga-db", "giga", "giga_user", "giga_dev_network")
    typed = as_typed(giga_project)
    assert (typed["db_port"], typed["backend_port"], typed["frontend_port"]) == ("5432", "8000", "5173")


# ---------------------------------------------------------------------------
# examples/giga/: the committed render, so that review shows what a template
# change does to a real project
# ---------------------------------------------------------------------------
GIGA_REFERENCE = REPO / "examples/giga"


def test_examples_giga_is_the_current_render(tmp_path):
    differences = tree_differences(GIGA_REFERENCE, render_reference("giga", tmp_path / "giga"))
    assert not differences, ("examples/giga/ is not what the template renders from examples/giga.yml:\n"
                             + "\n".join(differences) + f"\nRefresh it with {REFRESH_COMMAND} and commit it.")


def test_reference_comparison_sees_every_kind_of_difference(tmp_path):
    render = tmp_path / "giga"
    shutil.copytree(GIGA_REFERENCE, render)
    executable = next(path for path in sorted(render.rglob("*")) if path.is_file() and os.access(path, os.X_OK))
    (render / "README.md").write_text((render / "README.md").read_text() + "one more line\n")
    (render / "docs/api-contract.md").unlink()
    (render / "db/init/50-new.sql").write_text("SELECT 1;\n")
    executable.chmod(0o644)
    report = "\n".join(tree_differences(GIGA_REFERENCE, render))
    assert "+one more line" in report and "committed/README.md" in report
    assert "not in the render: docs/api-contract.md" in report
    assert "only in the render: db/init/50-new.sql" in report
    assert f"executable bit differs: {executable.relative_to(render).as_posix()}" in report
    assert tree_differences(GIGA_REFERENCE, GIGA_REFERENCE) == []


def test_examples_giga_holds_placeholders_and_commits_its_env_files():
    db_secrets = secrets_of(GIGA_REFERENCE)
    assert db_secrets == {key: PLACEHOLDER_SECRETS[key] for key in db_secrets}
    assert dotenv.load(GIGA_REFERENCE / "back/.env")["DJANGO_SECRET_KEY"] == PLACEHOLDER_SECRETS["django_secret_key"]
    typed = as_typed(GIGA_REFERENCE)
    assert {key: typed[key] for key in RENDER_SPECIFIC} == RENDER_SPECIFIC
    # The render's .gitignore ignores its env files: they must be committed anyway (git add -f).
    ignored = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--", "."],
                             cwd=GIGA_REFERENCE, capture_output=True, text=True, check=True).stdout.split()
    assert ignored == [], f"git add -f these in examples/giga: {ignored}"
