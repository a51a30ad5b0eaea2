"""The keyed audit chain: from which event on hashes are HMACs.

Only governance_auditchainhead changes: altering governance_auditevent would make SQLite
rebuild the table and lose its append-only triggers.
"""

from django.db import migrations, models

def key_a_fresh_chain(apps, schema_editor):
    # A chain with events keeps them as they are (append-only) and is keyed from the next event
    # a keyed writer appends (audit.record sets it then), so that processes of the previous
    # release still running after this migration add no unkeyed event past the mark.
    apps.get_model("governance", "AuditChainHead").objects.filter(pk=1, seq=0).update(
        keyed_from_seq=1)


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
    ]
