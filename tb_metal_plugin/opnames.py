"""Reading TF op names of a Keras train step: scope components, suffixes, wrappers.

Pure string functions shared by the attributors. Facts they rest on (checked on Keras 3 /
TF 2.21 traces, see docs in DOMAIN): layer scopes carry one uniquifying `_<k>`; loop bodies
and branches restart the scope path after `body/_N`; gradients mirror the forward scope
under `gradient_tape/`; distribution strategies add a `replica_<k>/` component.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

SUFFIX = re.compile(r"^(.+)_(\d+)$")
INLINE_MARK = re.compile(r"^_\d+$")
WRAPPER = re.compile(r"^(StatefulPartitionedCall|PartitionedCall|TPUPartitionedCall)(_\d+)?$")
# MirroredStrategy and friends run one copy of the step per replica under `replica_<k>`.
REPLICA = re.compile(r"^replica_\d+$")
# Scopes that TF or Keras open inside a layer's call: never layers themselves. Walking a
# name, we step over these and keep looking for deeper layers (RNN cells sit under
# `while`, gradient loops under `gradients`).
PASS_THROUGH = frozenset(
    {
        "while",
        "cond",
        "body",
        "then",
        "else",
        "gradients",
        "gradient_tape",
        "while_grad",
        "cond_grad",
        "ArithmeticOptimizer",
    }
)
# Scopes that TF's op functions open (`tf.nn.moments` opens `moments`, ...): inside a layer
# they look like a uniquified layer scope (`moments_1/mean`) but are not layers. These are
# TF/Keras library names, the same for every model.
INTERNAL = frozenset(
    """
    convolution moments batchnorm Tensordot einsum strided_slice transpose split stack
    concat range clip_by_value random_uniform random_normal truncated_normal map
    TensorArrayV2Read TensorArrayV2Write TensorArrayUnstack TensorArrayV2Stack
    zeros_like ones_like zeros ones dropout_mask stateless_random_uniform
    stateless_random_normal Reshape MatMul BiasAdd Cast mul sub truediv Sum Mean Max Min
    Prod Squeeze ExpandDims Shape GatherV2 gather resize depthwise max_pool avg_pool
    l2_normalize log_softmax sequential_while TensorListReserve Relu Sigmoid Tanh
    Softmax ReadVariableOp AssignVariableOp Identity Pad pad Square Sqrt Rsqrt
    div_no_nan AddN in_top_k confusion_matrix bincount
    """.split()
)
# (`AddN` is there for the tape's sums: Grappler hangs `AddN_7/tmp_var_initializer` under one.)
NON_COMPUTE = frozenset({"ReadVariableOp", "VarHandleOp", "Const", "_Arg", "_Retval"})


def is_mark(component: str) -> bool:
    """`_27`: the inlining mark a loop body or branch adds (faster than INLINE_MARK)."""
    return len(component) > 1 and component[0] == "_" and component[1:].isdigit()


# Grappler names a node it builds in place of `<node>` as `<Optimizer>/<Stage>_<node>`,
# some stages with the dtype after the stage (`ReorderCastLikeAndValuePreserving_float_`),
# and a second pass may prefix the result again.
_STAGE = re.compile(
    r"^[A-Z][A-Za-z0-9]*_(?:(?:float|double|half|bfloat16|u?int\d+|bool|complex\d+)_)?(.+)$"
)


def grappler_original(component: str) -> str:
    """The node a Grappler-built node's last name component says it replaced."""
    while (m := _STAGE.match(component)) and not m.group(1).isdigit():
        component = m.group(1)
    return component


def strip_suffix(component: str) -> str:
    """`dense_1` -> `dense`; a component without `_<k>` is returned as is."""
    m = SUFFIX.match(component)
    return m.group(1) if m else component


def creation_index(name: str) -> int:
    """TF's uniquifying counter of an op's name (`.../TensorListPushBack_12` -> 12, none
    -> 0): ops of one base name are numbered in the order they were created."""
    m = SUFFIX.match(name.rpartition("/")[2])
    return int(m.group(2)) if m else 0


def tail(components: list[str]) -> list[str]:
    """The components after the last function-inlining marker and call wrappers.

    Loop bodies and branches restart the scope path from the root after `body/_N`,
    `then/_N` (RNN loops, steps_per_execution), so the innermost copy is the one to read.
    """
    start = 0
    for i in range(len(components) - 2, -1, -1):
        if is_mark(components[i]):
            start = i + 1
            break
    out = components[start:]
    while len(out) > 1 and (WRAPPER.match(out[0]) or out[0] in ("while", "cond")):
        out = out[1:]
    return drop_replica(out)


