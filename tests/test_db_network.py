"""Only the backend reaches the database: db/ is a compose project that owns its
network, publishes its port on loopback only, keeps its optional services off
the shared network, and (full tier) the backend's verify_architecture, reading
the compose files where the dev compose mounts them, fails when another
service joins the database's network.
"""

from __future__ import annotations

import shutil

import pytest
import yaml

from harness import compose
from harness.answers import recorded


# ===========================================================================
# Quick tier
# ===========================================================================
def test_db_compose_owns_the_network(versioned_project):
    a = recorded(versioned_project)
    network = compose.load(versioned_project / "db/docker-compose.yml")["networks"][a["network_name"]]
    assert network["name"] == a["network_name"] and not network.get("external")
    _, service = compose.db_service(versioned_project)
    assert service["networks"] == [a["network_name"], "default"], "the shared network, and its own project's"


def test_db_port_is_published_on_loopback_only(default_project, render_jinja):
    _, service = compose.db_service(default_project)
    assert service["ports"] == ["127.0.0.1:5432:5432"]
    _, unpublished = compose.db_service(render_jinja({"db_host_port": 0}))
    assert "ports" not in unpublished
    _, other = compose.db_service(render_jinja({"db_host_port": 15432, "db_port": 6543}))
    assert other["ports"] == ["127.0.0.1:15432:6543"]


def test_optional_services_reach_the_db_off_the_shared_network(example):
    a = recorded(example)
    services = compose.topology(example)
    private = f"{a['project_slug']}_db_default"
    assert set(services[a["db_service"]]) == {a["network_name"], private}
    monitoring = f"{a['project_slug']}_monitoring"  # the exporter's, where Prometheus scrapes it
    for name in ("exporter", "backup", "backup-physical"):
        assert set(services[name]) == {private} | ({monitoring} if name == "exporter" else set()), name
        assert compose.resolves(services, name, a["db_service"]) == {a["db_service"]}, name
        assert compose.resolves(services, name, "backend") == set(), name
    assert {name for name, networks in services.items() if private in networks} == {
        a["db_service"], "exporter", "backup", "backup-physical"}


# ===========================================================================
# Full tier: verify_architecture reads the network layout from the compose files
# ===========================================================================
NETWORK_LINE = "Only the backend shares a network with the database"


# Each changes the project so that `intruder` reaches the database, and returns the network it does it on.
def _frontend_on_db_network(project, network):
    path = project / "docker-compose.dev.yml"
    compose = yaml.safe_load(path.read_text())
    compose["services"]["frontend"]["networks"][network] = None
    path.write_text(yaml.safe_dump(compose))
    return network


def _frontend_on_the_db_projects_own_network(project, network):
    private = f"{recorded(project)['project_slug']}_db_default"
    path = project / "docker-compose.dev.yml"
    compose = yaml.safe_load(path.read_text())
    compose["networks"]["db_private"] = {"name": private, "external": True}
    compose["services"]["frontend"]["networks"]["db_private"] = None
    path.write_text(yaml.safe_dump(compose))
    return private


def _admin_tool_in_db_project(project, network):
    path = project / "db/docker-compose.yml"
    compose = yaml.safe_load(path.read_text())
    compose["services"]["pgadmin"] = {"image": "dpage/pgadmin4", "networks": [network]}
    path.write_text(yaml.safe_dump(compose))
    return network


def _exporter_on_the_shared_network(project, network):
    path = project / "db/docker-compose.yml"
    compose = yaml.safe_load(path.read_text())
    compose["services"]["exporter"]["networks"] = ["default", network]
    path.write_text(yaml.safe_dump(compose))
    return network


@pytest.mark.full
@pytest.mark.parametrize("intrude, intruder", [(_frontend_on_db_network, "frontend"),
                                               (_frontend_on_the_db_projects_own_network, "frontend"),
                                               (_admin_tool_in_db_project, "pgadmin"),
                                               (_exporter_on_the_shared_network, "exporter")])
def test_verify_architecture_fails_when_another_service_joins_the_db_network(
        giga_project, giga_db, tmp_path, intrude, intruder):
    from harness.backend import Backend
    from harness.python import venv_for
    network = recorded(giga_project)["network_name"]
    project = tmp_path / "project"
    shutil.copytree(giga_project, project, symlinks=True)
    backend = Backend(project, giga_db, venv_for(project / "back"))
    result = backend.manage("verify_architecture")
    assert (f"✅ {NETWORK_LINE}: {network}: giga-db, backend and worker only; backup, backup-physical, exporter on giga_db_default; "
            in result.stdout), result.stdout
    joined = intrude(project, network)
    result = backend.manage("verify_architecture")
    assert result.returncode == 1
    assert (f"❌ {NETWORK_LINE}: {intruder} (on {joined}) can reach the database; only 'backend' and its 'worker' may"
            in result.stdout), result.stdout


@pytest.mark.full
def test_verify_architecture_reads_the_compose_files_where_the_dev_compose_mounts_them(
        giga_project, giga_db, tmp_path):
    """The container's view: only the files the dev compose mounts, at their mount points."""
    from harness.backend import Backend
    from harness.python import venv_for
    backend_service = yaml.safe_load((giga_project / "docker-compose.dev.yml").read_text())["services"]["backend"]
    mounted = tmp_path / "container"
    for volume in backend_service["volumes"]:
        source, target, *_ = volume.split(":")
        if target.startswith("/compose/"):
            destination = mounted / target.removeprefix("/")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(giga_project / source, destination)
    backend = Backend(giga_project, giga_db, venv_for(giga_project / "back"))
    result = backend.manage("verify_architecture", "--compose-dir", str(mounted / "compose"))
    assert f"✅ {NETWORK_LINE}" in result.stdout, result.stdout
    assert sorted(p.relative_to(mounted).as_posix() for p in mounted.rglob("*.yml")) == [
        "compose/db/docker-compose.yml", "compose/docker-compose.dev.yml"]
