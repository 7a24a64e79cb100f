"""One clock per number: ops and layers agree on each op's time and clock; no cross-clock ratio.

Fast: committed real traces (demo/logs). The Metal-like run is the real Linux `cnn` trace
with its manifest rewritten as a Mac run records it (tests/metal_like.py); the expected
figures come from the raw events and the manifest file, not from the package's reader.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tb_metal_plugin import api
from tb_metal_plugin.cli import main
from tb_metal_plugin.compare import compare
from tb_metal_plugin.formatting_compare import compare_csv, compare_table
from tb_metal_plugin.xplane import XSpace
from tests.metal_like import make_metal_like

DEMO = Path(__file__).resolve().parents[1] / "demo" / "logs"
CLOCKS = {"device", "host_side", "host"}


@pytest.fixture(scope="module")
def metal_cnn(tmp_path_factory):
    return make_metal_like(DEMO / "cnn", tmp_path_factory.mktemp("metal") / "cnn")


def _raw(run: Path):
    """Per-op self time and step spans from the trace's raw events, plus the manifest."""
    trace = next(run.rglob("*.xplane.pb"))
    manifest = json.loads(next(run.rglob("*.tb_metal.json")).read_text())
    host = next(p for p in XSpace.FromString(trace.read_bytes()).planes if p.name == "/host:CPU")
    stat_names = {k: v.name for k, v in host.stat_metadata.items()}
    self_ps: dict[tuple[str, str], int] = {}
    steps = []
    for line in host.lines:
        ops = []
        for e in line.events:
            md = host.event_metadata[e.metadata_id]
            if md.name == "Profiled batch":
                num = [s.int64_value for s in e.stats if stat_names[s.metadata_id] == "step_num"]
                steps.append((num[0], e.duration_ps))
            name, _, typ = md.name.rpartition(":")
            if name and typ == md.display_name:
                ops.append((e.offset_ps, e.duration_ps, (name, typ)))
        # Self time: minus the op events nested directly inside (same thread).
        ops.sort(key=lambda o: o[0])
        stack: list[tuple[int, tuple]] = []
        for off, dur, key in ops:
            while stack and stack[-1][0] <= off:
                stack.pop()
            if stack:
                self_ps[stack[-1][1]] -= dur
            self_ps[key] = self_ps.get(key, 0) + dur
            stack.append((off + dur, key))
    return self_ps, sorted(steps), manifest


def _expected_clock(key, manifest) -> str:
    placed = {(p["name"], p["type"]): p["device"] for p in manifest.get("placement") or []}
    by_name = {p["name"]: p["device"] for p in manifest.get("placement") or []}
    device = placed.get(key) or by_name.get(key[0]) or "CPU:0"
    return "host_side" if device.endswith("GPU:0") else "host"


def _walk(nodes):
    for n in nodes:
        yield n
        yield from _walk(n["children"])


@pytest.mark.parametrize("which", ["metal", "cpu"])
def test_ops_time_and_clock_match_the_raw_events(which, metal_cnn):
    run = metal_cnn if which == "metal" else DEMO / "cnn_cpu"
    self_ps, _, manifest = _raw(run)
    ops = api.load_profile(run).ops()["ops"]
    assert {(o["name"], o["type"]): o["time_ps"] for o in ops} == self_ps
    for o in ops:
        assert o["clock"] == _expected_clock((o["name"], o["type"]), manifest), o["name"]
        assert o["device_ps"] is None  # no device timeline in these traces
    clocks = {o["clock"] for o in ops}
    assert clocks == ({"host_side", "host"} if which == "metal" else {"host"})


def test_layers_add_up_the_ops_per_clock_and_never_call_host_side_time_gpu(metal_cnn):
    prof = api.load_profile(metal_cnn)
    ops = prof.ops()["ops"]
    data = prof.layers()
    for node in _walk(data["layers"]):
        mine = [o for o in ops if o["layer"] and o["layer"][: len(node["path"])] == node["path"]]
        want: dict[str, int] = {}
        for o in mine:
            want[o["clock"]] = want.get(o["clock"], 0) + o["time_ps"]
        assert node["clocks"] == {c: v for c, v in want.items()}, node["path"]
        assert sum(node["clocks"].values()) == node["total_ps"]
        used = {c for c, v in want.items() if v}
        assert node["clock"] == (used.pop() if len(used) == 1 else "mixed" if used else None)
        # Host-side GPU time has its own key in the device split, never plain "GPU".
        assert "GPU" not in node["devices"]
        assert node["devices"].get("GPU (host-side)", 0) == want.get("host_side", 0)
    assert data["clocks"] == {
        c: sum(o["time_ps"] for o in ops if o["clock"] == c) for c in ("host_side", "host")
    }
    assert sum(data["clocks"].values()) == data["total_ps"]
    mixed = [b for b in data["buckets"] if b["clock"] == "mixed"]
    assert mixed and all(len(b["clocks"]) == 2 for b in mixed)


