"""Where a webhook may point. Checked when a webhook is saved and again, after resolving its
host name, each time a delivery is sent; the send then connects to the very addresses checked.

The server, not the admin's browser, fetches a webhook URL, from inside the network: without
these rules a webhook could make it POST to its own loopback services, the LAN or the cloud
metadata service (server-side request forgery).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from core.errors import ApplicationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The order a refusal names them in; anything else that is not global is "not public".
KINDS = (
    ("is_unspecified", "an unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_private", "a private address"),
    ("is_reserved", "a reserved address"),
)


class Refused(ValueError):
    """The URL breaks a rule; the message says which, to an admin."""


@dataclass(frozen=True)
class Target:
    https: bool
    host: str
    port: int
    path: str  # with the query string
    addresses: tuple[IPAddress, ...]


def refusal(address: IPAddress) -> str | None:
    """Why webhooks may not reach `address` ("a loopback address"), or None if they may."""
    # ::ffff:127.0.0.1 (and 6to4's 2002:7f00:1::) lead to 127.0.0.1: judge the IPv4 inside.
    inner = (getattr(address, "ipv4_mapped", None) or getattr(address, "sixtofour", None)
             or address)
    allowed = [ipaddress.ip_network(n, strict=False) for n in settings.WEBHOOK_ALLOWED_NETWORKS]
    if any(a in network for network in allowed for a in (address, inner)):
        return None
    for attribute, kind in KINDS:
        if getattr(inner, attribute):
            return kind
    return None if inner.is_global else "not a public address"


def resolve(url: str) -> Target:
    """The URL's target with every address its host resolves to now, each one allowed.
    Raises Refused, or OSError when the name does not resolve."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("not a valid address") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("an http:// or https:// address")
    if "@" in parts.netloc:
        raise Refused("no user name or password in the address (they would be shown and "
                      "logged with it): the receiver checks the webhook's secret instead")
    host = parts.hostname
    if not host:
        raise Refused("the address has no host")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses, named = (ipaddress.ip_address(host),), False
    except ValueError:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except UnicodeError:
            raise Refused(f"{host} is not a valid host name") from None
        addresses = tuple(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))
        named = True
    for address in addresses:  # every one: a client may be handed any of them
        kind = refusal(address)
        if kind:
            said = f"{host} resolves to {address}," if named else f"{host} is"
            raise Refused(f"{said} {kind}; allow it with WEBHOOK_ALLOWED_NETWORKS")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(https=parts.scheme == "https", host=host, port=port, path=path,
                  addresses=addresses)


def url_check(url: str) -> None:
    """The save-time check: an ApplicationError on `url` when it breaks a rule. A name that
    does not resolve yet is let through: every send resolves and checks it again."""
    try:
        resolve(url)
    except Refused as exc:
        raise ApplicationError(str(exc), field="url") from None
    except OSError:
        pass


def connection(target: Target, *, timeout: float) -> http.client.HTTPConnection:
    """A connection for the target's host name (its Host header; for https its SNI and the
    certificate check) whose socket goes to the checked addresses only: a second lookup could
    be answered differently (DNS rebinding). It follows no redirect, it is one request."""
    kind = http.client.HTTPSConnection if target.https else http.client.HTTPConnection
    connection = kind(target.host, target.port, timeout=timeout)

    def create_connection(address, timeout, source_address=None):
        error = OSError(f"no address for {target.host}")
        for ip in target.addresses:
            try:
                return socket.create_connection((str(ip), address[1]), timeout, source_address)
            except OSError as exc:
                error = exc
        raise error

    # http.client opens every socket (https included, before wrapping it) through this hook.
    connection._create_connection = create_connection
    return connection
