"""Value checks at the boundaries: numbers read from a trace, parameters read from a request.

A trace is input we did not write: a damaged or hostile file can hold any integer where a
step number or a duration belongs. Each value is checked once, where it is read; a value
out of range is dropped and counted, and the counts become one warning per reason, so a
profile never shows negative or overflowing figures without saying why.

Bounds are far above anything a real profile holds (a profile window is seconds to
minutes) and far below what 64-bit per-step arrays can sum, so no figure can overflow.
"""

from __future__ import annotations

import math
import re

from .errors import InvalidArgumentError

# Step numbers are Keras batch indices; 2^53 - 1 keeps them exact in JavaScript too.
MAX_STEP = 2**53 - 1
# One event may last at most 2^55 ps (about 10 hours) and must end within that span of
# its line's start; a profile holding longer events is corrupt.
MAX_SPAN_PS = 2**55
# A line's timestamp is nanoseconds since the epoch (about 2^61 in 2026); ps = ns * 1000
# stay Python ints, and are only ever subtracted from each other.
MAX_TIMESTAMP_NS = 2**63 - 1
# The sum of every accepted duration in one file stays below this, so no per-op, per-step
# sum (int64 arrays) can overflow, whatever the events' nesting.
MAX_TOTAL_PS = 2**62
# Per-op event counts are int32 arrays.
MAX_EVENTS = 2**31 - 1

_REASONS = {
    "step_num": "step markers with a step number that is not an integer in 0..2^53 (ignored)",
    "step_span": "step markers with a negative or out-of-range start or duration (ignored)",
    "event_span": "events with a negative or out-of-range offset or duration (skipped)",
    "line_timestamp": "lines with a negative or out-of-range timestamp (skipped)",
    "budget": "events beyond what 64-bit sums can hold (skipped)",
    "window": "profile window longer than 10 hours: line timestamps disagree, so the "
    "step time is unknown",
    "overlap": "events that run past the end of the event enclosing them (clipped)",
}


class Checks:
    """Per-file counters of the values that were dropped, and the checks that count them."""

    def __init__(self, path: str = ""):
        self.path = path
        self.counts: dict[str, int] = {}
        self.total_ps = 0
        self.events = 0

    def _drop(self, reason: str, n: int = 1) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + n

    def step_num(self, value: object) -> int | None:
        """A step number as an int, or None (counted) when it is not an integer in range."""
        num = as_step_number(value)
        if num is None:
            self._drop("step_num")
        return num

    def step_span(self, base_ps: int, offset_ps: int, duration_ps: int) -> bool:
        """True when a step marker's start and duration are usable; counts it otherwise."""
        if _span_ok(offset_ps, duration_ps) and base_ps >= 0:
            return True
        self._drop("step_span")
        return False

    def line_timestamp(self, timestamp_ns: int) -> bool:
        """True when a line's start time is in range; counts the line otherwise."""
        if 0 <= timestamp_ns <= MAX_TIMESTAMP_NS:
            return True
        self._drop("line_timestamp")
        return False

    def event(self, offset_ps: int, duration_ps: int) -> bool:
        """True when an event's offset and duration are in range and fit the file's budget."""
        if not _span_ok(offset_ps, duration_ps):
            self._drop("event_span")
            return False
        if self.total_ps + duration_ps > MAX_TOTAL_PS or self.events >= MAX_EVENTS:
            self._drop("budget")
            return False
        self.total_ps += duration_ps
        self.events += 1
        return True

    def nested(self, offset_ps: int, duration_ps: int, parent_end_ps: int) -> int:
        """The part of a child event inside its parent (what the parent's self time loses)."""
        inside = parent_end_ps - offset_ps
        if duration_ps <= inside:
            return duration_ps
        self._drop("overlap")
        return max(0, inside)

    def window(self, first_ps: int | None, last_ps: int | None) -> int:
        """The profile's time window, 0 (counted) when its lines' times are out of range."""
        if first_ps is None or last_ps is None:
            return 0
        if 0 <= last_ps - first_ps <= MAX_SPAN_PS:
            return last_ps - first_ps
        self._drop("window")
        return 0

    def warnings(self) -> list[str]:
        """One warning per reason, with the count, in a fixed order."""
        return [
            (f"{self.counts[r]} " if r != "window" else "")
            + text
            + (" (damaged trace?)" if r != "overlap" else "")
            for r, text in _REASONS.items()
            if self.counts.get(r)
        ]


def _span_ok(offset_ps: int, duration_ps: int) -> bool:
    return 0 <= offset_ps and 0 <= duration_ps and offset_ps + duration_ps <= MAX_SPAN_PS


def as_step_number(value: object) -> int | None:
    """An integer step number in 0..MAX_STEP from a stat value (int, float, str), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        num = value
    elif isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            return None
        num = int(value)
    elif isinstance(value, str | bytes):
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        if not _DIGITS.fullmatch(text):
            return None
        num = int(text)
    else:
        return None
    return num if 0 <= num <= MAX_STEP else None


# ---------------------------------------------------------------------------
# Request parameters: strict, bounded, and typed errors for anything else

_DIGITS = re.compile(r"[0-9]{1,16}", re.ASCII)
_SECONDS = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?", re.ASCII)
MAX_JSON_PARAM = 4096
MAX_JSON_DEPTH = 8


def parse_step(raw: str | None) -> int | str | None:
    """A step selection: None (all), 'avg', or a step number written in ASCII digits."""
    if raw is None or raw in ("", "all", "total"):
        return None
    if raw == "avg":
        return "avg"
    if _DIGITS.fullmatch(raw):
        num = int(raw)
        if num <= MAX_STEP:
            return num
    raise InvalidArgumentError(
        f"step must be a step number (ASCII digits), 'avg' or 'all', not {raw[:40]!r}"
    )


def parse_seconds(raw: str | None, name: str, maximum: float) -> float:
    """Seconds written as plain ASCII decimal, within 0..maximum."""
    if not raw:
        return 0.0
    if not _SECONDS.fullmatch(raw):
        raise InvalidArgumentError(f"{name} must be seconds (e.g. 2.5), not {raw[:40]!r}")
    value = float(raw)
    if value > maximum:
        raise InvalidArgumentError(f"{name} must be within 0..{maximum:g} s")
    return value


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json_param(raw: str, name: str) -> object:
    """Decode a JSON parameter bounded in size and depth (no deep recursion in the parser)."""
    import json

    if len(raw) > MAX_JSON_PARAM:
        raise InvalidArgumentError(f"{name} is longer than {MAX_JSON_PARAM} characters")
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise InvalidArgumentError(f"{name} is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidArgumentError(f"{name} is not valid JSON") from None


def parse_layer(raw: str | None) -> list[str] | None:
    """A layer path: a JSON array of strings, e.g. ["model","dense"]."""
    if raw is None or raw == "":
        return None
    layer = parse_json_param(raw, "layer")
    if not isinstance(layer, list) or not all(isinstance(p, str) for p in layer):
        raise InvalidArgumentError(
            'layer must be a JSON array of path components, e.g. ["model","dense"]'
        )
    return layer
