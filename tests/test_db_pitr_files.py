"""db/: continuous WAL archiving and point-in-time recovery with pgBackRest,
as rendered: the image installs pgBackRest and its configuration, archiving
is on with durability unchanged, the repository has a volume of its own, the
passphrase is a generated secret in db/.env only, the object store is
documented, the schedule and production's profile, the make targets, and the
scripts' refusals that need no server. test_db_pitr.py runs them for real."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from harness import compose, dotenv, make
from harness.answers import recorded
from harness.dockerfile import dockerfile_stages
from harness.postgres import conf_settings

PHYSICAL_SCRIPTS = ("backup-physical", "list-backups-physical", "pitr")


def pgbackrest_conf(project: Path) -> dict[str, dict[str, str]]:
    """db/pgbackrest.conf's sections and options."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in (project / "db/pgbackrest.conf").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current[key] = value
    return sections


# ===========================================================================
# Quick tier
# ===========================================================================
def test_the_image_installs_pgbackrest_and_its_configuration(versioned_project):
    db_dir = versioned_project / "db"
    instructions = dockerfile_stages(db_dir / "Dockerfile")[""].instructions
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    assert any(re.search(r"apt-get install -y --no-install-recommends pgbackrest\b", run) and
               "rm -rf /var/lib/apt/lists/*" in run for run in runs), runs
    assert ("COPY", "pgbackrest.conf /etc/pgbackrest/pgbackrest.conf") in instructions
    assert (db_dir / "pgbackrest.conf").is_file()
    for name in PHYSICAL_SCRIPTS + ("backup-physical-every",):
        assert os.access(db_dir / "bin" / name, os.X_OK), name


def test_pgbackrest_conf_encrypts_keeps_two_fulls_and_names_the_data_directory(versioned_project):
    a = recorded(versioned_project)
    conf = pgbackrest_conf(versioned_project)
    assert set(conf) == {"global", a["project_slug"]}
    assert conf["global"]["repo1-path"] == "/var/lib/pgbackrest"
    assert conf["global"]["repo1-cipher-type"] == "aes-256-cbc"
    assert (conf["global"]["repo1-retention-full-type"], conf["global"]["repo1-retention-full"]) == ("count", "2")
    assert not any(key.startswith("repo2") for key in conf["global"]), "repository 2 exists only if db/.env sets it"
    assert not any("cipher-pass" in key for section in conf.values() for key in section), "no secret in the file"
    stanza = conf[a["project_slug"]]
    pgdata = f"/var/lib/postgresql/{a['postgres_version']}/docker" if a["postgres_version"] >= 18 \
        else "/var/lib/postgresql/data"
    assert stanza["pg1-path"] == pgdata
    assert stanza["pg1-port"] == str(a["db_port"]) and stanza["pg1-user"] == a["db_admin_user"]
    # the data directory is where the data volume is mounted
    _, service = compose.db_service(versioned_project)
    mount = next(v.split(":", 1)[1] for v in service["volumes"] if v.startswith("db_data:"))
    assert pgdata == mount or pgdata.startswith(mount + "/")


def test_postgresql_conf_archives_through_pgbackrest_with_durability_on(versioned_project):
    a = recorded(versioned_project)
    settings = conf_settings(versioned_project / "db/postgresql.conf")
    assert settings["wal_level"] == "replica" and settings["archive_mode"] == "on"
    assert settings["archive_command"] == f"pgbackrest --stanza={a['project_slug']} archive-push %p"
    assert settings["archive_timeout"] == "60s"
    assert {settings[key] for key in ("fsync", "full_page_writes", "synchronous_commit")} == {"on"}
    _, service = compose.db_service(versioned_project)
    assert service["environment"]["PGBACKREST_STANZA"] == a["project_slug"]


