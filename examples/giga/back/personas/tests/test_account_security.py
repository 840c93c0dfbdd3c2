"""What an attacker tries against the accounts: a stale email-change link,
tokens that outlive a password, names and addresses spelled another way
past the limits, and a second account that only differs in case."""

import io
from unittest import mock

import pytest
from django.contrib.auth.hashers import make_password
from django.core import signing
from django.core.management import call_command
from django.db import connection
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from personas import tokens
from personas.checks import DUPLICATES, check_usernames_unique_ignoring_case
from personas.models import Usuario
from personas.serializers import INVALID_VERIFICATION_LINK, NOT_TEXT

from .test_accounts import NEW_PASSWORD, confirm_reset, login, post, verify

pytestmark = pytest.mark.django_db

ATTACKER = "attacker@evil.example"


@pytest.fixture(autouse=True)
def verifying(settings):
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    settings.FRONTEND_URL = "https://app.example.com"


def mails_to(outbox, address):
    return [message for message in outbox if message.to == [address]]


def ask_for_attacker_address(user, password, outbox):
    """What someone who once knew the password does: asks to move the account
    to an address of theirs. Returns the mail with the key."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {login(client, user.username, password).json()['token']}")
    response = post(client, "email/change/", email=ATTACKER, password=password)
    assert response.status_code == 200, response.json()
    [message] = mails_to(outbox, ATTACKER)
    return message


def reset_by_mail(user, outbox):
    outbox.clear()
    post(APIClient(), "password/reset/", email=user.email)
    [message] = mails_to(outbox, user.email)
    assert confirm_reset(APIClient(), message).status_code == 200


def change_by_api(user, outbox):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {login(client, user.username, NEW_PASSWORD).json()['token']}")
    response = post(client, "password/change/", old_password=NEW_PASSWORD, new_password="Third-g00d-pass")
    assert response.status_code == 200, response.json()


def change_in_admin(user, outbox):
    admin = Usuario.objects.create_superuser("root", "root@example.com", "x-Strong-passw0rd")
    client = Client()
    client.force_login(admin)
    response = client.post(f"/admin/personas/usuario/{user.pk}/password/",
                           {"password1": "Admin-set-passw0rd", "password2": "Admin-set-passw0rd"})
    assert response.status_code == 302, response.content[-2000:]


def change_by_command(user, outbox):
    with mock.patch("getpass.getpass", return_value="Command-set-passw0rd"):
        call_command("changepassword", user.username, stdout=io.StringIO())


def change_in_code(user, outbox):
    account = Usuario.objects.get(pk=user.pk)
    account.set_password("Code-set-passw0rd")
    account.save()


def made_unusable(user, outbox):
    account = Usuario.objects.get(pk=user.pk)
    account.set_unusable_password()
    account.save()


PASSWORD_CHANGES = [reset_by_mail, change_in_admin, change_by_command, change_in_code, made_unusable]


# -- 1. the takeover through a pending change of address -------------------------
def test_the_reviewed_takeover_fails(client, user, password, mailoutbox):
    """The attacker asks for the change; the owner resets the password by
    mail, then changes it again logged in; the attacker's key is dead."""
    key_mail = ask_for_attacker_address(user, password, mailoutbox)
    reset_by_mail(user, mailoutbox)
    change_by_api(user, mailoutbox)
    assert verify(client, key_mail).json() == {"non_field_errors": [INVALID_VERIFICATION_LINK]}
    user.refresh_from_db()
    assert user.email == "ana@example.com"


@pytest.mark.parametrize("change", PASSWORD_CHANGES, ids=lambda change: change.__name__)
def test_any_password_change_kills_a_pending_address_change(client, user, password, mailoutbox, change):
    key_mail = ask_for_attacker_address(user, password, mailoutbox)
    change(user, mailoutbox)
    assert verify(client, key_mail).json() == {"non_field_errors": [INVALID_VERIFICATION_LINK]}


@pytest.mark.parametrize("change", PASSWORD_CHANGES, ids=lambda change: change.__name__)
def test_any_password_change_revokes_every_token(user, mailoutbox, change):
    for _ in range(2):
        AuthToken.objects.create(user)
    change(user, mailoutbox)
    assert not AuthToken.objects.filter(user=user).exists()


def test_a_hash_upgrade_at_login_is_not_a_password_change(client, user, password, settings):
    settings.PASSWORD_HASHERS = [*settings.PASSWORD_HASHERS, "django.contrib.auth.hashers.MD5PasswordHasher"]
    # An old hash, which check_password() replaces with the preferred one.
    Usuario.objects.filter(pk=user.pk).update(password=make_password(password, hasher="md5"))
    AuthToken.objects.create(user)
    assert login(client, user.username, password).status_code == 200
    user.refresh_from_db()
    assert not user.password.startswith("md5$")
    assert AuthToken.objects.filter(user=user).count() == 2  # the earlier session, and this login's


def test_the_key_is_bound_to_its_exact_address(client, user):
    key = tokens.verification_key(user, "ana@new.example.com")
    token = signing.loads(key, salt=tokens.VERIFICATION_SALT)["t"]
    for other in ["ANA@new.example.com", "ana@new.example.com ", ATTACKER]:
        forged = signing.dumps({"u": user.pk, "e": other, "t": token}, salt=tokens.VERIFICATION_SALT, compress=True)
        assert post(client, "email/verify/", key=forged).json() == {"non_field_errors": [INVALID_VERIFICATION_LINK]}
    assert post(client, "email/verify/", key=key).status_code == 200


