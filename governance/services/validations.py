"""Validation runs: queued on registration and promotion, run in the sandbox, recorded."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core import audit, roles
from core.errors import ApplicationError, scrub_paths
from core.queue import enqueue_on_commit
from governance import policies, profiles, validation
from governance.models import (
    ApprovalRequest,
    ReferenceProfile,
    RequestStatus,
    RunStatus,
    ValidationCheck,
    ValidationRun,
)
from governance.services import approvals, common, evaluations
from registry import access
from registry.models import ModelVersion

logger = logging.getLogger(__name__)


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
    return validation_record(run, outcome, policy)


def validation_record(run, outcome, policy) -> ValidationRun:
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
        common.lock_for_change(run.version)  # it may complete a request
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
            action=f"validation.{run.status}", actor=run.requested_by or common.system_user(),
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
                approvals.request_stale(request, f"validation #{run.pk} failed: {summary}")
            elif request.validation_run_id == run.pk:
                approvals.request_try_complete(
                    request, reason=f"validation #{run.pk} passed after the approvals")
    if outcome.evaluation is not None:
        try:
            evaluations.evaluation_record(version=run.version, evaluation=outcome.evaluation,
                                          run=run, actor=run.requested_by)
        except ApplicationError as exc:  # the run stands; the next validation keeps them
            logger.warning("evaluation of %s not kept: %s", run.version, exc.message)
    return run


def validation_recover(*, older_than_seconds: int = 900) -> list[ValidationRun]:
    """Runs a dead worker left `running` fail; runs whose task was lost are executed."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    handled = []
    for run in ValidationRun.objects.filter(status=RunStatus.RUNNING, started_at__lte=cutoff):
        policy = policies.effective_policy(run.version.model)
        failure = validation.CheckResult(
            "internal", "failed", "the worker stopped before the run finished; start a new one")
        handled.append(validation_record(run, validation.Outcome([failure]), policy))
    for run in ValidationRun.objects.filter(status=RunStatus.PENDING, created_at__lte=cutoff):
        handled.append(validation_execute(run.pk) or run)
    return handled


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
