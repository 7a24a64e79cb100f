"""Held-out models: structures the default corpus does not have, recorded only on request
(`python -m tests.gt record OUTDIR --set heldout`), to check that attribution generalises.

Same builder contract as models.py; "fit_kw" adds keyword arguments to `model.fit`
(validation data, sample or class weights, epochs).
"""

from __future__ import annotations

import numpy as np

from .models import BATCH, _app, _data, _fit, _keras


def text_masked():
    """Embedding(mask_zero=True) -> masked LSTM sequences -> Conv1D text classifier,
    trained with class weights (their lookup runs in the tf.data pipeline)."""
    keras, L = _keras()
    rng = np.random.default_rng(3)
    x = rng.integers(1, 40, (8 * BATCH, 9))
    for row, n in zip(x, rng.integers(4, 9, len(x)), strict=True):
        row[n:] = 0  # right padding the mask hides from the LSTM
    y = rng.integers(0, 3, len(x))
    inp = keras.Input((9,), dtype="int32")
    h = L.Embedding(40, 8, mask_zero=True, name="tok_embed")(inp)
    h = L.LSTM(8, return_sequences=True, name="masked_lstm")(h)
    h = L.Conv1D(6, 3, padding="same", activation="relu", name="text_conv")(h)
    out = L.Dense(3, activation="softmax", name="classes")(L.GlobalMaxPooling1D(name="gmax")(h))
    model = keras.Model(inp, out, name="text_clf")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return _fit(model, x, y, fit_kw={"class_weight": {0: 1.0, 1: 2.0, 2: 0.5}})


def separable_depthwise():
    keras, L = _keras()
    inp = keras.Input((16, 16, 3))
    h = L.SeparableConv2D(8, 3, padding="same", activation="relu", name="sep_a")(inp)
    h = L.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False, name="dw_b")(h)
    h = L.BatchNormalization(name="dw_bn")(h)
    h = L.SeparableConv2D(8, 3, strides=2, depth_multiplier=2, name="sep_c")(h)
    out = L.Dense(3, name="logits")(L.GlobalAveragePooling2D(name="pool")(h))
    model = keras.Model(inp, out, name="sepnet")
    model.compile("sgd", "mse")
    return _fit(model, *_data((16, 16, 3)))


def conv_autoencoder():
    """Strided convs down, Conv2DTranspose and UpSampling2D up, image reconstruction loss."""
    keras, L = _keras()
    inp = keras.Input((16, 16, 1))
    h = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="enc_1")(inp)
    h = L.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="enc_2")(h)
    h = L.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu", name="dec_t")(h)
    h = L.UpSampling2D(2, interpolation="bilinear", name="upsample")(h)
    out = L.Conv2D(1, 3, padding="same", activation="sigmoid", name="recon")(h)
    model = keras.Model(inp, out, name="autoencoder")
    model.compile("adam", "binary_crossentropy")
    x, _ = _data((16, 16, 1))
    return _fit(model, x, x.copy())


def group_layer_norm():
    keras, L = _keras()
    inp = keras.Input((8, 8, 8))
    h = L.Conv2D(8, 3, padding="same", name="conv_in")(inp)
    h = L.GroupNormalization(groups=4, name="group_norm")(h)
    h = L.Activation("swish", name="swish")(h)
    h = L.Reshape((64, 8), name="to_seq")(h)
    h = L.LayerNormalization(name="layer_norm")(h)
    h = L.UnitNormalization(name="unit_norm")(L.Dense(8, name="mix")(h))
    out = L.Dense(3, name="score")(L.Flatten(name="flat")(h))
    model = keras.Model(inp, out, name="norms")
    model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((8, 8, 8)))


def two_input_attention():
    """Dot-product Attention (with scale) and AdditiveAttention between a query and a
    value sequence of different lengths."""
    keras, L = _keras()
    q_in, v_in = keras.Input((5, 8), name="query"), keras.Input((7, 8), name="value")
    q = L.Dense(8, name="q_proj")(q_in)
    v = L.Dense(8, name="v_proj")(v_in)
    dot = L.Attention(use_scale=True, score_mode="dot", name="dot_attn")([q, v])
    add = L.AdditiveAttention(name="add_attn")([q, v, v])
    h = L.Concatenate(name="join")([dot, add])
    out = L.Dense(3, name="read")(L.GlobalAveragePooling1D(name="avg")(h))
    model = keras.Model([q_in, v_in], out, name="cross_attn")
    model.compile("adam", "mse")
    rng = np.random.default_rng(4)
    n = 8 * BATCH
    x = [rng.random((n, 5, 8), dtype="float32"), rng.random((n, 7, 8), dtype="float32")]
    return _fit(model, x, rng.random((n, 3), dtype="float32"))


