"""What the documents promise reaches a file: the generated READMEs give
docs/architecture.md's steps with the project's names, and every path the
output names is in the output; the template's README is a short front door
whose first command renders a project with a Copier of its own and whose
second `.ci/run` runs; every relative link in it and in docs/ resolves.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from harness.answers import recorded as answers
from harness.render import REPO
from harness.rendered import rendered_text_files


def test_generated_readmes_give_the_documents_steps_with_the_projects_names(example):
    a = answers(example)
    slug, user, name = a["project_slug"], a["db_user"], a["db_name"]
    readme = (example / "README.md").read_text() + (example / "docs/operations.md").read_text()
    for step in ("cd db && docker compose up -d",
                 "cd .. && docker compose -f docker-compose.dev.yml up -d backend worker frontend mailpit",
                 f"docker exec {slug}_backend_dev python manage.py migrate",
                 f'docker exec {slug}_db_dev psql -U {user} -d {name} -c "\\dt"',
                 f"docker exec {slug}_backend_dev python manage.py verify_architecture",
                 "SELECT id, username, email FROM personas_usuario WHERE username='test';"):
        assert step in readme, step
    db_readme = (example / "db/README.md").read_text()
    assert f"{slug}_db_data" in db_readme and "docker compose down" in db_readme


@pytest.mark.full
def test_readme_front_door_renders_with_its_own_copier(tmp_path):
    """The README's first command, as a new user runs it: no Copier installed yet."""
    readme = (REPO / "README.md").read_text()
    first_command = re.search(r"```bash\n(scripts/new-project \S+ --defaults)", readme).group(1)
    assert first_command == "scripts/new-project ../giga --defaults"
    destination = tmp_path / "work" / "giga"
    (tmp_path / "work" / "here").mkdir(parents=True)
    # Spelled as the README spells it (relative, with `..`); the command renders
    # the newest release tag, --vcs-ref HEAD makes it render the code under test.
    result = subprocess.run([str(REPO / "scripts/new-project"), "../giga", "--defaults", "--vcs-ref", "HEAD"],
                            cwd=tmp_path / "work" / "here", capture_output=True, text=True,
                            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    # a first copy has no previous answers to read: expected, not worth a warning
    assert "MissingFileWarning" not in result.stderr, result.stderr
    assert (tmp_path / "cache/isolated-db-template/copier-9.19.1/bin/copier").exists()
    assert answers(destination)["project_slug"] == "giga"
    assert (destination / "db/.env").exists() and (destination / "back/.env").exists()


def test_ci_runs_the_readmes_test_command():
    readme = (REPO / "README.md").read_text()
    test_command = re.search(r"```bash\n.*\n(scripts/test)\b", readme).group(1)
    assert test_command in (REPO / ".ci/run").read_text()


# The rule: the root README is the template's front door (what it is, the two
# commands, what you get, requirements, where to read next) and docs/ holds the
# rest, each fact once. 160 lines is what such a door needs; past it, move a
# section into docs/ and link to it rather than raise the budget.
README_BUDGET = 160


def test_readme_is_a_short_front_door():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_BUDGET, (
        f"README.md has {len(lines)} lines, over its budget of {README_BUDGET}: move the detail into docs/")


# The generated README is the project's front door by the same rule: what it
# is, how to start it, the everyday commands, where to read more. Operations,
# production and updating are in its docs/. 120 lines hold that; past it, move
# a section into docs/.
PROJECT_README_BUDGET = 120


def test_generated_readme_is_a_short_front_door(example):
    lines = (example / "README.md").read_text().splitlines()
    assert len(lines) <= PROJECT_README_BUDGET, (
        f"the generated README has {len(lines)} lines, over its budget of {PROJECT_README_BUDGET}")
    read_more = (example / "README.md").read_text().split("\n## Read more\n", 1)[1]
    for guide in ("docs/operations.md", "docs/production.md", "docs/updating.md", "docs/architecture.md"):
        assert f"]({guide})" in read_more and (example / guide).is_file(), guide


def broken_links(files: list[Path], root: Path) -> list[str]:
    """Relative Markdown links that do not resolve, from the linking file, to a
    file or directory inside root; a #anchor, when given, must name a heading
    of the linked Markdown file."""
    broken = []
    for path in files:
        for target in MARKDOWN_LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"[a-z][a-z+.-]*:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path.resolve()
            where = path.relative_to(root)
            if not linked.exists() or root.resolve() not in [linked, *linked.parents]:
                broken.append(f"{where}: link to {target}")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.M)
                if anchor not in {github_anchor(h) for h in headings}:
                    broken.append(f"{where}: link to {target} (no such heading)")
    return broken


