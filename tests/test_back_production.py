"""Full tier: the backend under its production settings: `check --deploy`
passes and catches non-production choices, the image's collectstatic and
the admin's static files, CSRF_TRUSTED_ORIGINS required, HSTS's opt-ins,
and server errors mailed to the admin through a real SMTP server.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from harness.answers import recorded as answers
from harness.backend import Backend, http, raw_request
from harness.back_project import production_env


@pytest.mark.full
def test_check_deploy_passes_with_production_settings(giga_backend, giga_project):
    result = giga_backend.manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(giga_project))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.full
def test_check_deploy_catches_non_production_choices(giga_backend, giga_project):
    env = production_env(giga_project)
    console_mail = giga_backend.manage("check", "--deploy", "--fail-level", "WARNING",
                                       env={**env, "EMAIL_URL": "console://"})
    assert console_mail.returncode == 1 and "mail.E001" in console_mail.stderr
    no_tls = giga_backend.manage("check", "--deploy", "--fail-level", "WARNING",
                                 env={**env, "DJANGO_SECURE_PROXY": "0"})
    assert no_tls.returncode == 1 and "security.W008" in no_tls.stderr and "security.W004" in no_tls.stderr
    missing = giga_backend.manage("check", env={**env, "DJANGO_ALLOWED_HOSTS": ""})
    assert missing.returncode == 1 and "DJANGO_ALLOWED_HOSTS" in missing.stderr


@pytest.mark.full
def test_production_stage_collects_and_serves_the_admins_static_files(giga_project, giga_db, backend_venv,
                                                                      tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["cp", "-a", str(giga_project / "back"), str(project / "back")], check=True)
    # the backend's environment: back/.env and this file's `environment:`
    shutil.copy(giga_project / "docker-compose.dev.yml", project)
    backend = Backend(project, giga_db, backend_venv)
    # the image's `RUN ... collectstatic`, with the production stage's ENV and
    # no secrets (a build has none)
    (collect,) = [run for run in backend.stage.runs if "collectstatic" in run]
    result = backend.run("sh", "-c", collect, env={**backend.stage.env, "DB_PASSWORD": "", "DJANGO_SECRET_KEY": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / "back/staticfiles/staticfiles.json").is_file()
    with backend.serve(env=production_env(giga_project)) as (base, _):
        https = {"X-Forwarded-Proto": "https"}
        status, text, _ = http("GET", f"{base}/admin/login/", headers=https)
        assert status == 200 and "csrfmiddlewaretoken" in text
        css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', text)
        assert css, "hashed static names (manifest storage)"
        assert http("GET", base + css.group(1), headers=https)[0] == 200
        # plain HTTP: the admin is redirected to HTTPS, the API (internal calls, health) is not
        assert http("GET", f"{base}/admin/login/")[0] == 301
        assert http("GET", f"{base}/api/health/")[0] == 200


@pytest.mark.full
def test_production_requires_csrf_trusted_origins(giga_backend, giga_project):
    env = production_env(giga_project)
    for missing in ({"DJANGO_CSRF_TRUSTED_ORIGINS": ""}, {"DJANGO_CSRF_TRUSTED_ORIGINS": " , "}):
        result = giga_backend.manage("check", env={**env, **missing})
        assert result.returncode == 1
        assert "ImproperlyConfigured" in result.stderr and "DJANGO_CSRF_TRUSTED_ORIGINS" in result.stderr.strip().splitlines()[-1]
    result = giga_backend.manage("shell", "-c", "from django.conf import settings; print(settings.CSRF_TRUSTED_ORIGINS)",
                                 env={**env, "DJANGO_CSRF_TRUSTED_ORIGINS": "https://admin.example.com"})
    assert result.stdout.strip().splitlines()[-1] == "['https://admin.example.com']"


@pytest.mark.full
def test_hsts_subdomains_and_preload_are_opt_in(giga_backend, giga_project):
    env = production_env(giga_project)
    https = [("X-Forwarded-Proto", "https")]
    with giga_backend.serve(env=env) as (base, _):
        status, headers, _ = raw_request(base, "GET", "/api/health/", headers=https)
        assert status == 200 and headers["strict-transport-security"] == "max-age=31536000"
    opt_in = {**env, "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "1", "DJANGO_HSTS_PRELOAD": "1"}
    with giga_backend.serve(env=opt_in) as (base, _):
        status, headers, _ = raw_request(base, "GET", "/api/health/", headers=https)
        assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
    result = giga_backend.manage("check", "--deploy", "--fail-level", "WARNING", env=opt_in)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.full
def test_production_mails_server_errors_to_the_admin(giga_backend, giga_project, tmp_path):
    from harness.mail import smtp_server

    slug = answers(giga_project)["project_slug"]
    # the production settings plus one view that fails, as a bug would
    (tmp_path / "failing_settings.py").write_text(f"from {slug}.production import *\nROOT_URLCONF = 'failing_urls'\n")
    (tmp_path / "failing_urls.py").write_text(
        "from django.urls import path\n"
        f"from {slug}.urls import handler404, handler500, urlpatterns as project\n"
        "def fail(request):\n    raise RuntimeError('something broke')\n"
        "urlpatterns = [path('api/fail/', fail), *project]\n")
    admin_email = answers(giga_project)["admin_email"]
    with smtp_server() as inbox:
        env = {**production_env(giga_project), "EMAIL_URL": inbox.url,
               "DJANGO_SETTINGS_MODULE": "failing_settings", "PYTHONPATH": str(tmp_path)}
        with giga_backend.serve(env=env) as (base, _):
            status, headers, body = raw_request(base, "GET", "/api/fail/")
            assert (status, body) == (500, b'{"detail": "Internal server error."}'), body[-3000:]
            assert http("GET", f"{base}/api/nowhere/")[0] == 404
            message = inbox.wait_for(admin_email, "/api/fail/")
    assert len(inbox.messages) == 1, "one mail, for the 500 only"
    assert inbox.messages[0][0] == [admin_email]
    assert "ERROR" in message["Subject"]
    assert "something broke" in message.get_body(("plain",)).get_content()
