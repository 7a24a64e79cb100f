"""Shared helpers for the plugin and browser tests: real traces recorded with TensorFlow.

No test functions here. Recording takes ~10 s, so one pytest process records once
(``shared_logdir``); set TB_METAL_TEST_LOGDIR to reuse a logdir recorded earlier.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

# Two runs of the same small model, the second one wider and with one extra layer, so a
# comparison has matched layers with different times and one unmatched layer.
RECORD_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    from keras import layers

    logdir = sys.argv[1]

    def build(width, extra):
        inp = keras.Input((32,), name="features")
        x = layers.Dense(width, activation="relu", name="dense_in")(inp)
        if extra:
            x = layers.Dense(width, activation="relu", name="extra")(x)
        x = layers.Dense(width, activation="relu", name="hidden")(x)
        out = layers.Dense(4, name="head")(x)
        model = keras.Model(inp, out, name="mlp")
        model.compile(optimizer="adam", loss="mse")
        return model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 32)).astype("float32")
    y = rng.normal(size=(512, 4)).astype("float32")
    for run, width, extra in (("baseline", 32, False), ("wide", 256, True)):
        model = build(width, extra)
        tb = keras.callbacks.TensorBoard(log_dir=f"{logdir}/{run}", profile_batch=(2, 4))
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[tb])
    """
)


# A run for the Metal readiness view: RandomRotation (ImageProjectiveTransformV3, no Metal
# kernel), a py_function layer (CPU-only by nature), then a convolution and a dense layer.
AUGMENT_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    import tensorflow as tf
    from keras import layers

    class PyTanh(layers.Layer):
        def call(self, x):
            y = tf.py_function(lambda a: tf.tanh(a), [x], tf.float32)
            y.set_shape(x.shape)
            return y

    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        layers.RandomRotation(0.1, name="rotate"),
        layers.Conv2D(8, 3, activation="relu", name="conv"),
        layers.Flatten(name="flatten"),
        PyTanh(name="py_tanh"),
        layers.Dense(4, name="head"),
    ], name="augment")
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    x = rng.random((96, 16, 16, 3), dtype="float32")
    y = rng.normal(size=(96, 4)).astype("float32")
    tb = keras.callbacks.TensorBoard(log_dir=f"{sys.argv[1]}/augment", profile_batch=(2, 3))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[tb])
    """
)


def record_logdir(logdir: Path, script: str = RECORD_SCRIPT) -> Path:
    """Record real profiled runs under ``logdir`` (by default "baseline" and "wide")."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    subprocess.run([sys.executable, "-c", script, str(logdir)], check=True, env=env, timeout=600)
    return logdir


_RECORDED: dict[str, Path] = {}


def shared_logdir(tmp_path_factory) -> Path:
    """The logdir of this pytest process (recorded on first use), never modified by tests."""
    given = os.environ.get("TB_METAL_TEST_LOGDIR")
    if given:
        return Path(given)
    if "logdir" not in _RECORDED:
        _RECORDED["logdir"] = record_logdir(tmp_path_factory.mktemp("metal_logdir"))
    return _RECORDED["logdir"]


def augment_logdir(tmp_path_factory) -> Path:
    """A logdir with one run "augment" (see AUGMENT_SCRIPT), recorded once per process;
    TB_METAL_TEST_AUGMENT_LOGDIR reuses one recorded earlier."""
    given = os.environ.get("TB_METAL_TEST_AUGMENT_LOGDIR")
    if given:
        return Path(given)
    if "augment" not in _RECORDED:
        _RECORDED["augment"] = record_logdir(
            tmp_path_factory.mktemp("augment_logdir"), AUGMENT_SCRIPT
        )
    return _RECORDED["augment"]


# -- committed real traces and a real TensorBoard on loopback (robustness tests, benchmarks)

REPO = Path(__file__).resolve().parent.parent
DEMO_LOGS = REPO / "demo" / "logs"


def copy_demo_logdir(dest: Path, runs: tuple[str, ...] = ("cnn", "augment")) -> Path:
    """A private copy of some committed demo runs, to damage at will."""
    import shutil

    for run in runs:
        shutil.copytree(DEMO_LOGS / run, dest / run)
    return dest


ATTRIBUTION_FIXTURES = REPO / "tests" / "fixtures" / "attribution"


def fixture_logdir(dest: Path, runs: tuple[str, ...] = ("conv_bn", "lstm")) -> Path:
    """Committed real traces (tests/fixtures/attribution) as runs of one logdir: the fast
    tier's logdir, recorded by nobody."""
    import shutil

    for run in runs:
        shutil.copytree(ATTRIBUTION_FIXTURES / run, dest / run)
    return dest


def bigger_trace(data: bytes, factor: int) -> bytes:
    """The same trace with its host lines repeated ``factor`` times (a slower load)."""
    from tb_metal_plugin.xplane import XSpace

    space = XSpace.FromString(data)
    for plane in space.planes:
        if plane.name == "/host:CPU":
            lines = list(plane.lines)
            for _ in range(factor - 1):
                for ln in lines:
                    plane.lines.add().CopyFrom(ln)
    return space.SerializeToString()


TB_LAUNCHER = textwrap.dedent(
    """
    import sys
    from tensorboard import program
    from tensorboard.plugins.core import core_plugin
    from tb_metal_plugin.plugin import MetalPlugin

    tb = program.TensorBoard(plugins=[core_plugin.CorePluginLoader(), MetalPlugin])
    tb.configure(argv=["tensorboard", "--logdir", sys.argv[1], "--host", "127.0.0.1",
                       "--port", sys.argv[2], "--reload_interval", "0"])
    sys.exit(tb.main())
    """
)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_tensorboard(logdir: Path, cache_dir: Path, timeout_s: float = 60.0):
    """A real TensorBoard serving the Metal plugin from this checkout on 127.0.0.1 only:
    (process, base URL of the plugin's routes). Stop it with ``proc.terminate()``."""
    import time
    import urllib.request

    port = free_port()
    env = dict(os.environ, TB_METAL_CACHE_DIR=str(cache_dir), TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-c", TB_LAUNCHER, str(logdir), str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/data/plugin/metal"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tensorboard exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/sessions", timeout=2) as r:
                if r.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("tensorboard did not answer in time")