def name_head(name: str) -> tuple[_Head, str]:
    """(facts about the op's scopes, the op's own name): `name_tail(name)` is
    `head.tail + (last,)`, `name_is_backward(name)` is `head.backward`."""
    head, sep, last = name.rpartition("/")
    return _head(head if sep else None), last


def name_tail(name: str) -> tuple[str, ...]:
    """`tail` of a whole op name (from the facts about its scope, see `_Head`)."""
    head, sep, last = name.rpartition("/")
    return _head(head if sep else None).tail + (last,)


def drop_replica(components: list[str]) -> list[str]:
    """Remove a distribution strategy's `replica_<k>` from the head of a scope path.

    It comes first, or right after `gradient_tape/` (the tape of one replica's step).
    """
    for i, c in enumerate(components[:-1]):
        if REPLICA.match(c):
            return components[:i] + components[i + 1 :]
        if c not in PASS_THROUGH:
            break
    return components


def restart(components: list[str]) -> list[str]:
    """Inside a gradient loop the scope path starts again after `gradients/`; keep the last."""
    first = next((c for c in components if c not in PASS_THROUGH), None)
    for i in range(len(components) - 2, -1, -1):
        if components[i] == "gradients" and components[i + 1] == first:
            return components[i + 1 :]
    return components


def is_backward(components: list[str]) -> bool:
    """True for ops the gradient tape made (under `gradient_tape/`, `gradients/`, `*_grad`)."""
    return any(c in ("gradient_tape", "gradients") or c.endswith("_grad") for c in components[:-1])


def name_is_backward(name: str) -> bool:
    """`is_backward` of a whole op name: its scopes decide (the name itself does not)."""
    head = name.rpartition("/")[0]
    # Each of is_backward's marks contains "grad": most forward names are out at once.
    return "grad" in head and _head(head).backward


def name_scopes(name: str) -> tuple[str, ...]:
    """`restart(tail(...))` of a whole op name."""
    above, last = name_parts(name)
    return above + (last,)


def name_parts(name: str) -> tuple[tuple[str, ...], str]:
    """`name_scopes(name)` as (all but the last, the last): no new tuple per name."""
    head, sep, last = name.rpartition("/")
    return scopes_above(_head(head if sep else None), last), last


def scopes_above(h: _Head, last: str) -> tuple[str, ...]:
    """`name_scopes(name)[:-1]` from the facts about the op's scopes and its own name."""
    # `restart` looks for `gradients/<first>`: <first> (the first component that is not
    # pass-through) is the op's own name when every scope above it is pass-through, and
    # the last `gradients` may be right above the op.
    first = h.first if h.first is not None else (None if last in PASS_THROUGH else last)
    if h.ends_gradients and last == first:
        return ()
    return h.restarted


class _Head(NamedTuple):
    """What `tail`, `restart` and `is_backward` make of an op's scopes, the op aside.

    Computed once per scope string: ~8k op names share ~2.4k scopes, and the cache then
    holds per-scope facts rather than per-name tuples.
    """

    tail: tuple[str, ...]  # `tail(name)[:-1]`
    first: str | None  # the first component of `tail` that is not pass-through
    ends_gradients: bool  # `tail` ends in `gradients/` (then `restart` may keep the op only)
    restarted: tuple[str, ...]  # `restart(tail)[:-1]`, unless the op itself is <first>
    backward: bool  # `is_backward(name)`
    inside: tuple[str, ...] | None  # the scopes after the last call wrapper, if any


