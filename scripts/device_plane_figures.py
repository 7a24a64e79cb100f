"""Print each device plane's device time as tb-metal reads it beside a raw stream-line sum.

Usage: python scripts/device_plane_figures.py TRACE.xplane.pb [...]
The raw figure is a plain protobuf pass: the durations of every event on the plane's
`Stream #` lines (GPU) or `XLA Ops` line (TPU, plain sum: nested ops count twice there),
and of all its lines (what summing derived lines as well would give).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tb_metal_plugin.events import read_events  # noqa: E402
from tb_metal_plugin.xplane import XSpace  # noqa: E402


def main() -> None:
    for path in sys.argv[1:]:
        ev = read_events(path)
        space = XSpace.FromString(Path(path).read_bytes())
        print(f"{path}\n  steps: {ev.steps_source} {[s.num for s in ev.steps]}")
        by_name = {st.plane: st for st in ev.device_stats.values()}
        for plane in space.planes:
            st = by_name.get(plane.name)
            if st is None:
                continue
            work = sum(
                e.duration_ps
                for line in plane.lines
                if (
                    line.name == "XLA Ops" if st.kind == "TPU" else line.name.startswith("Stream #")
                )
                for e in line.events
            )
            every = sum(e.duration_ps for line in plane.lines for e in line.events)
            print(
                f"  {plane.name} ({st.kind}): device {st.device_ps / 1e6:.3f} us "
                f"(kernels {st.kernel_ps / 1e6:.3f}, copies {st.copy_ps / 1e6:.3f}, "
                f"{st.copy_bytes} B); raw work lines {work / 1e6:.3f} us; "
                f"all lines {every / 1e6:.3f} us; per step {[p / 1e6 for p in st.slot_ps]}"
            )
            print(f"    work lines {st.work_lines}\n    derived lines {st.derived_lines}")


if __name__ == "__main__":
    main()
