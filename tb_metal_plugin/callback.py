"""`MetalProfileCallback`: a Keras callback that writes a profile plus the tb-metal manifest.

This module is the Keras-facing part: the window (arm, start, stop, abort). What is
recorded for the manifest lives in `recording/manifest_recorder.py`, the profiler and
step-marker mechanics in `recording/window.py`, the layer benchmark in
`recording/layer_bench.py`. Importing this module imports Keras and TensorFlow;
`tb_metal_plugin` itself never does (the package exports the class lazily).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import keras

from .manifest import write_manifest
from .recording import window
from .recording.manifest_recorder import ManifestRecorder, profile_info, write_step_graph
from .recording.manifest_recorder import warn as _warn_user
from .recording.window import parse_profile_batch as _parse_profile_batch


class MetalProfileCallback(keras.callbacks.Callback):
    """Profile a window of training batches and write the tb-metal manifest beside the trace.

    Args:
        log_dir: TensorBoard log directory (the one you pass to `tensorboard --logdir`).
        profile_batch: batch to profile (int) or `(start, stop)` range, counted like
            `keras.callbacks.TensorBoard`: 1-based over all batches of one `fit()` call
            (epochs do not restart the count; every `fit()` call does). With
            `steps_per_execution=N` a "batch" is one execution of N steps. 0 disables.
        run_name: subfolder of `log_dir` that becomes the TensorBoard run. "train",
            like the stock callback, so both write the profile in the same place;
            None writes into `log_dir` itself.
        record_placement: record the device of every op (run metadata).
        record_kernels: record the kernel registry for every op type placed.
        record_ops: record who created every executed op (layer, phase, the forward op
            of each gradient) while the step is retraced: exact attribution.
        layer_benchmark: after the window, time every layer's forward and backward
            pass in isolation on each device (slow: opt in).
        benchmark_repeats, benchmark_warmup: repeats (median taken) and warm-up runs.
        benchmark_devices: device names to benchmark on; default the first logical
            device of each type (CPU, GPU).
        benchmark_batch_size: batch dimension of the benchmark's inputs; default the one
            the train step was traced with (32 when it was traced with an unknown batch).
        profiler_options: a `tf.profiler.experimental.ProfilerOptions`, passed on.
        summary: after the profiled window, print a `model.summary()`-like table of
            per-layer time, clock, device split and CPU fallbacks (silent with
            `fit(verbose=0)`).
    """

    def __init__(
        self,
        log_dir: str | os.PathLike = "logs",
        profile_batch: int | tuple[int, int] | str = (2, 4),
        run_name: str | None = "train",
        record_placement: bool = True,
        record_kernels: bool = True,
        record_ops: bool = True,
        layer_benchmark: bool = False,
        benchmark_repeats: int = 20,
        benchmark_warmup: int = 3,
        benchmark_devices: list[str] | None = None,
        profiler_options: Any = None,
        benchmark_batch_size: int | None = None,
        summary: bool = True,
    ) -> None:
        super().__init__()
        self.log_dir = str(log_dir)
        self.run_name = run_name
        self._start_batch, self._stop_batch = _parse_profile_batch(profile_batch)
        self.record_placement = record_placement
        self.record_kernels = record_kernels
        self.record_ops = record_ops
        self.layer_benchmark = layer_benchmark
        self.benchmark_repeats = benchmark_repeats
        self.benchmark_warmup = benchmark_warmup
        self.benchmark_devices = benchmark_devices
        self.benchmark_batch_size = benchmark_batch_size
        self.profiler_options = profiler_options
        self.summary = summary
        # tb-metal doctor's verdict on this process's set-up, checked once at fit start.
        self._doctor: dict | None = None
        # Written manifests, newest last: tests and notebooks read them from here.
        self.manifest_paths: list[Path] = []
        self.trace_paths: list[Path] = []
        self._fit_calls = 0
        self._profiler_warmed = False
        self._reset_fit_state()

    @property
    def profile_dir(self) -> str:
        """The run folder that receives `plugins/profile/<session>/<host>.xplane.pb`."""
        return os.path.join(self.log_dir, self.run_name) if self.run_name else self.log_dir

    # -- per-fit state -----------------------------------------------------------------

    def _reset_fit_state(self) -> None:
        self._batch = 0
        self._tracing = False
        self._step_num = 0
        self._step_wrapper: window.ProfiledStep | None = None
        self._armed = False
        self._arm_batch = 0
        self._recorder = ManifestRecorder(self, self._warn)
        self._profiled: list[int] = []
        self._existing_traces: set[str] = set()
        # With start == 1 the arming batch is the first profiled one (as with the stock
        # callback, batch 1 then includes tracing); otherwise the batch before the window
        # absorbs the one-time retrace so that the profiled batches are steady state.
        self._arm_at = 0 if self._stop_batch == 0 else max(self._start_batch - 1, 1)

    # -- Keras hooks -------------------------------------------------------------------

    def on_train_begin(self, logs: Any = None) -> None:
        """Reset the batch count (like the stock callback) and look for a rival profiler."""
        self._reset_fit_state()
        self._fit_calls += 1
        if self._stop_batch == 0:
            return
        self._check_setup()
        self._warn_about_stock_profiler()
        if not self._profiler_warmed:
            # The first profiler session in a process pays one-time set-up; Keras's own
            # callback also starts and discards one before profiling.
            self._profiler_warmed = True
            window.warm_up_profiler()

    # on_train_batch_end is deliberately not overridden: any override turns off Keras's
    # asynchronous batch-end dispatch for the whole fit (logs synchronised every batch),
    # a cost outside the window. Inside the window a temporary wrapper around
    # `model.train_function` marks each step instead (see _ProfiledStep).
    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        """Arm, start or stop the window as due; note the batch index for the step marker."""
        self._batch += 1
        n = self._batch
        if n > self._stop_batch + 1 and not self._tracing and not self._armed:
            return  # past the window: the common case costs one comparison
        if self._armed and n > self._arm_batch:
            self._disarm()
        if self._tracing and n > self._stop_batch:
            self._stop_window()
        if n == self._arm_at:
            self._arm(n)
        if n == self._start_batch and self._stop_batch > 0:
            self._start_window()
        if self._tracing:
            self._step_num = batch

    def on_test_begin(self, logs: Any = None) -> None:
        """Stop before validation when the window's last batch has run."""
        self._finish_if_done()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        """Stop at the epoch's end when the window's last batch has run."""
        self._finish_if_done()

    def on_train_end(self, logs: Any = None) -> None:
        """Stop a window cut short by the end of training; never leave wrappers installed."""
        if self._armed:
            self._disarm()
        if self._tracing:
            self._stop_window()

    # tf_keras (Keras 2, `tf.keras` on TF 2.15-era Macs) asks every callback which batch
    # hooks it has; Keras 3's Callback has no such methods. Only the train-batch one.
    def _implements_train_batch_hooks(self) -> bool:
        return True

    def _implements_test_batch_hooks(self) -> bool:
        return False

    def _implements_predict_batch_hooks(self) -> bool:
        return False

    # -- window ------------------------------------------------------------------------

    def _finish_if_done(self) -> None:
        if not (self._tracing or self._armed):
            return
        if self._armed and self._batch >= self._arm_batch:
            self._disarm()
        if self._tracing and self._batch >= self._stop_batch:
            self._stop_window()

    def _profiled_step(self, train_function: Any, iterator: Any) -> Any:
        """Run one train step inside the `Profiled batch` event Keras's callback emits."""
        import tensorflow as tf

        step = self._step_num
        self._profiled.append(step)
        # The step finder of the profiler (and tb-metal) keys on this event and stat.
        with tf.profiler.experimental.Trace("Profiled batch", step_num=step):
            logs = train_function(iterator)
            # Wait for the step's results inside the event, as the stock callback does
            # (it reads the logs in on_train_batch_end): a GPU step ends when its work
            # has finished, not when it has been queued.
            window.synchronize(logs)
        return logs

    def _arm(self, n: int) -> None:
        """Rebuild the train function with every recording hook on (see ManifestRecorder)."""
        if window.profiler_busy():
            # Someone else's profiler holds the session: do not pay for a retrace
            # whose trace we could not write.
            return
        self._armed = True
        self._arm_batch = n
        self._recorder.arm(self.model)
        self._install_step_wrapper()

    def _disarm(self) -> None:
        """Remove the hooks and switch run metadata off (the traced call has run)."""
        self._armed = False
        self._recorder.disarm()
        if not self._tracing:
            self._remove_step_wrapper()

    def _start_window(self) -> None:
        import tensorflow as tf

        if window.profiler_busy():
            self._warn(
                "MetalProfileCallback: another profiler session is running (is "
                "keras.callbacks.TensorBoard(profile_batch=...) profiling the same batches?); "
                f"batches {self._start_batch}..{self._stop_batch} of this fit are not profiled "
                "by tb-metal. Set the stock callback's profile_batch=0."
            )
            if self._armed:
                self._disarm()
            return
        os.makedirs(self.profile_dir, exist_ok=True)
        self._existing_traces = set(window.trace_files(self.profile_dir))
        try:
            tf.profiler.experimental.start(self.profile_dir, options=self.profiler_options)
        except Exception as e:
            self._warn(f"MetalProfileCallback: the profiler did not start ({e}); no trace.")
            return
        self._tracing = True
        self._install_step_wrapper()

    def _install_step_wrapper(self) -> None:
        # fit() looks `model.train_function` up for every batch: swapping it for the
        # window's length marks the steps (and cleans up if a step raises) without any
        # hook outside the window.
        if self._step_wrapper is None:
            self._step_wrapper = window.ProfiledStep(self, self.model.train_function)
            self.model.train_function = self._step_wrapper

    def _remove_step_wrapper(self) -> None:
        wrapper, self._step_wrapper = self._step_wrapper, None
        if wrapper is not None and self.model.train_function is wrapper:
            self.model.train_function = wrapper.train_function

    def _abort(self, error: BaseException) -> None:
        """A step raised (fit() will not call on_train_end): restore the model, keep the trace."""
        try:
            self._recorder.warnings.append(
                f"training raised {type(error).__name__} inside the profiled window; "
                "the trace stops there"
            )
            if self._armed:
                self._disarm()
            if self._tracing:
                self._stop_window()
        finally:
            self._remove_step_wrapper()

    def _stop_window(self) -> None:
        import tensorflow as tf

        if self._armed:
            self._disarm()
        self._tracing = False
        self._remove_step_wrapper()
        window.avoid_session_collision(self.profile_dir)
        try:
            tf.profiler.experimental.stop()
        except Exception as e:
            self._warn(f"MetalProfileCallback: the profiler did not stop cleanly ({e}).")
            return
        new = [p for p in window.trace_files(self.profile_dir) if p not in self._existing_traces]
        if not new:
            # Same session folder name as an earlier trace (rewritten): take the newest.
            new = sorted(window.trace_files(self.profile_dir), key=os.path.getmtime)[-1:]
        for path in new:
            self.trace_paths.append(Path(path))
            self._write_manifest(Path(path))
        self._write_step_graph()
        from .summary import print_after_window

        print_after_window(new, (self.params or {}).get("verbose", 1), self.summary)

    def _write_step_graph(self) -> None:
        """For a model the recording hooks cannot follow (tf_keras), the step's graphs in
        the run's event file, where the view reads a stock run's (tape sums, calls)."""
        run_metadata, self._recorder.step_graph = self._recorder.step_graph, None
        if run_metadata is None:
            return
        try:
            write_step_graph(self.profile_dir, run_metadata, self._start_batch)
        except Exception as e:
            self._recorder.warn_missing("step graph", e)

    def _write_manifest(self, xplane_path: Path) -> None:
        """Build and write the manifest; every part that fails becomes a warning instead."""
        try:
            profile = profile_info(self, self.model)
        except Exception as e:
            self._recorder.warn_missing("profile window", e)
            profile = {}
        data = self._recorder.build(self.model, profile)
        if self._doctor is not None and isinstance(data.get("environment"), dict):
            data["environment"]["doctor"] = self._doctor
            if self._doctor.get("status") == "broken":
                # Shown at the top of the run in the tab and the CLI.
                data.setdefault("warnings", []).append(self._doctor["summary"])
        try:
            self.manifest_paths.append(write_manifest(xplane_path, data))
        except Exception as e:
            self._warn(
                f"MetalProfileCallback: the tb-metal manifest for {xplane_path} was not written "
                f"({type(e).__name__}: {e}); the trace is there, attribution will be heuristic."
            )

    # -- helpers -----------------------------------------------------------------------

    def _check_setup(self) -> None:
        """tb-metal doctor on this process, once: a loud warning when the Mac set-up is broken
        (tensorflow-metal installed but no GPU visible, a pair that cannot load)."""
        if self._doctor is not None:
            return
        try:
            from . import doctor
            from .recording.environment import environment

            self._doctor = doctor.check_at_fit_start(environment())
        except Exception as e:  # the check must never stop training
            self._warn(f"MetalProfileCallback: the set-up check failed ({e}).")

    def _warn(self, message: str) -> None:
        _warn_user(message)

    def _warn_about_stock_profiler(self) -> None:
        """Warn when a keras.callbacks.TensorBoard in the same fit profiles overlapping batches."""
        try:
            frame = sys._getframe(1)
        except Exception:
            return
        # CallbackList.on_train_begin calls us directly: its `self` holds every callback.
        for _ in range(4):
            if frame is None:
                return
            owner = frame.f_locals.get("self")
            # Keras 3's list or tf_keras's (Keras 2 fits call this callback too).
            if type(owner).__name__ == "CallbackList" and hasattr(owner, "callbacks"):
                break
            frame = frame.f_back
        else:
            return
        overlap = window.stock_profiler_overlap(owner, self._start_batch, self._stop_batch)
        if overlap is not None:
            a, b = overlap
            self._warn(
                f"MetalProfileCallback: keras.callbacks.TensorBoard(profile_batch=({a}, {b})) "
                f"also profiles batches {a}..{b}; only one profiler can run at a time, so "
                "whichever callback comes first in the list wins. Set the stock callback's "
                "profile_batch=0: this callback writes the same trace (in the 'train' run) "
                "plus the tb-metal manifest."
            )


__all__ = ["MetalProfileCallback"]
