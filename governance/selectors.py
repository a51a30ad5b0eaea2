"""Named reads of governance data."""

from __future__ import annotations

from django.db.models import QuerySet

from governance.models import ApprovalRequest, AuditEvent, Deployment, ValidationRun
from registry.errors import ApplicationError
from registry.models import ModelVersion, Stage


def request_list() -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.select_related(
        "version__model", "requested_by", "validation_run", "deployment"
    ).prefetch_related("decisions__approver")


def request_get(pk: int) -> ApprovalRequest:
    try:
        return request_list().get(pk=pk)
    except (ApprovalRequest.DoesNotExist, ValueError):
        raise ApplicationError(f"no approval request #{pk}", status_code=404,
                               code="not_found") from None


def production_versions(model_ids) -> dict:
    """{model id: its production version}, in one query."""
    return {
        version.model_id: version
        for version in ModelVersion.objects.filter(model_id__in=set(model_ids),
                                                   stage=Stage.PRODUCTION)
    }


def deployment_list() -> QuerySet[Deployment]:
    return Deployment.objects.select_related("model", "version", "replaced", "requested_by")


def validation_runs(version: ModelVersion) -> QuerySet[ValidationRun]:
    return (ValidationRun.objects.filter(version=version)
            .select_related("version__model", "requested_by").prefetch_related("checks"))


def audit_events() -> QuerySet[AuditEvent]:
    return AuditEvent.objects.order_by("seq")


def latest_validation(version: ModelVersion) -> ValidationRun | None:
    """The newest finished validation run of a version."""
    from governance.models import RunStatus

    return (ValidationRun.objects.filter(version=version,
                                         status__in=[RunStatus.PASSED, RunStatus.FAILED])
            .order_by("-created_at", "-id").first())


def serving_generation() -> int:
    from governance.models import ServingState

    return ServingState.objects.values_list("generation", flat=True).first() or 0


def servable(version: ModelVersion) -> tuple[bool, str]:
    """A version may be loaded for serving only after its latest validation passed."""
    from governance.models import RunStatus

    latest = latest_validation(version)
    if latest is None:
        return False, f"{version} has not been validated yet"
    if latest.status != RunStatus.PASSED:
        return False, f"{version} failed its latest validation (#{latest.pk})"
    return True, ""


def active_rollout(model_id: int):
    from governance.models import Rollout, RolloutStatus

    return (Rollout.objects.select_related("candidate")
            .filter(model_id=model_id, status=RolloutStatus.ACTIVE).first())


def alert_list():
    """Alerts, with `severity_rank` (critical 2, warning 1, info 0) to order by importance:
    the severity names themselves sort alphabetically, critical last."""
    from django.db.models import Case, IntegerField, Value, When

    from governance.models import SEVERITY_ORDER, Alert

    rank = Case(*(When(severity=name, then=Value(order)) for name, order in
                  SEVERITY_ORDER.items()), default=Value(0), output_field=IntegerField())
    return Alert.objects.select_related("model", "rule__model", "acknowledged_by",
                                        "resolved_by").annotate(severity_rank=rank)


def alert_rules():
    from governance.models import AlertRule

    return AlertRule.objects.select_related("model")


def monitoring_runs(model):
    from governance.models import MonitoringRun

    return MonitoringRun.objects.filter(model=model).select_related("version").order_by(
        "-created_at", "-id")
