"""The periodic check of serving versions' files against their sha256 (editable in the admin)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0010_alertdelivery_once_per_webhook"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    # Schedules are core.schedules' now (setup_periodic_tasks, run by migrate).
    operations = []
