"""Record the exact name scope of every Keras layer call while a train step is traced."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
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
def record_layer_scopes(
    model: Any, on_call: Callable[..., None] | None = None
) -> Iterator[dict[tuple[str, ...], list[str]]]:
    """Within the block, note `tf.get_current_name_scope()` at each layer call, per layer path.

    Keras enters a layer's name scope before calling `call`, so the scope seen on entry
    to `call` is the prefix every op of that call carries. The wrappers are instance
    attributes and are removed on exit, leaving the model as it was.

    `on_call(path, layer, scope, args, kwargs, outputs)`, when given, is called after
    each wrapped call returns (the training callback uses it for the shapes seen in
    training); an exception it raises is swallowed so that tracing never breaks.
    """
    import tensorflow as tf

    scopes: dict[tuple[str, ...], list[str]] = {}
    patched: list[tuple[Any, bool, Any]] = []
    for path, layer in iter_layers(model):
        had_own = "call" in vars(layer)
        original = layer.call
        bucket = scopes.setdefault(path, [])

        def traced_call(
            *args: Any,
            __original=original,
            __bucket=bucket,
            __path=path,
            __layer=layer,
            **kwargs: Any,
        ) -> Any:
            # Keras builds unbuilt layers by calling them symbolically in a throwaway
            # "scratch_graph": those scopes never carry an executed op, so skip them.
            graph_name = getattr(tf.compat.v1.get_default_graph(), "name", "") or ""
            if graph_name.startswith("scratch_graph"):
                return __original(*args, **kwargs)
            scope = tf.get_current_name_scope()
            if scope and scope not in __bucket:
                __bucket.append(scope)
            outputs = __original(*args, **kwargs)
            if on_call is not None:
                try:
                    on_call(__path, __layer, scope, args, kwargs, outputs)
                except Exception:  # recording must never break the user's train step
                    pass
            return outputs

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
