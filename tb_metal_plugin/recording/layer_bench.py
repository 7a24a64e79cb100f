"""Time each layer's forward and backward pass in isolation on each device (opt-in)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from .layers import CallLog, LayerCall, _input_shapes
from .scopes import iter_layers


def default_devices() -> list[str]:
    """Return the first logical device of each type (CPU, GPU): what 'each device' means here."""
    import tensorflow as tf

    chosen: dict[str, str] = {}
    for device in tf.config.list_logical_devices():
        if device.device_type in ("CPU", "GPU"):
            chosen.setdefault(device.device_type, device.name)
    return list(chosen.values())


def benchmark_layers(
    model: Any,
    calls: CallLog,
    devices: list[str] | None = None,
    repeats: int = 20,
    warmup: int = 3,
    batch_size: int | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Return (`layer_benchmarks` entries, warnings); the model's variables are restored after.

    Each layer's `call` is run at the input specs of its first traced call, inside a
    `tf.function` (like training), under `tf.device(device)`. Forward = the call alone;
    backward = (call + gradient w.r.t. trainable weights and float inputs) minus forward.
    Each run ends with `.numpy()` on a scalar that depends on every output, so the time
    includes the device finishing the work (asynchronous GPUs, Metal). That fixed cost
    of calling a function and fetching a scalar is measured alone as `call_overhead_ps`
    and left in `forward_ps` (not subtracted: it is part of what a tiny layer costs).
    """
    import tensorflow as tf

    devices = devices or default_devices()
    results: list[dict[str, Any]] = []
    problems: list[str] = []
    # Running a layer in training mode can move state (BatchNormalization statistics,
    # dropout seed generators): snapshot every variable and put it back afterwards.
    snapshot = [(v, v.numpy()) for v in model.variables]
    try:
        for path, layer in iter_layers(model):
            seen = calls.calls.get(path)
            if not seen or path == (model.name,):
                continue
            call = seen[0]
            for device in devices:
                try:
                    fwd, bwd, overhead = _time_layer(
                        tf, layer, call, device, repeats, warmup, batch_size
                    )
                except Exception as e:  # one odd layer must not lose the others
                    problems.append(
                        f"layer benchmark skipped for {'/'.join(path)} on {device}: "
                        f"{type(e).__name__}: {e}"
                    )
                    continue
                results.append(
                    {
                        "path": list(path),
                        "device": tf.DeviceSpec.from_string(device).device_type or device,
                        "device_name": device,
                        "forward_ps": fwd,
                        "backward_ps": bwd,
                        "call_overhead_ps": overhead,
                        "repeats": repeats,
                        "warmup": warmup,
                        "input_shapes": _input_shapes(call),
                    }
                )
    finally:
        for variable, value in snapshot:
            variable.assign(value)
    return results, problems


def _time_layer(
    tf: Any,
    layer: Any,
    call: LayerCall,
    device: str,
    repeats: int,
    warmup: int,
    batch_size: int | None,
) -> tuple[int, int | None, int]:
    with tf.device(device):
        args, kwargs = _materialize(tf, call, batch_size)
        float_inputs = [
            t for t in tf.nest.flatten((args, kwargs)) if _is_tensor(tf, t) and t.dtype.is_floating
        ]
        weights = list(layer.trainable_weights)

        def scalar(outputs: Any) -> Any:
            # One scalar that depends on every output: cheap to fetch, forces completion.
            parts = [
                tf.reduce_sum(tf.cast(o, tf.float32))
                for o in tf.nest.flatten(outputs)
                if _is_tensor(tf, o)
            ]
            return tf.add_n(parts) if parts else tf.constant(0.0)

        @tf.function(reduce_retracing=True)
        def forward(*inputs: Any) -> Any:
            a, k = tf.nest.pack_sequence_as((args, kwargs), list(inputs))
            return scalar(layer.call(*a, **k))

        @tf.function(reduce_retracing=True)
        def forward_backward(*inputs: Any) -> Any:
            a, k = tf.nest.pack_sequence_as((args, kwargs), list(inputs))
            sources = [t for t in tf.nest.flatten((a, k)) if _is_float_tensor(tf, t)]
            with tf.GradientTape() as tape:
                tape.watch(sources)
                out = scalar(layer.call(*a, **k))
            grads = tape.gradient(out, weights + sources)
            present = [tf.reduce_sum(g) for g in grads if g is not None]
            return out + (tf.add_n(present) if present else 0.0)

        @tf.function
        def empty() -> Any:
            return tf.constant(0.0)

        flat = tf.nest.flatten((args, kwargs))
        runs = {
            "overhead": lambda: empty().numpy(),
            "forward": lambda: forward(*flat).numpy(),
        }
        if weights or float_inputs:
            runs["both"] = lambda: forward_backward(*flat).numpy()
        medians = _medians_ps(runs, repeats, warmup)
    fwd = medians["forward"]
    bwd = max(medians["both"] - fwd, 0) if "both" in medians else None
    return fwd, bwd, medians["overhead"]


def _medians_ps(runs: dict[str, Any], repeats: int, warmup: int) -> dict[str, int]:
    for run in runs.values():
        for _ in range(max(warmup, 1)):  # the first run traces the tf.function
            run()
    samples: dict[str, list[int]] = {name: [] for name in runs}
    # Interleaved, so that a slow spell of the machine hits every variant alike
    # (backward is a difference of two medians).
    for _ in range(max(repeats, 1)):
        for name, run in runs.items():
            t0 = time.perf_counter_ns()
            run()
            samples[name].append(time.perf_counter_ns() - t0)
    return {name: int(statistics.median(s) * 1000) for name, s in samples.items()}


def _materialize(tf: Any, call: LayerCall, batch_size: int | None) -> tuple[Any, Any]:
    def make(value: Any) -> Any:
        if not isinstance(value, tf.TensorSpec):
            return value
        # The batch dimension is unknown when the step was traced with a relaxed shape.
        shape = [batch_size or 32 if d is None else d for d in value.shape.as_list()]
        if value.dtype.is_floating or value.dtype.is_complex:
            return tf.cast(tf.random.uniform(shape), value.dtype)
        if value.dtype == tf.bool:
            return tf.zeros(shape, tf.bool)
        # Integer inputs are usually indices (Embedding): zero is valid for any table.
        return tf.zeros(shape, value.dtype)

    return tf.nest.map_structure(make, (call.args, call.kwargs))


def _is_tensor(tf: Any, value: Any) -> bool:
    return isinstance(value, (tf.Tensor, tf.Variable))


def _is_float_tensor(tf: Any, value: Any) -> bool:
    return _is_tensor(tf, value) and value.dtype.is_floating
