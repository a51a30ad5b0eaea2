"""The registry's pages with their governance history, a rollback action, and the throttled login form."""


from __future__ import annotations

from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from core import audit
from core.admin import (
    ReadOnlyInline,
    badge_column,
)
from core.errors import ApplicationError
from core.models import AuditEvent
from governance import services
from governance.admin.common import people, when
from governance.admin.evaluations import evaluation_html
from governance.admin.imports import ModelImportPages
from governance.login import AdminLoginForm
from governance.models import (
    ApprovalRequest,
    Deployment,
    ValidationRun,
)
from registry.admin import (
    FileInline,
    ModelVersionAdmin,
    RegisteredModelAdmin,
)
from registry.models import ModelVersion, RegisteredModel


class ValidationRunInline(ReadOnlyInline):
    model = ValidationRun
    fields = ["trigger", "status_display", "summary", "created_at", "finished_at"]
    readonly_fields = fields
    verbose_name_plural = "validation runs"

    status_display = badge_column(ordering=None)


class ApprovalRequestInline(ReadOnlyInline):
    model = ApprovalRequest
    fields = ["from_stage", "to_stage", "requested_by", "reason", "status_display",
              "created_at"]
    readonly_fields = fields
    verbose_name_plural = "approval requests"

    status_display = badge_column(ordering=None)


class DeploymentInline(ReadOnlyInline):
    model = Deployment
    fk_name = "version"
    fields = ["kind", "from_stage", "to_stage", "replaced", "people_display", "status_display",
              "completed_at"]
    readonly_fields = fields
    verbose_name_plural = "deployments"

    status_display = badge_column(ordering=None)

    def get_queryset(self, request):
        return (super().get_queryset(request)
                .select_related("replaced", "requested_by", "deployed_by", "request")
                .prefetch_related("request__decisions__approver"))

    @admin.display(description="requested / approved / deployed by")
    def people_display(self, obj):
        return people(obj)


class GovernedModelVersionAdmin(ModelVersionAdmin):
    inlines = [FileInline, ValidationRunInline, ApprovalRequestInline, DeploymentInline]
    fieldsets = [
        *ModelVersionAdmin.fieldsets,
        ("Measured evaluation", {"fields": ["evaluation_display"]}),
        ("Lifecycle", {"fields": ["lifecycle_display", "audit_history"]}),
    ]
    readonly_fields = [*ModelVersionAdmin.readonly_fields, "evaluation_display",
                       "lifecycle_display", "audit_history"]

    @admin.display(description="metrics and plots")
    def evaluation_display(self, obj):
        return evaluation_html(obj)

    @admin.display(description="deployment and retirement")
    def lifecycle_display(self, obj):
        return lifecycle_html(obj.lifecycle)

    @admin.display(description="audit history")
    def audit_history(self, obj):
        events = AuditEvent.objects.filter(
            object_type="registry.modelversion", object_id=str(obj.pk)).order_by("seq")
        # (The page itself is only reachable for a version the person may see.)
        if not events:
            return "—"
        return format_html(
            "<table><thead><tr><th>#</th><th>when</th><th>who</th><th>action</th>"
            "<th>change</th><th>reason</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                             "<td>{}</td><td>{}</td></tr>",
                             ((e.seq, e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"), e.actor_name,
                               e.action, audit.changes_html(e), e.reason[:200])
                              for e in events)),
        )


def _approvals(entries) -> list[dict]:
    return [{"by": a.get("by", ""), "at": when(a.get("at")), "comment": a.get("comment", "")}
            for a in entries or [] if isinstance(a, dict)]


def lifecycle_html(lifecycle: dict):
    """A version's lifecycle (its metadata.json's, from the row) told as sentences — who asked
    for its deployment, who approved it, who set it off; the same of its retirement — and its
    history as a table. Versions moved before approvals were recorded lack some of the people:
    the sentences then name only who is known."""
    if not lifecycle:
        return "—"
    deployed = retired = imported = None
    if isinstance(lifecycle.get("imported"), dict):
        source = lifecycle["imported"]
        imported = {"stage": source.get("stage"), "at": when(source.get("at")),
                    "by": source.get("by"), "source": source.get("source"),
                    "source_version": source.get("source_version"),
                    "created_at": when(source.get("created_at")),
                    "deployed_at": when(source.get("deployed_at")),
                    "trusted": source.get("trusted"), "checksum": source.get("checksum"),
                    "reason": source.get("reason", "")}
    if lifecycle.get("deployed_at"):
        deployed = {"requested_by": lifecycle.get("requested_by"),
                    "requested_at": when(lifecycle.get("requested_at")),
                    "approvals": _approvals(lifecycle.get("approved_by")),
                    "deployed_by": lifecycle.get("deployed_by"),
                    "deployed_at": when(lifecycle["deployed_at"])}
    if lifecycle.get("retired_at"):
        retired = {"retired_by": lifecycle.get("retired_by"),
                   "retired_at": when(lifecycle["retired_at"]),
                   "replaced_by": lifecycle.get("replaced_by"),
                   "requested_by": lifecycle.get("retirement_requested_by"),
                   "approvals": _approvals(lifecycle.get("retirement_approved_by")),
                   "reason": lifecycle.get("reason", "")}
    comparison = [
        {"metric": metric, "retired": row.get("baseline"), "replacement": row.get("candidate"),
         "change": row.get("change"), "regressed": row.get("regressed")}
        for metric, row in (lifecycle.get("metrics_comparison") or {}).items()
        if isinstance(row, dict)
    ]
    history = [
        {**entry, "at": when(entry.get("at")),
         "approved_by": ", ".join(entry.get("approved_by") or [])}
        for entry in lifecycle.get("history", []) if isinstance(entry, dict)
    ]
    return render_to_string("admin/governance/version_lifecycle.html", {
        "imported": imported, "deployed": deployed, "retired": retired,
        "comparison": comparison,
        "history": history})


@admin.action(description="Roll back to the previous production version")
def rollback_action(modeladmin, request, queryset):
    if "apply" not in request.POST:
        return TemplateResponse(request, "admin/governance/rollback_confirm.html", {
            **modeladmin.admin_site.each_context(request),
            "opts": modeladmin.model._meta,
            "title": "Roll back production",
            "models": [(model, services.rollback_target(model)) for model in queryset],
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        })
    reason = request.POST.get("reason", "").strip()
    for model in queryset:
        try:
            outcome = services.rollback_request(model=model, actor=request.user, reason=reason)
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{model.name}: {exc.message}", messages.ERROR)
            continue
        if outcome.request is not None:
            modeladmin.message_user(request, f"{model.name}: rollback to "
                                    f"{outcome.version.version} waits for approval "
                                    f"(request #{outcome.request.pk}).", messages.WARNING)
        else:
            modeladmin.message_user(request, f"{model.name}: rolling back to "
                                    f"{outcome.version.version} (deployment "
                                    f"#{outcome.deployment.pk}).", messages.SUCCESS)
    return None


class GovernedRegisteredModelAdmin(ModelImportPages, RegisteredModelAdmin):
    actions = [rollback_action]
    change_list_template = "admin/governance/registeredmodel/change_list.html"


# Failed admin logins are throttled like the token endpoint's (governance/login.py).
admin.site.login_form = AdminLoginForm
admin.site.unregister(ModelVersion)
admin.site.register(ModelVersion, GovernedModelVersionAdmin)
admin.site.unregister(RegisteredModel)
admin.site.register(RegisteredModel, GovernedRegisteredModelAdmin)
