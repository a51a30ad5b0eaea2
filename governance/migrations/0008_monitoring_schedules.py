"""The periodic tasks monitoring relies on (editable in the admin under Periodic tasks)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0007_monitoring"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    # Schedules are core.schedules' now (setup_periodic_tasks, run by migrate).
    operations = []
