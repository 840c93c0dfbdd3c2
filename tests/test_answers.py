"""Answers are data, never code: any free text either reaches every file
verbatim and leaves it valid in its own language, or is refused with a
message before anything is written (the answer sets and the rule:
harness.random_answers). Names the tools reserve are refused for the tools'
own reasons, and the env files can be made owner-only."""

from __future__ import annotations

import ast
import itertools
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import compose
from harness.answers import as_typed
from harness.random_answers import LANGUAGES, answer_sets, expected_refusal
from harness.render import REPO, copy_in_process, project_files, template_copy, validator

SECRETS = ("db_password", "db_admin_password", "db_monitor_password", "django_secret_key")
# Where compose hands each free-text answer to a container (secrets by
# env_file, the others by the compose file's `environment:`).
CONTAINER_VARIABLES = {
    "db": {"APP_DB_PASSWORD": "db_password", "POSTGRES_PASSWORD": "db_admin_password",
           "MONITOR_DB_PASSWORD": "db_monitor_password"},
    "backend": {"DB_PASSWORD": "db_password", "DJANGO_SECRET_KEY": "django_secret_key",
                "DJANGO_ADMIN_EMAIL": "admin_email"},
    "frontend": {"PUBLIC_PROJECT_NAME": "project_name"},
}
ENV_FILES = ("db/.env", "back/.env", "front/.env")


# ---------------------------------------------------------------------------
# What a rendered project must satisfy
# ---------------------------------------------------------------------------
def assert_files_valid(project, answers) -> None:
    for path in project_files(project):
        text = path.read_bytes().decode("utf-8")  # valid UTF-8, or UnicodeDecodeError
        if path.suffix == ".py":
            ast.parse(text, filename=str(path))
        elif path.suffix in {".yml", ".yaml"}:
            compose.parse(text)
        elif path.suffix == ".json":
            json.loads(text)
        for question in ("project_name", "admin_email"):
            # No answer is ever split across lines, in any file's idea of a line.
            value = answers[question]
            assert text.count(value) == sum(line.count(value) for line in text.splitlines()), (path, question)


