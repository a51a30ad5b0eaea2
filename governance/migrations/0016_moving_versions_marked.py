"""A deployment in the middle of a move marks the versions whose folders it moves
(registry's moving_by_deployment), instead of reconcile asking governance through a hook."""

from django.db import migrations


def mark(apps, schema_editor):
    Deployment = apps.get_model("governance", "Deployment")
    ModelVersion = apps.get_model("registry", "ModelVersion")
    for deployment in Deployment.objects.filter(status="moving"):
        ids = [step["version_id"] for step in deployment.plan]
        ModelVersion.objects.filter(pk__in=ids).update(moving_by_deployment=deployment.pk)


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0015_monitoring_moves_to_its_app"),
        ("registry", "0006_version_moving_by_deployment"),
    ]

    operations = [migrations.RunPython(mark, migrations.RunPython.noop)]
