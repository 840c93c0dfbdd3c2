"""Production on one host, as files: db/ with its production override, then
docker-compose.prod.yml (migrations once, granian, `node build`) behind Caddy,
and Prometheus in the `monitoring` profile.

Quick tier: the compose files as Docker Compose reads them (the override
merged over db/'s file, `!reset` included), checked against the compose-spec
schema and the promises: Caddy alone publishes ports, only the backend reaches
the database network, every service has a healthcheck, a memory limit, a
restart policy and rotated logs, and the values derived from the answers agree
across the compose files, the Caddyfile and the settings. Full tier: Debian's
caddy validates and adapts the rendered Caddyfile (test_production.py runs it).
"""


from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from harness import caddy, compose, images, make
from harness.answers import alias, recorded
from harness.dockerfile import dockerfile_stages
from harness.render import validator

PROD = "docker-compose.prod.yml"
DB_OVERRIDE = "db/docker-compose.prod.yml"
@pytest.fixture(scope="module")
def project(example) -> Path:
    """Each example: giga (localhost, Caddy's own CA) and acme-pg18 (a real
    domain with an ACME account, other names and ports, no DB port)."""
    return example


def prod_services(project: Path) -> dict[str, dict]:
    return compose.load(project / PROD)["services"]


def db_prod(project: Path) -> dict:
    """db/'s compose model in production: the override merged over the file."""
    return compose.merged(compose.load(project / "db/docker-compose.yml"), compose.load_override(project / DB_OVERRIDE))


def caddyfile(project: Path) -> dict:
    """The rendered Caddyfile's site address, upstreams and account e-mail."""
    text = (project / "Caddyfile").read_text()
    return {"sites": re.findall(r"^(\S+) \{$", text, re.M),
            "upstreams": re.findall(r"^\s*reverse_proxy (\S+)$", text, re.M),
            "email": re.findall(r"^\s*email (\S+)$", text, re.M)}


