"""Creation-time labels for every TF graph op: which Keras layer and which phase made it.

Independent of tb_metal_plugin (imports nothing from it). While installed, every op
TensorFlow adds to a graph gets a label read off the Python stack at that moment:

- inside a gradient function (any function fetched from the gradient registry, by the
  tape or by tf.gradients; symbolic `_MaybeCompile`; a recorded custom/backward
  function): phase "backward", layer of the forward op whose gradient it is;
- inside `GradientTape.gradient` but outside any gradient function (the tape's own
  AddN / zeros / ones), or inside tf.gradients' `_AggregatedGrads` (the same summing in
  while/cond gradient bodies): "backward", layer from the op's inputs (kind "tape");
- inside the innermost `__call__` of a Layer (the base one or an override): "forward",
  path of layer names from the outermost layer call on the stack;
- inside `Trainer._compute_loss` / `compute_loss`: "loss"; `compute_metrics` or any
  `Metric` method (loss tracker too): "metrics"; any optimizer method: "optimizer";
- code of `tensorflow.python.data` (iterators, Optional): "input"; else "other".

The innermost deciding frame wins. Hooks are private TF/Keras names, checked with the
versions in PINNED; `install()` raises `HookError` when one no longer resolves.
"""

from __future__ import annotations

import sys
import threading

PINNED = {"tensorflow": "2.21.0", "keras": "3.15.1"}
# Under TF_USE_LEGACY_KERAS=1 (tf.keras is tf_keras, Keras 2) the same hooks sit elsewhere.
PINNED_TF_KERAS = {"tensorflow": "2.21.0", "keras": "2.21.0"}


def legacy_keras() -> bool:
    """True when this process trains with tf_keras (Keras 2) rather than Keras 3."""
    import os

    return os.environ.get("TF_USE_LEGACY_KERAS", "") in ("1", "true", "True")


class _KerasParts:
    """Where the Keras-specific hooks live: Keras 3 or tf_keras (Keras 2)."""

    def __init__(self):
        if legacy_keras():
            import tf_keras as keras
            from tf_keras.src.engine import base_layer as layer_mod
            from tf_keras.src.engine import training
            from tf_keras.src.metrics import base_metric
            from tf_keras.src.optimizers import optimizer as optimizer_mod
            from tf_keras.src.optimizers.legacy import optimizer_v2

            self.pinned = PINNED_TF_KERAS
            self.layer_mod = layer_mod
            self.metric = _resolve(base_metric, "Metric")
            self.optimizers = (
                _resolve(optimizer_mod, "Optimizer"),
                _resolve(optimizer_v2, "OptimizerV2"),
            )
            from tf_keras.src.engine import compile_utils

            # tf_keras's train_step: compute_loss (compiled loss, regularizers, the loss
            # tracker) and compute_metrics; a custom train_step calls the compiled loss
            # and metrics containers directly.
            self.wraps = [
                (training.Model, "compute_loss", "loss"),
                (training.Model, "compute_metrics", "metrics"),
                (_resolve(compile_utils, "LossesContainer"), "__call__", "loss"),
                (_resolve(compile_utils, "MetricsContainer"), "update_state", "metrics"),
            ]
            for cls, name, _ in self.wraps:
                _resolve(cls, name)
        else:
            import keras
            from keras.src.backend.tensorflow import trainer as tf_trainer
            from keras.src.layers import layer as layer_mod
            from keras.src.metrics import metric as metric_mod
            from keras.src.optimizers import base_optimizer
            from keras.src.trainers import trainer as trainer_mod

            self.pinned = PINNED
            self.layer_mod = layer_mod
            self.metric = _resolve(metric_mod, "Metric")
            self.optimizers = (_resolve(base_optimizer, "BaseOptimizer"),)
            methods = (
                ("compute_loss", "loss"),
                ("_compute_loss", "loss"),
                ("compute_metrics", "metrics"),
            )
            for name, _ in methods:
                # `_compute_loss` (the loss tracker's update beside the loss) came in a
                # later Keras 3; before it, `compute_loss` did both.
                if name != "_compute_loss" or hasattr(trainer_mod.Trainer, name):
                    _resolve(trainer_mod, f"Trainer.{name}")
            # The base trainer and the TF trainer, where each defines the method.
            self.wraps = [
                (cls, name, kind)
                for name, kind in methods
                for cls in (trainer_mod.Trainer, tf_trainer.TensorFlowTrainer)
                if name in vars(cls)
            ]
        self.version = keras.__version__


class HookError(RuntimeError):
    """A private TF/Keras name the labeller hooks is gone: the ground truth cannot be trusted."""


