"""Bad answers are refused up front: non-zero exit, a message naming the
question and the rule, and nothing written. Good but awkward answers
(passwords of any printable character) render into valid files."""

from __future__ import annotations

import pytest
import yaml

from harness import dotenv
from harness.inputs import AWKWARD_PASSWORDS
from harness.render import REPO, copier_cli, data_args

BAD_ANSWERS = [
    # (answers, question named, words of the rule)
    ({"project_name": ""}, "project_name", "must not be empty"),
    ({"project_name": "x" * 61}, "project_name", "at most 60"),
    ({"project_slug": "my app"}, "project_slug", "^[a-z][a-z0-9_]{0,29}$"),
    ({"project_slug": "Giga"}, "project_slug", "lowercase"),
    ({"project_slug": "1giga"}, "project_slug", "^[a-z]"),
    ({"project_slug": "a" * 31}, "project_slug", "up to 29"),
    ({"project_slug": "django"}, "project_slug", "shadow a Python module"),
    ({"project_slug": "granian"}, "project_slug", "shadow a Python module"),
    ({"db_service": "giga_db"}, "db_service", "no underscore"),
    ({"db_service": "-giga"}, "db_service", "RFC 1123"),
    ({"db_name": "a" * 64}, "db_name", "at most 63 bytes"),
    ({"db_name": "postgres"}, "db_name", "system database"),
    ({"db_name": "Giga-DB"}, "db_name", "PostgreSQL identifier"),
    ({"db_user": "postgres"}, "db_user", "superuser"),
    ({"db_user": "admin", "db_admin_user": "admin"}, "db_user", "must differ from db_admin_user"),
    ({"db_user": "giga user"}, "db_user", "PostgreSQL identifier"),
    ({"db_port": 0}, "db_port", "between 1024 and 65535"),
    ({"db_port": 80}, "db_port", "between 1024 and 65535"),
    ({"backend_port": 65536}, "backend_port", "between 1024 and 65535"),
    ({"frontend_port": "abc"}, "frontend_port", "integer TCP port"),
    ({"db_host_port": 8000}, "backend_port", "must differ from db_host_port"),
    ({"frontend_port": 8000}, "frontend_port", "must differ from backend_port"),
    ({"db_password": ""}, "db_password", "must not be empty"),
    ({"db_password": "two\nlines"}, "db_password", "control characters"),
    ({"db_admin_password": "tab\there"}, "db_admin_password", "control characters"),
    ({"django_secret_key": "short"}, "django_secret_key", "at least 50"),
    ({"postgres_version": 14}, "postgres_version", "[15, 16, 17, 18]"),
    ({"timezone": "Mars/Base"}, "timezone", "IANA time zone"),
    ({"db_memory_mb": 10}, "db_memory_mb", "between 256 and 65536"),
    ({"network_name": "bad network"}, "network_name", "Docker network name"),
    ({"language_code": "English"}, "language_code", "language tag"),
    ({"admin_email": "nobody"}, "admin_email", "e-mail address"),
]


@pytest.mark.parametrize("answers, question, rule", BAD_ANSWERS,
                         ids=[f"{q}-{i}" for i, (_, q, _) in enumerate(BAD_ANSWERS)])
def test_bad_answer_is_refused_and_writes_nothing(tmp_path, answers, question, rule):
    destination = tmp_path / "project"
    result = copier_cli("copy", "--defaults", "--vcs-ref", "HEAD", *data_args(answers), str(REPO), str(destination))
    assert result.returncode != 0, f"accepted {answers}"
    message = result.stderr.strip().splitlines()[-1]
    assert question in message and rule in message, message
    assert not destination.exists(), "a refused answer must not leave a directory behind"




@pytest.fixture(scope="session")
def awkward_project(tmp_path_factory):
    """Rendered through the CLI, as a user would type the answers."""
    destination = tmp_path_factory.mktemp("awkward") / "project"
    result = copier_cli("copy", "--defaults", "--vcs-ref", "HEAD", *data_args(AWKWARD_PASSWORDS),
                        str(REPO), str(destination))
    assert result.returncode == 0, result.stderr
    return destination


def test_awkward_passwords_arrive_verbatim_in_the_db_env(awkward_project):
    env = dotenv.load(awkward_project / "db/.env")
    assert env["APP_DB_PASSWORD"] == AWKWARD_PASSWORDS["db_password"]
    assert env["POSTGRES_PASSWORD"] == AWKWARD_PASSWORDS["db_admin_password"]


def test_awkward_passwords_leave_every_file_valid(awkward_project):
    for path in awkward_project.rglob("*"):
        if path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(path.read_text())
        if path.name.startswith(".env"):
            dotenv.load(path)
    answers = (awkward_project / ".copier-answers.yml").read_text()
    assert not any(secret in answers for secret in AWKWARD_PASSWORDS.values())


def test_copy_needs_no_trust(tmp_path):
    destination = tmp_path / "project"
    result = copier_cli("copy", "--defaults", "--vcs-ref", "HEAD", str(REPO), str(destination))
    assert result.returncode == 0, result.stderr
    assert (destination / "db/docker-compose.yml").is_file()


def test_awkward_passwords_arrive_verbatim_in_the_backend_env(awkward_project):
    env = dotenv.load(awkward_project / "back/.env")
    assert env["DB_PASSWORD"] == AWKWARD_PASSWORDS["db_password"]
    assert env["DJANGO_SECRET_KEY"] == AWKWARD_PASSWORDS["django_secret_key"]
