"""Deployments: who moved which version where, and how it went."""


from __future__ import annotations

from django.contrib import admin

from core.admin import (
    ReadOnlyAdmin,
    age_column,
    badge_column,
)
from governance.admin.common import move_badges
from governance.models import (
    Deployment,
)
from registry.admin import (
    TeamScopedAdmin,
    scoped_filter,
)


@admin.register(Deployment)
class DeploymentAdmin(TeamScopedAdmin, ReadOnlyAdmin):
    # (Not "model": a ModelAdmin's `model` attribute is the model class.)
    # What fits 1366 px beside the filters; the plan, reason and times are on its page.
    list_display = ["id", "version_label", "move", "replaced_version", "kind",
                    "status_display", "requested_by", "completed"]
    list_filter = ["status", "kind", "to_stage", scoped_filter("model")]
    list_select_related = ["model", "version", "replaced", "requested_by"]
    readonly_fields = ["model", "version", "from_stage", "to_stage", "replaced", "kind",
                       "status", "requested_by", "request", "reason", "plan", "error",
                       "created_at", "started_at", "completed_at"]
    fields = readonly_fields

    @admin.display(description="model", ordering="model__name")
    def model_name(self, obj):
        return obj.model.name

    @admin.display(description="version", ordering="model__name")
    def version_label(self, obj):
        return f"{obj.model.name} {obj.version.version}"

    @admin.display(description="replaced", ordering="replaced__major")
    def replaced_version(self, obj):
        return obj.replaced.version if obj.replaced else "—"

    completed = age_column("completed_at", description="completed")

    @admin.display(description="move")
    def move(self, obj):
        return move_badges(obj.from_stage, obj.to_stage)

    status_display = badge_column()
