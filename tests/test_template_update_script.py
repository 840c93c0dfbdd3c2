"""Updates come to the team through the generated project's
scripts/template-update (`make template-update`, `make template-drift`).
Quick tier: the Makefile's targets, ruff, one Copier pin, and the
CHANGELOG's **Action** lines read per release.

The full tier runs it on real git history, as test_update.py does
(harness.template_git): a clone of this repository (the working tree
committed) plays the template's upstream, released as 0.2.0, then 0.3.0 and
0.4.0, each with a CHANGELOG.md entry whose **Action** text is unique to it.
A project generated at 0.2.0 and edited by its team is updated through make,
and through the workflow's own `run:` steps against a bare repository
standing in for GitHub (a fake `gh` records what it would open); `make
template-drift` lists the team's edits.
"""

from __future__ import annotations

import dataclasses
import importlib.machinery
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

from harness import make
from harness.render import REPO, project_files
from harness.template_git import clone_template, commit_all, edit, generate, git, snapshot
from harness.workflows import RunStep, run_step, run_steps


WORKFLOWS = ".github/workflows"
UPDATE_WORKFLOW = f"{WORKFLOWS}/template-update.yml"
MARKER_LINE = re.compile(r"^(<<<<<<<|>>>>>>>) ", re.M)
BODY = "template-update.md"


