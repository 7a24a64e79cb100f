"""MetalProfileCallback: real (tiny) fit runs on CPU, asserting on the trace and manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

np = pytest.importorskip("numpy")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.slow

from tb_metal_plugin import MetalProfileCallback  # noqa: E402
from tb_metal_plugin.callback import _parse_profile_batch  # noqa: E402
from tb_metal_plugin.events import read_events  # noqa: E402
from tb_metal_plugin.manifest import load_manifest  # noqa: E402
from tests.corpus import subclassed_net  # noqa: E402

L = keras.layers
REPO = Path(__file__).resolve().parents[1]


def _data(n=48, d=8, out=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d), dtype="float32"), rng.random((n, out), dtype="float32")


def _fit(model, tmp_path, profile_batch=(2, 3), batch_size=8, epochs=1, data=None, **kw):
    """Compile-free fit with the callback; returns (callback, manifest, fit warnings)."""
    fit_kw = kw.pop("fit_kw", {})
    cb = MetalProfileCallback(tmp_path, profile_batch=profile_batch, **kw)
    x, y = data if data is not None else _data(out=model.output_shape_hint)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[cb], **fit_kw)
    ours = [str(w.message) for w in caught if "MetalProfileCallback" in str(w.message)]
    manifest = load_manifest(cb.trace_paths[-1]) if cb.trace_paths else None
    return cb, manifest, ours


def _compiled(model, out=2, **compile_kw):
    model.compile(optimizer="adam", loss="mse", **compile_kw)
    model.output_shape_hint = out
    return model


def _sequential():
    return _compiled(
        keras.Sequential([keras.Input((8,)), L.Dense(16, activation="relu"), L.Dense(2)])
    )


def _functional():
    inp = keras.Input((8,))
    h = L.Dense(16, activation="relu", name="hidden")(inp)
    h = L.LayerNormalization(name="norm")(h)
    out = L.Dense(2, name="head")(L.Add(name="add")([h, L.Dense(16, name="skip")(inp)]))
    return _compiled(keras.Model(inp, out, name="func"))


def _layers_with_calls(manifest):
    # InputLayer is never called: it is the only layer kind without a scope.
    return [lay for lay in manifest["layers"] if lay["class"] != "InputLayer"]


def _op_events(trace_path):
    """Executor op events (name, type) of the trace, read by tb-metal's own reader."""
    ev = read_events(str(trace_path))
    return {k: rec for k, rec in ev.ops.items()}, ev


def _assert_complete(manifest, trace_path):
    """Every called layer has scopes; every executor op event joins the placement."""
    assert manifest["warnings"] == []
    layers = _layers_with_calls(manifest)
    assert layers
    for lay in layers:
        assert lay["scopes"], f"no scope recorded for {lay['path']}"
    placed = {(p["name"], p["type"]) for p in manifest["placement"]}
    ops, ev = _op_events(trace_path)
    # Ops of the profiled steps. tf.data pipeline functions (Keras's array slicing) are
    # instantiated by tf.data, not by the train step: they are not in run metadata and
    # always run on the host. Ops outside every step (e.g. the validation dataset being
    # built before on_test_begin stops the window) belong to no train step.
    step_ops = {
        k for k, rec in ops.items() if rec.line_kinds != {"tf_data"} and any(rec.count[:-1])
    }
    assert step_ops, "the trace holds no op events"
    missing = step_ops - placed
    assert not missing, f"{len(missing)} op events without placement, e.g. {sorted(missing)[:5]}"
    assert set(manifest["kernels"]) == {p["type"] for p in manifest["placement"]}
    return ev


# -- profile_batch ---------------------------------------------------------------------


def test_profile_batch_parsing_matches_keras():
    assert _parse_profile_batch(3) == (3, 3)
    assert _parse_profile_batch((2, 5)) == (2, 5)
    assert _parse_profile_batch("2,5") == (2, 5)
    assert _parse_profile_batch(0) == (0, 0)
    for bad in (-1, (3, 2), (1, 2, 3), "x", 1.5, True):
        with pytest.raises(ValueError):
            _parse_profile_batch(bad)


def test_profile_batch_zero_profiles_nothing(tmp_path):
    cb, manifest, ours = _fit(_sequential(), tmp_path, profile_batch=0)
    assert cb.trace_paths == [] and manifest is None and ours == []
    assert not (tmp_path / "train").exists()


