"""Metal readiness: predict which ops and layers would fall back to the CPU on tensorflow-metal.

The prediction comes from `data/metal_kernels.json` (op type names found in each released
`libmetal_plugin.dylib`, see docs/metal-kernels.md). It never imports TensorFlow, so it works on
any trace, Linux and CUDA runs included.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from importlib import resources
from typing import Any

METAL_GPU = "metal_gpu"
CPU_FALLBACK = "cpu_fallback"
CPU_ONLY_BY_NATURE = "cpu_only_by_nature"
UNKNOWN = "unknown"
VERDICTS = (METAL_GPU, CPU_FALLBACK, CPU_ONLY_BY_NATURE, UNKNOWN)
# A layer takes the worst verdict among its ops; fallback first because that is what users fix.
_SEVERITY = {CPU_FALLBACK: 3, CPU_ONLY_BY_NATURE: 2, UNKNOWN: 1, METAL_GPU: 0}

PY_FUNC_TYPES = {"EagerPyFunc", "PyFunc", "PyFuncStateless"}
TRANSFER_TYPES = {"_Send", "_Recv", "_HostSend", "_HostRecv"}
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

# oneDNN (Linux x86) graph rewrites that do not map by simply dropping the _Mkl/_MklNative prefix:
# the op types that the same graph would run on macOS instead.
_MKL_SPECIAL: dict[str, tuple[str, ...]] = {
    "_MklFusedMatMul": ("_FusedMatMul",),
    "_MklNativeFusedMatMul": ("_FusedMatMul",),
    "_MklFusedConv2D": ("_FusedConv2D",),
    "_MklNativeFusedConv2D": ("_FusedConv2D",),
    "_MklPadWithConv2D": ("Pad", "Conv2D"),
    "_MklNativePadWithConv2D": ("Pad", "Conv2D"),
    "_MklPadWithFusedConv2D": ("Pad", "_FusedConv2D"),
    "_MklNativePadWithFusedConv2D": ("Pad", "_FusedConv2D"),
    "_MklFusedBatchMatMulV2": ("BatchMatMulV2", "Mul", "AddV2"),
    "_MklNativeFusedBatchMatMulV2": ("BatchMatMulV2", "Mul", "AddV2"),
    "_MklLayerNorm": ("Mean", "SquaredDifference", "Rsqrt", "Mul", "AddV2", "Sub"),
    "_MklFusedInstanceNorm": ("Mean", "SquaredDifference", "Rsqrt", "Mul", "AddV2", "Sub"),
    "_MklSwish": ("Sigmoid", "Mul"),
    "_MklNativeSwish": ("Sigmoid", "Mul"),
    "_MklConv2DWithBias": ("Conv2D", "BiasAdd"),
    "_MklNativeConv2DWithBias": ("Conv2D", "BiasAdd"),
    "_MklConv2DBackpropFilterWithBias": ("Conv2DBackpropFilter", "BiasAddGrad"),
    "_MklNativeConv2DBackpropFilterWithBias": ("Conv2DBackpropFilter", "BiasAddGrad"),
    "_MklFusedDepthwiseConv2dNative": ("DepthwiseConv2dNative", "BiasAdd"),
    "_MklNativeFusedDepthwiseConv2dNative": ("DepthwiseConv2dNative", "BiasAdd"),
}
# oneDNN layout conversions exist only in oneDNN graphs: there is nothing to predict on macOS.
_MKL_ONLY = {"_MklToTf", "_MklInputConversion"}
# Grappler/Metal fusions that Metal may lack: predict the unfused ops macOS would run instead.
_FUSION_PARTS: dict[str, tuple[str, ...]] = {
    "_FusedDepthwiseConv2dNative": ("DepthwiseConv2dNative", "BiasAdd"),
    "_FusedBatchMatMulV2": ("BatchMatMulV2", "Mul", "AddV2"),
    "_FusedConv3D": ("Conv3D", "BiasAdd"),
}


@lru_cache(maxsize=1)
def load_data() -> dict:
    """The shipped metal_kernels.json, parsed once."""
    ref = resources.files("tb_metal_plugin").joinpath("data", "metal_kernels.json")
    data = json.loads(ref.read_text(encoding="utf-8"))
    if data.get("format") != "tb-metal-metal-kernels" or data.get("version") != 1:
        raise ValueError("metal_kernels.json: unsupported format or version")
    return data


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def available_metal_versions() -> list[str]:
    """tensorflow-metal versions in the data file, newest first."""
    return sorted(load_data()["metal_versions"], key=_version_key, reverse=True)


def default_metal_version() -> str:
    """The newest tensorflow-metal version in the data file."""
    return available_metal_versions()[0]


@cache
def _sets(metal_version: str) -> tuple[frozenset, frozenset, frozenset]:
    data = load_data()
    entry = data["metal_versions"].get(metal_version)
    if entry is None:
        known = ", ".join(available_metal_versions())
        raise ValueError(f"unknown tensorflow-metal version {metal_version!r} (known: {known})")
    return (
        frozenset(entry["op_types"]),
        frozenset(data.get("tensorflow_default_kernel_op_types", ())),
        frozenset(data.get("tensorflow_string_op_types", ())),
    )


def macos_op_types(op_type: str) -> tuple[tuple[str, ...], str]:
    """The op type(s) the same graph would run on macOS, and a note when they differ."""
    if op_type in _MKL_SPECIAL:
        parts = _MKL_SPECIAL[op_type]
        return parts, f"oneDNN op {op_type} would run as {' + '.join(parts)} on macOS"
    for prefix in ("_MklNative", "_Mkl"):
        if op_type.startswith(prefix) and op_type not in _MKL_ONLY:
            rest = op_type[len(prefix) :]
            # _MklNativeFusedX -> _FusedX; _MklMatMul -> MatMul; but FusedBatchNorm* are public
            # ops (only their Ex variant is internal).
            internal = rest.startswith("Fused") and (
                not rest.startswith("FusedBatchNorm") or rest == "FusedBatchNormEx"
            )
            mapped = "_" + rest if internal else rest
            return (mapped,), f"oneDNN op {op_type} would run as {mapped} on macOS"
    return (op_type,), ""


def _is_data_op(op_type: str) -> bool:
    return "Dataset" in op_type or op_type.startswith(_DATA_PREFIXES)


def _predict_one(op_type: str, metal: frozenset, default: frozenset, strings: frozenset):
    """Verdict and reason for one macOS op type."""
    if op_type in PY_FUNC_TYPES:
        return CPU_ONLY_BY_NATURE, f"{op_type} runs Python code on the host (tf.py_function)"
    if _is_data_op(op_type):
        return CPU_ONLY_BY_NATURE, f"{op_type} is a tf.data input-pipeline op; it runs on the host"
    if op_type in TRANSFER_TYPES:
        return CPU_ONLY_BY_NATURE, f"{op_type} is host-side transfer bookkeeping between devices"
    if op_type in strings:
        return CPU_ONLY_BY_NATURE, f"{op_type} takes or returns strings, which live on the host"
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
    """Predicted Metal placement of one op type (a prediction, never a measurement)."""
    version = metal_version or default_metal_version()
    metal, default, strings = _sets(version)
    if op_type in _MKL_ONLY:
        return _result(op_type, version, UNKNOWN, f"{op_type} is a oneDNN layout conversion that "
                       "does not exist on macOS", (op_type,))  # fmt: skip
    parts, note = macos_op_types(op_type)
    expanded: list[str] = []
    for part in parts:
        expanded.extend(
            _FUSION_PARTS[part] if part not in metal and part in _FUSION_PARTS else [part]
        )
    if len(expanded) > len(parts):
        fused = ", ".join(p for p in parts if p in _FUSION_PARTS and p not in metal)
        extra = f"no Metal kernel for fused {fused}; macOS would run {' + '.join(expanded)}"
        note = f"{note}; {extra}" if note else extra
    verdicts = [(p, *_predict_one(p, metal, default, strings)) for p in expanded]
    worst = max(verdicts, key=lambda v: _SEVERITY[v[1]])
    verdict = worst[1]
    reason = worst[2]
    if len(verdicts) > 1 and verdict == CPU_FALLBACK:
        bad = ", ".join(p for p, v, _ in verdicts if v == verdict)
        reason = f"no Metal kernel for {bad}: it would fall back to the CPU"
    elif len(verdicts) > 1 and verdict == METAL_GPU:
        reason = "tensorflow-metal registers kernels for all of them"
    if note:
        reason = f"{note}; {reason}"
    return _result(op_type, version, verdict, reason, tuple(expanded), op_name)


def _result(op_type, version, verdict, reason, macos_types, op_name=""):
    out = {
        "verdict": verdict,
        "reason": reason,
        "op_type": op_type,
        "metal_version": version,
        "macos_op_types": list(macos_types),
    }
    if op_name:
        out["op_name"] = op_name
    # The op types a user would have to replace: the ones with no Metal kernel.
    if verdict == CPU_FALLBACK:
        metal, default, _ = _sets(version)
        out["fallback_op_types"] = [t for t in macos_types if t not in metal and t not in default]
    else:
        out["fallback_op_types"] = []
    return out


def worst_verdict(verdicts) -> str:
    """The verdict a group of ops gets: its most severe one (metal_gpu only if all are)."""
    verdicts = list(verdicts)
    return max(verdicts, key=lambda v: _SEVERITY[v]) if verdicts else UNKNOWN


def predict_ops(ops: list[dict], metal_version: str | None = None) -> dict:
    """Readiness of the core engine's op rows, per op and rolled up per layer."""
    version = metal_version or default_metal_version()
    rows = []
    totals = dict.fromkeys(VERDICTS, 0)
    layers: dict[tuple | None, dict] = {}
    # Ops outside any layer, also per bucket (optimizer, input pipeline...) for the layer tree.
    buckets: dict[str, dict] = {}
    for op in ops:
        pred = predict_op(op.get("type") or "", op.get("name") or "", version)
        ps = int(op.get("self_ps") or 0)
        row = dict(op)
        row.update(
            {
                "verdict": pred["verdict"],
                "reason": pred["reason"],
                "macos_op_types": pred["macos_op_types"],
                "fallback_op_types": pred["fallback_op_types"],
            }
        )
        rows.append(row)
        totals[pred["verdict"]] += ps
        key = tuple(op["layer"]) if op.get("layer") else None
        targets: list[tuple[dict, Any]] = [(layers, key)]
        if key is None:
            targets.append((buckets, op.get("bucket") or "other"))
        for group, gkey in targets:
            agg = group.setdefault(
                gkey, {"verdicts": dict.fromkeys(VERDICTS, 0), "seen": set(), "fb": {}}
            )
            agg["verdicts"][pred["verdict"]] += ps
            agg["seen"].add(pred["verdict"])
            for t in pred["fallback_op_types"]:
                agg["fb"][t] = agg["fb"].get(t, 0) + ps
    total = sum(totals.values())
    layer_rows = [{"layer": list(k) if k else None, **_rollup(a)} for k, a in layers.items()]
    layer_rows.sort(key=lambda r: (-r["fallback_ps"], -r["total_ps"], r["layer"] or []))
    bucket_rows = [{"bucket": k, **_rollup(a)} for k, a in buckets.items()]
    bucket_rows.sort(key=lambda r: (-r["fallback_ps"], -r["total_ps"], r["bucket"]))
    return {
        "metal_version": version,
        "is_prediction": True,
        "note": (
            f"Prediction for tensorflow-metal {version} from the op types its plugin names; "
            "dtype limits are not known, so an op listed as metal_gpu can still fall back."
        ),
        "total_ps": total,
        "fallback_ps": totals[CPU_FALLBACK],
        "fallback_share": totals[CPU_FALLBACK] / total if total else 0.0,
        "cpu_only_ps": totals[CPU_ONLY_BY_NATURE],
        "verdict_ps": totals,
        "ops": rows,
        "layers": layer_rows,
        "buckets": bucket_rows,
    }


