"""Metal readiness: the committed kernel data and the prediction built on it."""

import json
import subprocess
import sys
from functools import cache
from importlib import resources
from pathlib import Path

import pytest

from tb_metal_plugin import readiness as r
from tb_metal_plugin import remedies, rewrites


def _op_types(version="1.2.0"):
    return set(r.load_data()["metal_versions"][version]["op_types"])


def test_data_file_format():
    data = r.load_data()
    assert data["format"] == "tb-metal-metal-kernels" and data["version"] == 1
    assert data["generated_by"] == "python scripts/update_metal_kernels.py"
    assert data["method"] and data["limits"]
    for version, entry in data["metal_versions"].items():
        assert entry["wheel"].startswith(f"tensorflow_metal-{version}-")
        assert len(entry["sha256"]) == 64
        assert entry["op_types"] == sorted(entry["op_types"])


def test_data_file_ships_in_package():
    ref = resources.files("tb_metal_plugin").joinpath("data", "metal_kernels.json")
    assert json.loads(ref.read_text(encoding="utf-8"))["metal_versions"]


def test_versions_newest_first():
    versions = r.available_metal_versions()
    assert versions[0] == r.default_metal_version() == "1.2.0"
    assert {"1.1.0", "1.0.0", "0.8.0", "0.1.0"} <= set(versions)
    with pytest.raises(ValueError, match="unknown tensorflow-metal version"):
        r.predict_op("Conv2D", metal_version="9.9.9")


# DOMAIN.md's confirmed facts about 1.2.0 (checked on the downloaded dylib).
@pytest.mark.parametrize(
    "op_type",
    ["Conv2D", "MatMul", "_FusedMatMul", "_FusedConv2D", "ResourceApplyAdam", "RngReadAndSkip"],
)
def test_domain_present_in_1_2_0(op_type):
    assert op_type in _op_types()
    assert r.predict_op(op_type)["verdict"] == r.METAL_GPU


@pytest.mark.parametrize(
    "op_type",
    [
        "ImageProjectiveTransformV3",
        "StatelessRandomGetKeyCounter",
        "Einsum",
        "EagerPyFunc",
        "PyFuncStateless",
    ],
)
def test_domain_absent_in_1_2_0(op_type):
    assert op_type not in _op_types()


def test_erf_is_named_in_1_2_0_unlike_domain_md():
    # DOMAIN.md lists Erf as absent; the 1.2.0 dylib has the exact string "Erf" and MetalErfOp
    # kernel classes (see docs/metal-kernels.md).
    assert "Erf" in _op_types()
    assert r.predict_op("Erf")["verdict"] == r.METAL_GPU


@pytest.mark.parametrize(
    "op_type",
    [
        "BiasAdd",
        "BiasAddGrad",
        "Relu",
        "ReluGrad",
        "Softmax",
        "LogSoftmax",
        "Conv2DBackpropInput",
        "Conv2DBackpropFilter",
        "ResourceApplyAdam",
        "AssignAddVariableOp",
        "AssignSubVariableOp",
        "SoftmaxCrossEntropyWithLogits",
        "SparseSoftmaxCrossEntropyWithLogits",
        "FusedBatchNormV3",
        "FusedBatchNormGradV3",
        "MaxPool",
        "MaxPoolGrad",
    ],
)
def test_everyday_ops_have_metal_kernels(op_type):
    assert r.predict_op(op_type)["verdict"] == r.METAL_GPU


def test_fallback_names_the_op_type():
    for op_type in ("ImageProjectiveTransformV3", "StatelessRandomGetKeyCounter", "Einsum"):
        pred = r.predict_op(op_type, "model/layer/op")
        assert pred["verdict"] == r.CPU_FALLBACK
        assert op_type in pred["reason"]
        assert pred["fallback_op_types"] == [op_type]
        assert pred["op_name"] == "model/layer/op"
        assert pred["metal_version"] == "1.2.0"


@pytest.mark.parametrize(
    "op_type",
    [
        "EagerPyFunc",
        "PyFunc",
        "PyFuncStateless",
        "IteratorGetNext",
        "IteratorGetNextSync",
        "TensorSliceDataset",
        "OptionalFromValue",
        "IteratorGetNextAsOptional",
        "_Send",
        "_Recv",
        "StringJoin",
        "DecodeJpeg",
    ],
)
def test_cpu_only_by_nature(op_type):
    assert r.predict_op(op_type)["verdict"] == r.CPU_ONLY_BY_NATURE