# -- model kinds -----------------------------------------------------------------------


def test_sequential_writes_trace_and_complete_manifest(tmp_path):
    model = _sequential()
    cb, manifest, ours = _fit(model, tmp_path, profile_batch=(2, 3))
    assert ours == []
    trace = cb.trace_paths[0]
    # The standard layout under the `train` run, like keras.callbacks.TensorBoard.
    assert trace.parent.parent == tmp_path / "train" / "plugins" / "profile"
    assert trace.name.endswith(".xplane.pb")
    ev = _assert_complete(manifest, trace)
    # Keras numbering: batches 2 and 3 of the fit = batch indices 1 and 2.
    assert [s.num for s in ev.steps] == [1, 2]
    assert manifest["profile"]["profiled_batches"] == [1, 2]
    assert manifest["model"] == {"name": model.name, "class": "Sequential"}
    dense = [lay for lay in manifest["layers"] if lay["class"] == "Dense"]
    assert [lay["params"] for lay in dense] == [8 * 16 + 16, 16 * 2 + 2]
    assert dense[0]["output_shape"] == [None, 16]
    assert dense[0]["dtype_policy"] == "float32"
    assert dense[0]["input_shapes"] == [[8, 8]]
    env = manifest["environment"]
    assert env["tensorflow"] == tf.__version__ and env["keras"] == keras.__version__
    assert env["tensorflow_metal"] is None
    assert "/device:CPU:0" in env["logical_devices"]
    assert env["os"] and env["machine"]


def test_kernel_registry_lists_cpu_for_matmul(tmp_path):
    cb, manifest, _ = _fit(_functional(), tmp_path, profile_batch=2)
    matmul_types = [t for t in manifest["kernels"] if "MatMul" in t]
    assert matmul_types, sorted(manifest["kernels"])
    for op_type in matmul_types:
        devices = {k["device"]: k for k in manifest["kernels"][op_type]}
        assert "CPU" in devices, (op_type, list(devices))
        assert "float32" in devices["CPU"]["dtypes"]
    # Plain MatMul too, whatever the graph rewrite turned it into here.
    from tb_metal_plugin.recording.kernels import kernels_for_op

    cpu = [k for k in kernels_for_op("MatMul") if k["device"] == "CPU"]
    assert cpu and "float32" in cpu[0]["dtypes"]
    # Placement rows carry the dtype the kernel needed (fallback reasons use it).
    assert any(p.get("dtype") == "float32" for p in manifest["placement"])


def test_functional_scopes_and_residual(tmp_path):
    cb, manifest, _ = _fit(_functional(), tmp_path)
    _assert_complete(manifest, cb.trace_paths[0])
    by_name = {lay["path"][-1]: lay for lay in manifest["layers"]}
    assert by_name["hidden"]["scopes"] == ["func_1/hidden_1"]
    assert by_name["func"]["path"] == ["func"]
    assert by_name["head"]["path"] == ["func", "head"]


def _wrapped_regularized():
    """TimeDistributed (calls the inner layer's `call`), a regularizer, a residual, a metric."""
    inp = keras.Input((5, 4))
    h = L.TimeDistributed(L.Dense(3, name="inner"), name="td")(inp)
    h = L.Dense(8, name="a", kernel_regularizer="l2")(L.Flatten(name="flat")(h))
    # silu's gradient is a tf.custom_gradient: a backward function of its own.
    h = L.Add(name="add")([h, L.Dense(8, activation="silu", name="b")(h)])
    model = keras.Model(inp, L.Dense(2, name="head")(h), name="wr")
    return _compiled(model, metrics=["mae"])


def _records(manifest):
    table = manifest["ops"]
    assert table["columns"] == ["name", "type", "layer", "phase", "origin"]
    return {(r[0], r[1]): (tuple(r[2]) if r[2] else None, r[3], r[4]) for r in table["rows"]}


def _step_ops(trace_path):
    ops, _ = _op_events(trace_path)
    return {k for k, rec in ops.items() if rec.line_kinds != {"tf_data"} and any(rec.count[:-1])}