def _rollup(agg: dict) -> dict:
    return {
        "verdicts": agg["verdicts"],
        # Largest first: the op type costing the most time is the one to replace first.
        "fallback_op_types": sorted(agg["fb"], key=lambda t: (-agg["fb"][t], t)),
        "fallback_ps": agg["verdicts"][CPU_FALLBACK],
        "total_ps": sum(agg["verdicts"].values()),
        "verdict": worst_verdict(agg["seen"]),
    }


def check(ops_payload: dict, manifest: dict | None, metal_version: str | None = None) -> dict:
    """`tb-metal metal-check --format json` and the plugin's `/readiness`: an ``ops`` payload of
    the core (header kept) with its readiness prediction, and, for a run recorded on a Mac with
    tensorflow-metal (manifest ``environment.tensorflow_metal``), where the measured placement
    disagrees with the prediction."""
    data = {k: v for k, v in ops_payload.items() if k != "ops"}
    pred = predict_ops(ops_payload.get("ops") or [], metal_version)
    data.update(pred)
    env = (manifest or {}).get("environment") or {}
    measured = env.get("tensorflow_metal") or None
    data["measured_tensorflow_metal"] = measured
    data["disagreements"] = compare_with_measured(pred, pred["ops"]) if measured else None
    # Most severe first: the order a group of ops takes its verdict in (worst_verdict).
    data["verdict_order"] = sorted(VERDICTS, key=lambda v: -_SEVERITY[v])
    return data


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
        if kind is None or m.get("type") in TRANSFER_TYPES:
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
