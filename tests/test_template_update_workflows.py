"""Quick tier: every workflow the project gets is held to the checks ci.yml is
held to (test_ci.py): actionlint, GitHub's schema, zizmor, actions pinned by
commit, bounded jobs and least permissions; .github/workflows/template-update.yml
runs scripts/template-update weekly and on demand, its steps passing shellcheck.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from harness.workflows import PINNED_ACTION, actionlint, run_steps, zizmor


WORKFLOWS = ".github/workflows"
UPDATE_WORKFLOW = f"{WORKFLOWS}/template-update.yml"


def workflow_files(project: Path) -> list[Path]:
    return sorted((project / WORKFLOWS).glob("*.y*ml"))


def load_workflow(path: Path) -> dict:
    document = yaml.safe_load(path.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads `on:` as true
    return document


# ===========================================================================
# Every workflow: the checks ci.yml is held to (test_ci.py)
# ===========================================================================
def test_the_project_has_both_workflows(default_project):
    assert {"ci.yml", "template-update.yml"} <= {p.name for p in workflow_files(default_project)}


def test_every_workflow_passes_actionlint(example):
    assert actionlint(*workflow_files(example)) == []


def test_every_workflow_matches_githubs_schema(example):
    result = subprocess.run(["check-jsonschema", "--builtin-schema", "vendor.github-workflows",
                             *map(str, workflow_files(example))], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_workflow_has_no_zizmor_findings(example):
    result = zizmor(example, *workflow_files(example))
    assert result.returncode == 0 and "No findings" in result.stdout, result.stdout + result.stderr


def test_every_workflow_pins_its_actions_and_bounds_its_jobs(example):
    for path in workflow_files(example):
        document = load_workflow(path)
        pins = re.findall(r"uses: (.+)$", path.read_text(), re.M)
        assert pins and all(PINNED_ACTION.match(pin) for pin in pins), (path.name, pins)
        for name, job in document["jobs"].items():
            assert 0 < job["timeout-minutes"] <= 30, (path.name, name)
            checkouts = [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]
            assert len(checkouts) == 1 and checkouts[0]["with"]["persist-credentials"] is False, (path.name, name)


def test_every_workflow_starts_from_least_permissions(example):
    """Read-only or nothing for the whole workflow; a job asks for what it writes."""
    for path in workflow_files(example):
        document = load_workflow(path)
        assert document["permissions"] in ({}, {"contents": "read"}), path.name
        assert "write-all" not in path.read_text(), path.name
    update = load_workflow(example / UPDATE_WORKFLOW)
    assert update["permissions"] == {}
    assert update["jobs"]["update"]["permissions"] == {"contents": "write", "pull-requests": "write",
                                                      "issues": "write"}


def test_template_update_workflow_runs_the_script_weekly_and_on_demand(default_project):
    document = load_workflow(default_project / UPDATE_WORKFLOW)
    assert set(document["on"]) == {"schedule", "workflow_dispatch"}
    (cron,) = [entry["cron"] for entry in document["on"]["schedule"]]
    minute, hour, day, month, weekday = cron.split()
    assert (day, month) == ("*", "*") and re.fullmatch(r"[0-6]", weekday), cron  # once a week
    assert document["concurrency"]["cancel-in-progress"] is False, "a run never cuts another's push short"
    steps = run_steps(default_project / UPDATE_WORKFLOW, "update")
    assert [step.run.strip() for step in steps[:2]] == [
        "pip install -r scripts/requirements.txt",
        'scripts/template-update --out "$RUNNER_TEMP/template-update.md"',
    ]
    pull_request, issue = steps[2:]
    assert pull_request.condition == "steps.update.outputs.result == 'pr'"
    assert 'gh pr create --head "$BRANCH" --title "$TITLE" --body-file "$RUNNER_TEMP/template-update.md"' \
        in pull_request.run
    assert issue.condition == "steps.update.outputs.result == 'issue'"
    assert 'gh issue create --title "$TITLE" --body-file "$RUNNER_TEMP/template-update.md"' in issue.run
    # the token reaches git only through gh, for one command: nothing on disk
    assert "persist-credentials" not in pull_request.run and "credential.helper=!gh auth git-credential" \
        in pull_request.run


def test_template_update_workflow_scripts_pass_shellcheck(default_project, tmp_path):
    for step in run_steps(default_project / UPDATE_WORKFLOW, "update"):
        script = tmp_path / "step.sh"
        script.write_text(step.run)
        result = subprocess.run(["shellcheck", "--shell=bash", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{step.name}:\n{result.stdout}"