def test_op_records_say_who_created_every_step_op(tmp_path):
    x = np.random.default_rng(0).random((48, 5, 4), dtype="float32")
    y = np.random.default_rng(1).random((48, 2), dtype="float32")
    cb, manifest, ours = _fit(_wrapped_regularized(), tmp_path, data=(x, y))
    assert ours == [] and manifest["version"] == 2 and manifest["warnings"] == []
    records = _records(manifest)
    step_ops = _step_ops(cb.trace_paths[0])
    assert step_ops and not step_ops - set(records), sorted(step_ops - set(records))[:5]
    by_layer = {}
    for (name, _), (layer, phase, origin) in records.items():
        by_layer.setdefault(layer, []).append((name, phase, origin))
    # The wrapper owns what the inner layer's `call` made: the inner Dense never ran
    # its own __call__, so nothing is charged to it, forward or backward.
    assert ("wr", "td", "inner") not in by_layer
    assert {p for _, p, _ in by_layer[("wr", "td")]} == {"forward", "backward"}
    # Gradient ops belong to the layer of the forward op they differentiate.
    head_grads = [(n, p) for n, p, o in by_layer[("wr", "head")] if o == "gradient"]
    assert head_grads and all(p == "backward" and "gradient_tape" in n for n, p in head_grads)
    # The custom gradient's ops sit at the root of the step, yet belong to `b`.
    sigmoid_grads = {
        lay for (_, t), (lay, ph, _) in records.items() if t == "Sigmoid" and ph == "backward"
    }
    assert sigmoid_grads == {("wr", "b")}
    # Phases from where Keras created the op, whatever the name says.
    phases = {}
    for (_name, op_type), (layer, phase, _) in records.items():
        if layer is None:
            phases.setdefault(phase, set()).add(op_type)
    assert {"AssignAddVariableOp"} <= phases["optimizer"]
    assert "Abs" in phases["metrics"]  # the mae metric, at the root of the step
    # The l2 regularizer's sum is made in _compute_loss, outside compile_loss/.
    reg = [n for (n, t), (lay, ph, _) in records.items() if ph == "loss" and t == "Square"]
    assert any("compile_loss" not in n for n in reg)
    assert all(rec[0] is None for rec in records.values() if rec[1] in ("loss", "metrics"))
    # The view answers every step op from these records.
    rows = load_profile_ops(tmp_path)
    assert {r["attribution_source"] for r in rows if (r["name"], r["type"]) in step_ops} == {
        "manifest_op"
    }


def load_profile_ops(logdir):
    from tb_metal_plugin import load_profile

    return load_profile(logdir).ops()["ops"]


def test_missing_private_hook_warns_once_and_falls_back(tmp_path, monkeypatch):
    from tb_metal_plugin.recording import provenance

    def gone(self):
        raise AttributeError("module has no attribute '_gradient_function'")

    monkeypatch.setattr(provenance.OpProvenance, "_hook_tape", gone)
    messages = []
    for run in ("first", "second"):
        cb, manifest, ours = _fit(_sequential(), tmp_path / run)
        messages += [m for m in ours if "op records incomplete" in m]
        assert any("op records incomplete" in w for w in manifest["warnings"])
        records = _records(manifest)
        assert records and all(
            o not in ("train_step", "unrecorded") for _, _, o in records.values()
        )
        # Without the tape hook no record claims a gradient op: those fall back to names.
        grads = [r for r in load_profile_ops(tmp_path / run) if "gradient_tape" in r["name"]]
        assert grads and {r["attribution_source"] for r in grads} <= {
            "manifest_scopes",
            "trace_names",
            "trace_graph",
        }
        assert {r["phase"] for r in grads} == {"backward"}
    assert len(messages) == 1  # once per process, not once per fit


def test_subclassed_model(tmp_path):
    model = _compiled(subclassed_net(2))
    cb, manifest, _ = _fit(model, tmp_path)
    _assert_complete(manifest, cb.trace_paths[0])
    paths = {tuple(lay["path"]) for lay in manifest["layers"]}
    assert ("net", "block", "inner_a") in paths
    inner = next(lay for lay in manifest["layers"] if lay["path"][-1] == "inner_a")
    assert inner["scopes"] == ["net_1/block_1/inner_a_1"]
    # No symbolic output for subclassed sublayers: the shape seen in training is kept.
    assert inner["output_shape"] == [8, 16]


