"""The ops rows' JSON written natively from the ops (oprows.iter_op_json) is, byte for byte,
the compact JSON of the row dicts (oprows.iter_op_rows): on every committed trace, for every
kind of selection and filter, and on odd values made to reach each branch of the C side.

The reference is json's own encoder over the row dicts: it shares no code with the C rows.
"""

from __future__ import annotations

import json
from array import array
from pathlib import Path

import pytest

from tb_metal_plugin import api, oprows
from tb_metal_plugin.breakdown import AttributedOp
from tb_metal_plugin.devices import Placement
from tb_metal_plugin.jsonout import json_chunks_around
from tb_metal_plugin.opphase import Attribution
from tb_metal_plugin.oprecord import OpRecord

ROOT = Path(__file__).resolve().parent.parent
TRACES = sorted((ROOT / "demo" / "logs").rglob("*.xplane.pb")) + sorted(
    (ROOT / "tests" / "fixtures").rglob("*.xplane.pb")
)
NATIVE = oprows.native_rows

needs_native = pytest.mark.skipif(
    NATIVE is None, reason="C extension not built (python setup.py build_ext --inplace)"
)


def _reference(rows: list[dict]) -> str:
    return json.dumps(rows, separators=(",", ":"))


def _joined(ops, sel, native: bool, monkeypatch, rows: int = 256) -> str:
    monkeypatch.setattr(oprows, "native_rows", NATIVE if native else None)
    return "[" + ",".join(oprows.iter_op_json(ops, sel, rows)) + "]"


def _selections(prof):
    yield None
    yield "avg"
    if prof.steps:
        yield prof.steps[-1]


@pytest.mark.parametrize("trace", TRACES, ids=lambda p: str(p.relative_to(ROOT)))
@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_committed_traces_rows_json_is_json_of_the_rows(trace, native, monkeypatch):
    if native and NATIVE is None:
        pytest.skip("C extension not built")
    prof = api.load_file(trace)
    for step in _selections(prof):
        sel = prof._selection(step)
        want = _reference(list(oprows.iter_op_rows(prof._ops, sel)))
        assert _joined(prof._ops, sel, native, monkeypatch) == want, step


@needs_native
def test_filters_and_the_cli_payload_agree_with_the_dict_rows():
    trace = next(p for p in TRACES if "resnet" in str(p) or "conv" in str(p))
    prof = api.load_file(trace)
    layer = next(p for p in prof.layer_paths() if "/" in p)
    bucket = next(r["bucket"] for r in prof.ops()["ops"] if not r["layer"] and r["bucket"])
    for kwargs in ({}, {"layer": layer}, {"bucket": bucket}, {"step": "avg"}):
        head, rows = prof.ops_rows(**kwargs)
        rows = list(rows)
        assert rows, kwargs
        head2, pieces = prof.ops_json(**kwargs)
        got = "".join(json_chunks_around(head2, "ops", pieces))
        assert json.loads(got) == {**head, "ops": rows}
        assert got == json.dumps({**head, "ops": rows}, separators=(",", ":"))


def _op(name, type_, layer, placement, slots=3, self_ps=(5, 7, 0), count=(1, 2, 0), stats=None):
    rec = OpRecord(name, type_, slots)
    rec.self_ps = array("q", self_ps)
    rec.total_ps = array("q", [v + (v < 2**62) for v in self_ps])
    rec.count = array("i", count)
    if stats:
        rec.stats = stats
    att = Attribution(layer, "forward" if layer else "other", None if layer else "root", "x")
    return AttributedOp(rec, att, placement)


class _Sel:
    """A selection over three slots: the whole window, the last two, or their mean."""

    def __init__(self, lo, hi, div, whole):
        self._lo, self._hi, self.divisor, self._whole = lo, hi, div, whole

    def bounds(self):
        return self._lo, None if self._whole else self._hi, self.divisor

    def summers(self):
        lo, hi, div = self._lo, self._hi, self.divisor

        def total(v):
            return sum(v[lo:hi]) // div

        def count(v):
            t = sum(v[lo:hi])
            return round(t / div, 2) if div > 1 else t

        return total, count


CPU = Placement("CPU:0", "CPU", "assumed")
ODD_OPS = [
    # Characters json escapes, in the name, the type and a layer; a device id that is no
    # str (json writes the key "null"); a fallback; a copy with and without stats; an op
    # on a device timeline (its row is made whole, by the Python row function).
    _op('a/"q"\\b\n/MatMul', "MatMul", ("m", "dénse\t"), CPU),
    _op("é/𝔸/Relu", "Relu\x01", None, Placement(None, "CPU", "assumed")),
    _op("f/Sin", "Sin", ("m",), Placement("CPU:0", "CPU", "kernel", "no_gpu_kernel", 'why "')),
    _op("c/_Send", "_Send", ("m",), CPU, stats={"from": "GPU:0", "to": "CPU:0"}),
    _op("c/_Recv", "_Recv", None, CPU),
    _op("d/Conv", "Conv2D", ("m", "c"), Placement("GPU:0", "GPU", "device_plane")),
    _op("big/Add", "Add", ("m",), CPU, self_ps=(2**62, 2**62 - 1, 0)),  # past int64 summed
    _op("neg/Sub", "Sub", ("m",), CPU, self_ps=(-7, 2, 0)),  # floor division of a negative
    _op("none/NoOp", "NoOp", ("m",), CPU, count=(0, 0, 0)),  # no event: no row
    _op("one/Id", "Identity", (), CPU, count=(0, 0, 3)),  # an empty layer is null
]


@needs_native
@pytest.mark.parametrize("sel", [(0, 3, 1, True), (1, 3, 1, False), (0, 2, 2, False)])
@pytest.mark.parametrize("rows", [1, 3, 256])
def test_odd_values_write_the_bytes_json_writes(sel, rows, monkeypatch):
    sel = _Sel(*sel)
    want = _reference(list(oprows.iter_op_rows(ODD_OPS, sel)))
    assert _joined(ODD_OPS, sel, True, monkeypatch, rows) == want
    assert _joined(ODD_OPS, sel, False, monkeypatch, rows) == want


@needs_native
def test_values_only_json_encodes_send_the_batch_to_the_python_path(monkeypatch):
    odd = [_op("w/MatMul", "MatMul", ("m", object()), CPU), *ODD_OPS[:2]]
    sel = _Sel(0, 3, 1, True)
    assert NATIVE is not None
    picked, _ = oprows._picked(odd, sel)
    assert NATIVE(picked, 0, 3, 1, {}, oprows._pieces, None, frozenset()) is None
    with pytest.raises(TypeError):  # json refuses it, as it does on the dict rows
        _joined(odd, sel, True, monkeypatch)
