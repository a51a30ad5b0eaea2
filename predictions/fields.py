"""Fields of the prediction log: JSON written and read with orjson, and packed input rows.

The prediction log stores every answered row; with the standard library's json (and
`ndarray.tolist()` before it) encoding them took about a quarter of a web worker's time under
1,000-row batches (py-spy, bench/README.md). orjson encodes numpy arrays directly.
"""

from __future__ import annotations

import struct

import numpy as np
import orjson
from django.db import models

OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _default(value):
    if isinstance(value, np.ndarray):  # object arrays (text features) orjson cannot take
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value) -> str:
    return orjson.dumps(value, default=_default, option=OPTIONS).decode()


class FastJSONField(models.JSONField):
    def get_db_prep_value(self, value, connection, prepared=False):
        if not prepared:
            value = self.get_prep_value(value)
        if connection.vendor == "postgresql":
            from psycopg.types.json import Jsonb

            return Jsonb(value, dumps=dumps)
        return dumps(value)

    def from_db_value(self, value, expression, connection):
        if isinstance(value, str):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:  # e.g. NaN written by another writer
                pass
        return super().from_db_value(value, expression, connection)


# --- logged input rows, packed ----------------------------------------------------------------
#
# Monitoring reads every logged row of a window; as JSON, parsing 100,000 rows of 22 features
# (2.2 million floats written with 17 digits) cost 0.25-0.5 s, several times the statistics
# themselves (bench/README.md, bench_drift.py). Packed, the numeric columns are float64 bytes
# that numpy reads without parsing; text columns (categories) stay JSON.
#
#   b"MGR1" | n_rows:uint32 | n_cols:uint16 | kinds: n_cols bytes, b"f" number or b"t" text
#   | float64 row-major block of the numeric columns | JSON rows of the text columns (or none)

MAGIC = b"MGR1"
HEADER = struct.Struct("<4sIH")


def column_kinds(matrix: np.ndarray) -> bytes:
    """b"f"/b"t" per column. A served matrix has one type per column (the signature's), so
    its first row tells; rows from elsewhere (old logs, a list) are looked at whole."""
    if matrix.dtype.kind in "biuf":
        return b"f" * matrix.shape[1]
    return bytes(b"t"[0] if any(isinstance(v, str) for v in matrix[:, i]) else b"f"[0]
                 for i in range(matrix.shape[1]))


def pack_rows(rows, kinds: bytes | None = None) -> bytes:
    """A matrix (float64, or object with text columns) or a list of rows, packed. `kinds`
    comes from the whole request when only some of its rows are kept (they may be none)."""
    matrix = rows if isinstance(rows, np.ndarray) else np.asarray(rows, dtype=object)
    if matrix.ndim != 2:  # no rows at all (a request the sampling rate kept none of)
        matrix = matrix.reshape(len(matrix), -1) if matrix.size else np.empty((0, 0))
    n_rows, n_cols = matrix.shape
    if kinds is None:
        kinds = column_kinds(matrix[:1] if isinstance(rows, np.ndarray) else matrix)
    if kinds and n_cols == 0:  # no rows kept: an empty table of the request's columns
        matrix = np.empty((0, len(kinds)), dtype=object)
        n_cols = len(kinds)
    if b"t" not in kinds:
        numeric, text = matrix, None
    else:
        numeric_at = [i for i, kind in enumerate(kinds) if kind == b"f"[0]]
        text_at = [i for i, kind in enumerate(kinds) if kind == b"t"[0]]
        numeric = matrix[:, numeric_at]
        text = matrix[:, text_at].tolist()
    block = np.ascontiguousarray(numeric, dtype="<f8").tobytes()
    tail = orjson.dumps(text) if text is not None else b""
    return HEADER.pack(MAGIC, n_rows, n_cols) + kinds + block + tail


def packed_row_count(blob) -> int:
    """How many rows a packed value holds, from its header alone."""
    return HEADER.unpack_from(blob)[1] if len(blob) else 0


def unpack_parts(blob) -> tuple[bytes, int, memoryview, bytes]:
    """(kinds, n_rows, numeric block, text JSON): the pieces, without making rows."""
    blob = memoryview(blob)
    magic, n_rows, n_cols = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError("not a packed rows value")
    start = HEADER.size
    kinds = bytes(blob[start:start + n_cols])
    start += n_cols
    size = n_rows * kinds.count(b"f") * 8
    return kinds, n_rows, blob[start:start + size], bytes(blob[start + size:])


def join_packed(blobs) -> tuple[bytes, bytes, list] | None:
    """Many packed values of one signature at once, for monitoring: (kinds, the numeric
    blocks joined, the text rows). The slicing is done here, once per value, without
    unpacking each value separately; values that kept no rows are skipped."""
    blobs = [blob for blob in blobs if packed_row_count(blob)]
    if not blobs:
        return None
    kinds = unpack_parts(blobs[0])[0]  # one signature: every value has the same kinds
    start = HEADER.size + len(kinds)
    if b"t" not in kinds:  # the rest of each value is the numeric block
        return kinds, b"".join(blob[start:] for blob in blobs), []
    width = kinds.count(b"f") * 8
    numeric, tails = [], []
    for blob in blobs:
        cut = start + packed_row_count(blob) * width
        numeric.append(blob[start:cut])
        tails.append(blob[cut + 1:-1])  # the rows of `[[...],[...]]`, brackets off
    return kinds, b"".join(numeric), orjson.loads(b"[" + b",".join(tails) + b"]")


def unpack_rows(blob) -> list[list]:
    kinds, n_rows, block, tail = unpack_parts(blob)
    numeric = np.frombuffer(block, dtype="<f8").reshape(n_rows, kinds.count(b"f")).tolist()
    text = orjson.loads(tail) if tail else [[]] * n_rows
    rows = []
    for number_row, text_row in zip(numeric, text, strict=True):
        numbers, words = iter(number_row), iter(text_row)
        rows.append([next(numbers) if kind == b"f"[0] else next(words) for kind in kinds])
    return rows


class PackedRowsField(models.BinaryField):
    """Rows of model inputs, stored packed; read back as a list of rows."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is not None and not isinstance(value, bytes | bytearray | memoryview):
            value = pack_rows(value)
        return super().get_db_prep_value(value, connection, prepared)

    def from_db_value(self, value, expression, connection):
        return None if value is None else unpack_rows(value) if len(value) else []

    def to_python(self, value):
        if isinstance(value, bytes | bytearray | memoryview):
            return unpack_rows(value)
        return value

    def value_to_string(self, obj):
        return orjson.dumps(self.value_from_object(obj), option=OPTIONS).decode()
