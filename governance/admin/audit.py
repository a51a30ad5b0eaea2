"""The audit trail: read-only events, the compliance report and the chain's verification."""


from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from core import audit, pdf
from core.admin import (
    ReadOnlyAdmin,
)
from core.errors import ApplicationError
from core.models import AuditEvent
from governance import reports, selectors
from registry import access


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    # What fits 1366 px: the reason, the request and the address are on each event's page.
    list_display = ["seq", "occurred_at", "actor_name", "action", "short_object", "model_name"]
    list_filter = ["action", "actor_name"]
    search_fields = ["object_repr", "reason", "request_id", "actor_name", "model_name"]
    date_hierarchy = "occurred_at"
    ordering = ["-seq"]
    readonly_fields = ["seq", "occurred_at", "actor_name", "action", "object_type",
                       "object_id", "object_repr", "model_name", "changes_display", "reason",
                       "request_id", "client_ip", "raw_display", "prev_hash", "hash"]
    fields = readonly_fields
    change_list_template = "admin/governance/auditevent/change_list.html"

    def get_queryset(self, request):
        return selectors.audit_events(user=request.user)

    @admin.display(description="object", ordering="object_repr")
    def short_object(self, obj):
        return Truncator(obj.object_repr).chars(48)

    @admin.display(description="changes")
    def changes_display(self, obj):
        return audit.changes_html(obj)

    @admin.display(description="as recorded")
    def raw_display(self, obj):
        if not (obj.before or obj.after):
            return "—"
        return format_html("<details><summary>before and after, as JSON</summary>"
                           "<pre>before: {}\nafter: {}</pre></details>",
                           obj.before or "—", obj.after or "—")

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
        form_url = reverse("admin:core_auditevent_report")
        if "download" not in request.GET:
            today = timezone.localdate()
            context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                       "title": "Audit report",
                       "models": access.visible_models(request.user).order_by("name"),
                       "this_quarter": reports.quarter_of(today),
                       "last_quarter": reports.quarter_of(today, back=1)}
            return TemplateResponse(request, "admin/governance/auditevent/report.html", context)
        try:
            bounds = reports.report_period(since=request.GET.get("since"),
                                           until=request.GET.get("until"),
                                           quarter=request.GET.get("quarter"))
        except ApplicationError as exc:
            self.message_user(request, f"{exc.field}: {exc.message}", level=messages.ERROR)
            return HttpResponseRedirect(form_url)
        model = request.GET.get("model") or None
        if model and not access.visible_models(request.user).filter(name=model).exists():
            self.message_user(request, f"model: no registered model named {model!r}",
                              level=messages.ERROR)
            return HttpResponseRedirect(form_url)
        scope = reports.Scope(model=model, user=request.user, **bounds)
        output = request.GET.get("output") or "html"
        stem = f"audit-report-{scope.model or 'all'}" + (f"-{scope.quarter}" if scope.quarter
                                                         else "")
        if output == "csv":
            response = HttpResponse(reports.csv_text(scope), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
            return response
        report = reports.report(scope)
        if output == "pdf":
            try:
                return pdf.pdf_response(report.html, title=report.title,
                                        filename=f"{stem}.pdf",
                                        generated_at=report.generated_at)
            except pdf.PdfUnavailable as exc:
                self.message_user(request, exc.message, level=messages.ERROR)
                return HttpResponseRedirect(form_url)
        return HttpResponse(report.html, content_type="text/html; charset=utf-8")

    def verify_view(self, request):
        if not access.reads_everything(request.user):  # it reports on every team's events
            return HttpResponseRedirect(reverse("admin:index"))
        if request.method != "POST":  # it writes: the verification is recorded in the chain
            return HttpResponseNotAllowed(["POST"])
        report = audit.audit_chain_verify(actor=request.user)
        if report.ok:
            self.message_user(request, f"Audit chain verified: {report.checked} events, every "
                              "hash intact.", level=messages.SUCCESS)
        else:
            where = "" if report.first_bad_seq is None else f" at event #{report.first_bad_seq}"
            self.message_user(request, f"Audit chain BROKEN{where}: {report.problem}",
                              level=messages.ERROR)
        return HttpResponseRedirect(reverse("admin:core_auditevent_changelist"))
