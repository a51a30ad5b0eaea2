"""Validation runs and their checks; the sandbox log for admins."""


from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from core import roles
from core.admin import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    badge_column,
)
from governance.models import (
    ValidationCheck,
    ValidationRun,
)
from registry.admin import (
    TeamScopedAdmin,
    scoped_filter,
)


class CheckInline(ReadOnlyInline):
    model = ValidationCheck
    fields = ["name", "status_display", "detail", "measured_display"]
    readonly_fields = fields
    show_change_link = False

    status_display = badge_column(ordering=None)

    @admin.display(description="measured")
    def measured_display(self, obj):
        shown = {k: v for k, v in obj.measured.items()
                 if k not in {"comparison", "metrics", "sample"}}
        return format_html("<code>{}</code>", json.dumps(shown)) if shown else "—"


@admin.register(ValidationRun)
class ValidationRunAdmin(TeamScopedAdmin, ReadOnlyAdmin):
    team_scope = "version__model"
    list_display = ["id", "version", "trigger", "status_display", "summary", "created_at",
                    "finished_at"]
    list_filter = ["status", "trigger", scoped_filter("version__model")]
    list_select_related = ["version__model"]
    fields = ["version", "trigger", "status", "summary", "requested_by", "created_at",
              "started_at", "finished_at", "sandbox_log_link"]
    readonly_fields = fields
    inlines = [CheckInline]

    status_display = badge_column()

    @admin.display(description="sandbox log")
    def sandbox_log_link(self, obj):
        if not obj.sandbox_log:
            return "—"
        return format_html('<a href="{}">download</a> (admins only: the artifact\'s own '
                           'words, untrusted)',
                           reverse("admin:governance_validationrun_log", args=[obj.pk]))

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if not roles.has_role(request.user, roles.ADMIN_ROLES):
            fields = [f for f in fields if f != "sandbox_log_link"]
        return fields

    def get_urls(self):
        return [path("<id:pk>/log/", self.admin_site.admin_view(self.log_view),
                     name="governance_validationrun_log"), *super().get_urls()]

    def log_view(self, request, pk):
        if not roles.has_role(request.user, roles.ADMIN_ROLES):
            return HttpResponseRedirect(reverse("admin:index"))
        run = get_object_or_404(self.get_queryset(request), pk=pk)
        response = HttpResponse(run.sandbox_log, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="validation-{run.pk}-sandbox.log"'
        return response
