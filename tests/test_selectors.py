"""Step, layer and bucket selectors: one parser in the API, the same rules for every face."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tb_metal_plugin import api
from tb_metal_plugin.cli import main
from tb_metal_plugin.errors import InvalidArgumentError, NotFoundError
from tb_metal_plugin.selectors import parse_bucket, parse_layer, parse_step

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo" / "logs"


@pytest.fixture(scope="module")
def prof() -> api.Profile:
    return api.load_profile(DEMO, run="augment/train")


@pytest.mark.parametrize(
    ("raw", "step"),
    [(None, None), ("", None), ("all", None), ("total", None), ("avg", "avg"), ("3", 3),
     (3, 3), ("007", 7), (2**53 - 1, 2**53 - 1)],
)  # fmt: skip
def test_steps_that_parse(raw, step):
    assert parse_step(raw) == step


@pytest.mark.parametrize(
    "raw", ["٢", "+2", " 2", "2 ", "2_0", "-1", "1e3", "3.0", "0x1", True, -1, 2**53, 3.0, "a"]
)
def test_steps_that_do_not_parse(raw):
    with pytest.raises(InvalidArgumentError, match="ASCII digits"):
        parse_step(raw)


def test_layers_parse_from_names_or_json_text():
    assert parse_layer(["m", "d"]) == parse_layer('["m","d"]') == ("m", "d")
    assert parse_layer("m/d") == ("m", "d")  # the CLI's spelling
    assert parse_layer(None) is None and parse_layer("") is None
    for bad in ("/", '[{"a": 1}]', "[1, 2]", "[]", '[""]', "[" * 5000, ["m", 1], 3):
        with pytest.raises(InvalidArgumentError):
            parse_layer(bad)


def test_buckets_are_the_tree_s_names():
    assert parse_bucket("optimizer") == "optimizer"
    assert parse_bucket("input pipeline") == "input pipeline"
    with pytest.raises(InvalidArgumentError, match="bucket must be one of"):
        parse_bucket("input")  # the key, not the name the tree shows


def test_every_face_gets_the_same_step_rule(prof):
    """The API parses the CLI's text and Python's ints alike; a non-ASCII digit is refused."""
    assert prof.layers("2")["step"] == prof.layers(2)["step"] == 2
    with pytest.raises(InvalidArgumentError):
        prof.layers("٢")
    r = CliRunner().invoke(main, ["layers", str(DEMO), "--run", "augment/train", "--step", "٢"])
    assert r.exit_code == 2 and "ASCII digits" in r.output
    with pytest.raises(NotFoundError, match="profiled steps: 2, 3"):
        prof.ops(99)


def test_ops_of_each_bucket_add_up_to_the_bucket(prof):
    tree = prof.layers()
    every = prof.ops()["ops"]
    in_layers = [o for o in every if o["layer"]]
    seen = len(in_layers)
    for bucket in tree["buckets"]:
        ops = prof.ops(bucket=bucket["name"])["ops"]
        assert ops and all(o["layer"] is None and o["bucket"] == bucket["name"] for o in ops)
        assert sum(o["time_ps"] for o in ops) == bucket["total_ps"]
        seen += len(ops)
    assert seen == len(every)  # layers and buckets partition the ops


def test_ops_of_a_layer_by_names_or_json(prof):
    node = prof.layers()["layers"][0]["children"][0]
    by_list = prof.ops(layer=node["path"])["ops"]
    assert by_list == prof.ops(layer=json.dumps(node["path"]))["ops"]
    assert sum(o["time_ps"] for o in by_list) == node["total_ps"]


def test_bad_filters_are_typed_errors(prof):
    with pytest.raises(NotFoundError, match="in this profile .closest: "):
        prof.ops(layer=["augment", "no_such_layer"])
    with pytest.raises(InvalidArgumentError, match="not both"):
        prof.ops(layer=["augment"], bucket="optimizer")


def test_cli_filters_by_bucket_through_the_api(prof):
    args = ["ops", str(DEMO), "--run", "augment/train", "--bucket", "optimizer", "--format", "json"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["ops"] == prof.ops(bucket="optimizer")["ops"]


def test_an_empty_logdir_says_how_to_record(tmp_path):
    with pytest.raises(NotFoundError, match=f"no profile sessions under {tmp_path} .*record one"):
        api.load_profile(tmp_path)
