"""Widest output line of each tb-metal table command over the committed runs, per COLUMNS.

    PYTHONPATH=. python tests/scripts/cli_widths.py [COLUMNS ...]   (default: 80 120)

Per command: min and mean over the runs of the widest line (characters, not bytes), and how
many runs exceed COLUMNS. Runs: the demo runs, plus each non-`_cpu` one as a Mac records it
(tests/metal_like.py: GPU-placed ops timed host-side, CPU fallbacks). Run it with another
checkout's package on PYTHONPATH to compare (an older one ignores COLUMNS).
"""

import os
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

from tb_metal_plugin.cli import main

ROOT = Path(__file__).resolve().parents[2]
# demo/logs/<name>: the folder above <run>/plugins/profile/<session>/<host>.xplane.pb.
RUNS = sorted({p.parents[4] for p in (ROOT / "demo" / "logs").rglob("*.xplane.pb")})
COMMANDS = {
    "layers": ["layers"],
    "ops": ["ops", "--limit", "0"],
    "metal-check": ["metal-check"],
    "compare": ["compare"],
}


def widest(args: list[str], columns: int) -> int:
    """The widest line the command prints (stdout and stderr) at COLUMNS=columns."""
    res = CliRunner().invoke(main, args, env={"COLUMNS": str(columns)})
    if res.exit_code:
        raise SystemExit(f"{' '.join(args)}: exit {res.exit_code}: {res.output[-300:]}")
    return max(len(line) for line in res.output.splitlines())


def main_() -> None:
    """Print one line per command and COLUMNS."""
    widths = [int(a) for a in sys.argv[1:]] or [80, 120]
    os.environ.pop("COLUMNS", None)
    sys.path.insert(0, str(ROOT))
    from tests.metal_like import make_metal_like

    tmp = Path(tempfile.mkdtemp())
    gpu_named = [r for r in RUNS if not r.name.endswith("_cpu")]
    macs = [make_metal_like(r, tmp / r.name) for r in gpu_named]
    pairs = [(r, r.with_name(r.name + "_cpu")) for r in gpu_named]
    pairs += [(m, cpu) for m, (_, cpu) in zip(macs, pairs, strict=True)]
    for columns in widths:
        for name, cmd in COMMANDS.items():
            if name == "compare":
                got = [widest(cmd + [str(a), str(b)], columns) for a, b in pairs]
            else:
                got = [widest(cmd + [str(r)], columns) for r in RUNS + macs]
            over = sum(w > columns for w in got)
            print(
                f"COLUMNS={columns:<4} {name:<12} widest line: min {min(got)}, "
                f"mean {sum(got) / len(got):.1f}, max {max(got)} over {len(got)} runs; "
                f"{over} wider than COLUMNS"
            )


if __name__ == "__main__":
    main_()
