"""The audit trail: read-only events, the compliance report and the chain's verification."""


from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core import audit
from core.admin import (
    ReadOnlyAdmin,
)
from core.errors import ApplicationError
from core.filters import period
from core.models import AuditEvent
from governance import reports, selectors
from registry import access


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "occurred_at", "actor_name", "action", "object_repr", "model_name",
                    "short_reason", "client_ip"]
    list_filter = ["action", "actor_name"]
    search_fields = ["object_repr", "reason", "request_id", "actor_name", "model_name"]
    date_hierarchy = "occurred_at"
    ordering = ["-seq"]
    readonly_fields = ["seq", "occurred_at", "actor_name", "action", "object_type",
                       "object_id", "object_repr", "model_name", "before_display",
                       "after_display", "reason", "request_id", "client_ip", "prev_hash",
                       "hash"]
    fields = readonly_fields
    change_list_template = "admin/governance/auditevent/change_list.html"

    def get_queryset(self, request):
        return selectors.audit_events(user=request.user)

    @admin.display(description="reason")
    def short_reason(self, obj):
        return obj.reason[:80]

    @admin.display(description="before")
    def before_display(self, obj):
        return format_html("<pre>{}</pre>", obj.before) if obj.before else "—"

    @admin.display(description="after")
    def after_display(self, obj):
        return format_html("<pre>{}</pre>", obj.after) if obj.after else "—"

    def get_urls(self):
        return [
            path("report/", self.admin_site.admin_view(self.report_view),
                 name="core_auditevent_report"),
            path("verify/", self.admin_site.admin_view(self.verify_view),
                 name="core_auditevent_verify"),
            *super().get_urls(),
        ]

    def report_view(self, request):
        if not self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        if "download" not in request.GET:
            context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                       "title": "Audit report",
                       "models": access.visible_models(request.user).order_by("name")}
            return TemplateResponse(request, "admin/governance/auditevent/report.html", context)
        try:
            bounds = period(request.GET.get("since"), request.GET.get("until"))
        except ApplicationError as exc:
            self.message_user(request, f"{exc.field}: {exc.message}", level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:core_auditevent_report"))
        model = request.GET.get("model") or None
        if model and not access.visible_models(request.user).filter(name=model).exists():
            self.message_user(request, f"model: no registered model named {model!r}",
                              level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:core_auditevent_report"))
        scope = reports.Scope(model=model, user=request.user, **bounds)
        if request.GET.get("output") == "csv":
            response = HttpResponse(reports.csv_text(scope), content_type="text/csv")
            response["Content-Disposition"] = 'attachment; filename="audit-report.csv"'
            return response
        return HttpResponse(reports.html(scope), content_type="text/html; charset=utf-8")

    def verify_view(self, request):
        if not access.reads_everything(request.user):  # it reports on every team's events
            return HttpResponseRedirect(reverse("admin:index"))
        report = audit.verify_chain()
        if report.ok:
            self.message_user(request, f"Audit chain verified: {report.checked} events, every "
                              "hash intact.", level=messages.SUCCESS)
        else:
            where = "" if report.first_bad_seq is None else f" at event #{report.first_bad_seq}"
            self.message_user(request, f"Audit chain BROKEN{where}: {report.problem}",
                              level=messages.ERROR)
        return HttpResponseRedirect(reverse("admin:core_auditevent_changelist"))
