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


def record_logdir(logdir: Path) -> Path:
    """Record two real profiled runs ("baseline", "wide") under ``logdir`` and return it."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    subprocess.run(
        [sys.executable, "-c", RECORD_SCRIPT, str(logdir)], check=True, env=env, timeout=600
    )
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
