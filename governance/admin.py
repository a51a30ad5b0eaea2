"""The admin as the approvers' desk: a queue of requests with the evidence to decide on.

Every button calls the same service as the API, so roles and the four-eyes rule hold here
too; the service's refusal comes back as an error message, not an error page.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core import audit, roles
from core.admin import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceAdminMixin,
    badge_column,
    object_or_404,
    status_badge,
)
from core.errors import ApplicationError
from core.models import AuditEvent
from governance import policies, reports, rules, selectors, services, validation
from governance.login import AdminLoginForm
from governance.models import (
    ApprovalRequest,
    Deployment,
    Policy,
    RequestStatus,
    Rollout,
    ValidationCheck,
    ValidationRun,
)
from registry import access
from registry.admin import (
    FileInline,
    ModelVersionAdmin,
    RegisteredModelAdmin,
    TeamScopedAdmin,
    scoped_filter,
    stage_badge,
)
from registry.models import ModelVersion, RegisteredModel


def move_badges(source: str, target: str):
    return format_html('<span style="white-space:nowrap">{} → {}</span>',
                       stage_badge(source), stage_badge(target))


# --- the approvals queue ----------------------------------------------------------------------


class StatusFilter(admin.SimpleListFilter):
    """Pending requests unless another status is chosen: the queue is the default view."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*RequestStatus.choices, ("all", "All")]

    def choices(self, changelist):
        value = self.value() or RequestStatus.PENDING
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or RequestStatus.PENDING
        return queryset if value == "all" else queryset.filter(status=value)


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(TeamScopedAdmin, ReadOnlyAdmin):
    list_display = ["request", "version_label", "move", "requested_by", "created_at",
                    "validation_status", "approvals", "status_display"]
    list_filter = [StatusFilter, "to_stage", scoped_filter("version__model")]
    search_fields = ["version__model__name", "version__version", "requested_by__username"]
    list_select_related = ["version__model", "requested_by", "validation_run"]
    list_display_links = ["request"]

    team_scope = "version__model"

    def get_queryset(self, request):
        return selectors.request_list(user=request.user)

    @admin.display(description="request", ordering="id")
    def request(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="version", ordering="version__model__name")
    def version_label(self, obj):
        return f"{obj.version.model.name} {obj.version.version}"

    @admin.display(description="move")
    def move(self, obj):
        return move_badges(obj.from_stage, obj.to_stage)

    @admin.display(description="validation")
    def validation_status(self, obj):
        run = obj.validation_run
        return status_badge(run.status) if run else "—"

    @admin.display(description="approvals")
    def approvals(self, obj):
        given = sum(1 for d in obj.decisions.all() if d.decision == "approve")
        return f"{given} / {obj.approvals_required}"

    status_display = badge_column()

    def get_urls(self):
        return [
            path("<id:pk>/decide/", self.admin_site.admin_view(self.decide_view),
                 name="governance_approvalrequest_decide"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = object_or_404(selectors.request_list(user=request.user), object_id)
        if not self.has_view_permission(request, obj):
            return HttpResponseRedirect(reverse("admin:index"))
        version = obj.version
        deployment = getattr(obj, "deployment", None)
        # Compare with what production was when the request was decided, if it was deployed.
        if deployment is not None and deployment.status == "completed":
            production, baseline_label = deployment.replaced, "the version it replaced"
        else:
            production = selectors.production_versions([version.model_id]).get(version.model_id)
            baseline_label = "production"
        if production is not None and production.pk == version.pk:
            production = None
        policy = policies.effective_policy(version.model)
        comparison = []
        if production is not None:
            rows = validation.metrics_comparison(version.metrics, production.metrics, policy)
            comparison = [{"name": name, **row} for name, row in rows.items()]
        run = obj.validation_run
        latest = selectors.latest_validation(version)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Approval request #{obj.pk}: {version} → {obj.to_stage}",
            "original": obj,
            "req": obj,
            "version": version,
            "production": production,
            "baseline_label": baseline_label,
            "comparison": comparison,
            "candidate_only": [(name, version.metrics[name]) for name in
                               sorted(set(version.metrics) - {r["name"] for r in comparison})],
            "run": run,
            "latest": latest if latest and (run is None or latest.pk != run.pk) else None,
            "decisions": obj.decisions.all(),
            "can_decide": obj.status == RequestStatus.PENDING
            and roles.has_role(request.user, roles.APPROVE_ROLES),
            # The same rule the service applies (governance.rules): shown before a click.
            "refusal": rules.decision_refusal(request.user, obj),
            "deployment": deployment,
        }
        return TemplateResponse(request, "admin/governance/approvalrequest/review.html", context)

    def decide_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = get_object_or_404(selectors.request_list(user=request.user), pk=pk)
        decision = next((d for d in ("approve", "reject") if d in request.POST), None)
        if decision is None:
            self.message_user(request, "Choose Approve or Reject.", level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:governance_approvalrequest_change",
                                                args=[pk]))
        try:
            services.approval_decide(request=obj, actor=request.user, decision=decision,
                                     comment=request.POST.get("comment", ""))
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
        else:
            obj.refresh_from_db()
            verb = "Approved" if decision == "approve" else "Rejected"
            self.message_user(request, f"{verb} request #{obj.pk} ({obj.version}). "
                              f"Status: {obj.status}.", level=messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:governance_approvalrequest_change", args=[pk]))


# --- validation, deployments, policies, audit -------------------------------------------------


class CheckInline(ReadOnlyInline):
    model = ValidationCheck
    fields = ["name", "status_display", "detail", "measured_display"]
    readonly_fields = fields
    show_change_link = False

    status_display = badge_column(ordering=None)

    @admin.display(description="measured")
    def measured_display(self, obj):
        shown = {k: v for k, v in obj.measured.items() if k not in {"comparison", "sample"}}
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


@admin.register(Policy)
class PolicyAdmin(TeamScopedAdmin, ServiceAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "approvals_required", "transitions_requiring_approval",
                    "min_metrics", "regression_tolerance", "latency_budget_ms", "updated_at"]
    fields = ["model", *policies.POLICY_FIELDS]

    team_scope_keeps_project_rows = True

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return roles.has_role(request.user, roles.ADMIN_ROLES)

    def has_add_permission(self, request):
        return roles.has_role(request.user, roles.ADMIN_ROLES)

    def save_through_service(self, request, obj, form, change):
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        return services.policy_save(policy=obj, actor=request.user, changes=changes)



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
            bounds = reports.period(request.GET.get("since"), request.GET.get("until"))
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


# --- the registry pages, with their governance history ----------------------------------------


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
    fields = ["kind", "from_stage", "to_stage", "replaced", "requested_by", "status_display",
              "completed_at"]
    readonly_fields = fields
    verbose_name_plural = "deployments"

    status_display = badge_column(ordering=None)


class GovernedModelVersionAdmin(ModelVersionAdmin):
    inlines = [FileInline, ValidationRunInline, ApprovalRequestInline, DeploymentInline]
    fieldsets = [
        *ModelVersionAdmin.fieldsets,
        ("Lifecycle", {"fields": ["lifecycle_display", "audit_history"]}),
    ]
    readonly_fields = [*ModelVersionAdmin.readonly_fields, "lifecycle_display", "audit_history"]

    @admin.display(description="deployment and retirement")
    def lifecycle_display(self, obj):
        shown = {k: v for k, v in obj.lifecycle.items() if k != "history"}
        if not shown:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(shown, indent=2))

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
                             "<td><code>{} {}</code></td><td>{}</td></tr>",
                             ((e.seq, e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"), e.actor_name,
                               e.action, e.before, e.after[:200], e.reason[:200])
                              for e in events)),
        )


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


class GovernedRegisteredModelAdmin(RegisteredModelAdmin):
    actions = [rollback_action]


# Failed admin logins are throttled like the token endpoint's (governance/login.py).
admin.site.login_form = AdminLoginForm
admin.site.unregister(ModelVersion)
admin.site.register(ModelVersion, GovernedModelVersionAdmin)
admin.site.unregister(RegisteredModel)
admin.site.register(RegisteredModel, GovernedRegisteredModelAdmin)
