"""The release is derived from main: CHANGELOG.md's dated headings are the
releases, and scripts/release tags each one (annotated, PEP 440) on the commit
that dated its heading, so that any clone of main can name them.

The real history runs on a fresh clone of this repository
(harness.template_git's clone_template: the working tree committed on top)
with its tags deleted; the rule's corners and the refusals on scratch
repositories with a synthetic CHANGELOG.md. The release workflow is held to the generated CI's checks
(test_ci.py) and its steps are run as the runner would, against a bare origin.
"""

from __future__ import annotations

import datetime
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.answers import recorded
from harness.render import REPO
from harness.template_git import check_update, clone_template, commit_all, conflicted, contents, generate, git, update
from harness.workflows import PINNED_ACTION, actionlint, run_step, run_steps, zizmor

WORKFLOW = REPO / ".github/workflows/release.yml"
# The releases before the rule was written down, found by hand: 0.1.0's heading
# first appeared undated in 9ee2b05, above an Unreleased section (a draft); it
# was dated ("Released 2026-11-28.") by "0.1.0: CHANGELOG entry for the first
# release".
KNOWN = {"0.1.0": "38660e1e30bb97418289c494587253aae3659a4f",
         "0.2.0": "d538850c41e3e4e87052333d15cd88400ccbfccc"}


def versions(repo: Path) -> list[str]:
    """The release headings of CHANGELOG.md at HEAD, newest first."""
    return re.findall(r"^## (\d+\.\d+\.\d+)\b", git(repo, "show", "HEAD:CHANGELOG.md"), flags=re.M)


def expected_commit(repo: Path, version: str) -> str:
    if version in KNOWN:
        return KNOWN[version]
    heading = re.search(rf"^## {re.escape(version)} - \S+$", git(repo, "show", "HEAD:CHANGELOG.md"), re.M)[0]
    return git(repo, "log", "--reverse", "--format=%H", "-S", heading, "--", "CHANGELOG.md").split()[0]


def tags(repo: Path) -> dict[str, tuple[str, str]]:
    """tag -> (its object's type, the commit it names)."""
    out = git(repo, "for-each-ref", "refs/tags", "--format=%(refname:strip=2) %(objecttype) %(objectname) %(*objectname)")
    return {name: (kind, peeled or target) for name, kind, target, peeled in
            (f"{line} ".split(" ")[:4] for line in out.splitlines())}


def release(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(repo / "scripts/release"), *args], cwd=repo, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)


def clone(source: Path, destination: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(source), str(destination)], check=True)
    return destination


@pytest.fixture(scope="module")
def main_clone(tmp_path_factory) -> Path:
    """A clone of this repository, the working tree committed, no tags: tests clone it again to tag."""
    upstream = clone_template(tmp_path_factory.mktemp("main"))
    git(upstream, "tag", "--delete", "v1")
    assert tags(upstream) == {}
    return upstream


@pytest.fixture(scope="module")
def tagged(main_clone, tmp_path_factory) -> Path:
    repo = clone(main_clone, tmp_path_factory.mktemp("tagged") / "template")
    result = release(repo)
    assert result.returncode == 0, result.stderr
    return repo


# ---------------------------------------------------------------------------
# The real history
# ---------------------------------------------------------------------------
def test_each_release_gets_one_annotated_tag_on_the_commit_that_dated_it(tagged):
    assert versions(tagged)[-2:] == ["0.2.0", "0.1.0"]
    assert tags(tagged) == {version: ("tag", expected_commit(tagged, version)) for version in versions(tagged)}


def test_a_second_run_changes_nothing_and_says_so(tagged):
    before = git(tagged, "for-each-ref", "refs/tags")
    result = release(tagged, "tags")
    assert result.returncode == 0, result.stderr
    assert "Nothing to do" in result.stdout
    assert git(tagged, "for-each-ref", "refs/tags") == before


def test_list_prints_each_version_and_its_commit(main_clone):
    result = release(main_clone, "list")
    assert result.returncode == 0, result.stderr
    assert re.findall(r"^(\S+) -> ([0-9a-f]{40}) ", result.stdout, re.M) == [
        (version, expected_commit(main_clone, version)) for version in versions(main_clone)]
    assert tags(main_clone) == {}, "list tags nothing"


# ---------------------------------------------------------------------------
# The rule and the refusals, on scratch repositories
# ---------------------------------------------------------------------------
def changelog(*sections: str, unreleased: str = "") -> str:
    return "".join(f"{part}\n\n" for part in ("# Changelog", "Header.", "## Unreleased", unreleased, *sections)
                   if part)


@pytest.fixture
def scratch(tmp_path) -> Path:
    repo = tmp_path / "scratch"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "scripts/release", repo / "scripts/release")
    git(repo, "init", "-q")
    return repo


def commit(repo: Path, text: str) -> str:
    (repo / "CHANGELOG.md").write_text(text)
    commit_all(repo, "changelog")
    return git(repo, "rev-parse", "HEAD").strip()


