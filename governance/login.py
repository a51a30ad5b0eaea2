"""Logins are throttled and audited: one rule for every door that calls authenticate().

Each attempt that reaches the password check is counted, in the cache, under three keys: the
(username, client address) pair, the address, and the username, each with its own threshold.
Past a threshold, an attempt must wait 2 ** (failures - threshold) seconds, at most
LOGIN_THROTTLE_MAX_WAIT_SECONDS, after the previous one, and is refused before the password is
looked at. A success forgives its attempt and clears its pair; a key is forgotten
LOGIN_THROTTLE_FORGET_SECONDS after its last counted attempt. The username key (what a
distributed attack on one account fills) does not apply from an address the user has logged
in from before, so an attacker cannot keep a real user out of their usual place. When the
cache is unreachable, logins go on unthrottled (and a warning is logged).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from rest_framework import exceptions

from core import audit
from core.middleware import _client_ip

logger = logging.getLogger(__name__)

clock = time.time  # tests move time by replacing it
KNOWN_ADDRESS_SECONDS = 90 * 24 * 3600


def message(wait: int) -> str:
    return f"Too many failed logins; try again in {wait} second{'' if wait == 1 else 's'}."


class LoginThrottled(exceptions.Throttled):
    """Raised out of authenticate(): the API answers 429 with Retry-After, the admin's login
    form shows it as a form error."""

    def __init__(self, wait: float):
        self.wait = max(1, math.ceil(wait))
        exceptions.APIException.__init__(self, message(self.wait))


class Attempt:
    def __init__(self, username: str, request):
        self.username = username
        self.address = (_client_ip(request) if request is not None else None) or "unknown"
        prefix = settings.LOGIN_THROTTLE_KEY_PREFIX
        # Hashed: a username is whatever the client sent, of any length and alphabet.
        user = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        self.known_key = f"{prefix}:known:{user}:{self.address}"
        self.limits = [
            ("user_and_address", f"{prefix}:pair:{user}:{self.address}",
             settings.LOGIN_THROTTLE_PER_USER_AND_ADDRESS),
            ("address", f"{prefix}:address:{self.address}", settings.LOGIN_THROTTLE_PER_ADDRESS),
            ("user", f"{prefix}:user:{user}", settings.LOGIN_THROTTLE_PER_USER),
        ]
        self.counted: list[tuple[str, str, int]] = []

    def admit(self) -> None:
        """Count this attempt under every key, or raise LoginThrottled and count nothing."""
        now = clock()
        try:
            limits = self.limits[:2] if cache.get(self.known_key) else self.limits
            for scope, key, threshold in limits:
                n, refused = _count(key, threshold, now)
                if refused:
                    for _scope, counted, _n in self.counted:
                        _uncount(counted)
                    self.counted = []
                    break
                self.counted.append((scope, key, n))
            else:
                return
            wait, failures = refused
            first_in_window = cache.add(f"{key}:audited:{failures}", 1,
                                        settings.LOGIN_THROTTLE_FORGET_SECONDS)
        except Exception:  # whatever the cache backend raises when it is down
            # Fail open: a Redis outage must not lock everyone out of the admin.
            logger.warning("login throttle unavailable; attempt not counted", exc_info=True)
            self.counted = []
            return
        if first_in_window:  # an attacker who keeps knocking must not fill the audit trail
            _record("auth.login_throttled", self.username, limit=scope, failures=failures,
                    retry_after=math.ceil(wait))
        raise LoginThrottled(wait)

    def succeeded(self) -> None:
        try:
            for scope, key, n in self.counted:
                if scope == "user_and_address":
                    cache.delete(key)
                else:
                    _uncount(key)
                    # The next attempt is number n again and reads n - 1's time: keep it as
                    # long as the counter, or it would look like an attempt still in flight.
                    cache.touch(f"{key}:{n - 1}", settings.LOGIN_THROTTLE_FORGET_SECONDS)
            cache.set(self.known_key, 1, KNOWN_ADDRESS_SECONDS)
        except Exception:
            logger.warning("login throttle unavailable; success not recorded", exc_info=True)


def _count(key: str, threshold: int, now: float) -> tuple[int, tuple[float, int] | None]:
    """Count an attempt under `key` as number n; with (seconds to wait, failures) if it must
    wait instead, and then it is not counted.

    The counter is incremented first, atomically, so every attempt has its own number n:
    parallel attempts past the threshold cannot all pass on the same stale timestamp, since
    attempt n checks the time of attempt n - 1 (absent while n - 1 is still being counted).
    """
    forget = settings.LOGIN_THROTTLE_FORGET_SECONDS
    cache.add(key, 0, forget)
    n = cache.incr(key)
    if n > threshold:
        previous = cache.get(f"{key}:{n - 1}")
        delay = min(2 ** min(n - 1 - threshold, 32), settings.LOGIN_THROTTLE_MAX_WAIT_SECONDS)
        wait = 1.0 if previous is None else previous + delay - now
        if wait > 0:
            cache.decr(key)
            return n, (wait, n - 1)
    cache.set(f"{key}:{n}", now, forget)
    cache.touch(key, forget)
    return n, None


def _uncount(key: str) -> None:
    try:
        cache.decr(key)
    except ValueError:  # already forgotten
        pass


def _record(action: str, username: str, **after) -> None:
    username = username[:150]
    User = get_user_model()
    user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
    # No actor: whoever typed the username is not known to be its owner.
    audit.record_on_commit_safe(action=action, actor=None, subject=user,
                                after={"username": username, **after})


class ThrottledModelBackend(ModelBackend):
    """Django's backend behind the throttle. LoginThrottled is not PermissionDenied on purpose:
    authenticate() lets it through (instead of a silent "wrong password"), so each door can
    answer with the wait."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        attempt = Attempt(str(username), request)
        attempt.admit()
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            attempt.succeeded()
        return user


@receiver(user_login_failed, dispatch_uid="governance.audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **_kwargs):
    """Django sends this, with the password masked, whenever authenticate() says no."""
    _record("auth.login_failed",
            str(credentials.get(get_user_model().USERNAME_FIELD, "")))


class AdminLoginForm(AdminAuthenticationForm):
    def clean(self):
        try:
            return super().clean()
        except LoginThrottled as refused:
            raise ValidationError(message(refused.wait), code="throttled")
