"""The tb-metal CLI over real traces: formats, selectors, exit codes, tables that fit.

The corpus tests record with TensorFlow (slow tier); the rest run on the committed demo
traces (fast tier).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tb_metal_plugin import api
from tb_metal_plugin.cli import main
from tests.metal_like import make_metal_like


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def test_layers_table_reads_well(corpus):
    r = run("layers", corpus["functional_collide"])
    assert r.exit_code == 0, r.output
    assert "dense_1" in r.output and "ln_a0" in r.output
    # A CPU-only run: its note speaks of CPU time, not of GPU-placed ops.
    assert "[optimizer]" in r.output and "no GPU" in r.output and "host-side" not in r.output


def test_layers_json_and_csv_agree(corpus):
    j = json.loads(run("layers", corpus["attention"], "--format", "json").output)
    rows = list(
        csv.DictReader(io.StringIO(run("layers", corpus["attention"], "--format", "csv").output))
    )
    top = j["layers"][0]
    row = next(r for r in rows if r["path"] == "/".join(top["path"]))
    assert int(row["total_ps"]) == top["total_ps"]


def test_ops_json_has_the_documented_keys(corpus):
    r = run("ops", corpus["lstm"], "--format", "json")
    data = json.loads(r.output)
    keys = {
        "name",
        "type",
        "layer",
        "phase",
        "device",
        "device_source",
        "count",
        "self_ps",
        "total_ps",
    }
    assert data["ops"] and all(keys <= set(o) for o in data["ops"])
    assert all(":" not in o["name"] for o in data["ops"])
    assert any(o["name"].startswith("StatefulPartitionedCall/") for o in data["ops"])


def test_ops_filtered_by_layer_and_step(corpus):
    path = corpus["functional_collide"]
    layers = json.loads(run("layers", path, "--format", "json").output)
    model = layers["layers"][0]["name"]
    step = layers["steps"][0]
    data = json.loads(
        run("ops", path, "--layer", f"{model}/head", "--step", step, "--format", "json").output
    )
    assert data["ops"] and all(o["layer"][:2] == [model, "head"] for o in data["ops"])
    assert data["step"] == step


def test_bad_step_is_a_clear_error(corpus):
    r = run("layers", corpus["sequential"], "--step", "999")
    assert r.exit_code == 2 and "step 999" in r.output
    r = run("layers", corpus["sequential"], "--step", "banana")
    assert r.exit_code == 2 and "step must be" in r.output


# -- fast: committed demo traces, no TensorFlow ----------------------------------------------

DEMO = Path(__file__).resolve().parents[1] / "demo" / "logs"


@pytest.fixture(scope="module")
def metal_augment(tmp_path_factory):
    """The real augment demo run with its manifest as a Mac records it (GPU host-side + CPU)."""
    return make_metal_like(DEMO / "augment", tmp_path_factory.mktemp("metal") / "augment")


def fast(*args, columns=None):
    env = {"COLUMNS": str(columns)} if columns else {}
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


COMMANDS = [
    ["layers", "{metal}"],
    ["layers", DEMO / "cnn", "--step", "avg"],
    ["ops", "{metal}", "--limit", "0"],
    ["metal-check", "{metal}"],
    ["compare", "{metal}", DEMO / "augment_cpu"],
    ["compare", DEMO / "cnn", DEMO / "cnn_cpu"],
]


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(str(x)[-12:] for x in a))
def test_tables_fit_the_terminal_unless_wide(metal_augment, args, columns):
    args = [metal_augment if a == "{metal}" else a for a in args]
    r = fast(*args, columns=columns)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines and max(len(ln) for ln in lines) <= columns, max(lines, key=len)
    wide = fast(*args, "--wide", columns=columns)
    assert wide.exit_code == 0, wide.output
    # --wide shows everything: at least as many characters, and the widest line is wider.
    assert max(len(ln) for ln in wide.output.splitlines()) > columns
    assert "hidden to fit" not in wide.output


def test_ops_names_shortened_in_the_middle_full_with_wide(metal_augment):
    data = json.loads(fast("ops", metal_augment, "--format", "json").output)
    names = [o["name"] for o in data["ops"][:10]]
    narrow = fast("ops", metal_augment, "--limit", "10", columns=80).output.splitlines()[2:12]
    for name, line in zip(names, narrow, strict=True):
        cell = line.split("  ")[0]
        if len(name) > len(cell):
            head, _, tail = cell.partition("…")
            # The end identifies the op: more of it is kept than of the start.
            assert name.startswith(head) and name.endswith(tail) and len(tail) > len(head)
        else:
            assert cell == name
    wide = fast("ops", metal_augment, "--limit", "10", "--wide").output
    assert all(n in wide for n in names)


def test_phase_columns_only_when_some_layer_has_that_phase():
    data = json.loads(fast("layers", DEMO / "augment", "--format", "json").output)
    nodes = list(data["buckets"])
    stack = list(data["layers"])
    while stack:
        n = stack.pop()
        nodes.append(n)
        stack += n["children"]
    used = {p for n in nodes for p, ps in n["phases"].items() if ps}
    lines = fast("layers", DEMO / "augment", "--wide").output.splitlines()
    header = next(ln for ln in lines if ln.startswith("layer ")).split()
    phases = {"forward", "backward", "optimizer", "loss", "metrics", "input", "other"}
    assert set(header) & phases == used
    # The optimizer bucket's time shows in its own phase column, not as blank forward/backward.
    opt = next(b for b in data["buckets"] if b["name"] == "optimizer")
    line = next(ln for ln in fast("layers", DEMO / "augment", "--wide").output.splitlines()
                if ln.startswith("[optimizer]"))  # fmt: skip
    assert _time(opt["phases"]["optimizer"]) in line


def _time(ps: int) -> str:
    """A time as the tables print it (written here, not taken from the package)."""
    return f"{ps / 1e9:.3f} ms" if ps >= 1e9 else f"{ps / 1e6:.1f} µs"


def test_buckets_are_marked_alike_in_every_command(metal_augment):
    outs = [
        fast("layers", metal_augment, "--wide").output,
        fast("ops", metal_augment, "--limit", "0", "--wide").output,
        fast("compare", metal_augment, DEMO / "augment_cpu", "--wide").output,
    ]
    for out in outs:
        assert "[loss]" in out and "(loss)" not in out


def test_layer_filter_takes_a_path_in_cli_and_api(metal_augment):
    want = ["augment", "random_rotation"]
    r = fast("ops", metal_augment, "--layer", "augment/random_rotation", "--format", "json")
    assert r.exit_code == 0, r.output
    ops = json.loads(r.output)["ops"]
    assert ops and all(o["layer"][:2] == want for o in ops)
    # Every op created in the layer's name scope is there (ground truth: the op names).
    everything = json.loads(fast("ops", metal_augment, "--format", "json").output)["ops"]
    scoped = {o["name"] for o in everything if "/random_rotation_1/" in o["name"]}
    assert scoped and scoped <= {o["name"] for o in ops}
    prof = api.load_profile(metal_augment)
    as_text = prof.ops(layer="augment/random_rotation")["ops"]
    assert as_text == prof.ops(layer=want)["ops"] == ops


@pytest.mark.parametrize(
    "layer,closest",
    [
        ("random_rotation", "augment/random_rotation"),
        ("augment/random_rotaton", "augment/random_rotation"),
        ("augment/conv", "augment/conv1"),
    ],  # fmt: skip
)
def test_unknown_layer_is_an_error_naming_the_closest(metal_augment, layer, closest):
    r = CliRunner().invoke(main, ["ops", str(metal_augment), "--layer", layer])
    assert r.exit_code == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and closest in err[0] and layer in err[0]
    with pytest.raises(api.UnknownLayerError) as info:
        api.load_profile(metal_augment).ops(layer=layer)
    assert info.value.matches[0] == closest
    assert isinstance(info.value, api.TbMetalError)


def test_empty_logdir_says_how_to_record(tmp_path):
    (tmp_path / "train").mkdir()
    for cmd in (["layers"], ["ops"], ["metal-check"]):
        r = CliRunner().invoke(main, [*cmd, str(tmp_path)])
        assert r.exit_code == 2
        assert r.stderr.strip().splitlines() == [
            f"tb-metal: error: no profile sessions under {tmp_path} (no "
            "plugins/profile/*/*.xplane.pb); record one with MetalProfileCallback or "
            "keras.callbacks.TensorBoard(profile_batch=...)"
        ]
