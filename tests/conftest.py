"""Shared fixtures: rendered projects, running PostgreSQL servers, the three
tiers running together, and Chromium's pages.

Rendering is cached per session (the same answers give the same project), and
so is the database server of the default project; tests that must change a
server get their own. A fixture that more than one test module uses lives
here, its helpers in harness/: a test module never imports another
(test_structure holds that).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.postgres import PostgresServer, start_project_db
from harness.answers import POSTGRES_VERSIONS
from harness.render import EXAMPLES, REPO, copier_cli, copy_in_process, example_answers, template_copy

# versioned_project's major that default_project already is
# The docker tier's modules (marked `docker`), scheduled as one unit
DOCKER_MODULES = "test_docker_"
DEFAULT_POSTGRES_VERSION = str(yaml.safe_load((REPO / "copier.yml").read_text())["postgres_version"]["default"])


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's units of work (pytest.ini runs two workers): a module's
    tests stay together, so its fixtures start once, and the docker tier
    (the test_docker_* modules) is one unit, as its tests share one engine
    and its projects' names. The controller sees only test ids, hence the
    module names; test_structure.py holds the docker marker to them."""
    from xdist.scheduler import LoadScopeScheduling

    class ByModuleDockerTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "docker" if Path(module).name.startswith(DOCKER_MODULES) else module

    return ByModuleDockerTogether(config, log)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so fixtures can act on a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def render(copie_session):
    """render(answers) -> path of a project rendered with those answers (cached)."""
    cache: dict[str, Path] = {}

    def _render(answers: dict | None = None) -> Path:
        key = json.dumps(answers or {}, sort_keys=True)
        if key not in cache:
            result = copie_session.copy(extra_answers=answers or {})
            if result.exit_code != 0:
                raise AssertionError(f"render failed for {answers}: {result.exception!r}")
            cache[key] = result.project_dir
        return cache[key]

    return _render


@pytest.fixture(scope="session", params=[p.stem for p in EXAMPLES])
def example(request, render) -> Path:
    """Each example project (examples/*.yml)."""
    return render(example_answers(request.param))


@pytest.fixture(scope="session", params=POSTGRES_VERSIONS, ids=lambda v: f"pg{v}")
def versioned_project(request, render) -> Path:
    """A project for each PostgreSQL major copier.yml offers, defaults otherwise
    (the default major's is default_project: the same answers)."""
    if str(request.param) == DEFAULT_POSTGRES_VERSION:
        return render()
    return render({"postgres_version": request.param})


@pytest.fixture(scope="session")
def default_project(render) -> Path:
    """The project of `copier copy --defaults`."""
    return render()


@pytest.fixture(scope="session")
def jinja_template(tmp_path_factory) -> Path:
    """The template's copier.yml, includes/ and *.jinja files, for rendering
    in-process (harness.render.copy_in_process) many times."""
    return template_copy(tmp_path_factory.mktemp("template") / "jinja", jinja_only=True)


@pytest.fixture(scope="session")
def render_jinja(jinja_template, tmp_path_factory):
    """render_jinja(answers) -> path of a project rendered in-process from
    jinja_template (cached per answers): only the files rendered from *.jinja
    sources (and the env files), about a tenth of a whole render's time. For
    tests that only read such files; shared, so read-only."""
    cache: dict[str, Path] = {}

    def _render(answers: dict | None = None) -> Path:
        key = json.dumps(answers or {}, sort_keys=True)
        if key not in cache:
            destination = tmp_path_factory.mktemp("jinja-render") / "project"
            refusal = copy_in_process(jinja_template, answers or {}, destination)
            if refusal is not None:
                raise AssertionError(f"render failed for {answers}: {refusal}")
            cache[key] = destination
        return cache[key]

    return _render


@pytest.fixture(scope="session")
def cli_default_copy(tmp_path_factory):
    """(result, project) of `copier copy --defaults --vcs-ref HEAD <template>
    <project>` as a user types it (harness.render.copier_cli), run once for the
    tests that read its output or its files; shared, so read-only."""
    destination = tmp_path_factory.mktemp("cli-copy") / "project"
    return copier_cli("copy", "--defaults", "--vcs-ref", "HEAD", str(REPO), str(destination)), destination


@pytest.fixture(scope="session")
def k8s_project(render) -> Path:
    """A project with deploy/k8s/ (harness.k8s.ANSWERS, defaults otherwise)."""
    from harness.k8s import ANSWERS
    return render(ANSWERS)


@pytest.fixture(scope="session")
def giga_project(render) -> Path:
    """The project of docs/architecture.md: examples/giga.yml."""
    return render(example_answers("giga"))


