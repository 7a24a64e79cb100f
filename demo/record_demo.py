"""Regenerate the demo logdir: three small Keras models trained for a few profiled steps.

    python demo/record_demo.py [LOGDIR]              (default: demo/logs)
    python demo/record_demo.py LOGDIR --only cnn --cpu-only --size 16

Every scenario is recorded twice: `<name>` on the default device (the Metal GPU on a Mac)
and `<name>_cpu` with the GPU hidden, for the side-by-side comparison. The CPU-only twin
runs in its own process because devices can only be hidden before TensorFlow starts.

Scenarios (one run each):
- cnn: Conv2D, MaxPooling2D, Flatten, Dense — all GPU on a Mac with tensorflow-metal.
- augment: RandomFlip and RandomRotation before a CNN — known to fall back to the CPU on Metal.
- custom_op: a layer calling tf.py_function — CPU only everywhere.

On macOS with tensorflow-metal the same script records Metal runs; on Linux it runs on the
CPU. Runs are recorded with the tb-metal callback (trace plus layer manifest, placement
and kernel registry).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Works from a checkout without installing: the package sits one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if "--cpu-only" in sys.argv:
    # Must happen before TensorFlow initialises its devices.
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

L = keras.layers


class PyTanh(keras.layers.Layer):
    """A custom layer whose op has no GPU kernel anywhere: tf.py_function (EagerPyFunc)."""

    def call(self, x):
        # py_function (unlike numpy_function) is differentiable, so training still works.
        y = tf.py_function(lambda a: tf.tanh(a), [x], tf.float32)
        y.set_shape(x.shape)
        return y


def cnn(size: int) -> keras.Model:
    """The all-GPU case."""
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            L.Conv2D(16, 3, activation="relu", name="conv1"),
            L.MaxPooling2D(name="pool1"),
            L.Conv2D(32, 3, activation="relu", name="conv2"),
            L.MaxPooling2D(name="pool2"),
            L.Flatten(name="flatten"),
            L.Dense(64, activation="relu", name="dense"),
            L.Dense(10, name="logits"),
        ],
        name="cnn",
    )


def augment(size: int) -> keras.Model:
    """Random augmentation layers in front of the CNN: the Metal fallback case."""
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            L.RandomFlip("horizontal", name="random_flip"),
            L.RandomRotation(0.1, name="random_rotation"),
            L.Conv2D(16, 3, activation="relu", name="conv1"),
            L.MaxPooling2D(name="pool1"),
            L.Flatten(name="flatten"),
            L.Dense(10, name="logits"),
        ],
        name="augment",
    )


def custom_op(size: int) -> keras.Model:
    """A custom layer with a CPU-only op between two dense layers."""
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            L.Flatten(name="flatten"),
            L.Dense(64, name="dense_in"),
            PyTanh(name="py_tanh"),
            L.Dense(10, name="logits"),
        ],
        name="custom_op",
    )


SCENARIOS = {"cnn": cnn, "augment": augment, "custom_op": custom_op}


def profiler_callback(log_dir: Path, profile_batch):
    """tb-metal's callback: the trace plus the manifest (layer tree, placement, kernels)."""
    from tb_metal_plugin import MetalProfileCallback

    return MetalProfileCallback(str(log_dir), profile_batch=profile_batch)


def record(
    name: str, logdir: Path, size: int = 32, batches: int = 6, run_name: str | None = None
) -> Path:
    """Train one scenario for a few batches, profiling two of them; return its run dir."""
    rng = np.random.default_rng(0)
    x = rng.random((16 * batches, size, size, 3), dtype="float32")
    y = rng.integers(0, 10, len(x))
    model = SCENARIOS[name](size)
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    run = logdir / (run_name or name)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[profiler_callback(run, (3, 4))])
    return run


def main(argv: list[str]) -> int:
    """Record the scenarios into LOGDIR (replacing those runs), each with its CPU-only twin."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logdir", nargs="?", default=str(Path(__file__).parent / "logs"))
    ap.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    ap.add_argument("--size", type=int, default=32, help="image side (tiny for tests)")
    ap.add_argument("--cpu-only", action="store_true", help="hide the GPU; run <name>_cpu")
    ap.add_argument("--no-twin", action="store_true", help="skip the CPU-only twin run")
    args = ap.parse_args(argv[1:])
    logdir = Path(args.logdir)
    for name in args.only or SCENARIOS:
        run_name = f"{name}_cpu" if args.cpu_only else name
        shutil.rmtree(logdir / run_name, ignore_errors=True)
        run = record(name, logdir, size=args.size, run_name=run_name)
        print(f"recorded {run}")
        if not args.cpu_only and not args.no_twin:
            cmd = [
                sys.executable,
                __file__,
                str(logdir),
                "--only",
                name,
                "--cpu-only",
                "--size",
                str(args.size),
            ]
            subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
