"""The callback's layer benchmark: overhead subtracted, spread reported, backward measured.

Slow: records with TensorFlow.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")
L = keras.layers


def _bench(model, x, y, **kw):
    from tb_metal_plugin.recording.layer_bench import benchmark_layers
    from tb_metal_plugin.recording.layers import CallLog
    from tb_metal_plugin.recording.scopes import record_layer_scopes

    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    log = CallLog()
    with record_layer_scopes(model, on_call=log):
        model.make_train_function(force=True)
        model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)
    results, problems = benchmark_layers(model, log, **kw)
    assert problems == []
    return {r["path"][-1]: r for r in results}


@pytest.fixture(scope="module")
def cnn_rows():
    # The three layer classes whose backward came out exactly 0 in issue 10, each run 3 times
    # over a fresh benchmark (4 runs in the issue; the failure was systematic, not rare).
    model = keras.Sequential(
        [
            keras.Input((24, 24, 16)),
            L.Conv2D(32, 3, name="conv"),
            L.BatchNormalization(name="bn"),
            L.MaxPooling2D(name="pool"),
            L.Flatten(name="flat"),
            L.Dense(128, name="dense"),
            L.Dense(3, name="head"),
        ],
        name="m",
    )
    x = np.random.rand(32, 24, 24, 16).astype("float32")
    y = np.random.randint(0, 3, 32)
    return [_bench(model, x, y, repeats=15, warmup=2) for _ in range(3)]


def test_backward_is_measured_for_trainable_layers(cnn_rows):
    for rows in cnn_rows:
        for name in ("conv", "bn", "dense", "head"):
            r = rows[name]
            assert r["backward_ps"] is not None and r["backward_ps"] > 0, (name, r)
            assert r["backward_gross_ps"] > r["backward_overhead_ps"] > 0


def test_overhead_is_subtracted_and_shown(cnn_rows):
    for rows in cnn_rows:
        for r in rows.values():
            assert r["unit"] == "per_call" and r["overhead_subtracted"] is True
            assert 0 < r["call_overhead_ps"] <= r["call_overhead_median_ps"]
            # The figure is the gross median minus the overhead's median, exactly.
            assert r["forward_ps"] == r["forward_gross_ps"] - r["call_overhead_ps"]
            assert r["forward_p10_ps"] <= r["forward_ps"] <= r["forward_p90_ps"]
            if r["backward_ps"] is not None:
                assert r["backward_ps"] == r["backward_gross_ps"] - r["backward_overhead_ps"]
                assert r["backward_p10_ps"] <= r["backward_ps"] <= r["backward_p90_ps"]
        # A layer with real work costs more than an empty call.
        assert rows["conv"]["forward_ps"] > 0


def test_layer_without_weights_or_float_inputs_has_no_backward():
    model = keras.Sequential(
        [keras.Input((6,), dtype="int32"), L.Embedding(10, 4, name="emb", trainable=False),
         L.Flatten(name="flat"), L.Dense(3, name="head")],
        name="e",
    )  # fmt: skip
    x = np.random.randint(0, 10, (16, 6)).astype("int32")
    y = np.random.randint(0, 3, 16)
    rows = _bench(model, x, y, repeats=3, warmup=1)
    assert rows["emb"]["backward_ps"] is None and rows["emb"]["forward_gross_ps"] > 0
    assert rows["head"]["backward_ps"] is not None


def test_batch_size_is_honoured():
    model = keras.Sequential([keras.Input((8,)), L.Dense(4, name="d")], name="b")
    x = np.random.rand(16, 8).astype("float32")
    y = np.random.randint(0, 4, 16)
    rows = _bench(model, x, y, repeats=2, warmup=1, batch_size=5)
    assert rows["d"]["batch_size"] == 5
    rows = _bench(model, x, y, repeats=2, warmup=1)
    assert rows["d"]["batch_size"] == 8  # the traced batch


def test_callback_passes_batch_size(tmp_path):
    from tb_metal_plugin import MetalProfileCallback
    from tb_metal_plugin.manifest import load_manifest

    model = keras.Sequential([keras.Input((8,)), L.Dense(4, name="d")], name="cb")
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.rand(32, 8).astype("float32")
    y = np.random.randint(0, 4, 32)
    cb = MetalProfileCallback(
        tmp_path, profile_batch=2, layer_benchmark=True, benchmark_repeats=2,
        benchmark_warmup=1, benchmark_batch_size=3,
    )  # fmt: skip
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[cb])
    rows = load_manifest(cb.trace_paths[0])["layer_benchmarks"]
    assert rows and all(r["batch_size"] == 3 for r in rows)
    assert rows[0]["input_shapes"] == [[None, 8]] or rows[0]["batch_size"] == 3