@pytest.fixture(scope="session")
def giga_db(giga_project):
    """PostgreSQL running from giga_project's rendered db/, init scripts done."""
    server = start_project_db(giga_project)
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def backend_venv(giga_project) -> Path:
    """A virtualenv with giga_project's back/requirements-dev.txt (harness.python)."""
    from harness.python import venv_for
    return venv_for(giga_project / "back")


@pytest.fixture(scope="session")
def giga_backend(giga_project, giga_db, backend_venv):
    """giga_project's back/, run natively against giga_db (harness.backend), migrated."""
    from harness.backend import Backend
    backend = Backend(giga_project, giga_db, backend_venv)
    backend.manage("migrate", "--noinput", check=True)
    return backend


@pytest.fixture
def fresh_db_server():
    """Factory for servers a test may break; all destroyed afterwards."""
    servers: list[PostgresServer] = []

    def _start(project: Path) -> PostgresServer:
        server = start_project_db(project)
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.destroy()


@pytest.fixture(scope="session")
def k8s_built(k8s_project) -> dict[str, list[dict]]:
    """overlay -> the objects `kubectl kustomize` builds for it, from k8s_project."""
    from harness import k8s
    from harness.k8s_manifests import OVERLAYS
    return {overlay: k8s.kustomize(k8s_project / "deploy/k8s/overlays" / overlay) for overlay in OVERLAYS}


# ---------------------------------------------------------------------------
# pgBackRest on the native server (harness.pitr): test_db_pitr, _drill, _s3
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pitr_project(render) -> Path:
    """A project of the PostgreSQL major of this machine's pg_waldump, which
    pitr reads the archive with (Debian's; pgBackRest supports it too)."""
    from harness.pitr import waldump_major
    major = waldump_major()
    assert major in POSTGRES_VERSIONS, f"pg_waldump {major} matches no offered postgres_version"
    return render({"postgres_version": major})


# ---------------------------------------------------------------------------
# front/ built once per session; the three tiers running together
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def front_installed(giga_project, tmp_path_factory) -> Path:
    """A copy of giga_project's front/ after `npm ci`."""
    from harness import node
    return node.install(giga_project / "front", tmp_path_factory.mktemp("front") / "front")


@pytest.fixture(scope="session")
def front_built(front_installed) -> Path:
    """front_installed after `npm run build`."""
    from harness import node
    return node.build(front_installed)


STAFF = {"username": "boss", "email": "boss@example.com", "password": "Boss-pass-12345"}


@pytest.fixture(scope="session")
def smtp():
    """A real SMTP server in this process (harness.mail): the stack's mail goes there."""
    from harness.mail import smtp_server
    with smtp_server() as inbox:
        yield inbox


@pytest.fixture(scope="session")
def stack(giga_project, front_built, smtp):
    """db/ -> back/ -> front/ of giga_project, running (harness.stack), with a
    staff user; the backend mails through `smtp`."""
    from harness.stack import running
    # The suite logs the staff account in many times a minute: its own limit
    # is raised; the limits per address stay as shipped (test_front checks them).
    with running(giga_project, front_built, staff=STAFF,
                 backend_env={"DJANGO_RATE_LOGIN_ACCOUNT": "1000/min", "EMAIL_URL": smtp.url}) as stack:
        yield stack


# ---------------------------------------------------------------------------
# Chromium through Playwright (harness.browser): test_e2e, test_production
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, launched once per module."""
    from playwright.sync_api import sync_playwright
    from harness.browser import CHROMIUM, CHROMIUM_ARGS
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context_options() -> dict:
    """Playwright's browser context options; a module may override them."""
    return {}


@pytest.fixture
def page(browser, request, context_options):
    """A page in a context of its own, watched (harness.browser.Watched): a
    test that passes must leave no problem seen; a failing one leaves a
    screenshot in harness.browser.ARTIFACTS."""
    from harness.browser import ARTIFACTS, Watched
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.watched = Watched(page)
    yield page
    report = getattr(request.node, "report_call", None)  # set by the makereport hook above
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"{request.node.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing step: {shot}")
    context.close()
    if report is not None and report.passed:
        assert not page.watched.problems, "\n".join(page.watched.problems)


# ---------------------------------------------------------------------------
# The docker tier: scripts/docker-engine's real engine
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def docker_engine():
    """The engine started (installed and its stand-in images built on first
    use), DOCKER_HOST set for this process; stopped afterwards if this run
    started it."""
    from harness import engine
    started = engine.start()
    yield
    if started:
        engine.stop()

