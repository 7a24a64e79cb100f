"""Record who created every graph op while Keras traces the train step.

Names cannot say everything: an op's phase depends on the Keras method that created it
(`_compute_loss`, `compute_metrics`, `apply_gradients`), a gradient op belongs to the
forward op it differentiates, a wrapper (`TimeDistributed`) owns the ops of the inner
layer's `call`, and `Layer.__call__` casts inputs before it opens the layer's scope.
So, only during the one retrace the callback already does, this module keeps a stack
per thread of "who is running now" and notes its top whenever TensorFlow creates an op:

- `Layer.__call__` of each of the model's layers (not `call`: a wrapper calling the inner
  layer's `call` directly keeps ownership, as it should);
- the trainer's `_compute_loss`/`compute_loss`, `compute_metrics`, the metrics'
  `update_state`, and the optimizer's methods (phases);
- the tape's gradient function (the forward op being differentiated) and
  `tf.gradients`'s per-op loop (while-loop gradients are built that way), and the tape's
  own aggregation (`AddN` of a tensor's gradients, `zeros_like`), decided by its inputs.

Private hooks used (checked with TensorFlow 2.21 and Keras 3.15): `ops.Graph.
_create_op_helper`, `pywrap_tfe.TFE_Py_RegisterGradientFunction` with
`backprop._gradient_function`, `record.record_operation`, `imperative_grad.imperative_grad`,
`gradients_util._MaybeCompile` and `_AggregatedGrads`,
`distribute_lib.ReplicaContext.merge_call`. Each hook that cannot be installed is
reported in `missing`; the rest still records.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from .creators import Resolver, graph_op
from .scopes import iter_layers

# Trainer methods whose ops have a phase of their own (looked up on the model instance,
# so a custom train_step calling them is covered too).
_LOSS_METHODS = ("_compute_loss", "compute_loss")
_METRIC_METHODS = ("compute_metrics",)
_OPTIMIZER_METHODS = ("apply_gradients", "apply", "scale_loss", "stateless_apply")
_METRIC_OBJECT_METHODS = ("update_state", "result", "reset_state")


class _Stack(threading.local):
    def __init__(self) -> None:
        self.frames: list[tuple] = []


class OpProvenance:
    """Context manager: while active, remember the creator of every op TensorFlow builds."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.missing: list[str] = []  # hooks that could not be installed (with why)
        self.origin: dict[int, tuple[Any, tuple]] = {}  # id(op) -> (op, innermost frame)
        self._stack = _Stack()
        self._undo: list[Any] = []
        self._lock = threading.Lock()
        # id(layer) -> the path of its first call: where its ops sit, for the layer tree.
        self.called: dict[int, tuple[str, ...]] = {}

    # -- install / remove ---------------------------------------------------------------

    def __enter__(self) -> OpProvenance:
        for name, install in (
            ("op creation (ops.Graph._create_op_helper)", self._hook_op_creation),
            ("layer calls (Layer.__call__)", self._hook_layers),
            ("trainer phases (_compute_loss, compute_metrics, optimizer)", self._hook_phases),
            ("tape gradients (backprop._gradient_function)", self._hook_tape),
            ("symbolic gradients (gradients_util._MaybeCompile)", self._hook_gradients_util),
            ("cross-replica merges (ReplicaContext.merge_call)", self._hook_merge_call),
        ):
            try:
                install()
            except Exception as e:  # another TF/Keras version: record what we can
                self.missing.append(f"{name}: {type(e).__name__}: {e}")
        return self

    def __exit__(self, *exc: Any) -> None:
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception as e:
                self.missing.append(f"a hook was not removed cleanly: {e}")

    def _patch(self, owner: Any, attr: str, wrapper: Any, instance: bool = False) -> None:
        original = getattr(owner, attr)
        had_own = attr in vars(owner)
        object.__setattr__(owner, attr, wrapper) if instance else setattr(owner, attr, wrapper)

        def undo() -> None:
            if instance and not had_own:
                object.__delattr__(owner, attr)
            elif instance:
                object.__setattr__(owner, attr, original)
            else:
                setattr(owner, attr, original)

        self._undo.append(undo)

    def _framed(self, fn: Any, frame: tuple) -> Any:
        stack = self._stack

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            stack.frames.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                stack.frames.pop()

        return wrapper

    # -- hooks --------------------------------------------------------------------------

    def _hook_op_creation(self) -> None:
        from tensorflow.python.framework import ops

        original = ops.Graph._create_op_helper
        stack, origin, lock = self._stack, self.origin, self._lock

        def create_op_helper(graph: Any, op: Any, *args: Any, **kwargs: Any) -> Any:
            frame = stack.frames[-1] if stack.frames else ("outside",)
            with lock:  # replica threads (MirroredStrategy) create ops concurrently
                origin[id(op)] = (op, frame)
            return original(graph, op, *args, **kwargs)

        self._patch(ops.Graph, "_create_op_helper", create_op_helper)

    def _hook_layers(self) -> None:
        import keras

        base = keras.layers.Layer
        # `layer(x)` looks `__call__` up on the class: wrap every class of the model's
        # layers that defines its own (Layer itself, preprocessing's data layers, ...).
        classes = {base}
        for _, layer in iter_layers(self.model):
            for cls in type(layer).__mro__:
                if "__call__" in vars(cls) and issubclass(cls, base):
                    classes.add(cls)
        stack, called = self._stack, self.called
        for cls in classes:
            original = vars(cls)["__call__"]

            def layer_call(layer: Any, *args: Any, __original=original, **kwargs: Any) -> Any:
                path = _call_path(stack.frames, layer)
                called.setdefault(id(layer), path)
                stack.frames.append(("layer", path, id(layer)))
                try:
                    return __original(layer, *args, **kwargs)
                finally:
                    stack.frames.pop()

            functools.update_wrapper(layer_call, original)
            self._patch(cls, "__call__", layer_call)

    def _hook_phases(self) -> None:
        model = self.model
        self._patch(model, "train_step", self._framed(model.train_step, ("step",)), True)
        for names, phase in ((_LOSS_METHODS, "loss"), (_METRIC_METHODS, "metrics")):
            for name in names:
                if callable(getattr(model, name, None)):
                    wrapped = self._framed(getattr(model, name), ("phase", phase))
                    self._patch(model, name, wrapped, True)
        for optimizer in _optimizers(model):
            for name in _OPTIMIZER_METHODS:
                if callable(getattr(optimizer, name, None)):
                    wrapped = self._framed(getattr(optimizer, name), ("phase", "optimizer"))
                    self._patch(optimizer, name, wrapped, True)
        # The loss tracker is updated in train_step itself, outside compute_metrics.
        try:
            metrics = list(getattr(model, "metrics", None) or [])
        except Exception:  # not compiled yet, or an unusual model: phases still work
            metrics = []
        for metric in metrics:
            for name in _METRIC_OBJECT_METHODS:
                if callable(getattr(metric, name, None)):
                    wrapped = self._framed(getattr(metric, name), ("phase", "metrics"))
                    self._patch(metric, name, wrapped, True)

    def _hook_tape(self) -> None:
        from tensorflow.python import pywrap_tfe
        from tensorflow.python.eager import backprop, imperative_grad, record

        gradient_function = backprop._gradient_function
        stack = self._stack

        def traced_gradient_function(*args: Any) -> Any:
            # (op_name, attr_tuple, num_inputs, inputs, outputs, out_grads,
            # skip_input_indices, forward_pass_name_scope). The tape passes outputs
            # (and inputs) only when the gradient needs them; otherwise the forward op
            # is found again by type, scope and inputs. Reading them must never break
            # the user's step: any surprise just records less.
            stack.frames.append(_gradient_frame(args))
            try:
                return gradient_function(*args)
            finally:
                stack.frames.pop()

        pywrap_tfe.TFE_Py_RegisterGradientFunction(traced_gradient_function)
        self._undo.append(lambda: pywrap_tfe.TFE_Py_RegisterGradientFunction(gradient_function))
        # Custom gradients (`tf.custom_gradient`: Keras's silu/swish, for one) and
        # nested function calls give the tape their own backward function instead of
        # a registered one: it works for the op whose outputs it was recorded with.
        record_operation = record.record_operation

        def traced_record_operation(*args: Any, **kwargs: Any) -> Any:
            # (op_type, output_tensors, input_tensors, backward_function, ...), positional
            # or by keyword. Anything unexpected: record it unchanged.
            try:
                args, kwargs = _with_grad_frame(stack, args, kwargs)
            except Exception:
                pass
            return record_operation(*args, **kwargs)

        self._patch(record, "record_operation", traced_record_operation)
        # Ops the tape creates between gradient functions (AddN of a tensor's gradients,
        # zeros for unused outputs) sit inside imperative_grad only.
        self._patch(
            imperative_grad,
            "imperative_grad",
            self._framed(imperative_grad.imperative_grad, ("aggregate",)),
        )

    def _hook_gradients_util(self) -> None:
        from tensorflow.python.ops import gradients_util

        stack = self._stack
        maybe_compile = gradients_util._MaybeCompile

        def traced_maybe_compile(*args: Any, **kwargs: Any) -> Any:
            # (scope, op, func, grad_fn): op is the forward op being differentiated.
            op = args[1] if len(args) > 1 else kwargs.get("op")
            stack.frames.append(("grad", op, None, None, None))
            try:
                return maybe_compile(*args, **kwargs)
            finally:
                stack.frames.pop()

        self._patch(gradients_util, "_MaybeCompile", traced_maybe_compile)
        self._patch(
            gradients_util,
            "_AggregatedGrads",
            self._framed(gradients_util._AggregatedGrads, ("aggregate",)),
        )

    def _hook_merge_call(self) -> None:
        from tensorflow.python.distribute import distribute_lib

        stack = self._stack
        merge_call = distribute_lib.ReplicaContext.merge_call

        # MirroredStrategy runs `merge_fn` (the optimizer's update, for one) in the main
        # thread while the replica threads wait: it works on behalf of the caller, so
        # it runs under the caller's frames, whichever thread executes it.
        def traced_merge_call(ctx: Any, merge_fn: Any, *args: Any, **kwargs: Any) -> Any:
            frames = list(stack.frames)

            @functools.wraps(merge_fn)
            def on_behalf(*a: Any, **k: Any) -> Any:
                saved = stack.frames
                stack.frames = saved + frames
                try:
                    return merge_fn(*a, **k)
                finally:
                    stack.frames = saved

            return merge_call(ctx, on_behalf, *args, **kwargs)

        self._patch(distribute_lib.ReplicaContext, "merge_call", traced_merge_call)

    # -- results ------------------------------------------------------------------------

    def resolve(self) -> dict[int, tuple[tuple[str, ...] | None, str, str]]:
        """Map id(op) -> (layer path or None, phase, origin) for every recorded op."""
        resolver = Resolver(self.origin)
        return {key: resolver.of(op) for key, (op, _) in self.origin.items()}