def test_ops_table_shows_the_time_layers_count(metal_cnn):
    res = CliRunner().invoke(main, ["ops", str(metal_cnn), "--limit", "0", "--wide"])
    assert res.exit_code == 0, res.output
    ops = api.load_profile(metal_cnn).ops()["ops"]
    from tb_metal_plugin.formatting import fmt_time

    lines = {ln.split()[0]: ln for ln in res.stdout.splitlines() if ln.startswith("Stateful")}
    for o in ops:
        if o["name"] in lines:
            assert f"{fmt_time(o['time_ps'])}  {o['clock']}" in lines[o["name"]]
    rows = list(csv.DictReader(io.StringIO(
        CliRunner().invoke(main, ["ops", str(metal_cnn), "--format", "csv"]).stdout)))  # fmt: skip
    assert {r["clock"] for r in rows} == {"host_side", "host"}
    assert all(r["time_ps"] == r["self_ps"] for r in rows)


def test_metal_like_run_vs_cpu_twin_has_no_cross_clock_speedup(metal_cnn):
    metal = api.load_profile(metal_cnn).layers("avg")
    cpu = api.load_profile(DEMO / "cnn_cpu").layers("avg")
    data = compare([metal, cpu], ["metal", "cpu"])
    rows = {tuple(r["key"]): r for r in data["rows"]}
    for r in data["rows"]:
        c0, c1 = r["clock"]
        if r["speedup"][1] is not None:
            assert c0 == c1 and c0 in CLOCKS and r["speedup_source"][1] == "profile"
        if c0 and c1 and c0 != c1:
            assert r["speedup"][1] is None and r["delta_ps"][1] is None and r["speedup_note"][1]
    for layer in ("conv1", "conv2", "pool1", "dense", "logits"):
        r = rows[("cnn", layer)]
        assert r["clock"] == ["host_side", "host"]
        assert r["speedup"] == [1.0, None]
        assert r["speedup_note"][1] == "GPU dispatch time vs CPU compute time"
    # The headline: mean step (wall) time from the raw Profiled batch events.
    _, steps_m, _ = _raw(metal_cnn)
    _, steps_c, _ = _raw(DEMO / "cnn_cpu")
    m_avg = sum(d for _, d in steps_m) // len(steps_m)
    c_avg = sum(d for _, d in steps_c) // len(steps_c)
    assert data["totals"]["step_time_ps"] == [m_avg, c_avg]
    assert data["totals"]["speedup"][1] == pytest.approx(m_avg / c_avg)
    assert data["totals"]["step_time_clock"] == "wall"
    assert any("GPU dispatch time vs CPU compute time" in w for w in data["warnings"])
    # Table and CSV: blank speedup, the reason on the row.
    table = compare_table(data)
    conv1 = next(ln for ln in table.splitlines() if ln.strip().startswith("conv1"))
    assert not re.search(r"\d\.\d\dx", conv1)
    assert conv1.rstrip().endswith("GPU dispatch time vs CPU compute time")
    csv_rows = {r["layer"]: r for r in csv.DictReader(io.StringIO(compare_csv(data)))}
    assert csv_rows["cnn/conv1"]["cpu speedup"] == ""
    assert csv_rows["cnn/conv1"]["cpu speedup_note"] == "GPU dispatch time vs CPU compute time"


