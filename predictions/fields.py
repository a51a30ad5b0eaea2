"""A JSONField written and read with orjson, numpy arrays included.

The prediction log stores every answered row; with the standard library's json (and
`ndarray.tolist()` before it) encoding them took about a quarter of a web worker's time under
1,000-row batches (py-spy, bench/README.md). orjson encodes numpy arrays directly.
"""

from __future__ import annotations

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
