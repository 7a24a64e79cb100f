"""The JSON data files shipped in `tb_metal_plugin/data/`, read and checked one way."""

from __future__ import annotations

import json
from importlib import resources


def load(name: str, fmt: str, version: int = 1) -> dict:
    """`data/<name>` parsed, after checking its `format` and `version` fields."""
    ref = resources.files("tb_metal_plugin").joinpath("data", name)
    data = json.loads(ref.read_text(encoding="utf-8"))
    if data.get("format") != fmt or data.get("version") != version:
        raise ValueError(f"{name}: unsupported format or version")
    return data
