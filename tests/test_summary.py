"""The callback's summary and the notebook view show the CLI's figures, from the same core.

Fast: committed demo traces (the augment run as a Mac records it, GPU host-side plus CPU
fallbacks); expected figures are formatted here from the JSON payload, not by the package.
"""

from __future__ import annotations

import copy
import json
import re
from html import unescape
from pathlib import Path

import pytest
from click.testing import CliRunner

from tb_metal_plugin import api
from tb_metal_plugin.cli import main
from tb_metal_plugin.compare import compare
from tb_metal_plugin.notebook import layers_html
from tb_metal_plugin.summary import print_after_window, summary_text
from tests.metal_like import make_metal_like

DEMO = Path(__file__).resolve().parents[1] / "demo" / "logs"


@pytest.fixture(scope="module")
def metal(tmp_path_factory):
    return make_metal_like(DEMO / "augment", tmp_path_factory.mktemp("metal") / "augment")


def _time(ps: int) -> str:
    return f"{ps / 1e12:.3f} s" if ps >= 1e12 else (
        f"{ps / 1e9:.3f} ms" if ps >= 1e9 else f"{ps / 1e6:.1f} µs")  # fmt: skip


def _nodes(data: dict):
    stack = [(0, n) for n in reversed(data["layers"])]
    while stack:
        depth, n = stack.pop()
        yield depth, n
        stack += [(depth + 1, c) for c in reversed(n["children"])]
    for b in data["buckets"]:
        yield 0, b


def _expected(n: dict) -> list[str]:
    """The figures every face must show for a node: time, clock, share, lanes, fallbacks."""
    want = [_time(n["total_ps"]), f"{100 * n['share']:.1f}%"]
    if n["clock"]:
        want.append(n["clock"])
    lanes = [(k, v) for k, v in n["devices"].items() if v]
    if n["clock"] == "mixed":  # each lane's time, never a share across clocks
        want += [_time(v) for _, v in lanes]
    if n["fallback_count"]:
        want.append(f"{n['fallback_count']} ops")
    return want


def _html_rows(html: str) -> dict[str, list[str]]:
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", html):
        cells = [unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
        if cells:  # the header row has <th> cells only
            rows[cells[0]] = cells
    return rows


def test_cli_summary_and_notebook_show_the_same_figures(metal):
    data = json.loads(CliRunner().invoke(main, ["layers", str(metal), "--format", "json"]).output)
    cli = CliRunner().invoke(main, ["layers", str(metal), "--wide"]).output.splitlines()
    prof = api.load_profile(metal)
    summary = prof.summary(width=None).splitlines()
    html = _html_rows(prof._repr_html_())
    assert prof.layers()._repr_html_() == prof._repr_html_()
    checked = 0
    for depth, n in _nodes(data):
        name = f"[{n['name']}]" if n.get("bucket") else n["name"]
        row = "  " * depth + name + " "
        cli_line = next(ln for ln in cli if ln.startswith(row))
        sum_line = next(ln for ln in summary if ln.startswith(row))
        cells = html[name]
        for want in _expected(n):
            assert want in cli_line, (name, want)
            assert want in sum_line, (name, want)
            assert any(want in c for c in cells), (name, want)
        checked += 1
    assert checked >= 10
    # The Metal run really exercises the interesting cases.
    assert any(n["clock"] == "mixed" for _, n in _nodes(data))
    assert any(n["fallback_count"] for _, n in _nodes(data))


def test_summary_fits_and_lists_fallbacks_by_layer(metal):
    data = api.load_profile(metal).layers("all")
    text = summary_text(data, 80)
    assert max(len(ln) for ln in text.splitlines()) <= 80
    fell = {"/".join(f["path"]) for f in data["fallbacks"] if f["path"]}
    assert fell and all(f"  {p}: " in text for p in fell)
    # Each layer's reasons once: an op type is named once per layer.
    rotation = re.split(r"\n  (?! )", text[text.index("augment/random_rotation:") :])[0]
    types = [
        f["op_type"] for f in data["fallbacks"] if (f["path"] or [])[-1:] == ["random_rotation"]
    ]
    assert len(types) > 1 and all(rotation.count(t) == 1 for t in types)


def test_callback_hook_is_quiet_when_asked(metal, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    trace = next(metal.rglob("*.xplane.pb"))
    printed: list[str] = []
    assert print_after_window([trace], verbose=0, print_fn=printed.append) == []
    assert print_after_window([trace], enabled=False, print_fn=printed.append) == []
    assert printed == []
    want = api.load_profile(trace).summary(width=100)
    assert print_after_window([trace], verbose=2, print_fn=printed.append) == [want]
    # Below Keras' one-line progress bar (verbose 1 or "auto"), never on it.
    assert print_after_window([trace], verbose="auto", print_fn=printed.append) == [want]
    assert printed == [want, "\n" + want]


def test_callback_hook_never_raises(tmp_path):
    bad = tmp_path / "train" / "plugins" / "profile" / "s" / "h.xplane.pb"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a protobuf at all")
    printed: list[str] = []
    with pytest.warns(RuntimeWarning, match="no summary for"):
        assert print_after_window([bad], print_fn=printed.append) == []
    assert printed == []


def test_comparison_renders_as_html_with_the_cli_figures(metal):
    a, b = api.load_profile(DEMO / "cnn").layers("avg"), api.load_profile(DEMO / "cnn_cpu")
    data = compare([a, b.layers("avg")], ["cnn", "cnn_cpu"])
    rows = _html_rows(data._repr_html_())
    table = CliRunner().invoke(main, ["compare", str(DEMO / "cnn"), str(DEMO / "cnn_cpu"),
                                      "--wide"]).output  # fmt: skip
    conv1 = next(r for r in data["rows"] if r["key"][-1:] == ["conv1"])
    cells = rows["conv1"]
    assert _time(conv1["total_ps"][0]) in cells and _time(conv1["total_ps"][1]) in cells
    assert f"{conv1['speedup'][1]:.2f}x" in cells
    line = next(ln for ln in table.splitlines() if ln.strip().startswith("conv1 "))
    assert all(c in line for c in cells if c)
    assert "[loss]" in rows and json.loads(json.dumps(data)) == dict(data)


def test_html_escapes_names(metal):
    data = copy.deepcopy(dict(api.load_profile(metal).layers()))
    data["layers"][0]["name"] = "<script>x</script>"
    html = layers_html(data)
    assert "<script>" not in html and "&lt;script&gt;" in html