# ---------------------------------------------------------------------------
# Quick tier: the files
# ---------------------------------------------------------------------------
def test_production_compose_files_match_the_compose_spec(project, tmp_path):
    """The stack's file as it is; db/'s as Compose runs it (merged), and the
    override alone, its tags read as Compose does."""
    merged, override = tmp_path / "db-merged.json", tmp_path / "db-override.json"
    merged.write_text(json.dumps(db_prod(project)))
    override.write_text(json.dumps(compose.without_tags(compose.load_override(project / DB_OVERRIDE))))
    result = subprocess.run(["check-jsonschema", "--builtin-schema", "vendor.compose-spec",
                             str(project / PROD), str(merged), str(override)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_caddy_is_the_only_service_with_published_ports(project):
    """Besides the `monitoring` profile's Prometheus, on loopback only."""
    published = {name: service["ports"] for name, service in prod_services(project).items() if service.get("ports")}
    assert published == {"caddy": ["80:80", "443:443", "443:443/udp"], "prometheus": ["127.0.0.1:9090:9090"]}
    assert prod_services(project)["prometheus"]["profiles"] == ["monitoring"]


def test_prometheus_config_passes_promtool_and_reaches_every_target_on_its_networks(project):
    """promtool (Prometheus 2.42, Debian's: scripts/bootstrap) checks the
    file; every target is a service on a network Prometheus joins, at the
    port where it serves its metrics, and never on the database's network."""
    result = subprocess.run(["promtool", "check", "config", str(project / "prometheus.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {job["job_name"]: job["static_configs"][0]["targets"]
            for job in yaml.safe_load((project / "prometheus.yml").read_text())["scrape_configs"]}
    services, networks = prod_services(project), compose.load(project / PROD)["networks"]
    db = compose.load(project / "db/docker-compose.yml")
    a = recorded(project)
    assert set(services["prometheus"]["networks"]) == {"app", "monitoring"}
    assert networks["monitoring"] == {"external": True, "name": db["networks"]["monitoring"]["name"]}
    assert "monitoring" in db["services"]["exporter"]["networks"]
    assert "networks" not in db["services"][compose.db_service(project)[0]] or \
        "monitoring" not in db["services"][compose.db_service(project)[0]]["networks"]
    assert jobs == {
        "backend": [f"{alias(a, 'backend')}:{a['backend_port']}"],
        "frontend": [f"{alias(a, 'frontend')}:{services['frontend']['environment']['METRICS_PORT']}"],
        "postgres": ["exporter:9187"],
    }
    assert alias(a, "backend") in services["backend"]["networks"]["app"]["aliases"]
    assert alias(a, "frontend") in services["frontend"]["networks"]["app"]["aliases"]


def test_the_database_publishes_nothing_in_production_and_keeps_its_configuration(project):
    base = compose.load(project / "db/docker-compose.yml")["services"]
    services = db_prod(project)["services"]
    name, _ = compose.db_service(project)
    assert ("ports" in base[name]) == (recorded(project)["db_host_port"] != 0)
    assert "ports" not in services[name]
    # Everything else is the development file's: image, tuned conf, volume, restart...
    assert {key: value for key, value in services[name].items() if key != "logging"} == \
        {key: value for key, value in base[name].items() if key != "ports"}
    assert services["backup"]["profiles"] == ["backup"] and services["backup"]["command"] == ["backup-every"]


def every_production_service(project: Path) -> dict[str, dict]:
    return {**{f"db/{name}": service for name, service in db_prod(project)["services"].items()},
            **prod_services(project)}


def test_every_service_has_a_healthcheck_a_memory_limit_a_restart_policy_and_rotated_logs(project):
    services = every_production_service(project)
    assert {"db/exporter", "db/backup", "db/backup-physical", "migrate", "backend", "worker", "frontend",
            "caddy", "prometheus"} <= set(services)
    for name, service in services.items():
        assert re.fullmatch(r"[1-9]\d*[mg]", str(service.get("mem_limit"))), name
        assert service.get("logging", {}).get("driver") == "json-file", name
        assert re.fullmatch(r"\d+[km]", service["logging"]["options"]["max-size"]), name
        assert int(service["logging"]["options"]["max-file"]) >= 2, name
        if name == "migrate":  # a one-shot: it exits, and is never restarted or probed
            assert service["restart"] == "no" and service["healthcheck"] == {"disable": True}
        elif name == "db/exporter":  # no shell or HTTP client in its image (db/docker-compose.yml)
            assert service["restart"] == "unless-stopped" and "healthcheck" not in service
        else:
            assert service.get("restart") in ("unless-stopped", "always"), name
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_backup_healthcheck_tells_a_fresh_dump_from_a_stale_one(project, tmp_path):
    """The backup service's healthcheck, run as its container would: healthy
    with a dump younger than two intervals, unhealthy without one."""
    service = db_prod(project)["services"]["backup"]
    command = compose.healthcheck_command(service)
    env = {"PATH": "/usr/bin:/bin", "BACKUP_DIR": str(tmp_path), "BACKUP_INTERVAL": "3600",
           "PGDATABASE": service["environment"]["PGDATABASE"]}
    assert subprocess.run(command, env=env).returncode != 0, "no dump: unhealthy"
    dump = tmp_path / f"{env['PGDATABASE']}-20260101T000000Z.dump"
    dump.write_bytes(b"PGDMP")
    assert subprocess.run(command, env=env).returncode == 0, "a fresh dump: healthy"
    subprocess.run(["touch", "-d", "3 hours ago", str(dump)], check=True)
    assert subprocess.run(command, env=env).returncode != 0, "older than two intervals: unhealthy"
    # a dump made by hand (before a migration, say) is no scheduled backup
    for name in ("before-migration", "20260101", "old-20260101T000000Z"):
        (tmp_path / f"{env['PGDATABASE']}-{name}.dump").write_bytes(b"PGDMP")
    assert subprocess.run(command, env=env).returncode != 0, "only backup's own names count"


def test_only_the_backend_its_worker_and_its_migrations_reach_the_database_network(project):
    a = recorded(project)
    stack = compose.load(project / PROD)
    networks = {name: compose.service_networks(stack, service) for name, service in stack["services"].items()}
    assert {name for name, joined in networks.items() if a["network_name"] in joined} == {
        "backend", "worker", "migrate"}
    assert stack["networks"][a["network_name"]] == {"external": True, "name": a["network_name"]}
    # Caddy reaches the backend and the frontend on a network with no way out;
    # only Caddy is on the one its published ports use.
    app, edge = compose.network_name(stack, "app"), compose.network_name(stack, "edge")
    assert stack["networks"]["app"].get("internal") is True
    # Prometheus (profile monitoring) scrapes the backend and the frontend there.
    assert {name for name, joined in networks.items() if app in joined} == {"backend", "frontend", "caddy",
                                                                             "prometheus"}
    assert {name for name, joined in networks.items() if edge in joined} == {"caddy"}


def test_migrations_run_once_before_the_backend(project):
    services = prod_services(project)
    migrate, backend = services["migrate"], services["backend"]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert migrate["image"] == backend["image"] and migrate["pull_policy"] == "never" and "build" not in migrate
    for name in ("backend", "worker"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    worker = services["worker"]
    assert worker["command"] == ["python", "manage.py", "db_worker"]
    assert worker["image"] == backend["image"] and worker["pull_policy"] == "never" and "build" not in worker
    assert worker["read_only"] is True and worker["cap_drop"] == ["ALL"]
    for name in ("backend", "migrate", "worker"):
        assert compose.service_environment(project, PROD, name)["DJANGO_MIGRATE_ON_START"] == "0", name
    # No bind mount anywhere but Caddy's and Prometheus's read-only configuration.
    assert [volume for service in services.values() for volume in service.get("volumes", [])
            if volume.startswith((".", "/"))] == ["./Caddyfile:/etc/caddy/Caddyfile:ro",
                                                  "./prometheus.yml:/etc/prometheus/prometheus.yml:ro"]


def test_production_images_are_the_dockerfiles_last_stages_and_caddy_is_pinned(project):
    services = prod_services(project)
    for name, tier in (("backend", "back"), ("frontend", "front")):
        stages = dockerfile_stages(project / tier / "Dockerfile")
        assert services[name]["build"] == {"context": f"./{tier}", "target": "production"}, name
        assert stages["production"].cmd == stages[""].cmd, f"{name}: production is the last stage"
    assert dockerfile_stages(project / "front/Dockerfile")["production"].cmd == ["node", "build"]
    assert dockerfile_stages(project / "back/Dockerfile")["production"].cmd[0] == "granian"
    assert re.fullmatch(r"caddy:\d+\.\d+\.\d+-alpine", services["caddy"]["image"])
    assert services["caddy"]["image"] == images.IMAGES["caddy"]  # includes/images.jinja's


def settings_requirements(project: Path) -> set[str]:
    """Variables the production settings refuse to start without."""
    package = project / "back" / recorded(project)["project_slug"]
    text = (package / "settings.py").read_text() + (package / "production.py").read_text()
    return set(re.findall(r"\brequired(?:_list)?\(\"([A-Z_]+)\"", text))


def test_production_environment_follows_the_answers_across_files(project):
    a = recorded(project)
    back = compose.service_environment(project, PROD, "backend")
    front = compose.service_environment(project, PROD, "frontend")
    dev = compose.service_environment(project, "docker-compose.dev.yml", "backend")
    site = caddyfile(project)
    domain = a["domain"]

    assert {"DJANGO_SECRET_KEY", "DB_PASSWORD", "DJANGO_ALLOWED_HOSTS", "DJANGO_CSRF_TRUSTED_ORIGINS",
            "EMAIL_URL"} <= settings_requirements(project)
    assert all(back.get(name) for name in settings_requirements(project)), settings_requirements(project)
    assert back["DJANGO_SETTINGS_MODULE"] == f"{a['project_slug']}.production"
    assert compose.service_environment(project, PROD, "migrate") == back
    assert back["DJANGO_ALLOWED_HOSTS"].split(",") == [domain, alias(a, "backend")]
    assert back["DJANGO_CSRF_TRUSTED_ORIGINS"] == front["ORIGIN"] == f"https://{domain}"
    assert site["sites"] == [domain]
    assert site["email"] == ([a["acme_email"]] if a["acme_email"] else [])
    # the same database as in development, by the same names
    for name in ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD", "TZ", "DJANGO_ADMIN_EMAIL"):
        assert back[name] == dev[name], name

    # who reaches whom, by which name and port
    services = compose.topology(project, ("db/docker-compose.yml", PROD))
    api = urlsplit(front["INTERNAL_API_URL"])
    assert compose.resolves(services, "frontend", api.hostname) == {"backend"}
    assert compose.resolves(services, "backend", back["DB_HOST"]) == {compose.db_service(project)[0]}
    assert {host for proxy in back["DJANGO_TRUSTED_PROXIES"].split(",")
            for host in compose.resolves(services, "backend", proxy)} == {"frontend", "caddy"}
    granian_port = dockerfile_stages(project / "back/Dockerfile")["production"].env["GRANIAN_PORT"]
    (backend_host, backend_port), (frontend_host, frontend_port) = (u.rsplit(":", 1) for u in site["upstreams"])
    assert compose.resolves(services, "caddy", backend_host) == {"backend"}
    assert compose.resolves(services, "caddy", frontend_host) == {"frontend"}
    assert backend_port == granian_port == str(api.port) == str(a["backend_port"])
    assert frontend_port == front["PORT"] == str(a["frontend_port"])
    # SvelteKit takes the browser's address from the one proxy in front of it.
    assert (front["ADDRESS_HEADER"], front["XFF_DEPTH"]) == ("X-Forwarded-For", "1")


@pytest.mark.parametrize("admin_email, acme_email", [
    ("ops@example.com", "ops@example.com"),
    ("it.team+certs@mail.example.org", "it.team+certs@mail.example.org"),
    ("admin@giga.localhost", ""),  # the default admin_email: no CA writes there
    ('"o\\"brien"@example.com', ""),  # valid for Django's mail, not for an ACME account
])
def test_acme_email_defaults_to_admin_email_when_a_certificate_authority_would_take_it(
        jinja_template, admin_email, acme_email):
    default = validator(jinja_template, "acme_email", field="default")({"admin_email": admin_email})
    assert default == acme_email
    assert validator(jinja_template, "acme_email")({"acme_email": default}) == ""


def test_make_runs_the_production_commands_in_order(project):
    db_compose = ["docker", "compose", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml", "--profile", "backup",
                  "--profile", "backup-physical"]
    db = ["cd", "db", "&&", *db_compose]
    stack = ["docker", "compose", "-f", PROD]
    # `up` through scripts/compose-up, which explains a missing network or a taken port
    expected = {"prod-db-up": [["cd", "db", "&&", "../scripts/compose-up", *db_compose, "up", "-d", "--build"]],
                "prod-up": [["scripts/compose-up", "--after", "prod-db-up", *stack, "up", "-d", "--build"]],
                "prod-logs": [[*stack, "logs", "-f", "--tail", "20"]],
                "prod-down": [[*stack, "down"], [*db, "down"]]}
    for target, commands in expected.items():
        assert make.commands(project, target) == commands, target


def test_the_docs_give_the_production_steps_in_order(project):
    text = (project / "docs/production.md").read_text()
    section = text[text.index("## One host: compose behind Caddy"):]
    steps = ["db/.env", "back/.env", "EMAIL_URL", "make prod-db-up", "make prod-up", "createsuperuser",
             "make backups"]
    positions = [section.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), dict(zip(steps, positions))
    assert recorded(project)["domain"] in section


# ---------------------------------------------------------------------------
# Full tier: the rendered Caddyfile, run
# ---------------------------------------------------------------------------
@pytest.mark.full
def test_caddy_validates_and_routes_the_rendered_caddyfile(project):
    result = caddy.validate(project / "Caddyfile")
    assert result.returncode == 0, result.stderr
    a = recorded(project)
    config = caddy.adapt(project / "Caddyfile")
    server, = config["apps"]["http"]["servers"].values()
    assert server["listen"] == [":443"], "HTTPS on 443 in the container"
    assert json.dumps(server).count('"dial"') == 2
    text = json.dumps(server)
    for path in ("/api/*", "/admin/*", "/static/*"):
        assert f'"{path}"' in text, path
    assert f'"{alias(a, "backend")}:{a["backend_port"]}"' in text
    assert f'"{alias(a, "frontend")}:{a["frontend_port"]}"' in text
    issuers = json.dumps(config["apps"].get("tls", {}))
    if a["acme_email"]:
        assert a["acme_email"] in issuers
    else:
        assert "email" not in issuers
