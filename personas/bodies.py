"""The one JSON parser for everything a request sends (REST bodies, GraphQL requests and
their GET parameters): strict, exact, and bounded in depth before anything recurses."""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Final

import orjson

from personas.domain import InvalidInput

MAX_DEPTH: Final = 64
"""Deepest nesting of arrays and objects a request may send (metadata itself stops at 20)."""

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
"""A string, or an unterminated one running to the end: every quote starts a match, and
nothing is tried twice (possessive), so the scan stays linear whatever it is given."""
_NOT_BRACKETS: Final = bytes(byte for byte in range(256) if byte not in b"[]{}")
_STEP: Final = [1 if byte in b"[{" else -1 if byte in b"]}" else 0 for byte in range(256)]
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
"""19 digits may spell an integer beyond 64 bits, which orjson reads as a float."""


def depth(raw: bytes) -> int:
    """How deep arrays and objects nest in `raw`, counted outside strings, without parsing
    (an iterative scan: no recursion, whatever the input)."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def too_deep(raw: bytes) -> bool:
    """Whether `raw` nests deeper than MAX_DEPTH; few brackets cannot, so most bodies are
    not scanned at all."""
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and depth(raw) > MAX_DEPTH


def parse_json(raw: bytes | str, field: str = "body", strict: bool = True) -> object:
    """A JSON value with integers kept exact; nesting deeper than MAX_DEPTH, or anything
    not JSON, is bad input at `field`. Strict reading (REST) refuses what orjson refuses:
    invalid UTF-8, NaN, lone surrogate escapes. Otherwise (GraphQL) what the standard
    library reads goes on, for the domain rules to refuse naming the field."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if too_deep(data):
        raise InvalidInput(
            field, f"arrays and objects nest more than {MAX_DEPTH} levels deep (the limit)"
        )
    try:
        value: object = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        if strict:
            raise InvalidInput(field, f"not valid JSON ({error})") from None
        return _standard(data, field)
    if _LONG_DIGITS.search(data):
        # orjson reads integers beyond 64 bits as floats; json keeps them exact, so that
        # the domain refuses them instead of storing a rounded number.
        return _standard(data, field)
    return value


def _standard(data: bytes, field: str) -> object:
    """`data` read by the standard library; its recursion is safe: the depth is bounded."""
    try:
        value: object = json.loads(data)
    except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8 at all
        raise InvalidInput(field, f"not valid JSON ({error})") from None
    return value
