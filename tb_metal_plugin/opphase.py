"""Phase and bucket of an op from what its name's scopes say: `classify` and its tables.

The layer is decided elsewhere (attribution.py); given it, an op's scopes (optimizer, loss,
metrics), its type (the iterator's) and its host lines (tf.data's) settle the phase.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .opnames import (
    ACCUMULATOR_TYPE,
    NON_COMPUTE,
    OPTIONAL_TYPES,
    in_train_function,
    is_accumulator,
    is_cond_intermediate,
    name_head,
    strip_suffix,
)
from .oprecord import XLA_MODULE_TYPE
from .user_scopes import maybe_user_scope

PHASES = ("forward", "backward", "optimizer", "loss", "metrics", "input", "other")

# Buckets name where time without a layer goes; they and the layers add up to the total.
BUCKETS = {
    "optimizer": "optimizer",
    "loss": "loss",
    "metrics": "metrics",
    "input": "input pipeline",
    "root": "unscoped ops in the train step",
    "outside": "outside the train step",
}

OPTIMIZER_SCOPES = frozenset(
    {
        # Keras names an optimizer's scope after its class, snake-cased: AdamW -> adam_w,
        # RMSprop -> rm_sprop; the plain spellings are kept for other versions.
        "adam",
        "adamw",
        "adam_w",
        "sgd",
        "rmsprop",
        "rm_sprop",
        "adagrad",
        "adadelta",
        "adamax",
        "nadam",
        "ftrl",
        "lion",
        "lamb",
        "adafactor",
        "loss_scale_optimizer",
        "optimizer",
        # A distribution strategy's variable updates (`extended.update`) at the step's root.
        "update",
        "muon",
    }
)
LOSS_SCOPES = frozenset({"compile_loss", "loss"})
METRIC_SCOPES = frozenset({"compile_metrics", "metrics"})
INPUT_TYPES = frozenset(
    {
        "IteratorGetNext",
        "IteratorGetNextSync",
        "IteratorGetNextAsOptional",
        "OptionalFromValue",
        "OptionalGetValue",
        "OptionalHasValue",
        "MultiDeviceIteratorGetNextFromShard",
        "MultiDeviceIteratorFromStringHandle",
        "MultiDeviceIteratorInit",
        "AnonymousIteratorV3",
        "MakeIterator",
        "IteratorV2",
    }
)
# tf.data carries a ragged or sparse component of an element as a variant; these decode it
# after IteratorGetNext (outside every layer: inside one they are a ragged map_fn's).
ELEMENT_DECODE_TYPES = frozenset(
    {"RaggedTensorFromVariant", "DeserializeSparse", "DeserializeManySparse"}
)


@dataclass(frozen=True)
class Attribution:
    """Where an op belongs: layer path (or None), phase, and the bucket when unattributed."""

    layer: tuple[str, ...] | None
    phase: str
    bucket: str | None  # key of BUCKETS when layer is None
    source: str  # "manifest_op", "manifest_scopes", "trace_names" or "trace_graph"


@functools.lru_cache(maxsize=1 << 12)
def _attribution(
    layer: tuple[str, ...] | None, phase: str, bucket: str | None, source: str
) -> Attribution:
    """One shared `Attribution` per value: they are immutable, few differ, and looking one
    up costs less than building a frozen dataclass for each of ~10k ops."""
    return Attribution(layer, phase, bucket, source)


def _scope_phase(tail: list[str]) -> str | None:
    """Phase bucket from the first real scope of the tail: optimizer, loss or metrics."""
    return _scopes_phase(tuple(tail[:-1]))


def optimizer_scopes(forward_scopes: Iterable[tuple[str, ...]]) -> set[str]:
    """The top-level scopes (of a trace's forward scope keys) that are an optimizer's:
    `adam`, `SGD`, `Adam`, `loss_scale_optimizer`..."""
    return {
        key[0]
        for key in forward_scopes
        if len(key) == 1 and _scope_phase([key[0].lower(), ""]) == "optimizer"
    }


_VARIABLE_UPDATES = frozenset({"AssignSubVariableOp", "AssignAddVariableOp", "AssignVariableOp"})


def updating_scopes(ops: Iterable[tuple[str, str]], step_scope: str | None = None) -> set[str]:
    """Top-level step scopes that update variables right below them and no name says
    what they are: an optimizer's scope under a name of its own (`Adam(name="fancy")`,
    a custom Optimizer subclass). Not the user's scope around the whole step."""
    out: set[str] = set()
    for name, op_type in ops:
        if op_type not in _VARIABLE_UPDATES and op_type[:13] != "ResourceApply":
            continue
        h = name_head(name)[0]
        if len(h.tail) != 1 or h.backward or h.inside is None or len(h.inside) != 1:
            continue
        top = h.tail[0]
        if top != step_scope and maybe_user_scope(top) and _scopes_phase((top,)) is None:
            out.add(top)
    return out


