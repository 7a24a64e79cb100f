"""Which ops of a Keras train step are created at its root, and under which root op.

An op at the step's root has no layer or phase scope above it; its owner is the root-level
op it belongs to (`Add_2` for `Add_2/ReadVariableOp`: a variable read sits under its
reader), in a namespace when a distribution strategy runs one copy of the step per
replica (`replica_1/`). phases.RootPhases decides the owners' phases.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .opnames import (
    INTERNAL,
    NON_COMPUTE,
    PASS_THROUGH,
    REPLICA,
    grappler_original,
    is_mark,
    name_head,
    strip_suffix,
)
from .opphase import _scopes_phase
from .user_scopes import maybe_user_scope


def step_path(name: str, flat: bool = False) -> list[str] | None:
    """The op's components inside the train-step function (after the last call wrapper;
    all of them in a `flat` trace, see `flat_trace`)."""
    inside = inside_step(name, flat)
    return None if inside is None else [*inside, name.rpartition("/")[2]]


def inside_step(name: str, flat: bool) -> tuple[str, ...] | None:
    """`step_path` without the op's own name (None: not inside the step)."""
    if flat:
        scope, sep, _ = name.rpartition("/")
        return tuple(scope.split("/")) if sep else ()
    return name_head(name)[0].inside  # the wrapper is among the scopes, read once per scope


def user_step_scope(forward_scopes: Iterable[tuple[str, ...]]) -> str | None:
    """The scope a custom train_step opened around all of its work (`my_step/` above
    `my_step/compile_loss/` and `my_step/adam/`), if one, from a trace's forward scope
    keys (opnames.scope_sets): its ops are the step's root ops."""
    for key in forward_scopes:
        if len(key) == 2 and maybe_user_scope(key[0]) and not _scopes_phase(key[:1]):
            # (Not a scope of Keras's own: the optimizer's `adam/update_1/` is below it.)
            if _scopes_phase(key[1:]) in ("loss", "optimizer"):
                return key[0]
    return None


def root_owner(name: str, op_type: str, flat: bool = False) -> tuple[tuple[str, ...], str] | None:
    """(namespace, owner) for an op created at the step's root, else None.

    The owner is the root-level op name (`Add_2` for `Add_2/ReadVariableOp` too: a variable
    read sits under its reader); the namespace is a replica prefix when a distribution
    strategy runs several copies of the step.
    """
    return path_owner(step_path(name, flat), op_type)


def path_owner(path: list[str] | None, op_type: str) -> tuple[tuple[str, ...], str] | None:
    """`root_owner` from the op's `step_path`."""
    if path is None or len(path) > 3:
        return None  # deeper than a replica's `<op function>/<op>`: no root op
    ns: tuple[str, ...] = ()
    if len(path) > 1 and REPLICA.match(path[0]):
        ns, path = (path[0],), path[1:]
    if len(path) > 1 and path[0].endswith("Optimizer"):
        # A root op Grappler rewrote (`ArithmeticOptimizer/<Stage>_Cast_3`) is the op it
        # replaced, `Cast_3`, for its phase.
        while len(path) > 1 and path[0].endswith("Optimizer"):
            path = path[1:]
        path = [*path[:-1], grappler_original(path[-1])]
    if not path or path[0] in PASS_THROUGH:
        return None
    # `Mean_1/input` packs the values a reduction averages (its own helper op); an op
    # function's scope at the root (`clip_by_value/Minimum`) is one root op too.
    if len(path) == 1 or (
        len(path) == 2
        and (op_type in NON_COMPUTE or path[1] == "input" or strip_suffix(path[0]) in INTERNAL)
    ):
        return ns, path[0]
    return None


NO_ROOT, ANY_OP = object(), object()


def scope_shape(inside: tuple[str, ...] | None):
    """What the ops right below scopes whose step path is `inside` are: `NO_ROOT` (no root
    op, no root branch), a root branch (its prefix), or `_owner_shape`'s answer."""
    if inside is None:
        return NO_ROOT  # outside the step function
    if len(inside) > 2:
        return _branch(inside) or NO_ROOT
    if not inside:
        return ANY_OP
    return _owner_shape(inside)


def _owner_shape(inside: tuple[str, ...]):
    """`path_owner` of the ops right below these step scopes (one or two): `NO_ROOT` (never a
    root op), an owner (for reads and `input`s alone, else none), or `ANY_OP` (ask it).

    Replica and Grappler prefixes change the path first: those scopes are `ANY_OP`.
    """
    first = inside[0]
    if REPLICA.match(first) or first.endswith("Optimizer"):
        return ANY_OP
    if len(inside) == 2 or first in PASS_THROUGH:
        return NO_ROOT
    if strip_suffix(first) in INTERNAL:
        return ANY_OP  # every op below is one root op: `path_owner` says so
    return ((), first)


def root_branch(name: str) -> str | None:
    """The branch prefix when the op runs in a `cond` created at the step's root."""
    path = step_path(name)
    return _branch(path[:-1]) if path else None


def _branch(scopes: Sequence[str]) -> str | None:
    """`root_branch` from the scopes of the op's `step_path` (all but the op)."""
    if len(scopes) > 2 and scopes[0].startswith("cond") and scopes[1] in ("then", "else"):
        if is_mark(scopes[2]):
            return "/".join(scopes[:3])
    return None


def known_owners(known: dict, flat: bool = False):
    """`root_owner(*op)`, looked up in `known` (the trace's ops) before it is worked out."""

    def owner(op):
        key = known.get(op, known)  # `known` itself: not there (None is an answer)
        return root_owner(*op, flat) if key is known else key

    return owner


def flat_trace(ops: list[tuple[str, str]]) -> bool:
    """True for a trace whose train step runs as the top function, no call wrapper in any
    op name (tf_keras, Keras 2): every scope path there starts inside the step."""
    return bool(ops) and not any("PartitionedCall" in name for name, _ in ops)
