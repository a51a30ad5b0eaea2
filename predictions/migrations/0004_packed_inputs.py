"""Logged inputs as packed rows (float64 bytes for numbers) instead of JSON; existing logs
are converted. See predictions/fields.py for the format and why."""

from django.db import migrations

import predictions.fields


def pack(apps, schema_editor):
    PredictionLog = apps.get_model("predictions", "PredictionLog")
    pending = []
    for log in PredictionLog.objects.only("id", "inputs").iterator(chunk_size=2000):
        log.inputs_packed = predictions.fields.pack_rows(log.inputs or [])
        pending.append(log)
        if len(pending) == 2000:
            PredictionLog.objects.bulk_update(pending, ["inputs_packed"])
            pending = []
    PredictionLog.objects.bulk_update(pending, ["inputs_packed"])


def unpack(apps, schema_editor):
    PredictionLog = apps.get_model("predictions", "PredictionLog")
    pending = []
    for log in PredictionLog.objects.only("id", "inputs_packed").iterator(chunk_size=2000):
        log.inputs = log.inputs_packed  # read back as rows by the field
        pending.append(log)
        if len(pending) == 2000:
            PredictionLog.objects.bulk_update(pending, ["inputs"])
            pending = []
    PredictionLog.objects.bulk_update(pending, ["inputs"])


class Migration(migrations.Migration):
    dependencies = [("predictions", "0003_prediction_errors")]

    operations = [
        migrations.AddField(
            model_name="predictionlog", name="inputs_packed",
            field=predictions.fields.PackedRowsField(null=True),
        ),
        migrations.RunPython(pack, unpack),
        migrations.RemoveField(model_name="predictionlog", name="inputs"),
        migrations.RenameField(model_name="predictionlog", old_name="inputs_packed",
                               new_name="inputs"),
        migrations.AlterField(
            model_name="predictionlog", name="inputs",
            field=predictions.fields.PackedRowsField(default=list),
        ),
    ]
