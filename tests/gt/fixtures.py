"""Copy recorded models into the committed fast-tier fixtures (traces, manifests, labels;
with --events, the stock run's event files too: the step graph Keras writes there).

python -m tests.gt fixtures OUTDIR tests/fixtures/gt --only conv_bn,lstm [--events]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _boot import as_package  # type: ignore[import-not-found]

    __package__ = as_package()

MAX_TRACE = 1_000_000  # bytes: fast-tier traces stay small
MAX_EVENTS = 1_000_000  # bytes: the same for the stock run's event files


def copy_model(src_model: str, dest_model: str, events: bool = False) -> list[str]:
    """Copy one model's labels and the trace (+ manifest) each labels file names."""
    copied = []
    for mode in ("stock", "callback"):
        labels_path = os.path.join(src_model, f"{mode}.labels.json")
        if not os.path.exists(labels_path):
            continue
        with open(labels_path) as f:
            trace_rel = json.load(f)["trace"]
        trace = os.path.join(src_model, trace_rel)
        if os.path.getsize(trace) > MAX_TRACE:
            raise ValueError(f"{trace} is over {MAX_TRACE} bytes: not a fast-tier fixture")
        session = os.path.dirname(trace)
        dest_session = os.path.join(dest_model, os.path.dirname(trace_rel))
        os.makedirs(dest_session, exist_ok=True)
        for name in os.listdir(session):  # the trace and the manifest beside it
            if name.endswith((".xplane.pb", ".tb_metal.json")):
                shutil.copy2(os.path.join(session, name), dest_session)
                copied.append(os.path.join(dest_session, name))
        if events:  # the stock callback's, or the one MetalProfileCallback writes for tf_keras
            run = os.path.dirname(os.path.dirname(os.path.dirname(session)))
            dest_run = os.path.dirname(os.path.dirname(os.path.dirname(dest_session)))
            # Keras 3 writes the events beside `plugins/`; tf_keras in `train/` below it.
            for sub in ("", "train"):
                folder = os.path.join(run, sub)
                names = os.listdir(folder) if os.path.isdir(folder) else []
                for name in sorted(n for n in names if n.startswith("events.out.tfevents.")):
                    src = os.path.join(folder, name)
                    if os.path.getsize(src) > MAX_EVENTS:
                        raise ValueError(f"{src} is over {MAX_EVENTS} bytes")
                    os.makedirs(os.path.join(dest_run, sub), exist_ok=True)
                    shutil.copy2(src, os.path.join(dest_run, sub))
                    copied.append(os.path.join(dest_run, sub, name))
        shutil.copy2(labels_path, dest_model)
        copied.append(os.path.join(dest_model, os.path.basename(labels_path)))
    return copied


def main(argv: list[str] | None = None) -> int:
    """Replace DEST/<model> for each --only model with its recorded files."""
    p = argparse.ArgumentParser(prog="python -m tests.gt fixtures")
    p.add_argument("outdir")
    p.add_argument("dest")
    p.add_argument("--only", required=True)
    p.add_argument("--events", action="store_true", help="also the stock run's event files")
    a = p.parse_args(argv)
    for model in a.only.split(","):
        dest_model = os.path.join(a.dest, model)
        shutil.rmtree(dest_model, ignore_errors=True)
        for path in copy_model(os.path.join(a.outdir, model), dest_model, a.events):
            print(f"{os.path.getsize(path):9d}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
