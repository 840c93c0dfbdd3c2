"""Production on one host, on the real engine: docs/production.md's steps (`make prod-db-up`, `make prod-up`) on giga with domain=localhost,
so that Caddy serves HTTPS from its own CA, and Chromium uses it."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.request
from pathlib import Path

import pytest

from harness import browser, engine
from harness.answers import recorded
from harness.docker_stack import newest_dump, run_make, status
from harness.render import render_example

pytestmark = [pytest.mark.full, pytest.mark.docker]

STAFF = ("boss", "Boss-pass-12345-prod")


@pytest.fixture(scope="module")
def prod(docker_engine, tmp_path_factory) -> Path:
    project = render_example("giga", tmp_path_factory.mktemp("prod") / "giga")
    run_make(project, "prod-db-up")
    run_make(project, "prod-up", timeout=1500)
    yield project
    engine.compose_down(project, "docker-compose.prod.yml")
    engine.compose_down(project / "db", "docker-compose.yml", "docker-compose.prod.yml")


def containers(project_name: str) -> dict[str, dict]:
    """service -> `docker inspect` of each container of a compose project, stopped ones too."""
    ids = engine.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project_name}").stdout.split()
    found = {}
    for data in (engine.inspect(i) for i in ids):
        found[data["Config"]["Labels"]["com.docker.compose.service"]] = data
    return found


def test_every_long_running_service_turns_healthy(prod):
    for service, data in containers("giga_prod").items():
        if service != "migrate":
            engine.wait_healthy(data["Name"].lstrip("/"), timeout=240)
    for service, data in containers("giga_db").items():
        if service != "backup":  # healthy once its first dump exists (below)
            engine.wait_healthy(data["Name"].lstrip("/"))


def test_migrations_ran_once_before_the_backend_started(prod):
    services = containers("giga_prod")
    migrate = services["migrate"]["State"]
    assert migrate["Status"] == "exited" and migrate["ExitCode"] == 0
    assert services["migrate"]["RestartCount"] == 0
    assert migrate["FinishedAt"] < services["backend"]["State"]["StartedAt"]
    log = engine.logs(services["migrate"]["Name"].lstrip("/"), tail=500)
    assert "Applying personas.0001_initial... OK" in log, log


def test_only_caddy_publishes_ports(prod):
    publishing = {}
    for project_name in ("giga_prod", "giga_db"):
        for service, data in containers(project_name).items():
            ports = {port: b for port, b in (data["NetworkSettings"]["Ports"] or {}).items() if b}
            if ports:
                publishing[service] = sorted(ports)
    assert publishing == {"caddy": ["443/tcp", "443/udp", "80/tcp"]}


def test_read_only_root_filesystems_hold(prod):
    services = containers("giga_prod")
    for service in ("backend", "frontend"):
        name = services[service]["Name"].lstrip("/")
        assert services[service]["HostConfig"]["ReadonlyRootfs"] is True
        attempt = engine.docker("exec", name, "sh", "-c", "touch /app/written", check=False)
        assert attempt.returncode != 0 and "Read-only file system" in attempt.stderr, attempt.stderr
        assert engine.docker("exec", name, "sh", "-c", "touch /tmp/scratch").returncode == 0, "tmpfs"


def caddy_root(project: Path, directory: Path) -> Path:
    """Caddy's local CA certificate, out of its data volume."""
    root = directory / "root.crt"
    caddy = containers("giga_prod")["caddy"]["Name"].lstrip("/")
    engine.docker("cp", f"{caddy}:/data/caddy/pki/authorities/local/root.crt", str(root))
    return root


def test_caddy_serves_https_with_its_own_ca_and_redirects_http(prod, tmp_path):
    context = ssl.create_default_context(cafile=str(caddy_root(prod, tmp_path)))
    engine.wait_for(lambda: status("https://localhost/api/health/", context=context) == 200, 60, "HTTPS health")
    with socket.create_connection(("127.0.0.1", 443), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        # verified against Caddy's root for the name localhost
        issuer = dict(field for rdn in tls.getpeercert()["issuer"] for field in rdn)
        assert issuer["commonName"].startswith("Caddy Local Authority"), issuer
    request = urllib.request.Request("http://127.0.0.1/login", headers={"Host": "localhost"})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(request, timeout=10)
        raise AssertionError("HTTP answered without a redirect")
    except urllib.error.HTTPError as answer:
        assert answer.code in (301, 308) and answer.headers["Location"] == "https://localhost/login"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_chromium_signs_up_and_logs_in_over_https(prod, tmp_path):
    a = recorded(prod)
    user, password = f"prod{int(time.time())}", "Prod-passphrase-1234"
    with browser.page(tmp_path, ignore_https_errors=True) as page:
        # giga verifies optionally: production's mail goes nowhere here
        browser.sign_up_and_log_in(page, "https://localhost", user, password, a["email_verification"])
        cookies = {c["name"]: c for c in page.context.cookies("https://localhost")}
        assert cookies and all(c["secure"] for c in cookies.values()), cookies


def test_the_backup_profile_writes_a_dump(prod):
    backup = containers("giga_db")["backup"]["Name"].lstrip("/")
    engine.wait_for(lambda: any((prod / "db/backups").glob("giga-*.dump")), 120, "the first scheduled dump",
                    diagnose=lambda: engine.logs(backup))
    engine.wait_healthy(backup, timeout=120)
    assert newest_dump(prod).startswith("giga-")
