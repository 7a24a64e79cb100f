"""A Metal-like run from a real Linux trace: same trace, manifest as a Mac run records it.

The trace is real (recorded here with tensorflow-cpu); only the manifest is rewritten the way
the callback writes it on a Mac with tensorflow-metal: `tensorflow_metal` set, a GPU among the
logical devices, and every placed op that tensorflow-metal has a kernel for (tb-metal's
Metal kernel data) placed on GPU:0. The op events stay host events, so the GPU-placed ops'
times are host-side, exactly as in a real Metal trace (which has no device plane).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tb_metal_plugin.readiness import METAL_GPU, predict_op

GPU0 = "/job:localhost/replica:0/task:0/device:GPU:0"


def make_metal_like(run: Path, dest: Path) -> Path:
    """Copy the run folder `run` to `dest` with its manifests rewritten as a Metal run's."""
    shutil.copytree(run, dest)
    for path in dest.rglob("*.tb_metal.json"):
        manifest = json.loads(path.read_text())
        for row in manifest.get("placement") or []:
            if predict_op(row.get("type", ""))["verdict"] == METAL_GPU:
                row["device"] = GPU0
        env = manifest.setdefault("environment", {})
        env["tensorflow_metal"] = "1.2.0"
        env["logical_devices"] = ["/device:CPU:0", "/device:GPU:0"]
        path.write_text(json.dumps(manifest))
    return dest
