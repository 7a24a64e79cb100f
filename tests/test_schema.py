"""One schema: real payloads of the committed traces validate against docs/schema.json, and
the files generated from tb_metal_plugin/schema.py are what `python scripts/gen_schema.py`
makes (so nobody edits types.ts or json-api.md's field tables by hand)."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

import tb_metal_plugin
from tb_metal_plugin import api, compare, doctor, readiness
from tests import schema_check

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo" / "logs"
TRACES = sorted([*DEMO.rglob("*.xplane.pb"), *(ROOT / "tests/fixtures").rglob("*.xplane.pb")])
# Demo runs recorded with their CPU-only twin: the pairs the compare view is for.
PAIRS = [("augment", "augment_cpu"), ("cnn", "cnn_cpu"), ("custom_op", "custom_op_cpu")]


def _gen():
    spec = importlib.util.spec_from_file_location("gen_schema", ROOT / "scripts/gen_schema.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@cache
def _profile(path: Path) -> api.Profile:
    return api.load_file(path)


def _demo(run: str) -> api.Profile:
    return _profile(next((DEMO / run).rglob("*.xplane.pb")))


def assert_valid(name: str, payload, use_jsonschema: bool = True) -> None:
    errs = schema_check.errors(name, payload, use_jsonschema)
    assert not errs, f"{name}: {len(errs)} errors, first: {errs[:3]}"


# -- the generated files ------------------------------------------------------------


def test_generated_files_are_what_the_generator_makes():
    stale = [
        str(path.relative_to(ROOT))
        for path, text in _gen().outputs().items()
        if path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"stale or hand-edited: {stale}; run `python scripts/gen_schema.py`"


def test_a_hand_edit_of_types_ts_is_caught(tmp_path):
    gen = _gen()
    expected = gen.outputs()[gen.TYPES_PATH]
    edited = expected.replace("  op_count: number;", "  op_count: number;\n  extra?: unknown;", 1)
    assert edited != expected
    assert edited != gen.TYPES_PATH.read_text(encoding="utf-8")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_frontend_build_checks_types_ts(tmp_path):
    """`npm run typecheck` runs frontend/check-types.mjs: passes now, fails on a hand edit."""
    tree = tmp_path / "repo"
    (tree / "frontend" / "src").mkdir(parents=True)
    (tree / "docs").mkdir()
    shutil.copy(ROOT / "frontend/check-types.mjs", tree / "frontend")
    shutil.copy(ROOT / "docs/schema.json", tree / "docs")
    types_ts = tree / "frontend/src/types.ts"
    shutil.copy(ROOT / "frontend/src/types.ts", types_ts)
    script = str(tree / "frontend/check-types.mjs")
    assert subprocess.run(["node", script], capture_output=True).returncode == 0
    types_ts.write_text(types_ts.read_text() + "export type Extra = unknown;\n")
    r = subprocess.run(["node", script], capture_output=True, text=True)
    assert r.returncode == 1 and "edited by hand" in r.stderr


def test_no_escape_hatches_and_every_field_is_described():
    for name, d in schema_check.schema()["$defs"].items():
        if d.get("type") != "object":
            continue
        assert d["additionalProperties"] is False, name
        assert d["description"], name
        for key, p in d["properties"].items():
            assert p.get("description"), f"{name}.{key} has no description"


def test_every_time_names_its_clock():
    s = schema_check.schema()
    vocabulary = set(s["x-clocks"])
    for name, d in s["$defs"].items():
        for key, p in (d.get("properties") or {}).items():
            clock = p.get("x-clock")
            if key.endswith("_ps") or key == "ps":
                assert clock, f"{name}.{key} is a time without a clock"
            if clock and clock.startswith("field:"):
                assert clock[6:] in d["properties"], f"{name}.{key}: no field {clock[6:]}"
            elif clock:
                assert clock in vocabulary, f"{name}.{key}: unknown clock {clock}"


def test_package_json_version_is_the_package_version():
    pkg = json.loads((ROOT / "frontend/package.json").read_text())
    assert pkg["version"] == tb_metal_plugin.__version__


# -- real payloads validate ----------------------------------------------------------


@pytest.mark.parametrize("trace", TRACES, ids=lambda p: str(p.relative_to(ROOT)))
def test_payloads_of_every_committed_trace_validate(trace):
    # The small validator here (8x faster); jsonschema checks the same payloads of one
    # trace below, and both reject the same drift (test_the_validator_rejects...).
    prof = _profile(trace)
    for step in (None, "avg", *prof.steps[:1]):
        assert_valid("LayersPayload", prof.layers(step), use_jsonschema=False)
        ops = prof.ops(step)
        assert_valid("OpsPayload", ops, use_jsonschema=False)
    assert_valid("ReadinessPayload", readiness.check(ops, prof.manifest), False)
    layers = prof.layers()
    for node in layers["layers"][:1]:
        assert_valid("OpsPayload", prof.ops(layer=node["path"]), use_jsonschema=False)
    for bucket in layers["buckets"][:2]:
        assert_valid("OpsPayload", prof.ops(bucket=bucket["name"]), use_jsonschema=False)


def test_payloads_validate_with_jsonschema_too():
    pytest.importorskip("jsonschema")
    prof = _demo("augment")
    ops = prof.ops("avg")
    assert_valid("LayersPayload", prof.layers("avg"))
    assert_valid("OpsPayload", ops)
    assert_valid("ReadinessPayload", readiness.check(ops, prof.manifest))


@pytest.mark.parametrize(("gpu", "cpu"), PAIRS)
def test_compare_payloads_validate(gpu, cpu):
    for step in ("avg", None):
        payloads = [_demo(gpu).layers(step), _demo(cpu).layers(step)]
        assert_valid("ComparePayload", compare.compare(payloads, [gpu, cpu]))


def test_doctor_payloads_validate():
    envs = [_demo(run).manifest["environment"] for run in ("augment", "cnn_cpu")]
    mac = {**envs[0], "os": "Darwin", "machine": "arm64", "tensorflow_metal": "1.2.0"}
    envs.append({**mac, "tensorflow": "2.19.0", "physical_devices": ["/physical_device:GPU:0"]})
    envs.append({**mac, "tensorflow": "2.21.0", "physical_devices": []})
    statuses = set()
    for env in envs:
        verdict = doctor.check_environment(env)
        statuses.add(verdict["status"])
        assert_valid("DoctorVerdict", verdict)
    assert {"not_applicable", "broken"} <= statuses
    assert_valid("DoctorLogdirPayload", {"logdir": str(DEMO), "runs": doctor.check_logdir(DEMO)})


def test_the_validator_rejects_what_the_schema_forbids():
    """Each kind of drift fails, with jsonschema and with the fallback validator alike."""
    good = _demo("augment").layers()
    node = good["layers"][0]
    cases = []
    extra = copy.deepcopy(good)
    extra["layers"][0]["children"][0]["surprise"] = 1
    cases.append(extra)
    missing = copy.deepcopy(good)
    del missing["step_time_clock"]
    cases.append(missing)
    bad_clock = copy.deepcopy(good)
    bad_clock["layers"][0]["clock"] = "gpu"
    cases.append(bad_clock)
    bad_phase = copy.deepcopy(good)
    bad_phase["layers"][0]["phases"] = {"sideways": node["total_ps"]}
    cases.append(bad_phase)
    float_time = copy.deepcopy(good)
    float_time["total_ps"] = 1.5
    cases.append(float_time)
    for use_jsonschema in (True, False):
        assert not schema_check.errors("LayersPayload", good, use_jsonschema)
        for case in cases:
            assert schema_check.errors("LayersPayload", case, use_jsonschema)


# -- the routes' payloads validate ------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """The plugin over the demo logdir, plus one unreadable trace."""
    import os

    from tests.test_plugin import make_client

    logdir = tmp_path_factory.mktemp("logs")
    shutil.copytree(DEMO / "augment", logdir / "augment")
    shutil.copytree(DEMO / "augment_cpu", logdir / "augment_cpu")
    bad = logdir / "broken/train/plugins/profile/2026_01_01_00_00_00"
    bad.mkdir(parents=True)
    (bad / "vm.xplane.pb").write_bytes(b"\x0a\xff\xff\xff\xff\x0f not a trace")
    old = os.environ.get("TB_METAL_CACHE_DIR")
    os.environ["TB_METAL_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield make_client(logdir)[0]
    if old is None:
        del os.environ["TB_METAL_CACHE_DIR"]
    else:
        os.environ["TB_METAL_CACHE_DIR"] = old


def _get(client, route, **params):
    params.setdefault("wait", "60")
    return client.get(f"/data/plugin/metal{route}", query_string=params)


def test_route_payloads_validate(client):
    r = _get(client, "/sessions")
    assert_valid("SessionsPayload", r.json)
    names = {s["name"].split("/")[0]: s["name"] for s in r.json["sessions"]}
    gpu, cpu = names["augment"], names["augment_cpu"]
    for route, name in (("/layers", "LayersPayload"), ("/ops", "OpsPayload"),
                        ("/readiness", "ReadinessPayload")):  # fmt: skip
        r = _get(client, route, session=gpu, step="avg")
        assert r.status_code == 200, r.data
        assert_valid(name, r.json)
    r = client.get("/data/plugin/metal/compare", query_string=[("session", gpu), ("session", cpu), ("wait", "60")])  # fmt: skip  # noqa: E501
    assert r.status_code == 200, r.data
    assert_valid("ComparePayload", r.json)
    r = _get(client, "/layers", session=names["broken"])
    assert r.status_code == 422
    assert_valid("ErrorBody", r.json)


# -- layout: the core never imports a face --------------------------------------------

FACES = {
    "cli", "cli_checks", "plugin", "plugin_cache", "formatting", "formatting_compare", "notebook",
    "table_fit", "summary", "formatting_hosts", "plugin_responses", "plugin_loads",
    "plugin_answers", "plugin_params", "plugin_payloads", "formatting_csv", "cli_output",
}  # fmt: skip


def test_no_core_module_imports_a_face():
    package = ROOT / "tb_metal_plugin"
    for path in sorted(package.rglob("*.py")):
        module = path.stem
        if module in FACES or "proto" in path.parts:
            continue
        # Module-level imports are the layout's arrows; a display hook (`_repr_html_`,
        # `Profile.summary`) may reach a renderer lazily, as notebook libraries do.
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                assert name.rsplit(".", 1)[-1] not in FACES, f"{path.name} imports {name}"
