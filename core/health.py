"""Health of what every app depends on: the cache and the Celery broker (for /health/ and
the readiness probe). Messages name the component, never a URL or a credential."""

import dataclasses

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable


def broker_reachable(timeout: float = 3) -> bool:
    from celery import current_app as app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception:
        return False
    return True


def cache_reachable() -> bool:
    from django.core.cache import cache

    try:
        cache.get("health-probe")
    except Exception:
        return False
    return True


@dataclasses.dataclass
class Broker(HealthCheck):
    def run(self):
        if not broker_reachable():
            raise ServiceUnavailable("the Celery broker is unreachable")
