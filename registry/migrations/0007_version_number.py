from django.db import migrations, models


def number_versions(apps, schema_editor):
    """Existing versions are numbered 1, 2, 3... per model in the order they were created."""
    ModelVersion = apps.get_model("registry", "ModelVersion")
    counters: dict[int, int] = {}
    for row in ModelVersion.objects.order_by("model_id", "created_at", "pk").only("pk", "model_id"):
        counters[row.model_id] = counters.get(row.model_id, 0) + 1
        ModelVersion.objects.filter(pk=row.pk).update(number=counters[row.model_id])


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0006_version_moving_by_deployment"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="number",
            field=models.PositiveIntegerField(null=True),
        ),
        migrations.RunPython(number_versions, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="modelversion",
            name="number",
            field=models.PositiveIntegerField(),
        ),
        migrations.AddConstraint(
            model_name="modelversion",
            constraint=models.UniqueConstraint(fields=("model", "number"),
                                               name="modelversion_unique_number"),
        ),
    ]
