"""The keyed audit chain: from which event on hashes are HMACs, and the checkpoint schedule.

Only governance_auditchainhead changes: altering governance_auditevent would make SQLite
rebuild the table and lose its append-only triggers.
"""

import json

from django.db import migrations, models

CHECKPOINT = "governance: checkpoint the audit chain"


def key_a_fresh_chain(apps, schema_editor):
    # A chain with events keeps them as they are (append-only) and is keyed from the next event
    # a keyed writer appends (audit.record sets it then), so that processes of the previous
    # release still running after this migration add no unkeyed event past the mark.
    apps.get_model("governance", "AuditChainHead").objects.filter(pk=1, seq=0).update(
        keyed_from_seq=1)


def schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_five_minutes, _ = IntervalSchedule.objects.get_or_create(every=300, period="seconds")
    PeriodicTask.objects.get_or_create(name=CHECKPOINT, defaults={
        "task": "governance.audit_checkpoint_write", "interval": every_five_minutes,
        "kwargs": json.dumps({}),
        "description": "Appends the audit chain's head (seq and hash), signed with the chain "
        "key, to AUDIT_CHECKPOINT_FILE and the log, when it moved since the last checkpoint. "
        "verify_audit compares the chain with every checkpoint: a cut tail or a re-written "
        "chain no longer passes.",
    })


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=CHECKPOINT).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0012_alert_metric_integrity"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditchainhead",
            name="keyed_from_seq",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(key_a_fresh_chain, migrations.RunPython.noop),
        migrations.RunPython(schedule, unschedule),
    ]
