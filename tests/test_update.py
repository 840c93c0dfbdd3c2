"""`copier update` on real git history never loses a user's work or secrets.

A clone of this repository plays the template's upstream: its working tree is
tagged v1, the project is rendered from a tag and committed, the team edits
it, upstream ships a change, and the project is updated through the CLI
(no --trust), as a maintainer would (harness.template_git). The
earlier-version test starts from a real earlier commit of this repository
(EARLIER) and updates to v1. Each update runs on git history, so they are
all in the full tier.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from packaging.version import InvalidVersion, Version

from harness import dotenv
from harness.answers import as_typed, recorded
from harness.backend import Backend
from harness.consistency import mismatches
from harness.make import targets
from harness.postgres import start_project_db
from harness.python import venv_for
from harness.render import REPO, copier_cli, copy_in_process
from harness.template_git import (check_update, clone_template, commit_all, conflicted, contents, edit, generate,
                                  git, snapshot, update)

# The template before issue 7's hardening (knox tokens, rate limits, two DB
# networks...), the first real update a generated project takes.
EARLIER = "9a68db074f32520b011a74761862a9f92b0a6eff"


@pytest.fixture
def upstream(tmp_path) -> Path:
    return clone_template(tmp_path)


@pytest.fixture
def project(upstream, tmp_path) -> Path:
    return generate(upstream, "v1", tmp_path / "project")


def release(upstream: Path, path: str, line: str, tag: str) -> None:
    target = upstream / path
    target.write_text(target.read_text() + line)
    commit_all(upstream, f"upstream change to {path}")
    git(upstream, "tag", tag)


@pytest.mark.full
def test_update_keeps_secrets_and_the_teams_edits(upstream, project):
    secrets_before = snapshot(project)
    assert "db/.env" in secrets_before
    # the team's work: an edited env file (git-ignored), a README note, a file of its own
    db_env = project / "db/.env"
    db_env.write_text(db_env.read_text() + "# tuned by the team\n")
    secrets_before["db/.env"] = db_env.read_bytes()
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\n## Team notes\nKeep this.\n")
    (project / "db/init/30-team-seed.sql").write_text("SELECT 1;\n")
    conf = project / "db/postgresql.conf"
    conf.write_text(conf.read_text().replace("log_min_duration_statement = 500ms", "log_min_duration_statement = 250ms"))
    commit_all(project, "team work")

    release(upstream, "template/db/postgresql.conf.jinja", "# upstream v2 improvement\n", "v2")
    update(project, "--vcs-ref", "v2")

    assert snapshot(project) == secrets_before, "an update rewrote an env file"
    assert "## Team notes\nKeep this." in readme.read_text()
    assert (project / "db/init/30-team-seed.sql").exists()
    assert "# upstream v2 improvement" in conf.read_text(), "upstream's change is missing"
    assert "log_min_duration_statement = 250ms" in conf.read_text(), "the team's edit of the same file was lost"
    answers = recorded(project)
    assert answers["_commit"] == "v2"
    assert not {"db_password", "db_admin_password", "django_secret_key"} & set(answers)
    assert not list(project.rglob("*.rej")), "the update left conflicts"


@pytest.mark.full
def test_changing_an_answer_retunes_without_touching_secrets(upstream, project):
    secrets_before = snapshot(project)
    update(project, "--vcs-ref", "v1", "--data", "db_memory_mb=2048")
    conf = (project / "db/postgresql.conf").read_text()
    assert "shared_buffers = 512MB" in conf
    assert "mem_limit: 2048m" in (project / "db/docker-compose.yml").read_text()
    assert snapshot(project) == secrets_before



def test_template_needs_no_trust():
    """Copier asks for --trust for tasks, migrations and Jinja extensions; every
    copy and update in this module runs without it."""
    config = yaml.safe_load((REPO / "copier.yml").read_text())
    assert not {"_tasks", "_migrations", "_jinja_extensions"} & set(config)


def test_the_pinned_copier_meets_the_templates_minimum():
    minimum = Version(yaml.safe_load((REPO / "copier.yml").read_text())["_min_copier_version"])
    pins = {
        "tests/requirements.txt": re.search(r"^copier==(\S+)$", (REPO / "tests/requirements.txt").read_text(),
                                            flags=re.MULTILINE),
        "scripts/new-project": re.search(r"copier==(\S+)", (REPO / "scripts/new-project").read_text()),
    }
    assert all(pins.values()), pins
    assert {name: pin.group(1) for name, pin in pins.items() if Version(pin.group(1)) < minimum} == {}


def test_changelog_has_an_entry_per_release_newest_first():
    headings = re.findall(r"^## (.+)$", (REPO / "CHANGELOG.md").read_text(), flags=re.MULTILINE)
    assert headings[0] == "Unreleased", "the lead's next release collects under Unreleased"
    # `## X.Y.Z - YYYY-MM-DD` (docs/releasing.md); InvalidVersion if not PEP 440
    versions = [Version(heading.partition(" - ")[0]) for heading in headings[1:]]
    assert versions and versions == sorted(versions, reverse=True)
    tags = set()
    for tag in git(REPO, "tag", "--list").split():
        try:
            tags.add(Version(tag))
        except InvalidVersion:
            continue  # not a release
    assert tags <= set(versions), f"releases without a CHANGELOG entry: {sorted(map(str, tags - set(versions)))}"


@pytest.mark.full
def test_a_file_the_team_deleted_stays_deleted(upstream, project):
    # one file upstream changes in the next release, one it leaves alone
    deleted = ("front/static/robots.txt", "docs/api-contract.md")
    for name in deleted:
        (project / name).unlink()
    commit_all(project, "the team needs neither")
    release(upstream, "template/front/static/robots.txt", "Disallow: /admin/\n", "v2")
    update(project)
    assert recorded(project)["_commit"] == "v2"
    assert [name for name in deleted if (project / name).exists()] == []


# ---------------------------------------------------------------------------
# From an earlier version of the template to the newest
# ---------------------------------------------------------------------------
# The team's own files: a Django app with an API view and its test, a page.
TEAM_FILES = {
    "back/reports/__init__.py": "",
    "back/reports/apps.py": (
        "from django.apps import AppConfig\n\n\n"
        "class ReportsConfig(AppConfig):\n"
        '    name = "reports"\n'
    ),
    "back/reports/views.py": (
        "from django.conf import settings\n"
        "from drf_spectacular.utils import extend_schema\n"
        "from rest_framework import serializers\n"
        "from rest_framework.permissions import AllowAny\n"
        "from rest_framework.response import Response\n"
        "from rest_framework.views import APIView\n\n\n"
        "class SummarySerializer(serializers.Serializer):\n"
        "    title = serializers.CharField()\n\n\n"
        "class SummaryView(APIView):\n"
        "    permission_classes = [AllowAny]\n\n"
        "    @extend_schema(responses=SummarySerializer)\n"
        "    def get(self, request):\n"
        '        return Response(SummarySerializer({"title": settings.REPORTS_TITLE}).data)\n'
    ),
    "back/reports/urls.py": (
        "from django.urls import path\n\n"
        "from . import views\n\n"
        'urlpatterns = [path("summary/", views.SummaryView.as_view(), name="reports-summary")]\n'
    ),
    "back/reports/test_reports.py": (
        "import pytest\n\n\n"
        "@pytest.mark.django_db\n"
        "def test_summary_names_the_setting(client):\n"
        '    response = client.get("/api/reports/summary/")\n'
        "    assert response.status_code == 200\n"
        '    assert response.json() == {"title": "Weekly figures"}\n'
    ),
    "front/src/routes/reports/+page.svelte": "<h1>Reports</h1>\n\n<p>Weekly figures, every Monday.</p>\n",
}


def team_edits(project: Path) -> dict[str, list[str]]:
    """The team's edits of generated files: {path: the text it now holds}."""
    slug = recorded(project)["project_slug"]
    edits = {
        f"back/{slug}/settings.py": [
            ('    "personas",\n]', '    "personas",\n    "reports",\n]'),  # a new app
            ("\nROOT_URLCONF = ", '\n# The title of the weekly report.\nREPORTS_TITLE = "Weekly figures"\n\nROOT_URLCONF = '),
        ],
        f"back/{slug}/urls.py": [
            # Between two lines the template has kept since (next to a line
            # it changed, the edit would be a true conflict, left as markers).
            ('    path("api/health/", HealthView.as_view(), name="health"),',
             '    path("api/health/", HealthView.as_view(), name="health"),\n'
             '    path("api/reports/", include("reports.urls")),'),
        ],
        "back/pytest.ini": [("testpaths = personas", "testpaths = reports personas")],
        "db/postgresql.conf": [("work_mem = 4MB", "work_mem = 16MB")],
    }
    for name, replacements in edits.items():
        for old, new in replacements:
            edit(project / name, old, new)
    return {name: [new for _, new in replacements] for name, replacements in edits.items()}


