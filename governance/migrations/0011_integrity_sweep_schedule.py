"""The periodic check of serving versions' files against their sha256 (editable in the admin)."""

import json

from django.db import migrations

SWEEP = "governance: check serving artifacts against their sha256"


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_ten_minutes, _ = IntervalSchedule.objects.get_or_create(every=600, period="seconds")
    PeriodicTask.objects.get_or_create(name=SWEEP, defaults={
        "task": "governance.integrity_sweep", "interval": every_ten_minutes,
        "kwargs": json.dumps({}),
        "description": "Hashes every file of each production version and rollout candidate: "
        "a changed or missing file flags the version (not served, critical alert); a "
        "restored one is served again.",
    })


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SWEEP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0010_alertdelivery_once_per_webhook"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
