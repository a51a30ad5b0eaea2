"""The periodic tasks monitoring relies on (editable in the admin under Periodic tasks)."""

import json

from django.db import migrations

MONITOR = "governance: monitor deployed models"
DELIVER = "governance: retry alert notifications"


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_five_minutes, _ = IntervalSchedule.objects.get_or_create(every=300, period="seconds")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.get_or_create(name=MONITOR, defaults={
        "task": "governance.monitor_all", "interval": every_five_minutes,
        "kwargs": json.dumps({}),
        "description": "One monitoring pass per model with a production version or a "
        "rollout: drift, live performance, latency and error rate, then the alert rules.",
    })
    PeriodicTask.objects.get_or_create(name=DELIVER, defaults={
        "task": "governance.deliver_due", "interval": every_minute,
        "kwargs": json.dumps({}),
        "description": "Sends alert e-mails and webhooks whose retry is due, and those a "
        "stopped worker left behind.",
    })


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[MONITOR, DELIVER]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0007_monitoring"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
