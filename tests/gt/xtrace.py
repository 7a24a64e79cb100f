"""Op events of a trace file (`<node>:<type>` on the host plane) with their self time.

Reads the XSpace with TensorFlow's own generated protobuf class (recording needs
TensorFlow anyway); nothing here comes from tb_metal_plugin.
"""

from __future__ import annotations

import glob
import os
import re

# `name:Type`: a node name (no spaces) and an op type identifier.
OP_EVENT = re.compile(r"^([^\s:]+):([A-Za-z_][A-Za-z0-9_]*)$")


def find_traces(run_dir: str) -> list[str]:
    """Every `*.xplane.pb` under run_dir."""
    return sorted(glob.glob(os.path.join(run_dir, "**", "*.xplane.pb"), recursive=True))


def op_events(path: str) -> dict[str, dict]:
    """{"name:type": {"name", "type", "count", "self_ps", "lines"}} for host op events."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    out: dict[str, dict] = {}
    for plane in space.planes:
        if not plane.name.startswith("/host:"):
            continue
        meta = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for name, self_ps in _self_times(line, meta):
                m = OP_EVENT.match(name)
                if not m:
                    continue
                rec = out.setdefault(
                    name,
                    {"name": m.group(1), "type": m.group(2), "count": 0, "self_ps": 0, "lines": []},
                )
                rec["count"] += 1
                rec["self_ps"] += self_ps
                kind = line.name.split("/")[0]
                if kind not in rec["lines"]:
                    rec["lines"].append(kind)
    return out


def _self_times(line, meta):
    """(event name, duration minus direct children on the same line) for each event."""
    evs = sorted(line.events, key=lambda e: (e.offset_ps, -e.duration_ps))
    stack: list[list] = []  # [end, name, self]
    for ev in evs:
        start, end = ev.offset_ps, ev.offset_ps + ev.duration_ps
        while stack and stack[-1][0] <= start:
            top = stack.pop()
            yield top[1], top[2]
        if stack:
            stack[-1][2] -= min(end, stack[-1][0]) - start
        stack.append([end, meta.get(ev.metadata_id, ""), ev.duration_ps])
    while stack:
        top = stack.pop()
        yield top[1], top[2]
