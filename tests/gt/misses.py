"""List every op the package attributes differently from the ground truth, per model and mode.

    python -m tests.gt misses OUTDIR [--only a,b] [--mode trace|manifest] [--limit N]

One line per missed op, most self time first: share of the model's op time, the op event,
what the ground truth says (layer, phase, how the labeller decided: kind / forward op) and
what the package gave. A miss is a wrong layer (on ops whose label has one) or a wrong
phase, exactly as `score` counts them. This module does not import TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _boot import as_package  # type: ignore[import-not-found]

    __package__ = as_package()

from importlib import import_module


def _path(layer) -> str:
    return "/".join(layer) if layer else "-"


def misses(labels: dict, rows: dict[str, dict]) -> list[dict]:
    """Every scored op whose predicted layer or phase differs from its label."""
    out = []
    total = sum(ev["self_ps"] for ev in labels["events"].values()) or 1
    for key, ev in labels["events"].items():
        if ev.get("phase") is None:
            continue
        row = rows.get(key) or {}
        got_layer, got_phase = row.get("layer"), row.get("phase")
        bad_layer = bool(ev.get("layer")) and list(got_layer or []) != list(ev["layer"])
        bad_phase = got_phase != ev["phase"]
        if not (bad_layer or bad_phase or not row):
            continue
        out.append(
            {
                "share": ev["self_ps"] / total,
                "op": key,
                "expected": (_path(ev.get("layer")), ev["phase"]),
                "got": (_path(got_layer), got_phase) if row else ("(no row)", None),
                "what": "+".join(w for w, b in (("layer", bad_layer), ("phase", bad_phase)) if b),
                "kind": ev.get("kind"),
                "fwd": ev.get("fwd"),
                "mixed": bool(ev.get("mixed_inputs")),
            }
        )
    out.sort(key=lambda m: -m["share"])
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the misses of each recorded model and mode."""
    p = argparse.ArgumentParser(prog="python -m tests.gt misses")
    p.add_argument("outdir")
    p.add_argument("--only", default="")
    p.add_argument("--mode", choices=("trace", "graph", "manifest"))
    p.add_argument("--limit", type=int, default=0, help="at most N misses per model/mode")
    a = p.parse_args(argv)
    score = import_module(f"{__package__}.score")
    only = {n for n in a.only.split(",") if n}
    for model in sorted(os.listdir(a.outdir)):
        mdir = os.path.join(a.outdir, model)
        if not os.path.isdir(mdir) or (only and model not in only):
            continue
        for mode, rec in score.MODES.items():
            path = os.path.join(mdir, f"{rec}.labels.json")
            if (a.mode and mode != a.mode) or not os.path.exists(path):
                continue
            labels = score.load_labels(path)
            trace = os.path.join(mdir, labels["trace"])
            if mode == "graph" and not score.has_step_graph(trace):
                continue
            found = misses(labels, score.predictions(trace, mode))
            print(f"== {model} / {mode}: {len(found)} missed ops")
            for m in found[: a.limit or None]:
                extra = f" kind={m['kind']}" + (f" fwd={m['fwd']}" if m["fwd"] else "")
                extra += " mixed-inputs" if m["mixed"] else ""
                print(
                    f"  {100 * m['share']:6.2f}% {m['what']:11s} {m['op']}\n"
                    f"          expected {m['expected'][0]} [{m['expected'][1]}]"
                    f"  got {m['got'][0]} [{m['got'][1]}]{extra}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
