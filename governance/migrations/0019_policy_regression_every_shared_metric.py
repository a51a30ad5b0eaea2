"""The regression check compares every metric both versions declare unless a policy names some.

The old default named six metrics (a drop in precision, for one, went unseen); a policy still
holding exactly that list was never chosen by anyone, so it becomes [] (every shared metric).
A policy whose list was edited keeps it.
"""

import governance.models
from django.db import migrations, models

OLD_DEFAULT = ["accuracy", "auc_roc", "r2", "mae", "rmse", "silhouette"]


def every_shared_metric(apps, schema_editor):
    Policy = apps.get_model("governance", "Policy")
    for policy in Policy.objects.all():
        metrics = policy.regression_metrics
        if isinstance(metrics, list) and sorted(metrics) == sorted(OLD_DEFAULT):
            policy.regression_metrics = []
            policy.save(update_fields=["regression_metrics"])


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0018_deployment_deployed_by_required"),
    ]

    operations = [
        migrations.AlterField(
            model_name="policy",
            name="lower_is_better",
            field=models.JSONField(blank=True, default=governance.models.default_lower_is_better, help_text="More metric names where a smaller value is better. Errors and losses (mae, rmse, mse, log_loss, *_loss, *_error, ...: registry.metadata.LOWER_IS_BETTER) are lower-is-better whatever this says; every other metric is higher-is-better."),
        ),
        migrations.AlterField(
            model_name="policy",
            name="regression_metrics",
            field=models.JSONField(blank=True, default=governance.models.default_regression_metrics, help_text='Metrics the regression check compares with production, e.g. ["accuracy", "recall"]. Empty (the default) means every metric both versions declare. A metric only one of them declares is listed as not compared.'),
        ),
        migrations.AlterField(
            model_name="policy",
            name="regression_tolerance",
            field=models.FloatField(default=0.02, help_text="How much worse than production a compared metric may be before the regression check fails. When the production and candidate values both lie in [0, 1] (scores: accuracy, precision, recall, F1, AUC) the tolerance is absolute: 0.02 = 2 points (precision 0.807 to 0.787 passes, to 0.786 fails). Otherwise (a value outside [0, 1]: an error or loss above 1, a count, a negative R²) it is relative to production's value: 0.02 = 2 % (RMSE 10.0 to 10.2 passes, to 10.3 fails); when production's value is 0, absolute. Worse means lower, or higher for a lower-is-better metric (errors, losses)."),
        ),
        migrations.RunPython(every_shared_metric, migrations.RunPython.noop),
    ]
