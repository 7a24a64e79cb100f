"""The step graph of a stock run (run_graph.py) and the sums it decides (graph_sums.py).

Real files: committed stock runs whose event file Keras's TensorBoard callback wrote
beside the profile (tests/fixtures/gt/<model>/stock/train/). Expected layers come from
the ground truth recorded when Keras created each op (tests/gt), not from the package.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

from tb_metal_plugin import api
from tb_metal_plugin.graph_sums import sum_layers
from tb_metal_plugin.plugin_loads import file_identity
from tb_metal_plugin.run_graph import (
    PLUGIN,
    event_files,
    graph_ops,
    graph_records,
    run_dir_of,
    step_graph_for,
)
from tests.gt import score as gt

GT = Path(__file__).parent / "fixtures" / "gt"


def _stock_run(tmp_path: Path, model: str) -> Path:
    """A copy of one committed stock run (trace, event file) and its labels; the trace."""
    src = GT / model / "stock"
    shutil.copytree(src, tmp_path / model / "stock")
    shutil.copy2(GT / model / "stock.labels.json", tmp_path / model)
    labels = gt.load_labels(str(GT / model / "stock.labels.json"))
    return tmp_path / model / labels["trace"]


def _events(trace: Path) -> Path:
    (path,) = event_files(trace)
    return path


def _sum_rows(trace: Path, step_graph: bool) -> dict[str, list | None]:
    rows = api.load_file(trace, step_graph=step_graph).ops()["ops"]
    return {r["name"]: r["layer"] for r in rows if r["type"] == "AddN"}


def test_the_graph_gives_a_sum_the_layer_its_inputs_share(tmp_path):
    """nested_models: a tape AddN sums gradients of two layers of `outer`; only the graph
    lists both inputs (names and neighbours give one of the two layers)."""
    trace = _stock_run(tmp_path, "nested_models")
    labels = gt.load_labels(str(trace.parents[5] / "stock.labels.json"))
    want = {
        k.rpartition(":")[0]: ev["layer"]
        for k, ev in labels["events"].items()
        if k.endswith(":AddN") and ev.get("layer")
    }
    with_graph, names_only = _sum_rows(trace, True), _sum_rows(trace, False)
    assert want and all(with_graph[n] == layer for n, layer in want.items()), (want, with_graph)
    assert any(names_only[n] != layer for n, layer in want.items())
    assert api.load_file(trace).attribution_source == "trace_graph"


def test_sessions_outside_a_run_folder_have_no_graph(tmp_path):
    trace = tmp_path / "vm.xplane.pb"
    shutil.copy2(next((GT / "conv_bn" / "stock").rglob("*.xplane.pb")), trace)
    assert run_dir_of(trace) is None and event_files(trace) == []
    prof = api.load_file(trace)
    assert prof.attribution_source == "trace_names"


def _native_crc32c():
    try:
        import google_crc32c
    except ImportError:
        return None
    return google_crc32c if google_crc32c.implementation == "c" else None


NO_CRC = pytest.mark.skipif(
    _native_crc32c() is None,
    reason="no native crc32c (google-crc32c): checksums are not checked, only framing",
)


@pytest.mark.parametrize(
    "damage",
    [
        "empty",
        "cut_in_graph",
        "bad_length",
        "garbled_graph",
        pytest.param("flipped_byte", marks=NO_CRC),
        "link",
    ],
)
def test_a_damaged_event_file_falls_back_to_names(tmp_path, damage):
    """Each kind of damage loses the graph only: the load works, attributed from names."""
    trace = _stock_run(tmp_path, "conv_bn")
    events = _events(trace)
    raw = events.read_bytes()
    at = raw.find(PLUGIN)
    if damage == "empty":
        events.write_bytes(b"")
    elif damage == "cut_in_graph":
        events.write_bytes(raw[: at // 2])  # a writer stopped in the graph record
    elif damage == "bad_length":
        events.write_bytes(struct.pack("<Q", 1 << 40) + raw[8:])
    elif damage == "garbled_graph":
        # Same framing, the graph's bytes scrambled: the protobuf cannot parse it.
        mid = at // 2
        events.write_bytes(raw[:mid] + b"\xff" * 64 + raw[mid + 64 :])
    elif damage == "flipped_byte":
        # One bit in a node name: still a valid protobuf, only the checksum tells.
        at_name = raw.find(b"StatefulPartitionedCall/", at // 2)
        flipped = bytes([raw[at_name] ^ 0x01])
        events.write_bytes(raw[:at_name] + flipped + raw[at_name + 1 :])
    else:
        real = tmp_path / "elsewhere.events"
        events.rename(real)
        os.symlink(real, events)
    prof = api.load_file(trace)
    assert prof.attribution_source == "trace_names"
    assert prof.layers()["layers"], "the view is still there"
    if damage in ("garbled_graph", "flipped_byte"):
        assert any("step graph is damaged" in w for w in prof.warnings), prof.warnings
    if damage == "link":
        assert event_files(trace) == []  # a link is never followed


def test_a_graph_of_another_model_is_not_used(tmp_path):
    """Two models profiled into one run folder: each trace takes the graph of its own ops."""
    conv = _stock_run(tmp_path, "conv_bn")
    nested = _stock_run(tmp_path, "nested_models")
    own = _events(conv).name
    shutil.copy2(_events(nested), run_dir_of(conv))
    assert len(event_files(conv)) == 2
    ops = graph_ops(api.read_events(str(conv)).ops.keys())
    graph, notes = step_graph_for(conv, ops)
    assert graph is not None and not notes
    assert sum(graph.op(n) == t for n, t in ops.items()) * 2 >= len(ops)  # its own
    (other,) = [p for p in event_files(conv) if p.name != own]
    other_graphs = list(graph_records(other))
    assert other_graphs
    # Only the foreign graph left: not this trace's, said so, names decide.
    (run_dir_of(conv) / own).unlink()
    prof = api.load_file(conv)
    assert prof.attribution_source == "trace_names"
    assert any("not the one of this trace" in w for w in prof.warnings), prof.warnings


def test_the_cache_identity_follows_the_graphs_not_the_scalars(tmp_path):
    """Scalars appended every epoch keep the identity (no reload of a viewed profile); a
    graph written after the trace, or a replaced file, changes what a load gives."""
    trace = _stock_run(tmp_path, "conv_bn")
    events = _events(trace)
    raw = events.read_bytes()
    before = file_identity(trace)
    scalar = b"x" * 40
    with open(events, "ab") as f:
        f.write(struct.pack("<Q", len(scalar)) + b"\0" * 4 + scalar + b"\0" * 4)
    assert file_identity(trace) == before
    with open(events, "ab") as f:
        f.write(raw)  # the same records again: a second graph
    assert file_identity(trace) != before
    grown = file_identity(trace)
    events.unlink()
    events.write_bytes(raw)  # replaced: a new file
    assert file_identity(trace) not in (grown,)


class _Graph:
    """A hand-made graph: name -> (op, inputs)."""

    def __init__(self, nodes):
        self.nodes = nodes

    def __contains__(self, name):
        return name in self.nodes

    def op(self, name):
        return self.nodes.get(name, (None, []))[0]

    def inputs(self, name):
        return self.nodes.get(name, (None, None))[1]


def test_sum_rules_on_a_hand_made_graph():
    """Deepest shared layer; tape constants skipped; sums of sums; a loop's back edge."""
    layers = {
        "g/m/a_grad/Mul": ("m", "a"),
        "g/m/b_grad/Mul": ("m", "b"),
        "g/m/a_grad/Mul_1": ("m", "a"),
        "loss_grad": None,
    }
    g = _Graph(
        {
            "AddN": ("AddN", ["g/m/a_grad/Mul", "g/m/b_grad/Mul"]),
            "AddN_1": ("AddN", ["g/m/a_grad/Mul", "g/m/a_grad/Mul_1", "zeros"]),
            "zeros": ("Const", []),
            "AddN_2": ("AddN", ["AddN_1", "g/m/a_grad/Mul_1"]),
            "AddN_3": ("AddN", ["g/m/a_grad/Mul", "loss_grad"]),
            "AddN_4": ("AddN", ["AddN_5", "g/m/a_grad/Mul"]),
            "AddN_5": ("AddN", ["AddN_4", "g/m/a_grad/Mul"]),
        }
    )
    got = sum_layers(["AddN", "AddN_1", "AddN_2", "AddN_3", "AddN_4", "absent"], g, layers.get)
    assert got["AddN"] == ("m",)
    assert got["AddN_1"] == ("m", "a")
    assert got["AddN_2"] == ("m", "a")
    assert got["AddN_3"] is None  # one input has no layer: no one layer holds the sum
    assert "absent" not in got
    assert got["AddN_4"] is None or got["AddN_4"] == ("m", "a")  # a cycle decides nothing


