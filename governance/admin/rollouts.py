"""Canary and shadow rollouts: start one, advance or abort it."""


from __future__ import annotations

from django.contrib import admin, messages

from core import roles
from core.admin import (
    ServiceAdminMixin,
)
from core.errors import ApplicationError
from governance import rules, services
from governance.models import (
    Rollout,
)
from registry import access
from registry.admin import (
    TeamScopedAdmin,
    scoped_filter,
)
from registry.models import ModelVersion


@admin.register(Rollout)
class RolloutAdmin(TeamScopedAdmin, ServiceAdminMixin, admin.ModelAdmin):
    """Canary and shadow rollouts: start one here (candidate, mode, steps), then advance or
    abort it with the actions."""

    list_display = ["model", "candidate", "mode", "percent", "steps", "status", "started_by",
                    "created_at"]
    list_filter = ["status", "mode", scoped_filter("model")]
    fields = ["candidate", "mode", "steps", "reason"]
    actions = ["advance", "abort"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["model", "candidate", "mode", "steps", "step", "percent", "status",
                "started_by", "reason", "created_at", "ended_at"]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) if obj else self.fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "candidate":
            kwargs["queryset"] = ModelVersion.objects.filter(
                stage="staging", model__in=access.visible_models(request.user)
            ).select_related("model")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return roles.has_role(request.user, rules.ROLLOUT_ROLES)

    def save_through_service(self, request, obj, form, change):
        data = form.cleaned_data
        rollout = services.rollout_start(version=data["candidate"], mode=data["mode"],
                                         steps=data["steps"], reason=data["reason"],
                                         actor=request.user)
        return rollout


    @admin.action(description="Advance the canary to its next step")
    def advance(self, request, queryset):
        for rollout in queryset.filter(status="active"):
            try:
                done = services.rollout_advance(model=rollout.model, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{rollout.model}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{rollout.model}: {done.candidate.version} now "
                                  f"answers {done.percent}% of requests.", messages.SUCCESS)

    @admin.action(description="Abort: all traffic back to production")
    def abort(self, request, queryset):
        for rollout in queryset.filter(status="active"):
            try:
                services.rollout_abort(model=rollout.model, actor=request.user,
                                       reason="aborted in the admin")
            except ApplicationError as exc:
                self.message_user(request, f"{rollout.model}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{rollout.model}: rollout aborted.",
                                  messages.SUCCESS)
