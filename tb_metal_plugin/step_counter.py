"""Where a Keras 3 optimizer counts its steps: an `Add_k` at the train step's root, or
inside its own scope.

Keras increments `optimizer.iterations` (an int64 variable) once per step, as an `Add` and
an `AssignVariableOp`. Keras 3.15 does it at the step's root, where the loss tracker's and
the metrics' updates have the same names; Keras 3.6 (the Keras of TF 2.16-2.18, the
releases tensorflow-metal runs with) does it inside the optimizer's scope, beside its
other variable updates, also made as `Add` + `AssignVariableOp`. Which root `Add_k` is the
counter then changes the phase of two root ops: phases.RootPhases asks here.
"""

from __future__ import annotations

from collections.abc import Iterable

from .opnames import strip_suffix
from .phases import _flat, _index, _inside

DT_INT64 = 9  # tensorflow's DataType enum: the counter's dtype; Keras metrics use floats
_UPDATE = ("Add", "AssignVariableOp")


def root_counter(ops: Iterable[tuple[str, str]], scoped_phase, graph=None) -> dict[str, int] | None:
    """For `Add` and `AssignVariableOp`, the index k of the root `<base>_k` that counts the
    optimizer's steps (-1: no root op does, the optimizer counts in its own scope), or None
    when neither source tells. The two indices can differ (a regularizer's `Add` before).

    The step graph tells exactly: the counter's ops are the root's int64 ones. From names
    alone: an optimizer scope with its `Add`s and exactly one `AssignVariableOp` is Keras
    3.6's (the counter's assign; its slot updates are `AssignAdd`/`AssignSub`). Keras
    3.15's Adam and SGD make no `AssignVariableOp` there; an RMSprop makes one per slot in
    either Keras, so names cannot tell there.
    """
    ops = list(ops)
    if _flat(ops):
        return None  # tf_keras: RootPhases knows its optimizer counts in its own scope
    roots: dict[str, list[tuple[str, str]]] = {base: [] for base in _UPDATE}
    own: dict[str, list[str]] = {}
    for name, op_type in ops:
        inside = _inside(name, False)
        if inside is None:
            continue
        last = name.rpartition("/")[2]
        base = strip_suffix(last)
        if base not in _UPDATE:
            continue
        if not inside:
            roots[base].append((name, last))
        elif len(inside) == 1 and scoped_phase(name, op_type) == "optimizer":
            own.setdefault(inside[0], []).append(last)
    if graph is not None and any(n in graph for pairs in roots.values() for n, _ in pairs):
        out = {}
        for base, pairs in roots.items():
            counters = [last for n, last in pairs if graph.dtype(n) == DT_INT64]
            if len(counters) > 1:
                return None  # one counter per optimizer (a GAN's): RootPhases's own rule
            out[base] = _index(counters[0]) if counters else -1
        return out
    for lasts in own.values():
        assigns = [last for last in lasts if strip_suffix(last) == "AssignVariableOp"]
        if assigns == ["AssignVariableOp"] and "Add" in map(strip_suffix, lasts):
            return dict.fromkeys(_UPDATE, -1)
    return None
