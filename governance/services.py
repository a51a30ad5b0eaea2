"""Lifecycle, validation, approvals and deployments: every governance write.

Only this module changes a version's stage. Each public function is one durable transaction
that writes its audit events; work that moves folders is a `Deployment`, recorded before the
first rename so that `deployment_recover` (run by `reconcile` and a periodic task) can finish
or undo it after a crash. Who may do what is checked here, so the API, the admin and the
command line enforce the same rules; a refusal is itself audited.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core import audit, roles
from core.errors import ApplicationError, Conflict, Forbidden, scrub_paths
from core.limits import MAX_INT, MAX_SMALLINT
from governance import monitoring, policies, validation, webhook_targets
from governance.models import (
    ACTIVE_ALERT,
    SEVERITY_ORDER,
    Alert,
    AlertDelivery,
    AlertMetric,
    AlertRule,
    AlertStatus,
    Approval,
    ApprovalRequest,
    Decision,
    DeliveryStatus,
    Deployment,
    DeploymentStatus,
    MonitoringRun,
    Policy,
    ReferenceProfile,
    RequestStatus,
    Rollout,
    RolloutMode,
    RolloutStatus,
    RunStatus,
    RunStatusMonitoring,
    ServingState,
    Severity,
    ValidationCheck,
    ValidationRun,
    Webhook,
)
from governance.selectors import latest_validation
from registry import access, store, traffic
from registry.metadata import document_bytes, version_document
from registry.models import ModelVersion, RegisteredModel, Stage

logger = logging.getLogger(__name__)

EXPERIMENT, STAGING, PRODUCTION, ARCHIVED = (
    Stage.EXPERIMENT, Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED,
)


@dataclass(frozen=True)
class Move:
    kind: str
    roles: frozenset[str]
    needs_reason: bool = False
    needs_validation: bool = False


TRANSITIONS: dict[tuple[str, str], Move] = {
    (EXPERIMENT, STAGING): Move("promotion", roles.REGISTER_ROLES),
    (STAGING, PRODUCTION): Move("promotion", roles.REGISTER_ROLES, needs_validation=True),
    (PRODUCTION, ARCHIVED): Move(
        "retirement", frozenset({roles.APPROVER, roles.ADMIN}), needs_reason=True
    ),
    (ARCHIVED, PRODUCTION): Move(
        "rollback", frozenset({roles.DATA_SCIENTIST, roles.APPROVER, roles.ADMIN}),
        needs_reason=True, needs_validation=True,
    ),
    (EXPERIMENT, ARCHIVED): Move("archive", roles.ADMIN_ROLES, needs_reason=True),
    (STAGING, ARCHIVED): Move("archive", roles.ADMIN_ROLES, needs_reason=True),
}


def allowed_moves(from_stage: str) -> str:
    moves = [f"{to} ({', '.join(sorted(move.roles))})"
             for (source, to), move in TRANSITIONS.items() if source == from_stage]
    return f"from {from_stage}: " + ("; ".join(moves) if moves else "none")


@dataclass
class TransitionOutcome:
    version: ModelVersion
    request: ApprovalRequest | None = None
    deployment: Deployment | None = None


def system_user():
    user, _ = get_user_model().objects.get_or_create(
        username="system", defaults={"is_active": False, "first_name": "System"}
    )
    return user


def _deny(actor, subject, action: str, message: str) -> Forbidden:
    """Audit a refused governance action (in its own transaction) and return the error."""
    with transaction.atomic():
        audit.record(action="permission.denied", actor=actor, subject=subject,
                     after={"attempted": action}, reason=message)
    return Forbidden(message)


def _require_team(actor, model: RegisteredModel, subject, action: str) -> None:
    """Teams own models (registry.access): only their members, and admins, act on them."""
    if not access.may_act(actor, model):
        raise _deny(actor, subject, action,
                    f"{model.name} belongs to the team {model.team.name}; only its members "
                    "and admins may do this.")


def _lock_for_change(version: ModelVersion) -> ModelVersion:
    """Lock a version for a change of its lifecycle, in the one order every such change takes
    on PostgreSQL: the model's row, then the version's, then its requests, runs, deployments
    and rollouts, the audit chain's head last. Locking in another order deadlocks against a
    concurrent deployment; `of=("self",)` because a select_related join would otherwise lock
    the joined rows too, in join order (the version before its model)."""
    RegisteredModel.objects.select_for_update().get(pk=version.model_id)
    return (ModelVersion.objects.select_for_update(of=("self",)).select_related("model")
            .get(pk=version.pk))


# --- validation -------------------------------------------------------------------------------


def validation_request(*, version: ModelVersion, trigger: str, actor=None) -> ValidationRun:
    """Queue a validation run (inside the caller's transaction; the task starts on commit)."""
    from governance.tasks import validate_version

    run = ValidationRun.objects.create(version=version, trigger=trigger, requested_by=actor)
    transaction.on_commit(lambda: validate_version.delay(run.pk), robust=True)
    return run


def validation_request_now(version: ModelVersion, *, trigger: str = "manual",
                           actor=None) -> ValidationRun:
    """Queue a run and execute it here and now (the demo seeder and tests; no worker)."""
    with transaction.atomic(durable=True):
        run = ValidationRun.objects.create(version=version, trigger=trigger, requested_by=actor)
    return validation_execute(run.pk) or ValidationRun.objects.get(pk=run.pk)


def validation_start(*, version: ModelVersion, actor) -> ValidationRun:
    """A person asks for a fresh validation (API and admin)."""
    if not roles.has_role(actor, roles.REGISTER_ROLES | roles.APPROVE_ROLES):
        raise _deny(actor, version, "validation.start", "Your role cannot start a validation.")
    _require_team(actor, version.model, version, "validation.start")
    with transaction.atomic(durable=True):
        run = validation_request(version=version, trigger="manual", actor=actor)
        audit.record(action="validation.requested", actor=actor, subject=version,
                     after={"run": run.pk})
    return run


def validation_execute(run_id: int) -> ValidationRun | None:
    """Run the checks of a queued run and record them. Idempotent: a claimed run is skipped."""
    claimed = ValidationRun.objects.filter(pk=run_id, status=RunStatus.PENDING).update(
        status=RunStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    run = ValidationRun.objects.select_related("version__model").get(pk=run_id)
    version = (ModelVersion.objects.select_related("model", "created_by")
               .prefetch_related("files").get(pk=run.version_id))
    policy = policies.effective_policy(version.model)
    try:
        outcome = validation.execute(version, policy, trigger=run.trigger)
    except Exception as exc:  # a bug or an I/O failure must still end the run
        logger.exception("validation run %s crashed", run_id)
        outcome = validation.Outcome([validation.CheckResult(
            "internal", "failed", f"validation crashed ({type(exc).__name__}); the cause is in "
            "the worker's log")])
    return _validation_record(run, outcome, policy)


def _validation_record(run, outcome, policy) -> ValidationRun:
    results = outcome.results
    passed, summary = validation.verdict(results, policy)
    # The reference profile's statistics (up to a million rows) are computed before the
    # transaction, which holds the run's and the requests' locks.
    profile = None
    if outcome.reference is not None:
        version = ModelVersion.objects.select_related("model").get(pk=run.version_id)
        profile = reference_profile_build(version=version, data=outcome.reference,
                                          predictions=outcome.reference_predictions)
    with transaction.atomic(durable=True):
        _lock_for_change(run.version)  # it may complete a request
        run = ValidationRun.objects.select_for_update().get(pk=run.pk)
        if run.status != RunStatus.RUNNING:
            # Recovery already ended it (a worker looked dead); a late result changes nothing.
            logger.warning("validation run %s already %s; its late result is dropped",
                           run.pk, run.status)
            return run
        ValidationCheck.objects.bulk_create(
            ValidationCheck(run=run, position=i, name=r.name, status=r.status,
                            detail=scrub_paths(r.detail)[:5000], measured=r.measured)
            for i, r in enumerate(results)
        )
        run.status = RunStatus.PASSED if passed else RunStatus.FAILED
        run.summary = scrub_paths(summary)[:500]
        run.finished_at = timezone.now()
        run.policy = policies.policy_snapshot(policy)
        run.sandbox_log = outcome.sandbox_log
        run.save(update_fields=["status", "summary", "finished_at", "policy", "sandbox_log"])
        version = (ModelVersion.objects.select_related("model").prefetch_related("files")
                   .get(pk=run.version_id))
        if profile is not None:
            ReferenceProfile.objects.update_or_create(
                version=version, defaults={**profile, "sha256": version.reference_file.sha256})
        audit.record(
            action=f"validation.{run.status}", actor=run.requested_by or system_user(),
            subject=version, reason=summary,
            after={"run": run.pk, "trigger": run.trigger,
                   "checks": {r.name: r.status for r in results}},
        )
        for request in ApprovalRequest.objects.select_for_update().filter(
            version_id=run.version_id, status=RequestStatus.PENDING
        ):
            # The request's own run is created just before the request itself.
            if not passed and (run.created_at >= request.created_at
                               or request.validation_run_id == run.pk):
                _request_stale(request, f"validation #{run.pk} failed: {summary}")
            elif request.validation_run_id == run.pk:
                _request_try_complete(request, actor=system_user())
    return run


def validation_recover(*, older_than_seconds: int = 900) -> list[ValidationRun]:
    """Runs a dead worker left `running` fail; runs whose task was lost are executed."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    handled = []
    for run in ValidationRun.objects.filter(status=RunStatus.RUNNING, started_at__lte=cutoff):
        policy = policies.effective_policy(run.version.model)
        failure = validation.CheckResult(
            "internal", "failed", "the worker stopped before the run finished; start a new one")
        handled.append(_validation_record(run, validation.Outcome([failure]), policy))
    for run in ValidationRun.objects.filter(status=RunStatus.PENDING, created_at__lte=cutoff):
        handled.append(validation_execute(run.pk) or run)
    return handled


# --- transitions ------------------------------------------------------------------------------


def _check_transition(version: ModelVersion, to_stage: str, actor, reason: str, *,
                      forced: bool) -> Move:
    if to_stage not in Stage.values:
        raise ApplicationError(f"must be one of {', '.join(Stage.values)}", field="to_stage")
    move = TRANSITIONS.get((version.stage, to_stage))
    if move is None:
        raise Conflict(
            f"{version} cannot move from {version.stage} to {to_stage}. Allowed moves "
            + allowed_moves(version.stage), field="to_stage", code="invalid_transition",
        )
    needed = roles.ADMIN_ROLES if forced else move.roles
    if not roles.has_role(actor, needed):
        raise _deny(actor, version, f"transition.{version.stage}->{to_stage}",
                    f"Moving {version.stage} → {to_stage} needs the role "
                    f"{' or '.join(sorted(needed))}.")
    _require_team(actor, version.model, version, f"transition.{version.stage}->{to_stage}")
    if (move.needs_reason or forced) and not reason.strip():
        raise ApplicationError("give a reason for this move", field="reason")
    # Even an admin's forced switch does not put an unvalidated version into production:
    # it skips the approvals, not the checks.
    if move.needs_validation or (forced and to_stage == PRODUCTION):
        latest = latest_validation(version)
        if latest is None or latest.status != RunStatus.PASSED:
            state = (f"validation #{latest.pk} failed: {latest.summary}" if latest
                     else "it has no finished validation yet")
            raise Conflict(f"{version} cannot go to {to_stage}: {state}", code="not_validated")
    return move


def transition_request(*, version: ModelVersion, to_stage: str, actor, reason: str = ""
                       ) -> TransitionOutcome:
    """Ask to move a version: an approval request if the policy wants one, else a deployment."""
    version = ModelVersion.objects.select_related("model", "created_by").get(pk=version.pk)
    move = _check_transition(version, to_stage, actor, reason, forced=False)
    policy = policies.effective_policy(version.model)
    from_stage = version.stage
    with transaction.atomic(durable=True):
        version = _lock_for_change(version)
        if version.stage != from_stage:
            raise Conflict(f"{version} moved to {version.stage} meanwhile; ask again")
        _refuse_if_busy(version)
        if policy.requires_approval(from_stage, to_stage):
            run = (validation_request(version=version, trigger=move.kind, actor=actor)
                   if to_stage == PRODUCTION else None)
            try:
                with transaction.atomic():
                    request = ApprovalRequest.objects.create(
                        version=version, from_stage=from_stage, to_stage=to_stage,
                        kind=move.kind, requested_by=actor, reason=reason,
                        approvals_required=policy.approvals_required, validation_run=run,
                    )
            except IntegrityError:
                raise Conflict(f"{version} already has a pending request") from None
            audit.record(
                action="request.created", actor=actor, subject=version, reason=reason,
                after={"request": request.pk, "from": from_stage, "to": to_stage,
                       "approvals_required": request.approvals_required,
                       "validation_run": run.pk if run else None},
            )
            from governance.tasks import notify_approvers

            transaction.on_commit(lambda: notify_approvers.delay(request.pk), robust=True)
            return TransitionOutcome(version=version, request=request)
        deployment = _deployment_create(version=version, to_stage=to_stage, kind=move.kind,
                                        actor=actor, reason=reason)
    return TransitionOutcome(version=version, deployment=deployment)


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


def rollback_request(*, model: RegisteredModel, actor, reason: str) -> TransitionOutcome:
    target = rollback_target(model)
    if target is None or target.stage != ARCHIVED:
        raise Conflict(f"{model.name} has no archived version that was in production before "
                       "the current one; nothing to roll back to", code="no_rollback_target")
    return transition_request(version=target, to_stage=PRODUCTION, actor=actor, reason=reason)


def version_force_stage(*, version: ModelVersion, to_stage: str, actor, reason: str
                        ) -> TransitionOutcome:
    """An admin's forced move: no approval (production still needs a passed validation),
    but who and why are recorded."""
    version = ModelVersion.objects.select_related("model", "created_by").get(pk=version.pk)
    _check_transition(version, to_stage, actor, reason, forced=True)
    with transaction.atomic(durable=True):
        version = _lock_for_change(version)
        _refuse_if_busy(version)
        deployment = _deployment_create(version=version, to_stage=to_stage, kind="forced",
                                        actor=actor, reason=reason, enqueue=False)
    # Carried out here, so the caller (a command, an admin) sees the result. Another
    # deployment of the model may be moving folders: wait for it a while.
    for _ in range(120):
        deployment = deployment_execute(deployment.pk)
        if deployment.status != DeploymentStatus.PENDING:
            break
        time.sleep(0.5)
    return TransitionOutcome(version=deployment.version, deployment=deployment)


# --- approvals --------------------------------------------------------------------------------


def approval_decide(*, request: ApprovalRequest, actor, decision: str, comment: str = ""
                    ) -> ApprovalRequest:
    request = ApprovalRequest.objects.select_related(
        "version__model", "version__created_by", "requested_by").get(pk=request.pk)
    if decision not in Decision.values:
        raise ApplicationError(f"must be one of {', '.join(Decision.values)}", field="decision")
    if not roles.has_role(actor, roles.APPROVE_ROLES):
        raise _deny(actor, request, f"request.{decision}", "Only approvers and admins decide.")
    _require_team(actor, request.version.model, request, f"request.{decision}")
    if actor.pk == request.requested_by_id:
        raise _deny(actor, request, f"request.{decision}",
                    "Four eyes: you asked for this move, so someone else must decide.")
    if actor.pk == request.version.created_by_id:
        raise _deny(actor, request, f"request.{decision}",
                    "Four eyes: you registered this version, so someone else must decide.")
    if decision == Decision.REJECT and not comment.strip():
        raise ApplicationError("a rejection needs a comment saying why", field="comment")
    with transaction.atomic(durable=True):
        _lock_for_change(request.version)
        request = ApprovalRequest.objects.select_for_update(of=("self",)).select_related(
            "version__model").get(pk=request.pk)
        if request.status != RequestStatus.PENDING:
            raise Conflict(f"request #{request.pk} is {request.status}: no more decisions",
                           code="request_closed")
        if Approval.objects.filter(request=request, approver=actor).exists():
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
        _request_try_complete(request, actor=actor)
    request.refresh_from_db()
    return request


def _request_stale(request: ApprovalRequest, why: str) -> None:
    request.status = RequestStatus.STALE
    request.status_reason = why[:500]
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "status_reason", "decided_at"])
    audit.record(action="request.stale", actor=system_user(), subject=request,
                 model_name=request.version.model.name, reason=why,
                 before={"status": "pending"}, after={"status": "stale"})


def _request_try_complete(request: ApprovalRequest, *, actor) -> None:
    """Inside a transaction holding the model, the version and the request (in that order):
    deploy once approvals and validation allow."""
    approvals = request.decisions.filter(decision=Decision.APPROVE).count()
    if approvals < request.approvals_required:
        return
    if request.validation_run_id:
        run = ValidationRun.objects.get(pk=request.validation_run_id)
        if not run.finished:
            return  # the run's result will call back here
        if run.status != RunStatus.PASSED:
            _request_stale(request, f"validation #{run.pk} failed: {run.summary}")
            return
    version = ModelVersion.objects.select_for_update(of=("self",)).select_related("model").get(
        pk=request.version_id)
    if version.stage != request.from_stage:
        _request_stale(request, f"the version moved to {version.stage} meanwhile")
        return
    request.status = RequestStatus.APPROVED
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_at"])
    audit.record(action="request.approved", actor=actor, subject=request,
                 model_name=version.model.name, before={"status": "pending"},
                 after={"status": "approved", "approvals": approvals})
    _deployment_create(version=version, to_stage=request.to_stage, kind=request.kind,
                       actor=request.requested_by, reason=request.reason, request=request)


# --- deployments ------------------------------------------------------------------------------


def _deployment_create(*, version, to_stage, kind, actor, reason, request=None,
                       enqueue=True) -> Deployment:
    deployment = Deployment.objects.create(
        model=version.model, version=version, from_stage=version.stage, to_stage=to_stage,
        kind=kind, requested_by=actor, request=request, reason=reason,
    )
    audit.record(action="deployment.requested", actor=actor, subject=deployment,
                 model_name=version.model.name, reason=reason,
                 after={"deployment": deployment.pk, "version": version.version,
                        "from": version.stage, "to": to_stage, "kind": kind})
    if enqueue:
        from governance.tasks import execute_deployment

        transaction.on_commit(lambda: execute_deployment.delay(deployment.pk), robust=True)
    return deployment


class DeploymentBlocked(Exception):
    pass


def deployment_execute(deployment_id: int, *, checkpoint=None) -> Deployment:
    """Carry out a pending deployment. Safe to call twice: only a pending one is started.

    1. One transaction records the plan (which folders move where) and marks it `moving`.
    2. The folders move by rename, one step at a time.
    3. One transaction flips the rows, rewrites metadata.json files and marks it `completed`.
    A crash between 1 and 3 leaves a `moving` deployment that `deployment_recover` finishes.
    While another change of the same model's production version is moving, this one stays
    `pending` (the caller retries): plans are made against a settled production version.
    `checkpoint(step)` is called after the plan (-1) and after each move (0, 1): tests use it
    to kill the process at those points.
    """
    model_id = Deployment.objects.values_list("model_id", flat=True).get(pk=deployment_id)
    with transaction.atomic(durable=True):
        RegisteredModel.objects.select_for_update().get(pk=model_id)  # see _lock_for_change
        deployment = Deployment.objects.select_for_update().get(pk=deployment_id)
        if deployment.status != DeploymentStatus.PENDING:
            return deployment
        if deployment.touches_production and Deployment.objects.filter(
            Q(to_stage=PRODUCTION) | Q(from_stage=PRODUCTION),
            model_id=deployment.model_id, status=DeploymentStatus.MOVING,
        ).exists():
            return deployment
        version = ModelVersion.objects.select_for_update(of=("self",)).select_related(
            "model").get(pk=deployment.version_id)
        if version.stage != deployment.from_stage:
            return _fail(deployment, f"{version} is in {version.stage}, no longer in "
                         f"{deployment.from_stage}")
        if version.integrity_failed_at is not None:
            return _fail(deployment, f"{version} is not moved: a file failed its sha256 "
                         "check (see its integrity alert)")
        plan = []
        if deployment.to_stage == PRODUCTION:
            current = (ModelVersion.objects.select_for_update()
                       .filter(model_id=version.model_id, stage=PRODUCTION)
                       .exclude(pk=version.pk).first())
            if current is not None:
                deployment.replaced = current
                plan.append(_step(current, PRODUCTION, ARCHIVED))
        plan.append(_step(version, deployment.from_stage, deployment.to_stage))
        deployment.plan = plan
        deployment.status = DeploymentStatus.MOVING
        deployment.started_at = timezone.now()
        deployment.save(update_fields=["plan", "status", "started_at", "replaced"])
        audit.record(action="deployment.started", actor=deployment.requested_by,
                     subject=deployment, model_name=version.model.name,
                     after={"plan": [f"{s['version']}: {s['from']} → {s['to']}" for s in plan]})
    if checkpoint is not None:
        checkpoint(-1)
    return _carry_out_and_finish(deployment.pk, checkpoint=checkpoint)


def _step(version, source: str, target: str) -> dict:
    return {"version_id": version.pk, "model": version.model.name, "version": version.version,
            "from": source, "to": target}


def _paths(step):
    return (store.version_dir(step["model"], step["version"], step["from"]),
            store.version_dir(step["model"], step["version"], step["to"]))


def _carry_out_and_finish(deployment_id: int, *, checkpoint=None) -> Deployment:
    deployment = Deployment.objects.get(pk=deployment_id)
    done = []
    try:
        for index, step in enumerate(deployment.plan):
            try:
                source, target = _paths(step)
                if source.is_dir() and (link := store.symlink_inside(source)):
                    raise store.StoreError(f"{store.relative(source)}/{link} is a symbolic "
                                           "link; the store does not move what it would not "
                                           "follow")
                store.ensure_moved(source, target)
            except store.StoreError as exc:  # (a symbolic link on the way, too)
                raise DeploymentBlocked(f"{step['model']} {step['version']}: {exc}") from None
            done.append(step)
            if checkpoint is not None:
                checkpoint(index)
    except DeploymentBlocked as exc:
        # Put back what moved, so the folders match the rows, which have not changed.
        for step in reversed(done):
            try:
                source, target = _paths(step)
                store.ensure_moved(target, source)
            except store.StoreError:
                logger.exception("could not undo a move of deployment %s", deployment_id)
        with transaction.atomic(durable=True):
            RegisteredModel.objects.select_for_update().get(pk=deployment.model_id)
            deployment = Deployment.objects.select_for_update().get(pk=deployment_id)
            if deployment.status == DeploymentStatus.MOVING:
                return _fail(deployment, str(exc))
            return deployment
    return _finish(deployment_id)


def _fail(deployment: Deployment, error: str) -> Deployment:
    error = scrub_paths(error)
    deployment.status = DeploymentStatus.FAILED
    deployment.error = error[:2000]
    deployment.completed_at = timezone.now()
    deployment.save(update_fields=["status", "error", "completed_at"])
    audit.record(action="deployment.failed", actor=system_user(), subject=deployment,
                 model_name=deployment.model.name, reason=error,
                 after={"status": "failed"})
    if deployment.request_id:
        request = ApprovalRequest.objects.get(pk=deployment.request_id)
        request.status_reason = f"deployment #{deployment.pk} failed: {error}"[:500]
        request.save(update_fields=["status_reason"])
    return deployment


def _finish(deployment_id: int) -> Deployment:
    model_id = Deployment.objects.values_list("model_id", flat=True).get(pk=deployment_id)
    with transaction.atomic(durable=True):
        RegisteredModel.objects.select_for_update().get(pk=model_id)  # see _lock_for_change
        deployment = Deployment.objects.select_for_update(of=("self",)).select_related(
            "requested_by", "version__model").get(pk=deployment_id)
        if deployment.status != DeploymentStatus.MOVING:
            return deployment
        now = timezone.now()
        moved = []
        policy = policies.effective_policy(deployment.model)
        successor = deployment.version if deployment.to_stage == PRODUCTION else None
        # The plan archives the replaced version first, so there is never a moment with two
        # production rows (the unique constraint would refuse it).
        for step in deployment.plan:
            version = ModelVersion.objects.select_for_update(of=("self",)).select_related(
                "model", "created_by").get(pk=step["version_id"])
            before = version.stage
            version.stage = step["to"]
            version.stage_changed_at = now
            version.lifecycle = _lifecycle(version, step, deployment, now, successor, policy)
            version.save(update_fields=["stage", "stage_changed_at", "lifecycle", "updated_at"])
            audit.record(action="version.stage_changed", actor=deployment.requested_by,
                         subject=version, reason=deployment.reason,
                         before={"stage": before},
                         after={"stage": step["to"], "deployment": deployment.pk})
            moved.append(version)
        for version in moved:
            store.atomic_write_bytes(
                store.version_dir(version.model.name, version.version, version.stage)
                / store.METADATA_FILENAME,
                document_bytes(version_document(version)),
            )
        deployment.status = DeploymentStatus.COMPLETED
        deployment.completed_at = now
        deployment.save(update_fields=["status", "completed_at"])
        # A candidate that moved (promoted or archived) ends its rollout.
        for rollout in Rollout.objects.filter(model_id=deployment.model_id,
                                              status=RolloutStatus.ACTIVE,
                                              candidate__in=moved):
            _rollout_close(rollout, RolloutStatus.FINISHED, deployment.requested_by,
                           f"the candidate moved to {rollout.candidate.stage} "
                           f"(deployment #{deployment.pk})")
        serving_changed()
        audit.record(
            action="deployment.completed", actor=deployment.requested_by, subject=deployment,
            model_name=deployment.model.name, reason=deployment.reason,
            after={"version": deployment.version.version, "to": deployment.to_stage,
                   "replaced": deployment.replaced.version if deployment.replaced else None,
                   "kind": deployment.kind},
        )
        from registry.tasks import catalogue_rewrite

        transaction.on_commit(catalogue_rewrite.delay, robust=True)
    return deployment


def _lifecycle(version, step, deployment, now, successor, policy) -> dict:
    lifecycle = {k: v for k, v in version.lifecycle.items()
                 if k not in {"retired_at", "retired_by", "reason", "replaced_by",
                              "metrics_comparison"}}
    actor = deployment.requested_by.get_username()
    history = list(lifecycle.get("history", []))
    history.append({"stage": step["to"], "at": now.isoformat(), "by": actor,
                    "deployment": deployment.pk, "reason": deployment.reason})
    lifecycle["history"] = history
    if step["to"] == PRODUCTION:
        lifecycle.update(deployed_at=now.isoformat(), deployed_by=actor)
    elif step["to"] == ARCHIVED:
        lifecycle.update(retired_at=now.isoformat(), retired_by=actor, reason=deployment.reason)
        if successor is not None and successor.pk != version.pk:
            lifecycle["replaced_by"] = successor.version
            lifecycle["metrics_comparison"] = validation.metrics_comparison(
                successor.metrics, version.metrics, policy)
    return lifecycle


def deployment_recover(*, older_than_seconds: int = 0) -> list[Deployment]:
    """Finish deployments a crash interrupted, or start ones whose task was lost."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    handled = []
    for deployment in Deployment.objects.filter(status=DeploymentStatus.MOVING,
                                                started_at__lte=cutoff).order_by("pk"):
        handled.append(_carry_out_and_finish(deployment.pk))
    for deployment in Deployment.objects.filter(status=DeploymentStatus.PENDING,
                                                created_at__lte=cutoff).order_by("pk"):
        handled.append(deployment_execute(deployment.pk))
    return handled


def deployment_moving(version: ModelVersion) -> str | None:
    """The deployment moving this version's folder right now, if any (reconcile asks)."""
    for deployment in Deployment.objects.filter(model_id=version.model_id,
                                                status=DeploymentStatus.MOVING):
        if any(step["version_id"] == version.pk for step in deployment.plan):
            return f"deployment #{deployment.pk}"
    return None


def reconcile_hook(repair: bool) -> list:
    """Run by `manage.py reconcile` before it compares folders with rows."""
    from registry.reconcile import Finding

    if not repair:
        return [Finding("deployment_in_progress", str(d), f"{d.status} since "
                        f"{(d.started_at or d.created_at):%Y-%m-%d %H:%M:%S}")
                for d in Deployment.objects.filter(
                    status__in=[DeploymentStatus.PENDING, DeploymentStatus.MOVING])]
    return [
        Finding("interrupted_deployment", f"deployment #{d.pk}",
                f"{d.version} → {d.to_stage}: {d.status}" + (f" ({d.error})" if d.error else ""),
                repaired=d.status == DeploymentStatus.COMPLETED)
        for d in deployment_recover(older_than_seconds=0)
    ]


# --- what serves: the generation and rollouts -------------------------------------------------


def serving_changed() -> None:
    """Inside the transaction of a change: web processes notice the new generation."""
    if not ServingState.objects.filter(pk=1).update(generation=F("generation") + 1,
                                                    changed_at=timezone.now()):
        ServingState.objects.get_or_create(pk=1, defaults={"generation": 1})


# A rollout candidate is loaded into the web processes (it answers or shadows real traffic),
# so starting one is a four-eyes decision in either mode: an approver who is not its author.
ROLLOUT_ROLES = {
    RolloutMode.CANARY: roles.APPROVE_ROLES,
    RolloutMode.SHADOW: roles.APPROVE_ROLES,
}


def _check_steps(steps) -> list[int]:
    if (not isinstance(steps, list) or not steps
            or not all(isinstance(p, int) and not isinstance(p, bool) for p in steps)
            or any(p < 1 or p > 100 for p in steps) or steps != sorted(set(steps))):
        raise ApplicationError("increasing whole percentages between 1 and 100, e.g. "
                               "[10, 25, 50, 100]", field="steps")
    return steps


def rollout_start(*, version: ModelVersion, mode: str, actor, steps=None,
                  reason: str = "") -> Rollout:
    if mode not in RolloutMode.values:
        raise ApplicationError(f"must be one of {', '.join(RolloutMode.values)}", field="mode")
    version = ModelVersion.objects.select_related("model").get(pk=version.pk)
    if not roles.has_role(actor, ROLLOUT_ROLES[mode]):
        raise _deny(actor, version, f"rollout.{mode}",
                    f"A {mode} rollout needs the role "
                    f"{' or '.join(sorted(ROLLOUT_ROLES[mode]))}.")
    _require_team(actor, version.model, version, f"rollout.{mode}")
    if actor.pk == version.created_by_id:
        raise _deny(actor, version, f"rollout.{mode}",
                    "Four eyes: you registered this version, so someone else must give it "
                    "real traffic.")
    steps = _check_steps(steps if steps is not None else [10, 25, 50, 100])
    with transaction.atomic(durable=True):
        # Checked under the locks a deployment takes too: the candidate cannot move between
        # the check and the rollout's creation.
        version = _lock_for_change(version)
        if version.stage != STAGING:
            raise Conflict(f"{version} is in {version.stage}; a rollout candidate comes from "
                           "staging", code="invalid_candidate")
        latest = latest_validation(version)
        if latest is None or latest.status != RunStatus.PASSED:
            raise Conflict(f"{version} has not passed validation", code="not_validated")
        if not ModelVersion.objects.filter(model_id=version.model_id,
                                           stage=PRODUCTION).exists():
            raise Conflict(f"{version.model.name} has no production version to share "
                           "traffic with", code="no_production")
        if Rollout.objects.filter(model_id=version.model_id,
                                  status=RolloutStatus.ACTIVE).exists():
            raise Conflict(f"{version.model.name} already has an active rollout",
                           code="rollout_active")
        rollout = Rollout.objects.create(
            model=version.model, candidate=version, mode=mode, steps=steps, step=0,
            percent=steps[0] if mode == RolloutMode.CANARY else 0, started_by=actor,
            reason=reason)
        audit.record(action="rollout.started", actor=actor, subject=rollout,
                     model_name=version.model.name, reason=reason,
                     after={"candidate": version.version, "mode": mode,
                            "percent": rollout.percent, "steps": steps})
        serving_changed()
    return rollout


def _active_rollout(model: RegisteredModel) -> Rollout:
    RegisteredModel.objects.select_for_update().get(pk=model.pk)  # see _lock_for_change
    rollout = (Rollout.objects.select_for_update(of=("self",))
               .select_related("candidate", "model")
               .filter(model=model, status=RolloutStatus.ACTIVE).first())
    if rollout is None:
        raise Conflict(f"{model.name} has no active rollout", code="no_rollout")
    return rollout


def rollout_advance(*, model: RegisteredModel, actor, percent: int | None = None) -> Rollout:
    """Move a canary to its next step (or to `percent`)."""
    if not roles.has_role(actor, roles.APPROVE_ROLES):
        raise _deny(actor, model, "rollout.advance",
                    "Changing a canary's share needs the role approver or admin.")
    _require_team(actor, model, model, "rollout.advance")
    current = Rollout.objects.filter(model=model, status=RolloutStatus.ACTIVE).values_list(
        "candidate__created_by_id", flat=True).first()
    if current == actor.pk:
        raise _deny(actor, model, "rollout.advance",
                    "Four eyes: you registered the candidate, so someone else must change "
                    "its share of traffic.")
    with transaction.atomic(durable=True):
        rollout = _active_rollout(model)
        if rollout.mode != RolloutMode.CANARY:
            raise Conflict("a shadow rollout has no traffic share to change",
                           code="not_a_canary")
        before = rollout.percent
        if percent is None:
            # The next step is the first above the current share (it may have been set by hand).
            above = [i for i, share in enumerate(rollout.steps) if share > rollout.percent]
            if not above:
                raise Conflict(f"the canary is at its last step ({before}%): promote the "
                               "candidate or abort", code="last_step")
            rollout.step = above[0]
            rollout.percent = rollout.steps[rollout.step]
        else:
            if isinstance(percent, bool) or not isinstance(percent, int) or not 0 < percent <= 100:
                raise ApplicationError("a whole percentage from 1 to 100", field="percent")
            rollout.percent = percent
            rollout.step = max(0, sum(1 for share in rollout.steps if share <= percent) - 1)
        rollout.save(update_fields=["step", "percent", "updated_at"])
        audit.record(action="rollout.advanced", actor=actor, subject=rollout,
                     model_name=model.name, before={"percent": before},
                     after={"percent": rollout.percent})
        serving_changed()
    return rollout


def rollout_abort(*, model: RegisteredModel, actor, reason: str) -> Rollout:
    if not roles.has_role(actor, roles.REGISTER_ROLES | roles.APPROVE_ROLES):
        raise _deny(actor, model, "rollout.abort", "Your role cannot end a rollout.")
    _require_team(actor, model, model, "rollout.abort")
    if not reason.strip():
        raise ApplicationError("say why the rollout ends", field="reason")
    with transaction.atomic(durable=True):
        rollout = _active_rollout(model)
        _rollout_close(rollout, RolloutStatus.ABORTED, actor, reason)
        serving_changed()
    return rollout


def _rollout_close(rollout: Rollout, status: str, actor, reason: str) -> None:
    rollout.status = status
    rollout.ended_at = timezone.now()
    rollout.save(update_fields=["status", "ended_at", "updated_at"])
    audit.record(action=f"rollout.{status}", actor=actor, subject=rollout,
                 model_name=rollout.model.name, reason=reason,
                 before={"status": "active", "percent": rollout.percent},
                 after={"status": status})


# --- policies ---------------------------------------------------------------------------------


def policy_save(*, policy: Policy, actor, changes: dict) -> Policy:
    """Create or change a policy (the admin's form), audited with old and new values."""
    if not roles.has_role(actor, roles.ADMIN_ROLES):
        raise _deny(actor, policy if policy.pk else None, "policy.change",
                    "Only admins change policies.")
    with transaction.atomic(durable=True):
        before = policies.policy_snapshot(Policy.objects.get(pk=policy.pk)) if policy.pk else None
        for key, value in changes.items():
            if key not in policies.POLICY_FIELDS + ["model"]:
                raise ApplicationError("not a policy field", field=key)
            setattr(policy, key, value)
        policy.save()
        after = policies.policy_snapshot(policy)
        changed_before = {k: v for k, v in (before or {}).items() if after.get(k) != v}
        changed_after = {k: v for k, v in after.items() if (before or {}).get(k) != v}
        audit.record(action="policy.created" if before is None else "policy.changed",
                     actor=actor, subject=policy,
                     model_name=policy.model.name if policy.model_id else "",
                     before=changed_before or None, after=changed_after)
    return policy


# --- monitoring: reference profiles, passes, alerts, notifications ----------------------------

# Which figures each rule reads, and which parts of the traffic those figures need.
FAMILY = {
    AlertMetric.FEATURE_DRIFT: "drift", AlertMetric.PREDICTION_DRIFT: "drift",
    AlertMetric.PERFORMANCE_DROP: "performance", AlertMetric.LATENCY_P99: "latency",
    AlertMetric.ERROR_RATE: "errors",
}
PARTS = {"drift": {traffic.INPUTS, traffic.OUTPUTS}, "performance": {traffic.FEEDBACK},
         "latency": {traffic.LATENCY}, "errors": {traffic.ERRORS}}
DRIFT_STATISTICS = ("psi", "ks", "js")
PERFORMANCE_METRICS = ("accuracy", "precision", "recall", "f1_score", "auc_roc", "mae", "rmse")
# The project's default rules (created on migrate, and before a pass if missing).
DEFAULT_RULES = [
    dict(metric=AlertMetric.FEATURE_DRIFT, statistic="psi", threshold=0.2,
         severity=Severity.WARNING, window_minutes=60, min_rows=200),
    dict(metric=AlertMetric.PREDICTION_DRIFT, statistic="psi", threshold=0.2,
         severity=Severity.WARNING, window_minutes=60, min_rows=200),
    dict(metric=AlertMetric.PERFORMANCE_DROP, statistic="accuracy", threshold=0.05,
         severity=Severity.CRITICAL, window_minutes=1440, min_rows=50),
    dict(metric=AlertMetric.LATENCY_P99, statistic="", threshold=200.0,
         severity=Severity.WARNING, window_minutes=60, min_rows=20),
    dict(metric=AlertMetric.ERROR_RATE, statistic="", threshold=0.01,
         severity=Severity.CRITICAL, window_minutes=60, min_rows=20),
    dict(metric=AlertMetric.INTEGRITY, statistic="", threshold=0.0,
         severity=Severity.CRITICAL, window_minutes=1, min_rows=1),
]
RULE_FIELDS = ["model", "metric", "statistic", "threshold", "severity", "window_minutes",
               "min_rows", "resolve_after_runs", "enabled"]


def reference_profile_build(*, version: ModelVersion, data, predictions) -> dict:
    """The statistics of a version's reference sample: the fields of its ReferenceProfile."""
    return {"n_rows": data.n_rows,
            "features": monitoring.feature_profiles(data.columns, version.columns),
            "predictions": monitoring.prediction_profile(predictions, version.model.task_type),
            "predicted_rows": 0 if predictions is None else len(predictions)}


def reference_profile_save(*, version: ModelVersion, sha256: str, data, predictions
                           ) -> ReferenceProfile:
    """Build and store a profile outside validation (tests and benchmarks set one up)."""
    fields = reference_profile_build(version=version, data=data, predictions=predictions)
    with transaction.atomic():
        profile, _ = ReferenceProfile.objects.update_or_create(
            version=version, defaults={**fields, "sha256": sha256})
    return profile


def ensure_default_rules(**_kwargs) -> None:
    for spec in DEFAULT_RULES:
        AlertRule.objects.get_or_create(model=None, metric=spec["metric"],
                                        statistic=spec["statistic"], defaults=spec)


def effective_rules(model: RegisteredModel) -> list[AlertRule]:
    """The model's own rules, and the project defaults it has not replaced or switched off."""
    ensure_default_rules()
    merged = {}
    for rule in AlertRule.objects.filter(Q(model__isnull=True) | Q(model=model)).order_by(
            F("model").asc(nulls_first=True), "id"):
        merged[(rule.metric, rule.statistic)] = rule  # the model's own comes last and wins
    return [rule for rule in merged.values() if rule.enabled]


def check_rule(values: dict) -> None:
    metric, statistic = values.get("metric"), values.get("statistic", "")
    if metric not in AlertMetric.values:
        raise ApplicationError(f"must be one of {', '.join(AlertMetric.values)}", field="metric")
    if metric in (AlertMetric.FEATURE_DRIFT, AlertMetric.PREDICTION_DRIFT):
        if statistic not in DRIFT_STATISTICS:
            raise ApplicationError(f"a drift rule reads one of {', '.join(DRIFT_STATISTICS)}",
                                   field="statistic")
    elif metric == AlertMetric.PERFORMANCE_DROP:
        if statistic not in PERFORMANCE_METRICS:
            raise ApplicationError(f"one of {', '.join(PERFORMANCE_METRICS)}",
                                   field="statistic")
    elif statistic:
        raise ApplicationError(f"a {metric} rule has no statistic", field="statistic")
    threshold = values.get("threshold")
    if (isinstance(threshold, bool) or not isinstance(threshold, int | float)
            or not math.isfinite(threshold) or threshold < 0):
        raise ApplicationError("a number, 0 or more", field="threshold")
    if values.get("severity") not in Severity.values:
        raise ApplicationError(f"one of {', '.join(Severity.values)}", field="severity")
    for key, high in (("window_minutes", MAX_INT), ("min_rows", MAX_INT),
                      ("resolve_after_runs", MAX_SMALLINT)):
        value = values.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise ApplicationError(f"a whole number from 1 to {high}", field=key)


def _rule_snapshot(rule: AlertRule) -> dict:
    return {key: (rule.model.name if key == "model" and rule.model_id else
                  None if key == "model" else getattr(rule, key)) for key in RULE_FIELDS}


def alert_rule_save(*, actor, rule: AlertRule | None = None, **changes) -> AlertRule:
    """Create a rule (rule=None) or change one. Project defaults are the admins'; a model's
    rules its owner's, the approvers' and the admins'."""
    model = changes.get("model", rule.model if rule else None)
    allowed = (roles.ADMIN_ROLES if model is None
               else roles.APPROVE_ROLES)
    owner = model is not None and model.owner_id == actor.pk
    if not (roles.has_role(actor, allowed) or owner):
        raise _deny(actor, rule or model, "alert_rule.change",
                    "Project default rules are the admins'; a model's rules its owner's, "
                    "the approvers' and the admins'.")
    if model is not None:
        _require_team(actor, model, rule or model, "alert_rule.change")
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ApplicationError("not a rule field", field=sorted(unknown)[0])
    if rule is not None and "model" in changes and changes["model"] != rule.model:
        raise ApplicationError("a rule stays with its model; make a new one", field="model")
    with transaction.atomic(durable=True):
        if rule is None:
            values = {"statistic": "", "severity": Severity.WARNING, "window_minutes": 60,
                      "min_rows": 100, "resolve_after_runs": 3, "enabled": True, **changes}
            check_rule(values)
            before = None
            rule = AlertRule(**values)
        else:
            rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
            before = _rule_snapshot(rule)
            for key, value in changes.items():
                setattr(rule, key, value)
            check_rule({k: getattr(rule, k) for k in RULE_FIELDS})
        try:
            with transaction.atomic():
                rule.save()
        except IntegrityError:
            raise Conflict("there is already such a rule for this scope; change it instead",
                           field="metric") from None
        after = _rule_snapshot(rule)
        audit.record(action="alert_rule.created" if before is None else "alert_rule.changed",
                     actor=actor, subject=rule,
                     model_name=rule.model.name if rule.model_id else "",
                     before={k: v for k, v in (before or {}).items() if after[k] != v} or None,
                     after={k: v for k, v in after.items() if (before or {}).get(k) != v})
    return rule


def webhook_save(*, actor, webhook: Webhook | None = None, **changes) -> Webhook:
    if not roles.has_role(actor, roles.ADMIN_ROLES):
        raise _deny(actor, webhook, "webhook.change", "Only admins manage webhooks.")
    fields = ["name", "url", "secret", "model", "min_severity", "enabled"]
    unknown = set(changes) - set(fields)
    if unknown:
        raise ApplicationError("not a webhook field", field=sorted(unknown)[0])
    if "url" in changes or webhook is None:  # an old URL refused now can still be switched off
        webhook_targets.url_check(str(changes.get("url", "")))
    with transaction.atomic(durable=True):
        created = webhook is None
        webhook = webhook or Webhook()
        before = None if created else {f: str(getattr(webhook, f)) for f in fields
                                       if f != "secret"}
        for key, value in changes.items():
            setattr(webhook, key, value)
        webhook.save()
        after = {f: str(getattr(webhook, f)) for f in fields if f != "secret"}
        audit.record(action="webhook.created" if created else "webhook.changed", actor=actor,
                     subject=webhook, before=before,
                     after={**after, "secret_changed": "secret" in changes})
    return webhook


def models_to_monitor() -> list[int]:
    """Models with a production version or an active rollout, and those with an active
    alert (which a pass resolves once they serve nothing)."""
    serving = ModelVersion.objects.filter(stage=PRODUCTION).values("model_id")
    rolling = Rollout.objects.filter(status=RolloutStatus.ACTIVE).values("model_id")
    alerting = Alert.objects.filter(ACTIVE_ALERT).values("model_id")
    return list(RegisteredModel.objects.filter(
        Q(pk__in=serving) | Q(pk__in=rolling) | Q(pk__in=alerting))
        .order_by("name").values_list("pk", flat=True))


def monitored_versions(model: RegisteredModel) -> list[tuple[ModelVersion, str]]:
    """The production version, and a canary or shadow candidate, with how each serves."""
    out = [(v, "production") for v in ModelVersion.objects.filter(
        model=model, stage=PRODUCTION).select_related("model")]
    rollout = Rollout.objects.select_related("candidate__model").filter(
        model=model, status=RolloutStatus.ACTIVE).first()
    if rollout is not None:
        out.append((rollout.candidate, rollout.mode))
    return out


def _figures(version: ModelVersion, profile, families: set[str], since, until) -> dict:
    # Errors are one cheap count, and the volume line of every window shows them.
    parts = set().union(traffic.ERRORS, *(PARTS[family] for family in families))
    seen = traffic.window(version, since, until, parts=parts,
                          max_rows=settings.MONITORING_MAX_ROWS)
    out = {"volume": {"requests": seen.requests, "rows": seen.rows, "failed": seen.failed,
                      "rejected": seen.rejected}}
    if "drift" in families:
        if profile is None:
            out["drift"] = {"skipped": "no reference sample: add one to the version"}
        elif not seen.logged_rows:
            out["drift"] = {"skipped": "no data", "n": 0}
        else:
            features = {}
            for name, reference in profile.features.items():
                if name in seen.columns:
                    features[name] = monitoring.drift(reference, seen.columns[name])
            predicted = (monitoring.drift(profile.predictions, seen.predictions)
                         if profile.predictions and seen.predictions is not None else None)
            out["drift"] = {"n": seen.logged_rows, "truncated": seen.truncated,
                            "features": features, "predictions": predicted}
    if "performance" in families:
        labelled = seen.labelled
        if labelled is None:
            out["performance"] = {"skipped": "no feedback", "n": 0}
        else:
            if monitoring.categorical_predictions(version.model.task_type):
                live = monitoring.classification_performance(
                    labelled.actual, labelled.predicted, labelled.probabilities)
            else:
                live = monitoring.regression_performance(labelled.actual, labelled.predicted)
            live["registered"] = {k: version.metrics[k] for k in live
                                  if k in version.metrics}
            out["performance"] = live
    if "latency" in families:
        out["latency"] = (monitoring.latency_figures(seen.latency_ms)
                          if seen.latency_ms is not None and seen.latency_ms.size
                          else {"skipped": "no data", "n": 0})
    if "errors" in families:
        attempts = seen.requests + seen.failed
        out["errors"] = {"n": attempts, "failed": seen.failed, "rejected": seen.rejected,
                         "error_rate": seen.failed / attempts if attempts else None,
                         "rejected_rate": (seen.rejected / (attempts + seen.rejected)
                                           if attempts + seen.rejected else None)}
    return out


@dataclass
class Measure:
    value: float | None  # None: not judged (no data, too few rows, nothing to compare)
    evidence: dict


def _measure(rule: AlertRule, version: ModelVersion, figures: dict) -> Measure:
    family = figures.get(FAMILY[rule.metric]) or {}
    n = family.get("n") or 0
    if family.get("skipped") or n < rule.min_rows:
        return Measure(None, {"not_judged": family.get("skipped") or
                              f"{n} rows, fewer than the rule's {rule.min_rows}"})
    if rule.metric == AlertMetric.FEATURE_DRIFT:
        values = {name: monitoring.statistic_value(f, rule.statistic)
                  for name, f in family["features"].items() if f}
        values = {name: v for name, v in values.items() if v is not None}
        if not values:
            return Measure(None, {"not_judged": f"no feature has a {rule.statistic}"})
        drifting = {name: family["features"][name] for name, v in values.items()
                    if v > rule.threshold}
        return Measure(max(values.values()), {"n": n, "features": drifting})
    if rule.metric == AlertMetric.PREDICTION_DRIFT:
        figures_ = family.get("predictions")
        value = monitoring.statistic_value(figures_, rule.statistic) if figures_ else None
        if value is None:
            return Measure(None, {"not_judged": "no prediction distribution to compare with"})
        return Measure(value, {"n": n, "predictions": figures_})
    if rule.metric == AlertMetric.PERFORMANCE_DROP:
        live, registered = family.get(rule.statistic), version.metrics.get(rule.statistic)
        if live is None or not isinstance(registered, int | float):
            return Measure(None, {"not_judged": f"no registered or live {rule.statistic}"})
        drop = monitoring.performance_drop(rule.statistic, live, registered)
        return Measure(drop, {"n": n, "metric": rule.statistic, "live": live,
                              "registered": registered})
    if rule.metric == AlertMetric.LATENCY_P99:
        return Measure(family["p99_ms"], {"n": n, "p50_ms": family["p50_ms"],
                                          "p99_ms": family["p99_ms"]})
    return Measure(family["error_rate"], {"n": n, "failed": family["failed"],
                                          "rejected": family["rejected"]})


def _alert_title(rule: AlertRule, worst: Measure) -> str:
    if rule.metric == AlertMetric.FEATURE_DRIFT:
        names = ", ".join(sorted(worst.evidence["features"])) or "a feature"
        return f"Feature drift in {names} ({rule.statistic} {worst.value:.3g} > {rule.threshold:g})"
    if rule.metric == AlertMetric.PREDICTION_DRIFT:
        return f"Prediction drift ({rule.statistic} {worst.value:.3g} > {rule.threshold:g})"
    if rule.metric == AlertMetric.PERFORMANCE_DROP:
        e = worst.evidence
        return (f"Live {e['metric']} {e['live']:.3g} vs {e['registered']:.3g} registered "
                f"(worse by {worst.value:.3g} > {rule.threshold:g})")
    if rule.metric == AlertMetric.LATENCY_P99:
        return f"p99 latency {worst.value:.0f} ms > {rule.threshold:g} ms"
    return f"Error rate {worst.value:.1%} > {rule.threshold:.1%}"


def monitoring_pass(*, model: RegisteredModel, now=None) -> list[MonitoringRun]:
    """One monitoring pass over a model: figures for each served version, one run each,
    then every rule judged (alerts opened, updated or resolved) in one transaction."""
    now = now or timezone.now()
    # (Integrity alerts are opened by the files' checks, not judged from traffic.)
    rules = [rule for rule in effective_rules(model) if rule.metric in FAMILY]
    windows: dict[int, set[str]] = {settings.MONITORING_WINDOW_MINUTES: set(PARTS)}
    for rule in rules:
        windows.setdefault(rule.window_minutes, set()).add(FAMILY[rule.metric])
    measured, broken = [], []
    for version, route in monitored_versions(model):
        started = time.perf_counter()
        try:
            profile = ReferenceProfile.objects.filter(version=version).first()
            figures = {str(minutes): _figures(version, profile, families,
                                              now - timedelta(minutes=minutes), now)
                       for minutes, families in sorted(windows.items())}
        except Exception as exc:  # one version's odd data must not stop the others' pass
            logger.exception("monitoring of %s failed", version)
            broken.append((version, route, scrub_paths(f"{type(exc).__name__}: {exc}")))
            continue
        measured.append((version, route, figures, (time.perf_counter() - started) * 1000))
    with transaction.atomic(durable=True):
        RegisteredModel.objects.select_for_update().get(pk=model.pk)  # one pass at a time
        firing = _judge(model, rules, measured, now)
        runs = [MonitoringRun.objects.create(
            model=model, version=version, route=route, status=RunStatusMonitoring.FAILED,
            summary=f"the pass failed: {error}"[:500], created_at=now)
            for version, route, error in broken]
        if not measured and not broken:
            _retire_alerts(model, "the model no longer serves any version")
        for version, route, figures, duration in measured:
            volume = figures[str(settings.MONITORING_WINDOW_MINUTES)]["volume"]
            quiet = not any(f["volume"]["requests"] or f["volume"]["failed"]
                            or f["volume"]["rejected"] for f in figures.values())
            status = (RunStatusMonitoring.NO_DATA if quiet else
                      RunStatusMonitoring.ALERTING if version.pk in firing else
                      RunStatusMonitoring.OK)
            summary = ("no traffic in the window" if quiet else
                       f"{volume['requests']} requests; alerting: "
                       f"{', '.join(sorted(firing[version.pk]))}" if version.pk in firing else
                       f"{volume['requests']} requests; no rule holds")
            runs.append(MonitoringRun.objects.create(
                model=model, version=version, route=route, status=status, figures=figures,
                summary=summary[:500], requests=volume["requests"],
                duration_ms=round(duration, 1), created_at=now))
    return runs


def _retire_alerts(model, reason: str, keep=()) -> None:
    """Resolve the model's active alerts whose rule is not (or no longer) judged for it."""
    for alert in Alert.objects.select_for_update().filter(ACTIVE_ALERT, model=model).exclude(
            rule__in=list(keep)).exclude(rule__metric=AlertMetric.INTEGRITY):
        _alert_close(alert, actor=system_user(), reason=reason)


def _judge(model, rules, measured, now) -> dict[int, set[str]]:
    """Open, update or resolve each rule's alert. Returns {version id: {rule names}} that
    hold, for the runs' status."""
    firing: dict[int, set[str]] = {}
    if measured:  # a rule switched off or replaced since its alert opened: nothing judges it
        _retire_alerts(model, "its rule no longer applies to this model", keep=rules)
    for rule in rules:
        window = str(rule.window_minutes)
        judged = [(version, _measure(rule, version, figures[window]))
                  for version, _route, figures, _ in measured]
        held = [(v, m) for v, m in judged if m.value is not None and m.value > rule.threshold]
        active = Alert.objects.select_for_update().filter(ACTIVE_ALERT, rule=rule,
                                                          model=model).first()
        if held:
            for version, _ in held:
                firing.setdefault(version.pk, set()).add(rule.get_metric_display())
            worst_version, worst = max(held, key=lambda item: item[1].value)
            evidence = {"window_minutes": rule.window_minutes, "threshold": rule.threshold,
                        "statistic": rule.statistic, "version": worst_version.version,
                        "versions": {v.version: m.evidence for v, m in held}}
            if active is None:
                _alert_open(rule, model, worst, evidence, now)
            else:
                active.count += 1
                active.last_seen, active.value, active.evidence = now, worst.value, evidence
                active.title = _alert_title(rule, worst)[:300]
                active.clear_runs = 0
                active.save(update_fields=["count", "last_seen", "value", "evidence", "title",
                                           "clear_runs"])
        elif active is not None and any(m.value is not None for _, m in judged):
            # A pass with enough data and no breach; a pass with no data is no evidence.
            active.clear_runs += 1
            if active.clear_runs >= rule.resolve_after_runs:
                _alert_close(active, actor=system_user(),
                             reason=f"clear for {active.clear_runs} passes in a row")
            else:
                active.save(update_fields=["clear_runs"])
    return firing


def _alert_open(rule, model, worst: Measure, evidence: dict, now) -> Alert:
    alert = Alert.objects.create(
        rule=rule, model=model, severity=rule.severity, title=_alert_title(rule, worst)[:300],
        value=worst.value, threshold=rule.threshold, evidence=evidence, first_seen=now,
        last_seen=now)
    audit.record(action="alert.opened", actor=system_user(), subject=alert,
                 model_name=model.name, reason=alert.title,
                 after={"status": "open", "rule": str(rule), "value": worst.value,
                        "severity": alert.severity})
    _deliveries_create(alert, "opened")
    return alert


def _alert_close(alert: Alert, *, actor, reason: str) -> None:
    before = alert.status
    alert.status = AlertStatus.RESOLVED
    alert.resolved_by = actor
    alert.resolved_at = timezone.now()
    alert.resolution = reason[:300]
    alert.save(update_fields=["status", "resolved_by", "resolved_at", "resolution",
                              "clear_runs"])
    audit.record(action="alert.resolved", actor=actor, subject=alert,
                 model_name=alert.model.name, reason=reason,
                 before={"status": before}, after={"status": "resolved"})
    _deliveries_create(alert, "resolved")


ALERT_ROLES = roles.APPROVE_ROLES  # and each model's owner, for its own alerts


def may_act_on_alert(actor, alert: Alert) -> bool:
    return access.may_act(actor, alert.model) and (roles.has_role(actor, ALERT_ROLES) or (
        roles.has_role(actor, roles.REGISTER_ROLES) and alert.model.owner_id == actor.pk))


def alert_acknowledge(*, alert: Alert, actor, comment: str = "") -> Alert:
    """Someone is on it: the alert stays active (and updated) but stops asking for a person."""
    if not may_act_on_alert(actor, alert):
        raise _deny(actor, alert, "alert.acknowledge",
                    "Alerts are acknowledged by the model's owner, approvers and admins.")
    with transaction.atomic(durable=True):
        alert = Alert.objects.select_for_update(of=("self",)).select_related("model").get(
            pk=alert.pk)
        if alert.status != AlertStatus.OPEN:
            raise Conflict(f"alert #{alert.pk} is {alert.status}; only an open alert is "
                           "acknowledged", code="alert_not_open")
        alert.status = AlertStatus.ACKNOWLEDGED
        alert.acknowledged_by, alert.acknowledged_at = actor, timezone.now()
        alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at"])
        audit.record(action="alert.acknowledged", actor=actor, subject=alert,
                     model_name=alert.model.name, reason=comment,
                     before={"status": "open"}, after={"status": "acknowledged"})
    return alert


def alert_resolve(*, alert: Alert, actor, comment: str) -> Alert:
    if not may_act_on_alert(actor, alert):
        raise _deny(actor, alert, "alert.resolve",
                    "Alerts are resolved by the model's owner, approvers and admins.")
    if not comment.strip():
        raise ApplicationError("say what was done about it", field="comment")
    with transaction.atomic(durable=True):
        alert = Alert.objects.select_for_update(of=("self",)).select_related("model").get(
            pk=alert.pk)
        if alert.status == AlertStatus.RESOLVED:
            raise Conflict(f"alert #{alert.pk} is already resolved", code="alert_resolved")
        _alert_close(alert, actor=actor, reason=comment)
    return alert


def _deliveries_create(alert: Alert, event: str) -> None:
    """Inside the alert's transaction: one delivery per recipient, sent after commit."""
    from governance.tasks import deliver_alert

    targets = []
    owner_email = alert.model.owner.email
    if owner_email:
        targets.append(("email", None, owner_email))
    rank = SEVERITY_ORDER[alert.severity]
    for hook in Webhook.objects.filter(Q(model__isnull=True) | Q(model=alert.model),
                                       enabled=True):
        if SEVERITY_ORDER[hook.min_severity] <= rank:
            targets.append(("webhook", hook, hook.url))
    for channel, hook, target in targets:
        delivery = AlertDelivery.objects.create(alert=alert, event=event, channel=channel,
                                                webhook=hook, target=target[:500],
                                                next_attempt_at=timezone.now())
        transaction.on_commit(lambda pk=delivery.pk: deliver_alert.delay(pk), robust=True)




def delivery_attempt(delivery_id: int) -> AlertDelivery | None:
    """Send one due delivery once. Claimed by a compare-and-set, so two workers (or a retry
    and the periodic sweep) never send it twice at once; a sent one is never sent again."""
    from governance import notifications

    now = timezone.now()
    claimed = AlertDelivery.objects.filter(
        pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING],
        next_attempt_at__lte=now,
    ).update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now)
    if not claimed:
        return None
    delivery = AlertDelivery.objects.select_related("alert__model", "alert__rule",
                                                    "webhook").get(pk=delivery_id)
    try:
        response_status = notifications.alert_send(delivery)
        error = ""
    except notifications.DeliveryError as exc:
        response_status, error = exc.status, str(exc)
    except Exception as exc:  # a bad address or URL: retried, then failed, never stuck
        logger.exception("delivery %s raised", delivery_id)
        response_status, error = None, f"{type(exc).__name__}: {exc}"
    with transaction.atomic():
        if not error:
            delivery.status, delivery.sent_at = DeliveryStatus.SENT, timezone.now()
        elif delivery.attempts > len(settings.ALERT_DELIVERY_BACKOFF_SECONDS):
            delivery.status = DeliveryStatus.FAILED
        else:
            delivery.status = DeliveryStatus.RETRYING
            delivery.next_attempt_at = timezone.now() + timedelta(
                seconds=settings.ALERT_DELIVERY_BACKOFF_SECONDS[delivery.attempts - 1])
        delivery.last_error, delivery.response_status = scrub_paths(error)[:500], response_status
        delivery.save(update_fields=["status", "sent_at", "next_attempt_at", "last_error",
                                     "response_status"])
        if delivery.status == DeliveryStatus.FAILED:
            audit.record(action="alert.delivery_failed", actor=system_user(),
                         subject=delivery.alert, model_name=delivery.alert.model.name,
                         reason=error, after={"channel": delivery.channel,
                                              "target": delivery.target,
                                              "attempts": delivery.attempts})
    return delivery


