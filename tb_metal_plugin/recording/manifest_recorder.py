"""Record, during the one retrace of the train step, everything the manifest holds.

`ManifestRecorder.arm()` switches recording on and rebuilds the train function (Keras
caches the traced step); the next step traces and instantiates it with every hook
active; `disarm()` switches everything off and keeps the results; `build()` returns
the manifest's content. Every part that fails becomes a warning, never an exception:
recording must not break the user's training.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

# Warnings about missing private hooks are printed once per process (every manifest
# still lists them): one fit() after another must not repeat the same message.
_WARNED_ONCE: set[str] = set()
# Origins that mean "no hook claimed this op": trustworthy only when every hook was on.
_CATCH_ALL_ORIGINS = ("train_step", "outside_train_step", "unrecorded")


def _created_by() -> str:
    from .. import __version__

    return f"tb-metal {__version__}"


class ManifestRecorder:
    """The recording half of the callback: arm, disarm, build the manifest's content."""

    def __init__(self, options: Any, warn: Callable[[str], None]) -> None:
        # options: the callback (record_placement, record_kernels, record_ops,
        # layer_benchmark, benchmark_* attributes are read from it).
        self.options = options
        self._warn = warn
        self.warnings: list[str] = []
        self.scopes: dict[tuple[str, ...], list[str]] = {}
        self.calls: Any = None
        self.placement: list[dict[str, str]] | None = None
        self.ops: dict[str, Any] | None = None
        self._scopes_cm: Any = None
        self._provenance: Any = None
        self._called: dict[int, tuple[str, ...]] = {}  # id(layer) -> its first call's path
        self._capture: Any = None
        # False for a model of another Keras (tf_keras): its layers call none of the
        # Keras 3 hooks, so neither layer scopes nor op records can be taken.
        self._keras3 = True
        # The captured run metadata of a model the hooks cannot follow (see disarm).
        self.step_graph: Any = None

    @property
    def _want_run_metadata(self) -> bool:
        return bool(self.options.record_placement or self.options.record_ops)

    # -- arm / disarm -------------------------------------------------------------------

    def arm(self, model: Any) -> None:
        """Switch recording on and rebuild the train function so that it is traced again."""
        from . import layers, placement, scopes

        self._keras3 = _is_keras3(model)
        if not self._keras3:
            message = (
                f"{type(model).__name__} is not a Keras 3 model (tf_keras / Keras 2?): "
                "MetalProfileCallback records layers and ops for Keras 3 models only; it "
                "writes the step graph into the run's event file, as Keras's TensorBoard "
                "callback does, and layers and phases are read from op names and that graph"
            )
            self.warnings.append(message)
            if message not in _WARNED_ONCE:
                _WARNED_ONCE.add(message)
                self._warn(f"MetalProfileCallback: {message}.")
        if self._want_run_metadata:
            try:
                self._capture = placement.PlacementCapture()
                self._capture.start()
            except Exception as e:
                self._capture = None
                self.warn_missing("placement", e)
        try:
            if not self._keras3:
                raise _NotKeras3()
            self.calls = layers.CallLog()
            self._scopes_cm = scopes.record_layer_scopes(model, on_call=self.calls)
            self.scopes = self._scopes_cm.__enter__()
        except _NotKeras3:
            self._scopes_cm = None
        except Exception as e:
            self._scopes_cm = None
            self.warn_missing("layer scopes", e)
        if self.options.record_ops and self._keras3:
            try:
                from .provenance import OpProvenance

                self._provenance = OpProvenance(model).__enter__()
                for problem in self._provenance.missing:
                    self._hook_missing(problem)
            except Exception as e:
                self._provenance = None
                self.warn_missing("op records", e)
        try:
            # Keras caches the traced step; a fresh one is traced (and instantiated) on
            # the next call, with the wrappers and run-metadata capture active.
            model.make_train_function(force=True)
        except Exception as e:
            self.warn_missing("layer scopes and placement (train function not rebuilt)", e)

    def disarm(self) -> None:
        """Switch every hook off (the traced call has run) and keep what was recorded."""
        if self._scopes_cm is not None:
            cm, self._scopes_cm = self._scopes_cm, None
            try:
                cm.__exit__(None, None, None)
            except Exception as e:
                self.warn_missing("layer scopes (wrappers not removed cleanly)", e)
        provenance, self._provenance = self._provenance, None
        if provenance is not None:
            try:
                provenance.__exit__(None, None, None)
            except Exception as e:
                self.warn_missing("op records (hooks not removed cleanly)", e)
        run_metadata = None
        if self._capture is not None:
            capture, self._capture = self._capture, None
            try:
                rows = capture.stop()
                run_metadata = capture.run_metadata
                if not rows:
                    raise RuntimeError("run metadata held no partition graphs")
                if self.options.record_placement:
                    self.placement = rows
            except Exception as e:
                self.placement = None
                self.warn_missing("placement", e)
        if provenance is not None:
            self._called = dict(provenance.called)
        if not self._keras3 and run_metadata is not None:
            # No op records for this model: its graphs go where the stock callback puts
            # them, for the view's step-graph reading (tape sums, uninlined calls).
            self.step_graph = run_metadata
        if provenance is not None and run_metadata is not None:
            self._build_op_table(provenance, run_metadata)
        elif (
            self.options.record_ops
            and self._keras3
            and not any("op records" in w for w in self.warnings)
        ):
            self.warn_missing("op records", RuntimeError("no partition graphs were captured"))
        if self.scopes and not any(self.scopes.values()):
            self.warn_missing(
                "layer scopes", RuntimeError("no layer call was traced (step not retraced?)")
            )

    def _build_op_table(self, provenance: Any, run_metadata: Any) -> None:
        try:
            from .graph_map import op_table

            resolved = provenance.resolve()
            ops = {key: (op, resolved[key]) for key, (op, _) in provenance.origin.items()}
            if not ops:
                raise RuntimeError("no op was created while the train step was traced")
            rows, counts = op_table(ops, run_metadata)
            if provenance.missing:
                # Without every hook, "created in the train step, by nobody we know" no
                # longer means `other`: leave those ops to trace-name attribution.
                rows = [r for r in rows if r[4] not in _CATCH_ALL_ORIGINS]
            self.ops = {
                "columns": ["name", "type", "layer", "phase", "origin"],
                "rows": rows,
                "matched": counts,
                "hooks_missing": list(provenance.missing),
            }
        except Exception as e:
            self.warn_missing("op records", e)
        finally:
            provenance.origin.clear()  # drop the graph ops: they hold whole graphs alive

    # -- manifest -----------------------------------------------------------------------

    def build(self, model: Any, profile: dict[str, Any]) -> dict[str, Any]:
        """The manifest's content (without format/version); failed parts become warnings."""
        data: dict[str, Any] = {"created_by": _created_by()}
        try:
            data["model"] = {"name": model.name, "class": type(model).__name__}
        except Exception as e:
            self.warn_missing("model", e)
        data["profile"] = profile
        try:
            from . import layers

            if self._keras3:  # (another Keras's tree would claim scopes nobody recorded)
                data["layers"] = layers.layer_tree(model, self.scopes, self.calls, self._called)
        except Exception as e:
            self.warn_missing("layers", e)
        if self.ops is not None:
            data["ops"] = self.ops
        if self.placement is not None:
            data["placement"] = self.placement
            if self.options.record_kernels:
                try:
                    from .kernels import kernel_registry

                    data["kernels"] = kernel_registry(p["type"] for p in self.placement)
                except Exception as e:
                    self.warn_missing("kernels", e)
        elif self.options.record_placement and not any("placement" in w for w in self.warnings):
            self.warn_missing("placement", RuntimeError("the train step was not rebuilt"))
        try:
            from .environment import environment

            data["environment"] = environment()
        except Exception as e:
            self.warn_missing("environment", e)
        if self.options.layer_benchmark:
            self._benchmark(model, data)
        data["warnings"] = list(self.warnings)
        return data

    def _benchmark(self, model: Any, data: dict[str, Any]) -> None:
        try:
            from .layer_bench import benchmark_layers

            if self.calls is None or not self.calls.calls:
                raise RuntimeError("no layer input shapes were recorded")
            data["layer_benchmarks"], problems = benchmark_layers(
                model,
                self.calls,
                devices=self.options.benchmark_devices,
                repeats=self.options.benchmark_repeats,
                warmup=self.options.benchmark_warmup,
                batch_size=getattr(self.options, "benchmark_batch_size", None),
            )
            self.warnings.extend(problems)
        except Exception as e:
            self.warn_missing("layer_benchmarks", e)

    # -- warnings -----------------------------------------------------------------------

    def warn_missing(self, what: str, error: BaseException) -> None:
        """Note a part that was not recorded, in the manifest and as a RuntimeWarning."""
        message = f"{what} not recorded: {type(error).__name__}: {error}"
        self.warnings.append(message)
        self._warn(f"MetalProfileCallback: {message} (training continues; the trace is kept).")

    def _hook_missing(self, problem: str) -> None:
        message = (
            f"op records incomplete: hook unavailable in this TensorFlow/Keras ({problem}); "
            "ops without a record are attributed from trace names"
        )
        self.warnings.append(message)
        if message not in _WARNED_ONCE:
            _WARNED_ONCE.add(message)
            self._warn(f"MetalProfileCallback: {message}.")


