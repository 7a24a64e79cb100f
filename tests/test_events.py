"""Reading real traces: the streaming reader, steps, self/total time, per-step roll-ups."""

from __future__ import annotations

import glob

from tb_metal_plugin import load_profile
from tb_metal_plugin.events import read_events, split_op_name
from tb_metal_plugin.xplane import XSpace, _from_descriptor
from tb_metal_plugin.xspace_reader import open_trace


def _trace(run):
    return glob.glob(str(run / "**/plugins/profile/*/*.xplane.pb"), recursive=True)[0]


def test_streaming_reader_sees_every_event_of_a_full_parse(corpus):
    path = _trace(corpus["attention"])
    full = XSpace.FromString(open(path, "rb").read())
    with open_trace(path) as t:
        planes = t.planes()
        assert [p.name for p in planes] == [p.name for p in full.planes]
        for p, fp in zip(planes, full.planes, strict=True):
            assert len(p.line_spans) == len(fp.lines)
            assert dict(p.header.event_metadata) == dict(fp.event_metadata)
            for i, fl in enumerate(fp.lines):
                assert p.line_name(i) == fl.name
                assert p.line(i) == fl


def test_descriptor_fallback_parses_the_same(corpus):
    path = _trace(corpus["sequential"])
    data = open(path, "rb").read()
    built = _from_descriptor()["XSpace"].FromString(data)
    assert built.SerializeToString(deterministic=True) == XSpace.FromString(data).SerializeToString(
        deterministic=True
    )


def test_op_types_are_one_string_per_type(corpus):
    """Thousands of ops share a few dozen type strings: one object per type, not per op."""
    ev = read_events(_trace(corpus["attention"]))
    types = {r.type for r in ev.ops.values()}
    assert len(ev.ops) > 2 * len(types)
    assert len({id(r.type) for r in ev.ops.values()}) == len(types)
    assert all(r.key == (r.name, r.type) for r in ev.ops.values())


def test_op_events_counts_and_times_match_a_plain_pass(corpus):
    path = _trace(corpus["functional_collide"])
    ev = read_events(path)
    space = XSpace.FromString(open(path, "rb").read())
    host = next(p for p in space.planes if p.name == "/host:CPU")
    counts: dict = {}
    totals: dict = {}
    for line in host.lines:
        for e in line.events:
            md = host.event_metadata[e.metadata_id]
            key = split_op_name(md.name, md.display_name)
            if key:
                counts[key] = counts.get(key, 0) + 1
                totals[key] = totals.get(key, 0) + e.duration_ps
    assert counts and {k: sum(r.count) for k, r in ev.ops.items() if r.on_host} == counts
    assert {k: sum(r.total_ps) for k, r in ev.ops.items() if r.on_host} == totals
    for r in ev.ops.values():
        for s, t in zip(r.self_ps, r.total_ps, strict=True):
            assert 0 <= s <= t


def test_steps_come_from_profiled_batch_markers(corpus):
    ev = read_events(_trace(corpus["sequential"]))
    assert ev.steps_source == "markers"
    assert len(ev.steps) == 2  # profile_batch=(2, 3)
    assert all(s.end_ps > s.start_ps for s in ev.steps)
    assert ev.steps[0].end_ps <= ev.steps[1].start_ps


def test_per_step_figures_add_up_to_the_whole(corpus):
    prof = load_profile(corpus["functional_collide"])
    whole = prof.layers("all")
    per_step = [prof.layers(s) for s in prof.steps]
    avg = prof.layers("avg")
    outside = sum(
        r.self_ps[-1] for r in prof.events.ops.values()
    )  # slot S: events outside any step
    assert sum(p["total_ps"] for p in per_step) + outside == whole["total_ps"]
    assert abs(avg["total_ps"] - sum(p["total_ps"] for p in per_step) / len(per_step)) <= 1
    for step_data in per_step:
        assert step_data["step_time_ps"] > 0


def test_layers_and_buckets_add_up_to_total(corpus):
    for case in ("attention", "lstm", "preprocessing", "py_function"):
        data = load_profile(corpus[case]).layers()
        parts = sum(n["total_ps"] for n in data["layers"]) + sum(
            b["total_ps"] for b in data["buckets"]
        )
        assert parts == data["total_ps"] > 0

        def check(node):
            kids = sum(c["total_ps"] for c in node["children"])
            assert node["total_ps"] == node["self_ps"] + kids
            assert sum(node["phases"].values()) == node["total_ps"]
            assert sum(node["devices"].values()) == node["total_ps"]
            for c in node["children"]:
                check(c)

        for n in data["layers"]:
            check(n)


def test_host_only_cpu_trace_says_times_are_cpu_time(corpus):
    # No device timeline and no GPU: CPU time, and no word of GPU-placed ops (the
    # host-side note belongs to runs with a GPU; tests/test_clocks.py covers that case).
    data = load_profile(corpus["sequential"]).layers()
    assert data["timeline"] == "host_only" and not data["has_gpu"]
    assert "no GPU" in data["time_note"] and "host-side" not in data["time_note"]
    ops = load_profile(corpus["sequential"]).ops()["ops"]
    assert {o["device_source"] for o in ops} == {"assumed"}


def test_device_plane_names_and_op_names():
    from tb_metal_plugin.events import device_plane_id, line_kind

    assert device_plane_id("/device:GPU:0") == "GPU:0"
    assert device_plane_id("/device:GPU:1 (Metal)") == "GPU:1"
    assert device_plane_id("/host:CPU") is None
    assert device_plane_id("Task Environment") is None
    assert split_op_name("a/b/MatMul:_MklMatMul", "_MklMatMul") == ("a/b/MatMul", "_MklMatMul")
    assert split_op_name("a/b/MatMul:MatMul") == ("a/b/MatMul", "MatMul")
    for not_op in (
        "Iterator::Root::Prefetch",
        "EagerLocalExecute: __inference_f_12",
        "ThreadpoolListener::Record",
        "Profiled batch",
    ):
        assert split_op_name(not_op) is None
    # A display name that is not the name's type: not an op; one that is, whatever it is.
    assert split_op_name("a/b:MatMul", "Conv2D") is None
    assert split_op_name(":MatMul", "MatMul") is None
    assert split_op_name("a b:My Type", "My Type") == ("a b", "My Type")
    assert line_kind("tf_data_iterator_get_next/123") == "tf_data"
    assert line_kind("tf_Compute/1") == "compute"
