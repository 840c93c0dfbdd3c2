"""Account flows and mail in development, as rendered: the answer
`email_verification` reaches the backend's settings and contract, each choice
passes the generated backend's own tests, and the dev compose runs Mailpit
where only the backend reaches it (its web UI on 127.0.0.1 only).

The flows themselves, in Chromium with a real SMTP server, are in test_e2e.py;
the API's rules (single use, expiry, no enumeration, throttling, each mode) in
the generated back/personas/tests/test_accounts.py, which test_back_suite.py runs."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness import compose, dotenv, images
from harness.answers import alias, choices, recorded
from harness.render import EXAMPLES, example_answers

MODES = choices("email_verification")


def project_with(mode: str, render) -> Path:
    """A project answering `mode`: an example's if one does (rendered for other
    modules anyway), else the defaults with that answer."""
    for example in EXAMPLES:
        answers = example_answers(example.stem)
        if answers.get("email_verification", "optional") == mode:
            return render(answers)
    return render({"email_verification": mode})


@pytest.fixture(scope="module", params=MODES)
def mode_project(request, render, render_jinja) -> tuple[str, Path]:
    """project_with(mode); where no example answers the mode, only the *.jinja
    files (the settings and the documents the test reads are all rendered)."""
    mode = request.param
    if any(example_answers(example.stem).get("email_verification", "optional") == mode for example in EXAMPLES):
        return mode, project_with(mode, render)
    return mode, render_jinja({"email_verification": mode})


def settings_value(project: Path, name: str):
    slug = recorded(project)["project_slug"]
    tree = ast.parse((project / "back" / slug / "settings.py").read_text())
    [value] = [node.value for node in tree.body if isinstance(node, ast.Assign)
               and any(isinstance(target, ast.Name) and target.id == name for target in node.targets)]
    return ast.literal_eval(value)


def test_the_choice_is_the_backends_setting_and_is_documented(mode_project):
    mode, project = mode_project
    assert recorded(project)["email_verification"] == mode
    assert settings_value(project, "ACCOUNT_EMAIL_VERIFICATION") == mode
    assert f"email verification is `{mode}`" in (project / "docs/api-contract.md").read_text()
    assert f'ACCOUNT_EMAIL_VERIFICATION = "{mode}"' in (project / "back/README.md").read_text()


def test_the_default_is_optional(default_project):
    assert settings_value(default_project, "ACCOUNT_EMAIL_VERIFICATION") == "optional"


@pytest.mark.full
# optional is giga's (test_back_suite runs its suite), mandatory acme-pg18's (test_ci's
# smoke runs its suite): none is the choice no example makes.
@pytest.mark.parametrize("mode", ["none"])
def test_the_generated_backend_tests_pass_with_each_choice(mode, render, fresh_db_server):
    from harness.backend import Backend
    from harness.python import venv_for

    project = project_with(mode, render)
    backend = Backend(project, fresh_db_server(project), venv_for(project / "back"))
    result = backend.run("pytest", "-q", "-p", "no:cacheprovider", "personas", timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert re.search(r"\d+ passed", result.stdout)


# -- mail in development: Mailpit -------------------------------------------------
def test_mailpit_publishes_its_web_ui_on_loopback_only(example):
    mailpit = compose.load(example / "docker-compose.dev.yml")["services"]["mailpit"]
    assert re.fullmatch(r"axllent/mailpit:v\d+\.\d+\.\d+", mailpit["image"]), "an exact tag"
    assert mailpit["image"] == images.IMAGES["mailpit"], "the pin of includes/images.jinja"
    ui = urlsplit(f"//{mailpit['environment']['MP_UI_BIND_ADDR']}").port
    assert mailpit["ports"] == [f"127.0.0.1:{recorded(example)['mail_ui_port']}:{ui}"], "the UI only, on 127.0.0.1"


def test_mailpit_is_reached_by_the_backend_and_never_joins_the_database_network(example):
    a = recorded(example)
    services = compose.topology(example)
    assert a["network_name"] not in services["mailpit"]
    assert set(services["mailpit"]) == {f"{a['project_slug']}_app_network"}
    assert compose.resolves(services, "mailpit", a["db_service"]) == set()
    # EMAIL_URL of a new project's back/.env (and its example) names Mailpit's SMTP port
    mailpit = compose.load(example / "docker-compose.dev.yml")["services"]["mailpit"]
    smtp_port = urlsplit(f"//{mailpit['environment']['MP_SMTP_BIND_ADDR']}").port
    for env_file in ("back/.env", "back/.env.example"):
        url = urlsplit(dotenv.load(example / env_file)["EMAIL_URL"])
        assert (url.scheme, url.port) == ("smtp", smtp_port), env_file
        assert compose.resolves(services, "backend", url.hostname) == {"mailpit"}, env_file


def test_account_mails_link_to_the_frontends_origin(example):
    environments = compose.environments(example)
    assert environments["backend"]["FRONTEND_URL"] == environments["frontend"]["ORIGIN"]
    slug = recorded(example)["project_slug"]
    settings = (example / "back" / slug / "settings.py").read_text()
    assert f'env.str("FRONTEND_URL", "{environments["frontend"]["ORIGIN"]}")' in settings
    assert alias(recorded(example), "frontend") not in environments["backend"]["FRONTEND_URL"], \
        "a browser opens the links: the public origin, not the network alias"
    production = {service: compose.service_environment(example, "docker-compose.prod.yml", service)
                  for service in ("backend", "frontend")}
    assert production["backend"]["FRONTEND_URL"] == production["frontend"]["ORIGIN"] == \
        f"https://{recorded(example)['domain']}", "production mails link to the public site"
