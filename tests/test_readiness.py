"""Metal readiness: the committed kernel data and the prediction built on it."""

import json
import subprocess
import sys
from importlib import resources

import pytest

from tb_metal_plugin import readiness as r


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
    return {"name": name, "type": type_, "layer": layer, "phase": phase, "self_ps": us * US, **extra}


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
