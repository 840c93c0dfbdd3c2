"""deploy/k8s/ (kustomize, CloudNativePG), behind the `kubernetes` question,
as rendered (quick tier): only with `kubernetes: true`, holding no secret,
and a CloudNativePG Cluster tuned like db/postgresql.conf and on db/'s
PostgreSQL minor, for each major.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import dotenv
from harness.answers import POSTGRES_VERSIONS, as_typed
from harness.render import copy_in_process, validator
from harness.k8s_manifests import OVERLAYS, one, yaml_documents


K8S_FILES = {
    "README.md", ".gitignore", "secrets/backend.env.example", "secrets/db-backup.env.example",
    *(f"base/{name}.yaml" for name in ["kustomization", "database", "backend", "worker", "frontend", "migrate",
                                        "ingress", "network-policies"]),
    *(f"overlays/{overlay}/{name}.yaml" for overlay in OVERLAYS for name in ["kustomization", "namespace"]),
}
MEMORY_SETTINGS = ["shared_buffers", "effective_cache_size", "maintenance_work_mem", "work_mem", "wal_buffers"]


def conf_settings(path: Path) -> dict[str, str]:
    """name -> value of a postgresql.conf, quotes removed."""
    settings = {}
    for line in path.read_text().splitlines():
        if match := re.match(r"^([a-z_.]+) = ('[^']*'|\S+)", line):
            settings[match[1]] = match[2].strip("'")
    return settings


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------
def test_kubernetes_is_off_by_default(default_project):
    assert as_typed(default_project)["kubernetes"] is False
    assert not (default_project / "deploy").exists()
    assert "deploy/k8s" not in (default_project / "README.md").read_text()


def test_kubernetes_renders_base_and_overlays(k8s_project):
    root = k8s_project / "deploy" / "k8s"
    assert {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} == K8S_FILES
    assert len(yaml_documents(root)) >= 20  # and every file parses
    assert "(deploy/k8s/README.md)" in (k8s_project / "README.md").read_text()


def test_manifests_hold_no_secret(k8s_project):
    """The generated secrets live in the git-ignored env files only: none of
    them appears under deploy/, which holds no Secret object either."""
    generated = [dotenv.load(k8s_project / "db/.env")[key] for key in ("POSTGRES_PASSWORD", "APP_DB_PASSWORD")]
    generated.append(dotenv.load(k8s_project / "back/.env")["DJANGO_SECRET_KEY"])
    for path in (k8s_project / "deploy").rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not [s for s in generated if s in text], path
    assert not [doc for doc in yaml_documents(k8s_project / "deploy") if doc.get("kind") == "Secret"]
    assert "secretGenerator" not in (k8s_project / "deploy/k8s/base/kustomization.yaml").read_text()


# One render per PostgreSQL major, each with another memory size.
VARIANTS = list(zip(POSTGRES_VERSIONS, [256, 1000, 4096, 65536, 1536]))


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: f"pg{v[0]}-{v[1]}MiB")
def variant(request, jinja_template, tmp_path_factory) -> tuple[Path, Path]:
    """(db/, deploy/k8s/base/) of a project with that major and db_memory_mb."""
    version, memory = request.param
    project = tmp_path_factory.mktemp("k8s") / "project"
    refusal = copy_in_process(jinja_template, {"kubernetes": True, "postgres_version": str(version),
                                               "db_memory_mb": str(memory)}, project)
    assert refusal is None, refusal
    return project / "db", project / "deploy/k8s/base"


def test_cluster_is_tuned_like_postgresql_conf(variant):
    """Every parameter the Cluster shares with postgresql.conf has the conf's
    value, the five memory settings among them; the memory the rules assume
    is the instances' request and limit."""
    db, base = variant
    conf = conf_settings(db / "postgresql.conf")
    cluster = one(yaml_documents(base), "Cluster")
    parameters = cluster["spec"]["postgresql"]["parameters"]
    assert set(MEMORY_SETTINGS) <= set(parameters)
    shared = set(parameters) & set(conf)
    assert {"max_connections", "max_worker_processes", "pg_stat_statements.track"} <= shared
    assert {name: parameters[name] for name in shared} == {name: conf[name] for name in shared}
    memory = f"{re.search(r'RAM = (\d+) MiB', (db / 'postgresql.conf').read_text())[1]}Mi"
    assert cluster["spec"]["resources"]["requests"]["memory"] == memory
    assert cluster["spec"]["resources"]["limits"]["memory"] == memory


def test_cluster_runs_the_minor_of_the_db_image(variant):
    """CloudNativePG's operand image is the PostgreSQL minor and Debian
    release of db/Dockerfile's official image."""
    db, base = variant
    official = re.search(r"^FROM postgres:(\d+\.\d+)-(\w+)$", (db / "Dockerfile").read_text(), re.M)
    image = one(yaml_documents(base), "Cluster")["spec"]["imageName"]
    assert image == f"ghcr.io/cloudnative-pg/postgresql:{official[1]}-standard-{official[2]}"


def test_domain_accepts_host_names(jinja_template):
    check = validator(jinja_template, "domain")
    for name in ["localhost", "app.example.com", "a.b-c.d", "xn--bcher-kva.example", "x1.example.com",
                 "a" * 63 + ".example.com"]:
        assert check({"domain": name}) == "", name
