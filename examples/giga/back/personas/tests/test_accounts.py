"""Account flows (docs/api-contract.md): password reset, email verification,
changing the password and the address. Mail goes to Django's locmem outbox
(pytest-django's mailoutbox); its links are followed as the frontend does.
Expiry is tested by moving the token generators' clock, not by waiting."""

import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing
from knox.models import AuthToken

from personas import tokens
from personas.accounts import RESET_MAILED, VERIFICATION_MAILED, VERIFICATION_OFF
from personas.models import Usuario
from personas.serializers import INVALID_RESET_LINK, INVALID_VERIFICATION_LINK
from personas.views import EMAIL_NOT_VERIFIED

pytestmark = pytest.mark.django_db

FRONTEND = "https://app.example.com"
NEW_PASSWORD = "An0ther-good-passphrase"
VERIFYING = ["mandatory", "optional"]


@pytest.fixture(autouse=True)
def frontend(settings):
    settings.FRONTEND_URL = FRONTEND


def post(client, path, **body):
    return client.post(f"/api/auth/{path}", body, format="json")


def login(client, username, password):
    return post(client, "login/", username=username, password=password)


def signup(client, password, username="nueva"):
    response = post(client, "signup/", username=username, email=f"{username}@example.com", password=password)
    assert response.status_code == 201, response.json()
    return response.json()


def link(message, page):
    """The path after /<page>/ of the one frontend link in `message`."""
    found = re.findall(rf"^{re.escape(FRONTEND)}/{page}/(\S+)$", message.body, re.M)
    assert len(found) == 1, message.body
    return found[0]


def confirm_reset(client, message, new_password=NEW_PASSWORD):
    uid, token = link(message, "reset").split("/")
    return post(client, "password/reset/confirm/", uid=uid, token=token, new_password=new_password)


def verify(client, message):
    return post(client, "email/verify/", key=link(message, "verify"))


@pytest.fixture
def verifying(settings):
    """Verification on, whatever this project answered (mandatory: the same links)."""
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"


@pytest.fixture
def later(monkeypatch, settings):
    """Moves the clock of both token generators past the links' lifetime, or short of it."""

    def travel(seconds):
        # Naive local time, as the generator's own _now() returns.
        def moved(self):
            return datetime.now() + timedelta(seconds=seconds)  # noqa: DTZ005 -- see above

        monkeypatch.setattr(PasswordResetTokenGenerator, "_now", moved)

    return travel


# -- password reset -------------------------------------------------------------
def test_reset_mails_a_plain_link_to_the_frontend(client, user, mailoutbox, settings):
    response = post(client, "password/reset/", email="ANA@example.com")
    assert response.status_code == 202
    assert response.json() == {"detail": RESET_MAILED}
    [message] = mailoutbox
    assert message.to == [user.email] and message.from_email == settings.DEFAULT_FROM_EMAIL
    assert settings.PROJECT_NAME in message.subject and message.content_subtype == "plain"
    assert re.fullmatch(r"[\w-]+/[0-9a-z]+-[0-9a-f]+", link(message, "reset"))


def test_reset_for_an_address_without_a_resettable_account_answers_the_same_and_mails_nothing(
    client, user, mailoutbox
):
    Usuario.objects.create_user("gone", "gone@example.com", "x-Strong-passw0rd", is_active=False)
    Usuario.objects.create_user("sso", "sso@example.com", None)  # no usable password
    known = post(client, "password/reset/", email=user.email)
    assert len(mailoutbox) == 1
    for email in ["nobody@example.com", "gone@example.com", "sso@example.com"]:
        other = post(client, "password/reset/", email=email)
        assert (other.status_code, other.json(), other.headers.get("Content-Type")) == (
            known.status_code,
            known.json(),
            known.headers.get("Content-Type"),
        ), email
    assert [message.to for message in mailoutbox] == [[user.email]]


def test_reset_sets_the_password_logs_every_session_out_and_verifies_the_address(
    client, user, user_client, password, mailoutbox
):
    post(client, "password/reset/", email=user.email)
    response = confirm_reset(client, mailoutbox[0])
    assert response.status_code == 200, response.json()
    assert response.json() == {"detail": "Your password was reset. Log in with the new one."}
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD) and user.email_verified
    assert not AuthToken.objects.filter(user=user).exists()
    assert user_client.get("/api/auth/me/").status_code == 401
    assert login(client, user.username, password).status_code == 400
    assert login(client, user.username, NEW_PASSWORD).status_code == 200


