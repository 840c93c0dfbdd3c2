"""Usernames unique without regard to case (Boss cannot sign up beside boss),
and Usuario.email_change_requested_at, which kills the links of earlier
requests to change the address.

Existing names that differ only in case stop the migration, which then
changes nothing: `manage.py migrate` lists them first (check personas.E001).
"""

import django.db.models.functions.text
from django.db import migrations, models

from personas.checks import DUPLICATES


def refuse_duplicates(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(DUPLICATES)
        duplicates = [accounts for _, accounts in cursor.fetchall()]
    if duplicates:
        raise RuntimeError(
            "Usernames that differ only in case: " + "; ".join(duplicates)
            + ". Rename all of them but one, then run `manage.py migrate` again."
        )


class Migration(migrations.Migration):

    dependencies = [
        ("personas", "0004_usuario_email_verified"),
    ]

    operations = [
        migrations.AddField(
            model_name="usuario",
            name="email_change_requested_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(refuse_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="usuario",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("username"),
                name="personas_usuario_username_ci_uniq",
                violation_error_message="A user with that username already exists.",
            ),
        ),
    ]
