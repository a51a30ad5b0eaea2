"""JSON request bodies: parsed by orjson, at most MAX_JSON_DEPTH levels deep.

A body nested deeper than that would parse, then break whatever walks it recursively later
(the standard library's json.dumps for a JSONField or the audit trail, our own checks) with a
RecursionError: a 500. It is refused here instead, as a 400 naming the body.
"""

from __future__ import annotations

import orjson
from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ValidationError

from core.limits import MAX_JSON_DEPTH

_CONTAINERS = frozenset({list, dict})


class TooDeep(ValueError):
    pass


def check_depth(value, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise TooDeep if lists and objects nest more than `limit` levels.

    Level by level, without recursion; a list of plain values is passed over at C speed.
    """
    level, depth = ([value] if type(value) in _CONTAINERS else []), 0
    while level:
        depth += 1
        if depth > limit:
            raise TooDeep(f"nested more than {limit} levels deep")
        deeper = []
        for item in level:
            children = item.values() if type(item) is dict else item
            if not _CONTAINERS.isdisjoint(map(type, children)):
                deeper.extend(child for child in children if type(child) in _CONTAINERS)
        level = deeper


def json_loads(data: bytes | str):
    """A JSON document; ValueError (TooDeep, or orjson's JSONDecodeError) if refused."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg:  # orjson's own limit (1024 levels): say it as we do
            raise TooDeep(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
        raise
    # Fewer brackets than the limit cannot nest deeper: most bodies skip the walk.
    opening = ("[", "{") if isinstance(data, str) else (b"[", b"{")
    if data.count(opening[0]) + data.count(opening[1]) > MAX_JSON_DEPTH:
        check_depth(value)
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser for every API view: orjson, a depth bound, and a refused body as
    a 400 naming `body` (DRF's own parser lets a RecursionError through as a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = stream.read()
            if encoding.lower().replace("-", "") != "utf8":
                data = data.decode(encoding)
            return json_loads(data)
        except TooDeep as exc:
            message = f"the body is {exc}"
        except (ValueError, LookupError) as exc:  # LookupError: an unknown charset
            message = f"the body is not valid JSON: {exc}"
        # Not core.errors: DRF imports this module while core.errors imports DRF.
        raise ValidationError({"body": [message]})
