"""Fitting tables to the terminal: middle shortening, wrapping, hiding columns, device split.

Fast: plain strings and the committed demo traces; widths are checked by counting characters.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tb_metal_plugin import api
from tb_metal_plugin.formatting import device_split, layers_table, ops_table
from tb_metal_plugin.table_fit import (
    Col,
    render,
    shorten_middle,
    terminal_width,
    wrap,
    wrap_fields,
)

DEMO = Path(__file__).resolve().parents[1] / "demo" / "logs"
NAME = "StatefulPartitionedCall/gradient_tape/augment_1/conv1_1/convolution/Conv2DBackpropFilter"


@pytest.mark.parametrize("width", [10, 24, 40, len(NAME) - 1])
def test_shorten_middle_keeps_both_ends(width):
    out = shorten_middle(NAME, width, head=0.25)
    assert len(out) == width and out.count("…") == 1
    head, tail = out.split("…")
    assert NAME.startswith(head) and NAME.endswith(tail) and len(tail) >= len(head)
    assert shorten_middle(NAME, len(NAME)) == NAME
    # An indented tree name keeps its indent.
    assert shorten_middle("    random_rotation", 12).startswith("    r")


def test_terminal_width_honours_columns_and_wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "97")
    assert terminal_width() == 97 and terminal_width(wide=True) is None
    monkeypatch.setenv("COLUMNS", "junk")
    assert terminal_width() >= 1


def test_render_shrinks_then_hides_extras_and_says_so():
    cols = [Col("name", min=6), Col("total", right=True), Col("extra", drop=9), Col("x", drop=1)]
    rows = [["a_rather_long_layer_name", "1.0 ms", "something", "y"], ["b", "2.0 ms", "", "z"]]
    full, hidden = render(cols, rows, None)
    assert hidden == [] and "a_rather_long_layer_name" in full
    text, hidden = render(cols, rows, 35)
    assert hidden == ["extra"] and all(len(ln) <= 35 for ln in text.splitlines())
    # Extras go before a name is shortened.
    assert "a_rather_long_layer_name" in text
    text, hidden = render(cols, rows, 30)
    assert hidden == ["extra"] and max(len(ln) for ln in text.splitlines()) == 30
    assert "a_rather_long_layer_name" not in text and "a_rath" in text
    text, hidden = render(cols, rows, 16)
    assert hidden == ["extra", "x"] and all(len(ln) <= 16 for ln in text.splitlines())
    assert "…" in text and "2.0 ms" in text


def test_wrap_columns_break_at_their_separator():
    cols = [Col("layer"), Col("devices", min=13, wrap=" + ")]
    text, _ = render(cols, [["dense", "GPU* 4.879 ms + CPU 1.140 ms"]], 22)
    lines = text.splitlines()[2:]
    assert [ln.split("  ", 1)[1].strip() for ln in lines] == ["GPU* 4.879 ms", "CPU 1.140 ms"]


def test_wrap_notes():
    words = "no device timeline in this trace " * 6
    assert all(len(ln) <= 40 for ln in wrap(words, 40, "      ", "note: "))
    assert wrap(words, None, "  ", "note: ") == ["note: " + words]


def test_device_split_never_divides_across_clocks():
    mixed = {"devices": {"GPU (host-side)": 3_000_000_000, "CPU": 1_000_000}, "clock": "mixed"}
    assert device_split(mixed) == "GPU* 3.000 ms + CPU 1.0 µs"
    one_clock = {"devices": {"GPU": 300, "CPU": 100}, "clock": "device"}
    assert device_split(one_clock) == "GPU 75% CPU 25%"
    assert device_split({"devices": {"CPU": 5}, "clock": "host"}) == "CPU"


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_demo_tables_fit_every_width(width):
    prof = api.load_profile(DEMO / "custom_op")
    for text in (layers_table(prof.layers("avg"), width), ops_table(prof.ops(), 0, width)):
        assert max(len(ln) for ln in text.splitlines()) <= width


def test_header_fields_are_never_split_from_their_value():
    fields = ["session train/2026_11_25_16_38_02", "host vm", "steps 2,3", "attribution: manifest"]
    for width in (30, 50, 80):
        lines = wrap_fields(fields, width)
        assert all(len(ln) <= width for ln in lines)
        text = "\n".join(lines)
        assert all(f in text for f in fields[1:])
    assert wrap_fields(fields, None) == ["  ".join(fields)]