@functools.lru_cache(maxsize=1 << 14)
def _head(head: str | None) -> _Head:
    """`_Head` of the scope string before an op name's last `/` (None: no `/`)."""
    if head is None:
        return _NO_HEAD
    comps = head.split("/")
    # `tail` and `restart` never drop the last component, and read the others only: this
    # is them on the scopes with a stand-in op name, that stand-in taken off. Each step is
    # skipped where a substring test of the whole head shows it cannot apply (every
    # mark contains "/_", every replica "replica_", ...): ~2.4k scopes a trace.
    start = 0
    if head[:1] == "_" or "/_" in head:  # a mark is a whole component, `_<k>`
        for i in range(len(comps) - 1, -1, -1):
            c = comps[i]
            if c[:1] == "_" and c[1:].isdigit():  # is_mark, inline
                start = i + 1
                break
    t = comps[start:] if start else comps
    while t and (("PartitionedCall" in t[0] and WRAPPER.match(t[0])) or t[0] in ("while", "cond")):
        t = t[1:]
    if t and "replica_" in head:
        t = drop_replica(t + [""])[:-1]
    t = tuple(t)
    first = None
    for c in t:
        if c not in PASS_THROUGH:
            first = c
            break
    restarted = t
    if "gradients" in head:
        for i in range(len(t) - 2, -1, -1):
            if t[i] == "gradients" and t[i + 1] == first:
                restarted = t[i + 1 :]
                break
    # Each of is_backward's marks contains "grad": most forward heads are out at once.
    backward = "grad" in head and any(
        c in ("gradient_tape", "gradients") or c.endswith("_grad") for c in comps
    )
    start = None
    j = head.rfind("PartitionedCall")  # every wrapper name contains it
    if j >= 0:
        k = head.count("/", 0, j)  # the component it is in: the last wrapper, if one
        if WRAPPER.match(comps[k]):
            start = k + 1
        else:
            for i, c in enumerate(comps):
                if "PartitionedCall" in c and WRAPPER.match(c):
                    start = i + 1
    inside = None if start is None else tuple(comps[start:])
    if start is not None and start >= 2 and all(WRAPPER.match(c) for c in comps[:2]):
        # A function the user's step calls (`StatefulPartitionedCall/PartitionedCall/Sin`,
        # inlined under its call node): its ops are that function's, none the step's own.
        inside = None
    ends = bool(t) and t[-1] == "gradients"
    return _Head(t, first, ends, restarted, backward, inside)


_NO_HEAD = _Head((), None, False, (), False, None)


# Gradients of activations that TF names in their forward op's scope, beside it.
_ACTIVATION_GRADS = frozenset(
    f"{t}Grad" for t in ("Relu", "Relu6", "Elu", "Selu", "LeakyRelu", "Softplus", "Softsign")
)


def scope_sets(ops) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """(forward scopes, op-function paths) of a trace's (name, type) pairs, as layer keys.

    Forward scopes: every scope prefix with forward ops below it (keys without pass-through
    scopes, so a gradient loop's `gradients/` insert still lines up). Paths: the scope or
    op paths that end in an op function's scope name (`.../moments` beside `moments_1`),
    the only ones asked about. One pass over the names, one over their distinct scopes.
    """
    # The distinct scope tuples first (the ops of a scope share one), then each one's
    # layer key and its prefixes, once.
    above_ops: set[tuple[str, ...]] = set()  # scopes above an op: their prefixes are paths
    own: set[tuple[tuple[str, ...], str]] = set()  # (above, op) when the op's path may be asked
    fwd: set[tuple[str, ...]] = set()  # scopes with forward ops right below them
    fwd_up: set[tuple[str, ...]] = set()  # ... and scopes whose parent scope is such a one
    heads = {}  # the scope string before the last `/` -> its _Head (fewer lru look-ups)
    for name, op_type in ops:
        head, sep, last = name.rpartition("/")
        key = head if sep else None  # (`/x` has the scope "", `x` none)
        h = heads.get(key)
        if h is None:
            h = heads[key] = _head(key)
        # name_scopes(name) is above + (last,): `_above`, inline (it is per op).
        above = h.restarted
        if h.ends_gradients and last == (
            h.first if h.first is not None else (None if last in PASS_THROUGH else last)
        ):
            above = ()
        above_ops.add(above)
        if last in INTERNAL and last not in PASS_THROUGH and not is_mark(last):
            own.add((above, last))
        if h.backward:
            # A gradient op sits under the scope of its forward op (`<scopes>/<fwd op>/
            # <grad op>`), so what is above those two is a scope even when no forward op
            # of it ran (TimeDistributed(Flatten): its slices fold away, their gradients
            # do not).
            if f"/{name}/".find("/gradient_tape/") >= 0:  # a component, not a substring
                fwd_up.add(above)
                # An activation's gradient (`ReluGrad`) sits right in the scope of its
                # forward op, not under the op: where that op was fused into the previous
                # layer's (tf_keras's BatchNorm + ReLU), it is the only sign of the scope.
                if last in _ACTIVATION_GRADS and above and strip_suffix(above[-1]) != last[:-4]:
                    fwd.add(above)
            continue
        # A variable read sits under the op that reads it (`conv_1/convolution/
        # ReadVariableOp`, `div_no_nan_1/ReadVariableOp`): its scope is the reader's.
        # Counting reads keeps a layer whose compute op was fused into a neighbour's
        # (Conv2D into the next ReLU) recognisable as a scope.
        if sep and last[:1] == "_" and last[1:].isdigit():  # is_mark(last), inline
            above = name_parts(head)[0]  # `<op>/_<k>`: a partitioner's copy of <op>
        (fwd_up if op_type in NON_COMPUTE else fwd).add(above)
    keys: dict[tuple[str, ...], tuple[str, ...]] = {}
    forward: set[tuple[str, ...]] = set()
    paths: set[tuple[str, ...]] = set()
    _add_keys(paths, above_ops, keys)
    unsuffixed = {p for p in paths if not SUFFIX.match(p[-1])}
    for above, last in own:
        paths.add(_cached_key(keys, above) + (last,))  # its prefixes are there already
    _add_keys(forward, fwd, keys)
    _add_keys(forward, fwd_up, keys, parent=True)
    # An unsuffixed scope beside `<same>_<k>` says the latter is a second use of one
    # function's scope (Keras 3 layer scopes always carry the suffix): op functions the
    # INTERNAL list does not name (`stateless_dropout`) are told apart the same way.
    return forward, {p for p in paths if p[-1] in INTERNAL or p in unsuffixed}


