"""Lifecycle, validation, approvals and deployments: every governance write.

Only this module changes a version's stage. Each public function is one durable transaction
that writes its audit events; work that moves folders is a `Deployment`, recorded before the
first rename so that `deployment_recover` (run by `reconcile` and a periodic task) can finish
or undo it after a crash. Who may do what is checked here, so the API, the admin and the
command line enforce the same rules; a refusal is itself audited.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core import audit, roles
from core.errors import ApplicationError, Conflict, scrub_paths
from core.queue import enqueue_on_commit
from governance import policies, profiles, validation
from governance.models import (
    Approval,
    ApprovalRequest,
    Decision,
    Deployment,
    DeploymentStatus,
    Policy,
    ReferenceProfile,
    RequestStatus,
    Rollout,
    RolloutMode,
    RolloutStatus,
    RunStatus,
    ServingState,
    ValidationCheck,
    ValidationRun,
)
from governance.selectors import latest_validation
from registry import access, store
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
    run = ValidationRun.objects.create(version=version, trigger=trigger, requested_by=actor)
    enqueue_on_commit("governance.validation_execute", run.pk)
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
        raise audit.denied(actor=actor, subject=version, attempted="validation.start", message="Your role cannot start a validation.")
    access.require_action(actor, version.model, "do this", subject=version,
                          attempted="validation.start")
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
        raise audit.denied(actor=actor, subject=version, attempted=f"transition.{version.stage}->{to_stage}",
                    message=f"Moving {version.stage} → {to_stage} needs the role "
                    f"{' or '.join(sorted(needed))}.")
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
            enqueue_on_commit("governance.approvers_notify", request.pk)
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
        raise audit.denied(actor=actor, subject=request, attempted=f"request.{decision}", message="Only approvers and admins decide.")
    access.require_action(actor, request.version.model, "do this", subject=request,
                          attempted=f"request.{decision}")
    if actor.pk == request.requested_by_id:
        raise audit.denied(actor=actor, subject=request, attempted=f"request.{decision}",
                    message="Four eyes: you asked for this move, so someone else must decide.")
    if actor.pk == request.version.created_by_id:
        raise audit.denied(actor=actor, subject=request, attempted=f"request.{decision}",
                    message="Four eyes: you registered this version, so someone else must decide.")
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
        enqueue_on_commit("governance.deployment_execute", deployment.pk)
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
        enqueue_on_commit("registry.catalogue_rewrite")
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


def interrupted_recover(*, older_than_seconds: int = 120) -> list:
    """Finish deployments and validations a dead worker or a lost message left behind (the
    periodic task)."""
    done = deployment_recover(older_than_seconds=older_than_seconds)
    return done + validation_recover(older_than_seconds=max(older_than_seconds, 900))


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
        raise audit.denied(actor=actor, subject=version, attempted=f"rollout.{mode}",
                    message=f"A {mode} rollout needs the role "
                    f"{' or '.join(sorted(ROLLOUT_ROLES[mode]))}.")
    access.require_action(actor, version.model, "do this", subject=version,
                          attempted=f"rollout.{mode}")
    if actor.pk == version.created_by_id:
        raise audit.denied(actor=actor, subject=version, attempted=f"rollout.{mode}",
                    message="Four eyes: you registered this version, so someone else must give it "
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
        raise audit.denied(actor=actor, subject=model, attempted="rollout.advance",
                    message="Changing a canary's share needs the role approver or admin.")
    access.require_action(actor, model, "do this", subject=model,
                          attempted="rollout.advance")
    current = Rollout.objects.filter(model=model, status=RolloutStatus.ACTIVE).values_list(
        "candidate__created_by_id", flat=True).first()
    if current == actor.pk:
        raise audit.denied(actor=actor, subject=model, attempted="rollout.advance",
                    message="Four eyes: you registered the candidate, so someone else must change "
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
        raise audit.denied(actor=actor, subject=model, attempted="rollout.abort", message="Your role cannot end a rollout.")
    access.require_action(actor, model, "do this", subject=model,
                          attempted="rollout.abort")
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
        raise audit.denied(actor=actor, subject=policy if policy.pk else None, attempted="policy.change",
                    message="Only admins change policies.")
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


# --- the reference profile monitoring compares with ----------------------------------------


def reference_profile_build(*, version: ModelVersion, data, predictions) -> dict:
    """The statistics of a version's reference sample: the fields of its ReferenceProfile."""
    return {"n_rows": data.n_rows,
            "features": profiles.feature_profiles(data.columns, version.columns),
            "predictions": profiles.prediction_profile(predictions, version.model.task_type),
            "predicted_rows": 0 if predictions is None else len(predictions)}


def reference_profile_save(*, version: ModelVersion, sha256: str, data, predictions
                           ) -> ReferenceProfile:
    """Build and store a profile outside validation (tests and benchmarks set one up)."""
    fields = reference_profile_build(version=version, data=data, predictions=predictions)
    with transaction.atomic():
        profile, _ = ReferenceProfile.objects.update_or_create(
            version=version, defaults={**fields, "sha256": sha256})
    return profile


# --- artifact integrity of what serves --------------------------------------------------------


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
