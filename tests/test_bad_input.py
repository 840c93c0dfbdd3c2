"""Bad answers are refused up front: non-zero exit, a message naming the
question and the rule, and nothing written. Good but awkward answers
(passwords of any printable character) render into valid files."""

from __future__ import annotations

import ast

import pytest

from harness import compose, dotenv
from harness.answers import as_typed, choices, recorded
from harness.inputs import AWKWARD_PASSWORDS, AWKWARD_TEXT
from harness.render import REPO, copier_cli, copy_in_process, data_args, example_answers

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
    ({"db_user": "a" * 64}, "db_user", "at most 63 bytes"),
    ({"db_port": 0}, "db_port", "between 1024 and 65535"),
    ({"db_port": 80}, "db_port", "between 1024 and 65535"),
    ({"backend_port": 65536}, "backend_port", "between 1024 and 65535"),
    ({"frontend_port": "abc"}, "frontend_port", "integer TCP port"),
    ({"db_host_port": 8000}, "backend_port", "must differ from db_host_port"),
    ({"domain": "https://app.example.com"}, "domain", "no scheme, port, path"),
    ({"domain": "app.example.com:8443"}, "domain", "lower-case host name"),
    ({"domain": "App.example.com"}, "domain", "lower-case host name"),
    ({"domain": "app.example.com."}, "domain", "trailing dot"),
    ({"domain": "app_1.example.com"}, "domain", "host name"),
    ({"domain": "-app.example.com"}, "domain", "host name"),
    ({"domain": "a" * 64 + ".example.com"}, "domain", "at most 63 characters"),
    ({"domain": ".".join(["a" * 60] * 5)}, "domain", "at most 253"),
    ({"domain": "192.168.1.10"}, "domain", "not an IP address"),
    ({"kubernetes": True, "k8s_instances_production": "0"}, "k8s_instances_production", "between 1 and 9"),
    ({"kubernetes": True, "k8s_instances_production": "10"}, "k8s_instances_production", "between 1 and 9"),
    ({"kubernetes": True, "k8s_instances_production": "03"}, "k8s_instances_production", "plain decimal digits"),
    ({"frontend_port": 8000}, "frontend_port", "backend_port (8000)"),
    ({"db_password": ""}, "db_password", "must not be empty"),
    ({"db_password": "two\nlines"}, "db_password", "control characters"),
    ({"db_admin_password": "tab\there"}, "db_admin_password", "control characters"),
    ({"django_secret_key": "short"}, "django_secret_key", "at least 50"),
    ({"postgres_version": 14}, "postgres_version", f"is not in {choices('postgres_version')}"),
    ({"timezone": "Mars/Base"}, "timezone", "IANA time zone"),
    ({"db_memory_mb": 10}, "db_memory_mb", "between 256 and 65536"),
    ({"network_name": "bad network"}, "network_name", "Docker network name"),
    ({"language_code": "English"}, "language_code", "language tag"),
    ({"admin_email": "nobody"}, "admin_email", "e-mail address"),
    # addresses Django's mail cannot send from: refused here, not by the first mail
    ({"admin_email": "ü@example.com"}, "admin_email", "that mail can be sent from"),
    ({"admin_email": "a]b@example.com"}, "admin_email", "that mail can be sent from"),
    ({"admin_email": '"a b"@example.com'}, "admin_email", "that mail can be sent from"),
    ({"email_verification": "sometimes"}, "email_verification", f"is not in {choices('email_verification')}"),
    ({"mail_ui_port": 80}, "mail_ui_port", "between 1024 and 65535"),
    ({"mail_ui_port": 5173}, "mail_ui_port", "frontend_port (5173)"),
    ({"acme_email": "nobody"}, "acme_email", "e-mail address"),
    ({"acme_email": '"o\\"brien"@example.com'}, "acme_email", "plain address"),
    ({"acme_email": "ops@giga.localhost"}, "acme_email", "not on .localhost"),
    # Numbers as typed: YAML would read these as other numbers (octal, hex,
    # 1_000), or they are not plain integers at all.
    *[({question: typed}, question, "plain decimal digits")
      for question, typed in [
          ("backend_port", "010000"), ("backend_port", "0x1F90"), ("frontend_port", "1_000"),
          ("db_port", "+5432"), ("db_port", "5432.0"), ("db_host_port", "1e4"), ("db_host_port", "true"),
          ("frontend_port", " 5174"), ("backend_port", "8001 "), ("db_port", "-5432"), ("db_port", "0o17"),
          ("db_memory_mb", "01024"), ("db_memory_mb", "0x400"), ("db_memory_mb", "1_024"), ("db_memory_mb", "1024.0"),
          ("db_memory_mb", "2e3"), ("db_memory_mb", "+2048")]],
    *[({"postgres_version": typed}, "postgres_version", "is not in")
      for typed in ["016", "0x10", "16.0", "+16", "1_6", " 16"]],
    # Role names PostgreSQL reserves or reads as another role, and its prefix.
    *[({question: name}, question, "reserved")
      for question, name in [
          ("db_user", "public"), ("db_user", "none"), ("db_user", "current_user"), ("db_user", "session_user"),
          ("db_admin_user", "current_role"), ("db_admin_user", "user"), ("db_admin_user", "system_user"),
          ("db_admin_user", "public"), ("db_user", "all"), ("db_user", "pg_app"), ("db_admin_user", "pg_monitor")]],
    # Database names pg_hba.conf reads as keywords.
    *[({"db_name": name}, "db_name", "reserved word in pg_hba.conf")
      for name in ["all", "sameuser", "samerole", "samegroup", "replication"]],
    # Docker's predefined networks.
    *[({"network_name": name}, "network_name", "Docker predefines")
      for name in ["host", "bridge", "none", "default"]],
    ({"network_name": "giga_app_network"}, "network_name", "the database must stay off"),
    ({"network_name": "giga_db_default"}, "network_name", "the database project's own network"),
    # Host names taken on the network, or read as IPv4 addresses.
    *[({"db_service": name}, "db_service", "already taken")
      for name in ["localhost", "backend", "frontend", "exporter", "backup", "giga-backend", "giga-frontend",
                   "migrate", "caddy", "giga-caddy"]],
    *[({"db_service": name}, "db_service", "IPv4 address") for name in ["1234", "0x7f000001", "2130706433"]],
    # Languages Django ships no translation for.
    *[({"language_code": code}, "language_code", "Django ships")
      for code in ["zz", "xx-yy", "qq", "tlh", "sx-us", "yi-us", "ht"]],
    *[({"language_code": code}, "language_code", "language tag") for code in ["EN-US", "en-US", "en_us", "e", "en-us-x"]],
    # A trailing newline: `$` in a pattern would let it through.
    *[({question: value + "\n"}, question, "")
      for question, value in [("project_slug", "giga"), ("db_service", "giga-db"), ("db_name", "giga"),
                              ("db_user", "app"), ("db_admin_user", "root"), ("network_name", "giga_net"),
                              ("language_code", "es"), ("admin_email", "a@b.org"), ("backend_port", "8001"),
                              ("domain", "app.example.com")]],
    # Free text that ends a line in some file's language, or no UTF-8 file can hold.
    *[({question: f"a{char}b"}, question, "single line")
      for question, char in [("project_name", "\r"), ("project_name", "\x0b"), ("project_name", "\x0c"),
                             ("project_name", "\x1c"), ("project_name", "\x85"), ("project_name", "\u2028"),
                             ("project_name", "\u2029"), ("project_name", "\x00"), ("admin_email", "\x1e"),
                             ("db_password", "\x85"), ("db_admin_password", "\u2028")]],
]