@pytest.mark.parametrize("op_type", ["NoOp", "Const", "_Arg", "_Retval", "VarHandleOp", ""])
def test_bookkeeping_is_unknown(op_type):
    assert r.predict_op(op_type)["verdict"] == r.UNKNOWN


def test_identity_and_reads_follow_the_data():
    assert r.predict_op("Identity")["verdict"] == r.METAL_GPU
    assert r.predict_op("ReadVariableOp")["verdict"] == r.METAL_GPU


def test_default_kernel_ops_run_on_metal():
    # ExpandDims has no Metal string but a DEFAULT kernel in TensorFlow core.
    assert "ExpandDims" not in _op_types()
    pred = r.predict_op("ExpandDims")
    assert pred["verdict"] == r.METAL_GPU and "DEFAULT" in pred["reason"]


@pytest.mark.parametrize(
    ("mkl", "macos"),
    [
        ("_MklMatMul", ["MatMul"]),
        ("_MklNativeFusedMatMul", ["_FusedMatMul"]),
        ("_MklNativeConv2D", ["Conv2D"]),
        ("_MklNativeFusedConv2D", ["_FusedConv2D"]),
        ("_MklFusedBatchNormV3", ["FusedBatchNormV3"]),
        ("_MklFusedBatchNormGradV3", ["FusedBatchNormGradV3"]),
        ("_MklFusedBatchNormEx", ["_FusedBatchNormEx"]),
        ("_MklNativeBatchMatMulV2", ["BatchMatMulV2"]),
    ],
)
def test_onednn_types_map_to_macos(mkl, macos):
    pred = r.predict_op(mkl)
    assert pred["macos_op_types"] == macos
    assert pred["verdict"] == r.METAL_GPU
    assert "oneDNN" in pred["reason"] and macos[0] in pred["reason"]


def test_onednn_layer_norm_predicts_unfused_ops():
    pred = r.predict_op("_MklLayerNorm")
    assert "Mean" in pred["macos_op_types"] and pred["verdict"] == r.METAL_GPU
    assert r.predict_op("_MklToTf")["verdict"] == r.UNKNOWN
    assert r.predict_op("_MklEinsum")["fallback_op_types"] == ["Einsum"]


def test_older_versions_differ():
    # Fusions arrived after 0.7.1; the newest release dropped TopK/InTopKV2 strings.
    assert r.predict_op("_FusedConv2D", metal_version="0.7.1")["verdict"] == r.CPU_FALLBACK
    assert "TopK" in _op_types("1.1.0") and "TopK" not in _op_types("1.2.0")


US = 10**6  # picoseconds per microsecond


def _row(name, type_, layer, us, phase="forward", **extra):
    """An op row of the core engine; its self time given in microseconds."""
    return {
        "name": name,
        "type": type_,
        "layer": layer,
        "phase": phase,
        "self_ps": us * US,
        **extra,
    }


ROWS = [
    _row(
        "sp/functional_1/conv_1/convolution", "_MklNativeFusedConv2D", ["functional", "conv"], 400
    ),
    _row("sp/functional_1/dense_1/MatMul", "_MklMatMul", ["functional", "dense"], 200),
    _row("sp/functional_1/dense_1/BiasAdd", "BiasAdd", ["functional", "dense"], 50),
    _row(
        "sp/functional_1/random_rotation_1/transform/ImageProjectiveTransformV3",
        "ImageProjectiveTransformV3",
        ["functional", "random_rotation"],
        150,
    ),
    _row(
        "sp/functional_1/random_rotation_1/Cast",
        "Cast",
        ["functional", "random_rotation"],
        10,
    ),
    _row("sp/functional_1/py_layer_1/EagerPyFunc", "EagerPyFunc", ["functional", "py_layer"], 90),
    _row("IteratorGetNext", "IteratorGetNext", None, 60, phase="input"),
    _row("sp/NoOp", "NoOp", None, 40, phase="other"),
]


