"""Which Keras named a trace's scopes, and what tf_keras's (Keras 2's) scopes mean.

Keras 3 enters a layer's scope more than once, so every layer component of its op names
carries a uniquifying `_<k>` (the outermost model's too); tf_keras writes each scope once,
plain (`model/dense/MatMul`), so a suffix there is part of a name (`dense_1`, the second
Dense's default) and a scope is a layer unless something says otherwise: an op function's
scope, an op's own scope, a loss's scope. attribution.py asks here for Keras 2 traces only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .opnames import INTERNAL, PASS_THROUGH, SUFFIX, is_mark, strip_suffix
from .opphase import _scope_phase, optimizer_scopes

# oneDNN's kernels keep the op type after a prefix (`_MklNativeFusedConv2D`).
_MKL = re.compile(r"^_Mkl(Native)?(Fused)?")
# Op functions whose scope has the name tf_keras gives a layer by default.
_FN_SCOPES_NAMED_LIKE_LAYERS = frozenset({"dropout"})


# Optimizers Keras 3 too named after their class (SGD's default name was "SGD" until about
# Keras 3.10): their scope alone does not say tf_keras.
_KERAS3_CLASS_NAMED = frozenset({"SGD"})


def unsuffixed_naming(forward_scopes: set[tuple[str, ...]]) -> bool:
    """True for a trace whose model scopes carry no `_<k>` (tf_keras, Keras 2).

    What only one Keras writes decides first: tf_keras's loss scope weighing its values
    (`mean_squared_error/weighted_loss/`), Keras 3's `compile_loss/`, and layer scopes that
    all carry a suffix (Keras 3; tf_keras's default names leave the first `dense` bare).
    Then an optimizer scope named after its class (`Adam/`): tf_keras's; but Keras 3 before
    about 3.10 named SGD's scope `SGD/` too, so that one decides only after the layers.
    Default layer names (`dense`, `dense_1`, `dense_2`) alone would read as Keras 3's
    suffixes. Failing those, the layers' scopes: the children of the top-level forward
    scopes that are not the optimizer's, loss's or metrics'. In Keras 3 nearly all carry a
    suffix (op functions' scopes are the exceptions); in Keras 2 names given by hand carry
    none. A model's own name can end in digits (`mobilenetv2_0.35_32`): only without
    children do the top-level scopes decide.
    """
    if any(len(key) == 2 and key[1] == "weighted_loss" for key in forward_scopes):
        return True
    # (Under one scope of the user's own when a custom train_step opened one around it.)
    if any(key[-1] == "compile_loss" and len(key) <= 2 for key in forward_scopes):
        return False
    tops = {
        key[0]
        for key in forward_scopes
        if len(key) == 1 and _scope_phase([key[0].lower(), ""]) is None
    }
    kids = [
        key[1]
        for key in forward_scopes
        if len(key) == 2
        and key[0] in tops
        and key[1] not in INTERNAL
        and key[1] not in PASS_THROUGH
        and not is_mark(key[1])
    ]
    suffixed = sum(1 for k in kids if SUFFIX.match(k))
    if kids and suffixed == len(kids):
        return False
    classy = {scope for scope in optimizer_scopes(forward_scopes) if scope[:1].isupper()}
    if classy - _KERAS3_CLASS_NAMED:
        return True
    if kids:
        return suffixed * 2 < len(kids)
    if classy:
        return True
    if not tops:
        return False
    return not any(SUFFIX.match(t) for t in tops)


class Keras2Scopes:
    """The scopes of one tf_keras trace: which are layers, which are losses."""

    def __init__(self, ops: Iterable[tuple[str, str]], forward_scopes: set[tuple[str, ...]]):
        self._forward_scopes = forward_scopes
        # The trace's op types: a scope named like one (`conv/Conv2D/Cast`, mixed
        # precision's kernel cast) is the op it belongs to, not a layer.
        self._op_types = frozenset(_MKL.sub("", t) for _, t in ops)
        # Each loss opens its own scope at the step's root, named after the loss
        # (`mean_squared_error/`, a custom loss function's name), and weighs its values in
        # a `weighted_loss` scope below it.
        self.loss_tops = frozenset(
            key[0] for key in forward_scopes if len(key) == 2 and key[1] == "weighted_loss"
        )

    def is_layer(self, key: tuple[str, ...]) -> bool:
        """Whether a forward scope's last component (given its path) is a layer's."""
        comp = key[-1]
        if len(key) == 1 and comp in self.loss_tops:
            return False
        # `einsum_1`: an op function's second scope (tf.einsum called twice); `All_6`: an
        # op's own scope (its `input` pack), named after its type.
        base = strip_suffix(comp)
        if base in INTERNAL or base in self._op_types:
            return False
        if len(key) > 1 and comp == key[-2]:
            return False  # `dropout/dropout/`: tf.nn.dropout's scope in the layer `dropout`
        if comp.endswith("_grad"):
            # `MatMul_1_grad`: tf.gradients' scope for one op's gradient (a while loop's
            # gradient body, built symbolically), named after the forward op.
            return False
        if comp in _FN_SCOPES_NAMED_LIKE_LAYERS and key + (comp,) not in self._forward_scopes:
            # tf.nn.dropout's own scope in a layer of another name (`block2b_drop/dropout/`);
            # a Dropout layer keeping the default name has that scope below it.
            return False
        return comp not in PASS_THROUGH
