"""What every lifecycle service shares: the system actor, the one lock order, the serving generation."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db.models import F
from django.utils import timezone

from core.accounts import system_user  # noqa: F401  (shared by the families)
from governance.models import (
    ApprovalRequest,
    Deployment,
    ServingState,
)
from registry.models import ModelVersion, RegisteredModel

logger = logging.getLogger(__name__)


def lock_for_change(version: ModelVersion) -> ModelVersion:
    """Lock a version for a change of its lifecycle, in the one order every such change takes
    on PostgreSQL: the model's row, then the version's, then its requests, runs, deployments
    and rollouts, the audit chain's head last. Locking in another order deadlocks against a
    concurrent deployment; `of=("self",)` because a select_related join would otherwise lock
    the joined rows too, in join order (the version before its model)."""
    RegisteredModel.objects.select_for_update().get(pk=version.model_id)
    return (ModelVersion.objects.select_for_update(of=("self",)).select_related("model")
            .get(pk=version.pk))


@dataclass
class TransitionOutcome:
    version: ModelVersion
    request: ApprovalRequest | None = None
    deployment: Deployment | None = None


def serving_changed() -> None:
    """Inside the transaction of a change: web processes notice the new generation."""
    if not ServingState.objects.filter(pk=1).update(generation=F("generation") + 1,
                                                    changed_at=timezone.now()):
        ServingState.objects.get_or_create(pk=1, defaults={"generation": 1})
