"""API tokens moved from DRF's authtoken, which stored each one in clear with
no expiry, to django-rest-knox (hashed, expiring). A database that had the
old table loses it, and with it every old token; on any other database this
does nothing."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("personas", "0002_attempt"),
    ]

    operations = [
        migrations.RunSQL(
            [
                "DROP TABLE IF EXISTS authtoken_token",
                "DELETE FROM django_migrations WHERE app = 'authtoken'",
            ],
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
