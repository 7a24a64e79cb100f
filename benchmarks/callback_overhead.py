"""Per-batch cost of MetalProfileCallback outside and inside its window, vs a plain fit.

    TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/callback_overhead.py [--batches 300] [--rounds 5]

Batch times are the gaps between consecutive `on_train_batch_begin` calls of a timing
callback that overrides nothing else (so Keras keeps its asynchronous batch-end
dispatch, as in a plain fit with verbose=0). Each configuration runs in the same
process on a fresh model, rounds interleaved. Also measured: whether a model that was
profiled once trains slower afterwards than an identical model that never was.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tb_metal_plugin import MetalProfileCallback  # noqa: E402


class BatchClock(keras.callbacks.Callback):
    """Timestamps at each batch begin; only on_train_batch_begin is overridden."""

    def __init__(self) -> None:
        super().__init__()
        self.t: list[float] = []
        self.cpu: list[float] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.t.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def on_train_end(self, logs=None):
        self.on_train_batch_begin(-1)


class BatchEndNoop(keras.callbacks.Callback):
    """A callback that overrides on_train_batch_end (what the stock TensorBoard does)."""

    def on_train_batch_end(self, batch, logs=None):
        pass


def make_model():
    """An MLP whose batch takes a few milliseconds on two CPU cores."""
    inp = keras.Input((256,))
    h = inp
    for i in range(4):
        h = keras.layers.Dense(512, activation="relu", name=f"d{i}")(h)
    model = keras.Model(inp, keras.layers.Dense(10, name="head")(h))
    model.compile("adam", "mse")
    return model


def run(kind, batches, window, logdir, model=None):
    """Fit once; return (wall, cpu) seconds of each batch, batch 1 first."""
    rng = np.random.default_rng(0)
    x = rng.random((batches * 32, 256), dtype="float32")
    y = rng.random((batches * 32, 10), dtype="float32")
    model = model or make_model()
    clock = BatchClock()
    callbacks: list = [clock]
    if kind == "callback":
        callbacks.insert(0, MetalProfileCallback(logdir, profile_batch=window))
    elif kind == "stock_tensorboard":
        callbacks.insert(0, keras.callbacks.TensorBoard(logdir, profile_batch=window))
    elif kind == "batch_end_noop":
        callbacks.insert(0, BatchEndNoop())
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
    wall = [b - a for a, b in zip(clock.t, clock.t[1:], strict=False)]
    cpu = [b - a for a, b in zip(clock.cpu, clock.cpu[1:], strict=False)]
    return wall, cpu


def main() -> None:
    """Print per-batch milliseconds per configuration and region."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    start = args.batches // 4
    window = (start, start + 4)
    # Regions in 1-based batch numbers; the first 10 batches (tracing, warm-up) are left
    # out and the batch before the window (the callback's one-time retrace) is apart.
    regions = {
        "before window": range(11, start - 1),
        "after window": range(start + 10, args.batches + 1),
        "inside window": range(start, start + 5),
        "batch start-1": range(start - 1, start),
    }
    kinds = ["plain", "callback", "stock_tensorboard", "batch_end_noop"]
    # Per round, the median of each region; reported: the median over rounds, which
    # holds up on a shared machine where single batches jump by 2x.
    rounds: dict[str, dict[str, list[tuple[float, float]]]] = {
        k: {r: [] for r in regions} for k in kinds
    }
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for kind in kinds:
                wall, cpu = run(kind, args.batches, window, os.path.join(tmp, f"{kind}{round_}"))
                for region, numbers in regions.items():
                    w = statistics.median(wall[n - 1] for n in numbers)
                    c = statistics.median(cpu[n - 1] for n in numbers)
                    rounds[kind][region].append((w, c))
        leftover = _leftover(args, tmp)
        hook_ns = _hook_cost(tmp)
    print(
        f"batches={args.batches} rounds={args.rounds} window={window}: per-batch ms, "
        "wall / process CPU (median over rounds of each round's median)"
    )
    print(f"{'configuration':<20}" + "".join(f"{r:>20}" for r in regions))
    summary: dict[str, dict[str, tuple[float, float]]] = {}
    for kind in kinds:
        cells = []
        for region in regions:
            w = statistics.median(v[0] for v in rounds[kind][region]) * 1e3
            c = statistics.median(v[1] for v in rounds[kind][region]) * 1e3
            summary.setdefault(kind, {})[region] = (w, c)
            cells.append(f"{f'{w:.2f} / {c:.2f}':>20}")
        print(f"{kind:<20}" + "".join(cells))
    base = summary["plain"]
    for kind in kinds[1:]:
        for region in ("before window", "after window", "inside window"):
            w, c = summary[kind][region]
            print(
                f"{kind:<18} {region:<14} wall {100 * (w / base[region][0] - 1):+6.1f}%  "
                f"cpu {100 * (c / base[region][1] - 1):+6.1f}%  vs plain, same batches"
            )
    print(
        "after a profiled fit, later fits of the same model (it keeps the rebuilt train "
        f"function) vs a twin never profiled: wall {leftover[0]:+.1f}%, cpu {leftover[1]:+.1f}%"
    )
    print(f"on_train_batch_begin outside the window: {hook_ns:.0f} ns per call")


def _hook_cost(tmp, calls=200_000):
    """Nanoseconds per on_train_batch_begin call once the window is past."""
    cb = MetalProfileCallback(tmp, profile_batch=(2, 3))
    cb._batch = 10  # past the window: the state every later batch of the fit sees
    t0 = time.perf_counter_ns()
    for i in range(calls):
        cb.on_train_batch_begin(i)
    return (time.perf_counter_ns() - t0) / calls


def _leftover(args, tmp):
    """Percent difference of later fits' batch time: profiled-once model vs twin."""
    profiled, twin = make_model(), make_model()
    run("callback", 20, (3, 5), os.path.join(tmp, "leftover"), model=profiled)
    run("plain", 20, (3, 5), tmp, model=twin)
    per: dict[str, list[tuple[float, float]]] = {"profiled": [], "twin": []}
    for _ in range(args.rounds):
        for name, model in (("profiled", profiled), ("twin", twin)):
            wall, cpu = run("plain", args.batches // 2, (0, 0), tmp, model=model)
            per[name].append((statistics.median(wall[10:]), statistics.median(cpu[10:])))
    a = [statistics.median(v[i] for v in per["profiled"]) for i in (0, 1)]
    b = [statistics.median(v[i] for v in per["twin"]) for i in (0, 1)]
    return 100 * (a[0] / b[0] - 1), 100 * (a[1] / b[1] - 1)


if __name__ == "__main__":
    main()