def test_predict_ops_headline_and_layers():
    pred = r.predict_ops(ROWS)
    assert pred["is_prediction"] is True and pred["metal_version"] == "1.2.0"
    assert pred["total_ps"] == 1000 * US
    assert pred["fallback_ps"] == 150 * US
    assert pred["fallback_share"] == pytest.approx(0.15)
    assert pred["cpu_only_ps"] == 150 * US
    assert sum(pred["verdict_ps"].values()) == pred["total_ps"]
    assert len(pred["ops"]) == len(ROWS)
    assert all("verdict" in o and "reason" in o and o["name"] for o in pred["ops"])
    layers = {tuple(x["layer"]) if x["layer"] else None: x for x in pred["layers"]}
    rot = layers[("functional", "random_rotation")]
    assert rot["verdict"] == r.CPU_FALLBACK
    assert rot["fallback_op_types"] == ["ImageProjectiveTransformV3"]
    assert rot["fallback_ps"] == 150 * US and rot["verdicts"][r.METAL_GPU] == 10 * US
    assert layers[("functional", "py_layer")]["verdict"] == r.CPU_ONLY_BY_NATURE
    assert layers[("functional", "conv")]["verdict"] == r.METAL_GPU
    assert layers[("functional", "dense")]["verdict"] == r.METAL_GPU
    assert layers[None]["verdict"] == r.CPU_ONLY_BY_NATURE  # IteratorGetNext beats NoOp
    assert pred["layers"][0]["layer"] == ["functional", "random_rotation"]  # worst first


def test_predict_ops_empty():
    pred = r.predict_ops([])
    assert pred["total_ps"] == 0 and pred["fallback_share"] == 0.0 and pred["layers"] == []


def test_compare_with_measured():
    pred = r.predict_ops(ROWS)
    measured = [
        # Predicted metal_gpu, placed on GPU: agreement.
        _row(
            "sp/functional_1/dense_1/BiasAdd",
            "BiasAdd",
            ["functional", "dense"],
            50,
            device="GPU:0",
            device_source="placement",
        ),  # fmt: skip
        # Predicted fallback, but the Mac ran it on the GPU: disagreement.
        _row(
            "sp/functional_1/random_rotation_1/transform/ImageProjectiveTransformV3",
            "ImageProjectiveTransformV3",
            ["functional", "random_rotation"],
            150,
            device="/job:localhost/replica:0/task:0/device:GPU:0",
            device_source="placement",
        ),  # fmt: skip
        # An op the prediction did not see (Metal-side type): predicted on the fly.
        _row(
            "sp/functional_1/dense_1/Relu",
            "Relu",
            ["functional", "dense"],
            5,
            device="CPU:0",
            device_source="placement",
        ),  # fmt: skip
        # Not measured placement / transfers / unknown verdicts are skipped.
        _row("x", "Einsum", None, 5, device="GPU:0", device_source="trace_heuristic"),
        _row("y", "_Send", None, 5, device="CPU:0", device_source="placement"),
        _row("sp/NoOp", "NoOp", None, 40, device="CPU:0", device_source="placement"),
    ]
    diffs = r.compare_with_measured(pred, measured)
    assert [(d["type"], d["predicted"]) for d in diffs] == [
        ("ImageProjectiveTransformV3", r.CPU_FALLBACK),
        ("Relu", r.METAL_GPU),
    ]
    assert "GPU" in diffs[0]["reason"]