def test_nested_and_shared_layers(tmp_path):
    enc_in = keras.Input((8,))
    encoder = keras.Model(enc_in, L.Dense(16, name="proj")(enc_in), name="encoder")
    shared = L.Dense(16, name="shared")
    inp = keras.Input((8,))
    h = encoder(inp)
    h = shared(shared(h))  # one layer, two calls, two scopes
    model = _compiled(keras.Model(inp, L.Dense(2, name="head")(h), name="outer"))
    cb, manifest, _ = _fit(model, tmp_path)
    _assert_complete(manifest, cb.trace_paths[0])
    by_path = {tuple(lay["path"]): lay for lay in manifest["layers"]}
    assert by_path[("outer", "encoder", "proj")]["scopes"] == ["outer_1/encoder_1/proj_1"]
    assert len(by_path[("outer", "shared")]["scopes"]) == 2
    assert by_path[("outer", "shared")]["params"] == 16 * 16 + 16


def test_steps_per_execution(tmp_path):
    model = _compiled(
        keras.Sequential([keras.Input((8,)), L.Dense(16), L.Dense(2)]), steps_per_execution=3
    )
    x, y = _data(n=96)
    cb, manifest, _ = _fit(model, tmp_path, profile_batch=(2, 2), data=(x, y))
    ev = _assert_complete(manifest, cb.trace_paths[0])
    assert manifest["profile"]["steps_per_execution"] == 3
    # One "batch" is one execution of 3 steps; Keras passes its first step index.
    assert [s.num for s in ev.steps] == [3]
    assert any(p["name"].startswith("while/") for p in manifest["placement"])
    # The loop body's ops carry the layer scope in the middle of their name.
    dense = next(lay for lay in manifest["layers"] if lay["class"] == "Dense")
    assert any(dense["scopes"][0] in p["name"] for p in manifest["placement"])


# -- process-level behaviour -----------------------------------------------------------


def test_several_fits_and_a_second_model(tmp_path):
    model = _sequential()
    cb = MetalProfileCallback(tmp_path, profile_batch=2)
    x, y = _data()
    for _ in range(2):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[cb])
    # Like the stock callback, every fit() call profiles its own window.
    assert len(cb.trace_paths) == 2 and len(set(cb.trace_paths)) == 2
    for trace in cb.trace_paths:
        _assert_complete(load_manifest(trace), trace)
    other = _functional()
    cb2, manifest, _ = _fit(other, tmp_path / "second")
    _assert_complete(manifest, cb2.trace_paths[0])
    assert manifest["model"]["name"] == other.name


