"""Compact JSON written in pieces equals json.dumps of the whole payload, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tb_metal_plugin import api
from tb_metal_plugin.cli import main
from tb_metal_plugin.jsonout import json_chunks

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


def test_cli_prints_the_pieces_as_one_line():
    out = CliRunner().invoke(main, ["ops", str(TRACE), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert out.output == compact(api.load_profile(TRACE).ops()) + "\n"