def test_a_reset_link_works_once(client, user, mailoutbox):
    post(client, "password/reset/", email=user.email)
    assert confirm_reset(client, mailoutbox[0]).status_code == 200
    again = confirm_reset(client, mailoutbox[0], "Yet-an0ther-passphrase")
    assert again.status_code == 400
    assert again.json() == {"non_field_errors": [INVALID_RESET_LINK]}
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_a_reset_link_dies_when_the_account_logs_in(client, user, password, mailoutbox):
    post(client, "password/reset/", email=user.email)
    login(client, user.username, password)
    assert confirm_reset(client, mailoutbox[0]).json() == {"non_field_errors": [INVALID_RESET_LINK]}


def test_a_reset_link_expires(client, user, mailoutbox, settings, later):
    post(client, "password/reset/", email=user.email)
    later(settings.PASSWORD_RESET_TIMEOUT + 1)
    response = confirm_reset(client, mailoutbox[0])
    assert (response.status_code, response.json()) == (400, {"non_field_errors": [INVALID_RESET_LINK]})
    later(settings.PASSWORD_RESET_TIMEOUT - 60)
    assert confirm_reset(client, mailoutbox[0]).status_code == 200


@pytest.mark.parametrize(
    "uid, token",
    [
        ("x", "y"),
        ("MQ", "1-abc"),
        ("bm90LWEtbnVtYmVy", "abc-def"),  # "not-a-number"
        ("OTk5OTk5OQ", "c1a2b3-0123456789abcdef"),  # no such user
    ],
)
def test_a_forged_reset_link_is_refused(client, user, uid, token):
    response = post(client, "password/reset/confirm/", uid=uid, token=token, new_password=NEW_PASSWORD)
    assert (response.status_code, response.json()) == (400, {"non_field_errors": [INVALID_RESET_LINK]})


def test_a_reset_link_for_another_account_is_refused(client, user, staff, mailoutbox):
    post(client, "password/reset/", email=user.email)
    _, token = link(mailoutbox[0], "reset").split("/")
    response = post(
        client, "password/reset/confirm/", uid=tokens.encode_uid(staff), token=token, new_password=NEW_PASSWORD
    )
    assert response.json() == {"non_field_errors": [INVALID_RESET_LINK]}


def test_reset_validates_the_new_password_and_keeps_the_link(client, user, mailoutbox):
    post(client, "password/reset/", email=user.email)
    weak = confirm_reset(client, mailoutbox[0], "password123")
    assert weak.status_code == 400
    assert list(weak.json()) == ["new_password"] and "too common" in weak.json()["new_password"][0]
    assert confirm_reset(client, mailoutbox[0]).status_code == 200


def test_reset_requests_are_throttled_per_address_and_per_client(client, user, settings, mailoutbox):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "mail_account": "2/min", "mail_client": "4/min"}
    for email in [user.email, "nobody@example.com"]:
        # The same for a known and an unknown address: the limit tells nothing either.
        statuses = [post(client, "password/reset/", email=email.upper()).status_code for _ in range(3)]
        assert statuses[:2] == [202, 202] and statuses[2] == 429, (email, statuses)
    refused = post(client, "password/reset/", email="third@example.com")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert len(mailoutbox) == 2


def test_resetting_needs_a_valid_address(client):
    response = post(client, "password/reset/", email="not-an-address")
    assert (response.status_code, list(response.json())) == (400, ["email"])


# -- email verification ---------------------------------------------------------
@pytest.mark.parametrize("mode, mails, verified", [("mandatory", 1, False), ("optional", 1, False), ("none", 0, None)])
def test_signup_mails_a_verification_link_unless_verification_is_off(
    client, password, settings, mailoutbox, mode, mails, verified
):
    settings.ACCOUNT_EMAIL_VERIFICATION = mode
    body = signup(client, password)
    assert body["email_verified"] is verified
    assert len(mailoutbox) == mails
    if mails:
        assert mailoutbox[0].to == ["nueva@example.com"] and settings.PROJECT_NAME in mailoutbox[0].subject


