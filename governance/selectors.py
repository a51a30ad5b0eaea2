"""Named reads of governance data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.db.models import OuterRef, QuerySet, Subquery

from core import audit
from core.errors import ApplicationError
from core.models import AuditEvent
from governance import rules
from governance.models import ApprovalRequest, Deployment, RequestStatus, ValidationRun
from registry import access
from registry.models import ModelVersion, Stage


def request_list(*, user) -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.filter(
        version__model__in=access.visible_models(user)
    ).select_related(
        "version__model__team", "requested_by", "validation_run", "deployment"
    ).prefetch_related("decisions__approver")


def requests_to_decide(*, user) -> list[ApprovalRequest]:
    """The pending requests `user` may decide (governance.rules.decision_refusal), oldest
    first, leaving out those they have already decided (a second approval is needed from
    someone else)."""
    pending = (request_list(user=user).filter(status=RequestStatus.PENDING)
               .exclude(decisions__approver=user).order_by("created_at", "id"))
    return [request for request in pending if rules.decision_refusal(user, request) is None]


def request_get(pk: int, *, user) -> ApprovalRequest:
    try:
        return request_list(user=user).get(pk=pk)
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


def deployment_list(*, user) -> QuerySet[Deployment]:
    return Deployment.objects.filter(model__in=access.visible_models(user)).select_related(
        "model", "version", "replaced", "requested_by", "deployed_by", "request",
    ).prefetch_related("request__decisions__approver")


def recent_deployments(*, user, limit: int = 8) -> list[Deployment]:
    """The newest deployments of the models `user` sees: promotions, rollbacks,
    retirements."""
    return list(deployment_list(user=user).order_by("-created_at", "-id")[:limit])


def validation_runs(version: ModelVersion) -> QuerySet[ValidationRun]:
    return (ValidationRun.objects.filter(version=version)
            .select_related("version__model", "requested_by").prefetch_related("checks"))


def audit_events(*, user) -> QuerySet[AuditEvent]:
    """The trail `user` may read: all of it for those who read every team; for the others,
    the events of the models they see (names are frozen in events, and never reused)."""
    events = AuditEvent.objects.order_by("seq")
    if access.reads_everything(user):
        return events
    return events.filter(model_name__in=access.visible_models(user).values("name"))


@dataclass(frozen=True)
class ChainVerification:
    at: datetime
    by: str
    intact: bool
    # For those who read the whole trail only (they count and name every team's events):
    event_id: int | None = None
    events: int | None = None
    problem: str = ""


def last_chain_verification(*, user) -> ChainVerification | None:
    """When the audit chain was last verified, by whom, and whether it held; its counts,
    findings and event for those who read every team's events."""
    event = AuditEvent.objects.filter(action=audit.VERIFIED).order_by("-seq").first()
    if event is None:
        return None
    found = json.loads(event.after or "{}")
    seen = {"at": event.occurred_at, "by": event.actor_name,
            "intact": found.get("result") == "intact"}
    if access.reads_everything(user):
        seen.update(event_id=event.pk, events=found.get("events"), problem=event.reason)
    return ChainVerification(**seen)


def latest_validation(version: ModelVersion) -> ValidationRun | None:
    """The newest finished validation run of a version."""
    from governance.models import RunStatus

    return (ValidationRun.objects.filter(version=version,
                                         status__in=[RunStatus.PASSED, RunStatus.FAILED])
            .order_by("-created_at", "-id").first())


def versions_passed_validation(versions: QuerySet[ModelVersion]) -> QuerySet[ModelVersion]:
    """Those of `versions` whose latest finished validation run passed (what `servable` asks
    of a version; a later failed run takes the pass back)."""
    from governance.models import RunStatus

    verdict = (ValidationRun.objects.filter(version=OuterRef("pk"),
                                            status__in=[RunStatus.PASSED, RunStatus.FAILED])
               .order_by("-created_at", "-id").values("status")[:1])
    return versions.annotate(latest_verdict=Subquery(verdict)).filter(
        latest_verdict=RunStatus.PASSED)


def serving_generation() -> int:
    from governance.models import ServingState

    return ServingState.objects.values_list("generation", flat=True).first() or 0


def servable(version: ModelVersion) -> tuple[bool, str]:
    """A version may be loaded for serving only after its latest validation passed."""
    from governance.models import RunStatus

    if version.integrity_failed_at is not None:
        return False, (f"model unavailable: a file of {version} failed its sha256 check; "
                       "an operator has been alerted")
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
