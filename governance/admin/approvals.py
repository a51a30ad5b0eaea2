"""The approvers' desk: a queue of requests, and a review page with the evidence to decide on."""


from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core import roles
from core.admin import (
    ReadOnlyAdmin,
    age_column,
    badge_column,
    object_or_404,
    status_badge,
)
from core.errors import ApplicationError
from governance import policies, rules, selectors, services, validation
from governance.admin.common import move_badges
from governance.admin.evaluations import evaluation_context
from governance.models import (
    ApprovalRequest,
    RequestStatus,
)
from registry.admin import (
    TeamScopedAdmin,
    scoped_filter,
)


def _bars(row: dict) -> dict:
    """Bar lengths (% of the cell) for production and the candidate: scores in [0, 1] on that
    scale, any other metric against the larger of its two values."""
    if row["change"] is None:  # not two numbers: nothing to draw side by side
        return {}
    values = row["production"], row["candidate"]
    scale = 1.0 if all(0 <= v <= 1 for v in values) else max(abs(v) for v in values) or 1.0
    return {side: round(max(row[side], 0) / scale * 100, 1)
            for side in ("production", "candidate")}


def _shown(row: dict) -> dict:
    """A row for the page: its bars, and numbers written as the check's detail writes them."""
    def number(value, sign=""):
        return "—" if value is None else f"{value:{sign}.6g}" if isinstance(
            value, (int, float)) else str(value)

    return dict(row, bars=_bars(row), production_text=number(row["production"]),
                candidate_text=number(row["candidate"]), change_text=number(row["change"], "+"),
                allowed_text=number(row["allowed"]))


def _regression_evidence(run, version, production) -> dict:
    """The regression check's own rows when the request's run compared with this production
    version (what was decided on), else the same comparison made now under today's policy."""
    check = run.checks.filter(name="regression").first() if run and production else None
    measured = check.measured if check else {}
    if measured.get("metrics") is not None and measured.get("baseline") == production.version:
        rows, tolerance = measured["metrics"], measured["tolerance"]
        compared_by = f"by validation #{run.pk}"
    else:
        policy = policies.effective_policy(version.model)
        baseline = production.metrics if production is not None else {}
        rows = validation.compare_metrics(version.metrics, baseline, policy)
        tolerance, compared_by = policy.regression_tolerance, f"now, under the {policy}"
    return {"metric_rows": [_shown(row) for row in rows],
            "flag": validation.regression_flag(rows) if production is not None else None,
            "worst": _shown(worst) if (worst := validation.worst_drop(rows)) else None,
            "tolerance": validation.tolerance_text(tolerance), "compared_by": compared_by}


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
    # What fits 1366 px beside the filters; the reason and the decisions are on the review page.
    list_display = ["request", "version_label", "move", "requested_by", "asked",
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

    asked = age_column("created_at", description="asked")

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
        run = obj.validation_run
        latest = selectors.latest_validation(version)
        regression = _regression_evidence(run, version, production)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Approval request #{obj.pk}: {version} → {obj.to_stage}",
            "original": obj,
            "req": obj,
            "version": version,
            "production": production,
            "baseline_label": baseline_label,
            **regression,
            "run": run,
            "latest": latest if latest and (run is None or latest.pk != run.pk) else None,
            "decisions": obj.decisions.all(),
            "can_decide": obj.status == RequestStatus.PENDING
            and roles.has_role(request.user, roles.APPROVE_ROLES),
            # The same rule the service applies (governance.rules): shown before a click.
            "refusal": rules.decision_refusal(request.user, obj),
            "deployment": deployment,
            "candidate_evaluation": evaluation_context(version),
            "production_evaluation": evaluation_context(production),
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
