"""Regenerate tb_metal_plugin/data/metal_kernels.json from Apple's public tensorflow-metal wheels.

Run from the repository root (needs network access to PyPI and TensorFlow installed):

    python scripts/update_metal_kernels.py

For every released tensorflow-metal version with a macOS arm64 wheel, the script downloads one
wheel into a temporary directory (never into the repository), extracts
``tensorflow-plugins/libmetal_plugin.dylib``, collects the dylib's printable strings and keeps the
ones that are exact names of TensorFlow op types. TensorFlow's op registry comes from
``TF_GetAllOpList()`` of the running TensorFlow: every OpDef linked into the process, i.e. all
``tf.raw_ops`` plus internal ops such as ``_FusedMatMul``, ``_FusedConv2D``, ``_Send``, ``_Mkl*``.
It also records, from the same TensorFlow, which op types have a device-agnostic ``DEFAULT`` kernel
(these run on any PluggableDevice, Metal included) and which op types take or return strings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DYLIB = "tensorflow-plugins/libmetal_plugin.dylib"
PLATFORM = "macosx_14_0_arm64"  # pip accepts older macOS tags (11_0, 12_0) under this one
# Preferred first: any one wheel per version suffices (the dylib is per platform, not per Python).
PYTHON_VERSIONS = ["3.11", "3.10", "3.9", "3.8", "3.12"]
OUTPUT = Path(__file__).resolve().parent.parent / "tb_metal_plugin" / "data" / "metal_kernels.json"
COMMAND = "python scripts/update_metal_kernels.py"
# A printable run this short cannot be an op type worth reporting (shortest real ones: Abs, Sub).
MIN_STRING = 3

METHOD = (
    "For each released tensorflow-metal version, one macOS arm64 wheel is downloaded from PyPI "
    "(pip download --no-deps --only-binary=:all: --platform macosx_14_0_arm64 --python-version "
    "<first of 3.11, 3.10, 3.9, 3.8, 3.12 that has a wheel>) into a temporary directory. "
    "tensorflow-plugins/libmetal_plugin.dylib is read from the wheel, every run of at least 3 "
    "printable ASCII bytes is taken as a string, and the strings that are exactly the name of an "
    "op type in TensorFlow's op registry (TF_GetAllOpList() of the TensorFlow named in "
    "tensorflow_op_registry) are kept as op_types."
)

LIMITS = [
    "The op types are names found among the dylib's strings, not decoded kernel registrations: a "
    "name can appear for other reasons. The plugin carries its own copy of Grappler's op-type "
    "helpers (metal_plugin/src/graph/utils/op_types.cc: NeverForwardsInputs, IsTensorArray, ...), "
    "which names host-only ops such as IteratorGetNext, RestoreV2, DecodeProtoV2 and "
    "QueueDequeue*; so the list over-approximates. tb-metal's readiness rules classify tf.data, "
    "py_function and string ops as CPU-only by nature before consulting this list.",
    "It also under-reports: releases before 0.8.0 lack names such as Tanh, Cast, ReluGrad, AddN "
    "and ConcatV2 that their kernels surely cover (short names can be built in code rather than "
    "stored as strings); from 0.8.0 on they appear, at least through the op-type helpers.",
    "No dtype constraints are visible: a listed op type may have a Metal kernel for float32 only "
    "and still fall back for int64 or float64 inputs.",
    "Ops registered under a name that is not in this TensorFlow's op registry (ops removed from "
    "TensorFlow, or plugin-private ops such as _FusedMatMulGrad) are not listed.",
    "tensorflow_default_kernel_op_types comes from the TensorFlow used to generate the file, not "
    "from the TensorFlow a given tensorflow-metal release pairs with; DEFAULT kernels also carry "
    "dtype constraints (often int32 kept in host memory).",
    "One wheel per version is inspected; wheels for other Python versions of the same release are "
    "assumed to ship the same kernels.",
]


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run a command, capturing text output."""
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def released_versions() -> list[str]:
    """Every tensorflow-metal version with a macOS arm64 wheel for any supported Python."""
    found: set[str] = set()
    for py in PYTHON_VERSIONS:
        out = run(
            [sys.executable, "-m", "pip", "index", "versions", "tensorflow-metal",
             "--platform", PLATFORM, "--python-version", py, "--only-binary=:all:"]
        ).stdout  # fmt: skip
        match = re.search(r"Available versions:\s*(.+)", out)
        if match:
            found.update(v.strip() for v in match.group(1).split(",") if v.strip())
    return sorted(found, key=version_key, reverse=True)