def test_readme_and_docs_links_resolve(tmp_path):
    """The README sends readers into docs/ and docs/ into the repository: every
    relative link there reaches a file that exists (and its heading, if named)."""
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert broken_links(docs, REPO) == []
    # the check itself: a page whose links miss
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/page.md").write_text("# Page\n")
    (tmp_path / "README.md").write_text("[ok](docs/page.md#page) [gone](docs/gone.md) [wrong](docs/page.md#nowhere)"
                                        " [up](../outside.md) [web](https://example.com/x.md)\n")
    assert broken_links([tmp_path / "README.md"], tmp_path) == [
        "README.md: link to docs/gone.md", "README.md: link to docs/page.md#nowhere (no such heading)",
        "README.md: link to ../outside.md"]


# ---------------------------------------------------------------------------
# The output stands on its own: every path it names is in it
# ---------------------------------------------------------------------------
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH_MENTION = re.compile(r"(?<![\w./@:-])((?:docs|scripts|tests|back|front|db|src)/[\w.{},/-]*)")
IGNORE_LISTS = {".gitignore", ".dockerignore", ".prettierignore"}  # patterns, not references


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def missing_references(project: Path) -> list[str]:
    """Markdown links (and their #anchors) resolved from the linking file, and
    mentions of docs/, scripts/, tests/, back/, front/, db/ and src/ paths
    resolved from the file's directory or any directory above it up to the
    project root."""
    missing = []
    for path, text in rendered_text_files(project):
        if path.name in IGNORE_LISTS:
            continue
        where = path.relative_to(project)
        for target in MARKDOWN_LINK.findall(text):
            if re.match(r"[a-z][a-z+.-]*:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists() or project.resolve() not in [linked, *linked.parents]:
                missing.append(f"{where}: link to {target}")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.M)
                if anchor not in {github_anchor(h) for h in headings}:
                    missing.append(f"{where}: link to {target} (no such heading)")
        for mention in PATH_MENTION.findall(text):
            mention = mention.rstrip(".,;:")
            alternatives = re.match(r"(.*)\{([^}]*)\}(.*)", mention)
            names = ([alternatives[1] + part + alternatives[3] for part in alternatives[2].split(",")]
                     if alternatives else [mention])
            bases = [path.parent, *path.parent.relative_to(project).parents]
            for name in names:
                if not any((project / base / name).exists() for base in bases):
                    missing.append(f"{where}: {name}")
    return missing


def test_every_path_the_output_names_is_in_the_output(example, tmp_path):
    assert missing_references(example) == []
    # the check itself: a copy whose files name paths it lacks
    copy = tmp_path / "copy"
    copy.mkdir()
    for relative in ("README.md", "docs/architecture.md", "back/README.md"):
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        (copy / relative).write_text((example / relative).read_text())
    (copy / "back/conftest.py").write_text("# as the template's tests/harness/django.py does\n")
    (copy / "docs/architecture.md").write_text((copy / "docs/architecture.md").read_text()
                                                + "\nSee [the runbook](runbook.md), [ops](../README.md#operations)"
                                                  " and scripts/bench_back.py.\n")
    found = missing_references(copy)
    for expected in ("back/conftest.py: tests/harness/django.py",
                     "docs/architecture.md: link to runbook.md",
                     "docs/architecture.md: link to ../README.md#operations (no such heading)",
                     "docs/architecture.md: scripts/bench_back.py",
                     "docs/architecture.md: link to ../front/README.md",  # front/ was not copied
                     "README.md: front/README.md"):
        assert expected in found, found
