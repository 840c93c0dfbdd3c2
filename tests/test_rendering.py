"""Quick tier: what `copier copy` writes, checked statically, across the tiers
(each tier's own files: test_db, test_back, test_front).

Docker-level artifacts are held here, with no engine, to the compose-spec
schema, hadolint and shellcheck, and to cross-file consistency; the docker
tier (test_docker_*.py) runs them on a real engine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.answers import alias, as_typed, recorded as answers, secrets as secrets_of
from harness import compose, dotenv, make
from harness.consistency import mismatches
from harness.dockerfile import base_images
from harness.postgres import conf_settings
from harness.render import (PLACEHOLDER_SECRETS, SECRET_QUESTIONS, REFRESH_COMMAND, RENDER_SPECIFIC, REPO, project_files,
                            render_reference, tree_differences)

JINJA_LEFTOVER = re.compile(r"\{\{|\}\}|\{%|%\}")
GITHUB_EXPRESSION = re.compile(r"\$\{\{ [^{}]* \}\}")  # GitHub Actions' own ${{ }} in .github/
# docker's --format takes a Go template, whose actions are written {{...}} too.
DOCKER_FORMAT = re.compile(r"docker (?:network )?inspect --format '\{\{[^'\n]*\}\}'")


def without_foreign_templates(path: Path, text: str) -> str:
    """The text minus what other template languages write with braces too:
    GitHub Actions' ${{ }} in .github/, docker's --format Go templates,
    Django's templates (an app's templates/*.html)."""
    if ".github" in path.parts:
        text = GITHUB_EXPRESSION.sub("", text)
    if "templates" in path.parts and path.suffix == ".html":
        return ""
    return DOCKER_FORMAT.sub("docker-format", text)


def read_yaml(path: Path):
    return compose.parse(path.read_text())


def db_compose(project: Path) -> dict:
    return read_yaml(project / "db/docker-compose.yml")


def dev_compose(project: Path) -> dict:
    return read_yaml(project / "docker-compose.dev.yml")


# ---------------------------------------------------------------------------
# Every render is clean
# ---------------------------------------------------------------------------
def rendered_text_files(project: Path):
    for path in project_files(project):
        if "node_modules" in path.parts or path.name == "package-lock.json":
            continue
        try:
            yield path, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


def assert_clean_render(project: Path) -> None:
    leftovers = [f"{p.relative_to(project)}: {m.group(0)!r}"
                 for p, text in rendered_text_files(project)
                 if p.suffix not in {".svelte", ".ts", ".js"}  # {{ }} is legitimate outside Jinja files there
                 for m in [JINJA_LEFTOVER.search(without_foreign_templates(p, text))] if m]
    assert not leftovers, f"Jinja left in the output: {leftovers}"
    assert not [p for p in project_files(project) if p.suffix == ".jinja"]
    for path in project_files(project):
        if path.suffix in {".yml", ".yaml"}:
            read_yaml(path)  # raises on invalid YAML


def test_defaults_render_cleanly(default_project):
    assert_clean_render(default_project)


def test_examples_render_cleanly(example):
    assert_clean_render(example)


def test_every_postgres_version_renders_cleanly(versioned_project):
    assert_clean_render(versioned_project)


def test_defaults_reproduce_the_architecture_document(default_project):
    # The document's names, with no answers given at all.
    a = answers(default_project)
    assert (a["project_slug"], a["db_service"], a["db_name"], a["db_user"], a["network_name"]) == (
        "giga", "giga-db", "giga", "giga_user", "giga_dev_network")
    name, service = compose.db_service(default_project)
    assert name == "giga-db" and service["container_name"] == "giga_db_dev"
    dev = dev_compose(default_project)["services"]
    assert dev["backend"]["container_name"] == "giga_backend_dev"
    assert dev["frontend"]["container_name"] == "giga_frontend_dev"


def test_giga_example_is_the_documents_names(giga_project):
    a = answers(giga_project)
    assert (a["db_service"], a["db_name"], a["db_user"], a["network_name"]) == (
        "giga-db", "giga", "giga_user", "giga_dev_network")
    typed = as_typed(giga_project)
    assert (typed["db_port"], typed["backend_port"], typed["frontend_port"]) == ("5432", "8000", "5173")


# ---------------------------------------------------------------------------
# examples/giga/: the committed render, so that review shows what a template
# change does to a real project
# ---------------------------------------------------------------------------
GIGA_REFERENCE = REPO / "examples/giga"


def test_examples_giga_is_the_current_render(tmp_path):
    differences = tree_differences(GIGA_REFERENCE, render_reference("giga", tmp_path / "giga"))
    assert not differences, ("examples/giga/ is not what the template renders from examples/giga.yml:\n"
                             + "\n".join(differences) + f"\nRefresh it with {REFRESH_COMMAND} and commit it.")


def test_reference_comparison_sees_every_kind_of_difference(tmp_path):
    render = tmp_path / "giga"
    shutil.copytree(GIGA_REFERENCE, render)
    executable = next(path for path in sorted(render.rglob("*")) if path.is_file() and os.access(path, os.X_OK))
    (render / "README.md").write_text((render / "README.md").read_text() + "one more line\n")
    (render / "docs/api-contract.md").unlink()
    (render / "db/init/50-new.sql").write_text("SELECT 1;\n")
    executable.chmod(0o644)
    report = "\n".join(tree_differences(GIGA_REFERENCE, render))
    assert "+one more line" in report and "committed/README.md" in report
    assert "not in the render: docs/api-contract.md" in report
    assert "only in the render: db/init/50-new.sql" in report
    assert f"executable bit differs: {executable.relative_to(render).as_posix()}" in report
    assert tree_differences(GIGA_REFERENCE, GIGA_REFERENCE) == []


def test_examples_giga_holds_placeholders_and_commits_its_env_files():
    db_secrets = secrets_of(GIGA_REFERENCE)
    assert db_secrets == {key: PLACEHOLDER_SECRETS[key] for key in db_secrets}
    assert dotenv.load(GIGA_REFERENCE / "back/.env")["DJANGO_SECRET_KEY"] == PLACEHOLDER_SECRETS["django_secret_key"]
    typed = as_typed(GIGA_REFERENCE)
    assert {key: typed[key] for key in RENDER_SPECIFIC} == RENDER_SPECIFIC
    # The render's .gitignore ignores its env files: they must be committed anyway (git add -f).
    ignored = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--", "."],
                             cwd=GIGA_REFERENCE, capture_output=True, text=True, check=True).stdout.split()
    assert ignored == [], f"git add -f these in examples/giga: {ignored}"


# ---------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------
def test_secrets_are_long_random_and_distinct(render, default_project):
    first = secrets_of(default_project)
    again = secrets_of(render({"project_name": "Giga"}))  # same answers, another render
    for name, value in first.items():
        assert re.fullmatch(r"[0-9a-f]{64}", value), f"{name} is not 32 random bytes in hex: {value!r}"
        assert value != again[name], f"{name} repeats across renders"
    assert len(set(first.values())) == len(first) == 4, "each role has its own password, the backups their passphrase"


def test_secrets_never_reach_the_answers_file(default_project):
    text = (default_project / ".copier-answers.yml").read_text()
    for question in SECRET_QUESTIONS:
        assert question not in text
    for value in secrets_of(default_project).values():
        assert value not in text


def test_secrets_live_only_in_git_ignored_env_files(default_project, tmp_path):
    secrets = set(secrets_of(default_project).values())
    holders = {p.relative_to(default_project).as_posix()
               for p, text in rendered_text_files(default_project) if any(s in text for s in secrets)}
    assert holders and all(Path(h).name == ".env" for h in holders), holders
    # git, in a fresh repository of the project, must ignore exactly those files
    work = tmp_path / "repo"
    subprocess.run(["cp", "-a", str(default_project), str(work)], check=True)
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "add", "-A"], check=True)
    tracked = subprocess.run(["git", "-C", str(work), "ls-files"], capture_output=True, text=True,
                             check=True).stdout.split()
    assert not holders & set(tracked), "an env file with secrets would be committed"
    assert "db/.env.example" in tracked


def test_env_examples_hold_placeholders_only(default_project):
    secrets = secrets_of(default_project)
    examples = sorted(default_project.rglob(".env.example"))
    assert [example.parent.name for example in examples] == ["back", "db", "front"]
    for example in examples:
        text = example.read_text()
        assert not any(s in text for s in secrets.values()), example
    for example in examples[:2]:
        real = dotenv.load(example.with_name(".env"))
        assert set(dotenv.load(example)) == set(real), f"{example} must list the same variables as .env"
    # front/.env holds the team's own values only; its example is for running
    # outside Docker, with what compose sets in Docker
    assert dotenv.load(default_project / "front/.env") == {}
    frontend = compose.load(default_project / "docker-compose.dev.yml")["services"]["frontend"]
    assert set(dotenv.load(examples[2])) == set(frontend["environment"])


def test_env_files_hold_no_value_derived_from_an_answer(default_project):
    """Whatever the answers decide lives in the compose files, which updates
    maintain; the env files, which updates skip, keep secrets and the team's
    own settings."""
    derived = {"POSTGRES_USER", "POSTGRES_DB", "APP_DB_USER", "MONITOR_DB_USER", "DB_HOST", "DB_PORT", "DB_NAME",
               "DB_USER", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOWED_HOSTS", "DJANGO_CSRF_TRUSTED_ORIGINS",
               "DJANGO_TRUSTED_PROXIES", "DJANGO_LANGUAGE_CODE", "TZ", "DJANGO_ADMIN_EMAIL", "INTERNAL_API_URL",
               "PORT", "ORIGIN", "PUBLIC_PROJECT_NAME"}
    environments = compose.environments(default_project)
    for env_file, role in (("db/.env", "db"), ("back/.env", "backend"), ("front/.env", "frontend")):
        assert set(dotenv.load(default_project / env_file)) & derived == set(), env_file
        assert derived & set(environments[role]), f"the {role} gets none of its answers' values"
    assert derived <= set().union(*environments.values())


def test_env_files_are_protected_from_updates():
    config = read_yaml(REPO / "copier.yml")
    for env_file in ("db/.env", "back/.env", "front/.env"):
        assert env_file in config["_skip_if_exists"]


# ---------------------------------------------------------------------------
# Linters on the Docker-level artifacts
# ---------------------------------------------------------------------------
def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True)


def test_compose_files_match_the_compose_spec(example, tmp_path):
    documents = compose.spec_documents(example, tmp_path)
    assert len(documents) == 4, documents
    result = run_tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", *map(str, documents))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfiles_need_no_frontend_image(example):
    """No `# syntax=` directive: BuildKit would fetch that frontend image from
    Docker Hub at every build; the one built into Engine >= 23 reads these."""
    for tier in ("db", "back", "front"):
        text = (example / tier / "Dockerfile").read_text()
        assert not re.search(r"^#\s*syntax\s*=", text, re.M | re.I), tier


def test_dockerfiles_pass_hadolint(example):
    dockerfiles = sorted(example.rglob("Dockerfile"))
    assert {example / tier / "Dockerfile" for tier in ("db", "back", "front")} <= set(dockerfiles)
    for dockerfile in dockerfiles:
        result = run_tool("hadolint", str(dockerfile))
        assert result.returncode == 0, f"{dockerfile}:\n{result.stdout}{result.stderr}"


def test_shell_scripts_pass_shellcheck(example):
    scripts = [p for p in project_files(example)
               if "node_modules" not in p.parts
               and (p.suffix == ".sh" or p.read_bytes()[:2] == b"#!" and b"sh" in p.read_bytes().split(b"\n")[0])]
    assert {example / "db/init/10-app-role.sh", example / "back/docker-entrypoint.sh", example / "scripts/db-upgrade",
            example / "scripts/verify", example / "scripts/compose-up", example / "scripts/env-files",
            *(example / "db/bin").iterdir()} <= set(scripts)
    result = run_tool("shellcheck", *map(str, scripts))
    assert result.returncode == 0, result.stdout + result.stderr


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


# ---------------------------------------------------------------------------
# Containers: privileges, capabilities, memory, exact images
# ---------------------------------------------------------------------------
def all_services(project: Path) -> dict[str, dict]:
    return {**db_compose(project)["services"], **dev_compose(project)["services"]}


def test_every_service_runs_with_no_new_privileges(example):
    services = all_services(example)
    assert len(services) == 8
    for name, service in services.items():
        assert "no-new-privileges:true" in service.get("security_opt", []), name


def test_backend_and_frontend_drop_every_capability_and_have_memory_limits(example):
    for name, service in dev_compose(example)["services"].items():
        assert service.get("cap_drop") == ["ALL"], name
        assert "cap_add" not in service and not service.get("privileged"), name
        assert re.fullmatch(r"[1-9]\d*[mg]", str(service.get("mem_limit"))), name


# An exact tag: every part of the version (PostgreSQL's are major.minor since
# 10) and the Debian release, so a rebuild changes neither.
FULL_VERSION_PARTS = {"postgres": 2}
EXACT_IMAGE_DOCKERFILES = ["db/Dockerfile", "front/Dockerfile"]


@pytest.mark.parametrize("dockerfile", EXACT_IMAGE_DOCKERFILES)
def test_base_images_are_exact(versioned_project, dockerfile):
    images = base_images(versioned_project / dockerfile)
    assert images
    for image in images:
        name, _, tag = image.partition(":")
        parts = FULL_VERSION_PARTS.get(name, 3)
        assert re.fullmatch(rf"\d+(\.\d+){{{parts - 1}}}(-[a-z]+)*-(bookworm|trixie)(-[a-z]+)*", tag), image


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


def test_generated_readmes_give_the_documents_steps_with_the_projects_names(example):
    a = answers(example)
    slug, user, name = a["project_slug"], a["db_user"], a["db_name"]
    readme = (example / "README.md").read_text()
    for step in ("cd db && docker compose up -d",
                 "cd .. && docker compose -f docker-compose.dev.yml up -d backend worker frontend mailpit",
                 f"docker exec {slug}_backend_dev python manage.py migrate",
                 f'docker exec {slug}_db_dev psql -U {user} -d {name} -c "\\dt"',
                 f"docker exec {slug}_backend_dev python manage.py verify_architecture",
                 "SELECT id, username, email FROM personas_usuario WHERE username='test';"):
        assert step in readme, step
    db_readme = (example / "db/README.md").read_text()
    assert f"{slug}_db_data" in db_readme and "docker compose down" in db_readme


@pytest.mark.full
def test_readme_front_door_renders_with_its_own_copier(tmp_path):
    """The README's first command, as a new user runs it: no Copier installed yet."""
    readme = (REPO / "README.md").read_text()
    first_command = re.search(r"```bash\n(scripts/new-project \S+ --defaults)", readme).group(1)
    assert first_command == "scripts/new-project ../giga --defaults"
    destination = tmp_path / "work" / "giga"
    (tmp_path / "work" / "here").mkdir(parents=True)
    # Spelled as the README spells it (relative, with `..`); the command renders
    # the newest release tag, --vcs-ref HEAD makes it render the code under test.
    result = subprocess.run([str(REPO / "scripts/new-project"), "../giga", "--defaults", "--vcs-ref", "HEAD"],
                            cwd=tmp_path / "work" / "here", capture_output=True, text=True,
                            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    # a first copy has no previous answers to read: expected, not worth a warning
    assert "MissingFileWarning" not in result.stderr, result.stderr
    assert (tmp_path / "cache/isolated-db-template/copier-9.19.1/bin/copier").exists()
    assert answers(destination)["project_slug"] == "giga"
    assert (destination / "db/.env").exists() and (destination / "back/.env").exists()


def test_ci_runs_the_readmes_test_command():
    readme = (REPO / "README.md").read_text()
    test_command = re.search(r"```bash\n.*\n(scripts/test)\b", readme).group(1)
    assert test_command in (REPO / ".ci/run").read_text()


# The rule: the root README is the template's front door (what it is, the two
# commands, what you get, requirements, where to read next) and docs/ holds the
# rest, each fact once. 160 lines is what such a door needs; past it, move a
# section into docs/ and link to it rather than raise the budget.
README_BUDGET = 160


def test_readme_is_a_short_front_door():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_BUDGET, (
        f"README.md has {len(lines)} lines, over its budget of {README_BUDGET}: move the detail into docs/")


def broken_links(files: list[Path], root: Path) -> list[str]:
    """Relative Markdown links that do not resolve, from the linking file, to a
    file or directory inside root; a #anchor, when given, must name a heading
    of the linked Markdown file."""
    broken = []
    for path in files:
        for target in MARKDOWN_LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"[a-z][a-z+.-]*:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path.resolve()
            where = path.relative_to(root)
            if not linked.exists() or root.resolve() not in [linked, *linked.parents]:
                broken.append(f"{where}: link to {target}")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.M)
                if anchor not in {github_anchor(h) for h in headings}:
                    broken.append(f"{where}: link to {target} (no such heading)")
    return broken


def test_readme_and_docs_links_resolve(tmp_path):
    """The README sends readers into docs/ and docs/ into the repository: every
    relative link there reaches a file that exists (and its heading, if named)."""
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert broken_links(docs, REPO) == []
    # the check itself: a page whose links miss
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/page.md").write_text("# Page\n")
    (tmp_path / "README.md").write_text("[ok](docs/page.md#page) [gone](docs/gone.md) [wrong](docs/page.md#nowhere)"
                                        " [up](../outside.md) [web](https://example.com/x.md)\n")
    assert broken_links([tmp_path / "README.md"], tmp_path) == [
        "README.md: link to docs/gone.md", "README.md: link to docs/page.md#nowhere (no such heading)",
        "README.md: link to ../outside.md"]


# ---------------------------------------------------------------------------
# The Makefile: the team's entry point, in the order things start
# ---------------------------------------------------------------------------
FLOW = ["db-up", "up", "migrate", "verify", "backup", "backups", "restore", "db-backup-physical",
        "db-backups-physical", "db-pitr", "db-drill", "psql", "db-stats", "db-upgrade", "api-types", "e2e", "logs",
        "down", "prod-db-up", "prod-up", "prod-logs", "prod-down", "template-update", "template-drift"]


def test_make_help_lists_the_flow_in_order(example):
    assert make.targets(example) == ["help", *FLOW]
    assert make.make(example).stdout == make.make(example, "help").stdout, "help is the default goal"


def test_make_targets_run_the_documented_commands(example):
    a = answers(example)
    db, backend = f"{a['project_slug']}_db_dev", f"{a['project_slug']}_backend_dev"
    dev = ["docker", "compose", "-f", "docker-compose.dev.yml"]
    expected = {
        # through scripts/compose-up, which explains a missing network or a taken port
        "db-up": [["cd", "db", "&&", "../scripts/compose-up", "docker", "compose", "up", "-d", "--build", "--wait"]],
        "up": [["scripts/compose-up", "--after", "db-up", *dev, "up", "-d", "--build", "backend", "worker", "frontend",
                "mailpit"]],
        "migrate": [["docker", "exec", backend, "python", "manage.py", "migrate"]],
        "verify": [["scripts/verify"]],
        "e2e": [["cd", "front", "&&", "npm", "run", "test:e2e"]],
        "backup": [["docker", "exec", db, "backup"]],
        "backups": [["docker", "exec", db, "list-backups"]],
        "psql": [["docker", "exec", "-it", db, "psql", "-U", a["db_user"], "-d", a["db_name"]]],
        "down": [[*dev, "down"], ["cd", "db", "&&", "docker", "compose", "down"]],
    }
    for target, commands in expected.items():
        assert make.commands(example, target) == commands, target
    # the container names and scripts the targets use are the ones the project defines
    assert {db, backend} <= {service["container_name"] for path in compose.COMPOSE_FILES
                             for service in compose.load(example / path)["services"].values()}
    assert {"backup", "list-backups", "restore"} <= {p.name for p in (example / "db/bin").iterdir()}


def test_make_verify_runs_the_checklist_script_which_names_the_projects_containers(example):
    a = answers(example)
    assert make.commands(example, "verify", NO_RESTART="1") == [["scripts/verify", "--no-restart"]]
    script = example / "scripts/verify"
    assert os.access(script, os.X_OK), "make runs it directly"
    # the three tiers; the optional profiles' containers, the mail catcher and
    # the backend's task worker (no part of the architecture's checklist) are not on it
    containers = {service["container_name"] for path in compose.COMPOSE_FILES
                  for name, service in compose.load(example / path)["services"].items()
                  if not service.get("profiles") and name not in ("mailpit", "worker")}
    text = script.read_text()
    named = set(re.findall(r"^(?:DB|BACKEND|FRONTEND)=(\S+)$", text, re.M))
    assert named == containers and len(named) == 3, named
    assert f"NETWORK={a['network_name']}\n" in text
    assert f"psql -U {a['db_user']} -d {a['db_name']} " in text
    result = subprocess.run([str(script), "--bogus"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "usage:" in result.stderr, "a wrong flag runs nothing"


def test_make_restore_asks_unless_yes_and_needs_a_file(example):
    db = f"{answers(example)['project_slug']}_db_dev"
    assert make.commands(example, "restore", FILE="a.dump")[-1] == ["docker", "exec", "-it", db, "restore", "a.dump"]
    # YES=1 needs no terminal: scripts and cron can restore
    assert make.commands(example, "restore", FILE="a.dump", YES="1")[-1] == \
        ["docker", "exec", "-i", db, "restore", "a.dump", "--yes"]
    result = make.make(example, "restore")
    assert result.returncode != 0 and "FILE is required" in result.stderr, result.stderr


def test_make_db_upgrade_runs_the_upgrade_script_and_needs_from(example):
    assert make.commands(example, "db-upgrade", FROM="16")[-1] == ["scripts/db-upgrade", "16"]
    assert make.commands(example, "db-upgrade", FROM="17", FORCE="1")[-1] == ["scripts/db-upgrade", "17", "--force"]
    result = make.make(example, "db-upgrade")
    assert result.returncode != 0 and "FROM is required" in result.stderr, result.stderr


# ---------------------------------------------------------------------------
# The Makefile's preflights, run for real with a fake `docker` (quick, no engine;
# test_docker_dev.py meets the same failures on the real one):
# a missing env file is named with its fix before any docker command runs.
# scripts/compose-up's own cases (the network, a taken port) need an engine's
# answers: test_compose_up_* below feed it the engine's recorded messages, and
# the docker tier runs them on a real engine.
# ---------------------------------------------------------------------------
FAKE_DOCKER = """#!/bin/sh
# Records every call; `network inspect` finds the network unless FAKE_NETWORK=missing,
# `volume inspect` no volume unless FAKE_VOLUME=present; anything else prints FAKE_STDERR to stderr and exits FAKE_STATUS.
printf '%s\\n' "$*" >> "$FAKE_DOCKER_LOG"
if [ "$1 $2" = "network inspect" ]; then
  if [ "${FAKE_NETWORK:-}" = missing ]; then echo "Error response from daemon: network $3 not found" >&2; exit 1; fi
  echo '[]'; exit 0
fi
if [ "$1 $2" = "volume inspect" ]; then
  if [ "${FAKE_VOLUME:-}" = present ]; then echo '[]'; exit 0; fi
  echo "Error response from daemon: get $3: no such volume" >&2; exit 1
fi
[ -z "${FAKE_STDERR:-}" ] || printf '%s\\n' "$FAKE_STDERR" >&2
exit "${FAKE_STATUS:-0}"
"""


class FakeDocker:
    """A copy of a project, and a `docker` first on PATH that records its calls."""

    def __init__(self, project: Path, tmp_path: Path):
        self.project = tmp_path / "project"
        shutil.copytree(project, self.project, ignore=shutil.ignore_patterns("node_modules"))
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "docker").write_text(FAKE_DOCKER)
        (bin_dir / "docker").chmod(0o755)
        self.log = tmp_path / "docker.log"
        self.env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
                    "FAKE_DOCKER_LOG": str(self.log)}

    def make(self, *args: str, **fake: str) -> subprocess.CompletedProcess:
        return make.make(self.project, *args, env={**self.env, **fake})

    def run(self, *argv: str, cwd: str = ".", **fake: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=self.project / cwd, env={**self.env, **fake},
                              capture_output=True, text=True, timeout=60)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def fake_docker(giga_project, tmp_path) -> FakeDocker:
    return FakeDocker(giga_project, tmp_path)


# target -> the env files it needs (the compose files' env_file, and db/'s .env for interpolation)
PREFLIGHT_ENV_FILES = {"db-up": ["db/.env"], "up": ["back/.env", "front/.env"],
                       "prod-db-up": ["db/.env"], "prod-up": ["back/.env", "front/.env"]}


@pytest.mark.parametrize("target, env_file", [(target, env_file) for target, files in PREFLIGHT_ENV_FILES.items()
                                              for env_file in files])
def test_a_missing_env_file_stops_make_with_its_fix_before_docker_runs(fake_docker, target, env_file):
    (fake_docker.project / env_file).unlink()
    result = fake_docker.make(target)
    assert result.returncode != 0
    message = result.stderr
    assert message.startswith(f"{env_file} is missing. It holds "), message
    assert "git ignores it, so a fresh clone has none" in message
    assert f"write a new one from {env_file}.example:\n    scripts/env-files\n" in message
    assert f"(by hand: cp {env_file}.example {env_file}" in message
    assert "Traceback" not in message and "not found: stat" not in message
    assert fake_docker.calls() == [], "nothing reaches docker"


def test_env_file_messages_say_what_each_file_holds(fake_docker):
    result = fake_docker.run("scripts/env-files", "--check", "db/.env", "back/.env", "front/.env")
    assert result.returncode == 0 and result.stderr == ""
    for env_file in ("db/.env", "back/.env", "front/.env"):
        (fake_docker.project / env_file).unlink()
    result = fake_docker.run("scripts/env-files", "--check", "db/.env", "back/.env", "front/.env")
    assert result.returncode == 1
    db, back, front = re.split(r"^(?=\S+/\.env is missing)", result.stderr, flags=re.M)[1:]
    # the secrets each .env.example leaves as change-me are named
    for message, env_file in ((db, "db/.env"), (back, "back/.env")):
        placeholders = [key for key, value in dotenv.load(fake_docker.project / f"{env_file}.example").items()
                        if value.startswith("change-me")]
        assert placeholders and all(key in message for key in placeholders), (env_file, placeholders)
    assert "giga_db_data_16 keeps the passwords of that first start" in db
    assert "DB_PASSWORD to db/.env's APP_DB_PASSWORD" in back and "logs every user out" in back
    assert "no secret" in front and "cp front/.env.example front/.env" in front
    assert fake_docker.run("scripts/env-files", "--check", "db/.env.example").returncode == 2


def test_make_up_checks_the_database_network_first(fake_docker):
    result = fake_docker.make("up", FAKE_NETWORK="missing")
    assert result.returncode != 0
    assert ("The database's network giga_dev_network is missing: it is created when the database starts"
            in result.stderr), result.stderr
    assert "Fix: start the database first with `make db-up`, then run this again." in result.stderr
    assert fake_docker.calls() == ["network inspect giga_dev_network"], "compose never ran"
    result = fake_docker.make("prod-up", FAKE_NETWORK="missing")
    assert "`make prod-db-up`" in result.stderr and result.returncode != 0
    # present: compose runs, with the documented command
    fake_docker.log.unlink()
    assert fake_docker.make("up").returncode == 0
    assert fake_docker.calls() == ["network inspect giga_dev_network",
                                   "compose -f docker-compose.dev.yml up -d --build backend worker frontend mailpit"]


# Engines word a taken port in several ways; the first address:port is the host's.
PORT_TAKEN = [
    "Error response from daemon: driver failed programming external connectivity on endpoint {container} "
    "(3f5ae1): Bind for 127.0.0.1:{port} failed: port is already allocated",
    "Error response from daemon: driver failed programming external connectivity on endpoint {container} "
    "(3f5ae1): Error starting userland proxy: listen tcp4 127.0.0.1:{port}: bind: address already in use",
    "Error response from daemon: failed to set up container networking: driver failed programming external "
    "connectivity on endpoint {container} (3f5ae1): failed to bind host port for 127.0.0.1:{port}:172.18.0.3:{port}/tcp: "
    "address already in use",
    "Error response from daemon: ports are not available: exposing port TCP 127.0.0.1:{port} -> 0.0.0.0:0: "
    "listen tcp 127.0.0.1:{port}: bind: address already in use",
]


@pytest.mark.parametrize("wording", PORT_TAKEN, ids=["allocated", "userland-proxy", "engine-28", "desktop"])
@pytest.mark.parametrize("target, question", [("db-up", "db_host_port"), ("up", "backend_port"),
                                              ("up", "frontend_port"), ("up", "mail_ui_port")])
def test_compose_up_names_a_taken_port_and_its_question(fake_docker, wording, target, question):
    a = answers(fake_docker.project)
    port = a[question]
    error = wording.format(container="giga_x_dev", port=port)
    result = fake_docker.make(target, FAKE_STATUS="1", FAKE_STDERR=error)
    assert result.returncode != 0
    assert error in result.stderr, "compose's own error stays visible"
    explanation = result.stderr[result.stderr.index(error) + len(error):]
    assert f"\n\nPort {port} on 127.0.0.1 is already in use, so {question} ({port}) cannot be published.\n" \
        f"Fix: stop what uses it (`docker ps --filter publish={port}` lists a container that does), " \
        f"or choose another port:\n    copier update --defaults -d {question}=<free port>" in explanation, explanation


def test_compose_up_explains_a_port_no_answer_chose(fake_docker):
    error = ("Error response from daemon: driver failed programming external connectivity on endpoint giga_caddy "
             "(ab12): Error starting userland proxy: listen tcp4 0.0.0.0:443: bind: address already in use")
    result = fake_docker.run("scripts/compose-up", "docker", "compose", "-f", "docker-compose.prod.yml", "up", "-d",
                             FAKE_STATUS="1", FAKE_STDERR=error)
    assert result.returncode == 1
    assert result.stderr == (f"{error}\n\nPort 443 is already in use on this machine, so a container cannot publish it.\n"
                             "Fix: stop what uses it (`docker ps --filter publish=443` lists a container that does), "
                             "then run this again.\n")


def test_compose_up_keeps_compose_output_and_status(fake_docker):
    result = fake_docker.run("../scripts/compose-up", "docker", "compose", "up", "-d", cwd="db",
                             FAKE_STATUS="3", FAKE_STDERR="service \"x\" refers to undefined volume y")
    assert (result.returncode, result.stderr) == (3, "service \"x\" refers to undefined volume y\n")
    result = fake_docker.run("../scripts/compose-up", "docker", "compose", "up", "-d", cwd="db",
                             FAKE_STATUS="1", FAKE_STDERR="network giga_dev_network declared as external, but could "
                                                          "not be found")
    assert "The database's network giga_dev_network is missing" in result.stderr
    # compose's word for a missing env file, when the Makefile's check was skipped
    (fake_docker.project / "front/.env").unlink()
    missing = fake_docker.project.resolve() / "front/.env"
    result = fake_docker.run("scripts/compose-up", "docker", "compose", "-f", "docker-compose.dev.yml", "up",
                             FAKE_STATUS="1", FAKE_STDERR=f"env file {missing} not found: stat {missing}: no such file")
    assert result.returncode == 1 and "\n\nfront/.env is missing. It holds no secret" in result.stderr, result.stderr
    assert fake_docker.run("scripts/compose-up").returncode == 2
    assert fake_docker.run("scripts/compose-up", "--after").returncode == 2


# ---------------------------------------------------------------------------
# scripts/env-files: the env files of a fresh clone (CI's stack job runs it)
# ---------------------------------------------------------------------------
ENV_FILES = ("db/.env", "back/.env", "front/.env")


def test_env_files_writes_the_missing_ones_from_their_examples(fake_docker):
    project = fake_docker.project
    for env_file in ENV_FILES:
        (project / env_file).unlink()
    result = fake_docker.run("scripts/env-files", GITHUB_ACTIONS="true")
    assert result.returncode == 0, result.stderr
    db, back, front = (dotenv.load(project / env_file) for env_file in ENV_FILES)
    for env_file in ENV_FILES:
        assert (project / env_file).stat().st_mode & 0o777 == (0o644 if env_file == "front/.env" else 0o600), env_file
        example = dotenv.load(project / f"{env_file}.example")
        written = dotenv.load(project / env_file)
        assert written.keys() == example.keys(), env_file
        # every placeholder replaced, everything else as in the example
        for key, value in example.items():
            if value.startswith("change-me"):
                assert re.fullmatch(r"[0-9a-f]{64,96}", written[key]), (env_file, key)
            else:
                assert written[key] == value, (env_file, key)
    assert back["DB_PASSWORD"] == db["APP_DB_PASSWORD"]
    secrets = [db["POSTGRES_PASSWORD"], db["APP_DB_PASSWORD"], db["MONITOR_DB_PASSWORD"],
               db["PGBACKREST_REPO1_CIPHER_PASS"], back["DJANGO_SECRET_KEY"]]
    assert len(set(secrets)) == 5 and len(back["DJANGO_SECRET_KEY"]) >= 50
    # masked in GitHub's log before use, each new one once
    assert sorted(re.findall(r"^::add-mask::(\S+)$", result.stdout, re.M)) == sorted(secrets)
    assert "db/.env: written from db/.env.example (mode 0600); new POSTGRES_PASSWORD" in result.stdout
    # once there, never touched again
    before = {env_file: (project / env_file).read_bytes() for env_file in ENV_FILES}
    again = fake_docker.run("scripts/env-files")
    assert again.returncode == 0 and "::add-mask::" not in again.stdout
    assert again.stdout.splitlines() == [f"{env_file}: exists, left as it is" for env_file in ENV_FILES]
    assert {env_file: (project / env_file).read_bytes() for env_file in ENV_FILES} == before
    # outside GitHub Actions nothing is printed that holds a secret
    (project / "db/.env").unlink()
    quiet = fake_docker.run("scripts/env-files")
    assert "::add-mask::" not in quiet.stdout and dotenv.load(project / "db/.env")["POSTGRES_PASSWORD"] not in quiet.stdout
    assert quiet.stderr == ""
    # a new db/.env next to a database that already ran: its passwords are the first start's
    (project / "db/.env").unlink()
    warned = fake_docker.run("scripts/env-files", FAKE_VOLUME="present")
    assert warned.returncode == 0 and "Warning: the volume giga_db_data_16 exists: the database keeps the passwords " \
        "of its first start, not these." in warned.stderr, warned.stderr


def test_env_files_keeps_the_shared_password_of_the_file_that_exists(fake_docker):
    """DB_PASSWORD (back/.env) is APP_DB_PASSWORD (db/.env): a new file takes
    it from the other, as written (compose's quoting kept)."""
    project = fake_docker.project
    chosen = 'DB_PASSWORD="o\\"brien $$ \\\\ #1"'  # compose's quoting of: o"brien $ \ #1
    back = (project / "back/.env").read_text()
    (project / "back/.env").write_text(re.sub(r"^DB_PASSWORD=.*$", lambda _: chosen, back, flags=re.M))
    (project / "db/.env").unlink()
    result = fake_docker.run("scripts/env-files")
    assert result.returncode == 0, result.stderr
    assert "APP_DB_PASSWORD as in back/.env" in result.stdout
    assert dotenv.load(project / "db/.env")["APP_DB_PASSWORD"] == dotenv.load(project / "back/.env")["DB_PASSWORD"] \
        == 'o"brien $ \\ #1'
    (project / "back/.env").unlink()
    result = fake_docker.run("scripts/env-files")
    assert "DB_PASSWORD as in db/.env" in result.stdout
    assert dotenv.load(project / "back/.env")["DB_PASSWORD"] == 'o"brien $ \\ #1'


# ---------------------------------------------------------------------------
# The output stands on its own: every path it names is in it
# ---------------------------------------------------------------------------
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH_MENTION = re.compile(r"(?<![\w./@:-])((?:docs|scripts|tests|back|front|db|src)/[\w.{},/-]*)")
IGNORE_LISTS = {".gitignore", ".dockerignore", ".prettierignore"}  # patterns, not references


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def missing_references(project: Path) -> list[str]:
    """Markdown links (and their #anchors) resolved from the linking file, and
    mentions of docs/, scripts/, tests/, back/, front/, db/ and src/ paths
    resolved from the file's directory or any directory above it up to the
    project root."""
    missing = []
    for path, text in rendered_text_files(project):
        if path.name in IGNORE_LISTS:
            continue
        where = path.relative_to(project)
        for target in MARKDOWN_LINK.findall(text):
            if re.match(r"[a-z][a-z+.-]*:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists() or project.resolve() not in [linked, *linked.parents]:
                missing.append(f"{where}: link to {target}")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.M)
                if anchor not in {github_anchor(h) for h in headings}:
                    missing.append(f"{where}: link to {target} (no such heading)")
        for mention in PATH_MENTION.findall(text):
            mention = mention.rstrip(".,;:")
            alternatives = re.match(r"(.*)\{([^}]*)\}(.*)", mention)
            names = ([alternatives[1] + part + alternatives[3] for part in alternatives[2].split(",")]
                     if alternatives else [mention])
            bases = [path.parent, *path.parent.relative_to(project).parents]
            for name in names:
                if not any((project / base / name).exists() for base in bases):
                    missing.append(f"{where}: {name}")
    return missing


def test_every_path_the_output_names_is_in_the_output(example, tmp_path):
    assert missing_references(example) == []
    # the check itself: a copy whose files name paths it lacks
    copy = tmp_path / "copy"
    copy.mkdir()
    for relative in ("README.md", "docs/architecture.md", "back/README.md"):
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        (copy / relative).write_text((example / relative).read_text())
    (copy / "back/conftest.py").write_text("# as the template's tests/harness/django.py does\n")
    (copy / "docs/architecture.md").write_text((copy / "docs/architecture.md").read_text()
                                                + "\nSee [the runbook](runbook.md), [ops](../README.md#operations)"
                                                  " and scripts/bench_back.py.\n")
    found = missing_references(copy)
    for expected in ("back/conftest.py: tests/harness/django.py",
                     "docs/architecture.md: link to runbook.md",
                     "docs/architecture.md: link to ../README.md#operations (no such heading)",
                     "docs/architecture.md: scripts/bench_back.py",
                     "docs/architecture.md: link to ../front/README.md",  # front/ was not copied
                     "README.md: front/README.md"):
        assert expected in found, found
