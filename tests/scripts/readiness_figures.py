"""Predicted Metal fallback on the committed real runs (demo/logs and tests/fixtures).

    PYTHONPATH=. python tests/scripts/readiness_figures.py

Per run: predicted fallback time and share, the part of it that comes from Linux-only op types
(oneDNN, Grappler CPU-only fusions), and how many layers/buckets/subtrees are red although their
fallback is under 50 us. Run it with another checkout's package on PYTHONPATH to compare.
"""

from pathlib import Path

from tb_metal_plugin import load_profile
from tb_metal_plugin import readiness as r

LINUX_ONLY = ("_UnaryOpsComposition", "_FusedDepthwiseConv2dNative", "_FusedConv3D",
              "_FusedBatchMatMulV2", "_TensorToHashBucketFast")  # fmt: skip

runs = sorted(p for p in Path("demo/logs").iterdir() if p.is_dir()) + [
    Path("tests/fixtures/linux_rewrites/ffn")
]
HEAD = ("run", "fallback", "share", "linux-only as fallback", "red groups <50us")
print("{:16s} {:>10s} {:>7s} {:>22s} {:>16s}".format(*HEAD))
for run in runs:
    ops = load_profile(str(run)).ops("all")["ops"]
    p = r.predict_ops(ops)
    lin = sum(
        o["self_ps"]
        for o in p["ops"]
        if o["verdict"] == "cpu_fallback"
        and (o["type"].startswith("_Mkl") or o["type"] in LINUX_ONLY)
    )
    groups = p["layers"] + p.get("buckets", []) + p.get("layer_tree", [])
    red = sum(1 for g in groups if g["verdict"] == "cpu_fallback" and g["fallback_ps"] < 50e6)
    fb, share = p["fallback_ps"] / 1e6, 100 * p["fallback_share"]
    print(f"{run.name:16s} {fb:9.1f}us {share:6.2f}% {lin / 1e6:20.1f}us {red:16d}")
