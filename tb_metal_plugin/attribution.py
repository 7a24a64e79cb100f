"""Attribute a TF op to the Keras layer that created it, and to a phase of the train step.

Two sources, same output:
- trace names alone (`TraceAttributor`): Keras 3 name scopes carry a uniquifying `_<k>`
  on layer components; we strip exactly one, but only on components that are layer
  scopes. What tells a layer scope from an op name is the trace itself: a layer scope
  has forward ops *below* it, an op name never does (`ln_1/add_1/Sum` is the gradient
  of op `add_1`, not a layer named `add`).
- a manifest (`ManifestAttributor`, in manifest_attribution.py): what the training
  callback recorded while the step was traced. Exact, no guessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

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

_SUFFIX = re.compile(r"^(.+)_(\d+)$")
_INLINE_MARK = re.compile(r"^_\d+$")
_WRAPPER = re.compile(r"^(StatefulPartitionedCall|PartitionedCall|TPUPartitionedCall)(_\d+)?$")
# Scopes that TF or Keras open inside a layer's call: never layers themselves. Walking a
# name, we step over these and keep looking for deeper layers (RNN cells sit under
# `while`, gradient loops under `gradients`).
_PASS_THROUGH = frozenset(
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
# Op-internal scopes that look like `<name>_<k>` but are not layers.
_INTERNAL = frozenset(
    {
        "convolution",
        "moments",
        "batchnorm",
        "Tensordot",
        "einsum",
        "strided_slice",
        "transpose",
        "split",
        "stack",
        "concat",
        "range",
        "clip_by_value",
        "random_uniform",
        "random_normal",
        "truncated_normal",
        "map",
        "TensorArrayV2Read",
        "TensorArrayV2Write",
        "zeros_like",
        "ones_like",
        "dropout_mask",
        "stateless_random_uniform",
        "Reshape",
        "MatMul",
        "BiasAdd",
        "Cast",
        "mul",
        "sub",
        "truediv",
        "Sum",
        "Mean",
    }
)
_NON_COMPUTE = frozenset({"ReadVariableOp", "VarHandleOp", "Const", "_Arg", "_Retval"})
OPTIMIZER_SCOPES = frozenset(
    {
        "adam",
        "adamw",
        "sgd",
        "rmsprop",
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
        "AnonymousIteratorV3",
        "MakeIterator",
        "IteratorV2",
    }
)


@dataclass(frozen=True)
class Attribution:
    """Where an op belongs: layer path (or None), phase, and the bucket when unattributed."""

    layer: tuple[str, ...] | None
    phase: str
    bucket: str | None  # key of BUCKETS when layer is None
    source: str  # "manifest_op", "manifest_scopes" or "trace_names"


def _strip_suffix(component: str) -> str:
    m = _SUFFIX.match(component)
    return m.group(1) if m else component


def _tail(components: list[str]) -> list[str]:
    """The components after the last function-inlining marker and call wrappers.

    Loop bodies and branches restart the scope path from the root after `body/_N`,
    `then/_N` (RNN loops, steps_per_execution), so the innermost copy is the one to read.
    """
    start = 0
    for i, c in enumerate(components[:-1]):
        if _INLINE_MARK.match(c):
            start = i + 1
    tail = components[start:]
    while len(tail) > 1 and (_WRAPPER.match(tail[0]) or tail[0] in ("while", "cond")):
        tail = tail[1:]
    return tail


def _restart(tail: list[str]) -> list[str]:
    """Inside a gradient loop the scope path starts again after `gradients/`; keep the last."""
    first = next((c for c in tail if c not in _PASS_THROUGH), None)
    for i in range(len(tail) - 2, -1, -1):
        if tail[i] == "gradients" and tail[i + 1] == first:
            return tail[i + 1 :]
    return tail


def _is_backward(components: list[str]) -> bool:
    return any(c in ("gradient_tape", "gradients") or c.endswith("_grad") for c in components[:-1])


def _scope_phase(tail: list[str]) -> str | None:
    """Phase bucket from the first real scope of the tail: optimizer, loss or metrics."""
    scopes = [c for c in tail[:-1] if c not in ("gradient_tape", "gradients")]
    if not scopes:
        return None
    head = scopes[0]
    base = _strip_suffix(head)
    if head in OPTIMIZER_SCOPES or base in OPTIMIZER_SCOPES:
        return "optimizer"
    if head in LOSS_SCOPES or base in LOSS_SCOPES:
        return "loss"
    if head in METRIC_SCOPES or base in METRIC_SCOPES:
        return "metrics"
    return None


def _in_train_function(components: list[str]) -> bool:
    return any(_WRAPPER.match(c) for c in components[:-1]) or len(components) > 1


def classify(
    name: str,
    op_type: str,
    line_kinds: Iterable[str],
    layer: tuple[str, ...] | None,
    source: str,
) -> Attribution:
    """Phase and bucket of an op, given the layer it was attributed to (or None)."""
    components = name.split("/")
    kinds = set(line_kinds)
    if op_type in INPUT_TYPES or (kinds and kinds <= {"tf_data"}):
        return Attribution(None, "input", "input", source)
    tail = _tail(components)
    backward = _is_backward(components)
    scoped = _scope_phase(tail)
    if scoped == "optimizer":
        return Attribution(None, "optimizer", "optimizer", source)
    if scoped in ("loss", "metrics"):
        return Attribution(None, "backward" if backward else scoped, scoped, source)
    if layer is not None:
        return Attribution(layer, "backward" if backward else "forward", None, source)
    if not _in_train_function(components):
        return Attribution(None, "other", "outside", source)
    return Attribution(None, "backward" if backward else "other", "root", source)


def _layer_key(components: list[str]) -> tuple[str, ...]:
    """Scope components that can be layers, in order: pass-through scopes removed."""
    return tuple(c for c in components if c not in _PASS_THROUGH and not _INLINE_MARK.match(c))


def _could_be_layer(component: str) -> bool:
    m = _SUFFIX.match(component)
    if not m:
        return False
    base = m.group(1)
    return base not in _INTERNAL and not base[:1].isupper() and base not in _PASS_THROUGH


class TraceAttributor:
    """Attribute ops from their names alone, using every op name of the trace as context."""

    source = "trace_names"

    def __init__(self, ops: Iterable[tuple[str, str]]):
        ops = list(ops)
        # Every scope prefix that has forward ops below it (keys without pass-through
        # scopes, so a gradient loop's `gradients/` insert still lines up).
        self._forward_scopes: set[tuple[str, ...]] = set()
        for name, op_type in ops:
            comps = name.split("/")
            if _is_backward(comps):
                continue
            # A variable read sits under the op that reads it (`conv_1/convolution/
            # ReadVariableOp`, `div_no_nan_1/ReadVariableOp`): its scope is the reader's.
            # Counting reads keeps a layer whose compute op was fused into a neighbour's
            # (Conv2D into the next ReLU) recognisable as a scope.
            drop = 2 if op_type in _NON_COMPUTE else 1
            key = _layer_key(_restart(_tail(comps))[:-drop])
            for i in range(1, len(key) + 1):
                self._forward_scopes.add(key[:i])

    def layer_of(self, name: str) -> tuple[str, ...] | None:
        """The layer path of one op, real layer names (one `_<k>` stripped), or None."""
        tail = _restart(_tail(name.split("/")))
        key: list[str] = []
        path: list[str] = []
        for comp in tail[:-1]:
            if comp in _PASS_THROUGH or _INLINE_MARK.match(comp):
                continue
            key.append(comp)
            if _could_be_layer(comp) and tuple(key) in self._forward_scopes:
                path.append(_strip_suffix(comp))
                continue
            break
        return tuple(path) or None

    def attribute(self, name: str, op_type: str, line_kinds: Iterable[str]) -> Attribution:
        """Layer and phase of one op."""
        return classify(name, op_type, line_kinds, self.layer_of(name), self.source)