def test_no_tensorflow_import():
    code = (
        "import sys; from tb_metal_plugin import readiness as r; r.predict_ops("
        "[{'name': 'a', 'type': 'MatMul', 'layer': None, 'phase': 'forward', 'self_ps': 1}]); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- Linux-only rewrites, size-aware verdicts, subtree roll-ups and remedies on real traces ---

ROOT = Path(__file__).resolve().parent.parent
REAL_RUNS = sorted(p for p in (ROOT / "demo" / "logs").iterdir() if p.is_dir()) + [
    ROOT / "tests" / "fixtures" / "linux_rewrites" / "ffn"
]


@cache
def _real_ops(run: Path) -> tuple:
    from tb_metal_plugin import load_profile

    return tuple(load_profile(str(run)).ops("all")["ops"])


@pytest.fixture(params=REAL_RUNS, ids=lambda p: p.name)
def real_run(request):
    return request.param, list(_real_ops(request.param))


def test_no_linux_only_rewrite_is_predicted_as_a_metal_fallback(real_run):
    _, ops = real_run
    pred = r.predict_ops(ops)
    linux = [o for o in pred["ops"] if o["linux_only"]]
    assert linux, "every real Linux run has oneDNN / Grappler CPU-only op types"
    wrong = [(o["type"], o["name"]) for o in linux if o["verdict"] == r.CPU_FALLBACK]
    assert not wrong


def test_unary_ops_composition_is_judged_by_the_ops_a_mac_runs():
    ops = list(_real_ops(REAL_RUNS[-1]))
    fused = [o for o in ops if o["type"] == "_UnaryOpsComposition"]
    # The GELU gradient's fused chain is the largest op of this run (a false alarm before).
    assert sum(o["self_ps"] for o in fused) > 1000 * US
    pred = r.predict_ops(ops)
    rows = [o for o in pred["ops"] if o["type"] == "_UnaryOpsComposition"]
    unary = set(rewrites.load_data()["unary_chain"]["ops"])
    for o in rows:
        assert o["verdict"] == r.METAL_GPU and "unfused" in o["reason"]
        assert set(o["macos_op_types"]) <= unary
    assert pred["fallback_ps"] == 0


@pytest.mark.parametrize(
    ("name", "root"),
    [
        ("sp/model_1/ffn_1/Gelu/Exp/unary_ops_composition", "Exp"),
        ("sp/model_1/chain_1/Sqrt_3/unary_ops_composition", "Sqrt"),
        ("sp/model_1/ArithmeticOptimizer/UnaryOpsComposition_Tanh_1", "Tanh"),
        ("sp/model_1/dense_1/MatMul/unary_ops_composition", None),
        ("sp/model_1/dense_1/Relu", None),
    ],
)
def test_unary_chain_root_from_the_fused_name(name, root):
    assert rewrites.unary_chain_root(name) == root


def test_unary_chain_with_an_unreadable_name_is_unknown_not_red():
    pred = r.predict_op("_UnaryOpsComposition", "sp/x/fused")
    assert pred["verdict"] == r.UNKNOWN and "not name" in pred["reason"]


def test_every_rewrite_maps_to_the_ops_in_the_data_with_a_source():
    data = rewrites.load_data()
    metal = set(r.load_data()["metal_versions"]["1.2.0"]["op_types"])
    for op_type, entry in data["rewrites"].items():
        assert entry["sources"] and all(k in data["sources"] for k in entry["sources"])
        pred = r.predict_op(op_type, "sp/a/b/unary_ops_composition".replace("b", "Exp"))
        if entry["macos"] == "unary_chain":
            assert pred["macos_op_types"] == ["Exp"]
        elif entry.get("only_when_metal_lacks") and op_type in metal:
            assert pred["macos_op_types"] == [op_type]
        else:
            assert pred["macos_op_types"] == entry["macos"], op_type
            assert pred["rewrite_sources"]
            assert pred["linux_only"] == (not entry.get("only_when_metal_lacks"))
        assert pred["verdict"] != r.CPU_FALLBACK, op_type


SMALL = [
    _row("sp/dense_1/MatMul", "MatMul", ["m", "dense"], 1000),
    _row("sp/dense_1/_Send", "_Send", ["m", "dense"], 5),
    _row("sp/BitwiseAnd", "BitwiseAnd", None, 10, phase="metrics", bucket="metrics"),
    _row("sp/ArgMax", "ArgMax", None, 30, phase="metrics", bucket="metrics"),
    _row("sp/Bitcast_1", "BitwiseAnd", None, 8, phase="other", bucket="other"),
    _row("sp/NoOp", "NoOp", None, 20, phase="other", bucket="other"),
]


def test_a_10us_fallback_does_not_paint_a_bucket_red():
    pred = r.predict_ops(SMALL)
    buckets = {b["bucket"]: b for b in pred["buckets"]}
    metrics = buckets["metrics"]
    assert metrics["verdict"] == r.METAL_GPU and metrics["worst_verdict"] == r.CPU_FALLBACK
    assert metrics["minor"] == [{"verdict": r.CPU_FALLBACK, "ps": 10 * US}]
    assert metrics["fallback_ps"] == 10 * US
    assert metrics["fallback_share"] == pytest.approx(0.25)
    # Nothing but minor CPU time and bookkeeping: minor, not red.
    assert buckets["other"]["verdict"] == r.MINOR_FALLBACK
    dense = next(g for g in pred["layers"] if g["layer"] == ["m", "dense"])
    assert dense["verdict"] == r.METAL_GPU  # a 5 µs _Send is not "CPU by nature"


def test_thresholds_are_configurable_and_share_counts():
    strict = r.predict_ops(SMALL, thresholds=r.Thresholds(min_ps=0, min_share=0))
    assert {b["bucket"]: b["verdict"] for b in strict["buckets"]}["metrics"] == r.CPU_FALLBACK
    # 60 µs of fallback in a 10 ms layer is 0.6%: minor by share although above 50 µs.
    rows = [
        _row("a/MatMul", "MatMul", ["m", "big"], 10_000),
        _row("a/Einsum", "Einsum", ["m", "big"], 60),
    ]
    (big,) = r.predict_ops(rows)["layers"]
    assert big["verdict"] == r.METAL_GPU and big["fallback_ps"] == 60 * US
    assert r.predict_ops(rows, thresholds=r.Thresholds(min_share=0.001))["layers"][0][
        "verdict"
    ] == (r.CPU_FALLBACK)


def test_demo_buckets_are_not_red_for_microseconds(real_run):
    _, ops = real_run
    pred = r.predict_ops(ops)
    for g in pred["layers"] + pred["buckets"] + pred["layer_tree"]:
        if g["fallback_ps"] < r.DEFAULT_THRESHOLDS.min_ps:
            assert g["verdict"] != r.CPU_FALLBACK, g


def test_a_parent_sums_its_sublayers(real_run):
    _, ops = real_run
    pred = r.predict_ops(ops)
    tree = {tuple(t["layer"]): t for t in pred["layer_tree"]}
    own = {tuple(g["layer"]): g for g in pred["layers"] if g["layer"]}
    assert set(own) <= set(tree)
    for path, node in tree.items():
        children = [t for p, t in tree.items() if len(p) == len(path) + 1 and p[:-1] == path]
        expect = sum(c["fallback_ps"] for c in children) + node["own_fallback_ps"]
        assert node["fallback_ps"] == expect
        assert node["total_ps"] == sum(c["total_ps"] for c in children) + (
            own[path]["total_ps"] if path in own else 0
        )


def test_augment_parent_is_red_because_its_rotation_is():
    ops = list(_real_ops(next(p for p in REAL_RUNS if p.name == "augment")))
    tree = {tuple(t["layer"]): t for t in r.predict_ops(ops)["layer_tree"]}
    root = tree[("augment",)]
    rot = tree[("augment", "random_rotation")]
    assert root["verdict"] == r.CPU_FALLBACK and root["fallback_ps"] >= rot["fallback_ps"] > 0


def test_every_cpu_op_type_of_the_real_runs_has_a_specific_remedy_with_a_source(real_run):
    _, ops = real_run
    pred = r.predict_ops(ops)
    needy = set()
    for o in pred["ops"]:
        by_nature = o["macos_op_types"] if o["verdict"] == r.CPU_ONLY_BY_NATURE else []
        needy.update(o["fallback_op_types"] or by_nature)
    covered = {t for rem in pred["remedies"] for t in rem["op_types"]}
    assert needy <= covered
    for t in needy:
        rem = remedies.remedy_for(t, r.category_of(t), None, "1.2.0")
        assert rem["matched_by"] != "generic", t
        assert rem["applies"] and rem["on_metal"] == "untested on Metal"
        assert any((s.get("url") or "").startswith("https://") for s in rem["sources"]), t


def test_remedy_data_is_complete():
    data = remedies.load_data()
    ids = [x["id"] for x in data["remedies"]]
    assert len(ids) == len(set(ids)) and "generic" in ids
    assert data["written_for_tensorflow_metal"] == r.default_metal_version()
    for x in data["remedies"]:
        assert x["advice"] and x["sources"] and x["metal_versions"]["to"] == "1.2.0"
    # The list: random augmentation, key counter, rotation, py_function, strings, Einsum,
    # dtype limits, tf.data; the generic entry catches any other op type.
    assert remedies.remedy_for("StatelessRandomGetKeyCounter")["id"] == "random_augmentation"
    assert remedies.remedy_for("ImageProjectiveTransformV3")["id"] == "random_augmentation"
    assert remedies.remedy_for("PyFuncStateless")["id"] == "py_function"
    assert remedies.remedy_for("StringJoin", r.category_of("StringJoin"))["id"] == "strings"
    assert remedies.remedy_for("Einsum")["id"] == "einsum"
    assert remedies.remedy_for("Cast", None, "no_gpu_kernel_for_dtype")["id"] == "dtype_limits"
    assert remedies.remedy_for("TensorSliceDataset", "tf_data")["id"] == "tf_data"
    assert remedies.remedy_for("MyCustomOp")["matched_by"] == "generic"
    assert remedies.remedy_for("Einsum", metal_version="9.0.0")["applies"] is False


def test_measured_fallbacks_carry_a_remedy():
    from tb_metal_plugin.devices import fallback_remedy

    assert fallback_remedy("ImageProjectiveTransformV3", "no_gpu_kernel")["id"] == (
        "random_augmentation"
    )
    assert fallback_remedy("Sum", "no_gpu_kernel_for_dtype")["id"] == "dtype_limits"
    assert fallback_remedy("EagerPyFunc", "py_function")["id"] == "py_function"
    assert fallback_remedy("MatMul", "explicit_placement") is None
