"""PostgreSQL: the prediction log and error tables become partitioned by day (created_at).

Nothing changes on SQLite, and nothing in the models' state: the tables keep their names,
columns, indexes and rows (predictions/partitions.py). Each table is converted in its own
transaction (its rows are copied once), and a table already partitioned is left as it is,
so a run cut short is simply run again. Backwards, each table becomes one plain table again.
"""

from django.db import migrations

from predictions import partitions

# The tables as they are at this migration (PARTITIONED_TABLES may name later ones).
TABLES = ("predictions_predictionlog", "predictions_predictionerror")


def forwards(apps, schema_editor):
    for table in TABLES:
        partitions.partition(partitions.Partitioned(table), conn=schema_editor.connection)


def backwards(apps, schema_editor):
    for table in TABLES:
        partitions.unpartition(partitions.Partitioned(table), conn=schema_editor.connection)


class Migration(migrations.Migration):
    # One transaction per table, not one for all: a long retention means many partitions, and
    # each holds locks until its transaction ends (max_locks_per_transaction).
    atomic = False

    dependencies = [
        ("predictions", "0006_admin_names"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