def version_key(version: str) -> tuple:
    """Sort key for plain dotted release versions."""
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def download_wheel(version: str, dest: Path) -> Path:
    """Download one macOS arm64 wheel of tensorflow-metal==version into dest."""
    errors = []
    for py in PYTHON_VERSIONS:
        target = dest / f"{version}-{py}"
        proc = run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--platform", PLATFORM, "--python-version", py,
             f"tensorflow-metal=={version}", "-d", str(target)]
        )  # fmt: skip
        wheels = sorted(target.glob("*.whl")) if target.exists() else []
        if proc.returncode == 0 and wheels:
            return wheels[0]
        errors.append(f"python {py}: {proc.stderr.strip().splitlines()[-1:]}")
    raise RuntimeError(f"no wheel for tensorflow-metal {version}: {errors}")


def printable_strings(blob: bytes, min_len: int = MIN_STRING) -> set[str]:
    """Runs of printable ASCII bytes, like the `strings` tool."""
    pattern = re.compile(rb"[\x20-\x7e]{%d,}" % min_len)
    return {m.group().decode("ascii") for m in pattern.finditer(blob)}


def tensorflow_facts() -> dict:
    """Op registry, DEFAULT-kernel op types and string op types of the installed TensorFlow."""
    import tensorflow as tf
    from tensorflow.core.framework import op_def_pb2, types_pb2
    from tensorflow.python.client import pywrap_tf_session
    from tensorflow.python.framework import kernels

    op_list = op_def_pb2.OpList()
    op_list.ParseFromString(pywrap_tf_session.TF_GetBuffer(pywrap_tf_session.TF_GetAllOpList()))
    registry = {op.name for op in op_list.op}
    # tf.raw_ops is the public subset; check it is covered so the source is known to be complete.
    missing = {n for n in dir(tf.raw_ops) if not n.startswith("_")} - registry
    if missing:
        raise RuntimeError(f"TF_GetAllOpList lacks raw ops: {sorted(missing)[:10]}")
    string_ops = {
        op.name
        for op in op_list.op
        if any(arg.type == types_pb2.DT_STRING for arg in [*op.input_arg, *op.output_arg])
    }
    default_ops = {
        k.op for k in kernels.get_all_registered_kernels().kernel if k.device_type == "DEFAULT"
    }
    return {
        "version": tf.__version__,
        "registry": registry,
        "string_ops": string_ops,
        "default_ops": default_ops,
    }


def inspect_wheel(wheel: Path, registry: set[str]) -> dict:
    """Hash a wheel and return the registered op types its Metal dylib names."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with zipfile.ZipFile(wheel) as zf:
        # Early wheels (0.1-0.3) keep it under tensorflow_metal-V.data/purelib/.
        member = next(n for n in zf.namelist() if n.endswith(DYLIB))
        blob = zf.read(member)
    return {
        "wheel": wheel.name,
        "sha256": digest,
        "dylib": member,
        "dylib_sha256": hashlib.sha256(blob).hexdigest(),
        "op_types": sorted(printable_strings(blob) & registry),
    }


def main(argv: list[str] | None = None) -> int:
    """Download every release, derive its op types and write the data file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--versions", nargs="*", help="only these versions (default: all)")
    args = parser.parse_args(argv)

    tf_facts = tensorflow_facts()
    versions = args.versions or released_versions()
    if not versions:
        raise SystemExit("pip found no tensorflow-metal versions (is PyPI reachable?)")
    metal_versions = {}
    with tempfile.TemporaryDirectory(prefix="tfmetal-") as tmp:
        for version in versions:
            wheel = download_wheel(version, Path(tmp))
            metal_versions[version] = inspect_wheel(wheel, tf_facts["registry"])
            wheel.unlink()  # Apple's binary never leaves the temp dir
            print(
                f"{version}: {len(metal_versions[version]['op_types'])} op types from {wheel.name}"
            )

    data = {
        "format": "tb-metal-metal-kernels",
        "version": 1,
        "generated_by": COMMAND,
        "tensorflow_op_registry": tf_facts["version"],
        "tensorflow_op_registry_size": len(tf_facts["registry"]),
        "metal_versions": dict(sorted(metal_versions.items(), key=lambda kv: version_key(kv[0]))),
        "tensorflow_default_kernel_op_types": sorted(tf_facts["default_ops"]),
        "tensorflow_string_op_types": sorted(tf_facts["string_ops"]),
        "method": METHOD,
        "limits": LIMITS,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
