"""Score tb_metal_plugin's attribution against the recorded ground truth.

    python -m tests.gt score OUTDIR [--only a,b] [--json FILE] [--accuracy FILE]
    PYTHONPATH=/other/checkout python /path/to/tests/gt/score.py OUTDIR

Predictions come from the public API of whichever tb_metal_plugin is imported
(`api.load_file(trace).ops()` rows: layer, phase, self time). Three modes per model:
- trace: the stock TensorBoard trace file alone (`step_graph=False`: op names and
  neighbours only);
- graph: the stock run as Keras's TensorBoard callback writes it, the trace and the step
  graph in the run's event file (scored only where that file is there);
- manifest: the trace written by MetalProfileCallback, manifest beside it.
Figures, per model:
- layer accuracy, time-weighted (by self time) and per op, over ops whose label has a layer;
- phase accuracy, time-weighted, over ops with a label;
- unmapped: share of op self time the ground truth could not label (not scored);
- xfused: share of op self time in nodes that fused ops of several layers (scored against
  the layer that created the op whose name the node kept; no trace can split it);
- xsum: share of the layer-scored ops that are tape sums of gradients from several layers
  (scored against the layer those share; a trace shows one input of a sum at most).
This module does not import TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _boot import as_package  # type: ignore[import-not-found]

    __package__ = as_package()

MODES = {"trace": "stock", "graph": "stock", "manifest": "callback"}
THRESHOLDS = {
    "trace": {"layer_tw": 0.97, "layer_op": 0.97, "phase_tw": 0.97},
    "graph": {"layer_tw": 0.97, "layer_op": 0.97, "phase_tw": 0.97},
    "manifest": {"layer_tw": 0.995, "layer_op": 0.99, "phase_tw": 0.995},
}


def load_labels(path: str) -> dict:
    """One labels JSON."""
    with open(path) as f:
        return json.load(f)


def predictions(trace_path: str, mode: str = "graph") -> dict[str, dict]:
    """{"name:type": row} from the package's public API, in one of MODES."""
    from tb_metal_plugin import api

    try:
        prof = api.load_file(trace_path, step_graph=mode != "trace")
    except TypeError:  # a checkout from before the step graph: names only, both modes
        prof = api.load_file(trace_path)
    return {f"{r['name']}:{r['type']}": r for r in prof.ops()["ops"]}


def has_step_graph(trace_path: str) -> bool:
    """True when the run of a stock trace has an event file (where the step graph is): in
    the run folder (Keras 3) or its `train` folder (tf_keras writes the profile above it)."""
    run = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(trace_path))))
    for folder in (run, os.path.join(run, "train")):
        try:
            if any(n.startswith("events.out.tfevents.") for n in os.listdir(folder)):
                return True
        except OSError:
            pass
    return False


def score(labels: dict, rows: dict[str, dict]) -> dict:
    """Accuracy figures of predicted rows against one labels JSON."""
    lt = lc = pt = pc = 0.0
    n_layer = n_layer_ok = n_sums = 0
    wrong: list[tuple[int, str, object, object]] = []
    for key, ev in labels["events"].items():
        if ev.get("phase") is None:
            continue  # unmapped in the ground truth: not scored
        row = rows.get(key)
        w = row["self_ps"] if row else ev["self_ps"]
        pred_layer = (row or {}).get("layer")
        pred_phase = (row or {}).get("phase")
        if ev.get("layer"):
            ok = row is not None and list(pred_layer or []) == list(ev["layer"])
            lt += w
            lc += w if ok else 0
            n_layer += 1
            n_layer_ok += ok
            n_sums += bool(ev.get("mixed_inputs"))
            if not ok:
                wrong.append((w, key, ev["layer"], pred_layer))
        pt += w
        if row is not None and pred_phase == ev["phase"]:
            pc += w
        else:
            wrong.append((w, key, ev["phase"], pred_phase))
    wrong.sort(key=lambda t: -t[0])
    return {
        "layer_tw": lc / lt if lt else 1.0,
        "layer_op": n_layer_ok / n_layer if n_layer else 1.0,
        "phase_tw": pc / pt if pt else 1.0,
        "layer_ops": n_layer,
        "unmapped": labels["summary"]["unmapped_share"],
        "xfused": labels["summary"].get("fused_across_layers_share", 0.0),
        # Tape sums of several layers' gradients: which ones they sum, the trace never says.
        "xsum": n_sums / n_layer if n_layer else 0.0,
        "worst": [{"self_ps": w, "op": k, "expected": e, "got": g} for w, k, e, g in wrong[:8]],
    }


def score_dir(outdir: str, only: list[str] | None = None) -> dict[str, dict[str, dict]]:
    """{model: {mode: figures or {"error": ...}}} for every model recorded in outdir."""
    out: dict[str, dict[str, dict]] = {}
    for model in sorted(os.listdir(outdir)):
        mdir = os.path.join(outdir, model)
        if not os.path.isdir(mdir) or (only and model not in only):
            continue
        for mode, rec in MODES.items():
            path = os.path.join(mdir, f"{rec}.labels.json")
            if not os.path.exists(path):
                continue
            try:
                labels = load_labels(path)
                trace = os.path.join(mdir, labels["trace"])
                if mode == "graph" and not has_step_graph(trace):
                    continue
                out.setdefault(model, {})[mode] = score(labels, predictions(trace, mode))
            except Exception as e:  # one bad model must not hide the others
                out.setdefault(model, {})[mode] = {"error": f"{type(e).__name__}: {e}"}
    return out