def assert_answers_round_trip(project, answers) -> None:
    environments = compose.environments(project)
    for role, variables in CONTAINER_VARIABLES.items():
        for variable, question in variables.items():
            assert environments[role][variable] == answers[question], (role, variable)
    settings_py = next(project.glob("back/*/settings.py"))
    strings = {node.value for node in ast.walk(ast.parse(settings_py.read_text(encoding="utf-8")))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert answers["admin_email"] in strings
    assert answers["project_name"] + " API" in strings
    readmes = [project / "README.md", project / "db/README.md", project / "back/README.md"]
    for readme in readmes:
        lines = readme.read_text(encoding="utf-8").splitlines()
        assert any(line.startswith(f"# {answers['project_name']}") for line in lines), readme
    recorded = as_typed(project)
    assert (recorded["project_name"], recorded["admin_email"]) == (answers["project_name"], answers["admin_email"])
    assert not set(SECRETS) & set(recorded)
    # Numbers are what was typed.
    dev = yaml.safe_load((project / "docker-compose.dev.yml").read_text())["services"]
    assert dev["backend"]["ports"] == [f"127.0.0.1:{answers['backend_port']}:{answers['backend_port']}"]
    assert dev["frontend"]["ports"] == [f"127.0.0.1:{answers['frontend_port']}:{answers['frontend_port']}"]
    assert re.search(rf"^FROM postgres:{answers['postgres_version']}\b", (project / "db/Dockerfile").read_text(), re.M)


def assert_settings_import(project, answers) -> None:
    """The settings module, in a fresh interpreter of the backend's venv, with
    the environment compose gives the container; Django's checks pass."""
    from harness.python import venv_for
    back = project / "back"
    env = {"PATH": f"{venv_for(back) / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8", **compose.service_environment(project, "docker-compose.dev.yml", "backend")}
    script = ("import json, django; from django.conf import settings; django.setup();"
              "from django.core.management import call_command; call_command('check', fail_level='ERROR');"
              "print(json.dumps([settings.ADMIN_EMAIL, settings.SECRET_KEY, settings.DATABASES['default']['PASSWORD'],"
              " settings.SPECTACULAR_SETTINGS['TITLE'], settings.LANGUAGE_CODE]))")
    result = subprocess.run(["python", "-c", script], cwd=back, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [
        answers["admin_email"], answers["django_secret_key"], answers["db_password"],
        answers["project_name"] + " API", answers["language_code"]]


class ConfLoader:
    """One PostgreSQL per major; loads a project's postgresql.conf and
    pg_hba.conf the way the server reads them, and returns every error."""

    def __init__(self):
        self.servers = {}

    def errors(self, project) -> list:
        from harness.postgres import start_project_db
        major = int(re.search(r"^FROM postgres:(\d+)", (project / "db/Dockerfile").read_text(), re.M).group(1))
        if major not in self.servers:
            self.servers[major] = start_project_db(project)
        server = self.servers[major]
        shutil.copy(project / "db/postgresql.conf", server.config_file)
        shutil.copy(project / "db/pg_hba.conf", server.hba_file)
        # postgres -C parses the whole file and checks every value, without
        # starting a server (a 64 GiB shared_buffers needs no memory here).
        checked = server._run([str(server.bindir / "postgres"), "-D", str(server.data),
                               f"--config-file={server.config_file}", "-C", "shared_buffers"], check=False)
        sql = ("SELECT 'postgresql.conf', line_number, name, error FROM pg_file_settings"
               " WHERE error IS NOT NULL AND NOT (error = 'setting could not be applied'"
               "   AND name IN (SELECT name FROM pg_settings WHERE context = 'postmaster'))"
               " UNION ALL SELECT 'pg_hba.conf', line_number, '', error FROM pg_hba_file_rules WHERE error IS NOT NULL")
        found = server.psql_socket(f"\\pset tuples_only on\n{sql}", user=server.admin["user"], dbname="postgres")
        return ([checked.stderr] if checked.returncode else []) + [line for line in found.splitlines() if line.strip()]

    def close(self):
        for server in self.servers.values():
            server.destroy()


@pytest.fixture(scope="module")
def whole_template(tmp_path_factory):
    return template_copy(tmp_path_factory.mktemp("template") / "t", jinja_only=False)


def check_answers(answers, template, workdir, deep_template=None, deep=None) -> None:
    """Render `answers`; check the files that hold answers (template's *.jinja);
    with `deep`, also render the whole template and run `deep` on it."""
    workdir.mkdir(parents=True, exist_ok=True)
    destination = workdir / "project"
    shutil.rmtree(destination, ignore_errors=True)
    refusal = copy_in_process(template, answers, destination)
    expected = expected_refusal(answers)
    if expected:
        assert refusal and f"question '{expected}'" in refusal, (expected, refusal)
        assert not destination.exists(), "a refused answer must leave no directory behind"
        return
    assert refusal is None, refusal
    assert_files_valid(destination, answers)
    assert_answers_round_trip(destination, answers)
    if deep:
        whole = workdir / "whole"
        shutil.rmtree(whole, ignore_errors=True)
        assert copy_in_process(deep_template, answers, whole) is None
        deep(whole)


def examples(count: int) -> settings:
    return settings(max_examples=count, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@examples(25)
@given(answers=answer_sets())
def test_random_answers_render_valid_files_or_are_refused(answers, jinja_template, tmp_path_factory):
    check_answers(answers, jinja_template, tmp_path_factory.mktemp("random"))


@pytest.fixture(scope="module")
def conf_loader():
    loader = ConfLoader()
    yield loader
    loader.close()


@pytest.fixture(scope="module")
def renderers():
    """Two processes forked from this one (Copier's compiled templates
    included) that render answer sets side by side: the checks are CPU-bound."""
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("fork")) as pool:
        yield pool


@pytest.mark.full
@examples(50)
@given(batch=st.lists(answer_sets(), min_size=20, max_size=20))
def test_random_answers_render_valid_files_or_are_refused_many(batch, jinja_template, whole_template, conf_loader,
                                                               renderers, tmp_path_factory):
    """1,000 answer sets, 20 per example, rendered by two processes; the
    first of every other example is also rendered whole and run: the
    settings import with Django's checks passing, the .conf files load in
    PostgreSQL."""
    counter = next(_EXAMPLES)
    workdir = tmp_path_factory.getbasetemp() / "many"
    rendered = [renderers.submit(check_answers, answers, jinja_template, workdir / str(index))
                for index, answers in enumerate(batch)]
    if counter % 2 == 0:
        def deep(project):
            assert_settings_import(project, batch[0])
            assert conf_loader.errors(project) == []
        check_answers(batch[0], jinja_template, workdir / "deep", whole_template, deep)
    for future in rendered:
        future.result()


_EXAMPLES = itertools.count()


# ---------------------------------------------------------------------------
# Reserved names, checked against the tools themselves
# ---------------------------------------------------------------------------
DJANGO_VERDICTS = """
import json, sys
import django
from django.conf import settings
settings.configure()
django.setup()
from django.conf import global_settings
from django.utils.translation import trans_real
verdicts = {}
for code in json.loads(sys.stdin.read()):
    try:
        trans_real.get_supported_language_variant(code)
        verdicts[code] = bool(trans_real.language_code_re.match(code))
    except LookupError:
        verdicts[code] = False
translated = [code for code, _ in global_settings.LANGUAGES if trans_real.check_for_language(code)]
print(json.dumps({"languages": translated, "verdicts": verdicts}))
"""


@pytest.mark.full
def test_language_rule_is_the_pinned_djangos(jinja_template, giga_project):
    """includes/django_languages.txt is the pinned Django's LANGUAGES that it
    ships a translation for (all but ht in 6.1), and
    the validator accepts exactly the codes Django's translation.E004 check
    accepts (get_supported_language_variant), over every two-letter code and
    variants of every language."""
    from harness.python import venv_for
    generics = {code.split("-")[0] for code in LANGUAGES}
    candidates = sorted(
        {a + b for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdefghijklmnopqrstuvwxyz"}
        | set(LANGUAGES) | {"tlh", "yue", "fil", "haw", "qqq"}
        | {f"{g}-{suffix}" for g in generics | {"zz", "qq"} for suffix in ("us", "zz", "hans", "hant", "latn", "419")})
    result = subprocess.run([str(venv_for(giga_project / "back") / "bin/python"), "-c", DJANGO_VERDICTS],
                            input=json.dumps(candidates), capture_output=True, text=True, check=True, timeout=120)
    django = json.loads(result.stdout)
    assert django["languages"] == LANGUAGES, (
        "includes/django_languages.txt is not the pinned Django's translated LANGUAGES; regenerate it:\n"
        + "\n".join(django["languages"]))
    message = validator(jinja_template, "language_code")
    ours = {code: not message({"language_code": code}) for code in candidates}
    assert {c for c in candidates if ours[c] != django["verdicts"][c]} == set()
    assert sum(ours.values()) > 100 and not all(ours.values())


RESERVED_ROLES = ["public", "none", "current_role", "current_user", "session_user", "user", "system_user", "all",
                  "pg_monitor", "pg_app"]
ORDINARY_ROLES = ["app", "team_user", "admin", "postgres_app", "users", "publicity"]


@pytest.mark.full
def test_reserved_role_names_are_the_servers(jinja_template, giga_db):
    """Each name the validator refuses is one PostgreSQL refuses (CREATE ROLE
    quoted), reads as another role or keyword when unquoted (SELECT current_user),
    or pg_hba.conf reads as a keyword (all); each ordinary name works."""
    message = validator(jinja_template, "db_user")
    admin = {**giga_db.admin, "dbname": "postgres"}

    def outcome(sql: str) -> bool:
        try:
            giga_db.query(sql, host="127.0.0.1", **admin)
            return True
        except Exception:  # noqa: BLE001 - any server error is the answer
            return False

    for name in RESERVED_ROLES + ORDINARY_ROLES:
        refused = bool(message({"db_user": name, "db_admin_user": "postgres"}))
        created = outcome(f'CREATE ROLE "{name}"') and outcome(f'DROP ROLE "{name}"')
        keyword = outcome(f"SELECT {name}")
        assert refused == (not created or keyword or name == "all"), (name, refused, created, keyword)
        assert refused == (name in RESERVED_ROLES), name


# ---------------------------------------------------------------------------
# Env files: owner-only where it can be done without --trust
# ---------------------------------------------------------------------------
def test_new_project_makes_the_secrets_env_files_owner_only(tmp_path):
    """scripts/new-project, with its Copier already installed (the cache it
    would fill is pointed at this suite's Copier)."""
    cache = tmp_path / "cache"
    copier_bin = cache / "isolated-db-template/copier-9.19.1/bin"
    copier_bin.mkdir(parents=True)
    (copier_bin / "copier").symlink_to(shutil.which("copier") or os.path.join(os.path.dirname(sys.executable), "copier"))
    destination = tmp_path / "giga"
    result = subprocess.run([str(REPO / "scripts/new-project"), str(destination), "--defaults", "--vcs-ref", "HEAD"],
                            capture_output=True, text=True, env={**os.environ, "XDG_CACHE_HOME": str(cache)},
                            stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 0, result.stderr
    for name in ("db/.env", "back/.env"):
        assert (destination / name).stat().st_mode & 0o777 == 0o600, name
    # no secret, and read by the development frontend's container user
    assert (destination / "front/.env").stat().st_mode & 0o777 == 0o644
    assert (destination / "README.md").stat().st_mode & 0o777 == 0o644, "only the secrets' files are tightened"


def test_plain_copier_copy_says_how_to_protect_the_env_files(cli_default_copy):
    result, _ = cli_default_copy
    assert result.returncode == 0, result.stderr
    assert "chmod 600 db/.env back/.env" in result.stderr + result.stdout
