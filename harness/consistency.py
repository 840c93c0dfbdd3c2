"""One rendered project agrees with its answers and with itself.

What each container would get (harness.compose.environments) and how the
compose files wire them (networks, aliases, ports, healthcheck), checked
against each other and against .copier-answers.yml. Used on fresh renders and
after `copier update` changed answers: a value left behind in one file shows
up as a mismatch.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from . import compose
from .answers import alias, recorded
from .postgres import conf_settings


def mismatches(project: Path) -> list[str]:
    """Every disagreement found, as `what: left != right`; [] when consistent."""
    a = recorded(project)
    env = compose.environments(project)
    db, back, front = env["db"], env["backend"], env["frontend"]
    db_name, db_service = compose.db_service(project)
    dev = compose.load(project / "docker-compose.dev.yml")["services"]
    conf = conf_settings(project / "db/postgresql.conf")
    healthcheck = compose.healthcheck_command(db_service)[-1]
    services = compose.topology(project)
    api = urlsplit(front["INTERNAL_API_URL"])
    found: list[str] = []

    def same(what: str, *values) -> None:
        if len({str(value) for value in values}) != 1:
            found.append(f"{what}: {' != '.join(map(repr, values))}")

    # the database: its names, port and memory
    same("superuser", db["POSTGRES_USER"], a["db_admin_user"])
    same("database", db["POSTGRES_DB"], back["DB_NAME"], a["db_name"])
    same("application role", db["APP_DB_USER"], back["DB_USER"], a["db_user"])
    same("application password", db["APP_DB_PASSWORD"], back["DB_PASSWORD"])
    same("monitoring role", db["MONITOR_DB_USER"], f"{a['project_slug']}_monitor")
    same("db service", db_name, back["DB_HOST"], a["db_service"])
    same("db port", conf["port"], back["DB_PORT"], a["db_port"],
         re.search(r"--port=(\d+) ", healthcheck).group(1))
    same("db host port", db_service.get("ports", ["127.0.0.1:0:"])[0].split(":")[1], a["db_host_port"])
    same("db memory", db_service["mem_limit"], f"{a['db_memory_mb']}m")
    same("time zone", conf["timezone"].strip("'"), conf["log_timezone"].strip("'"), back["TZ"], a["timezone"])
    # the backend
    same("settings", back["DJANGO_SETTINGS_MODULE"], f"{a['project_slug']}.settings")
    same("language", back["DJANGO_LANGUAGE_CODE"], a["language_code"])
    same("admin e-mail", back["DJANGO_ADMIN_EMAIL"], a["admin_email"])
    same("backend port", dev["backend"]["command"][-1].rpartition(":")[2], api.port, a["backend_port"],
         dev["backend"]["ports"][0].split(":")[-1])
    same("backend alias allowed", alias(a, "backend") in back["DJANGO_ALLOWED_HOSTS"].split(","), True)
    same("frontend origin trusted for CSRF",
         f"http://localhost:{a['frontend_port']}" in back["DJANGO_CSRF_TRUSTED_ORIGINS"].split(","), True)
    # the frontend
    same("frontend port", front["PORT"], urlsplit(front["ORIGIN"]).port, a["frontend_port"],
         dev["frontend"]["ports"][0].split(":")[-1])
    same("project name", front["PUBLIC_PROJECT_NAME"], a["project_name"])
    # who reaches whom, by which name, on which network
    same("the frontend's API host", compose.resolves(services, "frontend", api.hostname), {"backend"})
    same("the backend's database host", compose.resolves(services, "backend", back["DB_HOST"]), {db_name})
    same("trusted proxies", {host for proxy in back["DJANGO_TRUSTED_PROXIES"].split(",")
                             for host in compose.resolves(services, "backend", proxy)}, {"frontend"})
    same("shared network", set(services[db_name]) & set(services["backend"]), {a["network_name"]})
    # production on one host: the public name, the same database
    prod = compose.service_environment(project, "docker-compose.prod.yml", "backend")
    prod_front = compose.service_environment(project, "docker-compose.prod.yml", "frontend")
    caddyfile = (project / "Caddyfile").read_text()
    site = re.search(r"^(\S+) \{$", caddyfile, re.M).group(1)
    same("acme account", re.findall(r"^\s*email (\S+)$", caddyfile, re.M), [a["acme_email"]] if a["acme_email"] else [])
    same("production settings", prod["DJANGO_SETTINGS_MODULE"], f"{a['project_slug']}.production")
    same("production host", prod["DJANGO_ALLOWED_HOSTS"].split(",")[0], urlsplit(prod_front["ORIGIN"]).hostname,
         site, a["domain"])
    same("production origin", prod["DJANGO_CSRF_TRUSTED_ORIGINS"], prod_front["ORIGIN"], f"https://{a['domain']}")
    for name in ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DJANGO_ADMIN_EMAIL", "TZ"):
        same(f"production {name}", prod[name], back[name])
    # production on a cluster
    k8s = project / "deploy/k8s"
    same("kubernetes manifests", k8s.is_dir(), a["kubernetes"])
    if a["kubernetes"]:
        hosts = set(re.findall(r"^\s*(?:- )?host: (\S+)$", (k8s / "base/ingress.yaml").read_text(), re.M))
        same("domain", hosts, {a["domain"]})
        production = (k8s / "overlays/production/kustomization.yaml").read_text()
        same("production instances", re.search(r"value: (\d+)", production).group(1), a["k8s_instances_production"])
    return found