def rnn_variants():
    """GRU(reset_after=False) into an unrolled SimpleRNN (no while loop) into an
    unrolled LSTM."""
    keras, L = _keras()
    model = keras.Sequential(
        [
            keras.Input((5, 4)),
            L.GRU(6, reset_after=False, return_sequences=True, name="gru_v1"),
            L.SimpleRNN(6, unroll=True, return_sequences=True, name="rnn_unrolled"),
            L.LSTM(4, unroll=True, name="lstm_unrolled"),
            L.Dense(3, name="out"),
        ],
        name="rnn_mix",
    )
    model.compile("rmsprop", "mse")
    return _fit(model, *_data((5, 4)))


def custom_cell():
    """keras.layers.RNN over a user cell that owns two Dense sublayers (called each step)."""
    keras, L = _keras()

    class GatedCell(keras.layers.Layer):
        def __init__(self, units, **kw):
            super().__init__(**kw)
            self.units = units
            self.state_size = units
            self.x_proj = L.Dense(units, name="x_proj")
            self.h_proj = L.Dense(units, use_bias=False, name="h_proj")

        def build(self, input_shape):
            self.x_proj.build(input_shape)
            self.h_proj.build((input_shape[0], self.units))
            self.gate = self.add_weight(shape=(self.units,), initializer="ones", name="gate")

        def call(self, x, states):
            h = keras.ops.tanh(self.x_proj(x) + self.h_proj(states[0]))
            h = keras.ops.sigmoid(self.gate) * h
            return h, [h]

    model = keras.Sequential(
        [keras.Input((6, 4)), L.RNN(GatedCell(8, name="gated"), name="cell_rnn"), L.Dense(3)],
        name="custom_rnn",
    )
    model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((6, 4)))


def looped_block():
    """A subclassed model calling one shared residual block three times in a Python loop."""
    keras, L = _keras()

    class Residual(keras.layers.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.fc = L.Dense(16, activation="relu", name="fc")
            self.norm = L.LayerNormalization(name="norm")

        def call(self, x):
            return self.norm(x + self.fc(x))

    class Looped(keras.Model):
        def __init__(self):
            super().__init__(name="looped")
            self.stem = L.Dense(16, name="stem")
            self.block = Residual(name="block")
            self.head = L.Dense(3, name="head")

        def call(self, x):
            h = self.stem(x)
            for _ in range(3):
                h = self.block(h)
            return self.head(h)

    model = Looped()
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def xception():
    """keras.applications.Xception at its smallest accepted input (71x71)."""
    keras, _ = _keras()
    return _app(keras.applications.Xception, size=71)


def with_validation():
    """validation_data with 3 train steps per epoch and 2 epochs: the profiled batches
    3 and 4 straddle the end of epoch 1, so its evaluation runs inside the trace."""
    keras, L = _keras()
    inp = keras.Input((12, 12, 2))
    h = L.Conv2D(6, 3, activation="relu", name="feat")(inp)
    h = L.Dropout(0.3, name="dropout")(L.Flatten(name="flat")(h))
    out = L.Dense(4, activation="softmax", name="cls")(h)
    model = keras.Model(inp, out, name="validated")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data((12, 12, 2), 4, n=3 * BATCH, classes=True)
    vx, vy = _data((12, 12, 2), 4, n=2 * BATCH, seed=5, classes=True)
    return _fit(model, x, y, fit_kw={"validation_data": (vx, vy), "epochs": 2})


def bidi_tagger():
    """Bidirectional(GRU, return_sequences) + TimeDistributed(Dense) sequence tagger,
    with per-timestep sample weights."""
    keras, L = _keras()
    rng = np.random.default_rng(6)
    n = 8 * BATCH
    x = rng.random((n, 7, 5), dtype="float32")
    y = rng.integers(0, 4, (n, 7))
    sw = (rng.random((n, 7)) > 0.2).astype("float32")
    inp = keras.Input((7, 5))
    h = L.Bidirectional(L.GRU(6, return_sequences=True), merge_mode="sum", name="bigru")(inp)
    out = L.TimeDistributed(L.Dense(4, activation="softmax"), name="tags")(h)
    model = keras.Model(inp, out, name="tagger")
    model.compile(
        "adam", "sparse_categorical_crossentropy", weighted_metrics=["sparse_categorical_accuracy"]
    )
    return _fit(model, x, y, fit_kw={"sample_weight": sw})


def lambda_cond():
    """A Lambda layer and a custom layer that branches with keras.ops.cond (an If op)."""
    keras, L = _keras()
    ops = keras.ops

    class Gate(keras.layers.Layer):
        def call(self, x):
            return ops.cond(ops.mean(x) > 0.5, lambda: x * 2.0, lambda: ops.tanh(x) - 1.0)

    inp = keras.Input((10,))
    h = L.Dense(12, name="pre")(inp)
    h = L.Lambda(lambda t: ops.square(t) + ops.sin(t), name="poly")(h)
    h = Gate(name="gate")(h)
    out = L.Dense(3, name="post")(h)
    model = keras.Model(inp, out, name="branchy")
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))
