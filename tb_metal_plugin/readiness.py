"""Metal readiness: predict which ops and layers would fall back to the CPU on tensorflow-metal.

The prediction comes from `data/metal_kernels.json` (op type names found in each released
`libmetal_plugin.dylib`, see docs/metal-kernels.md). It never imports TensorFlow, so it works on
any trace, Linux and CUDA runs included.
"""

from __future__ import annotations

from functools import cache, lru_cache

from . import data_files, remedies, rewrites
from .devices import PY_FUNCTION_TYPES
from .errors import InvalidArgumentError
from .events import SEND_RECV_TYPES
from .readiness_groups import (
    CPU_FALLBACK,
    CPU_ONLY_BY_NATURE,
    DEFAULT_THRESHOLDS,
    GROUP_VERDICT_ORDER,
    METAL_GPU,
    MINOR_FALLBACK,
    SEVERITY,
    UNKNOWN,
    VERDICTS,
    Thresholds,
    add,
    grouped_reasons,
    new_agg,
    rollup,
    sized_verdict,
    tree,
    worst_verdict,
)

# Verdict names and the group roll-ups live in readiness_groups; re-exported here.
__all__ = [
    "CPU_FALLBACK", "CPU_ONLY_BY_NATURE", "GROUP_VERDICT_ORDER", "METAL_GPU", "MINOR_FALLBACK",
    "UNKNOWN", "VERDICTS", "Thresholds", "check", "compare_with_measured", "parse_metal_version",
    "predict_op", "predict_ops", "sized_verdict", "worst_verdict",
]  # fmt: skip

# Iterator ops of tf.data; anything with "Dataset" in its type is matched separately.
_DATA_PREFIXES = (
    "Iterator",
    "AnonymousIterator",
    "MultiDeviceIterator",
    "AnonymousMultiDeviceIterator",
    "OneShotIterator",
    "MakeIterator",
    "DeleteIterator",
    "DeleteMultiDeviceIterator",
    "SerializeIterator",
    "DeserializeIterator",
    # Keras fit reads batches through IteratorGetNextAsOptional + Optional* ops.
    "Optional",
)
# No compute to predict: their placement follows their inputs/consumers, and a function-call or
# control-flow op's own time is bookkeeping around the ops it runs.
BOOKKEEPING_TYPES = {
    "NoOp",
    "Const",
    "HostConst",
    "_Arg",
    "_Retval",
    "_DeviceArg",
    "_DeviceRetval",
    "VarHandleOp",
    "_VarHandlesOp",
    "Placeholder",
    "PlaceholderV2",
    "PlaceholderWithDefault",
    "PartitionedCall",
    "StatefulPartitionedCall",
    "If",
    "StatelessIf",
    "While",
    "StatelessWhile",
    "Case",
    "StatelessCase",
}


@lru_cache(maxsize=1)
def load_data() -> dict:
    """The shipped metal_kernels.json, parsed once."""
    return data_files.load("metal_kernels.json", "tb-metal-metal-kernels")


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def available_metal_versions() -> list[str]:
    """tensorflow-metal versions in the data file, newest first."""
    return sorted(load_data()["metal_versions"], key=_version_key, reverse=True)


def default_metal_version() -> str:
    """The newest tensorflow-metal version in the data file."""
    return available_metal_versions()[0]


def parse_metal_version(raw: str | None) -> str:
    """A tensorflow-metal version of the data file; None or "" is the newest."""
    versions = available_metal_versions()
    if not raw:
        return versions[0]
    if raw not in versions:
        # A bad argument of every face alike (the routes answer 400, the CLI exits 2).
        raise InvalidArgumentError(
            f"unknown tensorflow-metal version {str(raw)[:40]!r}; known: {', '.join(versions)}"
        )
    return raw


