"""Compact JSON written in pieces equals json.dumps of the whole payload, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tb_metal_plugin import api
from tb_metal_plugin.cli import main
from tb_metal_plugin.jsonout import json_chunks, json_chunks_of

ROOT = Path(__file__).resolve().parent.parent
TRACE = next((ROOT / "tests" / "fixtures" / "gt" / "conv_bn" / "stock").rglob("*.xplane.pb"))


def compact(data) -> str:
    return json.dumps(data, separators=(",", ":"))


@pytest.fixture(scope="module")
def payloads() -> list[dict]:
    prof = api.load_file(TRACE)
    return [prof.ops(), prof.ops("avg"), dict(prof.layers()), prof.layers("avg")]


@pytest.mark.parametrize("rows", [1, 2, 3, 7, 256])
def test_pieces_of_real_payloads_join_to_json_dumps(payloads, rows):
    for data in payloads:
        pieces = list(json_chunks(data, rows))
        assert "".join(pieces) == compact(data)
        if rows < len(data["ops" if "ops" in data else "layers"]):
            assert len(pieces) > len(data)  # the long list really went out in slices


EDGES = [
    {},
    [],
    [1, 2, 3],
    "text",
    {"a": []},
    {"a": [1, 2]},  # exactly `rows` long: one piece
    {"a": [1, 2, 3], "b": [[4], {"c": [5, 6, 7]}], "d": None},
    {"naïve\x1b": ["µs", "\u2028", float("nan"), float("inf"), -0.0, 1e300, True]},
    {2: [1, 2, 3], None: "x", True: [4, 5, 6]},  # json converts keys that are not strings
    {"x": list(range(10)), "y": {"z": list(range(5))}},
]


@pytest.mark.parametrize("data", EDGES, ids=range(len(EDGES)))
def test_pieces_of_edge_cases_join_to_json_dumps(data):
    for rows in (1, 2, 3):
        assert "".join(json_chunks(data, rows)) == compact(data)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 7])
def test_streamed_items_join_to_json_dumps_of_the_whole(payloads, n):
    rows = payloads[0]["ops"][:n]
    head = {k: v for k, v in payloads[0].items() if k != "ops"}
    for size in (1, 2, 3, 256):
        consumed = []
        items = (consumed.append(r) or r for r in rows)  # a one-pass iterator
        pieces = json_chunks_of(head, "ops", items, size)
        first = next(pieces)
        assert not consumed  # the head goes out before any item is made
        assert first + "".join(pieces) == compact({**head, "ops": rows})
    for odd in ({}, {"ops": 1, "x": 2}, {3: "int key"}):  # empty head; key present; int key
        assert "".join(json_chunks_of(odd, "ops", iter(rows), 2)) == compact({**odd, "ops": rows})


def test_cli_prints_the_pieces_as_one_line():
    prof = api.load_profile(TRACE)
    for extra, want in (
        ([], prof.ops()),
        (["--bucket", "optimizer"], prof.ops(bucket="optimizer")),
    ):
        out = CliRunner().invoke(main, ["ops", str(TRACE), "--format", "json", *extra])
        assert out.exit_code == 0, out.output
        assert out.output == compact(want) + "\n"
    assert prof.ops(bucket="optimizer")["ops"]  # the filter kept some rows, not all
    assert len(prof.ops(bucket="optimizer")["ops"]) < len(prof.ops()["ops"])


def _random_value(rng, depth=0):
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 2**63 - 1, -(2**63), 2**64, -(2**100)]) + rng.randrange(-9, 9)
    if kind == 2:
        specials = [0.0, -0.0, 5e-324, 1e300, 1 / 3, float("nan"), float("inf"), -float("inf")]
        return rng.choice(specials + [rng.uniform(-1e6, 1e6)])
    if kind in (3, 4, 5):
        # ASCII, the escapes, Latin-1, the BMP (lone surrogates too), beyond it.
        pools = [(32, 127), (0, 32), (127, 256), (256, 0xFFFF), (0x10000, 0x10FFFF)]
        return "".join(chr(rng.randrange(*rng.choice(pools))) for _ in range(rng.randrange(12)))
    if kind == 6:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 7:
        return tuple(_random_value(rng, depth + 1) for _ in range(rng.randrange(3)))
    return {str(_random_value(rng, 4)): _random_value(rng, depth + 1) for _ in range(4)}


def test_native_encoder_writes_json_dumps_bytes(payloads):
    native = pytest.importorskip("tb_metal_plugin._jsonrows")
    import random

    rng = random.Random(15)
    values = [_random_value(rng) for _ in range(3000)] + payloads[:2]
    for value in values:
        assert native.encode(value) == compact(value), value
    # It took every plain value itself (no fallback to json for them).
    assert all(native.encode(v) is not None for v in values)


class _Items(dict):
    def items(self):  # json calls this on a dict subclass: only json may encode it
        return [("b", 2)]


@pytest.mark.parametrize(
    "value", [{1: "int key"}, {"a": {None: 1}}, _Items(a=1), [set()], {"a": object()}]
)
def test_native_encoder_leaves_odd_values_to_json(value):
    native = pytest.importorskip("tb_metal_plugin._jsonrows")
    assert native.encode(value) is None
    from tb_metal_plugin.jsonout import compact as both

    try:
        want = compact(value)
    except TypeError as e:
        with pytest.raises(TypeError, match=str(e)):
            both(value)
    else:
        assert both(value) == want


def test_native_encoder_stops_at_a_cycle():
    native = pytest.importorskip("tb_metal_plugin._jsonrows")
    loop: list = []
    loop.append(loop)
    assert native.encode(loop) is None  # json then raises its own error
    assert native.encode([[[[1]]]] * 3) == "[[[[1]]],[[[1]]],[[[1]]]]"