class Updated:
    """A project generated at EARLIER, edited by its team, updated to v1."""

    def __init__(self, project: Path, edits: dict[str, list[str]], template_changed: set[str],
                 env_before: dict[str, bytes], check_before: dict, check_after: dict, message: str):
        self.project, self.edits, self.template_changed = project, edits, template_changed
        self.env_before, self.check_before, self.check_after = env_before, check_before, check_after
        self.message = message  # what `copier update` printed


@pytest.fixture(scope="module")
def updated_from_earlier(tmp_path_factory) -> Updated:
    tmp_path = tmp_path_factory.mktemp("earlier")
    upstream = clone_template(tmp_path)
    known = subprocess.run(["git", "cat-file", "-e", f"{EARLIER}^{{commit}}"], cwd=upstream).returncode == 0
    assert known, f"{EARLIER} is not in this repository's history (a shallow clone?)"
    git(upstream, "tag", "v0", EARLIER)
    project = generate(upstream, "v0", tmp_path / "project")
    earlier = contents(project)
    latest = contents(generate(upstream, "v1", tmp_path / "latest"))
    template_changed = {name for name in earlier.keys() | latest.keys() if earlier.get(name) != latest.get(name)}

    env_before = snapshot(project)
    edits = team_edits(project)
    for name, text in TEAM_FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    commit_all(project, "the team's work")

    check_before = check_update(project)
    result = update(project)  # no --vcs-ref: the newest release, as `copier update` picks it
    commit_all(project, "update")
    return Updated(project, edits, template_changed, env_before, check_before, check_update(project),
                   result.stderr)


