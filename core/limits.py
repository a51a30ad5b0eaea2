"""What the database can hold, so that input beyond it is refused as a 400 (or a 404 for an
id in a path) before it reaches a query that would fail with a 500."""

from __future__ import annotations

import math

# PostgreSQL's `smallint` (PositiveSmallIntegerField) and `integer` (IntegerField,
# PositiveIntegerField). SQLite stores more, but both modes refuse the same input.
MAX_SMALLINT = 2**15 - 1
MAX_INT = 2**31 - 1
# `bigint`: primary keys (BigAutoField) and BigIntegerField.
MAX_BIGINT = 2**63 - 1
# JSON is parsed and later written again (JSONField, the audit trail) by recursive code.
MAX_JSON_DEPTH = 64


def is_finite_number(value) -> bool:
    """A JSON number that is a finite float64: NaN, infinities and integers too large for a
    float (json.loads reads 1e400 as inf, and 10**400 as an int) are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


class IdConverter:
    """`<id:pk>`: a primary key in 1..2**63-1; anything else matches no URL (404)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_BIGINT:
            raise ValueError(value)
        return number

    def to_url(self, value) -> str:
        return str(value)