def test_the_commit_is_the_oldest_that_holds_the_dated_heading(scratch):
    first = "## 0.1.0\n\nThe first."
    commit(scratch, changelog(first))  # undated: not released yet
    v1 = commit(scratch, changelog("## 0.1.0\n\nReleased 2026-01-01.\n\nThe first."))  # the older form
    prose = "- Next: `## 0.2.0 - 2026-02-01`, say.\n\n```\n## 0.2.0 - 2026-02-01\n```"
    commit(scratch, changelog("## 0.1.0 - 2026-01-01", unreleased=prose))  # dated again; 0.2.0 in prose and code
    v2 = commit(scratch, changelog("## 0.2.0 - 2026-02-01\n\nSecond.", "## 0.1.0 - 2026-01-01"))
    commit(scratch, changelog("## 0.1.0 - 2026-01-01", unreleased="Second."))  # removed...
    commit(scratch, changelog("## 0.10.0 - 2026-03-01", "## 0.2.0 - 2026-02-01\n\nSecond.", "## 0.1.0 - 2026-01-01"))
    v10 = git(scratch, "rev-parse", "HEAD").strip()  # ...added back, and 0.10.0 above 0.2.0 (not as text)
    result = release(scratch)
    assert result.returncode == 0, result.stderr
    assert tags(scratch) == {"0.1.0": ("tag", v1), "0.2.0": ("tag", v2), "0.10.0": ("tag", v10)}


MALFORMED = {
    "two numbers": ("## 0.3 - 2026-03-01", "`## 0.3 - 2026-03-01` is no release heading"),
    "a v": ("## v0.3.0 - 2026-03-01", "`## v0.3.0 - 2026-03-01` is no release heading"),
    "no date": ("## 0.3.0\n\nThird.", "`## 0.3.0` has no date"),
    "no such day": ("## 0.3.0 - 2026-02-30", "2026-02-30 is no date"),
    "twice": ("## 0.1.0 - 2026-03-01", "0.1.0 is there twice"),
    "ascending": ("## 0.0.9 - 2026-03-01", "0.1.0 is not below 0.0.9"),
}


