"""How often each attribution source was right, as measured against the ground truth.

The figures come from `tests/gt` (a labeller that shares no code with the package,
scoring the package on a corpus of real Keras models) and ship as
`data/attribution_accuracy.json`, written by the command the file names. Nothing here
computes accuracy: it only hands the measured figures to the faces.
"""

from __future__ import annotations

import functools

from . import data_files

FORMAT = "tb-metal-attribution-accuracy"


@functools.lru_cache(maxsize=1)
def _measured() -> dict:
    try:
        return data_files.load("attribution_accuracy.json", FORMAT)
    except (OSError, ValueError):
        return {}


def of_source(source: str) -> dict | None:
    """The measured figures of one attribution source (`trace_names`, `trace_graph`,
    `manifest`), or None."""
    data = _measured()
    figures = (data.get("sources") or {}).get(source)
    if not figures:
        return None
    return {
        "source": source,
        **figures,
        "recorded_with": data.get("recorded_with", ""),
        "command": data.get("command", ""),
    }
