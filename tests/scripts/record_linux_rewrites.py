"""Record the small real trace behind the Linux-rewrite checks of tests/test_readiness.py.

    python tests/scripts/record_linux_rewrites.py [LOGDIR]  (default tests/fixtures/linux_rewrites)

A transformer-style feed-forward block (Dense with GELU, LayerNormalization) plus a layer that
chains unary elementwise ops (abs -> sqrt -> exp). On Linux x86 tensorflow-cpu, oneDNN and
Grappler rewrite these into CPU-only op types (`_MklNativeFusedMatMul`, `_MklLayerNorm`,
`_UnaryOpsComposition`, ...) that a Mac run would not have: the readiness prediction must judge
them by the ops a Mac would run instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

L = keras.layers


class UnaryChain(keras.layers.Layer):
    """Three unary elementwise ops in a row: what Grappler fuses into _UnaryOpsComposition."""

    def call(self, x):
        return keras.ops.exp(keras.ops.sqrt(keras.ops.abs(x)) * -1.0)


def model() -> keras.Model:
    """A feed-forward block with GELU, a layer norm and a unary chain."""
    inp = keras.Input((16, 32))
    h = L.Dense(64, activation="gelu", name="ffn_in")(inp)
    h = L.Dense(32, name="ffn_out")(h)
    h = L.LayerNormalization(name="ln")(L.Add(name="residual")([inp, h]))
    h = UnaryChain(name="unary_chain")(h)
    out = L.Dense(4, name="head")(L.GlobalAveragePooling1D(name="pool")(h))
    return keras.Model(inp, out, name="ffn")


def main() -> None:
    """Train a few batches under the tb-metal callback, profiling two of them."""
    from tb_metal_plugin import MetalProfileCallback

    logdir = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/linux_rewrites")
    rng = np.random.default_rng(0)
    x = rng.random((64, 16, 32), dtype="float32")
    y = rng.integers(0, 4, len(x))
    m = model()
    m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = MetalProfileCallback(str(logdir / "ffn"), profile_batch=(3, 4))
    m.fit(x, y, batch_size=8, epochs=1, callbacks=[cb], verbose=0)


if __name__ == "__main__":
    main()
