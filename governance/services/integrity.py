"""The periodic check of what serves against the sha256 registered for each file."""

from __future__ import annotations

import logging

from django.db.models import Q

from governance.models import (
    Rollout,
    RolloutStatus,
)
from governance.rules import PRODUCTION
from registry.models import ModelVersion

logger = logging.getLogger(__name__)


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