def deliveries_due(*, stuck_after_seconds: int = 300) -> list[int]:
    """Deliveries to try now: due retries, and sends a dead worker left `sending`."""
    now = timezone.now()
    AlertDelivery.objects.filter(
        status=DeliveryStatus.SENDING,
        next_attempt_at__lte=now - timedelta(seconds=stuck_after_seconds),
    ).update(status=DeliveryStatus.RETRYING)
    return list(AlertDelivery.objects.filter(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING], next_attempt_at__lte=now,
    ).values_list("pk", flat=True))



# --- artifact integrity -----------------------------------------------------------------------


def integrity_alert_sync(*, version_id: int) -> Alert | None:
    """Bring the model's integrity alert in line with its versions' flags (registry sets
    them): a flagged version opens (or updates) a critical alert naming the file and both
    hashes; once no version of the model is flagged, the alert resolves. Web processes
    notice at once (the serving generation) and stop serving a flagged version."""
    version = ModelVersion.objects.select_related("model").get(pk=version_id)
    model = version.model
    ensure_default_rules()
    with transaction.atomic(durable=True):
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        rule = next((r for r in effective_rules(model) if r.metric == AlertMetric.INTEGRITY),
                    None)
        active = Alert.objects.select_for_update().filter(
            ACTIVE_ALERT, model=model, rule__metric=AlertMetric.INTEGRITY).first()
        flagged = list(ModelVersion.objects.filter(model=model,
                                                   integrity_failed_at__isnull=False))
        serving_changed()
        if not flagged:
            if active is not None:
                _alert_close(active, actor=system_user(),
                             reason="every file matches its registered sha256 again")
            return active
        if rule is None:  # switched off for this model
            return None
        now = timezone.now()
        evidence = {"versions": {v.version: v.integrity_problem for v in flagged}}
        worst = flagged[0]
        problem = worst.integrity_problem
        state = ("is missing" if problem.get("missing") else
                 f"has sha256 {problem.get('actual_sha256')}, not the registered "
                 f"{problem.get('expected_sha256')}")
        title = f"{problem.get('file') or 'a file'} of {worst} {state}"[:300]
        if active is None:
            alert = Alert.objects.create(
                rule=rule, model=model, severity=rule.severity, title=title, value=len(flagged),
                threshold=rule.threshold, evidence=evidence, first_seen=now, last_seen=now)
            audit.record(action="alert.opened", actor=system_user(), subject=alert,
                         model_name=model.name, reason=title,
                         after={"status": "open", "rule": str(rule), "value": len(flagged),
                                "severity": alert.severity})
            _deliveries_create(alert, "opened")
            return alert
        active.count += 1
        active.last_seen, active.value, active.evidence, active.title = (
            now, len(flagged), evidence, title)
        active.save(update_fields=["count", "last_seen", "value", "evidence", "title"])
        return active


def integrity_sweep() -> list[str]:
    """Hash the files of every version that serves (production, rollout candidates) and of
    every flagged one: flag what fails, lift the flag from what is intact again."""
    from registry import services as registry_services
    from registry.loaders import verify_files

    candidates = Rollout.objects.filter(status=RolloutStatus.ACTIVE).values("candidate_id")
    versions = (ModelVersion.objects.filter(Q(stage=PRODUCTION) | Q(pk__in=candidates)
                                            | Q(integrity_failed_at__isnull=False))
                .select_related("model").prefetch_related("files"))
    changed = []
    for version in versions:
        problem = verify_files(version)
        if problem is not None:
            if registry_services.version_integrity_failed(version=version, error=problem,
                                                          found_by="integrity sweep"):
                changed.append(f"{version}: flagged")
        elif registry_services.version_integrity_cleared(version=version,
                                                         found_by="integrity sweep"):
            changed.append(f"{version}: intact again")
    return changed
