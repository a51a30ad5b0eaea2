"""Deployments: who moved which version where, and how it went."""


from __future__ import annotations

from django.contrib import admin

from core.admin import (
    ReadOnlyAdmin,
    age_column,
    badge_column,
)
from governance.admin.common import approvals_html, move_badges, people
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
                    "status_display", "people_display", "completed"]
    list_filter = ["status", "kind", "to_stage", scoped_filter("model")]
    list_select_related = ["model", "version", "replaced", "requested_by", "deployed_by",
                           "request"]
    readonly_fields = ["model", "version", "from_stage", "to_stage", "replaced", "kind",
                       "status", "requested_by", "approved_by_display", "deployed_by",
                       "request", "reason", "plan", "error", "created_at", "started_at",
                       "completed_at"]
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("request__decisions__approver")

    @admin.display(description="requested / approved / deployed by")
    def people_display(self, obj):
        return people(obj)

    @admin.display(description="approved by")
    def approved_by_display(self, obj):
        return approvals_html(obj.approvals())

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
