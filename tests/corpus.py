"""A varied corpus of real traces, recorded with tensorflow-cpu, with independent labels.

Each case trains a tiny model for a few steps under Keras's stock TensorBoard profiler
and, at the same time, records the exact name scope of every layer call
(`record_layer_scopes`). The expected layer of an op is then read off those recorded
scopes by plain string matching (`expected_layer`), independently of the attribution
code under test.

Run as a script to (re)build the corpus and print attribution accuracy:
    python -m tests.corpus /tmp/corpus
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CASES = (
    "sequential",
    "functional_collide",
    "subclassed",
    "nested",
    "shared",
    "lstm",
    "attention",
    "preprocessing",
    "steps_per_execution",
    "py_function",
    "conv_relu",
)


def subclassed_net(n_out: int):
    """A subclassed model with a subclassed block (a residual of two Dense) inside it."""
    import keras

    L = keras.layers

    class Block(L.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.a = L.Dense(16, name="inner_a")
            self.b = L.Dense(16, name="inner_b")

        def call(self, x):
            return self.b(keras.ops.relu(self.a(x))) + x

    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.proj = L.Dense(16, name="proj")
            self.block = Block(name="block")
            self.out = L.Dense(n_out, name="out")

        def call(self, x):
            return self.out(self.block(self.proj(x)))

    return Net()


def _build(case: str):
    import keras
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    L = keras.layers
    compile_kw: dict = {}
    if case == "sequential":
        model = keras.Sequential(
            [keras.Input((12,)), L.Dense(16, activation="relu"), L.Dropout(0.1), L.Dense(3)]
        )
        x = rng.random((64, 12), dtype="float32")
    elif case == "functional_collide":
        # A real `dense_1` next to an auto-named `dense`: their scopes collide.
        inp = keras.Input((12,))
        h = L.Dense(16, name="dense")(inp)
        h = L.Dense(16, name="dense_1")(h)
        h = L.LayerNormalization(name="ln_a0")(h)
        out = L.Dense(3, name="head")(L.Add()([h, L.Dense(16, name="skip")(inp)]))
        model = keras.Model(inp, out)
        x = rng.random((64, 12), dtype="float32")
    elif case == "subclassed":
        model = subclassed_net(3)
        x = rng.random((64, 12), dtype="float32")
    elif case == "nested":
        enc_in = keras.Input((12,))
        enc = keras.Model(
            enc_in, L.Dense(8, name="proj")(L.Dense(16, name="dense")(enc_in)), name="encoder"
        )
        inp = keras.Input((12,))
        model = keras.Model(inp, L.Dense(3, name="dense")(enc(inp)), name="outer")
        x = rng.random((64, 12), dtype="float32")
    elif case == "shared":
        inp = keras.Input((12,))
        shared = L.Dense(12, name="shared")
        model = keras.Model(inp, L.Dense(3, name="head")(shared(shared(inp))))
        x = rng.random((64, 12), dtype="float32")
    elif case == "lstm":
        model = keras.Sequential(
            [keras.Input((5, 4)), L.LSTM(8, name="lstm"), L.Dense(3, name="head")]
        )
        x = rng.random((32, 5, 4), dtype="float32")
    elif case == "attention":
        inp = keras.Input((6, 8))
        att = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha_0")(inp, inp)
        h = L.LayerNormalization(name="ln")(att + inp)
        out = L.Dense(3, name="head")(L.GlobalAveragePooling1D(name="pool")(h))
        model = keras.Model(inp, out)
        x = rng.random((32, 6, 8), dtype="float32")
    elif case == "preprocessing":
        inp = keras.Input((8, 8, 3))
        h = L.RandomFlip(name="flip")(inp)
        h = L.RandomRotation(0.1, name="rotate")(h)
        h = L.Conv2D(4, 3, name="conv")(h)
        out = L.Dense(3, name="head")(L.Flatten(name="flat")(h))
        model = keras.Model(inp, out)
        x = rng.random((32, 8, 8, 3), dtype="float32")
    elif case == "steps_per_execution":
        model = keras.Sequential(
            [keras.Input((12,)), L.Dense(16, name="hidden"), L.Dense(3, name="head")]
        )
        compile_kw["steps_per_execution"] = 2
        x = rng.random((64, 12), dtype="float32")
    elif case == "py_function":

        class NumpyOp(keras.layers.Layer):
            def call(self, x):
                y = tf.numpy_function(lambda a: np.tanh(a).astype("float32"), [x], tf.float32)
                y.set_shape(x.shape)
                return y

        inp = keras.Input((12,))
        h = NumpyOp(name="numpy_tanh")(L.Dense(12, name="pre")(inp))
        model = keras.Model(inp, L.Dense(3, name="head")(h))
        x = rng.random((64, 12), dtype="float32")
    elif case == "conv_relu":
        model = keras.Sequential(
            [
                keras.Input((8, 8, 3)),
                L.Conv2D(4, 3, name="conv"),
                L.ReLU(name="re_lu"),
                L.MaxPooling2D(name="pool"),
                L.Flatten(name="flat"),
                L.Dense(3, name="head"),
            ]
        )
        x = rng.random((32, 8, 8, 3), dtype="float32")
    else:
        raise ValueError(case)
    y = rng.integers(0, 3, len(x))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], **compile_kw)
    return model, x, y


def record_case(case: str, root: Path) -> Path:
    """Train one case with the stock profiler; write its trace and labels; return the run dir."""
    import keras

    from tb_metal_plugin.recording.scopes import record_layer_scopes

    run = root / case
    model, x, y = _build(case)
    tb = keras.callbacks.TensorBoard(str(run), profile_batch=(2, 3))
    with record_layer_scopes(model) as scopes:
        model.fit(x, y, batch_size=16, epochs=1, callbacks=[tb], verbose=0)
    labels = {"/".join(path): s for path, s in scopes.items() if s}
    (run / "labels.json").write_text(json.dumps(labels, indent=1))
    return run


def build(root: Path, cases=CASES) -> dict[str, Path]:
    """Record every case under root (skipping those already there)."""
    out = {}
    for case in cases:
        run = root / case
        out[case] = run if (run / "labels.json").exists() else record_case(case, root)
    return out


def _norm(components: list[str]) -> list[str]:
    return [c for c in components if c not in ("gradient_tape", "gradients")]


def expected_layer(op_name: str, labels: dict[str, list[str]]) -> tuple[str, ...] | None:
    """The layer whose recorded scope occurs in the op's name ending furthest right."""
    scope_part = "/" + "/".join(_norm(op_name.split("/")[:-1])) + "/"
    best = None
    for path, scopes in labels.items():
        for scope in scopes:
            needle = "/" + "/".join(_norm(scope.split("/"))) + "/"
            pos = scope_part.rfind(needle)
            if pos < 0:
                continue
            key = (pos + len(needle), len(needle))
            if best is None or key > best[0]:
                best = (key, tuple(path.split("/")))
    return best[1] if best else None


