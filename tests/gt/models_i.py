"""A seventh held-out set: weights and state shared or updated in unusual places (tied
embeddings, a metric updated inside a layer, activity regularizers, spectral
normalization's power iteration), gradient accumulation with Lion, attention layers,
class weights with a Huber loss, a cell applied in a Python loop, 1-D resampling layers and an
Inception-style block, recorded only on request (`python -m tests.gt record OUTDIR --set
heldout_g`). Written after the step graph was read for stock runs, before scoring it.

Same builder contract as models.py.
"""

from __future__ import annotations

import numpy as np

from .models import BATCH, _data, _fit, _keras


def tied_embeddings():
    """An Embedding whose matrix is also the output projection (one variable, gradients
    from two layers)."""
    keras, L = _keras()
    ops = keras.ops

    class TiedLogits(L.Layer):
        def __init__(self, emb, **kw):
            super().__init__(**kw)
            self.emb = emb

        def call(self, h):
            return ops.matmul(h, ops.transpose(self.emb.embeddings))

    rng = np.random.default_rng(21)
    n, seq, vocab = 8 * BATCH, 6, 30
    inp = keras.Input((seq,), dtype="int32")
    emb = L.Embedding(vocab, 12, name="emb")
    h = L.Dense(12, activation="tanh", name="mix")(emb(inp))
    out = TiedLogits(emb, name="tied_logits")(h)
    model = keras.Model(inp, out, name="tied")
    model.compile(
        "adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"]
    )
    return _fit(model, rng.integers(0, vocab, (n, seq)), rng.integers(0, vocab, (n, seq)))


def metric_in_layer():
    """A layer that updates a Mean metric of its activations inside its own call."""
    keras, L = _keras()
    ops = keras.ops

    class Tracked(L.Layer):
        def __init__(self, units, **kw):
            super().__init__(**kw)
            self.dense = L.Dense(units, name="inner")
            self.mean_act = keras.metrics.Mean(name="mean_act")

        def call(self, x):
            y = self.dense(x)
            self.mean_act.update_state(ops.mean(ops.abs(y)))
            return ops.relu(y)

    inp = keras.Input((10,))
    h = Tracked(16, name="tracked")(inp)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="metric_layer")
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def activity_regularized():
    """Dense and Conv layers with activity regularizers (a loss the layer's __call__ adds)."""
    keras, L = _keras()
    reg = keras.regularizers.L2(1e-3)
    inp = keras.Input((10, 10, 2))
    h = L.Conv2D(4, 3, activation="relu", activity_regularizer=reg, name="conv")(inp)
    h = L.Flatten(name="flat")(h)
    h = L.Dense(8, activation="relu", activity_regularizer=reg, name="hidden")(h)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="act_reg")
    model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((10, 10, 2)))


def spectral_norm():
    """SpectralNormalization wrapping a Conv2D and a Dense (power iteration, assigns in the
    wrapper's call)."""
    keras, L = _keras()
    inp = keras.Input((8, 8, 3))
    h = L.SpectralNormalization(L.Conv2D(6, 3, activation="relu"), name="sn_conv")(inp)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    out = L.SpectralNormalization(L.Dense(3), name="sn_dense")(h)
    model = keras.Model(inp, out, name="spectral")
    model.compile("adam", "mse")
    return _fit(model, *_data((8, 8, 3)))


def lion_accumulated():
    """Lion with gradient_accumulation_steps=2 and global clipnorm."""
    keras, L = _keras()
    inp = keras.Input((12,))
    h = L.Dense(16, activation="relu", name="h1")(inp)
    h = L.Dense(16, activation="relu", name="h2")(h)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="lion_acc")
    opt = keras.optimizers.Lion(1e-4, gradient_accumulation_steps=2, global_clipnorm=1.0)
    model.compile(opt, "mse", metrics=["mae"])
    return _fit(model, *_data((12,)), steps=8)