def bad_answer_ids(cases):
    return [f"{q}-{i}" for i, (_, q, _) in enumerate(cases)]


@pytest.mark.parametrize("answers, question, rule", BAD_ANSWERS, ids=bad_answer_ids(BAD_ANSWERS))
def test_bad_answer_is_refused_and_writes_nothing(tmp_path, jinja_template, answers, question, rule):
    """Copier's own path (`run_copy`, as the CLI calls it), in this process."""
    destination = tmp_path / "project"
    message = copy_in_process(jinja_template, answers, destination)
    assert message is not None, f"accepted {answers}"
    assert question in message and rule in message, message
    assert not destination.exists(), "a refused answer must not leave a directory behind"


# One in seven, as typed on a command line (which cannot carry NUL).
CLI_SAMPLE = [case for case in BAD_ANSWERS[::7] if "\x00" not in "".join(map(str, case[0].values()))]


# A process per answer: the full tier (run_copy above refuses each in the quick one).
@pytest.mark.full
@pytest.mark.parametrize("answers, question, rule", CLI_SAMPLE, ids=bad_answer_ids(CLI_SAMPLE))
def test_bad_answer_is_refused_by_the_cli(tmp_path, answers, question, rule):
    """The same, as a user types it: `--data` strings, a non-zero exit, the
    message on the last line."""
    destination = tmp_path / "project"
    result = copier_cli("copy", "--defaults", "--vcs-ref", "HEAD", *data_args(answers), str(REPO), str(destination))
    assert result.returncode != 0, f"accepted {answers}"
    message = result.stderr.strip().splitlines()[-1]
    assert question in message and rule in message, message
    assert not destination.exists(), "a refused answer must not leave a directory behind"


def names_on_the_networks(project) -> tuple[set[str], set[str]]:
    """(host names, network names) the rendered compose files use for
    anything but the database service and its network."""
    a = recorded(project)
    hosts, networks = set(), set()
    for relative in (*compose.COMPOSE_FILES, "docker-compose.prod.yml"):
        document = compose.load(project / relative)
        for name, service in document["services"].items():
            if name != a["db_service"]:
                hosts |= {name, service.get("container_name", name), service.get("hostname", name)}
                hosts |= set().union(*compose.service_networks(document, service).values())
        networks |= {compose.network_name(document, key) for key in document.get("networks") or {}}
    return hosts, networks - {a["network_name"]}