@functools.lru_cache(maxsize=1 << 14)  # per scope path: the ops of a scope share it
def _scopes_phase(scopes: tuple[str, ...]) -> str | None:
    """`_scope_phase` of a tail without its last component (the op's own name)."""
    scopes = [c for c in scopes if c not in ("gradient_tape", "gradients")]
    # A `tf.cond` at the step's root (tf_keras's loss-scale optimizer applies its
    # gradients in `cond_1/`): what runs in it is the scope inside.
    while len(scopes) > 1 and strip_suffix(scopes[0]) in ("cond", "while"):
        scopes = scopes[1:]
    if not scopes:
        return None
    # tf.keras names its optimizer scopes after the class (`Adam/...`): compare lower-cased.
    head = scopes[0].lower()
    base = strip_suffix(head)
    if head in OPTIMIZER_SCOPES or base in OPTIMIZER_SCOPES:
        return "optimizer"
    if head in LOSS_SCOPES or base in LOSS_SCOPES:
        return "loss"
    if head in METRIC_SCOPES or base in METRIC_SCOPES:
        return "metrics"
    if len(scopes) > 1 and maybe_user_scope(scopes[0]):
        # A custom train_step under a scope of the user's own (`my_step/compile_loss/`).
        return _scopes_phase(tuple(scopes[1:]))
    return None


# Variable updates: a metric's `assign_add` is `Add_k` (+ its read) and `AssignVariableOp_k`.
_TF_DATA = frozenset({"tf_data"})
_UPDATE_BASES = frozenset({"Add", "AssignVariableOp", "AssignAddVariableOp"})


def _loss_tracker_op(tail_: Sequence[str], op_type: str) -> bool:
    """An op of the per-output loss trackers that `compile_loss` updates in its own scope.

    With several outputs, Keras's CompileLoss keeps a Mean per output and updates it right
    under `compile_loss/` (the losses themselves sit one scope deeper, `compile_loss/mse/`):
    variable updates there, and the weighting `mul` of the tracked values, are metrics.
    """
    scopes = [c for c in tail_ if c not in ("gradient_tape", "gradients")]
    if len(scopes) == 3 and op_type in NON_COMPUTE:
        scopes = scopes[:-1]  # `compile_loss/Add_1/ReadVariableOp`: the read of an update
    if len(scopes) != 2:
        return False
    base = strip_suffix(scopes[1])
    return base in _UPDATE_BASES or base == "mul"


def classify(
    name: str,
    op_type: str,
    line_kinds: Iterable[str],
    layer: tuple[str, ...] | None,
    source: str,
) -> Attribution:
    """Phase and bucket of an op, given the layer it was attributed to (or None)."""
    # An op record's kinds are already a (shared) frozenset: no copy per op.
    kinds = line_kinds if isinstance(line_kinds, frozenset) else set(line_kinds)
    # A layer's `if` keeps values for its gradient in Optionals; the iterator's Optionals
    # (Keras's multi-step loop checks for a batch in an `if` too) belong to no layer.
    # (The type tests first: most ops are neither, and need no split of their name.)
    kept = (
        layer is not None
        and op_type in OPTIONAL_TYPES
        and is_cond_intermediate(name.split("/"), op_type)
    )
    if (op_type in INPUT_TYPES and not kept) or (kinds and kinds <= _TF_DATA):
        return _attribution(None, "input", "input", source)
    if op_type in ELEMENT_DECODE_TYPES and layer is None:
        return _attribution(None, "input", "input", source)
    head, last = name_head(name)
    backward = (
        head.backward
        or (op_type == ACCUMULATOR_TYPE and is_accumulator(name.split("/"), op_type))
        or kept
    )
    scoped = _scopes_phase(head.tail)
    if scoped == "optimizer":
        return _attribution(None, "optimizer", "optimizer", source)
    if scoped == "loss" and not backward and _loss_tracker_op(head.tail + (last,), op_type):
        return _attribution(None, "metrics", "metrics", source)
    if scoped in ("loss", "metrics"):
        return _attribution(None, "backward" if backward else scoped, scoped, source)
    if layer is not None:
        return _attribution(layer, "backward" if backward else "forward", None, source)
    if op_type == XLA_MODULE_TYPE:
        # An XLA module's run (its calling layer unknown): it ran inside the step, though
        # its name (the module's) has no scope.
        return _attribution(None, "other", "root", source)
    if not in_train_function(name.split("/")):
        return _attribution(None, "other", "outside", source)
    return _attribution(None, "backward" if backward else "other", "root", source)