def _optimizers(model: Any) -> list[Any]:
    """The compiled optimizer and any other a custom `train_step` keeps on the model
    (a GAN's two), each once."""
    import keras

    found: list[Any] = []
    for obj in [getattr(model, "optimizer", None), *vars(model).values()]:
        if isinstance(obj, keras.optimizers.Optimizer) and all(obj is not f for f in found):
            found.append(obj)
    return found


def _call_path(frames: list[tuple], layer: Any) -> tuple[str, ...]:
    """The layer's path as it is called now: its caller's path and its name.

    Not its place in the model's layer tree: a sub-model called straight from a custom
    `train_step` (a GAN's generator) has no model above it in that call, and the names
    of its ops say so, as they do for a layer called by another model's layer.
    """
    caller = next((f for f in reversed(frames) if f[0] == "layer"), None)
    name = str(getattr(layer, "name", None) or type(layer).__name__)
    if caller is None:
        return (name,)
    if caller[2] == id(layer):  # a class's `__call__` override, then the base one
        return caller[1]
    return (*caller[1], name)


def _gradient_frame(args: tuple) -> tuple:
    """("grad", forward op, op type, forward scope, input names) from the tape's call.

    Each part is read on its own: one the tape did not pass (or passed in a form this
    TensorFlow does not use) leaves the others to find the forward op.
    """
    parts: list[Any] = [None, None, None, None]
    readers = (
        lambda: next((t.op for t in args[4] or () if hasattr(t, "op")), None),
        lambda: args[0].decode() if isinstance(args[0], bytes) else args[0],
        lambda: args[-1].decode() if isinstance(args[-1], bytes) else args[-1],
        lambda: None if args[3] is None else tuple(t.name for t in args[3]),
    )
    for i, read in enumerate(readers):
        try:
            parts[i] = read()
        except Exception:
            pass
    return ("grad", *parts)


def _with_grad_frame(stack: _Stack, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """record_operation's arguments with its backward function run under a grad frame."""
    outputs = args[1] if len(args) > 1 else kwargs.get("output_tensors")
    backward = args[3] if len(args) > 3 else kwargs.get("backward_function")
    forward = next((op for op in map(graph_op, outputs or ()) if op is not None), None)
    if forward is None or not callable(backward):
        return args, kwargs
    frame = ("grad", forward, None, None, None)

    def backward_for_forward(*a: Any, **k: Any) -> Any:
        stack.frames.append(frame)
        try:
            return backward(*a, **k)
        finally:
            stack.frames.pop()

    if len(args) > 3:
        return (*args[:3], backward_for_forward, *args[4:]), kwargs
    return args, {**kwargs, "backward_function": backward_for_forward}


__all__ = ["OpProvenance"]