def test_a_gradient_regions_arguments_stand_for_the_region():
    """Inside `<region>/gradients/`, an input from outside is an argument of that gradient
    function: it counts as the sum's own layer, not as the layer that computed it."""
    region = "while_grad/body/gradients/"
    g = _Graph(
        {
            region + "AddN": ("AddN", [region + "cell/mul_grad/Mul", "Func/body/input/_3"]),
            region + "AddN_1": ("AddN", [region + "cell/mul_grad/Mul", region + "cell/x"]),
        }
    )
    layers = {
        region + "AddN": ("rnn",),
        region + "AddN_1": ("rnn",),
        region + "cell/mul_grad/Mul": ("rnn", "cell"),
        region + "cell/x": ("rnn", "cell"),
        "Func/body/input/_3": None,
    }
    got = sum_layers([region + "AddN", region + "AddN_1"], g, layers.get)
    assert got[region + "AddN"] == ("rnn",)
    assert got[region + "AddN_1"] == ("rnn", "cell")


def _masked_crc(data: bytes) -> bytes:
    """TFRecord's masked CRC32C (zeros without a native crc32c: then none is checked)."""
    crc32c = _native_crc32c()
    if crc32c is None:
        return b"\0" * 4
    crc = crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def _reframed(raw: bytes, edit) -> bytes:
    """The event file with each graph Event passed through `edit`, framed again as TFRecord
    (length and data, each with its checksum)."""
    from tensorboard.compat.proto import event_pb2

    out, pos = [], 0
    while pos + 12 <= len(raw):
        (length,) = struct.unpack_from("<Q", raw, pos)
        data = raw[pos + 12 : pos + 12 + length]
        if PLUGIN in data:
            event = event_pb2.Event.FromString(data)
            edit(event)
            data = event.SerializeToString()
        head = struct.pack("<Q", len(data))
        out.append(head + _masked_crc(head) + data + _masked_crc(data))
        pos += 16 + length
    return b"".join(out)


