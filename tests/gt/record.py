"""Record the corpus: each model trained under a profiler with the labeller active.

    python -m tests.gt record OUTDIR [--set corpus|heldout|heldout_b|...|heldout_f]
                                     [--only a,b] [--mode stock|callback|both]

`--set corpus` (the default) records the 29 corpus models; `--set heldout` (to
`heldout_f`) records a held-out set (models_c.py to models_h.py: structures the corpus
lacks, never in the default run); `--only` picks models by name from any set (and EXTRA).

Per model and mode it writes OUTDIR/<model>/<mode>/ (the TensorBoard run: stock
`keras.callbacks.TensorBoard(profile_batch=...)` or `tb_metal_plugin.MetalProfileCallback`
from whatever tb_metal_plugin is on sys.path) and OUTDIR/<model>/<mode>.labels.json.
Models run in worker processes (one at a time: the machine has two cores).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _boot import as_package  # type: ignore[import-not-found]

    __package__ = as_package()

from importlib import import_module

PROFILE_BATCH = (3, 4)
# Worker processes, run one after another: small models first (a slow machine loses the
# least if it times out), the Keras applications, then the model that needs two logical
# CPUs configured before TensorFlow starts.
GROUPS = {
    "small": [
        "conv_bn", "resnet_like", "lstm", "gru", "simple_rnn", "bidirectional", "stacked_rnn",
        "time_distributed", "conv_lstm2d", "transformer", "einsum_dense",
        "augmentation", "normalization", "embedding", "subclassed_add_loss",
        "custom_train_step", "shared_layers", "nested_models", "colliding_names",
        "multi_io", "mixed_float16", "steps_per_execution", "jit_compile", "py_function",
    ],
    "apps": ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "densenet121"],
    "two_cpus": ["mirrored"],
}  # fmt: skip
TWO_CPUS = set(GROUPS["two_cpus"])
ALL = [m for group in GROUPS.values() for m in group]
# Recordable with --only, not in the default corpus (the issue accepts resnet_like instead).
EXTRA = ["resnet50_v2"]
# Held-out sets: each checks that attribution generalises beyond the models it was tuned
# on, and each was written after the fixes the one before it led to. Never part of the
# default corpus; `--set <name>` records one. Worker groups as in GROUPS.
HELDOUT_SETS = {
    "heldout": {  # models_c.py
        "heldout": [
            "text_masked", "separable_depthwise", "conv_autoencoder", "group_layer_norm",
            "two_input_attention", "rnn_variants", "custom_cell", "looped_block",
            "with_validation", "bidi_tagger", "lambda_cond",
        ],
        "heldout_apps": ["xception"],
    },
    "heldout_b": {  # models_d.py: structures the corpus and the first set lack
        "heldout_b": [
            "wavenet_gated", "conv3d_video", "causal_encoder", "nested_custom", "siamese",
            "noisy_regularised", "optimizer_extras", "wide_deep", "reshaping_seq",
            "stacked_cells", "multi_loss_weights",
        ],
        "heldout_b_apps": ["efficientnet_v2", "convnext"],
    },
    "heldout_c": {  # models_e.py
        "heldout_c": [
            "vae_add_loss", "gan_two_optimizers", "string_lookup", "seq2seq_states",
            "masking_gru", "merges_dot", "constraints_pool", "resize_crop", "grouped_dilated",
            "ops_in_functional", "nested_three", "bf16_layers",
        ],
    },
    "heldout_d": {  # models_f.py: training set-ups
        "heldout_d": [
            "list_blocks", "lazy_build", "dataset_map", "stateful_rnn", "masked_attention",
            "clipvalue_sgd", "deferred_sequential", "custom_step_apply_gradients",
            "relu6_blocks", "shared_head_two_losses", "override_compute_loss",
            "tf_function_layer",
        ],
        "heldout_d_apps": ["frozen_backbone"],
    },
    "heldout_e": {  # models_g.py: whole architectures
        "heldout_e": [
            "bert_tiny", "unet_small", "integer_features", "attention_decoder",
            "channels_first_conv", "loops_in_layers",
        ],
        "heldout_e_apps": ["vgg16", "resnet50"],
    },
    "heldout_f": {  # models_h.py: the callback's own edges
        "heldout_f": ["spe_custom_step", "loss_scale_explicit"],
        "heldout_f_two_cpus": ["mirrored_custom_step"],
    },
    "heldout_g": {  # models_i.py: shared and updated state, unusual training set-ups
        "heldout_g": [
            "tied_embeddings", "metric_in_layer", "activity_regularized", "spectral_norm",
            "lion_accumulated", "attention_layers", "weighted_classes", "loop_applied_cell",
            "resample_1d", "inception_block",
        ],
    },
    "tf_keras": {  # models_k.py: Keras 2 (tf_keras), as on TF 2.15-era Macs
        "tf_keras": [
            "k2_conv_bn", "k2_resnet_block", "k2_lstm", "k2_gru_stack", "k2_subclassed",
            "k2_multi_io", "k2_mixed_float16", "k2_transformer", "k2_tf_ops",
            "k2_mobilenet_v2", "k2_custom_train_step", "k2_embedding_pool",
            "k2_default_names", "k2_efficientnet", "k2_nested_time_distributed",
        ],
    },
    "heldout_h": {  # models_j.py: fan-out, custom gradients, unusual layers
        "heldout_h": [
            "fanout_five", "custom_gradient_layer", "gqa_decoder", "mixed_lstm", "bidi_states",
            "depthwise_1d", "droppath_blocks", "stft_lambda", "masked_pooling",
            "repeat_permute",
        ],
    },
    "heldout_i": {  # models_l.py: library-like names, eager runs, routers, dict I/O
        "heldout_i": [
            "library_names", "unrolled_rnn", "moe_router", "dict_io", "recurrent_dropout_lstm",
            "focal_loss_class", "reused_block_two_models", "eager_run", "transposed_decoder",
            "hashed_features",
        ],
    },
    "heldout_j": {  # models_m.py: transformers, metrics, schedules, nested tapes, norms
        "heldout_j": [
            "vit_tiny", "rich_metrics", "schedule_clipnorm", "gradient_penalty",
            "own_weights_branch", "split_outputs", "rms_unit_norms", "huber_cosine",
            "attention_2d", "bidi_unmerged",
        ],
    },
    "heldout_k": {  # models_n.py: custom training loops, borrowed sublayers, odd names
        "heldout_k": [
            "tape_loop_marked", "tape_loop_bare", "train_on_batch_loop", "two_models_one_step",
            "borrowed_sublayer", "outside_variable", "causal_scores", "op_like_names",
        ],
    },
    "heldout_l": {  # models_o.py: data sources, input kinds, callbacks, held models
        "heldout_l": [
            "pydataset_fit", "ragged_input", "sparse_input", "callbacks_between",
            "validation_split_freq", "model_in_layer", "same_names_in_submodels",
            "adapted_preprocessing",
        ],
    },
    "heldout_m": {  # models_p.py: overridden steps, partial losses, nested RNNs, refits
        "heldout_m": [
            "super_train_step", "custom_test_step", "output_without_loss",
            "weighted_metrics_sw", "td_bidi_lstm", "activation_zoo", "spe_with_validation",
            "fitted_twice",
        ],
    },
    "heldout_n": {  # models_q.py: LoRA/int8, user scopes, Python in the step, strategies
        "heldout_n": [
            "lora_dense", "quantized_lora", "user_name_scopes", "scoped_train_step",
            "py_function_layer", "py_function_pipeline", "float64_head", "one_device_strategy",
            "ignore_class_seg", "nested_tf_function_step",
        ],
    },
    "heldout_o": {  # models_r.py: named and custom optimizers, linalg, maps, own loss/metric
        "heldout_o": [
            "named_optimizer", "custom_optimizer", "linalg_layer", "map_fn_layer",
            "keras_ops_lambda", "custom_loss_and_metric", "vmap_layer",
            "sgd_nesterov_named_metrics",
        ],
    },
}  # fmt: skip
TWO_CPUS |= {"mirrored_custom_step"}
# Models written for tf_keras (Keras 2), recorded with TF_USE_LEGACY_KERAS=1.
TF_KERAS = set(HELDOUT_SETS["tf_keras"]["tf_keras"])
SETS = {"corpus": ALL} | {
    name: [m for group in groups.values() for m in group] for name, groups in HELDOUT_SETS.items()
}
HELDOUT, HELDOUT_B, HELDOUT_C, HELDOUT_D, HELDOUT_E, HELDOUT_F, HELDOUT_G, HELDOUT_H = (
    SETS[name] for name in list(HELDOUT_SETS)[:8]
)
MODULES = (
    "models", "models_b", "models_c", "models_d", "models_e", "models_f", "models_g", "models_h",
    "models_i", "models_j", "models_k", "models_l", "models_m", "models_n", "models_o",
    "models_p", "models_q", "models_r",
)  # fmt: skip


def _builder(name):
    for module in MODULES:
        fn = getattr(import_module(f"{__package__}.{module}"), name, None)
        if fn is not None and not name.startswith("_"):
            return fn
    raise KeyError(name)


# -- worker side -------------------------------------------------------------------------


class _Tee:
    """Keeps a copy of every RunMetadata anyone exports (Keras' and the callback's too)."""

    def __init__(self):
        from tensorflow.python.eager import context

        self.exports: list = []
        self._cls = context.Context
        self._orig = context.Context.export_run_metadata
        tee = self

        def export_run_metadata(ctx):
            md = tee._orig(ctx)
            if md is not None:
                tee.exports.append(md)
            return md

        self._cls.export_run_metadata = export_run_metadata


def _prebuild_optimizer(model) -> None:
    """Create the optimizer's variables now: otherwise tf.function traces the train step
    twice (a variable-creating trace, then the one that runs), doubling recording time.
    The executed (second) trace is the same either way."""
    opt = getattr(model, "optimizer", None)
    if opt is None or getattr(opt, "built", True) or not model.built:
        return
    if not model.trainable_variables:
        return
    with model.distribute_strategy.scope():
        opt.build(model.trainable_variables)


def _keras():
    """The Keras this worker trains with: tf_keras under TF_USE_LEGACY_KERAS=1."""
    from .labeller import legacy_keras

    if legacy_keras():
        import tf_keras

        return tf_keras
    import keras

    return keras


def _record_one(name, outdir, mode, labeller, tee) -> dict:
    from tensorflow.python.eager import context

    from . import labels as labels_mod

    keras = _keras()
    spec = _builder(name)()
    model = spec["model"]
    _prebuild_optimizer(model)
    run_dir = os.path.join(outdir, name, mode)
    labeller.forget()
    tee.exports.clear()
    ctx = context.context()
    ctx.enable_run_metadata()
    if mode == "stock":
        cb = keras.callbacks.TensorBoard(run_dir, profile_batch=PROFILE_BATCH, write_graph=False)
    else:
        from tb_metal_plugin import MetalProfileCallback

        cb = MetalProfileCallback(run_dir, profile_batch=PROFILE_BATCH)
    fit_kw = {"epochs": 1, **spec.get("fit_kw", {})}  # validation data, weights, epochs
    extra_callbacks = fit_kw.pop("callbacks_extra", [])  # the model's own, after ours
    t0 = time.time()
    if "loop" in spec:
        # A custom training loop (no model.fit): it starts and stops the profiler itself,
        # around the same batches; the callback has no fit to hook there.
        if mode != "stock":
            raise RuntimeError("a custom training loop: MetalProfileCallback needs model.fit")
        spec["loop"](run_dir, PROFILE_BATCH)
    else:
        model.fit(
            spec["x"],
            spec["y"],
            batch_size=spec["batch_size"],
            verbose=0,
            shuffle=False,
            callbacks=[cb, *extra_callbacks],
            **fit_kw,
        )
    fit_s = time.time() - t0
    ctx.export_run_metadata()
    ctx.disable_run_metadata()
    out = labels_mod.build(name, mode, run_dir, labeller, tee.exports)
    out["fit_s"] = round(fit_s, 2)
    path = os.path.join(outdir, name, f"{mode}.labels.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    keras.backend.clear_session()
    return out["summary"]


def worker(outdir: str, names: list[str], modes: list[str]) -> int:
    """Record `names` in this process (TensorFlow imported here)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if TWO_CPUS & set(names):
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
        )
    from .labeller import Labeller

    labeller = Labeller().install()
    tee = _Tee()
    failed = 0
    for name in names:
        for mode in modes:
            t0 = time.time()
            try:
                s = _record_one(name, outdir, mode, labeller, tee)
                print(
                    f"{name:22s} {mode:8s} {time.time() - t0:6.1f}s  ops {s['op_events']:5d}  "
                    f"unmapped {100 * s['unmapped_share']:5.2f}% of op time",
                    flush=True,
                )
            except Exception as e:  # one model's failure must not stop the corpus
                failed += 1
                print(f"{name:22s} {mode:8s} FAILED {type(e).__name__}: {e}", flush=True)
    return 1 if failed else 0