def test_a_signup_key_dies_when_the_address_changes(client, user, settings):
    key = tokens.verification_key(user)
    user.email = "ana@other.example.com"
    user.save()
    assert post(client, "email/verify/", key=key).json() == {"non_field_errors": [INVALID_VERIFICATION_LINK]}


def test_the_old_address_hears_of_the_request_and_of_the_change(client, user, password, mailoutbox):
    key_mail = ask_for_attacker_address(user, password, mailoutbox)
    [requested] = mails_to(mailoutbox, "ana@example.com")
    assert ATTACKER in requested.body and "change your password" in requested.body
    mailoutbox.clear()
    assert verify(client, key_mail).status_code == 200
    [changed] = mails_to(mailoutbox, "ana@example.com")
    assert ATTACKER in changed.body and "link" not in changed.body.lower()


def test_the_old_address_hears_of_a_change_made_in_the_admin(user, mailoutbox):
    admin = Usuario.objects.create_superuser("root", "root@example.com", "x-Strong-passw0rd")
    client = Client()
    client.force_login(admin)
    form = {"username": "ana", "email": "ana@moved.example.com", "is_active": "on", "email_verified": "on",
            "date_joined_0": user.date_joined.date().isoformat(),
            "date_joined_1": user.date_joined.strftime("%H:%M:%S")}
    response = client.post(f"/admin/personas/usuario/{user.pk}/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    [notice] = mails_to(mailoutbox, "ana@example.com")
    assert "ana@moved.example.com" in notice.body


# -- 3. limits keyed on what login uses ------------------------------------------
@pytest.fixture
def tight(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_account": "2/min", "login_client": "100/min",
                            "mail_account": "2/hour", "mail_client": "100/hour"}


@pytest.mark.parametrize("spelling", ["ana ", " ana", "ANA", "Ana", "ａｎａ", "Ａｎａ "])
def test_the_account_limit_holds_however_the_name_is_spelled(client, user, password, tight, spelling):
    for _ in range(2):
        assert login(client, "ana", "wrong").status_code == 400
    response = login(client, spelling, password)
    assert response.status_code == 429, (spelling, response.json())


def test_full_width_letters_cannot_pass_the_admin_limit(user, password, tight):
    for _ in range(2):
        assert login(APIClient(), "ana", "wrong").status_code == 400
    response = Client().post("/admin/login/", {"username": "ａｎａ", "password": password})
    assert response.status_code == 429


@pytest.mark.parametrize("body", [
    {"username": 1234, "password": "x"},
    {"username": "ana", "password": 1234},
    {"username": 12.5, "password": "x"},
    {"username": True, "password": "x"},
])
def test_credentials_that_are_not_strings_are_refused(client, user, body):
    Usuario.objects.create_user("1234", "n@example.com", "x")
    response = client.post("/api/auth/login/", body, format="json")
    assert response.status_code == 400
    assert NOT_TEXT in str(response.json())


@pytest.mark.parametrize("spelling", ["  ana@example.com", "ANA@EXAMPLE.COM", "Ana@Example.com  "])
def test_the_reset_limit_holds_however_the_address_is_spelled(client, user, tight, mailoutbox, spelling):
    for _ in range(2):
        assert post(client, "password/reset/", email="ana@example.com").status_code == 202
    assert post(client, "password/reset/", email=spelling).status_code == 429
    assert len(mailoutbox) == 2


def test_one_reset_request_mails_an_address_once(client, user, mailoutbox):
    Usuario.objects.create_user("ana2", "ANA@example.com", "x-Strong-passw0rd")
    assert post(client, "password/reset/", email="ana@example.com").status_code == 202
    [message] = mailoutbox
    assert len(message.to) == 1
    assert message.body.count("/reset/") == 2  # both accounts' links, in one mail


def test_signups_count_against_the_address_they_mail(client, tight, mailoutbox):
    statuses = [post(client, "signup/", username=f"victim{n}", email="victim@example.com",
                     password="x-Strong-passw0rd").status_code for n in range(3)]
    assert statuses == [201, 201, 429]
    assert len(mails_to(mailoutbox, "victim@example.com")) == 2


# -- names unique without regard to case -----------------------------------------
@pytest.mark.parametrize("name", ["ANA", "Ana", "ａｎａ", " ana"])
def test_a_name_that_only_differs_in_case_is_taken(client, user, name):
    response = post(client, "signup/", username=name, email="other@example.com", password="x-Strong-passw0rd")
    assert (response.status_code, response.json()) == (400, {"username": ["A user with that username already exists."]})


def test_login_takes_the_name_in_any_case(client, user, password):
    assert login(client, "ANA", password).status_code == 200


def test_existing_names_that_differ_in_case_are_reported_not_crashed_on(user):
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX personas_usuario_username_ci_uniq")  # as before migration 0005
    Usuario.objects.bulk_create([Usuario(username="ANA", email="x@example.com")])
    [error] = check_usernames_unique_ignoring_case(databases=["default"])
    assert error.id == "personas.E001" and "ana (id" in error.msg and "ANA (id" in error.msg
    with connection.cursor() as cursor:
        cursor.execute(DUPLICATES)
        assert len(cursor.fetchall()) == 1


def test_the_reset_link_counts_against_the_account_it_names(client, user, password, tight, settings):
    for _ in range(2):
        assert login(client, "ana", "wrong").status_code == 400
    uid = tokens.encode_uid(user)
    response = post(client, "password/reset/confirm/", uid=uid, token="x-y", new_password=NEW_PASSWORD)
    assert response.status_code == 429

