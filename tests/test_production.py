"""Production on one host: db/ with its production override, then
docker-compose.prod.yml (migrations once, granian, `node build`) behind Caddy.

Quick tier: the compose files as Docker Compose reads them (the override
merged over db/'s file, `!reset` included), checked against the compose-spec
schema and the promises: Caddy alone publishes ports, only the backend reaches
the database network, every service has a healthcheck, a memory limit, a
restart policy and rotated logs, and the values derived from the answers agree
across the compose files, the Caddyfile and the settings.

Full tier: the rendered Caddyfile run by Debian's caddy (`tls internal` for
localhost) in front of the backend on its production settings and the built
frontend, against a real PostgreSQL; Chromium goes through HTTPS.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness import caddy, compose, images, make, node
from harness.answers import alias, recorded
from harness.backend import Backend
from harness.dockerfile import dockerfile_stages
from harness.postgres import start_project_db
from harness.python import venv_for
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
    published = {name: service["ports"] for name, service in prod_services(project).items() if service.get("ports")}
    assert published == {"caddy": ["80:80", "443:443", "443:443/udp"]}


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
            "caddy"} <= set(services)
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
    assert {name for name, joined in networks.items() if app in joined} == {"backend", "frontend", "caddy"}
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
    # No bind mount anywhere but Caddy's read-only configuration.
    assert [volume for service in services.values() for volume in service.get("volumes", [])
            if volume.startswith((".", "/"))] == ["./Caddyfile:/etc/caddy/Caddyfile:ro"]


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


STAFF = {"username": "root-admin", "email": "root-admin@example.com", "password": "Root-admin-pass-1234"}


@pytest.fixture(scope="module")
def production(giga_project, front_built, tmp_path_factory):
    """db/ -> back/ (production settings, granian) and front/ (`node build`)
    -> Caddy, with each upstream on a loopback address of its own at the
    rendered port, named as on the app network."""
    # A copy: the image's build step writes back/staticfiles/.
    project = tmp_path_factory.mktemp("production") / "project"
    project.mkdir()
    subprocess.run(["cp", "-a", str(giga_project / "back"), str(project / "back")], check=True)
    (project / "front").mkdir()
    for name in (PROD, "Caddyfile", ".copier-answers.yml", "front/.env"):
        shutil.copy(giga_project / name, project / name)
    a = recorded(project)
    backend_ip, frontend_ip = "127.90.0.2", "127.90.0.3"
    db = start_project_db(giga_project)
    try:
        # Connections between loopback addresses come from 127.0.0.1: that is
        # where the frontend and Caddy call the backend from.
        backend = Backend(project, db, venv_for(project / "back"), compose_file=PROD,
                          hosts={alias(a, "frontend"): "127.0.0.1", alias(a, "caddy"): "127.0.0.1"})
        # The image's `RUN ... collectstatic`, with the stage's ENV and no secrets (a build has none).
        (collect,) = [run for run in backend.stage.runs if "collectstatic" in run]
        backend.run("sh", "-c", collect, env={**backend.stage.env, "DB_PASSWORD": "", "DJANGO_SECRET_KEY": ""},
                    check=True)
        migrate = compose.load(project / PROD)["services"]["migrate"]
        backend.run(*backend.stage.entrypoint, *migrate["command"], check=True)
        backend.manage("shell", "-c", "from personas.models import Usuario; Usuario.objects.create_superuser("
                       f"{STAFF['username']!r}, {STAFF['email']!r}, {STAFF['password']!r})", check=True)
        hosts = {alias(a, "backend"): backend_ip, alias(a, "frontend"): frontend_ip}
        with caddy.running(project / "Caddyfile", hosts) as proxy:
            origin = f"https://{a['domain']}:{proxy.https_port}"
            with backend.serve(port=a["backend_port"], host=backend_ip, env={"GRANIAN_HOST": backend_ip}):
                with node.serve_front(project, front_built, a["backend_port"], compose_file=PROD, host=frontend_ip,
                                      port=a["frontend_port"], backend_host=backend_ip, origin=origin):
                    yield {"project": project, "caddy": proxy, "url": origin, "db": db, "domain": a["domain"],
                           "frontend_ip": frontend_ip}
    finally:
        db.destroy()


@pytest.fixture
def context_options():
    """Caddy's local CA is not in Chromium's store."""
    return {"ignore_https_errors": True}


@pytest.mark.full
def test_the_frontends_healthcheck_passes_behind_the_address_header(production):
    """The compose healthcheck, run against the frontend as it runs here
    (only its address differs): adapter-node with ADDRESS_HEADER answers 500
    to a request without X-Forwarded-For, so the probe must send one."""
    command = compose.healthcheck_command(prod_services(production["project"])["frontend"])
    command = [arg.replace("http://127.0.0.1:", f"http://{production['frontend_ip']}:") for arg in command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.full
def test_plain_http_is_redirected_to_https(production):
    proxy = production["caddy"]
    for path in ("/", "/admin/login/?next=/admin/", "/api/health/"):
        status, headers, _ = proxy.http(production["domain"], "GET", path)
        assert status in (301, 308), (path, status)
        # to the same host and path over HTTPS (whose port, here, is not the container's 443)
        location = urlsplit(headers["location"])
        assert (location.scheme, location.hostname, location.path + (location.query and "?" + location.query)) == \
            ("https", production["domain"], path), headers["location"]


@pytest.mark.full
def test_every_path_goes_to_its_tier_with_one_hsts_header(production):
    proxy, domain = production["caddy"], production["domain"]
    answers = {path: proxy.https(domain, "GET", path, headers={"Accept-Encoding": "gzip"})
               for path in ("/", "/login", "/api/health/", "/admin/login/", "/static/admin/css/base.css")}
    assert {path: status for path, (status, _, _) in answers.items()} == dict.fromkeys(answers, 200), answers
    assert answers["/api/health/"][1]["content-type"].startswith("application/json")
    _, headers, body = answers["/admin/login/"]
    assert headers["content-encoding"] == "gzip" and b"csrfmiddlewaretoken" in gzip.decompress(body)
    assert "content-security-policy" in answers["/"][1], "SvelteKit's page"
    hsts = {path: headers.get("strict-transport-security") for path, (_, headers, _) in answers.items()}
    assert set(hsts.values()) == {"max-age=31536000"}, hsts


def attempts_from(db, address: str) -> int:
    """Login attempts counted against the client `address` (personas.ratelimit keys)."""
    key = hashlib.sha256("\0".join(("login", "client", address)).encode()).hexdigest()
    output = db.psql(f"SELECT count(*) AS n FROM personas_attempt WHERE key = '{key}';", **db.app)
    return int(re.search(r"^\s*(\d+)\s*$", output, re.M).group(1))


@pytest.mark.full
def test_the_backend_counts_logins_against_the_address_caddy_saw_not_a_forged_one(production):
    """A login through Caddy from 127.0.0.77 with a forged X-Forwarded-For:
    the backend counts it against 127.0.0.77, which takes both Caddy
    replacing the client's header and the backend trusting Caddy's."""
    proxy, db = production["caddy"], production["db"]
    before = attempts_from(db, "127.0.0.77"), attempts_from(db, "203.0.113.9")
    status, _, body = proxy.https(production["domain"], "POST", "/api/auth/login/", source="127.0.0.77",
                                  headers={"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.9"},
                                  body=json.dumps({"username": "nobody", "password": "wrong-password"}).encode())
    assert status == 400, body
    assert (attempts_from(db, "127.0.0.77"), attempts_from(db, "203.0.113.9")) == (before[0] + 1, before[1])


@pytest.mark.full
def test_sign_up_log_in_and_see_me_over_https_with_secure_cookies(production, page):
    from harness.browser import log_in, sign_up
    base = production["url"]
    username, password = f"prod{uuid.uuid4().hex[:8]}", "Production-1815-xyz"
    sign_up(page, base, username, password)
    page.wait_for_url(re.compile(r"/me$"))
    page.get_by_role("button", name="Log out").click()
    log_in(page, base, username, password)
    page.wait_for_url(re.compile(r"/me$"))
    assert page.get_by_test_id("me-username").inner_text() == username
    session = next(c for c in page.context.cookies() if c["name"] == "session")
    assert session["secure"] and session["httpOnly"], session


@pytest.mark.full
def test_the_admin_works_over_the_proxy_with_secure_cookies(production, browser):
    """Django's admin over HTTPS: the login form's POST passes the CSRF
    checks (Origin and Referer against the forwarded host and scheme)."""
    base = production["url"]
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{base}/admin/")
        page.wait_for_url(f"{base}/admin/login/?next=/admin/")
        page.get_by_label("Username").fill(STAFF["username"])
        page.get_by_label("Password").fill(STAFF["password"])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{base}/admin/")
        assert page.locator("#user-tools").inner_text().upper().count(STAFF["username"].upper()) == 1
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["sessionid"]["secure"] and cookies["sessionid"]["httpOnly"], cookies["sessionid"]
        assert cookies["csrftoken"]["secure"], cookies["csrftoken"]
    finally:
        context.close()
