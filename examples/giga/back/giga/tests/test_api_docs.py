import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db


def browser(user=None):
    """A browser's session: logged in at /admin/ as `user`, if any."""
    client = Client()
    if user:
        client.force_login(user)
    return client


@pytest.mark.parametrize("who", ["anonymous", "user", "staff"])
def test_docs_are_for_anyone_when_public(settings, who, user, staff):
    settings.API_DOCS_PUBLIC = True
    response = browser({"anonymous": None, "user": user, "staff": staff}[who]).get("/api/docs/")
    assert response.status_code == 200
    assert b'<div id="swagger-ui">' in response.content


@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_docs_send_everyone_but_staff_to_the_admin_login(settings, who, user):
    settings.API_DOCS_PUBLIC = False
    for path in ("/api/docs/", "/api/docs/?script="):
        response = browser(user if who == "user" else None).get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/?next=/api/docs/")


def test_docs_for_staff_come_from_this_server_under_its_csp(settings, staff):
    settings.API_DOCS_PUBLIC = False
    client = browser(staff)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    # Every script and stylesheet is this server's; the one inline style has the nonce.
    match = re.search(r"'nonce-([^']+)'", policy)
    assert match is not None, policy
    nonce = match.group(1)
    assert re.findall(r"<style nonce=\"([^\"]+)\">", html) == [nonce]
    assert "<script>" not in html
    *assets, script_url = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) == 4, assets  # icon, stylesheet, two bundles
    for asset in assets:
        assert asset.startswith("/static/") and finders.find(asset.removeprefix("/static/")), asset
    assert script_url == "/api/docs/?script="
    script = client.get(script_url)
    assert script["Content-Type"].startswith("application/javascript")
    assert b"/api/schema/" in script.content