def _resolve(module, dotted: str):
    obj = module
    for part in dotted.split("."):
        if not hasattr(obj, part):
            raise HookError(
                f"labeller hook {getattr(module, '__name__', type(module).__name__)}.{dotted} "
                "does not resolve "
                f"(checked with {PINNED}); update tests/gt/labeller.py"
            )
        obj = getattr(obj, part)
    return obj


def _layer_call(orig):
    """A `__call__` that marks its frame with the layer (one code object for all)."""

    def layer_call(self, *args, **kwargs):
        _gt_layer = self  # noqa: F841  (read from the frame)
        return orig(self, *args, **kwargs)

    return layer_call


def _subclasses(cls) -> list:
    """Every subclass of cls defined so far, each once."""
    out, todo = [], list(cls.__subclasses__())
    while todo:
        c = todo.pop()
        if c not in out:
            out.append(c)
            todo.extend(c.__subclasses__())
    return out


class _Tagged(tuple):
    """The attr tuple handed to the tape, carrying the forward op back to its gradient."""


class Labeller:
    """Installs the hooks; `labelled_graphs()` lists every graph that received ops."""

    def __init__(self) -> None:
        self._undo: list = []
        self._codes: dict = {}
        self.graphs: list = []
        self._graph_ids: set[int] = set()
        self.errors: list[str] = []
        self._lock = threading.Lock()

    # -- install / uninstall ------------------------------------------------------------

    def install(self) -> Labeller:
        """Wrap the hooks (raises HookError if any private name is missing)."""
        import tensorflow as tf
        from tensorflow.python.eager import backprop, execute, record
        from tensorflow.python.framework import ops
        from tensorflow.python.ops import gradients_util

        parts = _KerasParts()
        layer_mod = parts.layer_mod
        got = {"tensorflow": tf.__version__, "keras": parts.version}
        if got != parts.pinned:
            print(f"labeller: checked with {parts.pinned}, running {got}", file=sys.stderr)
        self._Metric = parts.metric
        self._Optimizer = parts.optimizers
        lab = self
        self._keep_out_of_autograph()

        # Op creation: both Python-built and C-API-built ops pass _create_op_helper.
        orig_helper = _resolve(ops, "Graph._create_op_helper")

        def _create_op_helper(graph, op, *a, **kw):
            out = orig_helper(graph, op, *a, **kw)
            try:
                op._gt_label = lab._label(op)
            except Exception as e:  # never break the user's trace; count instead
                lab.errors.append(f"{op.name}: {type(e).__name__}: {e}")
            if id(graph) not in lab._graph_ids:
                lab._graph_ids.add(id(graph))
                lab.graphs.append(graph)
            return out

        self._patch(ops.Graph, "_create_op_helper", _create_op_helper)

        # Layer calls: the base `Layer.__call__`, and every subclass that overrides it
        # (preprocessing layers convert their inputs in `TFDataLayer.__call__` before the
        # base call opens the layer's scope; those ops are the layer's too).
        call = _resolve(layer_mod, "Layer.__call__")
        self._patch(layer_mod.Layer, "__call__", _layer_call(call))
        self._codes[_layer_call(call).__code__] = "layer"
        for cls in _subclasses(layer_mod.Layer):
            if "__call__" in vars(cls):
                self._patch(cls, "__call__", _layer_call(vars(cls)["__call__"]))

        # Loss and metrics methods of the trainer (Keras 3: base class and the TF trainer).
        for cls, name, kind in parts.wraps:
            self._wrap_method(cls, name, kind)

        # Gradients. Every gradient function is fetched from the one gradient registry
        # (`_gradient_function` of the tape, `get_gradient_function` of tf.gradients), so the
        # registry's lookup is where the forward op is attached: whatever C++ entry point or
        # chained wrapper (the tb_metal_plugin callback re-registers the tape's gradient
        # function, bypassing any wrapper registered before it) ends up calling it.
        # The tape hands the gradient function a mock op; its attrs tuple is the object
        # `record_gradient` was given, so tagging it there carries the forward op across.
        orig_record = _resolve(execute, "record_gradient")
        mock_cls = _resolve(backprop, "_MockOp")
        registry = _resolve(ops, "_gradient_registry")
        # Registry has __slots__: patch the class, acting only for the gradient registry.
        orig_lookup = _resolve(type(registry), "lookup")

        def record_gradient(op_name, inputs, attrs, outputs):
            tagged = _Tagged(attrs or ())
            try:
                tagged.fwd = outputs[0].op
            except Exception:
                tagged.fwd = None
            return orig_record(op_name, inputs, tagged, outputs)

        def lookup(reg, name):
            fn = orig_lookup(reg, name)
            if reg is not registry or fn is None or not callable(fn):
                return fn

            def gradient(op, *grads, **kw):
                try:
                    _gt_fwd = _forward_op(op, mock_cls)  # noqa: F841
                except Exception as e:  # never break the user's gradient; count instead
                    lab.errors.append(f"forward op of a {name} gradient: {type(e).__name__}: {e}")
                    _gt_fwd = None  # noqa: F841
                return fn(op, *grads, **kw)

            lab._codes[gradient.__code__] = "gradfn"
            return gradient

        execute.record_gradient = record_gradient
        self._undo.append(lambda: setattr(execute, "record_gradient", orig_record))
        self._patch(type(registry), "lookup", lookup)

        # Symbolic gradients (while/cond bodies, tf.gradients): one call per forward op.
        orig_maybe = _resolve(gradients_util, "_MaybeCompile")

        def maybe_compile(scope, op, func, grad_fn):
            _gt_fwd = op  # noqa: F841
            return orig_maybe(scope, op, func, grad_fn)

        self._patch_attr(gradients_util, "_MaybeCompile", maybe_compile)
        self._codes[maybe_compile.__code__] = "gradfn"

        # Symbolic aggregation of a tensor's gradients (AddN inside while/cond gradient
        # bodies): the same job as the tape's own AddN, so the same rule (from its inputs),
        # not the layer of the enclosing While whose gradient function builds the body.
        orig_agg = _resolve(gradients_util, "_AggregatedGrads")

        def aggregated_grads(*args, **kwargs):
            return orig_agg(*args, **kwargs)

        self._patch_attr(gradients_util, "_AggregatedGrads", aggregated_grads)
        self._codes[aggregated_grads.__code__] = "tape"

        # Backward functions recorded directly (custom_gradient, function calls).
        for name in ("record_operation", "record_operation_backprop_only"):
            orig = _resolve(record, name)
            self._patch_attr(record, name, self._make_record_op(orig))

        # The tape's own ops (aggregation, zeros, ones) are made inside gradient().
        orig_grad = _resolve(backprop, "GradientTape.gradient")

        def tape_gradient(self, *args, **kwargs):
            _gt_tape = True  # noqa: F841
            return orig_grad(self, *args, **kwargs)

        self._patch(backprop.GradientTape, "gradient", tape_gradient)
        self._codes[tape_gradient.__code__] = "tape"

        # Distribution strategies run merge_fn (e.g. the optimizer's variable updates) on
        # another thread than the replica that asked: carry the asker's label across.
        from tensorflow.python.distribute import distribute_lib

        orig_merge = _resolve(distribute_lib, "ReplicaContext.merge_call")

        def merge_call(self, merge_fn, args=(), kwargs=None):
            label = lab._label_from(sys._getframe(1), None)

            def merged(*a, **kw):
                _gt_merge = label  # noqa: F841
                return merge_fn(*a, **kw)

            lab._codes[merged.__code__] = "merge"
            return orig_merge(self, merged, args, kwargs)

        self._patch(distribute_lib.ReplicaContext, "merge_call", merge_call)
        return self

    def _make_record_op(self, orig):
        lab = self

        def record_op(op_type, output_tensors, input_tensors, backward_function, *a, **kw):
            try:
                fwd = output_tensors[0].op
            except Exception:
                fwd = None

            def backward(*args, **kwargs):
                _gt_fwd = fwd  # noqa: F841
                return backward_function(*args, **kwargs)

            lab._codes[backward.__code__] = "gradfn"
            return orig(op_type, output_tensors, input_tensors, backward, *a, **kw)

        return record_op

    def _wrap_method(self, cls, name, kind):
        orig = vars(cls)[name]

        def method(self, *args, **kwargs):
            _gt_kind = kind  # noqa: F841
            return orig(self, *args, **kwargs)

        self._patch(cls, name, method)
        # One code object serves every wrapped method: the frame's `_gt_kind` says which.
        self._codes[method.__code__] = "method"

    def _keep_out_of_autograph(self) -> None:
        """Have autograph call this module's hooks as they are.

        TF 2.15's autograph converts a wrapper it meets inside a traced function (tf_keras
        2.15 leaves `Layer.__call__` to it): the frames then run generated code, not the
        hooks' own, and no op would be seen inside a layer call. TF 2.21 does not convert
        them; the rule is harmless there.
        """
        try:
            from tensorflow.python.autograph.core import config as ag_config
        except ImportError:
            return
        before = ag_config.CONVERSION_RULES
        ag_config.CONVERSION_RULES = (ag_config.DoNotConvert(__name__), *before)
        self._undo.append(lambda: setattr(ag_config, "CONVERSION_RULES", before))

    def _patch(self, cls, name, fn):
        had = name in vars(cls)
        orig = vars(cls).get(name)
        setattr(cls, name, fn)
        self._undo.append(lambda: setattr(cls, name, orig) if had else delattr(cls, name))

    def _patch_attr(self, module, name, fn):
        orig = getattr(module, name)
        setattr(module, name, fn)
        self._undo.append(lambda: setattr(module, name, orig))

    def uninstall(self) -> None:
        """Restore every hook (in reverse order)."""
        while self._undo:
            self._undo.pop()()

    def __enter__(self) -> Labeller:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.uninstall()

    def forget(self) -> None:
        """Drop the graphs seen so far (between models)."""
        self.graphs = []
        self._graph_ids = set()

    # -- labelling ----------------------------------------------------------------------

    def _label(self, op) -> dict:
        """The label of an op being created now, from the innermost deciding frame."""
        return self._label_from(sys._getframe(2), op)

    def _label_from(self, frame, op) -> dict:
        """Walk outward from `frame` to the first frame that decides (op: the new op)."""
        codes = self._codes
        while frame is not None:
            code = frame.f_code
            kind = codes.get(code)
            if kind is not None:
                return self._from_wrapper(kind, frame, op)
            if code.co_argcount and code.co_varnames[0] == "self":
                owner = frame.f_locals.get("self")
                if isinstance(owner, self._Metric):
                    return {"phase": "metrics", "layer": None, "kind": "metric"}
                if isinstance(owner, self._Optimizer):
                    return {"phase": "optimizer", "layer": None, "kind": "optimizer"}
            if frame.f_globals.get("__name__", "").startswith("tensorflow.python.data."):
                return {"phase": "input", "layer": None, "kind": "data"}
            frame = frame.f_back
        return {"phase": "other", "layer": None, "kind": "other"}

    def _from_wrapper(self, kind: str, frame, op) -> dict:
        if kind == "layer":
            path, last = [], None
            f = frame
            while f is not None:
                if self._codes.get(f.f_code) == "layer":
                    layer = f.f_locals["_gt_layer"]
                    if layer is not last:  # an override's frame and the base call's
                        path.append(layer.name)
                    last = layer
                f = f.f_back
            return {"phase": "forward", "layer": list(reversed(path)), "kind": "layer"}
        if kind == "gradfn":
            fwd = frame.f_locals.get("_gt_fwd")
            fl = getattr(fwd, "_gt_label", None) if fwd is not None else None
            return {
                "phase": "backward",
                "layer": fl["layer"] if fl else None,
                "kind": "gradient",
                "fwd": fwd.name if fwd is not None else None,
            }
        if kind == "tape":
            if op is None:
                return {"phase": "backward", "layer": None, "kind": "tape"}
            layers = [_input_layer(t.op) for t in op.inputs if getattr(t.op, "_gt_label", None)]
            layers = [x for x in layers if x is not _SKIP]
            layer, mixed = _common(layers)
            out = {"phase": "backward", "layer": layer, "kind": "tape"}
            if mixed:
                out["mixed_inputs"] = True
            return out
        if kind == "merge":
            return dict(frame.f_locals["_gt_merge"])
        if kind == "method":
            kind = frame.f_locals["_gt_kind"]
        return {"phase": kind, "layer": None, "kind": kind}


