"""A `model.summary()`-like table of a profile: per-layer time, clock, device split, fallbacks.

The callback prints it after the profiled window; notebooks and scripts call `summary_text`.
Every figure comes from `formatting.node_figures`, the cells of `tb-metal layers`, so the
summary, the CLI table and the notebook view show the same numbers.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence

from .formatting import (
    HOST_SIDE_LEGEND,
    HOST_SIDE_MARK,
    fallback_lines,
    fmt_time,
    layer_rows,
)
from .table_fit import Col, hidden_note, render, terminal_width, wrap

STEP_WORDS = {"all": "all profiled steps (totals)", "avg": "mean per step"}


def summary_rows(data: dict) -> list[list[str]]:
    """Rows of the summary: layer, class, total, clock, share, devices, fallback."""
    rows = []
    for depth, _, f in layer_rows(data)[1]:
        rows.append(["  " * depth + f["name"], f["class"], f["total"], f["clock"], f["share"]]
                    + [f["devices"], f["fallback"]])  # fmt: skip
    return rows


SUMMARY_COLS = (
    ("Layer", False),
    ("Type", False),
    ("Time", True),
    ("Clock", False),
    ("Share", True),
    ("Devices", False),
    ("CPU fallback", True),
)


def summary_text(data: dict, width: int | None = None) -> str:
    """The summary of a layers payload (`Profile.layers()`), fitted to width (None: full)."""
    cols = [Col(h, right=r) for h, r in SUMMARY_COLS]
    cols[0].min = 18
    cols[1].drop = 3
    cols[5].min, cols[5].wrap, cols[5].drop = 13, " + ", 2
    cols[6].drop = 1
    rows = summary_rows(data)
    table, hidden = render(cols, rows, width)
    rule_w = max(len(ln) for ln in table.splitlines())
    step = data["step"]
    title = (
        f'tb-metal profile "{data.get("session") or data.get("file")}" (host {data["host"]}), '
        f"{STEP_WORDS.get(step, f'step {step}')}"
    )
    out = wrap(title, width, "  ") + ["=" * rule_w, table, "=" * rule_w]
    out += wrap(
        f"Step time (wall): {fmt_time(data['step_time_ps'])}    "
        f"Op time: {fmt_time(data['total_ps'])}    "
        f"Devices: {', '.join(data['devices']) or 'CPU'}",
        width,
        "  ",
    )
    out += hidden_note(hidden, width, "a wider terminal shows them")
    if any(HOST_SIDE_MARK in r[5] for r in rows):
        out += wrap(HOST_SIDE_LEGEND, width, "      ", "note: ")
    out += fallback_lines(data, width)
    out += wrap(f"Details: tb-metal layers {data.get('file') or ''}", width, "  ")
    return "\n".join(out)


def print_after_window(
    trace_paths: Sequence[str | os.PathLike],
    verbose: int | str = 1,
    enabled: bool = True,
    print_fn: Callable[[str], None] = print,
) -> list[str]:
    """The callback's summary of each trace of a profiled window; never raises.

    Silent when disabled or when `fit(verbose=0)`; a trace that cannot be read becomes a
    warning, since the summary must never stop training. Returns the texts printed.
    """
    if not enabled or verbose in (0, False):
        return []
    from . import api

    printed = []
    for path in trace_paths:
        try:
            text = summary_text(api.load_profile(path).layers("all"), terminal_width())
        except Exception as e:  # noqa: BLE001 - a summary failure must not end fit()
            warnings.warn(
                f"MetalProfileCallback: no summary for {path} ({type(e).__name__}: {e}); "
                "the trace is kept",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        # Keras' one-line progress bar (verbose 1, "auto") is mid-line: start below it.
        print_fn(text if verbose == 2 else "\n" + text)
        printed.append(text)
    return printed