@pytest.mark.full
def test_update_from_an_earlier_version_keeps_the_teams_work(updated_from_earlier):
    u = updated_from_earlier
    project = u.project
    assert recorded(project)["_commit"] == "v1"
    for name, texts in u.edits.items():
        text = (project / name).read_text()
        assert [t for t in texts if t not in text] == [], f"the team's edit of {name} was lost"
    for name, text in TEAM_FILES.items():
        assert (project / name).read_text() == text, f"the team's {name} changed"
    assert snapshot(project) == u.env_before, "an update rewrote an env file"
    unchanged = set(contents(project)) - u.template_changed
    assert [name for name in conflicted(project) if name in unchanged or name.endswith(".rej")] == []


@pytest.mark.full
def test_check_update_sees_the_release_before_and_none_after(updated_from_earlier):
    u = updated_from_earlier
    assert u.check_before["update_available"] is True, u.check_before
    assert u.check_after["update_available"] is False, u.check_after


@pytest.mark.full
def test_message_after_update_says_what_to_review(updated_from_earlier):
    message = updated_from_earlier.message
    skipped = yaml.safe_load((REPO / "copier.yml").read_text())["_skip_if_exists"]
    for needed in ("git diff", "<<<<<<<", "*.rej", "CHANGELOG.md", ".env.example", "make verify", *skipped,
                   "docker compose up -d --build", "make db-upgrade FROM=<old major>"):
        assert needed in message, f"the message after an update does not mention {needed!r}"


def test_message_after_copy_gives_the_start_sequence_as_make_targets(cli_default_copy):
    result, project = cli_default_copy
    assert result.returncode == 0, result.stderr
    steps = re.findall(r"^\s*make ([a-z-]+)", result.stderr, flags=re.MULTILINE)
    assert steps == ["db-up", "up", "migrate", "verify"], result.stderr
    assert set(steps) <= set(targets(project))


