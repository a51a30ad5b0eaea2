"""Health checks for /health/: the artifact store and the Celery broker.

Messages name the component and the failure, never a server path or a credential.
"""

import dataclasses
import os

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

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


@dataclasses.dataclass
class Broker(HealthCheck):
    def run(self):
        from config.celery import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=3)
        except Exception:
            raise ServiceUnavailable("the Celery broker is unreachable") from None