@pytest.mark.parametrize("heading, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_heading_is_refused_and_nothing_tagged(scratch, heading, message):
    commit(scratch, changelog("## 0.1.0 - 2026-01-01"))
    commit(scratch, changelog(heading, "## 0.1.0 - 2026-01-01"))
    result = release(scratch)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert "CHANGELOG.md:" in result.stderr and tags(scratch) == {}


def test_unreleased_must_come_first(scratch):
    commit(scratch, "# Changelog\n\n## 0.1.0 - 2026-01-01\n\n## Unreleased\n")
    result = release(scratch)
    assert result.returncode == 1 and "`## Unreleased` must be the first" in result.stderr, result.stderr


def test_a_tag_elsewhere_or_without_a_release_is_refused(scratch):
    v1 = commit(scratch, changelog("## 0.1.0 - 2026-01-01"))
    v2 = commit(scratch, changelog("## 0.2.0 - 2026-02-01", "## 0.1.0 - 2026-01-01"))
    git(scratch, "tag", "-a", "-m", "wrong", "0.1.0", v2)
    result = release(scratch)
    assert result.returncode == 1, result.stderr
    assert f"tag 0.1.0 points to {v2}, but CHANGELOG.md dates 0.1.0 in {v1}" in result.stderr
    assert set(tags(scratch)) == {"0.1.0"}, "nothing tagged"
    git(scratch, "tag", "--delete", "0.1.0")
    git(scratch, "tag", "0.9.0", v1)
    result = release(scratch)
    assert result.returncode == 1 and "tag 0.9.0 is no release of CHANGELOG.md" in result.stderr, result.stderr
    assert set(tags(scratch)) == {"0.9.0"}


# ---------------------------------------------------------------------------
# cut
# ---------------------------------------------------------------------------
def test_cut_moves_unreleased_under_the_new_heading_and_that_commit_is_the_release(scratch):
    text = changelog("## 0.1.0 - 2026-01-01\n\nFirst.", unreleased="- **Added**: a.\n\n- **Fixed**: b.")
    commit(scratch, text)
    for refused in ("0.1.0", "0.0.9", "v0.2.0", "0.2"):
        result = release(scratch, "cut", refused)
        assert result.returncode == 1 and "refused" in result.stderr, (refused, result.stdout, result.stderr)
    assert (scratch / "CHANGELOG.md").read_text() == text
    result = release(scratch, "cut", "0.2.0")
    assert result.returncode == 0, result.stderr
    assert "commit this, then run scripts/release" in result.stdout
    today = datetime.date.today().isoformat()
    assert (scratch / "CHANGELOG.md").read_text() == changelog(
        f"## 0.2.0 - {today}\n\n- **Added**: a.\n\n- **Fixed**: b.", "## 0.1.0 - 2026-01-01\n\nFirst.")
    assert git(scratch, "tag", "--list") == "", "cut only edits the file"
    cut = commit(scratch, (scratch / "CHANGELOG.md").read_text())
    assert release(scratch).returncode == 0 and tags(scratch)["0.2.0"] == ("tag", cut)
    result = release(scratch, "cut", "0.3.0")
    assert result.returncode == 1 and "nothing under `## Unreleased`" in result.stderr


def test_cut_of_the_real_changelog_only_adds_the_heading(scratch):
    # The real header and releases, with something unreleased whatever main holds today.
    original = (REPO / "CHANGELOG.md").read_text().replace("## Unreleased\n", "## Unreleased\n\n- **Added**: x.\n", 1)
    (scratch / "CHANGELOG.md").write_text(original)
    result = release(scratch, "cut", "99.0.0")
    assert result.returncode == 0, result.stderr
    after = (scratch / "CHANGELOG.md").read_text()
    heading = f"## 99.0.0 - {datetime.date.today().isoformat()}"
    assert f"\n## Unreleased\n\n{heading}\n\n" in after
    assert [line for line in after.splitlines() if line.strip() and line != heading] == [
        line for line in original.splitlines() if line.strip()]


# ---------------------------------------------------------------------------
# What users get: scripts/new-project and copier update
# ---------------------------------------------------------------------------
@pytest.mark.full
def test_the_readmes_first_command_in_a_clone_without_tags_records_the_newest_release(main_clone, tmp_path):
    template = clone(main_clone, tmp_path / "template")
    command = re.search(r"```bash\n(scripts/new-project \S+ --defaults)", (REPO / "README.md").read_text())[1]
    # new-project's own Copier, already installed: this suite's (as test_answers does)
    copier_bin = tmp_path / "cache/isolated-db-template/copier-9.19.1/bin"
    copier_bin.mkdir(parents=True)
    (copier_bin / "copier").symlink_to(Path(sys.executable).parent / "copier")
    result = subprocess.run(shlex.split(command), cwd=template, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No git tags found" not in result.stderr
    assert set(tags(template)) == set(versions(template)), "the tags restored"
    destination = (template / shlex.split(command)[1]).resolve()
    assert recorded(destination)["_commit"] == versions(template)[0]


@pytest.mark.full
def test_a_project_at_the_previous_release_updates_to_the_newest(tagged, tmp_path):
    newest, previous = versions(tagged)[:2]
    project = generate(tagged, previous, tmp_path / "project")
    assert recorded(project)["_commit"] == previous
    verdict = check_update(project)
    assert verdict["update_available"] is True and verdict["latest_version"] == newest, verdict
    before = contents(project)
    update(project, "--vcs-ref", newest)
    assert recorded(project)["_commit"] == newest
    assert contents(project) != before and conflicted(project) == []


# ---------------------------------------------------------------------------
# .github/workflows/release.yml
# ---------------------------------------------------------------------------
def test_the_release_workflow_passes_actionlint_the_schema_and_zizmor():
    assert actionlint(WORKFLOW) == []
    result = subprocess.run(["check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    result = zizmor(REPO, WORKFLOW)
    assert result.returncode == 0 and "No findings" in result.stdout, result.stdout + result.stderr


def test_the_release_workflow_runs_on_main_with_write_access_only_to_contents():
    document = yaml.safe_load(WORKFLOW.read_text())
    assert document[True] == {"push": {"branches": ["main"]}}  # YAML 1.1 reads `on` as true
    assert document["permissions"] == {}
    (job,) = document["jobs"].values()
    assert job["permissions"] == {"contents": "write"} and 0 < job["timeout-minutes"] <= 10
    (checkout,) = [step for step in job["steps"] if step.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"] == {"fetch-depth": 0, "persist-credentials": False}
    pins = re.findall(r"uses: (.+)$", WORKFLOW.read_text(), re.M)
    assert pins and all(PINNED_ACTION.match(pin) for pin in pins), pins
    generated = (REPO / "template/.github/workflows/ci.yml.jinja").read_text()
    assert set(re.findall(r"uses: (actions/checkout@.+)$", generated, re.M)) == {pins[0]}, "the generated CI's pin"


def test_the_workflows_steps_push_the_releases_tags_once(main_clone, tmp_path):
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(main_clone), str(origin)], check=True)
    checkout = clone(origin, tmp_path / "checkout")  # fetch-depth: 0
    env = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "owner/template"}
    for attempt in ("first", "second"):
        for step in run_steps(WORKFLOW, "tags"):
            result = run_step(step, checkout, env, timeout=120)
            assert result.returncode == 0, (attempt, step.name, result.stdout, result.stderr)
        assert tags(origin) == {version: ("tag", expected_commit(origin, version)) for version in versions(origin)}
    assert "Nothing to do" in run_step(run_steps(WORKFLOW, "tags")[0], checkout, env).stdout
    taggers = git(origin, "for-each-ref", "refs/tags", "--format=%(taggername)").split()
    assert set(taggers) == {"github-actions[bot]"}
