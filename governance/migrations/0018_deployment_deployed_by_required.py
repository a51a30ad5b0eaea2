"""Every deployment names who set it off (0017 filled in the existing ones)."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("governance", "0017_deployment_deployed_by"),
    ]

    operations = [
        migrations.AlterField(
            model_name="deployment",
            name="deployed_by",
            field=models.ForeignKey(
                help_text="Who set the move off: the approver whose decision completed the "
                "request, or whoever moved the version directly (a forced move, a move needing "
                "no approval).",
                on_delete=models.deletion.PROTECT, related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
