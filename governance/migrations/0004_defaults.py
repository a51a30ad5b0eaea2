"""The project's default policy, and the periodic tasks governance relies on."""

import json

from django.db import migrations


def create(apps, schema_editor):
    Policy = apps.get_model("governance", "Policy")
    if not Policy.objects.filter(model__isnull=True).exists():
        Policy.objects.create(model=None)
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.get_or_create(
        name="governance: finish interrupted work",
        defaults={
            "task": "governance.recover_interrupted",
            "interval": every_minute,
            "kwargs": json.dumps({"older_than_seconds": 120}),
            "description": "Finishes or undoes deployments whose worker died mid-move (the "
            "same recovery `manage.py reconcile` runs), and ends validation runs a worker "
            "left behind.",
        },
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name="governance: finish interrupted work"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0003_workflow"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
