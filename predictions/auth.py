"""Authentication for the prediction API: service tokens and JWT, both cached in process.

A verified token or JWT user is remembered for PREDICTION_AUTH_CACHE_SECONDS, so a request
costs no query for who is asking; a revoked token, a changed role or password, or a
deactivation takes effect within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from predictions.models import ApiToken

TOKEN_PREFIX = "mgt_"
_tokens: dict[str, tuple[float, object]] = {}
_users: dict[int, tuple[float, object]] = {}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _fresh(entry) -> bool:
    return entry is not None and time.monotonic() - entry[0] < settings.PREDICTION_AUTH_CACHE_SECONDS


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer mgt_<prefix>_<secret>` (or `Token mgt_...`)."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() not in (b"bearer", b"token"):
            return None
        token = parts[1].decode(errors="replace")
        if not token.startswith(TOKEN_PREFIX):
            return None  # a JWT: the next authenticator's
        key = digest(token)
        cached = _tokens.get(key)
        if _fresh(cached):
            return cached[1], "api-token"
        try:
            prefix = token.split("_")[1]
        except IndexError:
            raise exceptions.AuthenticationFailed("malformed API token") from None
        row = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
        if (row is None or not hmac.compare_digest(row.digest, key) or row.revoked_at
                or (row.expires_at and row.expires_at <= timezone.now())
                or not row.user.is_active):
            raise exceptions.AuthenticationFailed("invalid, expired or revoked API token")
        _tokens[key] = (time.monotonic(), row.user)
        return row.user, "api-token"

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class CachedJWTAuthentication(JWTAuthentication):
    def get_user(self, validated_token):
        user_id = validated_token.get("user_id")
        cached = _users.get(user_id)
        # The token's password digest must match the cached user's (simplejwt checks it against
        # the database): a token minted after a password change is never refused by a stale
        # entry, and once it has refreshed the entry the older tokens are refused here too.
        if _fresh(cached) and validated_token.get(api_settings.REVOKE_TOKEN_CLAIM) == (
                get_md5_hash_password(cached[1].password)):
            return cached[1]
        user = super().get_user(validated_token)
        _users[user_id] = (time.monotonic(), user)
        return user


def forget() -> None:
    _tokens.clear()
    _users.clear()


User = get_user_model()
