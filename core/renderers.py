"""The API's JSON renderer: DRF's output, written by orjson.

DRF's renderer runs the standard library's encoder in Python over every value; a page of
500 versions spent a tenth of its time there (issue 14). orjson writes the same JSON (UTF-8,
compact, datetimes in ISO 8601 with UTC as Z); what it cannot write (an integer beyond 64
bits, a non-text key) and an indented answer (the browsable API) go to DRF's renderer.
"""

from __future__ import annotations

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

_default = JSONEncoder().default  # Decimal, lazy translations, sets, ... as DRF writes them


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=_default, option=orjson.OPT_UTC_Z)
        except TypeError:
            return super().render(data, accepted_media_type, renderer_context)
        # As DRF: U+2028 and U+2029 escaped, so the JSON is also a JavaScript literal.
        if b"\xe2\x80\xa8" in body or b"\xe2\x80\xa9" in body:
            body = body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return body