def test_model_left_unchanged(tmp_path):
    x, y = _data()
    model = _functional()
    twin = _functional()
    twin.set_weights(model.get_weights())
    from tb_metal_plugin.recording.scopes import iter_layers

    def attrs(m):
        return {path: set(vars(layer)) for path, layer in iter_layers(m)}

    # A first fit adds Keras's own attributes (history, iterators): compare after one.
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    twin.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    before = attrs(model)
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[MetalProfileCallback(tmp_path, profile_batch=(2, 3))],
    )
    twin.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert attrs(model) == before
    for _, layer in iter_layers(model):
        assert "call" not in vars(layer)
    assert type(model.train_function).__name__ != "_ProfiledStep"
    # Same arithmetic with and without the callback.
    for a, b in zip(model.get_weights(), twin.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Graph collection is off again after the window: new functions store nothing.
    from tensorflow.python.eager import context

    assert not context.context().export_run_metadata().function_graphs


def test_window_ending_on_last_batch_stops_before_validation(tmp_path):
    x, y = _data(n=24)
    cb, manifest, ours = _fit(
        _sequential(),
        tmp_path,
        profile_batch=(2, 3),
        data=(x, y),
        epochs=2,
        fit_kw={"validation_data": (x, y)},
    )
    assert ours == [] and len(cb.trace_paths) == 1
    ev = _assert_complete(manifest, cb.trace_paths[0])
    assert [s.num for s in ev.steps] == [1, 2]
    # No test-step op ran inside the window.
    assert not any(
        "test_function" in name or "one_step_on_data" in name
        for name, _ in (k for k in _op_events(cb.trace_paths[0])[0])
    )


def test_window_longer_than_training_is_closed_at_train_end(tmp_path):
    x, y = _data(n=24)
    cb, manifest, _ = _fit(_sequential(), tmp_path, profile_batch=(2, 10), data=(x, y))
    ev = _assert_complete(manifest, cb.trace_paths[0])
    assert [s.num for s in ev.steps] == [1, 2]


def test_next_to_stock_tensorboard_callback(tmp_path):
    x, y = _data()
    model = _sequential()
    stock = keras.callbacks.TensorBoard(tmp_path, profile_batch=(2, 3))
    ours = MetalProfileCallback(tmp_path, profile_batch=(2, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[stock, ours])
    messages = [str(w.message) for w in caught]
    assert any("keras.callbacks.TensorBoard(profile_batch=(2, 3))" in m for m in messages)
    assert any("another profiler session is running" in m for m in messages)
    assert ours.trace_paths == []  # the stock callback, first in the list, profiled
    # Stock callback for scalars, ours for the profile: both in the `train` run.
    stock = keras.callbacks.TensorBoard(tmp_path / "b", profile_batch=0)
    ours = MetalProfileCallback(tmp_path / "b", profile_batch=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[stock, ours])
    assert not [w for w in caught if "MetalProfileCallback" in str(w.message)]
    assert ours.trace_paths[0].parents[3] == tmp_path / "b" / "train"
    assert list((tmp_path / "b" / "train").glob("events.out.tfevents.*"))


# -- failure is safe -------------------------------------------------------------------


def test_placement_failure_warns_and_keeps_trace(tmp_path, monkeypatch):
    from tb_metal_plugin.recording import placement

    def boom(self):
        raise RuntimeError("no run metadata here")

    monkeypatch.setattr(placement.PlacementCapture, "stop", boom)
    model = _sequential()
    cb, manifest, ours = _fit(model, tmp_path, epochs=2)
    assert cb.trace_paths[0].is_file()
    assert len(model.history.history["loss"]) == 2  # training went on
    assert any("placement not recorded" in m and "no run metadata here" in m for m in ours)
    assert any(w.startswith("placement not recorded") for w in manifest["warnings"])
    assert "placement" not in manifest and "kernels" not in manifest
    assert all(lay["scopes"] for lay in _layers_with_calls(manifest))


def test_layer_tree_failure_warns(tmp_path, monkeypatch):
    from tb_metal_plugin.recording import layers

    monkeypatch.setattr(layers, "layer_tree", lambda *a, **k: 1 / 0)
    cb, manifest, ours = _fit(_sequential(), tmp_path)
    assert any("layers not recorded: ZeroDivisionError" in m for m in ours)
    assert "layers" not in manifest and manifest["placement"]
    assert manifest["warnings"] == ["layers not recorded: ZeroDivisionError: division by zero"]


def test_scope_recording_failure_leaves_model_clean(tmp_path, monkeypatch):
    from tb_metal_plugin.recording import scopes

    def broken(model, on_call=None):
        raise TypeError("unusual model")

    monkeypatch.setattr(scopes, "record_layer_scopes", broken)
    model = _sequential()
    cb, manifest, ours = _fit(model, tmp_path)
    assert cb.trace_paths[0].is_file()
    assert any("layer scopes not recorded: TypeError: unusual model" in m for m in ours)
    assert manifest["placement"]  # the other parts are still there


def test_manifest_write_failure_warns(tmp_path, monkeypatch):
    import tb_metal_plugin.callback as callback

    def cannot_write(path, data):
        raise PermissionError("read-only")

    monkeypatch.setattr(callback, "write_manifest", cannot_write)
    cb, manifest, ours = _fit(_sequential(), tmp_path)
    assert cb.trace_paths[0].is_file() and manifest is None
    assert any("manifest" in m and "read-only" in m for m in ours)


def test_error_inside_window_restores_model_and_keeps_trace(tmp_path):
    model = _sequential()
    x, y = _data()

    def batches():
        for i in range(6):
            if i == 3:  # batch 4 of the window (2, 5)
                raise ValueError("bad batch")
            yield x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8]

    cb = MetalProfileCallback(tmp_path, profile_batch=(2, 5))
    with warnings.catch_warnings(record=True), pytest.raises(Exception, match="bad batch"):
        warnings.simplefilter("always")
        model.fit(batches(), epochs=1, verbose=0, callbacks=[cb])
    from tb_metal_plugin.recording.scopes import iter_layers

    assert all("call" not in vars(layer) for _, layer in iter_layers(model))
    assert type(model.train_function).__name__ != "_ProfiledStep"
    from tensorflow.python.profiler import profiler_v2

    assert profiler_v2._profiler is None  # the profiler was stopped
    manifest = load_manifest(cb.trace_paths[0])
    assert any("inside the profiled window" in w for w in manifest["warnings"])
    assert manifest["placement"] and all(lay["scopes"] for lay in _layers_with_calls(manifest))
    # The model still trains afterwards.
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)


