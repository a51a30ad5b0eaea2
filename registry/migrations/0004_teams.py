"""Teams own models. Every existing model moves into the default team, so a single-team
installation carries on with no set-up."""

from django.conf import settings
from django.db import migrations, models
import django.db.models.deletion

import registry.models

DEFAULT_TEAM = "default"


def default_team(apps, schema_editor):
    Team = apps.get_model("registry", "Team")
    RegisteredModel = apps.get_model("registry", "RegisteredModel")
    team, _ = Team.objects.get_or_create(
        name=DEFAULT_TEAM, defaults={"description": "Everyone who belongs to no other team."})
    RegisteredModel.objects.filter(team__isnull=True).update(team=team)


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("registry", "0003_reference_samples"),
    ]

    operations = [
        migrations.CreateModel(
            name="Team",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("name", models.CharField(max_length=64, unique=True,
                                          validators=[registry.models.model_name_validator])),
                ("description", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("members", models.ManyToManyField(blank=True, related_name="teams",
                                                   to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.AddField(
            model_name="registeredmodel",
            name="team",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="models", to="registry.team"),
        ),
        migrations.AddField(
            model_name="registeredmodel",
            name="readers",
            field=models.ManyToManyField(
                blank=True, help_text="Service accounts allowed to read this model's metadata "
                "and files.", related_name="readable_models", to=settings.AUTH_USER_MODEL),
        ),
        migrations.RunPython(default_team, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="registeredmodel",
            name="team",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                    related_name="models", to="registry.team"),
        ),
    ]
