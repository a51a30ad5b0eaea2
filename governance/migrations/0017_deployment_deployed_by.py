"""Who set a deployment off, beside who asked for it: for a deployment an approval request
started, the approver of its last approving decision (the one that completed the request);
for any other, the person who moved the version (requested_by)."""

from django.conf import settings
from django.db import migrations, models


def backfill(apps, schema_editor):
    Deployment = apps.get_model("governance", "Deployment")
    Approval = apps.get_model("governance", "Approval")
    for deployment in Deployment.objects.filter(deployed_by__isnull=True).iterator():
        last = (Approval.objects.filter(request_id=deployment.request_id, decision="approve")
                .order_by("-created_at", "-id").first()) if deployment.request_id else None
        deployment.deployed_by_id = last.approver_id if last else deployment.requested_by_id
        deployment.save(update_fields=["deployed_by"])


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("governance", "0016_moving_versions_marked"),
    ]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="deployed_by",
            field=models.ForeignKey(
                null=True, on_delete=models.deletion.PROTECT, related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
