"""Linux-only op types (oneDNN kernels, Grappler's CPU-only fusions) and what a Mac runs instead.

A trace recorded on Linux x86 shows op types that exist only because TensorFlow rewrote the graph
for that CPU: `_MklNativeFusedMatMul`, `_MklLayerNorm`, `_UnaryOpsComposition`... A Mac with
tensorflow-metal never runs them; it runs the ops they replaced. The map, with the public source
of each rewrite, is data: `data/linux_rewrites.json`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from . import data_files

_UNARY_SUFFIX = "/unary_ops_composition"
_UNARY_OLD_PREFIX = "UnaryOpsComposition_"
_UNIQUIFIER = re.compile(r"_\d+$")


@dataclass(frozen=True)
class MacosOps:
    """The op types a Mac would run in place of one trace op type, and why they differ."""

    op_types: tuple[str, ...]
    note: str = ""
    # True when nothing runs in its place (a oneDNN layout conversion) or what runs is unknown.
    nothing_to_predict: bool = False
    sources: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def load_data() -> dict:
    """The shipped linux_rewrites.json, parsed once."""
    return data_files.load("linux_rewrites.json", "tb-metal-linux-rewrites")


def _source_urls(keys) -> tuple[str, ...]:
    table = load_data()["sources"]
    return tuple(table[k]["url"] for k in keys if k in table)


def is_linux_only(op_type: str) -> bool:
    """True for an op type that only a Linux (oneDNN / CPU-Grappler) graph has."""
    data = load_data()
    if op_type in data["rewrites"] and not data["rewrites"][op_type].get("only_when_metal_lacks"):
        return True
    return any(op_type.startswith(p) for p in data["onednn_prefixes"])


def unary_chain_root(op_name: str) -> str | None:
    """The last op type of a fused unary chain, read from the fused node's name (or None).

    Grappler names the fusion after the chain's root (its last op): `<scope>/Exp/
    unary_ops_composition` in TensorFlow 2.21, `<scope>/ArithmeticOptimizer/
    UnaryOpsComposition_Exp` before. Keras names ops after their type (`Exp`, `Exp_1`).
    """
    ops = set(load_data()["unary_chain"]["ops"])
    parts = [p for p in (op_name or "").split("/") if p]
    candidate = None
    if op_name.endswith(_UNARY_SUFFIX) and len(parts) >= 2:
        candidate = parts[-2]
    elif parts and parts[-1].startswith(_UNARY_OLD_PREFIX):
        candidate = parts[-1][len(_UNARY_OLD_PREFIX) :]
    if candidate is None:
        return None
    candidate = _UNIQUIFIER.sub("", candidate)
    return candidate if candidate in ops else None


def macos_ops(op_type: str, op_name: str = "", metal_op_types: frozenset = frozenset()) -> MacosOps:
    """What the same graph would run on macOS in place of `op_type` (itself when not Linux-only).

    `metal_op_types` (the plugin's kernel names) decides the fusions that Metal may have itself.
    """
    data = load_data()
    layout = data["onednn_layout_only"]
    if op_type in layout["types"]:
        return MacosOps(
            (op_type,),
            f"{op_type} is a oneDNN layout conversion that does not exist on macOS",
            True,
            _source_urls(layout["sources"]),
        )
    entry = data["rewrites"].get(op_type)
    if entry is not None and not (entry.get("only_when_metal_lacks") and op_type in metal_op_types):
        sources = _source_urls(entry["sources"])
        if entry["macos"] == "unary_chain":
            return _unary_chain(op_type, op_name, entry, sources)
        parts = tuple(entry["macos"])
        note = f"{op_type} ({entry['by']}) would run as {' + '.join(parts)} on macOS"
        return MacosOps(parts, note, sources=sources)
    for prefix in data["onednn_prefixes"]:
        if op_type.startswith(prefix):
            rest = op_type[len(prefix) :]
            # _MklNativeFusedX -> _FusedX, _MklMatMul -> MatMul; FusedBatchNorm* are public ops
            # (only their Ex variant is internal).
            internal = rest.startswith("Fused") and (
                not rest.startswith("FusedBatchNorm") or rest == "FusedBatchNormEx"
            )
            mapped = "_" + rest if internal else rest
            return MacosOps(
                (mapped,),
                f"oneDNN op {op_type} would run as {mapped} on macOS",
                sources=_source_urls(["mkl_layout_pass"]),
            )
    return MacosOps((op_type,))


def _unary_chain(op_type: str, op_name: str, entry: dict, sources) -> MacosOps:
    root = unary_chain_root(op_name)
    what = f"{op_type} ({entry['by']})"
    if root is None:
        return MacosOps(
            (op_type,),
            f"{what} would run on macOS as the unfused unary ops it holds; the trace does not "
            "name them",
            True,
            sources,
        )
    return MacosOps(
        (root,),
        f"{what} would run unfused on macOS: a chain of unary ops ending in {root} (the "
        "chain's earlier ops are not named in the trace)",
        sources=sources,
    )