@pytest.mark.full
def test_back_suite_passes_after_the_update(updated_from_earlier, fresh_db_server, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(updated_from_earlier.project, project, symlinks=True)
    # The earlier version's db/.env has no monitoring password: a new volume
    # still initialises, without the optional monitoring role.
    assert "MONITOR_DB_PASSWORD" not in dotenv.load(project / "db/.env")
    backend = Backend(project, fresh_db_server(project), venv_for(project / "back"))
    result = backend.run("pytest", "-q", "-rA", "-p", "no:cacheprovider", timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "PASSED reports/test_reports.py::test_summary_names_the_setting" in result.stdout


# ---------------------------------------------------------------------------
# Changing an answer on update
# ---------------------------------------------------------------------------
# Answers the template only derives files from: each may change on update.
# The new values differ from every default, and from each other where two
# answers must differ (the ports).
FREE_ANSWERS = {
    "project_name": {"project_name": 'Giga "Ops" $HOME'},
    "db_service": {"db_service": "main-db"},
    "network_name": {"network_name": "giga_shared"},
    "db_port": {"db_port": "6543"},
    "db_host_port": {"db_host_port": "15432"},
    "db_host_port=0": {"db_host_port": "0"},
    "backend_port": {"backend_port": "8100"},
    "frontend_port": {"frontend_port": "5200"},
    "db_memory_mb": {"db_memory_mb": "2048"},
    "timezone": {"timezone": "Europe/Madrid"},
    "language_code": {"language_code": "es-ar"},
    "admin_email": {"admin_email": "ops@example.org"},
    "domain": {"domain": "app.example.com", "kubernetes": "true"},
    "acme_email": {"acme_email": "certs@example.org"},
    "kubernetes": {"kubernetes": "true"},
    "k8s_instances_production": {"kubernetes": "true", "k8s_instances_production": "5"},
}
# Answers an existing data volume pins, with a new value for each.
PINNED_ANSWERS = {"db_user": "app_role", "db_name": "app", "db_admin_user": "admin", "project_slug": "mega"}


def data_args(answers: dict[str, str]) -> list[str]:
    return [arg for name, value in answers.items() for arg in ("--data", f"{name}={value}")]


def assert_updated_consistently(project: Path, changes: dict[str, str], env_before: dict[str, bytes]) -> None:
    answers = as_typed(project)
    assert {name: str(answers[name]).lower() if isinstance(answers[name], bool) else answers[name]
            for name in changes} == changes
    assert snapshot(project) == env_before, "an update rewrote an env file"
    assert mismatches(project) == []
    assert conflicted(project) == []


@pytest.mark.full
def test_the_free_answer_of_the_issue_takes_effect_on_update(project):
    """db_port, as a user tried it: the backend's DB_PORT follows postgresql.conf
    although back/.env is never rewritten."""
    env_before = snapshot(project)
    update(project, "--data", "db_port=6543")
    assert_updated_consistently(project, {"db_port": "6543"}, env_before)


@pytest.mark.full
@pytest.mark.parametrize("changes", FREE_ANSWERS.values(), ids=FREE_ANSWERS.keys())
def test_each_free_answer_can_change_on_update(project, changes):
    env_before = snapshot(project)
    assert mismatches(project) == []
    update(project, *data_args(changes))
    assert_updated_consistently(project, changes, env_before)


def assert_refused(project: Path, question: str, value: str) -> None:
    before = contents(project)
    old = as_typed(project)[question]
    result = copier_cli("update", "--defaults", "--data", f"{question}={value}", cwd=project)
    assert result.returncode != 0, f"{question}={value} was accepted"
    message = " ".join(result.stderr.split())
    for needed in (question, f'"{old}"', f'"{value}"', f"Keep {question}={old}", "make backup", "make restore"):
        assert needed in message, f"the refusal of {question} does not say {needed!r}: {message[-1500:]}"
    assert contents(project) == before and git(project, "status", "--porcelain") == ""


@pytest.mark.full
def test_an_answer_the_data_volume_pins_is_refused_on_update(project):
    assert_refused(project, "db_user", PINNED_ANSWERS["db_user"])
    # the recorded values themselves go through
    same = {name: as_typed(project)[name] for name in PINNED_ANSWERS}
    update(project, *data_args(same))
    assert git(project, "status", "--porcelain") == ""


@pytest.mark.full
@pytest.mark.parametrize("question", [name for name in PINNED_ANSWERS if name != "db_user"])
def test_every_answer_the_data_volume_pins_is_refused_on_update(project, question):
    assert_refused(project, question, PINNED_ANSWERS[question])


def test_pinned_answers_are_free_on_the_first_copy(tmp_path, jinja_template):
    """copier.yml's validators, in Copier's own `run_copy` (as the CLI calls it):
    no recorded answers yet, so nothing is pinned; the answers file is rendered."""
    assert copy_in_process(jinja_template, PINNED_ANSWERS, tmp_path / "project") is None
    assert {name: as_typed(tmp_path / "project")[name] for name in PINNED_ANSWERS} == PINNED_ANSWERS


@pytest.mark.full
def test_an_existing_database_serves_the_project_after_every_free_answer_changed(project):
    """v1's database, initialised and used, restarted from the db/ files of an
    update that changed every free answer at once (the container rebuilt on the
    same volume); the backend, with its new environment, migrates and reads
    back what was written before."""
    venv = venv_for(project / "back")
    db = start_project_db(project)
    try:
        backend = Backend(project, db, venv)
        backend.manage("migrate", "--noinput", check=True)
        backend.manage("shell", "-c", "from personas.models import Usuario; "
                       "Usuario.objects.create_user('before', 'before@example.org', 'a-long-passphrase-1')",
                       check=True)
        db.stop()
        env_before = snapshot(project)
        changes = {name: value for case in FREE_ANSWERS.values() for name, value in case.items()}
        update(project, *data_args(changes))
        assert_updated_consistently(project, changes, env_before)

        db.rebuild()
        db.start()
        assert db.query("SHOW shared_buffers", **db.app) == [("512MB",)]  # tuned for 2048 MiB
        backend = Backend(project, db, venv)
        assert backend.compose_env["DB_HOST"] == changes["db_service"]
        backend.manage("migrate", "--noinput", check=True)
        result = backend.manage("shell", "-c", "from django.conf import settings; from personas.models import Usuario;"
                                " print(Usuario.objects.get(username='before').email, settings.TIME_ZONE,"
                                " settings.LANGUAGE_CODE)", check=True)
        read_back = result.stdout.splitlines()[-1].split()  # after the shell's own banner
        assert read_back == ["before@example.org", changes["timezone"], changes["language_code"]]
    finally:
        db.destroy()
