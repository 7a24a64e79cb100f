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


# What the figures are, written into every entry so a reader never has to guess.
METHOD = (
    "synchronised wall time around a compiled call: host clock from the call until a scalar "
    "that depends on every output has been fetched, minus the same for an empty call"
)


def benchmark_layers(
    model: Any,
    calls: CallLog,
    devices: list[str] | None = None,
    repeats: int = 20,
    warmup: int = 3,
    batch_size: int | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Return (`layer_benchmarks` entries, warnings); the model's variables are restored after.

    Each layer's `call` runs at the input specs of its first traced call (batch dimension
    `batch_size` when given), compiled with `tf.function` as in training, under
    `tf.device(device)`. Forward and backward are each timed directly, per call:
    - forward: the compiled call, ending with `.numpy()` on a scalar that depends on every
      output, so the time includes the device finishing the work (asynchronous GPUs, Metal);
    - backward: the forward is run (untimed) under a gradient tape; then the tape's gradient,
      one compiled backward function w.r.t. the trainable weights and float inputs, is timed
      up to the fetch of a scalar that depends on every gradient.
    The fixed cost of an empty compiled call and fetch (`call_overhead_ps`) and of an empty
    gradient (`backward_overhead_ps`) are measured the same way (their p10: the uncontended
    cost) and subtracted, so a tiny layer is not reported as the cost of calling it. Figures
    are the median and p10-p90 over `repeats` interleaved runs, in picoseconds per call.
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
                    with tf.device(device):
                        figures = _time_layer(tf, layer, call, repeats, warmup, batch_size)
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
                        "unit": "per_call",
                        "method": METHOD,
                        **figures,
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
    tf: Any, layer: Any, call: LayerCall, repeats: int, warmup: int, batch_size: int | None
) -> dict[str, Any]:
    """Every figure of one layer on the current device (the caller's `tf.device` scope)."""
    args, kwargs = _materialize(tf, call, batch_size)
    flat = tf.nest.flatten((args, kwargs))
    sources = [t for t in flat if _is_float_tensor(tf, t)]
    targets = list(layer.trainable_weights) + sources

    def pack(inputs: Any) -> tuple[Any, Any]:
        return tf.nest.pack_sequence_as((args, kwargs), list(inputs))

    @tf.function(reduce_retracing=True)
    def forward(*inputs: Any) -> Any:
        a, k = pack(inputs)
        return _scalar(tf, layer.call(*a, **k))

    @tf.function(reduce_retracing=True)
    def empty(*inputs: Any) -> Any:
        return tf.constant(0.0)

    @tf.function(reduce_retracing=True)
    def probe(grads: Any) -> Any:
        # One element of each gradient: depends on the whole backward function having run,
        # costs next to nothing itself.
        return tf.add_n([tf.cast(tf.reshape(g, [-1])[0], tf.float32) for g in grads])

    anchor = tf.Variable(1.0)

    @tf.function
    def trivial() -> Any:
        return anchor * 2.0

    def timed_forward() -> int:
        t0 = time.perf_counter_ns()
        forward(*flat).numpy()
        return time.perf_counter_ns() - t0

    def timed_empty() -> int:
        t0 = time.perf_counter_ns()
        empty(*flat).numpy()
        return time.perf_counter_ns() - t0

    def timed_gradient(run: Any, wrt: list) -> int:
        with tf.GradientTape() as tape:
            tape.watch(sources)
            out = run()
        out.numpy()  # the forward is finished before the clock starts
        t0 = time.perf_counter_ns()
        grads = [g for g in tape.gradient(out, wrt) if g is not None]
        if grads:
            probe(grads).numpy()
        return time.perf_counter_ns() - t0

    runs = {"call_overhead": timed_empty, "forward": timed_forward}
    if targets:
        runs["backward_overhead"] = lambda: timed_gradient(trivial, [anchor])
        runs["backward"] = lambda: timed_gradient(lambda: forward(*flat), targets)
    samples = _samples(runs, repeats, warmup)
    out: dict[str, Any] = {"batch_size": _batch_of(args, kwargs, tf)}
    for what, base in (("forward", "call_overhead"), ("backward", "backward_overhead")):
        if what not in samples:
            # Nothing to differentiate (no trainable weights, no float inputs).
            out.update(dict.fromkeys(_keys(what) + _keys(base), None))
            out[f"{what}_gross_ps"] = None
            continue
        over = _summary(samples[base], 0)
        # The overhead is a fixed cost that a busy machine only ever adds to: its p10 is
        # its uncontended cost. (A median taken on a loaded machine can exceed the gross
        # time of a whole layer and push the figure below zero.)
        out[f"{base}_ps"] = over["p10"]
        out[f"{base}_median_ps"] = over["median"]
        out[f"{base}_p90_ps"] = over["p90"]
        net = _summary(samples[what], over["p10"])
        out[f"{what}_ps"] = net["median"]
        out[f"{what}_p10_ps"] = net["p10"]
        out[f"{what}_p90_ps"] = net["p90"]
        out[f"{what}_gross_ps"] = net["median"] + over["p10"]
    out["overhead_subtracted"] = True
    return out