# -- layer benchmark -------------------------------------------------------------------


def _bench_model(seed):
    keras.utils.set_random_seed(seed)  # same weights and dropout seed state for twins
    return _compiled(
        keras.Sequential(
            [keras.Input((8,)), L.Dense(16), L.Dropout(0.5), L.BatchNormalization(), L.Dense(2)]
        )
    )


def test_layer_benchmark(tmp_path):
    x, y = _data()
    model, twin = _bench_model(3), _bench_model(3)
    for m in (model, twin):
        m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    cb = MetalProfileCallback(
        tmp_path, profile_batch=2, layer_benchmark=True, benchmark_repeats=3, benchmark_warmup=1
    )
    # Benchmarks run after the window (the window's last batch is the fit's last): the
    # twin trains the same batches with the callback but no benchmark. Every variable
    # (weights, BatchNormalization's moving statistics, the dropout seed) must match.
    model.fit(x[:16], y[:16], batch_size=8, epochs=1, verbose=0, shuffle=False, callbacks=[cb])
    plain = MetalProfileCallback(tmp_path / "twin", profile_batch=2)
    twin.fit(x[:16], y[:16], batch_size=8, epochs=1, verbose=0, shuffle=False, callbacks=[plain])
    manifest = load_manifest(cb.trace_paths[0])
    assert manifest["warnings"] == []
    rows = {tuple(r["path"][1:]): r for r in manifest["layer_benchmarks"]}
    assert set(rows) == {(lay.name,) for lay in model.layers}
    for row in rows.values():
        assert row["device"] == "CPU" and row["device_name"] == "/device:CPU:0"
        # Net of the empty-call overhead, a trivial layer can measure at or below zero.
        assert row["forward_gross_ps"] > 0 and row["forward_ps"] is not None
        assert row["repeats"] == 3
        assert row["call_overhead_ps"] > 0
    assert rows[(model.layers[0].name,)]["input_shapes"] == [[8, 8]]
    assert rows[(model.layers[0].name,)]["backward_ps"] is not None
    json.dumps(manifest)  # plain JSON
    assert len(model.variables) == len(twin.variables)
    for a, b in zip(model.variables, twin.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)


def test_layer_benchmark_restores_variables(tmp_path):
    from tb_metal_plugin.recording.layer_bench import benchmark_layers
    from tb_metal_plugin.recording.layers import CallLog
    from tb_metal_plugin.recording.scopes import record_layer_scopes

    model = _compiled(
        keras.Sequential([keras.Input((8,)), L.BatchNormalization(), L.Dropout(0.5), L.Dense(2)])
    )
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    log = CallLog()
    with record_layer_scopes(model, on_call=log):
        model.make_train_function(force=True)
        model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)
    before = [v.numpy().copy() for v in model.variables]
    results, problems = benchmark_layers(model, log, repeats=2, warmup=1)
    assert problems == [] and len(results) == 3
    for v, old in zip(model.variables, before, strict=True):
        np.testing.assert_array_equal(v.numpy(), old)


# -- two devices (subprocess: logical devices must be set before TF starts) --------------

