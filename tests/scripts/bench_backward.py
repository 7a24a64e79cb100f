"""Print the layer benchmark's backward (and forward) per call over several runs.

    python tests/scripts/bench_backward.py [RUNS]

Issue 10 saw backward exactly 0 for BatchNormalization, Dense and Conv2D in each of 4 runs
(a clipped difference of two medians). This prints min and mean of each over RUNS fresh
benchmarks of a small CNN, with the overhead subtracted, and counts figures <= 0.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tests.test_layer_bench import _bench  # noqa: E402

L = keras.layers
runs = int(sys.argv[1]) if len(sys.argv) > 1 else 4
model = keras.Sequential(
    [keras.Input((24, 24, 16)), L.Conv2D(32, 3, name="conv2d"),
     L.BatchNormalization(name="batch_normalization"), L.MaxPooling2D(name="pool"),
     L.Flatten(name="flatten"), L.Dense(128, name="dense"), L.Dense(3, name="head")],
    name="m",
)  # fmt: skip
x = np.random.rand(32, 24, 24, 16).astype("float32")
y = np.random.randint(0, 3, 32)
seen: dict[str, dict[str, list[int]]] = {}
for _ in range(runs):
    for name, r in _bench(model, x, y, repeats=20, warmup=3).items():
        for what in ("forward", "backward", "call_overhead", "backward_overhead"):
            if r[f"{what}_ps"] is not None:
                seen.setdefault(name, {}).setdefault(what, []).append(r[f"{what}_ps"])
print(f"{runs} runs, 20 repeats each, per call (µs): min / mean; '<=0' counts figures <= 0")
for name, figs in seen.items():
    cells = []
    for what, v in figs.items():
        bad = sum(1 for x in v if x <= 0)
        cells.append(f"{what} {min(v) / 1e6:.1f} / {sum(v) / len(v) / 1e6:.1f} (<=0: {bad})")
    print(f"{name:20} " + "  ".join(cells))
