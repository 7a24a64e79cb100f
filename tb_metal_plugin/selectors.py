"""Step, layer and bucket selectors: parsed once, in the API, with one set of rules for every
face (the CLI passes its options' text, the routes their query parameters, Python callers
typed values; all go through these functions)."""

from __future__ import annotations

from collections.abc import Sequence

from .attribution import BUCKETS
from .errors import InvalidArgumentError
from .validate import DIGITS, MAX_STEP, parse_json_param

# A layer path sent as JSON text is at most this long (a real one is far shorter).
MAX_LAYER_TEXT = 4096


def parse_step(raw: object) -> int | str | None:
    """A step selection: None (the whole window; also '', 'all', 'total'), 'avg', or a step
    number (an int, or ASCII digits)."""
    if raw is None or raw in ("", "all", "total"):
        return None
    if raw == "avg":
        return "avg"
    num = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        num = raw
    elif isinstance(raw, str) and DIGITS.fullmatch(raw):
        num = int(raw)
    if num is not None and 0 <= num <= MAX_STEP:
        return num
    raise InvalidArgumentError(
        f"step must be a step number (ASCII digits), 'avg' or 'all', not {str(raw)[:40]!r}"
    )


def parse_layer(raw: object) -> tuple[str, ...] | None:
    """A layer path: a sequence of names, `a/b` text, or JSON text of a list (`["m","dense"]`)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        if len(raw) > MAX_LAYER_TEXT:
            raise InvalidArgumentError(f"layer is longer than {MAX_LAYER_TEXT} characters")
        if raw.lstrip().startswith("["):
            raw = parse_json_param(raw, "layer")
        else:
            raw = [p for p in raw.split("/") if p] or None
    if (
        not isinstance(raw, Sequence)
        or isinstance(raw, str)
        or not raw
        or not all(isinstance(p, str) and p for p in raw)
    ):
        raise InvalidArgumentError(
            'layer must be a path of names, `model/dense` or ["model","dense"]'
        )
    return tuple(raw)


def parse_bucket(raw: object) -> str | None:
    """A bucket of ops outside any layer, by the name the layer tree shows."""
    if raw is None or raw == "":
        return None
    if raw not in BUCKETS.values():
        names = ", ".join(repr(b) for b in BUCKETS.values())
        raise InvalidArgumentError(f"bucket must be one of {names}, not {str(raw)[:40]!r}")
    return str(raw)


def parse_ops_filter(layer: object, bucket: object) -> tuple[tuple[str, ...] | None, str | None]:
    """The layer or bucket whose ops to list (at most one of them)."""
    path, name = parse_layer(layer), parse_bucket(bucket)
    if path is not None and name is not None:
        raise InvalidArgumentError("give 'layer' or 'bucket', not both")
    return path, name