@pytest.mark.parametrize("mode", VERIFYING)
def test_the_link_verifies_the_address_once(client, password, settings, mailoutbox, mode):
    settings.ACCOUNT_EMAIL_VERIFICATION = mode
    signup(client, password)
    response = verify(client, mailoutbox[0])
    assert response.status_code == 200
    assert response.json() == {"detail": "Your email address nueva@example.com is verified."}
    assert Usuario.objects.get(username="nueva").email_verified
    again = verify(client, mailoutbox[0])
    assert (again.status_code, again.json()) == (400, {"non_field_errors": [INVALID_VERIFICATION_LINK]})


def test_a_verification_link_expires(client, password, settings, mailoutbox, later, verifying):
    signup(client, password)
    later(settings.PASSWORD_RESET_TIMEOUT + 1)
    assert verify(client, mailoutbox[0]).json() == {"non_field_errors": [INVALID_VERIFICATION_LINK]}
    later(settings.PASSWORD_RESET_TIMEOUT - 60)
    assert verify(client, mailoutbox[0]).status_code == 200


def test_a_forged_verification_key_is_refused(client):
    user = Usuario.objects.create_user("nueva", "nueva@example.com", "x-Strong-passw0rd")
    valid_token = tokens.EmailVerificationTokenGenerator(user.email).make_token(user)
    forged = [
        "garbage",
        # signed with another salt
        signing.dumps({"u": user.pk, "e": user.email, "t": valid_token}, salt="another"),
        # well signed, but the token is not the account's
        signing.dumps({"u": user.pk, "e": user.email, "t": "c1a2b3-0123"}, salt=tokens.VERIFICATION_SALT),
        # a valid key whose address was edited
        tokens.verification_key(user)[:-3] + "abc",
        signing.dumps(["not", "a", "dict"], salt=tokens.VERIFICATION_SALT),
    ]
    for key in forged:
        response = post(client, "email/verify/", key=key)
        assert (response.status_code, response.json()) == (400, {"non_field_errors": [INVALID_VERIFICATION_LINK]})
    user.refresh_from_db()
    assert not user.email_verified


def test_mandatory_verification_refuses_login_until_verified(client, password, settings, mailoutbox):
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    signup(client, password)
    refused = login(client, "nueva", password)
    assert (refused.status_code, refused.json()) == (403, {"detail": EMAIL_NOT_VERIFIED})
    # A wrong password gets the usual answer: the account's state is not told.
    assert login(client, "nueva", "wrong-password").status_code == 400
    assert not AuthToken.objects.exists()
    verify(client, mailoutbox[0])
    assert login(client, "nueva", password).status_code == 200


@pytest.mark.parametrize("mode, shown", [("optional", False), ("none", None)])
def test_without_mandatory_verification_unverified_accounts_log_in(client, password, settings, mode, shown):
    settings.ACCOUNT_EMAIL_VERIFICATION = mode
    signup(client, password)
    response = login(client, "nueva", password)
    assert response.status_code == 200
    assert response.json()["user"]["email_verified"] is shown


@pytest.mark.parametrize("mode", VERIFYING)
def test_resend_mails_unverified_accounts_only_and_answers_the_same(client, user, password, settings, mailoutbox, mode):
    settings.ACCOUNT_EMAIL_VERIFICATION = mode
    signup(client, password)
    user.email_verified = True
    user.save()
    mailoutbox.clear()
    for email in ["NUEVA@example.com", "nobody@example.com", user.email]:
        response = post(client, "email/verify/resend/", email=email)
        assert (response.status_code, response.json()) == (202, {"detail": VERIFICATION_MAILED}), email
    assert [message.to for message in mailoutbox] == [["nueva@example.com"]]
    assert verify(client, mailoutbox[0]).status_code == 200


def test_resend_is_throttled(client, password, settings, mailoutbox, verifying):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "mail_account": "2/min"}
    signup(client, password)  # the signup's mail counts too
    assert post(client, "email/verify/resend/", email="nueva@example.com").status_code == 202
    assert post(client, "email/verify/resend/", email="nueva@example.com").status_code == 429