_SKIP = object()


def _forward_op(op, mock_cls):
    """The graph op a gradient function differentiates (None when it cannot be known).

    A real Operation (symbolic gradients) is its own forward op. A tape mock op carries it
    in its attrs (tagged by our `record_gradient`); failing that, it is the op of that type
    consuming exactly the inputs the tape kept (None when several distinct ones qualify).
    """
    if not isinstance(op, mock_cls):
        return op
    fwd = getattr(op.attrs, "fwd", None)
    if fwd is not None:
        return fwd
    # Eager gradients (e.g. inside a py_function's gradient) have no graph op to find.
    inputs = [t for t in (op.inputs or ()) if hasattr(t, "graph")]
    if not inputs or len(inputs) != len(op.inputs):
        return None
    # Compare by (op, output index): Tensor.__eq__ would build Equal ops in the graph.
    want = [(t.op, t.value_index) for t in inputs]
    found = [
        c
        for c in inputs[0].consumers()
        if c.type == op.type and [(t.op, t.value_index) for t in c.inputs] == want
    ]
    return found[0] if len(found) == 1 else None


def _input_layer(op):
    """Layer an input of a tape op contributes; constants made by the tape say nothing."""
    lab = op._gt_label
    if lab["kind"] == "tape" and not list(op.inputs):
        return _SKIP
    return tuple(lab["layer"]) if lab["layer"] is not None else None


def _common(layers: list) -> tuple[list | None, bool]:
    """Deepest layer shared by all inputs (None if any has none); flag when they differ."""
    if not layers:
        return None, False
    if any(x is None for x in layers):
        return None, len(set(layers)) > 1
    first = layers[0]
    n = min(len(x) for x in layers)
    k = 0
    while k < n and all(x[k] == first[k] for x in layers):
        k += 1
    return (list(first[:k]) or None), len(set(layers)) > 1