def test_cli_compare_json_nulls_cross_clock_speedups(metal_cnn):
    res = CliRunner().invoke(
        main, ["compare", str(metal_cnn), str(DEMO / "cnn_cpu"), "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    crossed = [r for r in data["rows"] if r["clock"][0] and r["clock"][1]
               and r["clock"][0] != r["clock"][1]]  # fmt: skip
    assert crossed and all(r["speedup"][1] is None for r in crossed)


def test_same_clock_runs_keep_their_speedups():
    # Both demo runs were recorded on Linux CPUs: host vs host, a ratio that means something.
    a = api.load_profile(DEMO / "cnn").layers("avg")
    b = api.load_profile(DEMO / "cnn_cpu").layers("avg")
    data = compare([a, b], ["a", "b"])
    conv1 = next(r for r in data["rows"] if r["key"] == ["cnn", "conv1"])
    assert conv1["clock"] == ["host", "host"] and conv1["speedup_source"][1] == "profile"
    assert conv1["speedup"][1] == pytest.approx(conv1["total_ps"][0] / conv1["total_ps"][1])
    assert not any("no per-layer speedup" in w for w in data["warnings"])


def _with_benchmarks(run: Path, dest: Path, per_device: dict[str, tuple[int, int]]) -> Path:
    """A copy of `run` whose manifest carries layer benchmark entries for every layer."""
    import shutil

    shutil.copytree(run, dest)
    path = next(dest.rglob("*.tb_metal.json"))
    manifest = json.loads(path.read_text())
    entries = []
    for i, layer in enumerate(lay for lay in manifest["layers"] if len(lay["path"]) > 1):
        m = i + 1
        for device, (fwd, bwd) in per_device.items():
            entries.append({
                "path": layer["path"], "device": device, "device_name": f"/device:{device}:0",
                "unit": "per_call", "overhead_subtracted": True, "call_overhead_ps": 5_000_000,
                "forward_ps": fwd * m, "forward_p10_ps": fwd, "forward_p90_ps": 2 * fwd * m,
                "backward_ps": bwd * m, "backward_p10_ps": bwd, "backward_p90_ps": 2 * bwd * m,
            })  # fmt: skip
    manifest["layer_benchmarks"] = entries
    path.write_text(json.dumps(manifest))
    return dest


def test_benchmarked_runs_compare_by_measured_time(metal_cnn, tmp_path):
    metal = _with_benchmarks(metal_cnn, tmp_path / "metal", {"CPU": (900, 1800), "GPU": (100, 300)})
    cpu = _with_benchmarks(DEMO / "cnn_cpu", tmp_path / "cpu", {"CPU": (1000, 2000)})
    res = CliRunner().invoke(main, ["compare", str(metal), str(cpu), "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = {tuple(r["key"]): r for r in json.loads(res.stdout)["rows"]}
    conv1 = rows[("cnn", "conv1")]
    # GPU entry in the Metal run (its ops are GPU-placed), CPU entry in the CPU twin.
    assert conv1["benchmark_device"] == ["GPU", "CPU"]
    k = conv1["benchmark_ps"][0] // 400
    assert conv1["benchmark_ps"] == [400 * k, 3000 * k]
    assert conv1["speedup"][1] == pytest.approx(400 / 3000)
    assert conv1["speedup_source"][1] == "layer_benchmark" and conv1["speedup_note"][1] is None
    # Buckets have no benchmark: still no cross-clock ratio there.
    assert rows[("optimizer",)]["speedup"][1] is None
    table = CliRunner().invoke(main, ["compare", str(metal), str(cpu)]).stdout
    assert "0.13x (bench)" in table
    layers = CliRunner().invoke(main, ["layers", str(metal), "--wide"]).stdout
    assert "| benchmark per call: forward" in layers
    assert "overhead subtracted (CPU 5.0 µs, GPU 5.0 µs)" in layers


def test_a_layer_mixing_clocks_shows_each_apart():
    # One layer with an op timed on a device timeline, a GPU-placed op with no device
    # events (host-side) and a CPU op: three clocks, never one GPU figure.
    from tb_metal_plugin.attribution import Attribution
    from tb_metal_plugin.breakdown import AttributedOp, Selection, layer_tree, op_rows
    from tb_metal_plugin.devices import Placement
    from tb_metal_plugin.events import OpRecord, TraceEvents

    events = TraceEvents(
        path="x", planes=[], device_planes=[], steps=[], steps_source="none", ops={},
        copies={}, window_ps=10_000_000_000, event_count=0,
    )  # fmt: skip
    sel = Selection(events, None)
    att = Attribution(("m", "mix"), "forward", None, "test")

    def rec(name, self_ps, device_ps=0):
        r = OpRecord(name, "T", 1)
        r.count[0], r.self_ps[0], r.total_ps[0] = 1, self_ps, self_ps
        if device_ps:
            r.add_device(0, device_ps, "GPU:0")
        return r

    us = 1_000_000
    ops = [
        AttributedOp(rec("k", 5 * us, 70 * us), att, Placement("GPU:0", "GPU", "device_plane")),
        AttributedOp(rec("d", 20 * us), att, Placement("GPU:0", "GPU", "placement")),
        AttributedOp(rec("c", 300 * us), att, Placement("CPU:0", "CPU", "placement")),
    ]
    rows = {r["name"]: r for r in op_rows(ops, sel)}
    assert [(rows[n]["time_ps"] // us, rows[n]["clock"]) for n in "kdc"] == [
        (70, "device"), (20, "host_side"), (300, "host")
    ]  # fmt: skip
    assert rows["k"]["self_ps"] == 5 * us and rows["k"]["host_clock"] == "host_side"
    roots, _, total = layer_tree(list(rows.values()), 10_000 * us)
    mix = roots[0]["children"][0]
    assert mix["clocks"] == {"device": 70 * us, "host_side": 20 * us, "host": 300 * us}
    assert mix["clock"] == "mixed" and roots[0]["clock"] == "mixed" and total == 390 * us
    assert mix["devices"] == {"GPU": 70 * us, "GPU (host-side)": 20 * us, "CPU": 300 * us}
    from tb_metal_plugin.formatting import clock_label

    assert clock_label(mix["clock"], mix["clocks"]) == (
        "device 70.0 µs + host_side 20.0 µs + host 300.0 µs"
    )


def test_time_note_names_the_clock_of_the_run(metal_cnn):
    # A Mac-like run (a GPU, no device timeline) says its GPU times are host-side dispatch;
    # its CPU-only twin speaks of CPU time only.
    metal = api.load_profile(metal_cnn).layers()
    cpu = api.load_profile(DEMO / "cnn_cpu").layers()
    assert metal["has_gpu"] and "host-side" in metal["time_note"]
    assert not cpu["has_gpu"] and "no GPU" in cpu["time_note"]
    assert "host-side" not in cpu["time_note"]