def accuracy(run: Path) -> dict:
    """Trace-only attribution against the recorded labels: per op and time-weighted."""
    from tb_metal_plugin import load_profile

    labels = json.loads((run / "labels.json").read_text())
    prof = load_profile(run)
    rows = prof.ops()["ops"]
    ok = n = 0
    ok_t = tot_t = 0
    wrong = []
    for r in rows:
        want = expected_layer(r["name"], labels)
        got = tuple(r["layer"]) if r["layer"] else None
        n += 1
        tot_t += r["self_ps"]
        if want == got:
            ok += 1
            ok_t += r["self_ps"]
        else:
            wrong.append((r["name"], r["type"], want, got))
    return {
        "ops": n,
        "correct": ok,
        "per_op": ok / n if n else 1.0,
        "time_weighted": ok_t / tot_t if tot_t else 1.0,
        "wrong": wrong,
    }


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tb_metal_corpus")
    runs = build(root)
    all_ops = all_ok = 0
    all_t = ok_t = 0.0
    for case, run in runs.items():
        acc = accuracy(run)
        all_ops += acc["ops"]
        all_ok += acc["correct"]
        print(
            f"{case:22s} ops {acc['ops']:4d}  per-op {100 * acc['per_op']:6.2f}%  "
            f"time-weighted {100 * acc['time_weighted']:6.2f}%"
        )
        for w in acc["wrong"][:8]:
            print("    wrong:", w)
    print(f"{'ALL':22s} ops {all_ops:4d}  per-op {100 * all_ok / all_ops:6.2f}%")
