"""Mail leaves the request path: with a real SMTP server that takes seconds
per message, a password reset answers as fast for an address that has an
account as for one that has none (the timing tells an attacker nothing, and
no server thread waits on SMTP), and the mail still arrives, sent by the
backend's worker, run as the dev compose runs it."""

from __future__ import annotations

import statistics
import time

import pytest

from harness.backend import Backend, http
from harness.mail import smtp_server
from harness.postgres import start_project_db
from harness.python import venv_for

SMTP_DELAY = 2.0  # seconds per message: a synchronous send would add this to each answer
ROUNDS = 8
KNOWN, UNKNOWN = "known@example.com", "unknown@example.com"


@pytest.mark.full
def test_a_reset_answers_as_fast_for_a_known_address_and_its_mail_arrives_through_the_worker(giga_project):
    db = start_project_db(giga_project)
    try:
        backend = Backend(giga_project, db, venv_for(giga_project / "back"))
        backend.manage("migrate", "--noinput", check=True)
        backend.manage("shell", "-c", "from personas.models import Usuario; "
                       f"Usuario.objects.create_user('known', {KNOWN!r}, 'Known-pass-12345')", check=True)
        with smtp_server(delay=SMTP_DELAY) as inbox:
            env = {"EMAIL_URL": inbox.url, "DJANGO_RATE_MAIL_ACCOUNT": "1000/hour",
                   "DJANGO_RATE_MAIL_CLIENT": "1000/hour"}
            with backend.serve(env=env) as (base, _), backend.work(env=env):
                seconds: dict[str, list[float]] = {KNOWN: [], UNKNOWN: []}
                for round_ in range(ROUNDS):
                    # Alternated, so that both see the same load.
                    for email in (KNOWN, UNKNOWN) if round_ % 2 else (UNKNOWN, KNOWN):
                        started = time.perf_counter()
                        status, body, _ = http("POST", f"{base}/api/auth/password/reset/", {"email": email})
                        seconds[email].append(time.perf_counter() - started)
                        assert status == 202, body
                known, unknown = (statistics.median(seconds[email]) for email in (KNOWN, UNKNOWN))
                assert known < SMTP_DELAY / 4, seconds
                assert abs(known - unknown) <= max(0.05, 0.5 * min(known, unknown)), seconds
                message = inbox.wait_for(KNOWN, "Reset your password", timeout=SMTP_DELAY * ROUNDS + 60)
                assert "/reset/" in message.get_body(("plain",)).get_content()
                assert not [recipients for recipients, _ in inbox.messages if UNKNOWN in recipients]
    finally:
        db.destroy()
