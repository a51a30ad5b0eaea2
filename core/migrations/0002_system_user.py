"""The system actor of automatic changes: an account that cannot log in."""

from django.conf import settings
from django.db import migrations


def create(apps, schema_editor):
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    if not User.objects.filter(username="system").exists():
        User.objects.create(username="system", first_name="System", is_active=False,
                            password="!")  # an unusable password


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
