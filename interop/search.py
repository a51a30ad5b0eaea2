"""MLflow's search grammar, the part its clients send: conditions joined by AND.

    name = 'churn'          name != 'x'        name LIKE 'churn%'     name ILIKE '%CHURN%'
    tags.team = 'loans'     tag.`mlflow.prompt.is_prompt` != 'true'  (a missing tag is != anything)
    run_id = ''             run_id IN ('', 'x')                      source_path = '...'
    version_number >= 2     (model versions)

Conditions are evaluated on the MLflow-shaped dicts (interop.shapes), so the fields mean what
the client reads back. Order: `name`, `creation_timestamp`, `last_updated_timestamp`,
`version_number`, each `ASC` or `DESC`. Pages: `page_token` is an opaque offset.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from core.errors import ApplicationError

_CONDITION = re.compile(
    r"""\s*(?P<key>(?:tags?\.)?(?:`[^`]+`|"[^"]+"|[A-Za-z_][\w.]*))\s*
        (?P<op>!=|>=|<=|=|<|>|\bI?LIKE\b|\bIN\b)\s*
        (?P<value>'(?:[^']|'')*'|"(?:[^"])*"|-?\d+|\((?:\s*'(?:[^']|'')*'\s*,?)*\))\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
_ORDERABLE = {"name", "creation_timestamp", "last_updated_timestamp", "version_number"}


@dataclass(frozen=True)
class Condition:
    key: str          # "name", "run_id", "source_path", "version_number" or "tags.<key>"
    op: str
    value: object


def _unquote(text: str) -> str:
    if text[:1] in "'\"" and text[-1:] == text[:1]:
        return text[1:-1].replace("''", "'")
    return text


def parse_filter(text: str | None, *, fields: frozenset[str]) -> list[Condition]:
    conditions = []
    for part in _AND.split(text.strip()) if text and text.strip() else []:
        match = _CONDITION.fullmatch(part)
        if match is None:
            raise ApplicationError(f"cannot read the condition {part!r}", field="filter")
        key, op, raw = match["key"], match["op"].upper(), match["value"]
        if key.lower().startswith(("tags.", "tag.")):
            key = "tags." + _unquote(key.split(".", 1)[1].strip("`"))
        else:
            key = _unquote(key.strip("`")).lower()
            if key not in fields:
                raise ApplicationError(f"cannot search on {key!r}: use one of "
                                       f"{', '.join(sorted(fields))} or tags.<key>",
                                       field="filter")
        if op == "IN":
            value = [_unquote(item) for item in re.findall(r"'(?:[^']|'')*'", raw)]
        elif key == "version_number":
            if not re.fullmatch(r"-?\d+", raw):
                raise ApplicationError("version_number compares with a number", field="filter")
            value = int(raw)
        else:
            if raw[:1] not in "'\"":
                raise ApplicationError(f"quote the value of {key}", field="filter")
            value = _unquote(raw)
        if op in {"<", ">", "<=", ">="} and key != "version_number":
            raise ApplicationError(f"{op} compares version_number only", field="filter")
        conditions.append(Condition(key, op, value))
    return conditions


def _like(pattern: str, value: str, *, fold: bool) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if fold else re.DOTALL) is not None


def _value(entity: dict, key: str):
    if key.startswith("tags."):
        wanted = key[5:]
        return next((t["value"] for t in entity.get("tags", []) if t["key"] == wanted), None)
    if key == "version_number":
        return int(entity["version"])
    if key == "source_path":
        return entity.get("source", "")
    return entity.get(key, "")


def matches(entity: dict, conditions: list[Condition]) -> bool:
    for condition in conditions:
        value, op, wanted = _value(entity, condition.key), condition.op, condition.value
        if value is None:  # a tag the entity does not have: only != holds
            if op != "!=":
                return False
            continue
        if op == "=" and value != wanted or op == "!=" and value == wanted:
            return False
        if op in {"LIKE", "ILIKE"} and not _like(wanted, value, fold=op == "ILIKE"):
            return False
        if op == "IN" and value not in wanted:
            return False
        if (op == "<" and not value < wanted or op == ">" and not value > wanted
                or op == "<=" and not value <= wanted or op == ">=" and not value >= wanted):
            return False
    return True


def parse_order(clauses, *, default: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """[(field, descending)] from ["name ASC", "last_updated_timestamp DESC"]."""
    order = []
    for clause in clauses or []:
        words = clause.split()
        if not words or len(words) > 2 or words[0].lower() not in _ORDERABLE or (
                len(words) == 2 and words[1].upper() not in {"ASC", "DESC"}):
            raise ApplicationError(f"cannot order by {clause!r}: use one of "
                                   f"{', '.join(sorted(_ORDERABLE))}, then ASC or DESC",
                                   field="order_by")
        order.append((words[0].lower(), len(words) == 2 and words[1].upper() == "DESC"))
    return order or default


def sort(entities: list[dict], order: list[tuple[str, bool]]) -> list[dict]:
    for field, descending in reversed(order):  # stable sorts, last key first
        if field == "version_number":
            entities.sort(key=lambda e: int(e.get("version", 0)), reverse=descending)
        else:
            entities.sort(key=lambda e, f=field: e.get(f, 0), reverse=descending)
    return entities


def page(entities: list[dict], max_results, page_token: str | None, *, limit: int
         ) -> tuple[list[dict], str]:
    try:
        size = int(max_results) if max_results not in (None, "") else limit
    except (TypeError, ValueError):
        raise ApplicationError("a whole number", field="max_results") from None
    if not 1 <= size <= limit:
        raise ApplicationError(f"from 1 to {limit}", field="max_results")
    start = 0
    if page_token:
        try:
            start = int(base64.urlsafe_b64decode(page_token.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise ApplicationError("not a token this server gave", field="page_token") from None
        if start < 0:
            raise ApplicationError("not a token this server gave", field="page_token")
    chunk = entities[start:start + size]
    more = start + size < len(entities)
    token = base64.urlsafe_b64encode(str(start + size).encode()).decode() if more else ""
    return chunk, token