@cache
def _sets(metal_version: str) -> tuple[frozenset, frozenset, frozenset]:
    data = load_data()
    entry = data["metal_versions"][parse_metal_version(metal_version)]
    return (
        frozenset(entry["op_types"]),
        frozenset(data.get("tensorflow_default_kernel_op_types", ())),
        frozenset(data.get("tensorflow_string_op_types", ())),
    )


def macos_op_types(op_type: str, op_name: str = "") -> tuple[tuple[str, ...], str]:
    """The op type(s) the same graph would run on macOS, and a note when they differ."""
    mac = rewrites.macos_ops(op_type, op_name, _sets(default_metal_version())[0])
    return mac.op_types, mac.note


def _is_data_op(op_type: str) -> bool:
    return "Dataset" in op_type or op_type.startswith(_DATA_PREFIXES)


def category_of(op_type: str, strings: frozenset | None = None) -> str | None:
    """Why an op type runs on the host whatever the device: py_function, tf_data, transfer,
    string; None for ordinary ops."""
    if op_type in PY_FUNCTION_TYPES:
        return "py_function"
    if _is_data_op(op_type):
        return "tf_data"
    if op_type in SEND_RECV_TYPES:
        return "transfer"
    if strings is None:
        strings = _sets(default_metal_version())[2]
    return "string" if op_type in strings else None


_BY_NATURE = {
    "py_function": "{t} runs Python code on the host (tf.py_function)",
    "tf_data": "{t} is a tf.data input-pipeline op; it runs on the host",
    "transfer": "{t} is host-side transfer bookkeeping between devices",
    "string": "{t} takes or returns strings, which live on the host",
}


def _predict_one(op_type: str, metal: frozenset, default: frozenset, strings: frozenset):
    """Verdict and reason for one macOS op type."""
    category = category_of(op_type, strings)
    if category:
        return CPU_ONLY_BY_NATURE, _BY_NATURE[category].format(t=op_type)
    if op_type in BOOKKEEPING_TYPES:
        return UNKNOWN, (
            f"{op_type} is graph bookkeeping: its device follows its data and it has no "
            "compute of its own to predict"
        )
    if op_type in metal:
        return METAL_GPU, f"tensorflow-metal registers a kernel for {op_type}"
    if op_type in default:
        return METAL_GPU, (
            f"no Metal kernel for {op_type}, but TensorFlow's device-agnostic DEFAULT kernel "
            "runs it on any device, Metal included (dtype limits apply)"
        )
    if not op_type:
        return UNKNOWN, "the op type is not known"
    return CPU_FALLBACK, f"no Metal kernel for {op_type}: it would fall back to the CPU"


def predict_op(op_type: str, op_name: str = "", metal_version: str | None = None) -> dict:
    """Predicted Metal placement of one op type (a prediction, never a measurement).

    Linux-only op types (oneDNN kernels, Grappler's CPU-only fusions) are judged by the ops a
    Mac would run in their place (`rewrites.macos_ops`).
    """
    version = metal_version or default_metal_version()
    metal, default, strings = _sets(version)
    mac = rewrites.macos_ops(op_type, op_name, metal)
    if mac.nothing_to_predict:
        return _result(op_type, version, UNKNOWN, mac.note, mac.op_types, op_name, mac)
    verdicts = [(p, *_predict_one(p, metal, default, strings)) for p in mac.op_types]
    worst = max(verdicts, key=lambda v: SEVERITY[v[1]])
    verdict, reason = worst[1], worst[2]
    if len(verdicts) > 1 and verdict == CPU_FALLBACK:
        bad = ", ".join(p for p, v, _ in verdicts if v == verdict)
        reason = f"no Metal kernel for {bad}: it would fall back to the CPU"
    elif len(verdicts) > 1 and verdict == METAL_GPU:
        reason = "tensorflow-metal registers kernels for all of them"
    if mac.note:
        reason = f"{mac.note}; {reason}"
    return _result(op_type, version, verdict, reason, mac.op_types, op_name, mac)


