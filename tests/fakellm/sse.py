"""Server-sent events: framing of one event, and fast framing of many deltas."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _pieces(text: str, size: int) -> list[str]:
    size = max(size, 1)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


_HOLE = "\x00fakellm-hole\x00"
_HOLE_JSON = json.dumps(_HOLE)


def _framer(prefix: bytes, template: Any) -> Callable[[str], bytes]:
    """A fast encoder of one SSE event per piece: ``template`` with the piece in place of _HOLE.

    Encodes the template once, so a stream of 100k deltas costs 100k small ``json.dumps`` calls,
    not 100k encodings of the whole chunk. The bytes equal ``json.dumps`` of the filled template.
    """
    head, tail = json.dumps(template).split(_HOLE_JSON)
    start, end = prefix + head.encode(), tail.encode() + b"\n\n"

    def frame(piece: str) -> bytes:
        return start + json.dumps(piece).encode() + end

    return frame


def _data(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _event(name: str, obj: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(obj).encode() + b"\n\n"
