"""Quick tier: the files of a render agree with each other and with the
answers: networks (only the database and the backend share the database's),
every host name a service calls resolves to the intended service, published
ports, env variable names, and the compose files verify_architecture reads.
"""

from __future__ import annotations

import re


from harness.answers import alias, recorded as answers
from harness import compose
from harness.consistency import mismatches
from harness.postgres import conf_settings
from harness.rendered import db_compose, dev_compose


# ---------------------------------------------------------------------------
# Cross-file consistency
# ---------------------------------------------------------------------------
def test_dev_compose_joins_the_db_network_as_external(example):
    a = answers(example)
    dev = dev_compose(example)
    network = dev["networks"][a["network_name"]]
    assert network == {"external": True, "name": a["network_name"]}
    assert db_compose(example)["networks"][a["network_name"]]["name"] == network["name"]
    for name in ("backend", "frontend"):
        assert "depends_on" not in dev["services"][name], "depends_on cannot reach another compose project"
    assert a["db_service"] not in dev["services"], "the database must not be in the dev compose"


def test_only_the_database_and_the_backend_share_its_network(example):
    """The architecture's "Frontend ↔ BD: no direct connection", as Docker wires it.
    The backend's tier is its API and its task worker: one image, one code."""
    a = answers(example)
    services = compose.topology(example)
    on_db_network = {name for name, networks in services.items() if a["network_name"] in networks}
    assert on_db_network == {a["db_service"], "backend", "worker"}
    # its own project's optional services reach it on that project's network only
    db_networks = set(services[a["db_service"]])
    assert db_networks == {a["network_name"], f"{a['project_slug']}_db_default"}
    dev = set(compose.load(example / "docker-compose.dev.yml")["services"])
    assert {name for name in dev if set(services[name]) & db_networks} == {"backend", "worker"}
    assert compose.resolves(services, "frontend", a["db_service"]) == set()


def test_frontend_reaches_the_backend_over_the_app_network(example):
    a = answers(example)
    app_network = compose.load(example / "docker-compose.dev.yml")["networks"]["app"]
    assert app_network == {"name": f"{a['project_slug']}_app_network", "driver": "bridge"}, "owned by the dev project"
    services = compose.topology(example)
    assert set(services["frontend"]) == {app_network["name"]}
    assert set(services["backend"]) == {a["network_name"], app_network["name"]}
    assert services["backend"][app_network["name"]] >= {alias(a, "backend")}
    assert services["frontend"][app_network["name"]] >= {alias(a, "frontend")}


def test_every_host_name_a_service_uses_resolves_to_the_intended_service(example):
    """Each name one container calls another by (its environment, settings defaults)
    is an alias on a network the two share, and names exactly that service."""
    a = answers(example)
    services = compose.topology(example)
    environments = compose.environments(example)
    api_host = re.match(r"https?://([^:/]+)", environments["frontend"]["INTERNAL_API_URL"]).group(1)
    back_env = environments["backend"]
    expected = [
        ("frontend", api_host, "backend"),                       # the SvelteKit server's API calls
        ("backend", back_env["DB_HOST"], a["db_service"]),       # Django's database
        # the proxies whose X-Forwarded-For the backend believes: the frontend only
        *[("backend", host, "frontend") for host in back_env["DJANGO_TRUSTED_PROXIES"].split(",")],
    ]
    for client, host, target in expected:
        assert compose.resolves(services, client, host) == {target}, (client, host)


def test_external_network_names_agree_across_files(example):
    """Every external network of one project is a network another project creates."""
    created, external = set(), {}
    for relative in compose.COMPOSE_FILES:
        spec = compose.load(example / relative)
        for key, network in (spec.get("networks") or {}).items():
            name = compose.network_name(spec, key)
            if (network or {}).get("external"):
                external[name] = relative
            else:
                created.add(name)
    assert external and set(external) <= created, (external, created)


def test_verify_architecture_sees_the_compose_files_in_the_backend_container(example):
    """The dev compose mounts exactly the two compose files, read-only, where
    verify_architecture looks; never a directory that holds db/.env."""
    source = next(example.glob("back/*/management/commands/verify_architecture.py")).read_text()
    mount = re.search(r'^COMPOSE_MOUNT = Path\("(/[^"]+)"\)$', source, re.M).group(1)
    volumes = dev_compose(example)["services"]["backend"]["volumes"]
    mounted = {volume.split(":")[0]: volume.split(":")[1:] for volume in volumes}
    for relative in compose.COMPOSE_FILES:
        assert mounted[f"./{relative}"] == [f"{mount}/{relative}", "ro"], relative
    assert not [v for v in volumes if v.split(":")[0] in {".", "./db", "./"}], "db/.env must stay out of the backend"


def test_published_ports_agree_with_the_answers(example):
    a = answers(example)
    services = dev_compose(example)["services"]
    assert services["backend"]["ports"] == [f"127.0.0.1:{a['backend_port']}:{a['backend_port']}"]
    assert services["frontend"]["ports"] == [f"127.0.0.1:{a['frontend_port']}:{a['frontend_port']}"]
    conf = conf_settings(example / "db/postgresql.conf")
    assert conf["port"] == str(a["db_port"])
    healthcheck = compose.healthcheck_command(compose.db_service(example)[1])[-1]
    assert f"--host=127.0.0.1 --port={a['db_port']} " in healthcheck


def test_env_names_agree_across_files(example):
    a = answers(example)
    db_env = compose.environments(example)["db"]
    assert (db_env["POSTGRES_USER"], db_env["POSTGRES_DB"], db_env["APP_DB_USER"]) == (
        a["db_admin_user"], a["db_name"], a["db_user"])
    read = set()
    for script in (example / "db/init").iterdir():
        text = script.read_text()
        read |= set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", text)) | set(re.findall(r"^\\getenv \w+ (\w+)$", text, re.M))
    assert {"APP_DB_USER", "APP_DB_PASSWORD", "POSTGRES_DB"} <= read
    for variable in read:
        assert variable in db_env, f"an init script reads {variable}, which the db container does not get"

    assert mismatches(example) == []
