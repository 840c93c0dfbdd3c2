"""Fixtures of the backend's tests. The database is the isolated PostgreSQL
(pytest-django creates and drops test_<DB_NAME> there); never anything else."""

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from knox.models import AuthToken
from rest_framework.test import APIClient

from personas.models import Usuario

PASSWORD = "a-Strong-passw0rd!"


@pytest.fixture(autouse=True)
def english(settings):
    """The tests read Django's and DRF's messages in English, whatever
    language the project answers in (DJANGO_LANGUAGE_CODE)."""
    settings.LANGUAGE_CODE = "en-us"


@pytest.fixture(autouse=True)
def immediate_tasks(settings):
    """Tasks (the account mails) run at once, inside the request, so a test
    reads its mail in pytest-django's mailoutbox. The queue in the database
    and its worker have tests of their own (personas/tests/test_tasks.py)."""
    settings.TASKS = {
        "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"},
    }


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """The production algorithm and hash format at one iteration: a hash at
    production strength costs about half a second, and the suite makes hundreds."""

    iterations = 1


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["conftest.FastPBKDF2PasswordHasher"]


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def client():
    return APIClient()


# Verified, so that they log in whatever ACCOUNT_EMAIL_VERIFICATION says.
@pytest.fixture
def user(db):
    return Usuario.objects.create_user("ana", "ana@example.com", PASSWORD, email_verified=True)


@pytest.fixture
def staff(db):
    return Usuario.objects.create_user("jefa", "jefa@example.com", PASSWORD, is_staff=True, email_verified=True)


def token_client(user):
    _, token = AuthToken.objects.create(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def user_client(user):
    return token_client(user)


@pytest.fixture
def staff_client(staff):
    return token_client(staff)
