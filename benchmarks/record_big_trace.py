"""Record a large real trace for the reader benchmark (not committed: tens of MB).

    python benchmarks/record_big_trace.py [LOGDIR] [STEPS]    (default: .bench/big, 80 steps)

ResNet50 (random weights) on 32x32 inputs, batch 8, with STEPS profiled batches; on a
2-core CPU this takes about three minutes and writes a 55-65 MB `.xplane.pb`.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str]) -> int:
    """Train a few ResNet50 steps under the stock profiler and print the trace's path."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logdir", nargs="?", default=".bench/big")
    ap.add_argument("steps", nargs="?", type=int, default=80, help="profiled steps (7: ~5 MB)")
    args = ap.parse_args(argv[1:])  # before importing TensorFlow: --help records nothing
    logdir, steps = args.logdir, args.steps

    import keras
    import numpy as np

    model = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=10)
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    n = 8 * (steps + 3)
    x = rng.random((n, 32, 32, 3), dtype="float32")
    y = rng.integers(0, 10, n)
    tb = keras.callbacks.TensorBoard(logdir, profile_batch=(2, steps + 1))
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[tb], verbose=0)
    for path in glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True):
        print(path, os.path.getsize(path) // (1 << 20), "MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