_TWO_CPUS = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from tb_metal_plugin import MetalProfileCallback
    from tb_metal_plugin.events import read_events

    class Pinned(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], 16), name="w")
        def call(self, x):
            with tf.device("/CPU:1"):
                return tf.tanh(tf.matmul(x, self.w))

    inp = keras.Input((8,))
    h = keras.layers.Dense(16, name="before")(inp)
    h = Pinned(name="pinned")(h)
    model = keras.Model(inp, keras.layers.Dense(2, name="after")(h), name="two")
    model.compile("adam", "mse")
    x = np.random.rand(48, 8).astype("float32"); y = np.random.rand(48, 2).astype("float32")
    cb = MetalProfileCallback(sys.argv[1], profile_batch=(2, 3), layer_benchmark=True,
                              benchmark_devices=["/CPU:0", "/CPU:1"], benchmark_repeats=2,
                              benchmark_warmup=1)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[cb])
    ev = read_events(str(cb.trace_paths[0]))
    ops = [[n, t, sorted(r.line_kinds), any(r.count[:-1])] for (n, t), r in ev.ops.items()]
    print(json.dumps({"manifest": str(cb.manifest_paths[0]), "ops": ops}))
    """
)


def _run_script(tmp_path: Path, name: str, text: str) -> dict:
    """Run a recording script in its own process (TensorFlow's devices are set once per
    process) with a logdir argument; its last stdout line is a JSON result."""
    script = tmp_path / name
    script.write_text(text)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "logs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_logical_cpus_pinned_layer(tmp_path):
    result = _run_script(tmp_path, "two_cpus.py", _TWO_CPUS)
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["warnings"] == []
    assert manifest["environment"]["logical_devices"] == ["/device:CPU:0", "/device:CPU:1"]
    placement = {(p["name"], p["type"]): p["device"] for p in manifest["placement"]}
    pinned = next(lay for lay in manifest["layers"] if lay["path"][-1] == "pinned")
    scope = pinned["scopes"][0]
    forward = [
        (n, t)
        for (n, t) in placement
        if n.split("/", 1)[-1].startswith(scope + "/") and not n.startswith("gradient_tape")
    ]
    # The compute ops; reading the weight stays with the variable (CPU:0), as TF
    # colocates resource ops with their resource.
    mine = [k for k in forward if "MatMul" in k[1] or k[1] == "Tanh"]
    assert {"Tanh"} < {t for _, t in mine}
    for key in mine:
        assert placement[key].endswith("/device:CPU:1"), (key, placement[key])
    # The neighbours stay on CPU:0, and the edges between devices show as _Send/_Recv.
    before = next(lay for lay in manifest["layers"] if lay["path"][-1] == "before")["scopes"][0]
    assert any(d.endswith("CPU:0") for (n, t), d in placement.items() if before + "/" in n)
    assert {"_Send", "_Recv"} <= {t for _, t in placement}
    # Every op event of the trace (train step) joins the placement.
    step_ops = {
        (n, t) for n, t, kinds, in_step in result["ops"] if kinds != ["tf_data"] and in_step
    }
    assert step_ops and not (step_ops - set(placement))
    assert any(placement[k].endswith("CPU:1") for k in step_ops)
    devices = {(tuple(r["path"]), r["device_name"]) for r in manifest["layer_benchmarks"]}
    assert (("two", "pinned"), "/CPU:1") in devices and (("two", "pinned"), "/CPU:0") in devices


_MIRRORED = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from tb_metal_plugin import MetalProfileCallback

    strategy = tf.distribute.MirroredStrategy(["/CPU:0", "/CPU:1"])
    with strategy.scope():
        inp = keras.Input((8,))
        h = keras.layers.Dense(16, name="hidden")(inp)
        model = keras.Model(inp, keras.layers.Dense(3, name="head")(h), name="mir")
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.rand(64, 8).astype("float32"); y = np.random.randint(0, 3, 64)
    cb = MetalProfileCallback(sys.argv[1], profile_batch=(2, 3))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb])
    print(json.dumps({"manifest": str(cb.manifest_paths[0])}))
    """
)


def test_mirrored_strategy_replicas_and_cross_replica_updates(tmp_path):
    manifest = json.loads(
        Path(_run_script(tmp_path, "mirrored.py", _MIRRORED)["manifest"]).read_text()
    )
    assert manifest["warnings"] == []
    records = _records(manifest)
    # Both replicas' copies of a layer's ops belong to that layer: `replica_1` is not one.
    replica = [k for k, (lay, _, _) in records.items() if "/replica_1/mir_1/hidden_1/" in k[0]]
    assert replica and {records[k][0] for k in replica} == {("mir", "hidden")}
    # The optimizer's update runs in the main thread on behalf of the replicas
    # (merge_call): still the optimizer phase, collectives included.
    adam = [k for k in records if "/adam/" in k[0] and records[k][2] != "transfer"]
    assert adam and {records[k][1] for k in adam} == {"optimizer"}
    assert any(t.startswith("Collective") for _, t in adam)