# ===========================================================================
# scripts/template-update and the Makefile, statically
# ===========================================================================
def script_module(project: Path):
    """The project's scripts/template-update, imported (it runs nothing on import)."""
    loader = importlib.machinery.SourceFileLoader("template_update", str(project / "scripts/template-update"))
    spec = importlib.util.spec_from_loader("template_update", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_make_targets_run_the_script(example):
    assert make.commands(example, "template-update") == [["scripts/template-update"]]
    assert make.commands(example, "template-drift") == [["scripts/template-update", "drift"]]
    assert {"template-update", "template-drift"} <= set(make.targets(example))
    script = example / "scripts/template-update"
    assert os.access(script, os.X_OK)
    result = subprocess.run([str(script), "--bogus"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage:" in result.stderr, "a wrong flag runs nothing"


def test_the_script_passes_ruff_as_the_pre_commit_hook_runs_it(default_project):
    result = subprocess.run(["ruff", "check", "--no-cache", "scripts/template-update"], cwd=default_project,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_copier_is_pinned_in_one_place(default_project):
    """scripts/requirements.txt: the Copier this template's tests run, at least
    copier.yml's minimum; no other file of the project pins one."""
    (pin,) = re.findall(r"^copier==(\S+)$", (default_project / "scripts/requirements.txt").read_text(), re.M)
    tested = re.search(r"^copier==(\S+)$", (REPO / "tests/requirements.txt").read_text(), re.M).group(1)
    minimum = yaml.safe_load((REPO / "copier.yml").read_text())["_min_copier_version"]
    assert pin == tested and Version(pin) >= Version(minimum)
    pinning = [p.relative_to(default_project).as_posix() for p in project_files(default_project)
               if "node_modules" not in p.parts and re.search(rb"copier==\d", p.read_bytes())]
    assert pinning == ["scripts/requirements.txt"]
    assert script_module(default_project).pinned_copier() == pin


CHANGELOG = """\
# Changelog

## Unreleased

- **Changed**: not released yet. **Action**: unreleased-action.

## 0.4.0 - 2026-02-02

- **Fixed**: a thing. **Action** (Kubernetes): apply
  the overlay (action-040).
- **Added**: nothing to do here (no-action-040).

## 0.3.0

- **Action**: action-030-a.

- **Changed**: another. **Action**: action-030-b,
  over two lines.

## 0.2.0

- **Removed**: old. **Action**: action-020.
- **Added**: a second paragraph holds the action.

  **Action**: action-020-b,
  then its next line.
Released 2026-01-01.

## 0.1.0

- **Added**: the first release.
"""


def test_changelog_actions_are_read_per_release(default_project):
    module = script_module(default_project)
    actions = module.changelog_actions(CHANGELOG)
    assert actions == {
        Version("0.4.0"): ["**Action** (Kubernetes): apply the overlay (action-040)."],
        Version("0.3.0"): ["**Action**: action-030-a.", "**Action**: action-030-b, over two lines."],
        Version("0.2.0"): ["**Action**: action-020.", "**Action**: action-020-b, then its next line."],
        Version("0.1.0"): [],
    }
    section = module.actions_section(CHANGELOG, "0.2.0", "0.4.0")
    assert "action-030-a" in section and "action-040" in section
    assert section.index("### 0.3.0") < section.index("### 0.4.0"), "oldest first, the order they apply in"
    for absent in ("action-020", "unreleased-action", "no-action-040", "### 0.2.0"):
        assert absent not in section, absent
    assert "### 0.1.0\n\nNothing to do." in module.actions_section(CHANGELOG, "0.0.9", "0.1.0")
    assert "no CHANGELOG.md" in module.actions_section(None, "0.2.0", "0.4.0")


# ===========================================================================
# Full tier: real releases, a real project, its team's edits
# ===========================================================================
OLD_ACTION, ACTION_030, ACTION_040 = "action-only-020", "action-only-030", "action-only-040"
NOT_AN_ACTION = "no-action-040"
CONF = "db/postgresql.conf"
RELEASE_030 = ("checkpoint_timeout = 15min", "checkpoint_timeout = 10min")
RELEASE_040 = ("log_min_duration_statement = 500ms", "log_min_duration_statement = 1s")
IDENTITY = {"GIT_AUTHOR_NAME": "Team", "GIT_AUTHOR_EMAIL": "team@example.com",
            "GIT_COMMITTER_NAME": "Team", "GIT_COMMITTER_EMAIL": "team@example.com"}


def add_release(upstream: Path, version: str, entries: str, change: tuple[str, str] | None) -> None:
    """A release as the template makes one: the Unreleased entries and
    `entries` under a `## <version> - <date>` heading, then the tag."""
    changelog = upstream / "CHANGELOG.md"
    text = changelog.read_text()
    text, count = re.subn(r"^## Unreleased\n", f"## Unreleased\n\n## {version} - 2026-03-02\n\n{entries}", text,
                          count=1, flags=re.M)
    assert count == 1, "CHANGELOG.md has no Unreleased heading"
    changelog.write_text(text)
    if change:
        edit(upstream / "template/db/postgresql.conf.jinja", *change)
    commit_all(upstream, f"release {version}")
    git(upstream, "tag", version)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Path:
    """This template released three times: 0.2.0 (the working tree, with an
    action only it asks for), 0.3.0 and 0.4.0, each changing postgresql.conf."""
    clone = clone_template(tmp_path_factory.mktemp("releases"))
    git(clone, "tag", "--delete", "v1")  # PEP 440 reads it as 1, newer than every release here
    changelog = clone / "CHANGELOG.md"
    text, count = re.subn(r"^(## 0\.2\.0\b.*\n)", rf"\1\n- **Removed**: x. **Action**: {OLD_ACTION}.\n",
                          changelog.read_text(), count=1, flags=re.M)
    assert count == 1, "CHANGELOG.md has no 0.2.0 heading"
    changelog.write_text(text)
    commit_all(clone, "release 0.2.0")
    git(clone, "tag", "0.2.0")
    add_release(clone, "0.3.0", f"- **Changed**: checkpoints every 10 minutes. **Action**: `make db-up`\n"
                                f"  rebuilds the image ({ACTION_030}).\n", RELEASE_030)
    add_release(clone, "0.4.0", f"- **Changed**: slower queries logged. **Action** (production): {ACTION_040}.\n"
                                f"- **Added**: something ({NOT_AN_ACTION}).\n", RELEASE_040)
    return clone


@pytest.fixture
def project(upstream, tmp_path) -> Path:
    return generate(upstream, "0.2.0", tmp_path / "project")


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This Python (with the pinned Copier) first on PATH, a git identity,
    a cache of its own."""
    return {**os.environ, **IDENTITY, "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "PATH": os.pathsep.join([*extra.pop("path", "").split(os.pathsep), str(Path(sys.executable).parent),
                                     os.environ["PATH"]]).lstrip(os.pathsep), **extra}


def unreleased_actions(upstream: Path) -> list[str]:
    """The start of each **Action** 0.3.0 took over from 0.2.0's Unreleased
    section (this repository's real entries), whitespace collapsed."""
    changelog = git(upstream, "show", "0.2.0:CHANGELOG.md")
    text = re.split(r"^## Unreleased$", changelog, maxsplit=1, flags=re.M)[1].split("\n## ", 1)[0]
    return [" ".join(match.split())[:40] for match in re.findall(r"\*\*Action\*\*.{0,60}", text, re.S)]


def assert_body_quotes_the_new_releases(body: str, upstream: Path) -> None:
    flat = " ".join(body.split())
    assert f"**Action**: `make db-up` rebuilds the image ({ACTION_030})." in flat
    assert f"**Action** (production): {ACTION_040}." in flat
    assert flat.index("### 0.3.0") < flat.index("### 0.4.0")
    for action in unreleased_actions(upstream):
        assert action in flat, action
    for absent in (OLD_ACTION, NOT_AN_ACTION, "### 0.2.0"):
        assert absent not in flat, absent


def team_edits(project: Path) -> None:
    edit(project / "db/postgresql.conf", "work_mem = 4MB", "work_mem = 16MB")
    (project / "README.md").write_text((project / "README.md").read_text() + "\n## Team notes\nKeep this.\n")
    (project / "db/init/30-team-seed.sql").write_text("SELECT 1;\n")
    commit_all(project, "the team's work")


def state(project: Path) -> tuple[str, str, str]:
    """The checkout as the team sees it: branch, commit, status."""
    return (git(project, "branch", "--show-current"), git(project, "rev-parse", "HEAD"),
            git(project, "status", "--porcelain"))


def branches(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/template-update/").split()


@pytest.mark.full
def test_make_template_update_commits_the_newest_release_on_a_branch(project, upstream, tmp_path):
    team_edits(project)
    before, env_files = state(project), snapshot(project)
    env = environment(tmp_path)
    result = make.make(project, "template-update", env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    branch = "template-update/0.4.0"
    assert branches(project) == [branch]
    assert state(project) == before and snapshot(project) == env_files, "the checkout was touched"
    assert len(git(project, "worktree", "list").splitlines()) == 1, "a worktree was left behind"
    body = Path(git(project, "rev-parse", "--path-format=absolute", "--git-path", BODY).strip())
    assert f"Pull request text: {body}" in result.stdout and branch in result.stdout
    assert_body_quotes_the_new_releases(body.read_text(), upstream)

    # the branch: one commit, the update merged with the team's edits, no markers, no secrets
    assert git(project, "rev-list", "--count", f"HEAD..{branch}").strip() == "1"
    conf = git(project, "show", f"{branch}:{CONF}")
    for line in ("work_mem = 16MB", RELEASE_030[1], RELEASE_040[1]):
        assert line in conf, line
    assert "Keep this." in git(project, "show", f"{branch}:README.md")
    assert yaml.safe_load(git(project, "show", f"{branch}:.copier-answers.yml"))["_commit"] == "0.4.0"
    files = git(project, "ls-tree", "-r", "--name-only", branch).split()
    assert "db/init/30-team-seed.sql" in files and not {"db/.env", "back/.env", "front/.env"} & set(files)
    assert not [name for name in files if name.endswith(".rej")]
    assert subprocess.run(["git", "grep", "-qE", "^(<<<<<<<|>>>>>>>) ", branch], cwd=project).returncode == 1

    # again: the branch is there, nothing is redone
    again = make.make(project, "template-update", env=env, timeout=300)
    assert again.returncode != 0 and "exists already" in again.stderr, again.stdout + again.stderr
    # merged: up to date, no new branch
    git(project, "merge", "--ff-only", "-q", branch)
    done = make.make(project, "template-update", env=env, timeout=300)
    assert done.returncode == 0 and "Up to date" in done.stdout, done.stdout + done.stderr
    assert branches(project) == [branch]


# ---------------------------------------------------------------------------
# The workflow's run: steps, against a bare repository standing in for GitHub
# ---------------------------------------------------------------------------
FAKE_GH = """#!/usr/bin/env bash
# GitHub's CLI, as far as the workflow uses it: each call logged, one per line.
printf '%s\\n' "$*" >> "$GH_LOG"
case "$1 $2" in
  "issue list") cat "$GH_ISSUES" 2>/dev/null || true ;;
esac
"""


@dataclasses.dataclass
class Runner:
    """A checkout of `origin` (a bare clone of the project) with the
    workflow's steps to run in it, as GitHub's runner would."""
    origin: Path
    checkout: Path
    temp: Path
    env: dict[str, str]
    steps: list[RunStep]
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def gh_calls(self) -> list[str]:
        log = Path(self.env["GH_LOG"])
        return log.read_text().splitlines() if log.exists() else []

    def step(self, name: str) -> RunStep:
        (step,) = [step for step in self.steps if step.name == name]
        return step

    def run(self, name: str) -> subprocess.CompletedProcess:
        """The step, its ${{ }} expressions replaced as GitHub would."""
        step = self.step(name)
        values = {"secrets.TEMPLATE_UPDATE_TOKEN || github.token": "a-token", "github.token": "a-token",
                  "github.repository": "team/project",
                  **{f"steps.update.outputs.{key}": value for key, value in self.outputs.items()}}
        env = {}
        for key, value in step.env.items():
            for expression, replacement in values.items():
                value = value.replace("${{ " + expression + " }}", replacement)
            assert "${{" not in value, f"{name}: {key}={value} has an expression no test gives"
            env[key] = value
        output = self.temp / "github_output"
        output.write_text("")
        result = run_step(dataclasses.replace(step, env=env), self.checkout, {**self.env, "GITHUB_OUTPUT": str(output)},
                          timeout=300)
        self.outputs.update(line.split("=", 1) for line in output.read_text().splitlines())
        return result

    def runs(self, name: str) -> bool:
        """Whether the step's `if:` holds (the forms this workflow uses)."""
        condition = self.step(name).condition
        match = re.fullmatch(r"steps\.update\.outputs\.result == '(\w+)'", condition or "")
        assert match, condition
        return self.outputs.get("result") == match.group(1)


def github(project: Path, tmp_path: Path) -> Path:
    """A bare clone of the project: its repository on GitHub."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(project), str(origin)], check=True)
    return origin


def runner(origin: Path, tmp_path: Path, gh_log: Path) -> Runner:
    """A new run of the workflow: a fresh checkout of `origin`, a fake gh
    logging to `gh_log` (open issues: the lines of open-issues beside it)."""
    checkout, temp, bin_dir = (tmp_path / name for name in ("checkout", "runner-temp", "bin"))
    subprocess.run(["git", "clone", "-q", str(origin), str(checkout)], check=True)
    temp.mkdir()
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    env = environment(tmp_path, path=str(bin_dir), RUNNER_TEMP=str(temp), GH_LOG=str(gh_log),
                      GH_ISSUES=str(gh_log.parent / "open-issues"))
    steps = run_steps(checkout / UPDATE_WORKFLOW, "update")
    # Copier's install is the one step not run here: this Python has the pinned Copier
    assert steps[0].run.strip() == "pip install -r scripts/requirements.txt"
    assert script_module(checkout).pinned_copier() == _installed_copier()
    return Runner(origin, checkout, temp, env, steps)


def _installed_copier() -> str:
    from importlib.metadata import version
    return version("copier")


UPDATE, PULL_REQUEST, ISSUE = ("Update on a branch (scripts/template-update)", "Pull request",
                               "Issue (the update conflicts)")


@pytest.mark.full
def test_workflow_pushes_the_branch_and_opens_a_pull_request_quoting_the_actions(project, upstream, tmp_path):
    team_edits(project)
    r = runner(github(project, tmp_path), tmp_path / "monday", tmp_path / "gh.log")
    result = r.run(UPDATE)
    assert result.returncode == 0, result.stdout + result.stderr
    branch = "template-update/0.4.0"
    assert r.outputs == {"result": "pr", "version": "0.4.0", "branch": branch,
                         "title": "Update the template from 0.2.0 to 0.4.0"}
    assert r.runs(PULL_REQUEST) and not r.runs(ISSUE)
    result = r.run(PULL_REQUEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert branches(r.origin) == [branch]
    body = r.temp / BODY
    assert r.gh_calls == [f"pr create --head {branch} --title {r.outputs['title']} --body-file {body}"]
    assert_body_quotes_the_new_releases(body.read_text(), upstream)
    conf = git(r.origin, "show", f"{branch}:{CONF}")
    assert all(line in conf for line in ("work_mem = 16MB", RELEASE_030[1], RELEASE_040[1])), conf
    assert git(r.origin, "rev-list", "--count", f"HEAD..{branch}").strip() == "1"

    # next week, the pull request still open: the branch is on GitHub, nothing new
    again = runner(r.origin, tmp_path / "next-monday", tmp_path / "gh.log")
    assert again.run(UPDATE).returncode == 0 and again.outputs["result"] == "pr"
    result = again.run(PULL_REQUEST)
    assert result.returncode == 0 and "is on GitHub already" in result.stdout, result.stdout + result.stderr
    assert len(r.gh_calls) == 1, "a second pull request was opened"


@pytest.mark.full
def test_a_conflicting_update_opens_an_issue_and_leaves_no_branch(project, upstream, tmp_path):
    """The team changed the very line 0.4.0 changes: no branch with markers,
    an issue that names the file (once, however many weeks it stays open)."""
    edit(project / CONF, RELEASE_040[0], "log_min_duration_statement = 250ms")
    commit_all(project, "the team logs more")
    r = runner(github(project, tmp_path), tmp_path / "monday", tmp_path / "gh.log")
    before = state(r.checkout)
    result = r.run(UPDATE)
    assert result.returncode == 0, result.stdout + result.stderr
    title = "Template update to 0.4.0 needs a hand merge"
    assert r.outputs == {"result": "issue", "version": "0.4.0", "title": title}
    assert f"  {CONF}\n" in result.stdout
    # nothing half-done: no branch, no worktree, the checkout as it was, no markers in it
    assert branches(r.checkout) == [] and state(r.checkout) == before
    assert len(git(r.checkout, "worktree", "list").splitlines()) == 1
    assert not [p for p in project_files(r.checkout) if MARKER_LINE.search(p.read_text(errors="replace"))]

    text = (r.temp / BODY).read_text()
    assert re.findall(r"^- `(.+)`$", text, re.M) == [CONF], text
    assert "copier update --defaults --vcs-ref=0.4.0" in text and "pip install -r scripts/requirements.txt" in text
    assert_body_quotes_the_new_releases(text, upstream)

    assert not r.runs(PULL_REQUEST) and r.runs(ISSUE)
    result = r.run(ISSUE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert r.gh_calls[-1] == f"issue create --title {title} --body-file {r.temp / BODY}"
    # next week: the issue is open, none is added
    Path(r.env["GH_ISSUES"]).write_text(title + "\n")
    result = r.run(ISSUE)
    assert result.returncode == 0 and "Already reported" in result.stdout, result.stdout + result.stderr
    assert [call for call in r.gh_calls if call.startswith("issue create")] == [r.gh_calls[1]]
    assert branches(r.origin) == []


# ---------------------------------------------------------------------------
# make template-drift
# ---------------------------------------------------------------------------
@pytest.mark.full
def test_drift_says_nothing_on_a_fresh_project(project, tmp_path):
    result = make.make(project, "-s", "template-drift", env=environment(tmp_path), timeout=300)
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


@pytest.mark.full
def test_drift_lists_the_template_files_the_team_changed(project, tmp_path):
    edit(project / CONF, "work_mem = 4MB", "work_mem = 16MB")
    (project / "docs/api-contract.md").unlink()
    (project / "scripts/verify").chmod(0o644)
    # not the template's to compare: the env files (_skip_if_exists), the team's own files
    with (project / "db/.env").open("a") as env_file:
        env_file.write("# tuned by the team\n")
    (project / "back/notes.txt").write_text("ours\n")
    result = make.make(project, "-s", "template-drift", env=environment(tmp_path), timeout=300)
    assert result.returncode != 0, result.stdout + result.stderr
    # the script itself, as CI would run it: status 1, and the same report
    script = subprocess.run(["scripts/template-update", "drift"], cwd=project, env=environment(tmp_path),
                            capture_output=True, text=True, timeout=300)
    assert (script.returncode, script.stdout) == (1, result.stdout), script.stderr
    listed = re.findall(r"^(changed|deleted|mode changed): (\S+)$", result.stdout, re.M)
    assert sorted(listed) == [("changed", CONF), ("deleted", "docs/api-contract.md"),
                              ("mode changed", "scripts/verify")], result.stdout
    assert "-work_mem = 4MB\n+work_mem = 16MB\n" in result.stdout
    assert f"--- template/{CONF}\n+++ {CONF}\n" in result.stdout
    assert "0.2.0" in result.stdout
