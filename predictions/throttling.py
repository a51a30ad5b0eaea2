"""Per-user prediction quota: a fixed hourly window counted in the cache (Redis in production).

The limit is the user's own RateLimit, else the largest of their groups', else
PREDICTION_RATE_LIMIT_PER_HOUR. Limits are cached in the process for a minute.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

from predictions.models import RateLimit

logger = logging.getLogger(__name__)
_limits: dict[int, tuple[float, int]] = {}
_last_warning = 0.0
LIMIT_TTL = 60.0
WINDOW = 3600


def limit_for(user) -> int:
    cached = _limits.get(user.pk)
    now = time.monotonic()
    if cached is not None and now - cached[0] < LIMIT_TTL:
        return cached[1]
    own = RateLimit.objects.filter(user=user).values_list("requests_per_hour", flat=True).first()
    if own is None:
        own = max(RateLimit.objects.filter(group__user=user)
                  .values_list("requests_per_hour", flat=True), default=None)
    limit = own if own is not None else settings.PREDICTION_RATE_LIMIT_PER_HOUR
    _limits[user.pk] = (now, limit)
    return limit


def hit(user) -> tuple[bool, int, int]:
    """Count one request. Returns (allowed, limit, seconds until the window resets)."""
    limit = limit_for(user)
    now = time.time()
    window = int(now // WINDOW)
    key = f"{settings.PREDICTION_RATE_KEY_PREFIX}:{user.pk}:{window}"
    reset = int((window + 1) * WINDOW - now) + 1
    # One round trip to the cache on the hot path: the window's key exists after its first
    # request, so incr first and create only when it is missing.
    try:
        try:
            count = cache.incr(key)
        except ValueError:
            count = 1 if cache.add(key, 1, timeout=WINDOW + 60) else cache.incr(key)
    except Exception:  # the cache (Redis) is down: answer anyway, say so (at most once a minute)
        global _last_warning
        if now - _last_warning > 60:
            _last_warning = now
            logger.warning("the cache is unreachable: prediction quotas are not counted")
        return True, limit, reset
    return count <= limit, limit, reset


def forget_limits() -> None:
    _limits.clear()
