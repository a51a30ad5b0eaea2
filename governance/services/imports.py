"""Importing a team's model directory (`manage.py import_models`): an admin's attested import.

`registry.importing.plan_directory` reads the directory into a plan; `directory_import`
imports its versions one by one, each in its own transactions, so that a run stopped at any
point can be run again: a version already imported (same model, same model and preprocessor
sha256s) is not imported twice, and what a stopped run left undone for it (its production
deployment, its approval request) is done then.

Files are copied from the source into the store's `.incoming/` folder (hashed on the way and
compared with the plan), then renamed into place by the registry. The source is only read.

The stage comes from the source layout. A version the source has in production is servable at
once only when the admin trusts the source's stages (`trust_stages`): it lands in staging and
a deployment (kind `import`) makes it the model's production version, archiving the one
before, as every deployment does. Otherwise it lands in staging with an approval request to
production, which waits for its validation and for an approver other than the importer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from core import audit, roles
from core.errors import ApplicationError
from governance import policies
from governance.models import ApprovalRequest, Deployment, DeploymentStatus, ValidationRun
from governance.rules import PRODUCTION, STAGING
from governance.services import common, deployments, transitions
from registry import services as registry_services
from registry import store
from registry.importing import ImportPlan, PlannedVersion
from registry.models import ModelVersion, RegisteredModel

logger = logging.getLogger(__name__)
IMPORT_KIND = "import"


@dataclass
class ImportResult:
    planned: PlannedVersion
    outcome: str  # imported, already, stopped, failed
    version: ModelVersion | None = None
    detail: str = ""


def import_refusal(actor, reason: str) -> ApplicationError | None:
    """An import attests stages: an admin, and a reason, are required."""
    if not roles.has_role(actor, roles.ADMIN_ROLES):
        return audit.denied(actor=actor, subject=None, attempted="version.import",
                            message="Only an admin imports model directories: the import "
                            "attests their versions' stages.")
    if not (reason or "").strip():
        return ApplicationError("give a reason for the import", field="reason")
    return None


def import_landing(planned: PlannedVersion, trust_stages: bool,
                   trust_option: str = "--trust-stages") -> str:
    """Where a planned version will land, in words (for the plan the admin reads first)."""
    if planned.stage != PRODUCTION:
        return planned.stage
    if not planned.servable:
        return "staging (it cannot be served: see the warning)"
    if trust_stages:
        return f"production at once ({trust_option}: deployed by the import)"
    return f"staging, with an approval request to production ({trust_option} to deploy it)"


def directory_import(*, plan: ImportPlan, actor, reason: str, trust_stages: bool = False,
                     checkpoint=None) -> list[ImportResult]:
    """Import every version of `plan`. A version that fails is reported and the others go on.
    `checkpoint(result)` is called after each version (tests stop a run there)."""
    refusal = import_refusal(actor, reason)
    if refusal is not None:
        raise refusal
    results = []
    for planned in plan.versions:
        if planned.problems:
            result = ImportResult(planned, "stopped", detail="; ".join(planned.problems))
        else:
            try:
                result = version_import(planned=planned, plan=plan, actor=actor, reason=reason,
                                        trust_stages=trust_stages)
            except (ApplicationError, store.StoreError, OSError) as exc:
                detail = getattr(exc, "message", None) or str(exc)
                logger.warning("import of %s from %s failed: %s", planned.model,
                               planned.source, detail)
                result = ImportResult(planned, "failed", detail=detail)
        results.append(result)
        if checkpoint is not None:
            checkpoint(result)
    return results


def version_import(*, planned: PlannedVersion, plan: ImportPlan, actor, reason: str,
                   trust_stages: bool = False) -> ImportResult:
    """Import one planned version (or finish the import a stopped run began)."""
    refusal = import_refusal(actor, reason)
    if refusal is not None:
        raise refusal
    if planned.problems:
        raise ApplicationError("; ".join(planned.problems), field="source")
    trusted = trust_stages and planned.stage == PRODUCTION and planned.servable
    earlier = (ModelVersion.objects.filter(model__name=planned.model,
                                           lifecycle__imported__key=planned.key)
               .select_related("model").first())
    if earlier is not None:
        detail = _settle(earlier, planned, actor, reason, trusted)
        return ImportResult(planned, "already", earlier, detail)
    _model_ensure(planned, actor)
    incoming = []
    try:
        for f in planned.files:
            received = store.ingest_path(f.source, role=f.role, name=f.name)
            incoming.append(received)
            if received.sha256 != f.sha256:
                raise ApplicationError(f"{f.relative} changed since the plan was made "
                                       f"(sha256 {received.sha256}, planned {f.sha256})",
                                       field="source")
        row, created = registry_services.version_import_place(
            model_name=planned.model, version=planned.version, framework=planned.framework,
            metadata=planned.metadata, files=incoming, actor=actor,
            stage=STAGING if planned.stage == PRODUCTION else planned.stage, reason=reason,
            key=planned.key, attestation=_attestation(planned, plan, trusted),
            created_at=datetime.fromisoformat(planned.created_at) if planned.created_at
            else None,
            lifecycle=planned.lifecycle)
    finally:
        for received in incoming:
            received.discard()  # (those placed were renamed away: nothing to remove)
    detail = _settle(row, planned, actor, reason, trusted)
    return ImportResult(planned, "imported" if created else "already", row, detail)


def _attestation(planned: PlannedVersion, plan: ImportPlan, trusted: bool) -> dict:
    return {
        "stage": planned.stage, "trusted": trusted, "source_root": plan.source_label or str(plan.root),
        "source": planned.source, "source_version": planned.source_version,
        "version_mapping": planned.version_note,
        "files": {f.relative: f.sha256 for f in planned.files},
        "documents": planned.documents, "checksum": planned.checksum,
        "created_at": planned.created_at, "deployed_at": planned.deployed_at,
    }


def _model_ensure(planned: PlannedVersion, actor) -> RegisteredModel:
    model = RegisteredModel.objects.filter(name=planned.model).first()
    if model is None:
        description = planned.metadata.get("description", "")
        model = registry_services.model_create(
            name=planned.model, task_type=planned.task_type, owner=actor, actor=actor,
            description=description if isinstance(description, str) else "")
    return model


def _settle(row: ModelVersion, planned: PlannedVersion, actor, reason: str, trusted: bool
            ) -> str:
    """What follows the rows for a version the source has in production: its deployment
    (trusted) or its approval request. Idempotent: done once, whatever runs call it."""
    if planned.stage != PRODUCTION:
        return f"in {row.stage}"
    if trusted:
        return _deploy(row, actor, reason)
    if not planned.servable:
        return f"in {row.stage}: {planned.warnings[-1] if planned.warnings else 'not servable'}"
    with transaction.atomic(durable=True):
        version = common.lock_for_change(row)
        request = ApprovalRequest.objects.filter(version=version).order_by("-pk").first()
        if request is not None or version.stage != STAGING:
            return (f"in {version.stage}" + (f", approval request #{request.pk} {request.status}"
                                             if request else ""))
        # The validation the import started is the one the request waits for.
        run = ValidationRun.objects.filter(version=version).order_by("-pk").first()
        request = transitions.request_create(
            version=version, to_stage=PRODUCTION, kind="promotion", actor=actor,
            reason=f"imported from the source's production: {reason}",
            policy=policies.effective_policy(version.model), run=run)
    return f"in staging, awaiting approval to production (request #{request.pk})"


def _deploy(row: ModelVersion, actor, reason: str) -> str:
    with transaction.atomic(durable=True):
        version = common.lock_for_change(row)
        deployment = Deployment.objects.filter(version=version, kind=IMPORT_KIND).first()
        if deployment is None:
            if version.stage != STAGING:
                return f"in {version.stage}"
            deployment = deployments.deployment_create(
                version=version, to_stage=PRODUCTION, kind=IMPORT_KIND, actor=actor,
                reason=f"imported as production (stages trusted): {reason}", enqueue=False)
    # Carried out here, as an admin's forced move is; another deployment of the model may be
    # moving folders: wait for it a while.
    for _ in range(120):
        deployment = deployments.deployment_execute(deployment.pk)
        if deployment.status != DeploymentStatus.PENDING:
            break
        time.sleep(0.5)
    if deployment.status == DeploymentStatus.COMPLETED:
        return f"in production (deployment #{deployment.pk})"
    return f"deployment #{deployment.pk} to production is {deployment.status}: {deployment.error}"