def _scalar(tf: Any, outputs: Any) -> Any:
    """One scalar that depends on every output: cheap to fetch, forces completion."""
    parts = [
        tf.reduce_sum(tf.cast(o, tf.float32)) for o in tf.nest.flatten(outputs) if _is_tensor(tf, o)
    ]
    return tf.add_n(parts) if parts else tf.constant(0.0)


def _samples(runs: dict[str, Any], repeats: int, warmup: int) -> dict[str, list[int]]:
    """Nanosecond samples per run; the first runs trace the functions and are dropped."""
    for run in runs.values():
        for _ in range(max(warmup, 1)):
            run()
    samples: dict[str, list[int]] = {name: [] for name in runs}
    # Interleaved, in a rotating order, so that a slow spell of the machine hits every
    # variant alike.
    names = list(runs)
    for i in range(max(repeats, 1)):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            samples[name].append(runs[name]())
    return samples


def _summary(ns: list[int], minus_ps: int) -> dict[str, int]:
    """Median, p10 and p90 of samples (ns) in picoseconds, less a fixed overhead (ps)."""
    ps = sorted(v * 1000 for v in ns)
    if len(ps) > 1:
        cuts = statistics.quantiles(ps, n=10, method="inclusive")
        p10, p90 = cuts[0], cuts[-1]
    else:
        p10 = p90 = ps[0]
    # Not clipped at zero: a layer cheaper than the overhead's noise shows as such.
    return {
        "median": int(statistics.median(ps)) - minus_ps,
        "p10": int(p10) - minus_ps,
        "p90": int(p90) - minus_ps,
    }


def _keys(what: str) -> list[str]:
    if what.endswith("overhead"):
        return [f"{what}_ps", f"{what}_median_ps", f"{what}_p90_ps"]
    return [f"{what}_ps", f"{what}_p10_ps", f"{what}_p90_ps"]


def _batch_of(args: Any, kwargs: Any, tf: Any) -> int | None:
    """The batch dimension the layer was run at (first dimension of its first tensor input)."""
    for t in tf.nest.flatten((args, kwargs)):
        if _is_tensor(tf, t) and t.shape.rank:
            return int(t.shape[0])
    return None


def _materialize(tf: Any, call: LayerCall, batch_size: int | None) -> tuple[Any, Any]:
    def make(value: Any) -> Any:
        if not isinstance(value, tf.TensorSpec):
            return value
        dims = value.shape.as_list() if value.shape.rank is not None else []
        # The batch dimension: `batch_size` when given; else the traced one, or 32 when the
        # step was traced with a relaxed (unknown) batch size. Other unknown dimensions: 32.
        shape = [
            batch_size if (i == 0 and batch_size) else (32 if d is None else d)
            for i, d in enumerate(dims)
        ]
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