def test_the_repository_has_a_volume_of_its_own(versioned_project):
    a = recorded(versioned_project)
    _, service = compose.db_service(versioned_project)
    volumes = compose.load(versioned_project / "db/docker-compose.yml")["volumes"]
    assert "db_pgbackrest:/var/lib/pgbackrest" in service["volumes"]
    assert volumes["db_pgbackrest"]["name"] == f"{a['project_slug']}_db_pgbackrest_{a['postgres_version']}"
    assert volumes["db_pgbackrest"]["name"] != volumes["db_data"]["name"]
    data_mount = next(v.split(":", 1)[1] for v in service["volumes"] if v.startswith("db_data:"))
    assert not "/var/lib/pgbackrest".startswith(data_mount + "/"), "the repository must not live in the data volume"


def test_the_passphrase_is_generated_into_db_env_only(render_jinja, default_project):
    passphrase = dotenv.load(default_project / "db/.env")["PGBACKREST_REPO1_CIPHER_PASS"]
    again = dotenv.load(render_jinja({"project_name": "Giga"}) / "db/.env")["PGBACKREST_REPO1_CIPHER_PASS"]
    assert re.fullmatch(r"[0-9a-f]{64}", passphrase) and passphrase != again
    assert dotenv.load(default_project / "db/.env.example")["PGBACKREST_REPO1_CIPHER_PASS"] == "change-me"
    assert "db_backup_passphrase" not in (default_project / ".copier-answers.yml").read_text()
    for path in default_project.rglob("*"):
        if path.is_file() and path.name != ".env":
            assert passphrase not in path.read_text(errors="replace"), path
    # the container gets it from env_file, not from the compose file's text or a command line
    _, service = compose.db_service(default_project)
    assert service["env_file"] == ".env" and "PGBACKREST_REPO1_CIPHER_PASS" not in service["environment"]
    assert "CIPHER_PASS" not in (default_project / "db/docker-compose.yml").read_text()
    assert "cipher-pass" not in (default_project / "db/postgresql.conf").read_text()


def test_the_object_store_is_documented_commented_out_and_encrypted(default_project):
    for name in (".env", ".env.example"):
        text = (default_project / "db" / name).read_text()
        assert not any(key.startswith("PGBACKREST_REPO2") for key in dotenv.load(default_project / "db" / name))
        for key in ("TYPE=s3", "S3_BUCKET=", "S3_ENDPOINT=", "S3_KEY=", "S3_KEY_SECRET=", "CIPHER_TYPE=aes-256-cbc",
                    "CIPHER_PASS="):
            assert f"\n#PGBACKREST_REPO2_{key}" in text, (name, key)


def test_make_targets_run_the_scripts_and_are_documented(default_project):
    a = recorded(default_project)
    assert {"db-backup-physical", "db-backups-physical", "db-pitr"} <= set(make.targets(default_project))
    container = f"{a['project_slug']}_db_dev"
    assert make.commands(default_project, "db-backup-physical") == [
        ["docker", "exec", "-u", "postgres", container, "backup-physical", "incr"]]
    assert make.commands(default_project, "db-backup-physical", TYPE="full") == [
        ["docker", "exec", "-u", "postgres", container, "backup-physical", "full"]]
    assert make.commands(default_project, "db-backups-physical") == [
        ["docker", "exec", "-u", "postgres", container, "list-backups-physical"]]
    assert make.commands(default_project, "db-pitr", TARGET="2026-01-01 10:00:00")[-1] == [
        "scripts/db-pitr", "2026-01-01 10:00:00"]
    assert make.commands(default_project, "db-pitr", TARGET="2026-01-01 10:00:00", YES="1")[-1] == [
        "scripts/db-pitr", "2026-01-01 10:00:00", "--yes"]
    refused = make.make(default_project, "db-pitr")
    assert refused.returncode == 2 and "TARGET is required" in refused.stderr
    readme = (default_project / "db/README.md").read_text()
    section = readme.split("## Point-in-time recovery", 1)[1].split("\n## ", 1)[0]
    for documented in ("make db-backup-physical", "make db-backups-physical", "make db-pitr TARGET=",
                       "YES=1", "PGBACKREST_REPO1_CIPHER_PASS", "archive_timeout"):
        assert documented in section, documented
    assert "{{" not in section