def test_resend_is_not_found_when_verification_is_off(client, settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "none"
    response = post(client, "email/verify/resend/", email="x@example.com")
    assert (response.status_code, response.json()) == (404, {"detail": VERIFICATION_OFF})


def test_superusers_made_by_command_count_as_verified(db):
    assert Usuario.objects.create_superuser("root", "root@example.com", "x-Strong-passw0rd").email_verified
    assert not Usuario.objects.create_user("plain", "plain@example.com", "x-Strong-passw0rd").email_verified


# -- changing the password ------------------------------------------------------
def test_change_password_keeps_this_session_and_ends_the_others(client, user, user_client, password):
    _, other = AuthToken.objects.create(user)
    response = post(user_client, "password/change/", old_password=password, new_password=NEW_PASSWORD)
    assert response.status_code == 200, response.json()
    assert user_client.get("/api/auth/me/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {other}")
    assert client.get("/api/auth/me/").status_code == 401
    client.credentials()
    assert login(client, user.username, NEW_PASSWORD).status_code == 200


def test_change_password_needs_the_old_one_and_a_good_new_one(user_client, user, password):
    wrong = post(user_client, "password/change/", old_password="not-it", new_password=NEW_PASSWORD)
    assert (wrong.status_code, wrong.json()) == (400, {"old_password": ["Your old password was entered incorrectly."]})
    weak = post(user_client, "password/change/", old_password=password, new_password="ana")
    assert weak.status_code == 400 and list(weak.json()) == ["new_password"]
    user.refresh_from_db()
    assert user.check_password(password)


def test_change_password_is_throttled_like_login(user_client, settings, password):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_account": "2/min"}
    statuses = [post(user_client, "password/change/", old_password="guess", new_password=NEW_PASSWORD).status_code
                for _ in range(3)]
    assert statuses == [400, 400, 429]


@pytest.mark.parametrize("path", ["password/change/", "email/change/"])
def test_changes_need_a_login(client, path):
    assert post(client, path).status_code == 401


# -- changing the address -------------------------------------------------------
@pytest.mark.parametrize("mode", VERIFYING)
def test_a_new_address_replaces_the_old_once_its_link_is_followed(
    client, user, user_client, password, settings, mailoutbox, mode
):
    settings.ACCOUNT_EMAIL_VERIFICATION = mode
    response = post(user_client, "email/change/", email="ana@new.example.com", password=password)
    assert response.status_code == 200, response.json()
    assert response.json()["user"]["email"] == "ana@example.com"
    [message] = [message for message in mailoutbox if message.to == ["ana@new.example.com"]]
    user.refresh_from_db()
    assert user.email == "ana@example.com"
    assert verify(client, message).status_code == 200
    user.refresh_from_db()
    assert (user.email, user.email_verified) == ("ana@new.example.com", True)
    assert verify(client, message).json() == {"non_field_errors": [INVALID_VERIFICATION_LINK]}


def test_of_two_pending_addresses_only_the_latest_asked_for_counts(
    client, user, user_client, password, mailoutbox, verifying
):
    for email in ["one@example.com", "two@example.com"]:
        post(user_client, "email/change/", email=email, password=password)
    first, second = [message for message in mailoutbox if message.to != [user.email]]
    assert verify(client, first).json() == {"non_field_errors": [INVALID_VERIFICATION_LINK]}
    assert verify(client, second).status_code == 200
    user.refresh_from_db()
    assert user.email == "two@example.com"


def test_without_verification_a_new_address_replaces_the_old_at_once(user_client, user, password, settings, mailoutbox):
    settings.ACCOUNT_EMAIL_VERIFICATION = "none"
    response = post(user_client, "email/change/", email="ana@new.example.com", password=password)
    assert response.status_code == 200
    assert response.json()["user"]["email"] == "ana@new.example.com"
    # No link to follow; the old address hears of the change.
    assert [message.to for message in mailoutbox] == [["ana@example.com"]]


def test_change_email_needs_the_password_and_a_new_address(user_client, user, mailoutbox):
    wrong = post(user_client, "email/change/", email="x@example.com", password="not-it")
    assert (wrong.status_code, wrong.json()) == (400, {"password": ["Your password was entered incorrectly."]})
    same = post(user_client, "email/change/", email="ANA@example.com", password="not-it")
    assert same.status_code == 400 and same.json()["email"] == ["This is already your address."]
    assert not mailoutbox


def test_a_mail_that_cannot_be_sent_is_logged_and_changes_no_answer(client, user, settings, caplog):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},  # nothing listens on discard
        }
    }
    response = post(client, "password/reset/", email=user.email)
    assert (response.status_code, response.json()) == (202, {"detail": RESET_MAILED})
    assert any("Could not send" in record.getMessage() for record in caplog.records), caplog.text
