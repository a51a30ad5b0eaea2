"""Middleware every request passes: its id and client address for the audit trail, and the
refusal of a NUL character in a URL or query string.

PostgreSQL text cannot hold NUL: a name like `a%00b` in a URL or a `?model=` filter would
reach a query and fail as a server error. Refusing it here covers every endpoint at once.
"""

import ipaddress
import re

from django.conf import settings
from django.http import JsonResponse

from core import context
from core.errors import error_body


class RejectNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.GET
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in query.getlist(key))
            for key in query
        ):
            return JsonResponse(
                error_body(400, "invalid", "the URL contains a NUL character"), status=400
            )
        return self.get_response(request)


_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def _client_ip(request) -> str | None:
    """REMOTE_ADDR, or the address our trusted proxies saw, never a client-forged header."""
    candidates = [request.META.get("REMOTE_ADDR", "")]
    hops = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops and forwarded:
        chain = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(chain) >= hops:
            candidates.insert(0, chain[-hops])
    for value in candidates:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            continue
    return None


class RequestContextMiddleware:
    """Give every request an id and echo it in X-Request-ID. An incoming X-Request-ID is
    believed only behind trusted proxies (TRUSTED_PROXY_COUNT), which set it: a client's own
    would let it tie its requests to another's in the audit trail."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "") if settings.TRUSTED_PROXY_COUNT else ""
        request_id = incoming if _REQUEST_ID_RE.fullmatch(incoming) else context.new_request_id()
        request.request_id = request_id
        with context.bound(request_id=request_id, client_ip=_client_ip(request)):
            # The request, not its user: the user is resolved only if something asks.
            token = context.request_var.set(request)
            try:
                response = self.get_response(request)
            finally:
                context.request_var.reset(token)
        response["X-Request-ID"] = request_id
        return response