def _result(op_type, version, verdict, reason, macos_types, op_name="", mac=None):
    metal, default, strings = _sets(version)
    out = {
        "verdict": verdict,
        "reason": reason,
        "op_type": op_type,
        "metal_version": version,
        "macos_op_types": list(macos_types),
        "linux_only": rewrites.is_linux_only(op_type),
        "rewrite_sources": list(mac.sources) if mac else [],
    }
    if op_name:
        out["op_name"] = op_name
    # The op types a user would have to replace: the ones with no Metal kernel.
    if verdict == CPU_FALLBACK:
        out["fallback_op_types"] = [t for t in macos_types if t not in metal and t not in default]
    else:
        out["fallback_op_types"] = []
    # Op types that need a remedy: fallbacks, and host-only ops (py_function, tf.data...).
    needy = out["fallback_op_types"] or (
        [t for t in macos_types if category_of(t, strings)] if verdict == CPU_ONLY_BY_NATURE else []
    )
    out["remedy_ids"] = [
        remedies.remedy_for(t, category_of(t, strings), None, version)["id"] for t in needy
    ]
    return out


def predict_ops(
    ops: list[dict], metal_version: str | None = None, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> dict:
    """Readiness of the core engine's op rows, per op, rolled up per layer, per bucket and per
    layer subtree (a parent sums its sublayers' time), with size-aware verdicts and remedies."""
    version = metal_version or default_metal_version()
    rows = []
    totals = dict.fromkeys(VERDICTS, 0)
    layers: dict[tuple | None, dict] = {}
    # Ops outside any layer, also per bucket (optimizer, input pipeline...) for the layer tree.
    buckets: dict[str, dict] = {}
    remedy_types: dict[str, dict] = {}
    for op in ops:
        pred = predict_op(op.get("type") or "", op.get("name") or "", version)
        ps = int(op.get("self_ps") or 0)
        row = dict(op)
        for k in ("verdict", "reason", "macos_op_types", "fallback_op_types", "remedy_ids"):
            row[k] = pred[k]
        row["linux_only"] = pred["linux_only"]
        rows.append(row)
        totals[pred["verdict"]] += ps
        key = tuple(op["layer"]) if op.get("layer") else None
        add(layers.setdefault(key, new_agg()), pred, ps)
        if key is None:
            add(buckets.setdefault(op.get("bucket") or "other", new_agg()), pred, ps)
        needy = pred["fallback_op_types"] or (
            pred["macos_op_types"] if pred["verdict"] == CPU_ONLY_BY_NATURE else []
        )
        for rid, t in zip(pred["remedy_ids"], needy, strict=False):
            entry = remedy_types.setdefault(rid, {"types": set(), "ps": 0})
            entry["types"].add(t)
            entry["ps"] += ps
    total = sum(totals.values())
    # A group's own ops say why they would run on the CPU (the layer tree sums, never says).
    layer_rows = [
        {"layer": list(k) if k else None, **rollup(a, thresholds), "reasons": grouped_reasons(a)}
        for k, a in layers.items()
    ]
    layer_rows.sort(key=lambda r: (-r["fallback_ps"], -r["total_ps"], r["layer"] or []))
    bucket_rows = [
        {"bucket": k, **rollup(a, thresholds), "reasons": grouped_reasons(a)}
        for k, a in buckets.items()
    ]
    bucket_rows.sort(key=lambda r: (-r["fallback_ps"], -r["total_ps"], r["bucket"]))
    return {
        "metal_version": version,
        "is_prediction": True,
        "note": (
            f"Prediction for tensorflow-metal {version} from the op types its plugin names; "
            "dtype limits are not known, so an op listed as metal_gpu can still fall back."
        ),
        "thresholds": {"min_ps": thresholds.min_ps, "min_share": thresholds.min_share},
        "total_ps": total,
        "fallback_ps": totals[CPU_FALLBACK],
        "fallback_share": totals[CPU_FALLBACK] / total if total else 0.0,
        "cpu_only_ps": totals[CPU_ONLY_BY_NATURE],
        "verdict_ps": totals,
        "ops": rows,
        "layers": layer_rows,
        "layer_tree": tree(layers, thresholds),
        "buckets": bucket_rows,
        "remedies": _remedy_table(remedy_types, version),
    }


def _remedy_table(remedy_types: dict[str, dict], version: str) -> list[dict]:
    """One row per remedy the run needs, the op types it covers and their time, largest first."""
    out = []
    for seen in remedy_types.values():
        t = sorted(seen["types"])[0]
        entry = remedies.remedy_for(t, category_of(t), None, version)
        out.append({**entry, "op_types": sorted(seen["types"]), "ps": seen["ps"]})
    out.sort(key=lambda r: (-r["ps"], r["id"]))
    return out


def check(
    ops_payload: dict,
    manifest: dict | None,
    metal_version: str | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> dict:
    """`tb-metal metal-check --format json` and the plugin's `/readiness`: an ``ops`` payload of
    the core (header kept) with its readiness prediction, the doctor's verdict on the recorded
    environment, and, for a run recorded on a Mac with tensorflow-metal (manifest
    ``environment.tensorflow_metal``), where the measured placement disagrees."""
    data = {k: v for k, v in ops_payload.items() if k != "ops"}
    pred = predict_ops(ops_payload.get("ops") or [], metal_version, thresholds)
    data.update(pred)
    # The picker's choices, newest (the default) first.
    data["metal_versions"] = available_metal_versions()
    env = (manifest or {}).get("environment") or {}
    measured = env.get("tensorflow_metal") or None
    data["measured_tensorflow_metal"] = measured
    data["disagreements"] = compare_with_measured(pred, pred["ops"]) if measured else None
    data["environment_doctor"] = _doctor(env)
    # Most severe first: the order a group of ops takes its verdict in (worst_verdict).
    data["verdict_order"] = sorted(VERDICTS, key=lambda v: -SEVERITY[v])
    data["group_verdict_order"] = list(GROUP_VERDICT_ORDER)
    return data


def _doctor(env: dict) -> dict | None:
    """The doctor's verdict on a recorded environment (None when nothing was recorded)."""
    if not env:
        return None
    from . import doctor

    return doctor.check_environment(env)


def _measured_kind(device: str) -> str | None:
    dev = (device or "").upper()
    if "GPU" in dev:
        return "GPU"
    if "CPU" in dev:
        return "CPU"
    return None


def compare_with_measured(prediction: dict, measured_ops: list[dict]) -> list[dict]:
    """Ops whose predicted placement disagrees with the placement recorded on a Mac."""
    by_key = {(r.get("name"), r.get("type")): r for r in prediction.get("ops", [])}
    version = prediction.get("metal_version")
    out = []
    for m in measured_ops:
        if m.get("device_source") != "placement":
            continue
        kind = _measured_kind(m.get("device", ""))
        # Transfers run on both sides of a copy; they say nothing about a kernel.
        if kind is None or m.get("type") in SEND_RECV_TYPES:
            continue
        pred = by_key.get((m.get("name"), m.get("type")))
        if pred is None:
            pred = predict_op(m.get("type") or "", m.get("name") or "", version)
        verdict = pred["verdict"]
        if verdict == UNKNOWN:
            continue
        expected = "GPU" if verdict == METAL_GPU else "CPU"
        if expected == kind:
            continue
        out.append(
            {
                "name": m.get("name"),
                "type": m.get("type"),
                "layer": m.get("layer"),
                "self_ps": m.get("self_ps", 0),
                "predicted": verdict,
                "measured_device": m.get("device"),
                "reason": (
                    f"predicted {verdict} ({pred['reason']}) but the run placed it on {kind}"
                ),
            }
        )
    out.sort(key=lambda d: (-int(d.get("self_ps") or 0), str(d.get("name")), str(d.get("type"))))
    return out
