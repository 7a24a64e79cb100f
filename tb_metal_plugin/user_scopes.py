"""Scopes that are neither a layer's nor TF's own: the user's name scopes, and the scopes
of op functions that run the caller's code (a layer called inside them is still a layer).
"""

from __future__ import annotations

import functools

from .opnames import INTERNAL, PASS_THROUGH, SUFFIX, strip_suffix

# Op functions that run the caller's own code in their body (tf.map_fn, tf.scan, the
# folds, tf.vectorized_map's `loop_body`): a layer called in the mapped function has its
# scope below theirs. (What vectorized_map's converter rewrote sits under `pfor/` there:
# the caller's work, see TraceAttributor._scopes_layer.)
BODY_RUNNERS = frozenset({"map", "scan", "foldl", "foldr", "loop_body"})


@functools.lru_cache(maxsize=1 << 12)
def steps_over(component: str, keras3: bool) -> bool:
    """Whether the layer walk goes on below a scope that is no layer: a body runner's
    (`map_1` too), or, in Keras 3's suffixed naming, a user's scope."""
    if component in BODY_RUNNERS or (
        component[-1:].isdigit() and strip_suffix(component) in BODY_RUNNERS
    ):
        return True
    return keras3 and maybe_user_scope(component)


@functools.lru_cache(maxsize=1 << 12)  # a trace has a few hundred distinct components
def maybe_user_scope(component: str) -> bool:
    """A scope Keras 3 would not open for a layer (no `_<k>`) nor TF for its op functions or
    control flow: one a user's own `name_scope` opened, when layer scopes sit inside it."""
    return not (
        SUFFIX.match(component)
        or component in INTERNAL
        or component in PASS_THROUGH
        or component[:1] == "_"
        or "PartitionedCall" in component
    )