def attention_layers():
    """Keras's dot-product Attention and AdditiveAttention over a query and a value
    sequence, then pooling."""
    keras, L = _keras()
    rng = np.random.default_rng(22)
    n = 8 * BATCH
    q_in, v_in = keras.Input((5, 8), name="query"), keras.Input((7, 8), name="value")
    a = L.Attention(use_scale=True, name="dot_attn")([q_in, v_in])
    b = L.AdditiveAttention(name="add_attn")([q_in, v_in])
    h = L.Concatenate(name="cat")([a, b])
    out = L.Dense(2, name="out")(L.GlobalAveragePooling1D(name="pool")(h))
    model = keras.Model([q_in, v_in], out, name="attn_layers")
    model.compile("adam", "mse")
    q, v = rng.normal(size=(n, 5, 8)), rng.normal(size=(n, 7, 8))
    return _fit(model, [q.astype("float32"), v.astype("float32")], rng.normal(size=(n, 2)))


def weighted_classes():
    """Huber loss and class weights on a softmax classifier."""
    keras, L = _keras()
    x, y = _data((9,), n_out=4, classes=True)
    inp = keras.Input((9,))
    h = L.Dense(12, activation="relu", name="h")(inp)
    model = keras.Model(inp, L.Dense(4, activation="softmax", name="probs")(h), name="weighted")
    model.compile("rmsprop", keras.losses.Huber(), metrics=["categorical_accuracy"])
    y1 = np.eye(4, dtype="float32")[y.astype(int).ravel()]
    return _fit(model, x, y1, fit_kw={"class_weight": {0: 1.0, 1: 2.0, 2: 0.5, 3: 1.5}})


def loop_applied_cell():
    """One Dense cell and one LayerNormalization applied to each time step in a Python loop
    (shared weights, no RNN layer)."""
    keras, L = _keras()
    ops = keras.ops
    inp = keras.Input((4, 6))
    cell = L.Dense(8, activation="tanh", name="cell")
    norm = L.LayerNormalization(name="norm")
    state = ops.zeros_like(cell(inp[:, 0, :]))
    for t in range(4):
        state = norm(cell(ops.concatenate([inp[:, t, :], state[:, :6]], axis=-1)[:, :6]) + state)
    model = keras.Model(inp, L.Dense(3, name="out")(state), name="looped_cell")
    model.compile("adam", "mse")
    return _fit(model, *_data((4, 6)))


def resample_1d():
    """UpSampling1D, Conv1DTranspose, ZeroPadding1D, Cropping1D and a strided Conv1D."""
    keras, L = _keras()
    inp = keras.Input((12, 3))
    h = L.Conv1D(6, 3, strides=2, padding="same", activation="relu", name="down")(inp)
    h = L.UpSampling1D(2, name="up")(h)
    h = L.Conv1DTranspose(4, 3, padding="same", name="tconv")(h)
    h = L.ZeroPadding1D(2, name="pad")(h)
    h = L.Cropping1D((1, 3), name="crop")(h)
    out = L.Dense(3, name="out")(L.GlobalMaxPooling1D(name="gmp")(h))
    model = keras.Model(inp, out, name="resample")
    model.compile("adam", "mse")
    return _fit(model, *_data((12, 3)))


def inception_block():
    """Four parallel branches (1x1, 3x3, 5x5 as two 3x3, pooling then 1x1) concatenated,
    then AveragePooling2D."""
    keras, L = _keras()
    inp = keras.Input((12, 12, 3))
    b1 = L.Conv2D(4, 1, activation="relu", name="b1_1x1")(inp)
    b2 = L.Conv2D(4, 3, padding="same", activation="relu", name="b2_3x3")(
        L.Conv2D(3, 1, name="b2_reduce")(inp)
    )
    b3 = L.Conv2D(4, 3, padding="same", name="b3_3x3b")(
        L.Conv2D(4, 3, padding="same", activation="relu", name="b3_3x3a")(inp)
    )
    b4 = L.Conv2D(4, 1, name="b4_proj")(L.MaxPooling2D(3, 1, padding="same", name="b4_pool")(inp))
    h = L.Concatenate(name="mixed")([b1, b2, b3, b4])
    h = L.AveragePooling2D(2, name="avg")(L.BatchNormalization(name="bn")(h))
    out = L.Dense(3, name="out")(L.Flatten(name="flat")(h))
    model = keras.Model(inp, out, name="inception")
    model.compile("adam", "mse")
    return _fit(model, *_data((12, 12, 3)))
