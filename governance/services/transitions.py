"""Asking to move a version: an approval request if the policy wants one, else a deployment."""

from __future__ import annotations

import logging
import time

from django.db import IntegrityError, transaction
from django.db.models import Q

from core import audit
from core.errors import ApplicationError, Conflict
from core.queue import enqueue_on_commit
from governance import policies, rules
from governance.models import (
    ApprovalRequest,
    CheckStatus,
    Deployment,
    DeploymentStatus,
    RequestStatus,
    RunStatus,
)
from governance.rules import ARCHIVED, PRODUCTION, TRANSITIONS, allowed_moves
from governance.selectors import latest_validation
from governance.services import common, deployments, validations
from registry import access
from registry.models import ModelVersion, RegisteredModel, Stage

logger = logging.getLogger(__name__)


def _check_transition(version: ModelVersion, to_stage: str, actor, reason: str, *,
                      forced: bool) -> rules.Move:
    if to_stage not in Stage.values:
        raise ApplicationError(f"must be one of {', '.join(Stage.values)}", field="to_stage")
    move = TRANSITIONS.get((version.stage, to_stage))
    if move is None:
        raise Conflict(
            f"{version} cannot move from {version.stage} to {to_stage}. Allowed moves "
            + allowed_moves(version.stage), field="to_stage", code="invalid_transition",
        )
    refusal = rules.move_refusal(actor, move, version.stage, to_stage, forced=forced)
    if refusal:
        raise audit.denied(actor=actor, subject=version,
                           attempted=f"transition.{version.stage}->{to_stage}", message=refusal)
    access.require_action(actor, version.model, "do this", subject=version,
                          attempted=f"transition.{version.stage}->{to_stage}")
    if (move.needs_reason or forced) and not reason.strip():
        raise ApplicationError("give a reason for this move", field="reason")
    # Even an admin's forced switch does not put an unvalidated version into production:
    # it skips the approvals, not the checks.
    if move.needs_validation or (forced and to_stage == PRODUCTION):
        latest = latest_validation(version)
        if latest is None or latest.status != RunStatus.PASSED:
            state = (f"validation #{latest.pk} failed: {latest.summary}" if latest
                     else "it has no finished validation yet")
            failed = ([{"name": c.name, "detail": c.detail}
                       for c in latest.checks.filter(status=CheckStatus.FAILED)]
                      if latest is not None else [])
            raise Conflict(f"{version} cannot go to {to_stage}: {state}", code="not_validated",
                           extra={"failed_checks": failed})
    return move


def transition_request(*, version: ModelVersion, to_stage: str, actor, reason: str = ""
                       ) -> common.TransitionOutcome:
    """Ask to move a version: an approval request if the policy wants one, else a deployment."""
    version = ModelVersion.objects.select_related("model", "created_by").get(pk=version.pk)
    move = _check_transition(version, to_stage, actor, reason, forced=False)
    policy = policies.effective_policy(version.model)
    from_stage = version.stage
    with transaction.atomic(durable=True):
        version = common.lock_for_change(version)
        if version.stage != from_stage:
            raise Conflict(f"{version} moved to {version.stage} meanwhile; ask again")
        _refuse_if_busy(version)
        if policy.requires_approval(from_stage, to_stage):
            run = (validations.validation_request(version=version, trigger=move.kind, actor=actor)
                   if to_stage == PRODUCTION else None)
            request = request_create(version=version, to_stage=to_stage, kind=move.kind,
                                     actor=actor, reason=reason, policy=policy, run=run)
            return common.TransitionOutcome(version=version, request=request)
        deployment = deployments.deployment_create(version=version, to_stage=to_stage, kind=move.kind,
                                        actor=actor, reason=reason)
    return common.TransitionOutcome(version=version, deployment=deployment)


def request_create(*, version: ModelVersion, to_stage: str, kind: str, actor, reason: str,
                   policy, run) -> ApprovalRequest:
    """Inside the caller's transaction, with the version locked (lock_for_change): a pending
    approval request to move it from its stage, waiting for `run` (a validation) too when
    given; approvers are notified on commit."""
    try:
        with transaction.atomic():
            request = ApprovalRequest.objects.create(
                version=version, from_stage=version.stage, to_stage=to_stage, kind=kind,
                requested_by=actor, reason=reason,
                approvals_required=policy.approvals_required, validation_run=run,
            )
    except IntegrityError:
        raise Conflict(f"{version} already has a pending request") from None
    audit.record(
        action="request.created", actor=actor, subject=version, reason=reason,
        after={"request": request.pk, "from": version.stage, "to": to_stage,
               "approvals_required": request.approvals_required,
               "validation_run": run.pk if run else None},
    )
    enqueue_on_commit("governance.approvers_notify", request.pk)
    return request


def _refuse_if_busy(version: ModelVersion) -> None:
    pending = ApprovalRequest.objects.filter(version=version, status=RequestStatus.PENDING).first()
    if pending:
        raise Conflict(f"{version} already has a pending request (#{pending.pk})")
    busy = Deployment.objects.filter(
        version=version, status__in=[DeploymentStatus.PENDING, DeploymentStatus.MOVING]
    ).first()
    if busy:
        raise Conflict(f"deployment #{busy.pk} of {version} is in progress")


def rollback_target(model: RegisteredModel) -> ModelVersion | None:
    """The version that was in production before the current state."""
    last = (Deployment.objects.filter(model=model, status=DeploymentStatus.COMPLETED)
            .filter(Q(to_stage=PRODUCTION) | Q(from_stage=PRODUCTION))
            .order_by("-completed_at", "-id").first())
    if last is None:
        return None
    return last.version if last.to_stage == ARCHIVED else last.replaced


def rollback_request(*, model: RegisteredModel, actor, reason: str) -> common.TransitionOutcome:
    target = rollback_target(model)
    if target is None or target.stage != ARCHIVED:
        raise Conflict(f"{model.name} has no archived version that was in production before "
                       "the current one; nothing to roll back to", code="no_rollback_target")
    return transition_request(version=target, to_stage=PRODUCTION, actor=actor, reason=reason)


def version_force_stage(*, version: ModelVersion, to_stage: str, actor, reason: str
                        ) -> common.TransitionOutcome:
    """An admin's forced move: no approval (production still needs a passed validation),
    but who and why are recorded."""
    version = ModelVersion.objects.select_related("model", "created_by").get(pk=version.pk)
    _check_transition(version, to_stage, actor, reason, forced=True)
    with transaction.atomic(durable=True):
        version = common.lock_for_change(version)
        _refuse_if_busy(version)
        deployment = deployments.deployment_create(version=version, to_stage=to_stage, kind="forced",
                                        actor=actor, reason=reason, enqueue=False)
    # Carried out here, so the caller (a command, an admin) sees the result. Another
    # deployment of the model may be moving folders: wait for it a while.
    for _ in range(120):
        deployment = deployments.deployment_execute(deployment.pk)
        if deployment.status != DeploymentStatus.PENDING:
            break
        time.sleep(0.5)
    return common.TransitionOutcome(version=deployment.version, deployment=deployment)
