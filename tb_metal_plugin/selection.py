"""Which step slots a figure covers: the whole profile, one step, or the mean per step."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .hostline import native_total

if TYPE_CHECKING:
    from .events import TraceEvents


class Selection:
    """Which step slots a figure covers: the whole window, one step, or the mean per step."""

    def __init__(self, events: TraceEvents, step: int | str | None):
        self.step = step
        self.label: str | int
        nsteps = len(events.steps)
        if step is None or step == "all":
            self.slots = list(range(nsteps + 1))
            self.divisor = 1
            self.step_time_ps = (
                sum(s.duration_ps for s in events.steps) if events.steps else events.window_ps
            )
            self.label = "all"
        elif step == "avg":
            if not nsteps:
                self.slots, self.divisor = [0], 1
                self.step_time_ps = events.window_ps
            else:
                self.slots = list(range(nsteps))
                self.divisor = nsteps
                self.step_time_ps = sum(s.duration_ps for s in events.steps) // nsteps
            self.label = "avg"
        else:
            index = {s.num: i for i, s in enumerate(events.steps)}
            self.slots = [index[int(step)]]
            self.divisor = 1
            self.step_time_ps = events.steps[self.slots[0]].duration_ps
            self.label = int(step)
        # The selected slots are always one contiguous run, lo..hi.
        self._lo, self._hi = self.slots[0], self.slots[-1] + 1
        self._whole = self._lo == 0 and self._hi == nsteps + 1

    def bounds(self) -> tuple[int, int | None, int]:
        """(lo, hi, divisor): a figure is the sum of slots lo..hi-1 (hi None: every slot,
        however many a sequence holds), floor-divided by divisor."""
        return self._lo, None if self._whole else self._hi, self.divisor

    def _total(self, values) -> int:
        # A slice summed in C, no Python loop over slots: by the native extension where it
        # is built (no Python int per slot), else by sum and past a few hundred slots by
        # numpy, which wins there over its call overhead.
        lo, hi = self._lo, self._hi
        if native_total is not None:
            return native_total(values, lo, hi)
        if hi - lo < _NUMPY_FROM or not isinstance(values, array):
            return sum(values[lo:hi])
        import numpy as np

        return int(np.frombuffer(values, dtype=values.typecode)[lo:hi].sum(dtype=np.int64))

    def sum(self, values: Sequence[int]) -> int:
        """Sum of the selected slots, divided for the per-step mean."""
        total = self._total(values)
        return total // self.divisor if self.divisor > 1 else total

    def count(self, values: Sequence[int]) -> float | int:
        """Like sum, but keeps a fractional mean count."""
        total = self._total(values)
        return round(total / self.divisor, 2) if self.divisor > 1 else total

    def summers(self) -> tuple[Callable[[Sequence[int]], int], Callable[[Sequence[int]], float]]:
        """(sum, count) as plain functions of a per-slot sequence of `events.slots` values,
        equal to `self.sum` and `self.count`, for loops over every op: the common selections
        (the whole profile, the mean per step) need no method call and no branch per value."""
        lo, hi, div = self._lo, self._hi, self.divisor
        if native_total is not None:
            return _native_summers(native_total, lo, hi, div, self._whole)
        if hi - lo >= _NUMPY_FROM:
            return self.sum, self.count
        if div == 1:
            if self._whole:
                return sum, sum

            def total(values: Sequence[int]) -> int:
                return sum(values[lo:hi])

            return total, total

        def mean(values: Sequence[int]) -> int:
            return sum(values[lo:hi]) // div

        def mean_count(values: Sequence[int]) -> float:
            return round(sum(values[lo:hi]) / div, 2)

        return mean, mean_count


def _native_summers(add, lo: int, hi: int, div: int, whole: bool):
    """Selection.summers over the C sum `add(values, lo, hi)`: the same results."""
    if div == 1:
        if whole:
            return add, add

        def total(values: Sequence[int]) -> int:
            return add(values, lo, hi)

        return total, total

    def mean(values: Sequence[int]) -> int:
        return add(values, lo, hi) // div

    def mean_count(values: Sequence[int]) -> float:
        return round(add(values, lo, hi) / div, 2)

    return mean, mean_count


# Measured here: slice + builtin sum beats a per-op numpy call up to about 300 slots.
_NUMPY_FROM = 256
