"""Compact JSON written in pieces: a payload's long lists are never one string in memory.

`json.dumps` of an ops payload builds the whole text (megabytes for a big model) and, while
it joins it, every piece of it too. `json_chunks` yields the same text, byte for byte, in
slices of a few hundred rows, each made by a C encoder: tb-metal's own (`_jsonrows.c`, where
it was built) or json's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

_COMPACT = json.JSONEncoder(separators=(",", ":"))

# The C encoder (tb_metal_plugin/_jsonrows.c, built on install where a compiler exists)
# writes the same bytes; it hands back None for anything only json encodes, or refuses.
# TB_METAL_PURE_PYTHON=1 leaves it out, as it does the native host-line reader.
_native: Any = None
if os.environ.get("TB_METAL_PURE_PYTHON", "") in ("", "0"):
    try:
        from . import _jsonrows as _native
    except ImportError:
        _native = None
# Rows of an ops payload written from their ops (oprows.iter_op_json), or None.
native_rows = getattr(_native, "op_rows", None)


def compact(data: object) -> str:
    """`json.dumps(data, separators=(",", ":"))`, natively where the extension is built."""
    if _native is not None:
        text = _native.encode(data)
        if text is not None:
            return text
    return _COMPACT.encode(data)


# Rows per piece: big enough that the C encoder does the work, small enough to stay small.
ROWS_PER_PIECE = 256


def json_chunks(data: object, rows: int = ROWS_PER_PIECE) -> Iterator[str]:
    """Pieces whose concatenation is `json.dumps(data, separators=(",", ":"))`.

    A dict's list values longer than `rows` are encoded a slice at a time; anything else
    in one go (a dict with a key that is not a string too: json converts those itself).
    """
    encode = compact
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        yield encode(data)
        return
    sep = "{"
    for key, value in data.items():
        if isinstance(value, list) and len(value) > rows:
            yield f"{sep}{encode(key)}:["
            for i in range(0, len(value), rows):
                # "[a,b]" -> "a,b"; slices after the first continue the list with a comma.
                yield ("," if i else "") + encode(value[i : i + rows])[1:-1]
            yield "]"
        else:
            yield f"{sep}{encode(key)}:{encode(value)}"
        sep = ","
    yield "{}" if sep == "{" else "}"


def json_chunks_of(
    head: dict, key: str, items: Iterable[object], rows: int = ROWS_PER_PIECE
) -> Iterator[str]:
    """Pieces whose concatenation is the compact JSON of `{**head, key: list(items)}`, the
    items encoded `rows` at a time as the iterable yields them (none is kept after)."""
    if key in head or not all(isinstance(k, str) for k in head):
        yield from json_chunks({**head, key: list(items)}, rows)
        return
    items = iter(items)
    batches = iter(lambda: list(islice(items, rows)), [])
    yield from json_chunks_around(head, key, (compact(batch)[1:-1] for batch in batches))


def json_chunks_around(head: dict, key: str, encoded: Iterable[str]) -> Iterator[str]:
    """Pieces of the compact JSON of `{**head, key: [...]}` whose list items come encoded:
    each string of `encoded` is one or more items' JSON joined by commas."""
    if key in head or not all(isinstance(k, str) for k in head):
        raise ValueError("the list's key must be new to the head, and every key a str")
    # "{...}" of the head, reopened: the list is its last member.
    yield (compact(head)[:-1] + "," if head else "{") + compact(key) + ":["
    sep = ""
    for piece in encoded:
        if piece:
            yield sep + piece
            sep = ","
    yield "]}"


def to_json(data: object, pretty: bool = False) -> str:
    """JSON in the key order as built: compact (the C encoder), or indented for people."""
    if pretty:
        return json.dumps(data, indent=2)  # indent forces the pure-Python encoder: slower
    return compact(data)