def test_db_pitr_refuses_a_bad_target_before_touching_docker(default_project):
    for args, message in ((["not a time"], "is not a timestamp"), ([], "usage: scripts/db-pitr TARGET"),
                          (["2026-01-01 10:00", "--force"], "usage: scripts/db-pitr TARGET")):
        result = subprocess.run([str(default_project / "scripts/db-pitr"), *args], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=30, cwd=default_project,
                                env={**os.environ, "PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent"})
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_pitr_refuses_a_target_that_is_not_a_timestamp_before_reading_anything(default_project, tmp_path):
    for target in ("yesterday", "1 hour ago", "2026-02-30 10:00:00", "2026-01-01", "now", "2026-01-01 10:00:00 +1 day"):
        result = subprocess.run([str(default_project / "db/bin/pitr"), target, "--yes"], capture_output=True,
                                text=True, timeout=30, stdin=subprocess.DEVNULL,
                                env={"PATH": os.environ["PATH"], "PGBACKREST_STANZA": "giga",
                                     "PGBACKREST_CONFIG": str(tmp_path / "none.conf")})
        assert result.returncode == 1, (target, result.stderr)
        assert f"'{target}' is not a timestamp" in result.stderr and "nothing was changed" in result.stderr


def test_the_schedule_runs_beside_the_server_from_its_image_and_production_enables_it(versioned_project):
    a = recorded(versioned_project)
    db_name, db = compose.db_service(versioned_project)
    _, service = compose.profile_services(versioned_project)["backup-physical"]
    assert service["image"] == db["image"] and service["pull_policy"] == "never" and "build" not in service
    assert service["command"] == ["backup-physical-every"] and service["user"] == "postgres"
    data = next(v for v in db["volumes"] if v.startswith("db_data:"))
    # the data read-only, the same repository, the server's socket
    assert service["volumes"] == [f"{data}:ro", "db_pgbackrest:/var/lib/pgbackrest", "db_socket:/var/run/postgresql"]
    assert "db_socket:/var/run/postgresql" in db["volumes"]
    assert compose.load(versioned_project / "db/docker-compose.yml")["volumes"]["db_socket"]["driver_opts"]["type"] == "tmpfs"
    # restore-drill logs in as the superuser, over the socket
    assert service["environment"] == {"PGBACKREST_STANZA": a["project_slug"], "POSTGRES_USER": a["db_admin_user"],
                                      "POSTGRES_DB": a["db_name"], "PGPORT": str(a["db_port"])} \
        and service["env_file"] == ".env"
    assert "cap_add" not in service and service["tmpfs"] == ["/tmp"]
    for name in (".env", ".env.example"):
        assert dotenv.load(versioned_project / "db" / name)["PHYSICAL_BACKUP_INTERVAL"] == "86400", name
    # production: the profile is on, with a healthcheck on the newest backup's age
    make_text = (versioned_project / "Makefile").read_text()
    assert re.search(r"^PROD_DB_COMPOSE := .*--profile backup-physical\b", make_text, re.M)
    prod = compose.load_override(versioned_project / "db/docker-compose.prod.yml")["services"]["backup-physical"]
    assert "pgbackrest info" in prod["healthcheck"]["test"][1]


@pytest.mark.parametrize("interval", ["0", "-5", "1h", "ten"])
def test_backup_physical_every_refuses_a_bad_interval(default_project, interval):
    result = subprocess.run([str(default_project / "db/bin/backup-physical-every")], capture_output=True, text=True,
                            timeout=10, env={"PATH": os.environ["PATH"], "PHYSICAL_BACKUP_INTERVAL": interval})
    assert result.returncode == 2, result
    assert f"PHYSICAL_BACKUP_INTERVAL must be a positive whole number of seconds, not '{interval}'" in result.stderr


def test_backup_physical_refuses_a_bad_type_and_root(default_project):
    result = subprocess.run([str(default_project / "db/bin/backup-physical"), "weekly"], capture_output=True,
                            text=True, timeout=10, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 2 and "the type must be full, incr or diff, not 'weekly'" in result.stderr
    if os.geteuid() == 0:
        result = subprocess.run([str(default_project / "db/bin/backup-physical")], capture_output=True, text=True,
                                timeout=10, env={"PATH": os.environ["PATH"]})
        assert result.returncode == 2 and "run it as the postgres user" in result.stderr
