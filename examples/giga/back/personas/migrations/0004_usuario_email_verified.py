"""Usuario.email_verified. Accounts that exist when it is added count as
verified: they signed up when nobody asked, and with mandatory verification
they would otherwise be locked out until they reset their password."""

from django.db import migrations, models


def existing_accounts_are_verified(apps, schema_editor):
    apps.get_model("personas", "Usuario").objects.update(email_verified=True)


class Migration(migrations.Migration):

    dependencies = [
        ("personas", "0003_drop_plaintext_tokens"),
    ]

    operations = [
        migrations.AddField(
            model_name="usuario",
            name="email_verified",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(existing_accounts_are_verified, migrations.RunPython.noop),
    ]