def _pct(x) -> str:
    return f"{100 * x:6.2f}" if isinstance(x, float) else f"{'-':>6s}"


def table(results: dict[str, dict[str, dict]]) -> str:
    """The per-model table with min and mean rows."""
    cols = ("layer_tw", "layer_op", "phase_tw", "unmapped", "xfused", "xsum")
    sub = " ".join(f"{c:>8s}" for c in cols) + "  "
    width = len(sub)
    lines = [
        f"{'':24s}| {'trace file only (op names)':{width}s}"
        f"| {'stock run (trace + step graph)':{width}s}"
        "| manifest (MetalProfileCallback)",
        f"{'model':24s}| {sub}| {sub}",
    ]
    lines.append("-" * len(lines[-1]))
    below = {m: 0 for m in MODES}
    for model, modes in results.items():
        cells = []
        for mode in MODES:
            r = modes.get(mode) or {"error": "not recorded"}
            if "error" in r:
                cells.append(f"{r['error'][:width]:{width}s}")
                continue
            miss = any(r[k] < t for k, t in THRESHOLDS[mode].items())
            below[mode] += miss
            figures = " ".join(f"{_pct(r[c]):>8s}" for c in cols)
            cells.append(figures + (" *" if miss else "  "))
        lines.append(f"{model:24s}| " + "| ".join(cells))
    for agg, fn in (("min", min), ("mean", lambda v: sum(v) / len(v))):
        cells = []
        for mode in MODES:
            scored = [r[mode] for r in results.values() if "layer_tw" in r.get(mode, {})]
            cells.append(
                " ".join(f"{_pct(fn([r[c] for r in scored])) if scored else '-':>8s}" for c in cols)
                + "  "
            )
        lines.append(f"{agg:24s}| " + "| ".join(cells))
    lines.append(
        "* below the issue's thresholds (trace only >= 97/97/97, manifest >= 99.5/99/99.5): "
        f"trace file {below['trace']}, stock run {below['graph']}, "
        f"manifest {below['manifest']} models"
    )
    return "\n".join(lines)


# The package's names of the two modes (Profile.attribution_source).
SOURCES = {"trace": "trace_names", "graph": "trace_graph", "manifest": "manifest"}
ACCURACY_COMMAND = (
    "python -m tests.gt record OUTDIR && python -m tests.gt score OUTDIR "
    "--accuracy tb_metal_plugin/data/attribution_accuracy.json"
)


def accuracy(results: dict[str, dict[str, dict]], versions: str) -> dict:
    """Min and mean per mode over the scored models, as the package ships them."""
    sources = {}
    for mode, source in SOURCES.items():
        scored = {m: r[mode] for m, r in results.items() if "layer_tw" in r.get(mode, {})}
        if not scored:
            continue
        out: dict = {"models": len(scored)}
        for key, name in (
            ("layer_tw", "layer_time"),
            ("layer_op", "layer_op"),
            ("phase_tw", "phase_time"),
        ):
            values = [r[key] for r in scored.values()]
            out[f"{name}_min"] = round(min(values), 4)
            out[f"{name}_mean"] = round(sum(values) / len(values), 4)
        out["below_thresholds"] = sorted(
            m for m, r in scored.items() if any(r[k] < t for k, t in THRESHOLDS[mode].items())
        )
        sources[source] = out
    return {
        "format": "tb-metal-attribution-accuracy",
        "version": 1,
        "command": ACCURACY_COMMAND,
        "recorded_with": versions,
        "sources": sources,
    }


def _versions(outdir: str) -> str:
    """`TensorFlow x / Keras y` as the labels files recorded them (one model's is enough)."""
    for model in sorted(os.listdir(outdir)):
        for rec in MODES.values():
            path = os.path.join(outdir, model, f"{rec}.labels.json")
            if os.path.exists(path):
                v = load_labels(path).get("versions") or {}
                return f"TensorFlow {v.get('tensorflow', '?')} / Keras {v.get('keras', '?')}"
    return ""


def main(argv: list[str] | None = None) -> int:
    """Print the per-model table; --json writes every figure and the worst misses,
    --accuracy the min and mean per mode that the package shows beside its figures."""
    p = argparse.ArgumentParser(prog="python -m tests.gt score")
    p.add_argument("outdir")
    p.add_argument("--only", default="")
    p.add_argument("--json", help="write all figures (and worst misses) here")
    p.add_argument(
        "--accuracy",
        help="write min and mean per mode here (tb_metal_plugin/data/attribution_accuracy.json)",
    )
    a = p.parse_args(argv)
    import tb_metal_plugin

    only = [n for n in a.only.split(",") if n] or None
    results = score_dir(a.outdir, only)
    print(f"tb_metal_plugin from {os.path.dirname(os.path.abspath(tb_metal_plugin.__file__))}")
    print(table(results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    if a.accuracy:
        with open(a.accuracy, "w") as f:
            json.dump(accuracy(results, _versions(a.outdir)), f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
