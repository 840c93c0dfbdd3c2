"""The generated CI's `stack` job, run here step by step as GitHub's runner
would (harness.workflows), on the real engine and the stand-in base images:
a clone with no env files boots through the project's own make targets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness import engine
from harness.browser import CHROMIUM
from harness.docker_stack import Names, teardown
from harness.render import render_example
from harness.workflows import run_step, run_steps

pytestmark = [pytest.mark.full, pytest.mark.docker]


@pytest.fixture
def clone(docker_engine, tmp_path) -> Path:
    """acme-pg18 rendered, committed, and cloned: the checkout the runner
    gets, which has none of the git-ignored env files."""
    project = render_example("acme-pg18", tmp_path / "project")
    identity = ["-c", "user.name=CI", "-c", "user.email=ci@example.com"]
    for args in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-qm", "generated"]):
        subprocess.run(["git", *args], cwd=project, check=True)
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(project), str(checkout)], check=True)
    yield checkout
    teardown(checkout)


def test_the_stack_job_passes_on_a_fresh_clone(clone):
    assert not any((clone / name).exists() for name in ("db/.env", "back/.env", "front/.env"))
    steps = run_steps(clone / ".github/workflows/ci.yml", "stack")
    failed = None
    for step in steps:
        if step.condition == "always()" or (step.condition == "failure()" and failed) or \
                (step.condition is None and not failed):
            # Debian's Chromium for `make e2e`: Playwright's download is out of reach here.
            result = run_step(step, clone, env={"GITHUB_ACTIONS": "true", "CI": "true",
                                                "PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH": CHROMIUM}, timeout=1200)
            if result.returncode != 0 and not failed:
                failed = (step.name, result.stdout[-3000:], result.stderr[-3000:])
            if step.name.startswith("make db-up"):
                names = Names(clone)
                # what the job proved, seen from here too
                assert engine.health(names.db) == "healthy"
                engine.wait_healthy(names.backend, timeout=90)
    assert failed is None, failed
    # `make down` (always) left nothing running
    assert not engine.exists(Names(clone).backend) and not engine.exists(Names(clone).db)
