"""Who is asking, from where, under which request id: read by the audit trail."""

from __future__ import annotations

import contextvars
import uuid
from contextlib import contextmanager

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
client_ip_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "client_ip", default=None
)


request_var: contextvars.ContextVar = contextvars.ContextVar("request", default=None)


def current_user():
    """The logged-in user of the current web request (an admin session), if any."""
    user = getattr(request_var.get(), "user", None)
    return user if getattr(user, "is_authenticated", False) else None


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def bound(*, request_id: str = "", client_ip: str | None = None):
    """Bind a request id (and IP) for work outside a web request: a task, a command."""
    tokens = (
        request_id_var.set(request_id or new_request_id()),
        client_ip_var.set(client_ip),
    )
    try:
        yield
    finally:
        request_id_var.reset(tokens[0])
        client_ip_var.reset(tokens[1])
