"""Deployments: the moves of version folders between stages, crash-safe.

Work that moves folders is a `Deployment`, recorded before the first rename so that
`deployment_recover` (run by `reconcile` and a periodic task) can finish or undo it after a
crash. The registry writes the rows' stages and metadata.json (registry.services)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import audit
from core.errors import scrub_paths
from core.queue import enqueue_on_commit
from governance import policies, validation
from governance.models import (
    ApprovalRequest,
    Deployment,
    DeploymentStatus,
    Rollout,
    RolloutStatus,
)
from governance.rules import ARCHIVED, PRODUCTION
from governance.services import common, rollouts
from registry import services as registry_services
from registry import store
from registry.models import ModelVersion, RegisteredModel

logger = logging.getLogger(__name__)


def deployment_create(*, version, to_stage, kind, actor, reason, request=None,
                      enqueue=True) -> Deployment:
    """Record a move of `version` set off by `actor` (its `deployed_by`). A move an approval
    request started is asked for by the request's author and set off by the approver whose
    decision completed it; any other is asked for and set off by the actor alone."""
    deployment = Deployment.objects.create(
        model=version.model, version=version, from_stage=version.stage, to_stage=to_stage,
        kind=kind, requested_by=request.requested_by if request else actor, deployed_by=actor,
        request=request, reason=reason,
    )
    audit.record(action="deployment.requested", actor=actor, subject=deployment,
                 model_name=version.model.name, reason=reason,
                 after={"deployment": deployment.pk, "version": version.version,
                        "from": version.stage, "to": to_stage, "kind": kind,
                        **attribution(deployment)})
    if enqueue:
        enqueue_on_commit("governance.deployment_execute", deployment.pk)
    return deployment


def attribution(deployment: Deployment) -> dict:
    """Who asked for, approved and set off a deployment, as the audit events name them."""
    return {"requested_by": deployment.requested_by.get_username(),
            "approved_by": [a.approver.get_username() for a in deployment.approvals()],
            "deployed_by": deployment.deployed_by.get_username()}


def _approvals_record(deployment: Deployment) -> list[dict]:
    """Each approval of a deployment, as metadata.json records it."""
    return [{"by": a.approver.get_username(), "at": a.created_at.isoformat(),
             "comment": a.comment} for a in deployment.approvals()]


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
        RegisteredModel.objects.select_for_update().get(pk=model_id)  # see lock_for_change
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
        registry_services.version_moving_set(
            versions=[v for v in (deployment.replaced, version) if v is not None],
            deployment_id=deployment.pk)
        audit.record(action="deployment.started", actor=deployment.deployed_by,
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
    registry_services.version_moving_set(
        versions=list(ModelVersion.objects.filter(moving_by_deployment=deployment.pk)),
        deployment_id=None)
    audit.record(action="deployment.failed", actor=common.system_user(), subject=deployment,
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
        RegisteredModel.objects.select_for_update().get(pk=model_id)  # see lock_for_change
        deployment = Deployment.objects.select_for_update(of=("self",)).select_related(
            "requested_by", "deployed_by", "request", "version__model").prefetch_related(
            "request__decisions__approver").get(pk=deployment_id)
        if deployment.status != DeploymentStatus.MOVING:
            return deployment
        people = attribution(deployment)
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
            registry_services.version_stage_set(
                version=version, stage=step["to"], at=now,
                lifecycle=_lifecycle(version, step, deployment, now, successor, policy),
                review_due_at=(policies.review_due(policy, now)
                               if step["to"] == PRODUCTION else None))
            audit.record(action="version.stage_changed", actor=deployment.deployed_by,
                         subject=version, reason=deployment.reason,
                         before={"stage": before},
                         after={"stage": step["to"], "deployment": deployment.pk, **people})
            moved.append(version)
        deployment.status = DeploymentStatus.COMPLETED
        deployment.completed_at = now
        deployment.save(update_fields=["status", "completed_at"])
        # A candidate that moved (promoted or archived) ends its rollout.
        for rollout in Rollout.objects.filter(model_id=deployment.model_id,
                                              status=RolloutStatus.ACTIVE,
                                              candidate__in=moved):
            rollouts.rollout_close(rollout, RolloutStatus.FINISHED, deployment.deployed_by,
                           f"the candidate moved to {rollout.candidate.stage} "
                           f"(deployment #{deployment.pk})")
        common.serving_changed()
        audit.record(
            action="deployment.completed", actor=deployment.deployed_by, subject=deployment,
            model_name=deployment.model.name, reason=deployment.reason,
            after={"version": deployment.version.version, "to": deployment.to_stage,
                   "replaced": deployment.replaced.version if deployment.replaced else None,
                   "kind": deployment.kind, **people},
        )
        enqueue_on_commit("registry.catalogue_rewrite")
    return deployment


# What a move rewrites: a version leaving the archive sheds its retirement.
RETIREMENT_KEYS = {"retired_at", "retired_by", "retirement_requested_by",
                   "retirement_approved_by", "reason", "replaced_by", "metrics_comparison"}


def _lifecycle(version, step, deployment, now, successor, policy) -> dict:
    """The lifecycle section of a version's metadata.json after `step` of `deployment`: who
    asked for the move, who approved it (each approver, when, what they said) and who set it
    off; a version it archives records the same people as those of its retirement."""
    lifecycle = {k: v for k, v in version.lifecycle.items() if k not in RETIREMENT_KEYS}
    deployer = deployment.deployed_by.get_username()
    requester = deployment.requested_by.get_username()
    approvals = _approvals_record(deployment)
    history = list(lifecycle.get("history", []))
    history.append({"stage": step["to"], "at": now.isoformat(), "by": deployer,
                    "requested_by": requester, "approved_by": [a["by"] for a in approvals],
                    "deployment": deployment.pk, "reason": deployment.reason})
    lifecycle["history"] = history
    if step["to"] == PRODUCTION:
        requested_at = (deployment.request.created_at if deployment.request_id
                        else deployment.created_at)
        lifecycle.update(requested_by=requester, requested_at=requested_at.isoformat(),
                         approved_by=approvals, deployed_at=now.isoformat(),
                         deployed_by=deployer)
    elif step["to"] == ARCHIVED:
        lifecycle.update(retired_at=now.isoformat(), retired_by=deployer,
                         retirement_requested_by=requester,
                         retirement_approved_by=approvals, reason=deployment.reason)
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


def reconcile(*, repair: bool = True) -> list:
    """`manage.py reconcile`: first finish (or undo) what deployments a crash interrupted, so
    that a folder mid-move is completed by the rules that started the move, not put back;
    then the registry compares every folder with its row."""
    from registry import reconcile as registry_reconcile
    from registry.reconcile import Finding

    if not repair:
        findings = [Finding("deployment_in_progress", str(d), f"{d.status} since "
                            f"{(d.started_at or d.created_at):%Y-%m-%d %H:%M:%S}")
                    for d in Deployment.objects.filter(
                        status__in=[DeploymentStatus.PENDING, DeploymentStatus.MOVING])]
    else:
        findings = [
            Finding("interrupted_deployment", f"deployment #{d.pk}",
                    f"{d.version} → {d.to_stage}: {d.status}"
                    + (f" ({d.error})" if d.error else ""),
                    repaired=d.status == DeploymentStatus.COMPLETED)
            for d in deployment_recover(older_than_seconds=0)
        ]
    return findings + registry_reconcile.reconcile(repair=repair)
