"""What a Keras user can do about an op that runs on the CPU with tensorflow-metal.

The advice is data (`data/remedies.json`), each entry with its sources, the tensorflow-metal
releases it was written for, and whether any source reports it working on Metal ("untested on
Metal" unless one does). Lookup order: exact op type, op-type pattern, reason code (dtype limits),
category (tf.data, strings, py_function, transfers), then the generic entry.
"""

from __future__ import annotations

import re
from functools import lru_cache

from . import data_files

GENERIC = "generic"


@lru_cache(maxsize=1)
def load_data() -> dict:
    """The shipped remedies.json, parsed and checked once."""
    data = data_files.load("remedies.json", "tb-metal-remedies")
    for r in data["remedies"]:
        if not r.get("sources") or not r.get("advice") or not r.get("on_metal"):
            raise ValueError(f"remedies.json: remedy {r.get('id')!r} lacks advice or sources")
    return data


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in str(version).split("."))


def by_id(remedy_id: str) -> dict:
    """One remedy entry by its id (KeyError when there is none)."""
    for r in load_data()["remedies"]:
        if r["id"] == remedy_id:
            return r
    raise KeyError(remedy_id)


@lru_cache(maxsize=4096)
def _match(op_type: str, category: str | None, reason_code: str | None) -> tuple[str, str]:
    remedies = load_data()["remedies"]
    for r in remedies:
        if op_type in r.get("op_types", ()):
            return r["id"], "op_type"
    for r in remedies:
        if any(re.search(p, op_type) for p in r.get("op_type_patterns", ())):
            return r["id"], "pattern"
    if reason_code:
        for r in remedies:
            if reason_code in r.get("reason_codes", ()):
                return r["id"], "reason"
    if category:
        for r in remedies:
            if category in r.get("categories", ()):
                return r["id"], "category"
    return GENERIC, GENERIC


def remedy_for(
    op_type: str,
    category: str | None = None,
    reason_code: str | None = None,
    metal_version: str | None = None,
) -> dict:
    """The remedy for one op type: the entry plus how it matched and whether it applies to
    `metal_version` (a release outside the range the advice was written for)."""
    remedy_id, matched = _match(op_type or "", category, reason_code)
    entry = by_id(remedy_id)
    out = {
        "id": entry["id"],
        "title": entry["title"],
        "advice": entry["advice"],
        "example": entry.get("example", ""),
        "on_metal": entry["on_metal"],
        "sources": entry["sources"],
        "matched_by": matched,
        "written_for": entry["metal_versions"],
    }
    if metal_version:
        lo, hi = entry["metal_versions"]["from"], entry["metal_versions"]["to"]
        out["applies"] = _version_key(lo) <= _version_key(metal_version) <= _version_key(hi)
    return out


def summary(remedy: dict) -> str:
    """One line of advice with its first source, for terminals and tooltips."""
    src = remedy["sources"][0]
    where = src.get("url") or src.get("title")
    return f"{remedy['title']}: {remedy['advice']} [{remedy['on_metal']}; source: {where}]"
