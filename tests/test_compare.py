"""compare(): layers matched by path, deltas, speedup, unmatched; and `tb-metal compare`."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from tb_metal_plugin import api
from tb_metal_plugin.cli import main
from tb_metal_plugin.compare import compare
from tb_metal_plugin.formatting_compare import compare_csv, compare_table
from tests.test_plugin_support import shared_logdir


def node(path, total, children=(), gpu=0, clock="host", bench=None):
    kids = list(children)
    gpu_key = "GPU (host-side)" if clock == "host_side" else "GPU"
    return {
        "name": path[-1],
        "path": list(path),
        "class": None,
        "self_ps": total - sum(c["total_ps"] for c in kids),
        "total_ps": total,
        "devices": {gpu_key: gpu, "CPU": total - gpu},
        "clocks": {clock: total} if total else {},
        "clock": clock if total else None,
        "benchmark": bench,
        "fallback_count": 0,
        "children": kids,
    }


def payload(
    root, layers, step_time, buckets=(), step="avg", steps=(1, 2), timeline="host_only", **kw
):
    kids = [node([root, name], t, **kw) for name, t in layers]
    return {
        "session": f"{root}-session",
        "host": "vm",
        "step": step,
        "steps": list(steps),
        "step_time_ps": step_time,
        "total_ps": sum(t for _, t in layers) + sum(t for _, t in buckets),
        "timeline": timeline,
        "layers": [node([root], sum(t for _, t in layers), kids)],
        "buckets": [node([name], t) for name, t in buckets],
    }


def rows_by_key(data):
    return {tuple(r["key"]): r for r in data["rows"]}


def test_matched_deltas_and_speedup():
    a = payload("m", [("dense", 400), ("head", 100)], 1000, buckets=[("optimizer", 50)])
    b = payload("m", [("dense", 200), ("head", 100)], 500, buckets=[("optimizer", 100)])
    d = compare([a, b], ["cpu", "metal"])
    rows = rows_by_key(d)
    dense = rows[("m", "dense")]
    assert dense["total_ps"] == [400, 200]
    assert dense["delta_ps"] == [0, -200]
    assert dense["speedup"] == [1.0, 2.0]
    assert rows[("m", "head")]["speedup"][1] == 1.0
    opt = rows[("optimizer",)]
    assert opt["kind"] == "bucket" and opt["delta_ps"][1] == 50 and opt["speedup"][1] == 0.5
    assert d["totals"]["speedup"] == [1.0, 2.0]
    assert d["unmatched"] == [] and d["matched_count"] == len(d["rows"])
    assert d["baseline"] == "cpu" and d["labels"] == ["cpu", "metal"]


def test_fallback_deltas_against_the_baseline():
    a = payload("m", [("dense", 400), ("head", 100)], 1000)
    b = payload("m", [("dense", 200)], 500)
    a["layers"][0]["children"][0]["fallback_count"] = 1
    b["layers"][0]["children"][0]["fallback_count"] = 4
    rows = rows_by_key(compare([a, b], ["cpu", "metal"]))
    assert rows[("m", "dense")]["fallback_delta"] == [0, 3]
    assert rows[("m", "head")]["fallback_delta"] == [0, None]  # not in the second run


def test_unmatched_layers_and_tree_order():
    a = payload("m", [("dense", 400)], 1000)
    b = payload("m", [("dense", 300), ("extra", 50)], 900)
    d = compare([a, b], ["a", "b"])
    assert [r["key"] for r in d["rows"]] == [["m"], ["m", "dense"], ["m", "extra"]]
    extra = rows_by_key(d)[("m", "extra")]
    assert extra["present"] == [False, True]
    assert extra["delta_ps"] == [None, None] and extra["speedup"] == [None, None]
    assert d["unmatched"] == [
        {"key": ["m", "extra"], "kind": "layer", "name": "extra", "in": ["b"], "missing_in": ["a"]}
    ]


def test_root_model_names_are_aliased_when_they_differ():
    # Keras names the second model of a process "functional_1": still the same layers.
    a = payload("functional", [("dense", 400)], 1000)
    b = payload("functional_1", [("dense", 100)], 500)
    d = compare([a, b], ["a", "b"])
    row = rows_by_key(d)[("<model>", "dense")]
    assert row["speedup"][1] == 4.0
    assert row["paths"] == [["functional", "dense"], ["functional_1", "dense"]]
    assert any("root models have different names" in w for w in d["warnings"])


def test_warnings_for_incomparable_inputs():
    a = payload("m", [("d", 1)], 10, step="all", steps=(1, 2, 3))
    b = payload("m", [("d", 1)], 10, step="all", steps=(1,), timeline="device")
    w = " ".join(compare([a, b], ["a", "b"])["warnings"])
    assert "different numbers of steps" in w and "device time is not host time" in w
    # The same clock on both sides (host): the per-layer speedup is there.
    assert rows_by_key(compare([a, b], ["a", "b"]))[("m", "d")]["speedup"][1] == 1.0


def _bench(device, fwd, bwd):
    return {
        "device": device,
        "forward_ps": fwd,
        "backward_ps": bwd,
        "unit": "per_call",
        "overhead_subtracted": True,
    }


def test_speedup_only_between_times_on_one_clock():
    metal = payload("m", [("d", 400)], 1000, clock="host_side", gpu=400)
    cpu = payload("m", [("d", 200)], 500)
    cuda = payload("m", [("d", 100)], 400, clock="device", gpu=100, timeline="device")
    d = compare([metal, cpu, cuda], ["metal", "cpu", "cuda"])
    row = rows_by_key(d)[("m", "d")]
    assert row["clock"] == ["host_side", "host", "device"]
    assert row["speedup"] == [1.0, None, None] and row["delta_ps"] == [0, None, None]
    assert row["speedup_note"][1:] == [
        "GPU dispatch time vs CPU compute time",
        "GPU dispatch time vs device time",
    ]
    # The step time is wall time in every run: the headline ratio stays.
    assert d["totals"]["speedup"] == [1.0, 2.0, 2.5] and d["totals"]["step_time_clock"] == "wall"
    assert any("GPU dispatch time vs CPU compute time" in w for w in d["warnings"])
    cells = compare_table(d).splitlines()
    line = next(c for c in cells if c.strip().startswith("d "))
    assert "x" not in line.replace("µs", "") and "GPU dispatch time vs CPU compute time" in line
    out = next(r for r in csv.DictReader(io.StringIO(compare_csv(d))) if r["layer"] == "m/d")
    assert out["cpu speedup"] == "" and out["cpu speedup_note"].startswith("GPU dispatch")


def test_mixed_clocks_give_no_speedup():
    a = payload("m", [("d", 400)], 1000)
    b = payload("m", [("d", 300)], 900)
    for p, split in ((a, {"host_side": 300, "host": 100}), (b, {"host_side": 200, "host": 100})):
        layer = p["layers"][0]["children"][0]
        layer["clocks"], layer["clock"] = split, "mixed"
    row = rows_by_key(compare([a, b], ["a", "b"]))[("m", "d")]
    assert row["speedup"] == [None, None] and row["delta_ps"] == [None, None]
    assert "no single-clock time" in row["speedup_note"][1]
    assert row["clocks"][1] == {"host_side": 200, "host": 100}


def test_benchmark_speedup_when_both_runs_carry_it():
    # A Metal run (layer on the GPU, host-side profile time) and its CPU twin, both with the
    # callback's layer benchmark: the ratio comes from measured time per call, GPU vs CPU.
    metal_bench = [_bench("CPU", 900, 1800), _bench("GPU", 100, 200)]
    metal = payload("m", [("d", 400)], 1000, clock="host_side", gpu=400, bench=metal_bench)
    cpu = payload("m", [("d", 200)], 500, bench=[_bench("CPU", 1000, 2000)])
    row = rows_by_key(compare([metal, cpu], ["metal", "cpu"]))[("m", "d")]
    assert row["benchmark_ps"] == [300, 3000] and row["benchmark_device"] == ["GPU", "CPU"]
    assert row["speedup"] == [1.0, 0.1]
    assert row["speedup_source"] == ["layer_benchmark", "layer_benchmark"]
    assert row["speedup_note"] == [None, None]
    table = compare_table(compare([metal, cpu], ["metal", "cpu"]))
    assert "0.10x (bench)" in table
    # Only one run benchmarked: back to the profile times, which are on different clocks.
    cpu_plain = payload("m", [("d", 200)], 500)
    row = rows_by_key(compare([metal, cpu_plain], ["metal", "cpu"]))[("m", "d")]
    assert row["speedup"][1] is None and row["speedup_source"][1] is None
    # A benchmark from before the overhead was subtracted measures something else.
    old = payload(
        "m", [("d", 200)], 500, bench=[{"device": "CPU", "forward_ps": 9, "backward_ps": 0}]
    )
    row = rows_by_key(compare([metal, old], ["metal", "old"]))[("m", "d")]
    assert row["benchmark_ps"][1] is None and row["speedup"][1] is None


def test_zero_time_gives_no_speedup():
    a = payload("m", [("d", 100)], 100)
    b = payload("m", [("d", 0)], 0)
    d = compare([a, b], ["a", "b"])
    assert rows_by_key(d)[("m", "d")]["speedup"][1] is None
    assert d["totals"]["speedup"][1] is None


def test_three_way_and_bad_input():
    ps = [payload("m", [("d", t)], t) for t in (300, 150, 100)]
    d = compare(ps, ["x", "y", "z"])
    assert rows_by_key(d)[("m", "d")]["speedup"] == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        compare(ps[:1], ["x"])
    with pytest.raises(ValueError):
        compare(ps, ["x", "y"])
    assert compare(ps[:2])["labels"] == ["m-session", "m-session"]


def test_renderers():
    a = payload("m", [("dense", 400)], 1000)
    b = payload("m", [("dense", 200), ("extra", 5)], 500)
    d = compare([a, b], ["cpu", "metal"])
    table = compare_table(d)
    assert "T0 = cpu  (baseline)" in table and "2.00x" in table
    assert "m/extra: only in metal" in table
    rows = list(csv.DictReader(io.StringIO(compare_csv(d))))
    dense = next(r for r in rows if r["layer"] == "m/dense")
    assert dense["cpu total_ps"] == "400" and dense["metal delta_ps"] == "-200"
    assert float(dense["metal speedup"]) == 2.0
    assert next(r for r in rows if r["layer"] == "m/extra")["cpu total_ps"] == ""


# -- the CLI on real traces --------------------------------------------------------------


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    return shared_logdir(tmp_path_factory)


def test_cli_compare_json_matches_api(logdir):
    a, b = str(logdir / "baseline"), str(logdir / "wide")
    res = CliRunner().invoke(main, ["compare", a, b, "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    expected = compare(
        [api.load_profile(a).layers("avg"), api.load_profile(b).layers("avg")], [a, b]
    )
    assert data == json.loads(json.dumps(expected))
    assert [u["key"] for u in data["unmatched"]] == [["mlp", "extra"]]


def test_cli_compare_table_and_csv(logdir):
    a, b = str(logdir / "baseline"), str(logdir / "wide")
    res = CliRunner().invoke(main, ["compare", a, b, "--label", "base", "--label", "wide"])
    assert res.exit_code == 0, res.output
    assert "T0 = base  (baseline)" in res.stdout and "hidden" in res.stdout
    res = CliRunner().invoke(main, ["compare", a, b, "--format", "csv", "--step", "all"])
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert {r["layer"] for r in rows} >= {"mlp/dense_in", "mlp/hidden", "mlp/head", "mlp/extra"}


@pytest.mark.parametrize(
    "args",
    [["compare", "X"], ["compare", "X", "X", "--label", "one"], ["compare", "X", "/nonexistent"]],
)
def test_cli_compare_errors(logdir, args):
    args = [str(logdir / "baseline") if a == "X" else a for a in args]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2
