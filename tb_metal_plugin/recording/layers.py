"""The layer tree of a model, with what each layer call looked like while the step was traced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .scopes import iter_layers


@dataclass
class LayerCall:
    """One traced call of a layer: its name scope, input specs and output shapes."""

    scope: str
    args: Any  # the call's positional args, tensors replaced by tf.TensorSpec
    kwargs: dict[str, Any]  # keyword args, tensors replaced by tf.TensorSpec
    output_shapes: Any


@dataclass
class CallLog:
    """Calls seen per layer path while `record_layer_scopes(model, on_call=log)` is active."""

    calls: dict[tuple[str, ...], list[LayerCall]] = field(default_factory=dict)
    # A layer inside a tf.while_loop (RNN cells) or called per time step could be
    # traced many times; the specs of the first few are enough.
    max_calls_per_layer: int = 8

    def __call__(
        self, path: tuple[str, ...], layer: Any, scope: str, args: Any, kwargs: Any, outputs: Any
    ) -> None:
        bucket = self.calls.setdefault(path, [])
        if len(bucket) >= self.max_calls_per_layer:
            return
        bucket.append(
            LayerCall(
                scope=scope,
                args=_to_specs(args),
                kwargs=dict(_to_specs(kwargs)),
                output_shapes=_shapes(outputs),
            )
        )


def layer_tree(
    model: Any,
    scopes: dict[tuple[str, ...], list[str]],
    calls: CallLog | None = None,
    called: dict[int, tuple[str, ...]] | None = None,
) -> list[dict[str, Any]]:
    """Return the manifest's `layers` list: path, class, params, shapes, dtype policy, scopes.

    `called` (id(layer) -> the path of its first call in the step) moves a layer, and what
    it holds, to where the step called it: a custom `train_step` that calls a GAN's
    generator itself runs it as `generator/...`, not under the model that owns it.
    """
    out = []
    tree = list(iter_layers(model))
    moved = {path: called[id(layer)] for path, layer in tree if called and id(layer) in called}
    for path, layer in tree:
        seen = (calls.calls.get(path) if calls else None) or []
        entry: dict[str, Any] = {
            "path": list(_as_called(path, moved)),
            "class": type(layer).__name__,
            "params": _params(layer),
            "output_shape": _output_shape(layer, seen),
            "dtype_policy": _dtype_policy(layer),
            "scopes": list(scopes.get(path, [])),
            "trainable": bool(getattr(layer, "trainable", True)),
        }
        if seen:
            entry["input_shapes"] = _input_shapes(seen[0])
        out.append(entry)
    return out


def _as_called(path: tuple[str, ...], moved: dict[tuple[str, ...], tuple[str, ...]]) -> tuple:
    """The path under the nearest enclosing layer's call path (itself included)."""
    for k in range(len(path), 0, -1):
        if path[:k] in moved:
            return moved[path[:k]] + path[k:]
    return path


def _params(layer: Any) -> int | None:
    try:
        return int(layer.count_params())
    except Exception:  # an unbuilt layer cannot count its weights
        return None


def _dtype_policy(layer: Any) -> str | None:
    policy = getattr(layer, "dtype_policy", None)
    return getattr(policy, "name", None) if policy is not None else None


def _output_shape(layer: Any, seen: list[LayerCall]) -> Any:
    # The symbolic output keeps the batch dimension unknown (None) like Keras's summary;
    # layers without one (subclassed models' sublayers, shared layers) fall back to
    # the shape seen in the traced train step.
    try:
        output = layer.output
        import keras

        return keras.tree.map_structure(lambda t: _shape_list(t.shape), output)
    except Exception:
        pass
    return seen[0].output_shapes if seen else None


def _input_shapes(call: LayerCall) -> list[Any]:
    import tensorflow as tf

    shapes: list[Any] = []
    for value in tf.nest.flatten(call.args):
        if isinstance(value, tf.TensorSpec):
            shapes.append(_shape_list(value.shape))
    return shapes


def _shape_list(shape: Any) -> list[int | None] | None:
    try:
        return [None if d is None else int(d) for d in tuple(shape)]
    except Exception:  # unknown rank
        return None


def _to_specs(structure: Any) -> Any:
    import tensorflow as tf

    def convert(value: Any) -> Any:
        if isinstance(value, (tf.Tensor, tf.Variable)):
            return tf.TensorSpec(value.shape, value.dtype)
        return value

    return tf.nest.map_structure(convert, structure)


def _shapes(structure: Any) -> Any:
    import tensorflow as tf

    def convert(value: Any) -> Any:
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            return _shape_list(value.shape)
        return None

    try:
        flat = [convert(v) for v in tf.nest.flatten(structure)]
    except Exception:
        return None
    return flat[0] if len(flat) == 1 else flat
