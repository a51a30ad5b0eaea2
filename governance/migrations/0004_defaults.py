"""The project's default policy."""

from django.db import migrations


def create(apps, schema_editor):
    Policy = apps.get_model("governance", "Policy")
    if not Policy.objects.filter(model__isnull=True).exists():
        Policy.objects.create(model=None)
    # (Its periodic task is core.schedules' now: setup_periodic_tasks, run by migrate.)


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0003_workflow"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