@pytest.mark.parametrize("question", ["db_service", "network_name"])
def test_a_name_already_in_the_compose_files_is_refused(giga_project, jinja_template, tmp_path, question):
    """Whatever services and networks the compose files gain, the database's
    host name and network cannot collide with theirs."""
    hosts, networks = names_on_the_networks(giga_project)
    taken = hosts if question == "db_service" else networks
    assert taken, "the compose files name no other host or network"
    accepted = {}
    for index, name in enumerate(sorted(taken)):
        message = copy_in_process(jinja_template, {**example_answers("giga"), question: name}, tmp_path / str(index))
        if message is None or question not in message:
            accepted[name] = message
    assert not accepted, f"{question} accepted names already in use: {accepted}"


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
            compose.parse(path.read_text())
        if path.name.startswith(".env"):
            dotenv.load(path)
    answers = (awkward_project / ".copier-answers.yml").read_text()
    assert not any(secret in answers for secret in AWKWARD_PASSWORDS.values())


def test_copy_needs_no_trust(cli_default_copy):
    result, destination = cli_default_copy
    assert result.returncode == 0, result.stderr
    assert (destination / "db/docker-compose.yml").is_file()


def test_awkward_passwords_arrive_verbatim_in_the_backend_env(awkward_project):
    env = dotenv.load(awkward_project / "back/.env")
    assert env["DB_PASSWORD"] == AWKWARD_PASSWORDS["db_password"]
    assert env["DJANGO_SECRET_KEY"] == AWKWARD_PASSWORDS["django_secret_key"]


def test_lone_surrogate_in_a_data_file_is_refused(tmp_path):
    """YAML's "\\ud83d" escape is half an emoji: no UTF-8 file can hold it."""
    data = tmp_path / "answers.yml"
    data.write_text('project_name: "Giga \\ud83d"\n')
    destination = tmp_path / "project"
    result = copier_cli("copy", "--defaults", "--vcs-ref", "HEAD", "--data-file", str(data), str(REPO), str(destination))
    assert result.returncode != 0
    assert "project_name" in result.stderr and "lone surrogate" in result.stderr, result.stderr
    assert not destination.exists()


@pytest.fixture(scope="session")
def awkward_text_project(tmp_path_factory):
    destination = tmp_path_factory.mktemp("awkward-text") / "project"
    result = copier_cli("copy", "--defaults", "--vcs-ref", "HEAD", *data_args(AWKWARD_TEXT), str(REPO), str(destination))
    assert result.returncode == 0, result.stderr
    return destination


def python_strings(path) -> set[str]:
    """Every string literal of a Python file, as Python reads it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_awkward_text_is_a_string_in_settings(awkward_text_project):
    """A quote in an answer is a quote, not the end of a string literal; an
    emoji is one character, not a surrogate pair."""
    strings = python_strings(next(awkward_text_project.glob("back/*/settings.py")))
    assert AWKWARD_TEXT["admin_email"] in strings
    assert AWKWARD_TEXT["project_name"] + " API" in strings


def test_awkward_text_arrives_verbatim_in_the_containers_environment(awkward_text_project):
    """Quotes, backslashes, `$HOME` and emoji in the compose files'
    `environment:` reach the containers as typed (compose_str)."""
    environments = compose.environments(awkward_text_project)
    assert environments["backend"]["DJANGO_ADMIN_EMAIL"] == AWKWARD_TEXT["admin_email"]
    assert environments["frontend"]["PUBLIC_PROJECT_NAME"] == AWKWARD_TEXT["project_name"]


def test_awkward_text_is_one_line_of_utf8_everywhere(awkward_text_project):
    name = AWKWARD_TEXT["project_name"]
    for readme in ("README.md", "db/README.md", "back/README.md"):
        lines = (awkward_text_project / readme).read_bytes().decode("utf-8").splitlines()
        assert any(line.startswith(f"# {name}") for line in lines), readme
    for conf in ("db/pg_hba.conf", "db/postgresql.conf", ".gitignore"):
        lines = (awkward_text_project / conf).read_bytes().decode("utf-8").splitlines()
        assert any(line.startswith("#") and name in line for line in lines), conf
    recorded = as_typed(awkward_text_project)
    assert (recorded["project_name"], recorded["admin_email"]) == (AWKWARD_TEXT["project_name"], AWKWARD_TEXT["admin_email"])


@pytest.mark.parametrize("text", ["non\ufffecharacter", "non\uffffcharacter", "quote \" back \\ dollar $$ {x}"])
def test_text_yaml_cannot_hold_raw_arrives_verbatim_in_the_containers_environment(tmp_path, jinja_template, text):
    """YAML refuses U+FFFE and U+FFFF written as they are: the compose files
    escape them, and everything else compose or YAML would read as syntax."""
    answers = {"project_name": f"Giga {text}", "admin_email": "o'hara+{x}$$@example.org"}
    # the compose files and the env files they read are all rendered from *.jinja (or kept: front/.env)
    assert copy_in_process(jinja_template, answers, tmp_path / "project") is None
    environments = compose.environments(tmp_path / "project")
    assert environments["frontend"]["PUBLIC_PROJECT_NAME"] == answers["project_name"]
    assert environments["backend"]["DJANGO_ADMIN_EMAIL"] == answers["admin_email"]
