"""Regenerate the demo logdir: three small Keras models trained for a few profiled steps.

    python demo/record_demo.py [LOGDIR]      (default: demo/logs)

Scenarios (one run each):
- cnn: Conv2D, MaxPooling2D, Flatten, Dense — all GPU on a Mac with tensorflow-metal.
- augment: RandomFlip and RandomRotation before a CNN — known to fall back to the CPU on Metal.
- custom_op: a layer calling tf.py_function — CPU only everywhere.

On macOS with tensorflow-metal the same script records Metal runs; on Linux it runs on the
CPU. Runs are recorded with the tb-metal callback when it is available (layer manifest,
placement, kernel registry), else with Keras's stock TensorBoard profiler.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
    return keras.Sequential([
        keras.Input((size, size, 3)),
        L.Conv2D(16, 3, activation="relu", name="conv1"),
        L.MaxPooling2D(name="pool1"),
        L.Conv2D(32, 3, activation="relu", name="conv2"),
        L.MaxPooling2D(name="pool2"),
        L.Flatten(name="flatten"),
        L.Dense(64, activation="relu", name="dense"),
        L.Dense(10, name="logits"),
    ], name="cnn")


def augment(size: int) -> keras.Model:
    """Random augmentation layers in front of the CNN: the Metal fallback case."""
    return keras.Sequential([
        keras.Input((size, size, 3)),
        L.RandomFlip("horizontal", name="random_flip"),
        L.RandomRotation(0.1, name="random_rotation"),
        L.Conv2D(16, 3, activation="relu", name="conv1"),
        L.MaxPooling2D(name="pool1"),
        L.Flatten(name="flatten"),
        L.Dense(10, name="logits"),
    ], name="augment")


def custom_op(size: int) -> keras.Model:
    """A custom layer with a CPU-only op between two dense layers."""
    return keras.Sequential([
        keras.Input((size, size, 3)),
        L.Flatten(name="flatten"),
        L.Dense(64, name="dense_in"),
        PyTanh(name="py_tanh"),
        L.Dense(10, name="logits"),
    ], name="custom_op")


SCENARIOS = {"cnn": cnn, "augment": augment, "custom_op": custom_op}


def profiler_callback(log_dir: Path, profile_batch):
    """The tb-metal callback when it is importable, else Keras's stock profiler."""
    try:
        from tb_metal_plugin import MetalProfileCallback
    except (ImportError, AttributeError):
        return keras.callbacks.TensorBoard(str(log_dir), profile_batch=profile_batch)
    return MetalProfileCallback(str(log_dir), profile_batch=profile_batch)


def record(name: str, logdir: Path, size: int = 32, batches: int = 6) -> Path:
    """Train one scenario for a few batches, profiling two of them; return its run dir."""
    rng = np.random.default_rng(0)
    x = rng.random((16 * batches, size, size, 3), dtype="float32")
    y = rng.integers(0, 10, len(x))
    model = SCENARIOS[name](size)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    run = logdir / name
    model.fit(x, y, batch_size=16, epochs=1, verbose=0,
              callbacks=[profiler_callback(run, (3, 4))])
    return run


def main(argv: list[str]) -> int:
    """Record every scenario into LOGDIR (replacing what was there)."""
    logdir = Path(argv[1] if len(argv) > 1 else Path(__file__).parent / "logs")
    for name in SCENARIOS:
        shutil.rmtree(logdir / name, ignore_errors=True)
        run = record(name, logdir)
        print(f"recorded {run}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
