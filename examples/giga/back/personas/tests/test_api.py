"""The API of docs/api-contract.md, endpoint by endpoint."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from knox.models import AuthToken
from knox.settings import knox_settings
from rest_framework.test import APIClient

from personas.models import Usuario
from personas.serializers import UsuarioSerializer

pytestmark = pytest.mark.django_db

USER_FIELDS = {"id", "username", "email", "email_verified", "is_staff", "date_joined"}


def signup(client, **body):
    return client.post("/api/auth/signup/", body, format="json")


# -- signup -------------------------------------------------------------------
def test_signup_creates_a_user_with_a_hashed_password(client, password):
    response = signup(client, username="nuevo", email="nuevo@example.com", password=password)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["username"] == "nuevo" and body["is_staff"] is False
    stored = Usuario.objects.get(pk=body["id"])
    assert stored.password != password and stored.check_password(password)


def test_signup_taken_username(client, user, password):
    response = signup(client, username=user.username, email="x@example.com", password=password)
    assert response.status_code == 400
    assert response.json() == {"username": ["A user with that username already exists."]}


@pytest.mark.parametrize(
    "password, words",
    [
        ("short", "too short"),
        ("password123", "too common"),
        ("83749201573", "entirely numeric"),
        ("weakling-user", "too similar"),
    ],
)
def test_signup_weak_password(client, password, words):
    response = signup(client, username="weakling-user", email="w@example.com", password=password)
    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["password"], body
    assert any(words in message for message in body["password"]), body
    assert not Usuario.objects.filter(username="weakling-user").exists()


def test_signup_missing_and_invalid_fields(client):
    response = signup(client, username="", email="not-an-email")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"username", "email", "password"}, body


def test_signup_unknown_fields_are_refused(client, password):
    response = signup(client, username="x1", email="x1@example.com", password=password, is_staff=True, nick="x")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Unknown field(s): is_staff, nick"]}
    assert not Usuario.objects.filter(username="x1").exists()


def test_bad_json(client):
    response = client.post("/api/auth/signup/", data=b'{"username": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error - ")


def test_a_json_list_is_not_a_body(client):
    response = client.post("/api/auth/signup/", data=b"[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_only_json_is_accepted(client):
    response = client.post("/api/auth/signup/", data="username=a", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]


def test_wrong_method(client):
    response = client.get("/api/auth/signup/")
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "GET" not allowed.'}


# -- login / logout / me --------------------------------------------------------
def login(client, password, username="ana"):
    return client.post("/api/auth/login/", {"username": username, "password": password}, format="json")


def test_login_returns_a_token_its_expiry_and_the_user(client, user, password):
    response = login(client, password)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expiry", "user"}
    assert set(body["user"]) == USER_FIELDS and body["user"]["id"] == user.id
    expiry = parse_datetime(body["expiry"])
    assert expiry is not None and abs(expiry - (timezone.now() + knox_settings.TOKEN_TTL)) < timedelta(minutes=1)
    client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert client.get("/api/auth/me/").json()["id"] == user.id
    user.refresh_from_db()
    assert user.last_login is not None


def test_tokens_are_stored_hashed(client, user, password):
    token = login(client, password).json()["token"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM knox_authtoken")
        rows = cursor.fetchall()
    assert len(rows) == 1
    assert not any(token in str(value) for value in rows[0]), "the token is in the table in clear"


def test_each_login_gets_its_own_token(client, user, password):
    first, second = login(client, password).json()["token"], login(client, password).json()["token"]
    assert first != second and AuthToken.objects.filter(user=user).count() == 2


def test_an_expired_token_is_refused_and_removed(user):
    instance, token = AuthToken.objects.create(user, expiry=timedelta(seconds=-1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.get("/api/auth/me/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}
    assert not AuthToken.objects.filter(pk=instance.pk).exists()


def test_the_user_fields_are_built_once_and_each_serializer_binds_its_own(user):
    first, second = UsuarioSerializer(user), UsuarioSerializer(user)
    assert set(first.fields) == USER_FIELDS and first.data == second.data
    assert all(first.fields[name] is not second.fields[name] for name in USER_FIELDS)
    assert first.fields["username"].parent is first and second.fields["username"].parent is second


def test_an_authenticated_read_asks_one_query_and_leaves_other_tokens_to_login(user, django_assert_num_queries):
    _, token = AuthToken.objects.create(user)
    other, _ = AuthToken.objects.create(user, expiry=timedelta(seconds=-1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    with django_assert_num_queries(1):  # the token, joined with its user
        assert client.get("/api/auth/me/").status_code == 200
    assert AuthToken.objects.filter(pk=other.pk).exists()


def test_login_drops_the_users_expired_tokens(client, user, password):
    AuthToken.objects.create(user, expiry=timedelta(seconds=-1))
    login(client, password)
    assert AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).count() == 0


def test_login_with_wrong_credentials(client, user, password):
    for body in ({"username": "ana", "password": "wrong"}, {"username": "nobody", "password": password}):
        response = client.post("/api/auth/login/", body, format="json")
        assert response.status_code == 400
        assert response.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}


def test_login_of_an_inactive_user_fails(client, user, password):
    user.is_active = False
    user.save()
    response = client.post("/api/auth/login/", {"username": "ana", "password": password}, format="json")
    assert response.status_code == 400


def test_login_ignores_a_stale_token_header(client, user, password):
    client.credentials(HTTP_AUTHORIZATION="Token deadbeef")
    response = client.post("/api/auth/login/", {"username": "ana", "password": password}, format="json")
    assert response.status_code == 200


def test_me(user_client, user, client):
    response = user_client.get("/api/auth/me/")
    assert response.status_code == 200
    assert response.json()["username"] == user.username
    assert client.get("/api/auth/me/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/auth/me/").json() == {"detail": "Invalid token."}


def test_logout_revokes_this_token_only(user_client, user, password, client):
    other = login(client, password).json()["token"]
    assert user_client.post("/api/auth/logout/").status_code == 204
    assert user_client.get("/api/auth/me/").status_code == 401
    assert AuthToken.objects.filter(user=user).count() == 1
    client.credentials(HTTP_AUTHORIZATION=f"Token {other}")
    assert client.get("/api/auth/me/").status_code == 200


def test_logout_needs_a_token(client):
    response = client.post("/api/auth/logout/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


# -- users (staff only) -----------------------------------------------------------
def test_users_list_is_staff_only(client, user_client):
    assert client.get("/api/users/").status_code == 401
    response = user_client.get("/api/users/")
    assert response.status_code == 403
    assert "detail" in response.json()


def test_users_list_is_paginated_by_20(staff_client, staff):
    Usuario.objects.bulk_create([Usuario(username=f"u{i:02d}", email=f"u{i}@example.com") for i in range(25)])
    first = staff_client.get("/api/users/").json()
    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 26 and len(first["results"]) == 20 and first["previous"] is None
    assert first["results"][0]["username"] == "jefa"
    assert set(first["results"][0]) == USER_FIELDS
    second = staff_client.get("/api/users/?page=2").json()
    assert len(second["results"]) == 6 and second["next"] is None
    assert staff_client.get("/api/users/?page=3").status_code == 404


def test_user_detail(staff_client, user, user_client):
    response = staff_client.get(f"/api/users/{user.id}/")
    assert response.status_code == 200
    assert response.json()["email"] == "ana@example.com"
    assert staff_client.get("/api/users/999999/").status_code == 404
    assert user_client.get(f"/api/users/{user.id}/").status_code == 403


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/does-not-exist/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
