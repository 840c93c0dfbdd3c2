"""db/: PostgreSQL in its own compose project.

Quick tier: the rendered files, statically (compose service, Dockerfile,
postgresql.conf, pg_hba.conf, init/ scripts, the healthcheck).

Full tier (`full`): the rendered db/ runs a real PostgreSQL of the same major.
Each server uses the rendered postgresql.conf and pg_hba.conf and ran the
rendered init/ like the official entrypoint (see harness.postgres).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import yaml

from harness import compose, dotenv, make
from harness.answers import POSTGRES_VERSIONS, recorded, secrets as secrets_of
from harness.dockerfile import base_images, dockerfile_stages
from harness.inputs import AWKWARD_PASSWORDS
from harness.net import free_port
from harness.postgres import (EMBEDDED_POSTGRES, PostgresServer, client_bindir, conf_settings, dockerfile_image,
                              dockerfile_major, start_project_db)
from harness.render import REPO, copier_cli, data_args, example_answers

# ===========================================================================
# Quick tier
# ===========================================================================
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


def test_db_compose_owns_the_network(versioned_project):
    a = recorded(versioned_project)
    network = compose.load(versioned_project / "db/docker-compose.yml")["networks"][a["network_name"]]
    assert network["name"] == a["network_name"] and not network.get("external")
    _, service = compose.db_service(versioned_project)
    assert service["networks"] == [a["network_name"], "default"], "the shared network, and its own project's"


def test_db_port_is_published_on_loopback_only(default_project, render):
    _, service = compose.db_service(default_project)
    assert service["ports"] == ["127.0.0.1:5432:5432"]
    _, unpublished = compose.db_service(render({"db_host_port": 0}))
    assert "ports" not in unpublished
    _, other = compose.db_service(render({"db_host_port": 15432, "db_port": 6543}))
    assert other["ports"] == ["127.0.0.1:15432:6543"]


def test_dockerfile_uses_the_chosen_major(versioned_project):
    a = recorded(versioned_project)
    dockerfile = (versioned_project / "db/Dockerfile").read_text()
    major, minor, debian = dockerfile_image(versioned_project / "db")
    assert re.search(rf"^FROM postgres:{a['postgres_version']}\.{minor}-{debian}$", dockerfile, re.M)
    assert major == a["postgres_version"]
    assert "config_file=/etc/postgresql/postgresql.conf" in dockerfile
    assert "COPY --chmod=0755 init/ /docker-entrypoint-initdb.d/" in dockerfile


def test_postgresql_conf_essentials(versioned_project):
    a = recorded(versioned_project)
    conf = conf_settings(versioned_project / "db/postgresql.conf")
    assert conf["listen_addresses"] == "*"
    assert conf["port"] == str(a["db_port"])
    assert conf["password_encryption"] == "scram-sha-256"
    assert conf["hba_file"] == "/etc/postgresql/pg_hba.conf"
    assert (conf["fsync"], conf["full_page_writes"], conf["synchronous_commit"]) == ("on", "on", "on")
    assert "pg_stat_statements" in conf["shared_preload_libraries"]
    assert conf["log_destination"] == "stderr" and conf["logging_collector"] == "off"
    assert "log_min_duration_statement" in conf
    assert conf["timezone"] == a["timezone"]


@pytest.mark.parametrize("memory_mb, expected", [
    # RAM, shared_buffers, effective_cache_size, maintenance_work_mem, work_mem, wal_buffers
    (256, ("64MB", "192MB", "16MB", "4MB", "1966kB")),
    (1024, ("256MB", "768MB", "64MB", "4MB", "7864kB")),
    (8192, ("2GB", "6GB", "512MB", "19418kB", "16MB")),
    (65536, ("16GB", "48GB", "2GB", "155344kB", "16MB")),
])
def test_postgresql_conf_is_tuned_from_the_memory_limit(render, memory_mb, expected):
    conf = conf_settings(render({"db_memory_mb": memory_mb}) / "db/postgresql.conf")
    assert (conf["shared_buffers"], conf["effective_cache_size"], conf["maintenance_work_mem"],
            conf["work_mem"], conf["wal_buffers"]) == expected


@pytest.mark.parametrize("memory_mb", [256, 1024, 65536])
def test_checkpoints_are_spaced_for_writes_with_durability_on(render, memory_mb):
    # Measured by tests/benchmarks/bench_postgresql_conf.py (docs/benchmarks.md):
    # fewer checkpoints, fewer full-page images in the WAL; durability untouched.
    conf = conf_settings(render({"db_memory_mb": memory_mb}) / "db/postgresql.conf")
    assert (conf["checkpoint_timeout"], conf["max_wal_size"], conf["min_wal_size"],
            conf["checkpoint_completion_target"]) == ("15min", "4GB", "1GB", "0.9")
    assert (conf["fsync"], conf["full_page_writes"], conf["synchronous_commit"]) == ("on", "on", "on")


def hba_lines(project: Path) -> list[list[str]]:
    return [line.split() for line in (project / "db/pg_hba.conf").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_pg_hba_never_trusts_tcp_and_ends_in_reject(versioned_project):
    a = recorded(versioned_project)
    lines = hba_lines(versioned_project)
    tcp = [line for line in lines if line[0].startswith("host")]
    assert all(line[-1] in {"scram-sha-256", "reject"} for line in tcp), tcp
    assert [line[0] for line in lines if line[-1] == "trust"] == ["local"]
    assert tcp[-2:] == [["host", "all", "all", "0.0.0.0/0", "reject"], ["host", "all", "all", "::/0", "reject"]]
    network_rules = [line for line in tcp if line[3] == "samenet"]
    assert network_rules == [["host", f"{a['db_name']},test_{a['db_name']},postgres", a["db_user"],
                              "samenet", "scram-sha-256"],
                             ["host", a["db_name"], compose.environments(versioned_project)["db"]["MONITOR_DB_USER"],
                              "samenet", "scram-sha-256"]]


def test_init_scripts_hard_code_no_credentials(versioned_project):
    a = recorded(versioned_project)
    secrets = secrets_of(versioned_project).values()
    for script in (versioned_project / "db/init").iterdir():
        text = script.read_text()
        assert a["db_user"] not in text and a["db_name"] not in text, script
        assert not any(s in text for s in secrets), script
    assert os.stat(versioned_project / "db/init/10-app-role.sh").st_mode & stat.S_IXUSR


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


BACKUP_SCRIPTS = ("backup", "list-backups", "restore")
# upgrade-from: see make db-upgrade; the physical ones: test_db_pitr.py;
# restore-drill and table-row-counts (which upgrade-from uses too): test_db_drill.py
DB_SCRIPTS = (*BACKUP_SCRIPTS, "upgrade-from", "backup-physical", "list-backups-physical", "pitr", "restore-drill",
              "table-row-counts")
# The `backup` profile's command, not run by hand.
SCHEDULED_BACKUP = "backup-every"
SCHEDULED_PHYSICAL_BACKUP = "backup-physical-every"


def test_backup_scripts_are_installed_in_the_image(versioned_project):
    """db/bin/ is copied, executable, onto the image's PATH, for `docker exec <db> backup`."""
    db_dir = versioned_project / "db"
    scripts = (*DB_SCRIPTS, SCHEDULED_BACKUP, SCHEDULED_PHYSICAL_BACKUP)
    assert sorted(p.name for p in (db_dir / "bin").iterdir()) == sorted(scripts)
    for name in scripts:
        assert os.stat(db_dir / "bin" / name).st_mode & stat.S_IXUSR, name
    assert "COPY --chmod=0755 bin/ /usr/local/bin/" in (db_dir / "Dockerfile").read_text().splitlines()


