"""Let a module of this package run by file path (`python tests/gt/score.py`).

Run that way, `tests.gt` may not be importable (another checkout's `tests` can come first
on PYTHONPATH), so the folder is loaded as the package `gt_truth` instead; the
tb_metal_plugin scored is whichever one sys.path/PYTHONPATH finds.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def as_package() -> str:
    """Import this folder as package `gt_truth` (once) and return that name."""
    here = os.path.dirname(os.path.abspath(__file__))
    # The script's own folder must not shadow top-level modules (`models`, `record`...).
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    if "gt_truth" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "gt_truth", os.path.join(here, "__init__.py"), submodule_search_locations=[here]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["gt_truth"] = module
        spec.loader.exec_module(module)
    return "gt_truth"
