"""One error type for rule violations, and one JSON shape for every API error.

Every error body looks like::

    {"status": 400, "code": "invalid", "detail": "version: not a semantic version",
     "errors": {"version": ["..."]}}

`errors` maps the offending field (dotted for nested input, e.g. `metadata.metrics`) to its
messages. Unexpected exceptions become a 500 with no detail: messages from the OS can hold
server paths and must not reach a client.
"""

from __future__ import annotations

import logging
import os
import re
import sys

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import OperationalError
from django.http import Http404, UnreadablePostError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

# PostgreSQL's deadlock_detected and serialization_failure: the request lost a race with
# another change of the same rows, and asking again will do.
RACE_SQLSTATES = frozenset({"40P01", "40001"})


class ApplicationError(exceptions.APIException):
    """A request that breaks a rule. `field` names the input at fault, when there is one."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        extra: dict | None = None,
    ):
        self.code = code or self.default_code
        super().__init__(message, self.code)
        self.message = message
        self.field = field
        self.extra = extra or {}
        if status_code is not None:
            self.status_code = status_code

    @property
    def errors(self) -> dict:
        return {self.field: [self.message]} if self.field else {}


class Conflict(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class Forbidden(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "forbidden"


class PayloadTooLarge(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class Unprocessable(ApplicationError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "unprocessable"


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"a.b": ["message", ...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # an item of a list field
                full = f"{prefix}[{key}]"
            else:
                name = key if key != "non_field_errors" else ""
                full = f"{prefix}.{name}" if prefix and name else (prefix or name)
            for k, v in _flatten(value, full).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out[prefix] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                for k, v in _flatten(item, f"{prefix}[{index}]").items():
                    out.setdefault(k, []).extend(v)
    else:
        out[prefix] = [str(detail)]
    return out


def _summary(errors: dict[str, list[str]], fallback: str) -> str:
    if not errors:
        return fallback
    field, messages = next(iter(errors.items()))
    return f"{field}: {messages[0]}" if field else messages[0]


_TOP_LEVEL = r"/(?:home|root|tmp|usr|etc|var|opt|srv|mnt|proc|work|app|data|Users|private)"
_ABSOLUTE = re.compile(r"(?<![\w/:.<>-])" + _TOP_LEVEL + r"(?:/[^\s'\"(),:;]+)*")


def _server_roots() -> list[tuple[str, str]]:
    from django.conf import settings

    roots = [(settings.MODEL_STORE_ROOT, "<store>"), (settings.VAR_DIR, "<var>"),
             (settings.BASE_DIR, "<project>"), (sys.prefix, "<python>"),
             (sys.base_prefix, "<python>")]
    found = []
    for path, label in roots:
        for form in {str(path), os.path.realpath(path)}:
            if len(form) > 1:
                found.append((form.rstrip("/"), label))
    return sorted(found, key=lambda item: -len(item[0]))


def scrub_paths(text: str) -> str:
    """Text for a client or a shared page, without the server's absolute paths: the store,
    var/ and project folders become <store>, <var>, <project>; any other absolute path is
    cut to its last part (<path>/name)."""
    if not isinstance(text, str) or "/" not in text:
        return text
    for root, label in _server_roots():
        text = text.replace(root, label)
    return _ABSOLUTE.sub(lambda m: "<path>/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def error_body(status_code: int, code: str, detail: str, errors: dict | None = None, **extra):
    errors = {field: [scrub_paths(str(m)) for m in messages]
              for field, messages in (errors or {}).items()}
    body = {"status": status_code, "code": code, "detail": scrub_paths(detail),
            "errors": errors}
    body.update(extra)
    return body


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) if str(exc) else None)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):  # a form field over DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = PayloadTooLarge(f"the request body is too large: {exc}")
    elif isinstance(exc, UnreadablePostError):  # the client went away mid-body
        exc = ApplicationError("the request body could not be read to its end",
                               code="incomplete_body")
    elif isinstance(exc, SuspiciousOperation):  # too many fields or files, a bad header...
        exc = ApplicationError(f"the request was refused: {exc}", code="bad_request")
    elif isinstance(exc, OperationalError) and \
            getattr(exc.__cause__, "sqlstate", None) in RACE_SQLSTATES:
        # A net: changes lock rows in one order (governance.services.common.lock_for_change), so a
        # deadlock here is a lock-order bug to fix, but still not the client's 500.
        logger.warning("%s lost a race: %s", context.get("view").__class__.__name__, exc)
        exc = Conflict("another change to the same thing happened at the same moment; "
                       "try again", code="concurrent_change")

    if isinstance(exc, ApplicationError):
        response = Response(
            error_body(exc.status_code, exc.code, exc.message, exc.errors, **exc.extra),
            status=exc.status_code,
        )
    elif isinstance(exc, exceptions.APIException):
        response = drf_exception_handler(exc, context)
        if response is None:  # pragma: no cover - DRF handles every APIException
            return None
        code = exc.get_codes()
        if isinstance(exc, exceptions.ValidationError):
            errors = {k or "non_field_errors": v for k, v in _flatten(exc.detail).items()}
            response.data = error_body(
                response.status_code, "invalid", _summary(_flatten(exc.detail), "Invalid input."),
                errors,
            )
        else:
            detail = exc.detail
            if isinstance(detail, dict) and "detail" in detail:  # simplejwt's InvalidToken
                detail, code = detail["detail"], detail.get("code", code)
            response.data = error_body(
                response.status_code, code if isinstance(code, str) else "error", str(detail)
            )
    else:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        response = Response(
            error_body(500, "server_error", "Internal server error. The request id is in the "
                       "X-Request-ID header; an operator can find the cause in the log."),
            status=500,
        )
    return response


def unknown_endpoint(body):
    """A view for every path under an API prefix that no route matches: a JSON 404 in the API's
    own error shape (`body(status, detail)`), never Django's HTML page.

    The catch-all also stops CommonMiddleware's APPEND_SLASH redirect (the path now resolves),
    so a GET or HEAD of a known path without its trailing slash is redirected here instead;
    any other method is told the right path, since a redirect would lose its body.
    """
    from django.http import HttpResponsePermanentRedirect, JsonResponse
    from django.urls import Resolver404, resolve

    def view(request, *args, **kwargs):
        path = request.path_info
        if not path.endswith("/"):
            try:
                match = resolve(path + "/")
            except Resolver404:
                match = None
            if match is not None and match.func is not view:
                if request.method in ("GET", "HEAD"):
                    query = request.META.get("QUERY_STRING", "")
                    target = request.path + "/" + (f"?{query}" if query else "")
                    return HttpResponsePermanentRedirect(target)
                return JsonResponse(body(404, f"no endpoint at {path}; did you mean {path}/ ?"),
                                    status=404)
        return JsonResponse(body(404, f"no endpoint at {path}"), status=404)

    view.csrf_exempt = True
    return view


def not_found_body(status_code: int, detail: str) -> dict:
    return error_body(status_code, "not_found", detail)
