"""Quick tier: the Docker-level artifacts, with no engine (the docker tier,
test_docker_*.py, runs them on a real one): compose files pass the
compose-spec schema, Dockerfiles hadolint with no frontend image to fetch,
shell scripts shellcheck; containers run without privileges they do not
need, within memory limits, from exact base images.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness import compose
from harness.dockerfile import base_images
from harness.render import project_files
from harness.rendered import db_compose, dev_compose


# ---------------------------------------------------------------------------
# Linters on the Docker-level artifacts
# ---------------------------------------------------------------------------
def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True)


def test_compose_files_match_the_compose_spec(example, tmp_path):
    documents = compose.spec_documents(example, tmp_path)
    assert len(documents) == 4, documents
    result = run_tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", *map(str, documents))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfiles_need_no_frontend_image(example):
    """No `# syntax=` directive: BuildKit would fetch that frontend image from
    Docker Hub at every build; the one built into Engine >= 23 reads these."""
    for tier in ("db", "back", "front"):
        text = (example / tier / "Dockerfile").read_text()
        assert not re.search(r"^#\s*syntax\s*=", text, re.M | re.I), tier


def test_dockerfiles_pass_hadolint(example):
    dockerfiles = sorted(example.rglob("Dockerfile"))
    assert {example / tier / "Dockerfile" for tier in ("db", "back", "front")} <= set(dockerfiles)
    for dockerfile in dockerfiles:
        result = run_tool("hadolint", str(dockerfile))
        assert result.returncode == 0, f"{dockerfile}:\n{result.stdout}{result.stderr}"


def test_shell_scripts_pass_shellcheck(example):
    scripts = [p for p in project_files(example)
               if "node_modules" not in p.parts
               and (p.suffix == ".sh" or p.read_bytes()[:2] == b"#!" and b"sh" in p.read_bytes().split(b"\n")[0])]
    assert {example / "db/init/10-app-role.sh", example / "back/docker-entrypoint.sh", example / "scripts/db-upgrade",
            example / "scripts/verify", example / "scripts/compose-up", example / "scripts/env-files",
            *(example / "db/bin").iterdir()} <= set(scripts)
    result = run_tool("shellcheck", *map(str, scripts))
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------
# Containers: privileges, capabilities, memory, exact images
# ---------------------------------------------------------------------------
def all_services(project: Path) -> dict[str, dict]:
    return {**db_compose(project)["services"], **dev_compose(project)["services"]}


def test_every_service_runs_with_no_new_privileges(example):
    services = all_services(example)
    assert len(services) == 8
    for name, service in services.items():
        assert "no-new-privileges:true" in service.get("security_opt", []), name


def test_backend_and_frontend_drop_every_capability_and_have_memory_limits(example):
    for name, service in dev_compose(example)["services"].items():
        assert service.get("cap_drop") == ["ALL"], name
        assert "cap_add" not in service and not service.get("privileged"), name
        assert re.fullmatch(r"[1-9]\d*[mg]", str(service.get("mem_limit"))), name


# An exact tag: every part of the version (PostgreSQL's are major.minor since
# 10) and the Debian release, so a rebuild changes neither.
FULL_VERSION_PARTS = {"postgres": 2}
EXACT_IMAGE_DOCKERFILES = ["db/Dockerfile", "front/Dockerfile"]


@pytest.mark.parametrize("dockerfile", EXACT_IMAGE_DOCKERFILES)
def test_base_images_are_exact(versioned_project, dockerfile):
    images = base_images(versioned_project / dockerfile)
    assert images
    for image in images:
        name, _, tag = image.partition(":")
        parts = FULL_VERSION_PARTS.get(name, 3)
        assert re.fullmatch(rf"\d+(\.\d+){{{parts - 1}}}(-[a-z]+)*-(bookworm|trixie)(-[a-z]+)*", tag), image