def _cached_key(keys: dict, scopes: tuple[str, ...]) -> tuple[str, ...]:
    """`layer_key(scopes)`, remembered in `keys` for the other ops of the same scope."""
    key = keys.get(scopes)
    if key is None:
        key = keys[scopes] = layer_key(scopes)
    return key


def _add_keys(into: set, scopes_set: set, keys: dict, parent: bool = False) -> None:
    """Add every prefix of the layer key of each scope tuple of the set (of its parent
    `s[:-1]`, with parent) to `into`, a set that holds every prefix of what it holds.

    Keys are remembered in `keys` (`_cached_key`); one call for thousands of scopes.
    """
    get = keys.get
    for scopes in scopes_set:
        if parent:
            scopes = scopes[:-1]
        key = get(scopes)
        if key is None:
            key = keys[scopes] = layer_key(scopes)
        # Longest first: once a prefix is there, all shorter ones are too.
        for i in range(len(key), 0, -1):
            prefix = key[:i]
            if prefix in into:
                break
            into.add(prefix)


def layer_key(components) -> tuple[str, ...]:
    """Scope components that can be layers, in order: pass-through scopes removed."""
    # (is_mark, inline: a list comprehension, not a generator and a call per component)
    return tuple(
        [c for c in components if c not in PASS_THROUGH and not (c[:1] == "_" and c[1:].isdigit())]
    )


def in_train_function(components: list[str]) -> bool:
    """True for ops inside a traced function (wrapped or scoped), not bare eager ops."""
    return any(WRAPPER.match(c) for c in components[:-1]) or len(components) > 1


def body_prefix(components: list[str]) -> str | None:
    """The name prefix up to a loop body's inlining mark (`.../while/body/_27`), if any."""
    for i in range(len(components) - 2, 0, -1):
        if is_mark(components[i]) and components[i - 1] == "body":
            return "/".join(components[: i + 1])
    return None


ACCUMULATOR_TYPE = "TensorListPushBack"


def is_accumulator(components: list[str], op_type: str) -> bool:
    """A while_v2 accumulator: pushed in the forward loop only for the gradient loop."""
    return op_type == ACCUMULATOR_TYPE and any(
        is_mark(c) and i > 0 and components[i - 1] == "body" for i, c in enumerate(components)
    )


# cond_v2 hands a branch's intermediates to the gradient's branch wrapped in Optionals.
OPTIONAL_TYPES = frozenset({"OptionalFromValue", "OptionalGetValue", "OptionalNone"})
_BRANCHES = ("then", "else")


def is_cond_intermediate(components: list[str], op_type: str) -> bool:
    """An Optional inside an `if` branch (in a layer: a value kept for its gradient)."""
    return op_type in OPTIONAL_TYPES and any(
        is_mark(c)
        and i > 0
        and (components[i - 1] in _BRANCHES or components[i - 1].startswith("branch"))
        for i, c in enumerate(components)
    )
