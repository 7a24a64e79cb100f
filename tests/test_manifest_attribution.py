"""Manifest-mode attribution on committed real traces (fast: no TensorFlow).

The demo runs under demo/logs carry version-1 manifests (layer scopes, no `ops` table);
they must keep loading. A version-2 `ops` record must win over scopes and names.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tb_metal_plugin import load_profile
from tb_metal_plugin.attribution import TraceAttributor
from tb_metal_plugin.errors import TraceError
from tb_metal_plugin.manifest import VERSION, load_manifest, manifest_path_for
from tb_metal_plugin.manifest_attribution import ManifestAttributor

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "demo" / "logs" / "cnn"


def _trace(run: Path) -> Path:
    return next(run.glob("train/plugins/profile/*/*.xplane.pb"))


def _copy_run(tmp_path: Path) -> tuple[Path, dict]:
    """A private copy of the demo cnn run; returns (xplane path, its v1 manifest)."""
    src = _trace(CNN)
    dst_dir = tmp_path / "run" / "train" / "plugins" / "profile" / src.parent.name
    dst_dir.mkdir(parents=True)
    shutil.copy(src, dst_dir / src.name)
    shutil.copy(manifest_path_for(src), dst_dir / manifest_path_for(src).name)
    xplane = dst_dir / src.name
    return xplane, json.loads(manifest_path_for(xplane).read_text())


def test_version_1_manifest_still_loads_with_scopes():
    manifest = load_manifest(_trace(CNN))
    assert manifest["version"] == 1 and "ops" not in manifest and VERSION == 2
    prof = load_profile(CNN)
    ops = prof.ops()["ops"]
    assert prof.ops()["attribution_source"] == "manifest"
    sources = {o["attribution_source"] for o in ops}
    # No per-op records in version 1: layer scopes first, trace names for the rest.
    assert "manifest_op" not in sources and "manifest_scopes" in sources
    conv = [o for o in ops if o["layer"] == ["cnn", "conv1"]]
    assert conv and {o["attribution_source"] for o in conv} == {"manifest_scopes"}
    assert {o["phase"] for o in conv} == {"forward", "backward"}


def test_ops_record_wins_over_scopes_and_names(tmp_path):
    xplane, manifest = _copy_run(tmp_path)
    before = {(o["name"], o["type"]): o for o in load_profile(tmp_path / "run").ops()["ops"]}
    conv = next(k for k, o in before.items() if o["layer"] == ["cnn", "conv1"])
    root = next(k for k, o in before.items() if o["layer"] is None and o["phase"] != "metrics")
    manifest["version"] = 2
    manifest["ops"] = {
        "columns": ["name", "type", "layer", "phase", "origin"],
        "rows": [
            # Deliberately not what the scopes say: the record must be what is shown.
            [conv[0], conv[1], ["cnn", "conv2"], "backward", "gradient"],
            [root[0], root[1], None, "metrics", "metrics"],
        ],
    }
    manifest_path_for(xplane).write_text(json.dumps(manifest))
    after = {(o["name"], o["type"]): o for o in load_profile(tmp_path / "run").ops()["ops"]}
    assert after[conv]["layer"] == ["cnn", "conv2"] and after[conv]["phase"] == "backward"
    assert after[conv]["attribution_source"] == "manifest_op"
    assert after[root]["phase"] == "metrics" and after[root]["attribution_source"] == "manifest_op"
    # Everything else is answered as before, by scopes or names.
    for key, row in after.items():
        if key not in (conv, root):
            assert (row["layer"], row["phase"]) == (before[key]["layer"], before[key]["phase"])
            assert row["attribution_source"] != "manifest_op"


def test_newer_manifest_version_is_a_clear_error(tmp_path):
    xplane, manifest = _copy_run(tmp_path)
    manifest["version"] = VERSION + 1
    manifest_path_for(xplane).write_text(json.dumps(manifest))
    with pytest.raises(TraceError, match="newer than this tb-metal reads"):
        load_manifest(xplane)


def test_attributor_buckets_and_fallback_order():
    manifest = {
        "layers": [{"path": ["m", "d"], "scopes": ["m_1/d_1"]}],
        "ops": {
            "columns": ["name", "type", "layer", "phase", "origin"],
            "rows": [
                ["SPC/gradient_tape/compile_loss/x/Neg", "Neg", None, "backward", "loss_gradient"],
                ["SPC/AddN", "AddN", ["m", "d"], "backward", "aggregation"],
                ["SPC/Add_2", "AddV2", None, "optimizer", "optimizer"],
                ["SPC/odd"],  # malformed rows are skipped, not fatal
            ],
        },
    }
    trace_ops = [("SPC/m_1/d_1/MatMul", "MatMul"), ("SPC/m_1/e_1/MatMul", "MatMul")]
    att = ManifestAttributor(manifest, TraceAttributor(trace_ops))
    neg = att.attribute("SPC/gradient_tape/compile_loss/x/Neg", "Neg", ["tf_Compute"])
    assert (neg.layer, neg.phase, neg.bucket, neg.source) == (
        None,
        "backward",
        "loss",
        "manifest_op",
    )
    addn = att.attribute("SPC/AddN", "AddN", ["tf_Compute"])
    assert (addn.layer, addn.phase, addn.source) == (("m", "d"), "backward", "manifest_op")
    assert att.attribute("SPC/Add_2", "AddV2", []).bucket == "optimizer"
    # Same name, other type: no record; the scope recorded for layer d answers.
    scoped = att.attribute("SPC/m_1/d_1/MatMul", "MatMul", ["tf_Compute"])
    assert (scoped.layer, scoped.source) == (("m", "d"), "manifest_scopes")
    named = att.attribute("SPC/m_1/e_1/MatMul", "MatMul", ["tf_Compute"])
    assert named.source == "trace_names"
    assert att.layer_of("SPC/AddN") == ("m", "d")