def upgrade_plan(project: Path) -> dict[int, tuple[str, str]]:
    """scripts/db-upgrade's map, evaluated by bash: major -> (exact image, data mount)."""
    listing = subprocess.run(
        ["bash", "-c", 'eval "$(grep "^declare -A" "$1")"; for m in "${!images[@]}"; do echo "$m ${images[$m]} ${mounts[$m]}"; done',
         "bash", str(project / "scripts/db-upgrade")], capture_output=True, text=True, check=True).stdout
    return {int(major): (image, mount) for major, image, mount in map(str.split, listing.splitlines())}


def test_upgrade_script_starts_each_major_as_its_own_files_do(versioned_project, default_project):
    """The old server of `make db-upgrade FROM=<major>` runs the image that major's
    Dockerfile names, with the volume where that major's compose file mounts it."""
    plan = upgrade_plan(versioned_project)
    assert sorted(plan) == POSTGRES_VERSIONS
    assert plan == upgrade_plan(default_project), "the map does not depend on the rendered major"
    major = recorded(versioned_project)["postgres_version"]
    image, mount = plan[major]
    assert base_images(versioned_project / "db/Dockerfile") == [image]
    assert dockerfile_image(versioned_project / "db")[0] == major
    _, service = compose.db_service(versioned_project)
    assert f"db_data:{mount}" in service["volumes"]
    # the old server joins the database's network, where the new container reaches it
    script = (versioned_project / "scripts/db-upgrade").read_text()
    assert f"--network {service['networks'][0]} " in script
    assert f"docker exec {service['container_name']} upgrade-from " in script