def profile_info(callback: Any, model: Any) -> dict[str, Any]:
    """The manifest's `profile` section: window, profiled batches, where the run lives."""
    return {
        "profile_batch": [callback._start_batch, callback._stop_batch],
        "profiled_batches": list(callback._profiled),
        "steps_per_execution": int(getattr(model, "steps_per_execution", 1) or 1),
        "fit_call": callback._fit_calls,
        "run_dir": os.path.abspath(callback.profile_dir),
    }


def warn(message: str) -> None:
    """A RuntimeWarning pointing at the user's fit() call site region."""
    warnings.warn(message, RuntimeWarning, stacklevel=4)


class _NotKeras3(Exception):
    """Layer scopes are not taken for a model of another Keras (said once, in arm)."""


def _is_keras3(model: Any) -> bool:
    """True for a Keras 3 model (the Keras the recording hooks patch)."""
    try:
        import keras

        return isinstance(model, keras.Model)
    except Exception:
        return False


def write_step_graph(run_dir: str, run_metadata: Any, step: int) -> None:
    """Write the step's function graphs into an event file in `run_dir`, as Keras's stock
    TensorBoard callback does while it profiles (`graph_run_metadata_graph`)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2
    from tensorflow.core.protobuf import config_pb2

    graphs = config_pb2.RunMetadata()
    graphs.function_graphs.extend(run_metadata.function_graphs)  # no step stats
    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = "graph_run_metadata_graph"
    meta.plugin_data.content = b"1"
    writer = tf.summary.create_file_writer(run_dir)
    try:
        with writer.as_default():
            tf.summary.write(
                f"batch_{step}",
                tf.constant(graphs.SerializeToString()),
                step=step,
                metadata=meta.SerializeToString(),
            )
    finally:
        writer.close()
