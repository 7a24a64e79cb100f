"""The Metal tab's bundle and its TypeScript view of the JSON API, checked against real data."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tensorboard.backend import application
from tensorboard.plugins import base_plugin
from werkzeug.test import Client

from tb_metal_plugin.manifest import write_manifest
from tb_metal_plugin.plugin import STATIC_DIR, MetalPlugin
from tests.test_plugin_support import shared_logdir

FRONTEND = Path(__file__).resolve().parents[1] / "frontend"
TYPES = FRONTEND / "src" / "types.ts"


def interface_fields(name: str) -> set[str]:
    """Required (non-optional) fields of a TypeScript interface in types.ts."""
    text = TYPES.read_text()
    m = re.search(r"export interface " + name + r"(?: extends \w+)? \{(.*?)\n\}", text, re.S)
    assert m, name
    fields = set(re.findall(r"^  (\w+): ", m.group(1), re.M))
    base = re.search(r"export interface " + name + r" extends (\w+) \{", text)
    return fields | (interface_fields(base.group(1)) if base else set())


@pytest.fixture(scope="module")
def payloads(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("frontend_logdir")
    shutil.copytree(shared_logdir(tmp_path_factory), logdir, dirs_exist_ok=True)
    plugin = MetalPlugin(base_plugin.TBContext(logdir=str(logdir)))
    plugin._disk.dir = None  # these checks need no disk cache
    c = Client(application.TensorBoardWSGI([plugin]))
    base = "/data/plugin/metal"
    names = sorted(s["name"] for s in c.get(f"{base}/sessions").json["sessions"])
    q = {"session": names[0], "wait": "60"}
    ops = c.get(f"{base}/ops", query_string=q).json
    # The second run as if recorded on a Mac with tensorflow-metal, one dense op measured on
    # the CPU: its readiness payload carries a disagreement.
    dense = next(o for o in ops["ops"] if o["layer"] and o["layer"][-1] == "dense_in")
    trace = next((logdir / names[1].split("/")[0]).rglob("*.xplane.pb"))
    write_manifest(trace, {
        "environment": {"tensorflow_metal": "1.2.0"},
        "placement": [{"name": dense["name"], "type": dense["type"], "device": "/device:CPU:0"}],
    })  # fmt: skip
    q_mac = {"session": names[1], "wait": "60"}
    return {
        "sessions": c.get(f"{base}/sessions").json,
        "layers": c.get(f"{base}/layers", query_string=q).json,
        "ops": ops,
        "compare": c.get(f"{base}/compare", query_string={"session": names, "wait": "60"}).json,
        "readiness": c.get(f"{base}/readiness", query_string=q).json,
        "readiness_mac": c.get(f"{base}/readiness", query_string=q_mac).json,
    }


def test_typescript_types_match_real_payloads(payloads):
    # The frontend reads these fields without checking; the core must keep sending them.
    layers = payloads["layers"]
    assert interface_fields("SessionsPayload") <= set(payloads["sessions"])
    assert interface_fields("SessionEntry") <= set(payloads["sessions"]["sessions"][0])
    assert interface_fields("LayersPayload") <= set(layers)
    node = layers["layers"][0]
    assert interface_fields("LayerNode") <= set(node)
    assert interface_fields("LayerNode") <= set(layers["buckets"][0])
    assert interface_fields("OpRow") <= set(payloads["ops"]["ops"][0])
    assert interface_fields("ComparePayload") <= set(payloads["compare"])
    assert interface_fields("CompareRow") <= set(payloads["compare"]["rows"][0])
    ready = payloads["readiness"]
    assert interface_fields("ReadinessPayload") <= set(ready)
    assert interface_fields("ReadinessGroup") <= set(ready["layers"][0])
    assert interface_fields("ReadinessGroup") <= set(ready["buckets"][0])
    assert interface_fields("ReadinessOp") <= set(ready["ops"][0])
    verdicts = set(
        re.findall(r'"(\w+)"', re.search(r"export type Verdict = (.*);", TYPES.read_text())[1])
    )
    assert set(ready["verdict_order"]) == verdicts
    mac = payloads["readiness_mac"]
    assert mac["measured_tensorflow_metal"] == "1.2.0" and mac["disagreements"]
    assert interface_fields("Disagreement") <= set(mac["disagreements"][0])


def test_bundle_has_no_remote_assets():
    js = STATIC_DIR / "index.js"
    if not js.exists():
        pytest.skip("frontend not built")
    code = js.read_text(encoding="utf-8")
    # esbuild appends third-party license comments (with project URLs) at the end.
    code = code.split("/*! Bundled license information")[0]
    assert not re.search(r"https?://", code), "the bundle must not fetch anything remote"
    css = (STATIC_DIR / "style.css").read_text(encoding="utf-8")
    assert "url(" not in css and "@import" not in css


def test_bundle_is_up_to_date():
    js = STATIC_DIR / "index.js"
    if not js.exists():
        pytest.skip("frontend not built")
    sources = [p for p in FRONTEND.rglob("*") if p.is_file() and "node_modules" not in p.parts]
    newest = max(p.stat().st_mtime for p in sources)
    assert js.stat().st_mtime >= newest, "run `npm run build` in frontend/"


def test_typescript_typechecks():
    if not (FRONTEND / "node_modules" / ".bin" / "tsc").exists() or not shutil.which("node"):
        pytest.skip("frontend dependencies not installed (npm ci in frontend/)")
    res = subprocess.run(
        [str(FRONTEND / "node_modules" / ".bin" / "tsc"), "--noEmit", "-p", "tsconfig.json"],
        cwd=FRONTEND, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr


def test_frontend_logic_unit_tests_pass():
    """The tab's pure logic (formatting, clock headings, fallback grouping) under node's
    test runner: `npm run test:unit` in frontend/."""
    if not (FRONTEND / "node_modules" / "esbuild").exists() or not shutil.which("node"):
        pytest.skip("frontend dependencies not installed (npm ci in frontend/)")
    run = subprocess.run(
        ["node", "run-unit-tests.mjs"], cwd=FRONTEND, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# fail 0" in run.stdout and "# pass 0" not in run.stdout