def upgrade_script(project: Path, *args: str) -> subprocess.CompletedProcess:
    """scripts/db-upgrade with no engine answering: only what it does before Docker can run."""
    return subprocess.run([str(project / "scripts/db-upgrade"), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, cwd=project)


@pytest.mark.parametrize("args, message", [
    ([], "usage: scripts/db-upgrade FROM"),
    (["14"], "usage: scripts/db-upgrade FROM"),
    (["16x"], "usage: scripts/db-upgrade FROM"),
    (["18"], "FROM must be an older major (got 18)"),
    (["16", "--yes"], "usage: scripts/db-upgrade FROM"),
], ids=["no FROM", "not offered", "not a major", "the current major", "unknown option"])
def test_db_upgrade_refuses_a_wrong_from_before_touching_docker(render, args, message):
    result = upgrade_script(render({"postgres_version": 18}), *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "docker" not in result.stderr.lower()


def test_db_upgrade_refuses_without_the_old_volume(render):
    """No engine answers, so no volume: the script stops at its first Docker call
    (test_docker_update.py runs the whole upgrade on the real engine)."""
    project = render({"postgres_version": 18})
    result = upgrade_script(project, "16")
    assert result.returncode == 1, result.stderr
    assert "cannot use the PostgreSQL 16 volume giga_db_data_16; nothing was changed" in result.stderr


def test_readme_documents_the_upgrade_its_rollback_and_the_old_volume(versioned_project):
    a = recorded(versioned_project)
    volumes = compose.load(versioned_project / "db/docker-compose.yml")["volumes"]
    major, volume, repository = a["postgres_version"], volumes["db_data"]["name"], volumes["db_pgbackrest"]["name"]
    section = (versioned_project / "db/README.md").read_text().split("## Upgrading PostgreSQL to a new major\n", 1)[1]
    newer = [v for v in POSTGRES_VERSIONS if v > major]
    target = str(newer[-1]) if newer else "<new>"
    commands = [line.split("#")[0].strip() for line in section.splitlines()]
    # the two steps, in order, from this major
    assert commands.index(f"copier update -d postgres_version={target}") < commands.index(f"make db-upgrade FROM={major}")
    # rollback: render the old major again; then delete its volumes (the data's and
    # pgBackRest's repository), by the names compose gives them
    assert f"copier update -d postgres_version={major}" in commands
    assert f"docker volume rm {volume} {repository}" in commands
    assert "{{" not in section


def test_backups_land_in_a_git_ignored_host_directory(default_project, tmp_path):
    """backup writes to /backups (BACKUP_DIR's default), which compose mounts from db/backups."""
    _, service = compose.db_service(default_project)
    assert "./backups:/backups" in service["volumes"]
    assert re.search(r'^backup_dir="\$\{BACKUP_DIR:-/backups\}"$', (default_project / "db/bin/backup").read_text(), re.M)
    shutil.copy(default_project / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    ignored = subprocess.run(["git", "-C", str(tmp_path), "check-ignore", "--no-index", "db/backups/giga-20260101T000000Z.dump",
                              "db/backups/.gitkeep", "db/bin/backup", "db/.env.example"],
                             capture_output=True, text=True).stdout.split()
    assert ignored == ["db/backups/giga-20260101T000000Z.dump"]
    # the directory ships, so the bind mount is the team's, not created by Docker as root
    assert (default_project / "db/backups/.gitkeep").is_file()


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


def test_readme_documents_the_backup_scripts_by_their_installed_names(default_project, render):
    for project in (default_project, render({"db_host_port": 0})):
        a = recorded(project)
        section = (project / "db/README.md").read_text().split("## Backups", 1)[1].split("\n## ", 1)[0]
        documented = set(re.findall(rf"docker exec (?:-it )?{a['project_slug']}_db_dev ([\w-]+)", section))
        assert documented == set(BACKUP_SCRIPTS), documented
        assert "pg_restore -U" not in section and "{{" not in section
        assert re.search(r"^PGHOST=\S+ PGPORT=\S+ ", section, re.M), section


def test_backup_keep_is_documented_and_set(default_project):
    for name in (".env", ".env.example"):
        assert dotenv.load(default_project / "db" / name)["BACKUP_KEEP"] == "7", name


def test_the_tests_run_the_images_exact_postgresql(versioned_project):
    """The test servers (harness.postgres) are the same minor as the image."""
    major, minor, _ = dockerfile_image(versioned_project / "db")
    assert EMBEDDED_POSTGRES[major].split(".")[:2] == [str(major), str(minor)]


def test_the_tests_build_exactly_the_offered_majors():
    """One test server build per postgres_version choice of copier.yml, no stale ones."""
    assert sorted(EMBEDDED_POSTGRES) == sorted(POSTGRES_VERSIONS)


# ---------------------------------------------------------------------------
# The database's healthcheck and init scripts
# ---------------------------------------------------------------------------
def test_healthcheck_logs_in_as_the_app_role_with_the_password_in_its_environment(versioned_project):
    a = recorded(versioned_project)
    command = compose.healthcheck_command(compose.db_service(versioned_project)[1])  # raises on a lone $
    assert command[:2] == ["/bin/sh", "-c"]
    script = command[2]
    assert script.startswith('PGPASSWORD="${APP_DB_PASSWORD}" psql '), "the password goes in psql's environment"
    assert '--username="${APP_DB_USER}" --dbname="${POSTGRES_DB}"' in script
    assert f"--host=127.0.0.1 --port={a['db_port']} " in script, "TCP: the init-time server listens on the socket only"
    assert "--no-password" in script and "pg_isready" not in script
    assert re.findall(r"\$\{?(\w+)", script) == ["APP_DB_PASSWORD", "APP_DB_USER", "POSTGRES_DB"]


def test_init_scripts_keep_secrets_off_command_lines(versioned_project):
    """Passwords are read by psql itself (\\getenv); the shell only checks
    whether they are set, with builtins (`:`, `[[`), which start no program."""
    is_set_check = re.compile(r': "\$\{\w+:\?[^}]*\}"|if \[\[ -z \$\{\w+:-\} \]\]; then')
    for script in (versioned_project / "db/init").iterdir():
        for line in script.read_text().splitlines():
            if re.search(r"\$\{?\w*PASSWORD", line):
                assert is_set_check.fullmatch(line), f"{script.name}: {line}"
    for name, variable, password in [("10-app-role.sh", "APP_DB_PASSWORD", "app_password"),
                                     ("30-monitor-role.sh", "MONITOR_DB_PASSWORD", "monitor_password")]:
        role_script = (versioned_project / "db/init" / name).read_text()
        assert f"\\getenv {password} {variable}" in role_script and "<<'SQL'" in role_script, name
        assert f"PASSWORD :'{password}'" in role_script, name


def test_app_role_logs_in_only_after_the_last_init_script(versioned_project):
    scripts = sorted(p.name for p in (versioned_project / "db/init").iterdir())
    assert scripts[-1] == "99-app-login.sql"
    assert re.search(r"CREATE ROLE :\"app_user\" NOLOGIN ", (versioned_project / "db/init/10-app-role.sh").read_text())
    assert 'ALTER ROLE :"app_user" LOGIN;' in (versioned_project / "db/init/99-app-login.sql").read_text()



# ---------------------------------------------------------------------------
# The optional profiles: a Prometheus exporter and a scheduled backup
# ---------------------------------------------------------------------------
def resolved_environment(project: Path, service: dict) -> dict[str, str]:
    """A service's `environment` as its container gets it: compose interpolates
    ${NAME} from db/.env (and refuses anything else, see compose.unescape)."""
    db_env = dotenv.load(project / "db/.env")
    return {key: compose.unescape(str(value), db_env) for key, value in service["environment"].items()}


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
    env = resolved_environment(versioned_project, exporter)
    host_port, _, query = env.pop("DATA_SOURCE_URI").partition("?")
    assert host_port == f"{a['db_service']}:{a['db_port']}/{a['db_name']}" and query == "sslmode=disable"
    assert env == {"DATA_SOURCE_USER": db_env["MONITOR_DB_USER"], "DATA_SOURCE_PASS": db_env["MONITOR_DB_PASSWORD"]}
    assert not {db_env["POSTGRES_PASSWORD"], db_env["APP_DB_PASSWORD"]} & set(env.values())
    assert exporter["ports"] == ["127.0.0.1:9187:9187"], "metrics on loopback only"
    assert "cap_add" not in exporter


def test_backup_service_is_the_db_image_running_backup_every_as_the_app_role(versioned_project):
    a = recorded(versioned_project)
    db_env = compose.environments(versioned_project)["db"]
    _, db = compose.db_service(versioned_project)
    _, backup = compose.profile_services(versioned_project)["backup"]
    assert backup["image"] == db["image"] and "build" not in backup and backup["pull_policy"] == "never"
    assert backup["command"] == [SCHEDULED_BACKUP]
    backups_mount = [volume for volume in db["volumes"] if volume.endswith(":/backups")]
    assert backup["volumes"] == backups_mount == ["./backups:/backups"]
    assert resolved_environment(versioned_project, backup) == {
        "PGHOST": a["db_service"], "PGPORT": str(a["db_port"]), "PGDATABASE": db_env["POSTGRES_DB"],
        "PGUSER": db_env["APP_DB_USER"], "PGPASSWORD": db_env["APP_DB_PASSWORD"],
        "BACKUP_KEEP": db_env["BACKUP_KEEP"], "BACKUP_INTERVAL": db_env["BACKUP_INTERVAL"]}
    # root writing into the host's ./backups, like `docker exec <db> backup`; nothing else
    assert backup["cap_add"] == ["DAC_OVERRIDE"] and "DAC_OVERRIDE" in db["cap_add"]


def test_optional_services_reach_the_db_off_the_shared_network(example):
    a = recorded(example)
    services = compose.topology(example)
    private = f"{a['project_slug']}_db_default"
    assert set(services[a["db_service"]]) == {a["network_name"], private}
    for name in ("exporter", "backup", "backup-physical"):
        assert set(services[name]) == {private}, name
        assert compose.resolves(services, name, a["db_service"]) == {a["db_service"]}, name
        assert compose.resolves(services, name, "backend") == set(), name
    assert {name for name, networks in services.items() if private in networks} == {
        a["db_service"], "exporter", "backup", "backup-physical"}


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


@pytest.mark.parametrize("interval", ["0", "-5", "1h", "1.5", "ten", " 60"])
def test_backup_every_refuses_a_bad_interval_before_any_dump(default_project, tmp_path, interval):
    result = subprocess.run([str(default_project / "db/bin" / SCHEDULED_BACKUP)], capture_output=True, text=True,
                            timeout=10, env={"PATH": os.environ["PATH"], "BACKUP_INTERVAL": interval,
                                             "BACKUP_DIR": str(tmp_path)})
    assert result.returncode == 2, result
    assert f"BACKUP_INTERVAL must be a positive whole number of seconds, not '{interval}'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_backup_interval_is_documented_and_set(default_project):
    for name in (".env", ".env.example"):
        assert dotenv.load(default_project / "db" / name)["BACKUP_INTERVAL"] == "86400", name


# ===========================================================================
# Full tier
# ===========================================================================
EXAMPLE_PROJECTS = {"giga": example_answers("giga"), "acme": example_answers("acme-pg18")}
# Every major copier.yml offers: the examples' own, and a project for each
# other major, every second one with a small memory limit and another zone.
SMALL = {"db_memory_mb": 512, "timezone": "Europe/Madrid"}
_OTHER_MAJORS = [v for v in POSTGRES_VERSIONS if v not in {int(a["postgres_version"]) for a in EXAMPLE_PROJECTS.values()}]
PROJECTS = dict(sorted(
    [(f"pg{a['postgres_version']}-{name}", a) for name, a in EXAMPLE_PROJECTS.items()]
    + [(f"pg{v}-512mb" if i % 2 else f"pg{v}", {"postgres_version": v, **(SMALL if i % 2 else {})})
       for i, v in enumerate(_OTHER_MAJORS)],
    key=lambda item: int(item[1]["postgres_version"])))


@pytest.fixture(scope="module", params=list(PROJECTS), ids=list(PROJECTS))
def db(request, render) -> PostgresServer:
    project = render(PROJECTS[request.param])
    server = start_project_db(project)
    server.project = project
    yield server
    server.destroy()


def admin_query(db: PostgresServer, sql: str, params=None, dbname: str | None = None):
    """As the superuser, over the container-local loopback (allowed by pg_hba.conf)."""
    return db.query(sql, params=params, host="127.0.0.1",
                    **{**db.admin, **({"dbname": dbname} if dbname else {})})


def app_query(db: PostgresServer, sql: str, params=None):
    """As the application role, over the network address, like the backend."""
    return db.query(sql, params=params, **db.app)


@pytest.mark.full
def test_server_runs_the_dockerfiles_major(db):
    (version,), = admin_query(db, "SHOW server_version_num")
    assert int(version) // 10000 == dockerfile_major(db.project / "db") == db.major


@pytest.mark.full
def test_configuration_files_parse_without_errors(db):
    # The harness overrides these three on the command line (the container
    # uses the file's values), so the file's lines are reported as not applied.
    overridden = ["listen_addresses", "port", "hba_file"]
    assert admin_query(db, "SELECT sourceline, name, error FROM pg_file_settings"
                           " WHERE error IS NOT NULL AND name <> ALL(%s)", [overridden]) == []
    assert admin_query(db, "SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL") == []
    # the rendered files are the ones in force
    (hba_rules,), = admin_query(db, "SELECT count(*) FROM pg_hba_file_rules")
    assert hba_rules == len(hba_lines(db.project))


@pytest.mark.full
def test_durability_is_on(db):
    for setting in ("fsync", "full_page_writes", "synchronous_commit", "data_checksums"):
        (value,), = admin_query(db, f"SHOW {setting}")
        assert value == "on", setting


@pytest.mark.full
def test_checkpoint_spacing_is_in_force(db):
    settings = dict(admin_query(db, "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN"
                                    " ('checkpoint_timeout', 'max_wal_size', 'min_wal_size')"))
    assert settings == {"checkpoint_timeout": "900s", "max_wal_size": "4096MB", "min_wal_size": "1024MB"}


@pytest.mark.full
def test_memory_settings_follow_db_memory_mb(db):
    memory_mb = recorded(db.project)["db_memory_mb"]
    (shared_buffers_bytes,), = admin_query(
        db, "SELECT setting::bigint * pg_size_bytes(unit) FROM pg_settings WHERE name = 'shared_buffers'")
    assert shared_buffers_bytes == memory_mb * 1024 * 1024 // 4
    (cache_bytes,), = admin_query(
        db, "SELECT setting::bigint * pg_size_bytes(unit) FROM pg_settings WHERE name = 'effective_cache_size'")
    assert cache_bytes == memory_mb * 1024 * 1024 * 3 // 4


@pytest.mark.full
def test_timezone_and_logging(db):
    timezone = re.search(r"^timezone = '(.+)'", (db.project / "db/postgresql.conf").read_text(), re.M).group(1)
    assert admin_query(db, "SHOW timezone") == [(timezone,)]
    assert admin_query(db, "SHOW log_min_duration_statement") == [("500ms",)]
    assert admin_query(db, "SHOW password_encryption") == [("scram-sha-256",)]


@pytest.mark.full
def test_app_role_logs_in_over_tcp_with_scram(db):
    (user, via_tcp), = app_query(db, "SELECT current_user, inet_client_addr() IS NOT NULL")
    assert (user, via_tcp) == (db.app["user"], True)
    (stored,), = admin_query(db, "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [db.app["user"]])
    assert stored.startswith("SCRAM-SHA-256$")


@pytest.mark.full
def test_wrong_password_is_refused(db):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        db.connect(db.app["user"], db.app["password"] + "x", db.app["dbname"])


@pytest.mark.full
def test_app_role_is_least_privilege_and_owns_the_database(db):
    (superuser, createrole, createdb, login), = admin_query(
        db, "SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = %s",
        [db.app["user"]])
    assert (superuser, createrole, login) == (False, False, True)
    assert createdb, "manage.py test needs CREATEDB"
    (owner,), = admin_query(db, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                            [db.app["dbname"]])
    assert owner == db.app["user"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_query(db, "CREATE ROLE intruder")


@pytest.mark.full
def test_public_has_no_rights_on_the_app_database(db):
    (public_connect, public_create), = admin_query(
        db, "SELECT has_database_privilege('public', %s, 'CONNECT'),"
            " has_schema_privilege('public', 'public', 'CREATE')", [db.app["dbname"]], dbname=db.app["dbname"])
    assert (public_connect, public_create) == (False, False)


@pytest.mark.full
def test_app_role_can_create_tables_for_migrations(db):
    app_query(db, "CREATE TABLE migration_probe (id int); DROP TABLE migration_probe")


@pytest.mark.full
def test_pg_stat_statements_answers(db):
    app_query(db, "SELECT 1")
    (calls,), = app_query(db, "SELECT count(*) FROM pg_stat_statements")
    assert calls >= 1
    (extension,), = app_query(db, "SELECT extname FROM pg_extension WHERE extname = 'pg_stat_statements'")
    assert extension == "pg_stat_statements"


@pytest.mark.full
def test_network_admits_only_the_app_role_to_its_databases(db):
    """pg_hba.conf's samenet line, from an address on the server's subnet (the Docker network)."""
    assert db.address != "127.0.0.1"
    app_query(db, "SELECT 1")
    db.query("SELECT 1", user=db.app["user"], password=db.app["password"], dbname="postgres")
    with pytest.raises(psycopg.OperationalError, match="rejects connection"):
        db.connect(db.admin["user"], db.admin["password"], db.app["dbname"])
    with pytest.raises(psycopg.OperationalError, match="rejects connection"):
        db.connect(db.app["user"], db.app["password"], "template1")


@pytest.mark.full
def test_monitoring_role_reads_statistics_over_the_network_and_nothing_else(db):
    """The exporter's role: pg_monitor, through pg_hba.conf's samenet line, to the app database only."""
    monitor = {"user": db.env["MONITOR_DB_USER"], "password": db.env["MONITOR_DB_PASSWORD"], "dbname": db.app["dbname"]}
    (user, via_tcp), = db.query("SELECT current_user, inet_client_addr() IS NOT NULL", **monitor)
    assert (user, via_tcp) == (monitor["user"], True) and db.address != "127.0.0.1"
    (attributes, member_of), = admin_query(
        db, "SELECT ARRAY[rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls],"
            " ARRAY(SELECT roleid::regrole::text FROM pg_auth_members WHERE member = r.oid)"
            " FROM pg_roles r WHERE rolname = %s", [monitor["user"]])
    assert attributes == [False] * 5 and member_of == ["pg_monitor"]
    # what the exporter reads: every role's statements, texts included, and database statistics
    app_query(db, "DROP TABLE IF EXISTS monitor_probe; CREATE TABLE monitor_probe (secret text);"
                  " INSERT INTO monitor_probe VALUES ('payroll')")
    (statements,), = db.query("SELECT count(*) FROM pg_stat_statements WHERE userid = %s::regrole"
                              " AND query LIKE '%%monitor_probe%%'", params=[db.app["user"]], **monitor)
    assert statements >= 1, "pg_read_all_stats: the app's query texts are visible"
    (commits,), = db.query("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                           params=[db.app["dbname"]], **monitor)
    assert commits > 0
    # ...and nothing else: no data, nothing created, no other database
    for sql in ("SELECT * FROM monitor_probe", "CREATE TABLE public.monitor_own (id int)",
                "CREATE TEMP TABLE monitor_temp (id int)", "CREATE SCHEMA monitor_own", "CREATE ROLE monitor_intruder",
                "CREATE DATABASE monitor_own", "INSERT INTO monitor_probe VALUES ('x')"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.query(sql, **monitor)
    for dbname in ("postgres", "template1", f"test_{db.app['dbname']}"):
        with pytest.raises(psycopg.OperationalError, match="rejects connection"):
            db.connect(monitor["user"], monitor["password"], dbname)
    app_query(db, "DROP TABLE monitor_probe")


@pytest.mark.full
def test_documents_docker_exec_psql_works_over_the_socket(db):
    """`docker exec <slug>_db_dev psql -U <db_user> -d <db_name> -c "\\dt"`: no password prompt."""
    db.query("CREATE TABLE IF NOT EXISTS doc_probe (id int)", **db.app)
    output = db.psql_socket("\\dt", user=db.app["user"], dbname=db.app["dbname"])
    assert "doc_probe" in output
    db.query("DROP TABLE doc_probe", **db.app)


@pytest.mark.full
def test_make_db_stats_shows_the_apps_top_queries(db):
    """`make db-stats` runs psql in the DB container as the app role: its
    query reads pg_stat_statements and ranks the app's own queries."""
    (*docker_exec, psql, user_flag, user, db_flag, dbname, c_flag, sql), = make.commands(db.project, "db-stats")
    assert (psql, user_flag, db_flag, c_flag) == ("psql", "-U", "-d", "-c")
    assert (user, dbname) == (db.app["user"], db.app["dbname"])
    # Only this test's queries are ranked: other tests share the server.
    admin_query(db, "SELECT pg_stat_statements_reset()", dbname=db.app["dbname"])
    for _ in range(3):
        db.query("SELECT count(*) AS db_stats_probe FROM pg_class", **db.app)
    output = db.psql_socket(sql, user=user, dbname=dbname)
    header, *rows = [line for line in output.splitlines() if "|" in line]
    assert [column.strip() for column in header.split("|")] == ["calls", "total_ms", "mean_ms", "rows", "query"]
    assert any("db_stats_probe" in row for row in rows), output


@pytest.mark.full
def test_awkward_passwords_authenticate_end_to_end(tmp_path):
    """Any printable password: rendered by the CLI, parsed like compose, set by
    initdb and init/, then used to log in over TCP with scram."""
    project = tmp_path / "project"
    result = copier_cli("copy", "--defaults", "--vcs-ref", "HEAD", *data_args(AWKWARD_PASSWORDS),
                        str(REPO), str(project))
    assert result.returncode == 0, result.stderr
    server = start_project_db(project)
    try:
        assert server.app["password"] == AWKWARD_PASSWORDS["db_password"]
        assert server.admin["password"] == AWKWARD_PASSWORDS["db_admin_password"]
        assert server.query("SELECT current_user", **server.app) == [("giga_user",)]
        assert server.query("SELECT current_user", host="127.0.0.1", **server.admin) == [("postgres",)]
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            server.connect(server.app["user"], server.app["password"][:-1], server.app["dbname"])
        # the exporter's password as compose interpolates it from db/.env into DATA_SOURCE_PASS
        _, exporter = compose.profile_services(project)["monitoring"]
        env = resolved_environment(project, exporter)
        assert env["DATA_SOURCE_PASS"] == AWKWARD_PASSWORDS["db_monitor_password"]
        assert server.query("SELECT current_user", user=env["DATA_SOURCE_USER"], password=env["DATA_SOURCE_PASS"],
                            dbname=server.app["dbname"]) == [("giga_monitor",)]
    finally:
        server.destroy()


# ---------------------------------------------------------------------------
# Development needs CREATEDB and the test/maintenance databases; production can drop them
# ---------------------------------------------------------------------------
@pytest.mark.full
def test_app_role_creates_and_drops_the_test_database_like_manage_py_test(db):
    """What `manage.py test` does: from the network, connect to the maintenance
    database `postgres`, create test_<db>, use it, drop it. No superuser needed."""
    test_db = f"test_{db.app['dbname']}"
    db.query(f'CREATE DATABASE "{test_db}"', user=db.app["user"], password=db.app["password"], dbname="postgres")
    try:
        assert db.query("SELECT current_database(), current_setting('is_superuser')",
                        user=db.app["user"], password=db.app["password"], dbname=test_db) == [(test_db, "off")]
    finally:
        db.query(f'DROP DATABASE "{test_db}"', user=db.app["user"], password=db.app["password"], dbname="postgres")


def production_steps(project) -> tuple[str, str]:
    """The SQL and the pg_hba.conf line db/README.md gives for production."""
    readme = (project / "db/README.md").read_text()
    section = readme.split("## Development and production", 1)[1]
    sql = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
    hba = re.search(r"```\n(host .*?)\n```", section, re.S).group(1)
    return sql, hba


@pytest.mark.full
def test_documented_production_steps_drop_createdb_and_the_extra_databases(render, fresh_db_server):
    project = render(example_answers("acme-pg18"))
    server = fresh_db_server(project)
    sql, hba_line = production_steps(project)
    app = server.app
    server.psql_socket(sql, user=server.admin["user"], dbname=server.admin["dbname"])
    hba = server.hba_file.read_text()
    development_line = next(line for line in hba.splitlines() if "samenet" in line and not line.startswith("#"))
    server.hba_file.write_text(hba.replace(development_line, hba_line))
    server.psql_socket("SELECT pg_reload_conf()", user=server.admin["user"], dbname=server.admin["dbname"])
    assert server.query("SELECT error FROM pg_hba_file_rules WHERE error IS NOT NULL", host="127.0.0.1",
                        **server.admin) == []
    # the application still logs in and migrates ...
    server.query("CREATE TABLE after_hardening (id int); DROP TABLE after_hardening", **app)
    (createdb, superuser), = server.query("SELECT rolcreatedb, rolsuper FROM pg_roles WHERE rolname = current_user",
                                          **app)
    assert (createdb, superuser) == (False, False)
    # ... but creates no database, and reaches no database but its own from the network
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        server.query("CREATE DATABASE intruder", **app)
    for other in ("postgres", f"test_{app['dbname']}"):
        with pytest.raises(psycopg.OperationalError, match="rejects connection"):
            server.connect(app["user"], app["password"], other)


# ---------------------------------------------------------------------------
# No secret on a command line during the first start
# ---------------------------------------------------------------------------
@pytest.mark.full
@pytest.mark.parametrize("answers", [{}, AWKWARD_PASSWORDS], ids=["random", "awkward"])
def test_no_secret_reaches_a_command_line(render, answers):
    """Every program the first start (initdb, init/) and the healthcheck run,
    recorded by strace with its full argv: no password is among them, yet the
    passwords were set, and the app role logs in with its own over TCP."""
    server = PostgresServer(render(answers) / "db")
    try:
        server.trace_exec()
        server.initialize()
        server.start()
        server.healthcheck()
        command_lines = server.command_lines()
        secrets = [server.env["POSTGRES_PASSWORD"], server.env["APP_DB_PASSWORD"], server.env["MONITOR_DB_PASSWORD"]]
        programs = {line[1].rsplit("/", 1)[-1] for line in command_lines}
        assert {"initdb", "10-app-role.sh", "30-monitor-role.sh", "psql", "sh"} <= programs, \
            "the trace missed the first start"
        leaks = [line for line in command_lines for arg in line for secret in secrets if secret in arg]
        assert leaks == []
        # the observation would see a leak: the same trace, a password on a command line
        server._run(["true", f"--password={secrets[1]}"], traced=True)
        assert any(secrets[1] in arg for line in server.command_lines() for arg in line)
        assert server.query("SELECT current_user", **server.app) == [(server.app["user"],)]
        monitor = {"user": server.env["MONITOR_DB_USER"], "password": server.env["MONITOR_DB_PASSWORD"]}
        assert server.query("SELECT current_user", **monitor, dbname=server.app["dbname"]) == [(monitor["user"],)]
    finally:
        server.destroy()


# ---------------------------------------------------------------------------
# The compose healthcheck: healthy only when the application can log in
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def healthcheck_project(render):
    """A project whose db_port is free here, so the rendered healthcheck runs verbatim."""
    return render({"db_port": free_port(), "project_name": "Health"})


@pytest.fixture
def healthcheck_server(healthcheck_project):
    port = recorded(healthcheck_project)["db_port"]
    server = PostgresServer(healthcheck_project / "db", port=port)
    yield server
    server.destroy()


@pytest.mark.full
def test_healthcheck_passes_once_initialised_and_is_a_real_login(healthcheck_server):
    server = healthcheck_server
    server.initialize()
    assert server.healthcheck().returncode != 0, "healthy with no server running"
    server.start()
    result = server.healthcheck()
    assert result.returncode == 0, result.stderr
    # a ready server is not enough: the application's credentials must work
    for wrong in ({"APP_DB_PASSWORD": server.env["APP_DB_PASSWORD"] + "x"},
                  {"APP_DB_USER": server.env["POSTGRES_USER"]},
                  {"POSTGRES_DB": "no_such_database"}):
        result = server.healthcheck(**wrong)
        assert result.returncode != 0, wrong


def _replace(old: str, new: str):
    def breaks(initdb_d):
        script = initdb_d / "10-app-role.sh"
        text = script.read_text()
        assert old in text
        script.write_text(text.replace(old, new, 1))
    return breaks


def _write(name: str, text: str):
    def breaks(initdb_d):
        (initdb_d / name).write_text(text)
        (initdb_d / name).chmod(0o755)  # as the Dockerfile's COPY --chmod=0755
    return breaks


BROKEN_INIT = {
    # the role script stops halfway through its SQL
    "role-sql-fails-halfway": _replace("REVOKE ALL ON SCHEMA", "SELECT no_such_function();\nREVOKE ALL ON SCHEMA"),
    # the role is never created
    "role-never-created": _replace("CREATE ROLE", "-- CREATE ROLE"),
    # the SQL committed, then the shell part fails
    "role-script-fails-after-its-sql": _replace("\nSQL\n", "\nSQL\nfalse\n"),
    # a later script of the image's own
    "extension-script-fails": _write("20-pg-stat-statements.sql", "CREATE EXTENSION no_such_extension;\n"),
    # a script the team adds
    "team-script-fails": _write("50-seed.sql", "INSERT INTO no_such_table VALUES (1);\n"),
}


@pytest.mark.full
@pytest.mark.parametrize("breaks", BROKEN_INIT.values(), ids=BROKEN_INIT.keys())
def test_healthcheck_fails_on_a_half_initialised_database(healthcheck_server, breaks):
    """The image's behaviour: an init script fails, the data directory stays,
    the next start skips initialisation and serves what is there. The
    healthcheck must keep saying unhealthy."""
    server = healthcheck_server
    breaks(server.initdb_d)
    with pytest.raises(RuntimeError, match="exited"):
        server.initialize()
    assert (server.data / "PG_VERSION").exists(), "the entrypoint leaves the data directory behind"
    server.start()
    assert server.query("SELECT 1", host="127.0.0.1", **server.admin) == [(1,)], "the server itself is up"
    result = server.healthcheck()
    assert result.returncode != 0, "a half-initialised database reported healthy"


# ---------------------------------------------------------------------------
# verify_architecture reads the network layout from the compose files
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# Backup and restore: the rendered db/bin/ scripts against a real server
# ---------------------------------------------------------------------------
def client_major() -> int:
    """pg_dump and pg_restore on this machine: the server must be of their major."""
    out = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"\) (\d+)", out).group(1))


@pytest.fixture(scope="module")
def backup_db(render):
    """A project of the client tools' major, its server started; the scripts run from db/bin/."""
    major = client_major()
    assert major in POSTGRES_VERSIONS, f"pg_dump {major} matches no offered postgres_version"
    server = start_project_db(render({"postgres_version": major}))
    yield server
    server.destroy()


def db_script(server: PostgresServer, name: str, *args: str, container: bool = False,
              **env: str) -> subprocess.CompletedProcess:
    """Runs db/bin/<name>. On a host: with the PG* variables pointing at the server.
    `container`: with the container's environment (db/.env), over the Unix socket."""
    if container:
        connection = {**server.env, "PGHOST": str(server.sockets), "PGPORT": str(server.port)}
    else:
        connection = {"PGHOST": server.address, "PGPORT": str(server.port), "PGUSER": server.app["user"],
                      "PGPASSWORD": server.app["password"], "PGDATABASE": server.app["dbname"]}
    return subprocess.run([str(server.db_dir / "bin" / name), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120,
                          env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **connection, **env})


APP_DATA = """
DROP TABLE IF EXISTS orders, users;
CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL, joined timestamptz NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, user_id int NOT NULL REFERENCES users, total numeric(10, 2),
                     note text);
CREATE INDEX orders_user ON orders (user_id);
INSERT INTO users (email, joined)
  SELECT format('user%s@example.com', g), timestamptz '2026-01-01' + g * interval '1 hour'
  FROM generate_series(1, 50) g;
INSERT INTO orders (user_id, total, note)
  SELECT 1 + g % 50, (g * 7919 % 100000) / 100.0, CASE WHEN g % 3 = 0 THEN NULL ELSE md5(g::text) || E'\\t''"ü' END
  FROM generate_series(1, 4000) g;
"""
DAMAGE = "DROP TABLE orders; DELETE FROM users WHERE id % 2 = 0; INSERT INTO users (email, joined) VALUES ('x@y', now())"


def app_state(server: PostgresServer) -> dict:
    """Row counts and an ordered checksum of every column of each table, the sequences, the extension."""
    state = {}
    for table in ("users", "orders"):
        exists = app_query(server, "SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0]
        state[table] = app_query(server, f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY id)) FROM {table} t")[0] \
            if exists else None
    state["sequences"] = app_query(server, "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1")
    state["extensions"] = app_query(server, "SELECT extname, extowner::regrole::text FROM pg_extension ORDER BY 1")
    return state


@pytest.fixture
def backed_up(backup_db, tmp_path):
    """The app's data written and backed up; returns (server, the dump, the state it holds)."""
    app_query(backup_db, APP_DATA)
    result = db_script(backup_db, "backup", BACKUP_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    (dump,) = tmp_path.glob("*.dump")
    return backup_db, dump, app_state(backup_db)


@pytest.mark.full
@pytest.mark.parametrize("container", [False, True], ids=["host", "container"])
def test_restore_brings_back_dropped_tables_and_deleted_rows(backed_up, container):
    server, dump, original = backed_up
    assert original["users"][0] == 50 and original["orders"][0] == 4000
    assert ("pg_stat_statements", server.admin["user"]) in original["extensions"]
    app_query(server, DAMAGE)
    assert app_state(server) != original
    # as documented: in the container, the name list-backups prints; on a host, a path
    result = db_script(server, "restore", dump.name if container else str(dump), "--yes", container=container,
                       BACKUP_DIR=str(dump.parent))
    # the dump holds pg_stat_statements, which the app role does not own: skipped, not an error
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower(), result.stderr
    assert app_state(server) == original
    # the restored objects belong to the app role, which keeps migrating them
    owners = app_query(server, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert owners == [(server.app["user"],)]
    app_query(server, "ALTER TABLE orders ADD COLUMN paid boolean; INSERT INTO users (email, joined) VALUES ('n@ew', now())")


def _truncate(keep: float):
    def damage(dump: Path) -> Path:
        data = dump.read_bytes()
        broken = dump.with_name("broken.dump")
        broken.write_bytes(data[:int(len(data) * keep)] if keep > 0 else data[:keep])
        return broken
    return damage


def _garbage(dump: Path) -> Path:
    broken = dump.with_name("notes.dump")
    broken.write_text("not a dump\n")
    return broken


BAD_RESTORES = {
    # (what replaces the good dump, extra arguments/environment, the message expected)
    "missing file": (lambda dump: dump.with_name("nope.dump"), {}, "no such dump"),
    "cut in its header": (_truncate(0.002), {}, "not a complete pg_dump"),
    "cut in its data": (_truncate(0.6), {}, "not a complete pg_dump"),
    "cut at the very end": (_truncate(-20), {}, "not a complete pg_dump"),
    "not a dump": (_garbage, {}, "not a complete pg_dump"),
    # in the container, PGDATABASE wins over db/.env's POSTGRES_DB
    "another database's dump": (lambda dump: dump, {"container": True, "PGDATABASE": "postgres"},
                                "is a dump of database 'giga', not of 'postgres'"),
    "wrong password": (lambda dump: dump, {"PGPASSWORD": "wrong"}, "cannot connect"),
}


@pytest.mark.full
@pytest.mark.parametrize("breaks, env, message", BAD_RESTORES.values(), ids=BAD_RESTORES.keys())
def test_a_bad_restore_fails_clearly_and_changes_nothing(backed_up, breaks, env, message):
    server, dump, _ = backed_up
    app_query(server, DAMAGE)
    current = app_state(server)
    result = db_script(server, "restore", str(breaks(dump)), "--yes", **env)
    assert result.returncode != 0
    assert message in result.stderr and "nothing was changed" in result.stderr, result.stderr
    assert app_state(server) == current


@pytest.mark.full
def test_restore_asks_first_and_needs_yes_without_a_terminal(backed_up):
    server, dump, _ = backed_up
    app_query(server, DAMAGE)
    current = app_state(server)
    result = db_script(server, "restore", str(dump))
    assert result.returncode == 1 and "confirm with --yes" in result.stderr, result.stderr
    assert app_state(server) == current


@pytest.mark.full
@pytest.mark.parametrize("container", [False, True], ids=["host", "container"])
def test_backup_keeps_the_newest_backup_keep_and_lists_them_newest_first(backup_db, tmp_path, container):
    db = backup_db.app["dbname"]
    older = [f"{db}-2026010{day}T030000Z.dump" for day in range(1, 6)]
    others = ["other-20260101T000000Z.dump", "notes.txt", f"{db}-manual.sql"]
    for name in older + others:
        (tmp_path / name).write_bytes(b"x" * 2048)
    result = db_script(backup_db, "backup", container=container, BACKUP_DIR=str(tmp_path), BACKUP_KEEP="3")
    assert result.returncode == 0, result.stderr
    new = re.search(rf"({db}-\d{{8}}T\d{{6}}Z\.dump)", result.stdout).group(1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([new, *older[-2:], *others])
    assert (tmp_path / new).stat().st_mode & 0o077 == 0, "a dump holds all the data: owner only"
    listed = db_script(backup_db, "list-backups", container=container, BACKUP_DIR=str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [name for name, _ in rows] == [new, older[-1], older[-2]]
    assert all(re.fullmatch(r"\d+(\.\d+)?[KMG]?", size) for _, size in rows), rows


@pytest.mark.full
def test_backup_retention_deletes_only_the_dumps_it_wrote(backup_db, tmp_path):
    """A dump made by hand before a migration, a copy, a name that only starts
    like backup's: retention neither counts nor deletes them, however old;
    only <db>-<UTC time>.dump, the names backup writes, are pruned."""
    db = backup_db.app["dbname"]
    generated = [f"{db}-2026010{day}T030000Z.dump" for day in range(1, 6)]
    by_hand = [f"{db}-before-migration.dump", f"{db}-20260101.dump", f"{db}-manual-20260101T000000Z.dump",
               f"{db}-old-20260101T030000Z.dump", f"{db}-20260101T030000Z-copy.dump", f"{db}-2026010xT030000Z.dump",
               f"{db}-20260101T030000Z.dump.bak", f"{db}-20260101T0300000Z.dump"]
    for name in generated + by_hand:
        (tmp_path / name).write_bytes(b"x" * 2048)
        os.utime(tmp_path / name, (946684800, 946684800))  # 2000-01-01: older than any new dump
    result = db_script(backup_db, "backup", BACKUP_DIR=str(tmp_path), BACKUP_KEEP="2")
    assert result.returncode == 0, result.stderr
    new = re.search(rf"({db}-\d{{8}}T\d{{6}}Z\.dump)", result.stdout).group(1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([new, generated[-1], *by_hand])
    deleted = re.findall(r"deleted \S*/(\S+) ", result.stdout)
    assert sorted(deleted) == sorted(generated[:-1]), result.stdout


@pytest.mark.full
@pytest.mark.parametrize("env, message", [({"PGPASSWORD": "wrong"}, "password authentication failed"),
                                          ({"BACKUP_KEEP": "0"}, "BACKUP_KEEP must be a positive whole number"),
                                          ({"BACKUP_KEEP": "three"}, "BACKUP_KEEP must be a positive whole number")],
                         ids=["dump fails", "keep none", "keep nonsense"])
def test_a_failed_backup_deletes_no_older_dump(backup_db, tmp_path, env, message):
    db = backup_db.app["dbname"]
    older = {f"{db}-2026010{day}T030000Z.dump" for day in range(1, 4)}
    for name in older:
        (tmp_path / name).write_bytes(b"x")
    result = db_script(backup_db, "backup", BACKUP_DIR=str(tmp_path), **{"BACKUP_KEEP": "1", **env})
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert {p.name for p in tmp_path.iterdir()} == older


# ---------------------------------------------------------------------------
# Major-version upgrade: db/bin/upgrade-from, as `make db-upgrade` runs it in
# the new container, from a real PostgreSQL 16 to a real 18
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def upgrade_projects(render) -> tuple[Path, Path]:
    """The project at 16, and again at 18 with the same secrets, as `copier
    update -d postgres_version=18` leaves it (db/.env is never rewritten)."""
    old = render({"postgres_version": 16})
    return old, render({"postgres_version": 18, **secrets_of(old)})


@pytest.fixture(scope="module")
def old_db(upgrade_projects):
    """The 16 server, holding the app's data, written by the app role."""
    server = start_project_db(upgrade_projects[0])
    app_query(server, APP_DATA)
    yield server
    server.destroy()


@pytest.fixture
def new_db(upgrade_projects):
    """A first start of the 18 server: init/ has run, the app's database is empty."""
    server = start_project_db(upgrade_projects[1])
    yield server
    server.destroy()


def upgrade_from(new: PostgresServer, old_host: str, old_port: int, *args: str,
                 backup_dir: Path) -> subprocess.CompletedProcess:
    """In the new container: its environment, the Unix socket, the new major's client programs first."""
    return db_script(new, "upgrade-from", old_host, str(old_port), *args, container=True,
                     PATH=f"{client_bindir(new.major)}:{os.environ['PATH']}", BACKUP_DIR=str(backup_dir))


@pytest.mark.full
def test_upgrade_from_16_to_18_brings_every_row_and_keeps_the_old_data(old_db, new_db, tmp_path):
    assert (old_db.major, new_db.major) == (16, 18)
    original = app_state(old_db)
    assert original["users"][0] == 50 and original["orders"][0] == 4000
    result = upgrade_from(new_db, old_db.address, old_db.port, backup_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 tables, the same row counts on both" in result.stdout
    assert app_state(new_db) == original  # row counts, checksums of every column, sequences, extension
    assert app_state(old_db) == original, "the old data is only read"
    # the dump is kept, owner-only, named for the upgrade, out of backup's retention and list-backups
    (dump,) = tmp_path.rglob("*.dump")
    assert dump.parent == tmp_path / "upgrades"
    listed = db_script(new_db, "list-backups", container=True, BACKUP_DIR=str(tmp_path))
    assert listed.returncode == 0 and dump.name not in listed.stdout, listed.stdout + listed.stderr
    assert re.fullmatch(rf"{new_db.app['dbname']}-pg16-to-pg18-\d{{8}}T\d{{6}}Z\.dump", dump.name)
    assert dump.stat().st_mode & 0o077 == 0
    # the objects belong to the app role, which keeps migrating them
    owners = app_query(new_db, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert owners == [(new_db.app["user"],)]
    app_query(new_db, "ALTER TABLE orders ADD COLUMN paid boolean; INSERT INTO users (email, joined) VALUES ('n@ew', now())")


def _other_password(old: PostgresServer):
    """The old server's app role has another password than db/.env's."""
    def set_password(password: str):
        admin_query(old, psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            psycopg.sql.Identifier(old.app["user"]), psycopg.sql.Literal(password)))
    set_password("another password")
    return lambda: set_password(old.app["password"])


@pytest.mark.full
@pytest.mark.parametrize("point, message, reason", [
    (lambda old, new: (old.address, free_port()), "cannot connect to database 'giga' as 'giga_user' on the old server",
     "Connection refused"),
    (lambda old, new: (old.address, old.port, _other_password(old)),
     "cannot connect to database 'giga' as 'giga_user' on the old server", "password authentication failed"),
    (lambda old, new: (new.address, new.port), "the old server runs PostgreSQL 18 and this one 18: not an upgrade", ""),
], ids=["old server unreachable", "wrong password on the old server", "same major"])
def test_a_bad_upgrade_fails_clearly_and_changes_nothing(old_db, new_db, tmp_path, point, message, reason):
    before, original = app_state(new_db), app_state(old_db)
    host, port, *undo = point(old_db, new_db)
    try:
        result = upgrade_from(new_db, host, port, backup_dir=tmp_path)
    finally:
        for step in undo:
            step()
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr and "nothing was changed" in result.stderr, result.stderr
    assert reason in result.stderr, result.stderr
    assert app_state(new_db) == before and app_state(old_db) == original
    assert not list(tmp_path.rglob("*.dump")), "no dump is left behind"


@pytest.mark.full
def test_upgrade_refuses_a_database_with_tables_unless_forced(old_db, new_db, tmp_path):
    """E.g. the backend migrated the new, empty database before the upgrade."""
    app_query(new_db, "CREATE TABLE users (id int PRIMARY KEY, email text); INSERT INTO users VALUES (1, 'new@one')")
    before = app_state(new_db)
    refused = upgrade_from(new_db, old_db.address, old_db.port, backup_dir=tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "already holds tables (1); nothing was changed" in refused.stderr, refused.stderr
    assert app_state(new_db) == before and not list(tmp_path.rglob("*.dump"))
    forced = upgrade_from(new_db, old_db.address, old_db.port, "--force", backup_dir=tmp_path)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert app_state(new_db) == app_state(old_db)


# ---------------------------------------------------------------------------
# The `backup` profile: bin/backup-every against the real server
# ---------------------------------------------------------------------------
def start_backup_every(server: PostgresServer, backup_dir: Path, log: Path, **env: str) -> subprocess.Popen:
    """bin/backup-every as the profile's service runs it: the app role over the network."""
    connection = {"PGHOST": server.address, "PGPORT": str(server.port), "PGUSER": server.app["user"],
                  "PGPASSWORD": server.app["password"], "PGDATABASE": server.app["dbname"]}
    return subprocess.Popen([str(server.db_dir / "bin" / SCHEDULED_BACKUP)], stdin=subprocess.DEVNULL,
                            stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **connection,
                                 "BACKUP_DIR": str(backup_dir), **env})


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return result


def stop_promptly(process: subprocess.Popen) -> float:
    """SIGTERM, as `docker stop` sends it; returns how long the loop took to exit."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
    return time.monotonic() - started


@pytest.mark.full
def test_backup_every_keeps_the_newest_backup_keep_valid_dumps_and_stops_on_sigterm(backup_db, tmp_path):
    app_query(backup_db, APP_DATA)
    backups, log = tmp_path / "backups", tmp_path / "log"
    process = start_backup_every(backup_db, backups, log, BACKUP_KEEP="2", BACKUP_INTERVAL="1")
    made: list[str] = []
    try:
        def four_dumps():
            made.extend(name for name in re.findall(r"^backup: \S+/(\S+\.dump) ", log.read_text(), re.M)
                        if name not in made)
            return len(made) >= 4
        wait_for(four_dumps, 60, "four scheduled dumps")
    finally:
        elapsed = stop_promptly(process)
    assert elapsed < 3, f"SIGTERM took {elapsed:.1f}s"
    assert "backup-every: stopping" in log.read_text()
    kept = sorted(p.name for p in backups.iterdir())
    assert kept == sorted(made)[-2:], (kept, made)
    for name in kept:
        listed = subprocess.run(["pg_restore", "--list", str(backups / name)], capture_output=True, text=True)
        assert listed.returncode == 0 and "TABLE DATA public orders" in listed.stdout, listed.stderr


@pytest.mark.full
def test_backup_every_logs_a_failed_dump_and_tries_again(backup_db, tmp_path):
    log = tmp_path / "log"
    process = start_backup_every(backup_db, tmp_path / "backups", log, PGPASSWORD="wrong", BACKUP_INTERVAL="1")
    try:
        wait_for(lambda: log.read_text().count("backup-every: backup failed (exit 1); next try in 1s") >= 2, 30,
                 "two failed attempts")
        assert process.poll() is None, "the loop outlives a failed dump"
    finally:
        stop_promptly(process)
    assert "password authentication failed" in log.read_text()
    assert not list((tmp_path / "backups").glob("*.dump"))


@pytest.mark.full
def test_backup_every_stops_a_running_dump_on_sigterm_and_leaves_no_partial_file(backup_db, tmp_path):
    """A dump blocked on a lock is in progress for as long as the test wants: SIGTERM ends it and backup's cleanup runs."""
    app_query(backup_db, APP_DATA)
    backups, log = tmp_path / "backups", tmp_path / "log"
    app = backup_db.app
    with psycopg.connect(host=backup_db.address, port=backup_db.port, user=app["user"], password=app["password"],
                         dbname=app["dbname"]) as lock:  # one transaction, until the block ends
        lock.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        process = start_backup_every(backup_db, backups, log, BACKUP_INTERVAL="3600")
        try:
            wait_for(lambda: app_query(backup_db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'"
                                                  " AND wait_event_type = 'Lock'")[0][0], 30, "pg_dump waiting on the lock")
        finally:
            elapsed = stop_promptly(process)
        assert elapsed < 3, f"SIGTERM took {elapsed:.1f}s"
        wait_for(lambda: not app_query(backup_db, "SELECT count(*) FROM pg_stat_activity"
                                                  " WHERE application_name = 'pg_dump'")[0][0], 10, "pg_dump to end")
    assert list(backups.iterdir()) == [], "no dump and no partial file"
