import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from personas.models import Usuario

pytestmark = pytest.mark.django_db


def test_the_database_is_postgresql():
    assert connection.vendor == "postgresql"
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def test_usuario_is_the_user_model():
    assert settings.AUTH_USER_MODEL == "personas.Usuario"
    assert get_user_model() is Usuario
    assert Usuario._meta.db_table == "personas_usuario"


def test_create_user_as_docs_architecture_md_checks_it():
    u = Usuario.objects.create_user("test", "test@test.com", "password123")
    assert u.id is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, username, email FROM personas_usuario WHERE username = %s", ["test"])
        assert cursor.fetchall() == [(u.id, "test", "test@test.com")]


def test_create_user_hashes_the_password():
    u = Usuario.objects.create_user("hashed", "h@example.com", "password123")
    assert u.password != "password123"
    assert u.password.startswith(("pbkdf2_", "argon2", "scrypt", "bcrypt"))
    assert u.check_password("password123")
    assert not u.is_staff and not u.is_superuser and u.is_active


def test_create_user_normalizes_the_email_domain():
    assert Usuario.objects.create_user("n", "Someone@EXAMPLE.COM", "x").email == "Someone@example.com"


def test_create_user_needs_a_username():
    with pytest.raises(ValueError, match="username"):
        Usuario.objects.create_user("", "x@example.com", "password123")


def test_create_superuser():
    admin = Usuario.objects.create_superuser("root", "root@example.com", "password123")
    assert admin.is_staff and admin.is_superuser
    with pytest.raises(ValueError, match="is_staff"):
        Usuario.objects.create_superuser("root2", "r@example.com", "password123", is_staff=False)


def test_usuario_is_in_the_admin(admin_client):
    assert admin_client.get("/admin/personas/usuario/").status_code == 200
    assert admin_client.get("/admin/personas/usuario/add/").status_code == 200
