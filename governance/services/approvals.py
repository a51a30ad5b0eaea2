"""Approval requests: decisions under the four-eyes rule (governance.rules), and completion."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from core import audit
from core.errors import ApplicationError, Conflict
from governance import rules
from governance.models import (
    Approval,
    ApprovalRequest,
    Decision,
    RequestStatus,
    RunStatus,
    ValidationRun,
)
from governance.services import common, deployments
from registry.models import ModelVersion

logger = logging.getLogger(__name__)


def approval_decide(*, request: ApprovalRequest, actor, decision: str, comment: str = ""
                    ) -> ApprovalRequest:
    request = ApprovalRequest.objects.select_related(
        "version__model__team", "version__created_by", "requested_by").get(pk=request.pk)
    if decision not in Decision.values:
        raise ApplicationError(f"must be one of {', '.join(Decision.values)}", field="decision")
    refusal = rules.decision_refusal(actor, request)
    if refusal:
        raise audit.denied(actor=actor, subject=request, attempted=f"request.{decision}",
                           message=refusal)
    if decision == Decision.REJECT and not comment.strip():
        raise ApplicationError("a rejection needs a comment saying why", field="comment")
    with transaction.atomic(durable=True):
        common.lock_for_change(request.version)
        request = ApprovalRequest.objects.select_for_update(of=("self",)).select_related(
            "version__model").get(pk=request.pk)
        if request.status != RequestStatus.PENDING:
            raise Conflict(f"request #{request.pk} is {request.status}: no more decisions",
                           code="request_closed")
        if rules.already_decided(actor, request):
            raise Conflict(f"you have already decided on request #{request.pk}",
                           code="already_decided")
        Approval.objects.create(request=request, approver=actor, decision=decision,
                                comment=comment)
        if decision == Decision.REJECT:
            request.status = RequestStatus.REJECTED
            request.decided_at = timezone.now()
            request.status_reason = comment[:500]
            request.save(update_fields=["status", "decided_at", "status_reason"])
            audit.record(action="request.rejected", actor=actor, subject=request,
                         model_name=request.version.model.name, reason=comment,
                         before={"status": "pending"}, after={"status": "rejected"})
            return request
        approvals = request.decisions.filter(decision=Decision.APPROVE).count()
        audit.record(action="request.approval_given", actor=actor, subject=request,
                     model_name=request.version.model.name, reason=comment,
                     after={"approvals": approvals, "required": request.approvals_required})
        request_try_complete(request)
    request.refresh_from_db()
    return request


def request_stale(request: ApprovalRequest, why: str) -> None:
    request.status = RequestStatus.STALE
    request.status_reason = why[:500]
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "status_reason", "decided_at"])
    audit.record(action="request.stale", actor=common.system_user(), subject=request,
                 model_name=request.version.model.name, reason=why,
                 before={"status": "pending"}, after={"status": "stale"})


def request_try_complete(request: ApprovalRequest, *, reason: str = "") -> None:
    """Inside a transaction holding the model, the version and the request (in that order):
    deploy once approvals and validation allow. The approver whose decision completed the
    request (the last one) is the actor of its approval and sets the deployment off, also when
    the request's validation finished after the approvals (`reason` then says so)."""
    approvals = list(request.decisions.filter(decision=Decision.APPROVE)
                     .select_related("approver").order_by("created_at", "id"))
    if len(approvals) < request.approvals_required:
        return
    if request.validation_run_id:
        run = ValidationRun.objects.get(pk=request.validation_run_id)
        if not run.finished:
            return  # the run's result will call back here
        if run.status != RunStatus.PASSED:
            request_stale(request, f"validation #{run.pk} failed: {run.summary}")
            return
    version = ModelVersion.objects.select_for_update(of=("self",)).select_related("model").get(
        pk=request.version_id)
    if version.stage != request.from_stage:
        request_stale(request, f"the version moved to {version.stage} meanwhile")
        return
    request.status = RequestStatus.APPROVED
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_at"])
    completed_by = approvals[-1].approver
    audit.record(action="request.approved", actor=completed_by, subject=request,
                 model_name=version.model.name, reason=reason,
                 before={"status": "pending"},
                 after={"status": "approved", "approvals": len(approvals),
                        "requested_by": request.requested_by.get_username(),
                        "approved_by": [a.approver.get_username() for a in approvals]})
    deployments.deployment_create(version=version, to_stage=request.to_stage, kind=request.kind,
                                  actor=completed_by, reason=request.reason, request=request)
