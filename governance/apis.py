"""The governance REST API: transitions, validations, approvals, deployments, rollback, audit.

Views parse input and call one service; the services check roles and the four-eyes rule, so
the admin and the command line enforce exactly the same. A role refused at the door
(HasRole) is audited here; a refusal inside a service is audited by the service.
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import pdf, roles
from core.errors import ApplicationError
from core.permissions import AuditedDoorMixin
from governance import policies, reports, selectors, services
from governance.filters import (
    ApprovalRequestFilter,
    AuditEventFilter,
    DeploymentFilter,
)
from governance.serializers import (
    ApprovalRequestSerializer,
    AuditEventSerializer,
    DecisionInputSerializer,
    DeploymentSerializer,
    RollbackInputSerializer,
    RolloutAdvanceInputSerializer,
    RolloutInputSerializer,
    RolloutSerializer,
    TransitionInputSerializer,
    TransitionOutputSerializer,
    ValidationRunSerializer,
)
from registry import selectors as registry_selectors

# Who gets past the door; each service then checks the particular action.
GOVERNANCE_WRITE_ROLES = roles.READ_ROLES


class GovernanceApiMixin(AuditedDoorMixin):
    write_roles = GOVERNANCE_WRITE_ROLES


def _production_context(requests) -> dict:
    """What a page of requests is compared with: each model's production version and policy,
    fetched once for the page."""
    model_ids = {r.version.model_id for r in requests}
    return {"production": selectors.production_versions(model_ids),
            "policies": policies.effective_policies(model_ids)}


# What governance.services.deployments.deployment_execute changes on a deployment.
DEPLOYMENT_PROGRESS_FIELDS = ["status", "plan", "replaced", "error", "started_at", "completed_at"]


def _transition_body(outcome, request) -> dict:
    context = {"request": request}
    body = {"stage": outcome.version.stage, "request": None, "deployment": None}
    if outcome.request is not None:
        found = selectors.request_get(outcome.request.pk, user=request.user)
        context.update(_production_context([found]))
        body["request"] = ApprovalRequestSerializer(found, context=context).data
    if outcome.deployment is not None:
        # The row the service wrote, with what carrying it out changes read again (a worker
        # may have done it already): two plain reads instead of the selector's joins,
        # prefetches and team filter, which the version passed when the view found it.
        found = outcome.deployment
        found.refresh_from_db(fields=DEPLOYMENT_PROGRESS_FIELDS)
        found.version.refresh_from_db(fields=["stage"])
        body["deployment"] = DeploymentSerializer(found, context=context).data
        body["stage"] = found.version.stage
    return body


class TransitionApi(GovernanceApiMixin, APIView):
    """Ask to move a version to another stage.

    Answers 202 with the approval request it opened, or with the deployment it queued when
    the policy needs no approval for this move. A move not in the lifecycle is a 409 naming
    the allowed ones.
    """

    @extend_schema(request=TransitionInputSerializer,
                   responses={202: TransitionOutputSerializer,
                              409: OpenApiResponse(description="Not an allowed move, not "
                                                   "validated, or already pending")})
    def post(self, request, name, version):
        found = registry_selectors.version_get(name, version, user=request.user)
        payload = TransitionInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        outcome = services.transition_request(version=found, actor=request.user,
                                              **payload.validated_data)
        return Response(_transition_body(outcome, request), status=status.HTTP_202_ACCEPTED)


class RollbackApi(GovernanceApiMixin, APIView):
    """Put back the version that was in production before the current one."""

    @extend_schema(request=RollbackInputSerializer, responses={202: TransitionOutputSerializer})
    def post(self, request, name):
        model = registry_selectors.model_get(name, user=request.user)
        payload = RollbackInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        outcome = services.rollback_request(model=model, actor=request.user,
                                            reason=payload.validated_data["reason"])
        return Response(_transition_body(outcome, request), status=status.HTTP_202_ACCEPTED)


class RolloutApi(GovernanceApiMixin, APIView):
    """A model's active canary or shadow rollout. POST starts one:
    `{"version": "1.2.0", "mode": "canary" | "shadow", "steps": [10, 25, 50, 100]}`."""

    @extend_schema(responses=RolloutSerializer)
    def get(self, request, name):
        model = registry_selectors.model_get(name, user=request.user)
        rollout = selectors.active_rollout(model.pk)
        if rollout is None:
            raise ApplicationError(f"{name} has no active rollout", status_code=404,
                                   code="not_found")
        return Response(RolloutSerializer(rollout).data)

    @extend_schema(request=RolloutInputSerializer, responses={201: RolloutSerializer})
    def post(self, request, name):
        payload = RolloutInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        version = registry_selectors.version_get(name, data["version"], user=request.user)
        rollout = services.rollout_start(version=version, mode=data["mode"],
                                         steps=data.get("steps"), reason=data["reason"],
                                         actor=request.user)
        return Response(RolloutSerializer(rollout).data, status=status.HTTP_201_CREATED)


class RolloutAdvanceApi(GovernanceApiMixin, APIView):
    """Move the canary to its next step, or to `{"percent": n}`."""

    @extend_schema(request=RolloutAdvanceInputSerializer, responses=RolloutSerializer)
    def post(self, request, name):
        model = registry_selectors.model_get(name, user=request.user)
        payload = RolloutAdvanceInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        rollout = services.rollout_advance(model=model, actor=request.user,
                                           percent=payload.validated_data.get("percent"))
        return Response(RolloutSerializer(rollout).data)


class RolloutAbortApi(GovernanceApiMixin, APIView):
    """End the rollout: all traffic to production again. `{"reason": "..."}`"""

    @extend_schema(request=RollbackInputSerializer, responses=RolloutSerializer)
    def post(self, request, name):
        model = registry_selectors.model_get(name, user=request.user)
        payload = RollbackInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        rollout = services.rollout_abort(model=model, actor=request.user,
                                         reason=payload.validated_data["reason"])
        return Response(RolloutSerializer(rollout).data)


class ValidationListApi(GovernanceApiMixin, generics.ListAPIView):
    """The validation runs of a version, newest first; POST starts a new one."""

    serializer_class = ValidationRunSerializer
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return selectors.ValidationRun.objects.none()
        found = registry_selectors.version_get(self.kwargs["name"], self.kwargs["version"], user=self.request.user)
        return selectors.validation_runs(found)

    @extend_schema(request=None, responses={202: ValidationRunSerializer})
    def post(self, request, name, version):
        found = registry_selectors.version_get(name, version, user=request.user)
        run = services.validation_start(version=found, actor=request.user)
        run = selectors.validation_runs(found).get(pk=run.pk)
        return Response(ValidationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ValidationLogApi(GovernanceApiMixin, APIView):
    """What the sandbox said in its own words during one run (the artifact's exception
    messages, stderr), as a text file. Admins only: it is untrusted text."""

    read_roles = roles.ADMIN_ROLES

    @extend_schema(responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR)})
    def get(self, request, name, version, pk):
        found = registry_selectors.version_get(name, version, user=request.user)
        run = generics.get_object_or_404(selectors.validation_runs(found), pk=pk)
        response = HttpResponse(run.sandbox_log or "(nothing was recorded)\n",
                                content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="validation-{run.pk}-sandbox.log"')
        response["X-Content-Type-Options"] = "nosniff"
        return response


class ApprovalListApi(GovernanceApiMixin, generics.ListAPIView):
    """Approval requests; `?status=pending` is the approvers' queue."""

    serializer_class = ApprovalRequestSerializer
    filterset_class = ApprovalRequestFilter
    ordering_fields = ["created_at", "id"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return selectors.request_list(user=self.request.user)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        # Each request shows production's metrics beside its own: one query for the page.
        context = {**self.get_serializer_context(), **_production_context(page)}
        return self.get_paginated_response(
            ApprovalRequestSerializer(page, many=True, context=context).data)


class ApprovalDetailApi(GovernanceApiMixin, APIView):
    @extend_schema(responses=ApprovalRequestSerializer)
    def get(self, request, pk):
        found = selectors.request_get(pk, user=request.user)
        context = {"request": request, **_production_context([found])}
        return Response(ApprovalRequestSerializer(found, context=context).data)


class ApprovalDecisionApi(GovernanceApiMixin, APIView):
    """Approve or reject a request, with a comment (required to reject)."""

    decision = ""

    @extend_schema(request=DecisionInputSerializer, responses=ApprovalRequestSerializer)
    def post(self, request, pk):
        found = selectors.request_get(pk, user=request.user)
        payload = DecisionInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.approval_decide(request=found, actor=request.user, decision=self.decision,
                                 comment=payload.validated_data["comment"])
        found = selectors.request_get(pk, user=request.user)
        context = {"request": request, **_production_context([found])}
        return Response(ApprovalRequestSerializer(found, context=context).data)


class DeploymentListApi(GovernanceApiMixin, generics.ListAPIView):
    serializer_class = DeploymentSerializer
    filterset_class = DeploymentFilter
    ordering_fields = ["created_at", "id"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return selectors.deployment_list(user=self.request.user)


class DeploymentDetailApi(GovernanceApiMixin, generics.RetrieveAPIView):
    serializer_class = DeploymentSerializer

    def get_queryset(self):
        return selectors.deployment_list(user=self.request.user)


class AuditListApi(GovernanceApiMixin, generics.ListAPIView):
    """The audit trail, oldest first: `model`, `actor`, `action`, `since`, `until`."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    ordering_fields = ["seq"]
    ordering = ["seq"]

    def get_queryset(self):
        return selectors.audit_events(user=self.request.user)


RANGE_HELP = {
    "since": "from this moment, included: an ISO 8601 date-time, or a date (its midnight in the "
             "project's time zone)",
    "until": "to this moment, excluded: an ISO 8601 date-time, or a date, which includes that "
             "whole day in the project's time zone",
}


def _scope(request) -> reports.Scope:
    params = request.query_params
    values = reports.report_period(since=params.get("since"), until=params.get("until"),
                                   quarter=params.get("quarter"))
    model = params.get("model") or None
    if model:
        registry_selectors.model_must_exist(model, user=request.user)
    return reports.Scope(model=model, user=request.user, **values)


REPORT_OUTPUTS = ("html", "csv", "pdf")


class AuditReportApi(GovernanceApiMixin, APIView):
    """The compliance report: `output=html` or `output=pdf` (each version's story, its files
    with sha256, the chain's verification and the range), or `output=csv` (the events)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("model", str),
            OpenApiParameter("since", str, description=RANGE_HELP["since"]),
            OpenApiParameter("until", str, description=RANGE_HELP["until"]),
            OpenApiParameter("quarter", str, description="a calendar quarter such as 2026Q4 "
                             "(in the project's time zone), instead of since and until"),
            OpenApiParameter("output", str, enum=list(REPORT_OUTPUTS), default="html"),
        ],
        responses={
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="the report"),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="the events"),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY,
                                                      description="the report as PDF"),
            400: OpenApiResponse(description="a bad `output`, `since`, `until` or `quarter`, "
                                 "or a quarter with since/until (the error names the field)"),
            503: OpenApiResponse(description="`pdf_unavailable`: the server lacks the system "
                                 "libraries for PDF (`missing_system_packages` names them)"),
        },
    )
    def get(self, request):
        kind = request.query_params.get("output", "html")
        if kind not in REPORT_OUTPUTS:
            raise ApplicationError(f"one of {', '.join(REPORT_OUTPUTS)}", field="output")
        scope = _scope(request)
        stem = f"audit-{scope.model or 'all'}-{scope.quarter or f'{datetime.now():%Y%m%d-%H%M%S}'}"
        if kind == "csv":
            response = StreamingHttpResponse(reports.csv_rows(scope), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
            return response
        report = reports.report(scope)
        if kind == "pdf":
            return pdf.pdf_response(report.html, title=report.title, filename=f"{stem}.pdf",
                                    generated_at=report.generated_at)
        response = HttpResponse(report.html, content_type="text/html; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="{stem}.html"'
        return response
