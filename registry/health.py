"""Health checks for /health/ (the artifact store, the Celery broker, artifact integrity), and
`degraded()` for /v2/health/ready: the parts that are down while predictions still answer.

Messages name the component and the failure, never a server path or a credential.
"""

import dataclasses
import os

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from core import health
from registry import store


@dataclasses.dataclass
class ArtifactStore(HealthCheck):
    def run(self):
        base = store.root()
        missing = [f for f in store.STAGE_FOLDERS.values() if not (base / f).is_dir()]
        if missing:
            raise ServiceUnavailable(f"store folders missing: {', '.join(missing)}")
        incoming = base / store.INCOMING_FOLDER
        if not os.access(incoming, os.W_OK):
            raise ServiceUnavailable("store is not writable")


def integrity_failures() -> int:
    """How many production versions are flagged because a file failed its sha256 check.
    (A count: the health endpoints are open, and model names are scoped to teams.)"""
    from registry.models import ModelVersion, Stage

    return ModelVersion.objects.filter(stage=Stage.PRODUCTION,
                                       integrity_failed_at__isnull=False).count()


def degraded() -> dict[str, str]:
    """What is wrong while the app still answers predictions."""
    parts = {}
    if not health.cache_reachable():
        parts["cache"] = "unreachable: quotas and login throttling are not enforced"
    if not health.broker_reachable(timeout=1):
        parts["broker"] = "unreachable: validations, deployments and alerts wait in the " \
                          "database for the periodic recovery"
    failed = integrity_failures()
    if failed:
        parts["integrity"] = (f"{failed} production version(s) not served: a file failed its "
                              "sha256 check (see the integrity alerts)")
    return parts


@dataclasses.dataclass
class ArtifactIntegrity(HealthCheck):
    def run(self):
        failed = integrity_failures()
        if failed:
            raise ServiceUnavailable(f"{failed} production version(s) not served: a file "
                                     "failed its sha256 check")