@pytest.mark.parametrize(
    "plugin,source",
    [
        # Older tf.keras callbacks traced with the profiler on: `trace_export` then writes
        # the whole run metadata under the shorter name, the same partition graphs inside.
        ("graph_run_metadata", "trace_graph"),
        ("graph_run_metadata_other", "trace_names"),  # another plugin's summary
    ],
)
def test_the_graph_summaries_read_are_the_run_metadata_ones(tmp_path, plugin, source):
    trace = _stock_run(tmp_path, "nested_models")
    events = _events(trace)

    def rename(event):
        for value in event.summary.value:
            value.metadata.plugin_data.plugin_name = plugin

    events.write_bytes(_reframed(events.read_bytes(), rename))
    assert api.load_file(trace).attribution_source == source


def test_the_same_model_profiled_twice_takes_the_graph_written_with_its_trace(tmp_path):
    """Two fits of one model into one run: identical graphs, told apart by when each was
    exported (right after its own trace)."""
    trace = _stock_run(tmp_path, "nested_models")
    events = _events(trace)
    raw = events.read_bytes()
    written = os.stat(trace).st_mtime
    for name, shift in (
        ("events.out.tfevents.1.a.v2", -3600.0),
        ("events.out.tfevents.2.b.v2", 2.0),
    ):

        def stamp(event, shift=shift):
            event.wall_time = written + shift

        (events.parent / name).write_bytes(_reframed(raw, stamp))
    events.unlink()
    ops = graph_ops(api.read_events(str(trace)).ops.keys())
    graph, _ = step_graph_for(trace, ops)
    # The later export (a second fit) is newer, but the first was written with this trace.
    assert graph is not None and graph.wall_time == pytest.approx(written + 2.0)


def test_the_cli_says_what_the_attribution_read(tmp_path):
    from click.testing import CliRunner

    from tb_metal_plugin.cli import main

    trace = _stock_run(tmp_path, "conv_bn")
    out = CliRunner().invoke(main, ["layers", str(trace.parent)]).output
    assert "attribution: trace_graph (op names + the step graph in the run's event file)" in out
    _events(trace).unlink()
    out = CliRunner().invoke(main, ["layers", str(trace.parent)]).output
    assert "attribution: trace_names (op names only)" in out


def test_the_tab_serves_the_graphs_attribution_and_follows_its_file(tmp_path, monkeypatch):
    """The real WSGI app: the stock run's /layers says `trace_graph`; once the event file
    is gone, the next answer is worked out again from names (no stale cache)."""
    from tests.test_plugin import BASE, make_client

    monkeypatch.setenv("TB_METAL_CACHE_DIR", str(tmp_path / "cache"))
    logdir = tmp_path / "logs"
    trace = _stock_run(logdir, "nested_models")
    client, _ = make_client(logdir)
    (name,) = [s["name"] for s in client.get(f"{BASE}/sessions").json["sessions"]]

    def source():
        r = client.get(f"{BASE}/layers", query_string={"session": name, "wait": "60"})
        assert r.status_code == 200, r.data[:300]
        return r.json["attribution_source"]

    assert source() == "trace_graph"
    _events(trace).unlink()
    assert source() == "trace_names"
