"""Monitoring's models now live in the monitoring app (monitoring/0001); their tables stay as
they are, under their governance_ names."""

from django.db import migrations

MOVED = ("alert", "alertdelivery", "alertrule", "monitoringrun", "webhook")


def content_types_follow(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label="monitoring", model=model).exists():
            ContentType.objects.filter(app_label="governance", model=model).update(
                app_label="monitoring")


class Migration(migrations.Migration):

    dependencies = [
        ("governance", "0014_audit_trail_moves_to_core"),
        ("monitoring", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
        migrations.RemoveField(
            model_name='alertdelivery',
            name='alert',
        ),
        migrations.RemoveField(
            model_name='alertdelivery',
            name='webhook',
        ),
        migrations.RemoveField(
            model_name='alertrule',
            name='model',
        ),
        migrations.RemoveField(
            model_name='monitoringrun',
            name='model',
        ),
        migrations.RemoveField(
            model_name='monitoringrun',
            name='version',
        ),
        migrations.RemoveField(
            model_name='webhook',
            name='model',
        ),
        migrations.DeleteModel(
            name='Alert',
        ),
        migrations.DeleteModel(
            name='AlertDelivery',
        ),
        migrations.DeleteModel(
            name='AlertRule',
        ),
        migrations.DeleteModel(
            name='MonitoringRun',
        ),
        migrations.DeleteModel(
            name='Webhook',
        ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_follow, migrations.RunPython.noop),
    ]