# -- driver side -------------------------------------------------------------------------


def _package_root() -> str | None:
    spec = importlib.util.find_spec("tb_metal_plugin")
    if spec is None or not spec.origin:
        return None
    return os.path.dirname(os.path.dirname(os.path.abspath(spec.origin)))


def main(argv: list[str] | None = None) -> int:
    """Record the corpus, the held-out set (--set heldout) or --only some models into OUTDIR."""
    p = argparse.ArgumentParser(prog="python -m tests.gt record")
    p.add_argument("outdir")
    p.add_argument(
        "--set", dest="model_set", default="corpus", choices=tuple(SETS),
        help="the corpus (default), or a held-out set (models_c.py to models_h.py)",
    )  # fmt: skip
    p.add_argument("--only", default="", help="comma-separated model names (any set)")
    p.add_argument("--mode", default="both", choices=("stock", "callback", "both"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--timeout", type=int, default=1800, help="seconds per worker process")
    a = p.parse_args(argv)
    modes = ["stock", "callback"] if a.mode == "both" else [a.mode]
    known = [m for models in SETS.values() for m in models] + EXTRA
    names = [n for n in a.only.split(",") if n] or SETS[a.model_set]
    unknown = [n for n in names if n not in known]
    if unknown:
        p.error(f"unknown models {unknown}; known: {', '.join(known)}")
    os.makedirs(a.outdir, exist_ok=True)
    if a.worker:
        return worker(a.outdir, names, modes)
    env = dict(os.environ)
    root = _package_root()
    if root:  # the workers score/record with the same tb_metal_plugin as this process
        env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    print(f"tb_metal_plugin from {root}; modes {modes}", flush=True)
    groups = [[n for n in names if n in g] for g in GROUPS.values()]
    groups.insert(2, [n for n in names if n in EXTRA])
    for more in HELDOUT_SETS.values():
        groups += [[n for n in names if n in g] for g in more.values()]
    t0 = time.time()
    rc = 0
    for group in filter(None, groups):
        cmd = [sys.executable, os.path.abspath(__file__), a.outdir, "--worker"]
        cmd += ["--only", ",".join(group), "--mode", a.mode]
        # Keras 2 models train with tf_keras: tf.keras is it in their worker only.
        legacy = set(group) <= TF_KERAS
        genv = dict(env, TF_USE_LEGACY_KERAS="1") if legacy else env
        try:
            rc |= subprocess.run(cmd, env=genv, timeout=a.timeout).returncode
        except subprocess.TimeoutExpired:
            print(f"worker for {group} timed out after {a.timeout}s", flush=True)
            rc |= 1
    print(f"recorded {len(names)} models x {len(modes)} modes in {time.time() - t0:.0f}s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
