"""Deployments: who moved which version where, and how it went."""


from __future__ import annotations

from django.contrib import admin

from core.admin import (
    ReadOnlyAdmin,
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
    list_display = ["id", "model_name", "version", "move", "replaced", "kind", "status_display",
                    "requested_by", "created_at", "completed_at"]
    list_filter = ["status", "kind", "to_stage", scoped_filter("model")]
    list_select_related = ["model", "version", "replaced", "requested_by"]
    readonly_fields = ["model", "version", "from_stage", "to_stage", "replaced", "kind",
                       "status", "requested_by", "request", "reason", "plan", "error",
                       "created_at", "started_at", "completed_at"]
    fields = readonly_fields

    @admin.display(description="model", ordering="model__name")
    def model_name(self, obj):
        return obj.model.name

    @admin.display(description="move")
    def move(self, obj):
        return move_badges(obj.from_stage, obj.to_stage)

    status_display = badge_column()
