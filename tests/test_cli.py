"""The tb-metal CLI over real traces: formats, selectors, exit codes."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner

from tb_metal_plugin.cli import main


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def test_layers_table_reads_well(corpus):
    r = run("layers", corpus["functional_collide"])
    assert r.exit_code == 0, r.output
    assert "dense_1" in r.output and "ln_a0" in r.output
    assert "[optimizer]" in r.output and "host-side" in r.output


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
