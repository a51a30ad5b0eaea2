"""The API's JSON renderer writes what DRF's would, faster."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

from rest_framework.renderers import JSONRenderer as DrfRenderer

from core.renderers import JSONRenderer


def test_it_writes_the_same_json_as_drfs_renderer():
    data = {"at": datetime.datetime(2026, 12, 2, 15, 0, 1, 250, tzinfo=datetime.UTC),
            "day": datetime.date(2026, 12, 2), "text": "é \u2028 \u2029 <", "n": [1, 2.5, None],
            "price": Decimal("1.5"), "nested": {"ok": True}}
    ours, drfs = JSONRenderer().render(data), DrfRenderer().render(data)
    assert json.loads(ours) == json.loads(drfs)
    assert b"\\u2028" in ours and b"\\u2029" in ours  # a JavaScript literal too, as DRF's
    assert b'"2026-12-02T15:00:01.000250Z"' in ours


def test_it_writes_what_orjson_cannot_through_drfs_renderer():
    assert JSONRenderer().render({"huge": 10**30}) == DrfRenderer().render({"huge": 10**30})
    assert JSONRenderer().render({1: "a"}) == DrfRenderer().render({1: "a"})
