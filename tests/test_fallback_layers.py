"""Measured fallbacks one row per layer: the grouping every face shows, done once in the core."""

from __future__ import annotations

from tb_metal_plugin.fallback_layers import fallback_layers


def _row(path, op_type, self_ps, code="no_gpu_kernel", count=1, copy_ps=7):
    return {
        "path": path,
        "bucket": None if path else "metrics",
        "op_type": op_type,
        "reason_code": code,
        "reason": f"no GPU kernel is registered for op type {op_type}"
        if code == "no_gpu_kernel"
        else f"a GPU kernel exists for {op_type}, but not for dtype int64",
        "device_source": "placement",
        "remedy": {"id": "augment-in-tf-data"} if op_type != "BitwiseAnd" else None,
        "ops": [op_type],
        "count": count,
        "self_ps": self_ps,
        "clock": "host",
        "copy_ps": copy_ps,
    }


def test_one_row_per_layer_types_by_time_reasons_once_copies_once():
    got = fallback_layers(
        [
            _row(["m", "rot"], "Sin", 5),
            _row(["m", "rot"], "ImageProjectiveTransformV3", 50, count=2),
            _row(["m", "rot"], "Cast", 3, code="no_gpu_kernel_for_dtype"),
            _row(["m", "flip"], "StatelessRandomGetKeyCounter", 7, copy_ps=0),
            _row(None, "BitwiseAnd", 1, copy_ps=0),
        ]
    )
    assert [(g["path"], g["bucket"], g["self_ps"]) for g in got] == [
        (["m", "rot"], None, 58),
        (["m", "flip"], None, 7),
        (None, "metrics", 1),
    ]
    rot = got[0]
    assert [t["type"] for t in rot["op_types"]] == ["ImageProjectiveTransformV3", "Sin", "Cast"]
    assert rot["count"] == 4 and rot["copy_ps"] == 7 and rot["clock"] == "host"
    assert [r["text"] for r in rot["reasons"]] == [
        "no GPU kernel is registered for op type ImageProjectiveTransformV3, Sin",
        "a GPU kernel exists for Cast, but not for dtype int64",
    ]
    assert rot["remedies"] == [{"id": "augment-in-tf-data"}]
    assert got[2]["remedies"] == []


def test_no_fallbacks_no_rows():
    assert fallback_layers([]) == []
