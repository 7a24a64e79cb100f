"""Record the exact name scope of every Keras layer call while a train step is traced."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def iter_layers(model: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yield (path from the outermost model, layer) for every layer, each instance once."""
    seen: set[int] = set()

    def walk(layer: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        yield path, layer
        for child in layer._flatten_layers(include_self=False, recursive=False):
            yield from walk(child, path + (child.name,))

    yield from walk(model, (model.name,))


@contextlib.contextmanager
def record_layer_scopes(model: Any) -> Iterator[dict[tuple[str, ...], list[str]]]:
    """Within the block, note `tf.get_current_name_scope()` at each layer call, per layer path.

    Keras enters a layer's name scope before calling `call`, so the scope seen on entry
    to `call` is the prefix every op of that call carries. The wrappers are instance
    attributes and are removed on exit, leaving the model as it was.
    """
    import tensorflow as tf

    scopes: dict[tuple[str, ...], list[str]] = {}
    patched: list[tuple[Any, bool, Any]] = []
    for path, layer in iter_layers(model):
        had_own = "call" in vars(layer)
        original = layer.call
        bucket = scopes.setdefault(path, [])

        def traced_call(*args: Any, __original=original, __bucket=bucket, **kwargs: Any) -> Any:
            scope = tf.get_current_name_scope()
            if scope and scope not in __bucket:
                __bucket.append(scope)
            return __original(*args, **kwargs)

        object.__setattr__(layer, "call", traced_call)
        patched.append((layer, had_own, original))
    try:
        yield scopes
    finally:
        for layer, had_own, original in patched:
            if had_own:
                object.__setattr__(layer, "call", original)
            else:
                object.__delattr__(layer, "call")
