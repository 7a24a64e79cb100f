"""A second held-out set: structures neither the corpus nor models_c.py has, recorded only
on request (`python -m tests.gt record OUTDIR --set heldout_b`). It was written after the
attribution rules of round three were fixed, so its first scores say how they generalise.

Same builder contract as models.py.
"""

from __future__ import annotations

import numpy as np

from .models import BATCH, _app, _data, _fit, _keras


def wavenet_gated():
    """Causal dilated Conv1D with a gated activation (Multiply of tanh and sigmoid
    branches), residual and skip sums."""
    keras, L = _keras()
    inp = keras.Input((16, 3))
    h = L.Conv1D(8, 1, name="in_proj")(inp)
    skips = []
    for rate in (1, 2, 4):
        f = L.Conv1D(
            8, 2, dilation_rate=rate, padding="causal", activation="tanh", name=f"filt_{rate}"
        )(h)
        g = L.Conv1D(
            8, 2, dilation_rate=rate, padding="causal", activation="sigmoid", name=f"gate_{rate}"
        )(h)
        z = L.Multiply(name=f"gated_{rate}")([f, g])
        skips.append(L.Conv1D(8, 1, name=f"skip_{rate}")(z))
        h = L.Add(name=f"res_{rate}")([h, L.Conv1D(8, 1, name=f"res_proj_{rate}")(z)])
    s = L.Activation("relu", name="skip_relu")(L.Add(name="skip_sum")(skips))
    out = L.Dense(3, name="pred")(L.GlobalAveragePooling1D(name="avg")(s))
    model = keras.Model(inp, out, name="wavenet")
    model.compile("adam", "mse")
    return _fit(model, *_data((16, 3)))


def conv3d_video():
    keras, L = _keras()
    inp = keras.Input((4, 8, 8, 2))
    h = L.Conv3D(4, 3, padding="same", use_bias=False, name="c3d")(inp)
    h = L.BatchNormalization(name="c3d_bn")(h)
    h = L.Activation("relu", name="c3d_relu")(h)
    h = L.MaxPooling3D(2, name="pool3d")(h)
    h = L.Conv3D(6, 2, padding="same", name="c3d_b")(h)
    out = L.Dense(3, name="clip_cls")(L.GlobalAveragePooling3D(name="gap3d")(h))
    model = keras.Model(inp, out, name="video")
    model.compile("sgd", "mse")
    return _fit(model, *_data((4, 8, 8, 2)))


def causal_encoder():
    """A pre-norm transformer block with a causal MultiHeadAttention mask, learned
    positions added by a custom layer, dropout and a feed-forward block."""
    keras, L = _keras()
    ops = keras.ops

    class Positions(keras.layers.Layer):
        def build(self, shape):
            self.table = self.add_weight(shape=(shape[1], shape[2]), name="table")

        def call(self, x):
            return x + ops.expand_dims(self.table, 0)

    inp = keras.Input((10,), dtype="int32")
    h = L.Embedding(30, 16, name="tokens")(inp)
    h = Positions(name="positions")(h)
    a = L.LayerNormalization(name="ln_1")(h)
    a = L.MultiHeadAttention(2, 8, dropout=0.1, name="self_attn")(a, a, use_causal_mask=True)
    h = L.Add(name="res_1")([h, L.Dropout(0.1, name="drop_1")(a)])
    f = L.LayerNormalization(name="ln_2")(h)
    f = L.Dense(32, activation="gelu", name="ff_up")(f)
    f = L.Dense(16, name="ff_down")(f)
    h = L.Add(name="res_2")([h, f])
    out = L.Dense(30, name="lm_head")(h)
    model = keras.Model(inp, out, name="causal_lm")
    model.compile(
        "adamw", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    rng = np.random.default_rng(7)
    n = 8 * BATCH
    return _fit(model, rng.integers(0, 30, (n, 10)), rng.integers(0, 30, (n, 10)))


def nested_custom():
    """Custom layers three deep, each with its own add_weight, using keras.ops directly."""
    keras, L = _keras()
    ops = keras.ops

    class Linear(keras.layers.Layer):
        def __init__(self, units, **kw):
            super().__init__(**kw)
            self.units = units

        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], self.units), name="w")
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")

        def call(self, x):
            return ops.matmul(x, self.w) + self.b

    class GLU(keras.layers.Layer):
        def __init__(self, units, **kw):
            super().__init__(**kw)
            self.value = Linear(units, name="value")
            self.gate = Linear(units, name="gate")

        def call(self, x):
            return self.value(x) * ops.sigmoid(self.gate(x))

    class Block(keras.layers.Layer):
        def __init__(self, units, **kw):
            super().__init__(**kw)
            self.glu = GLU(units, name="glu")
            self.out = Linear(units, name="out")

        def call(self, x):
            return x + self.out(ops.relu(self.glu(x)))

    inp = keras.Input((12,))
    h = Linear(12, name="stem")(inp)
    h = Block(12, name="block_a")(h)
    h = Block(12, name="block_b")(h)
    out = L.Dense(3, name="head")(h)
    model = keras.Model(inp, out, name="glu_net")
    model.compile("adam", "mse")
    return _fit(model, *_data((12,)))


def siamese():
    """One encoder model applied to two inputs, an absolute difference, a custom
    contrastive loss function."""
    keras, L = _keras()
    ops = keras.ops
    enc_in = keras.Input((10,))
    e = L.Dense(16, activation="relu", name="enc_fc")(enc_in)
    e = L.Dense(8, name="enc_emb")(e)
    encoder = keras.Model(enc_in, e, name="encoder")
    a_in, b_in = keras.Input((10,), name="left"), keras.Input((10,), name="right")
    diff = L.Lambda(lambda t: ops.abs(t[0] - t[1]), name="absdiff")([encoder(a_in), encoder(b_in)])
    out = L.Dense(1, activation="sigmoid", name="same")(diff)
    model = keras.Model([a_in, b_in], out, name="siamese")

    def contrastive(y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        return ops.mean(
            y_true * ops.square(y_pred) + (1 - y_true) * ops.square(ops.relu(1 - y_pred))
        )

    model.compile("rmsprop", contrastive, metrics=[keras.metrics.AUC(name="auc")])
    rng = np.random.default_rng(8)
    n = 8 * BATCH
    x = [rng.random((n, 10), dtype="float32"), rng.random((n, 10), dtype="float32")]
    return _fit(model, x, rng.integers(0, 2, (n, 1)).astype("float32"))


def noisy_regularised():
    """Noise, dropout variants, PReLU/LeakyReLU, an ActivityRegularization layer and
    kernel/bias/activity regularizers (their losses are summed in compute_loss)."""
    keras, L = _keras()
    reg = keras.regularizers
    inp = keras.Input((8, 8, 3))
    h = L.GaussianNoise(0.1, name="noise")(inp)
    h = L.Conv2D(8, 3, kernel_regularizer=reg.L2(1e-3), bias_regularizer=reg.L1(1e-4), name="conv")(
        h
    )
    h = L.PReLU(name="prelu")(h)
    h = L.SpatialDropout2D(0.2, name="sdrop")(h)
    h = L.Flatten(name="flat")(h)
    h = L.Dense(16, activity_regularizer=reg.L1(1e-4), name="fc")(h)
    h = L.LeakyReLU(negative_slope=0.1, name="leaky")(h)
    h = L.ActivityRegularization(l2=1e-4, name="act_reg")(h)
    h = L.AlphaDropout(0.1, name="adrop")(h)
    out = L.Dense(3, name="out")(h)
    model = keras.Model(inp, out, name="regularised")
    model.compile("sgd", "mse", metrics=["mae", "mse"])
    return _fit(model, *_data((8, 8, 3)))


def optimizer_extras():
    """AdamW with weight decay, global gradient clipping and EMA of the weights: extra
    work Keras adds inside apply_gradients."""
    keras, L = _keras()
    model = keras.Sequential(
        [keras.Input((12,)), L.Dense(16, activation="relu", name="h1"), L.Dense(3, name="y")],
        name="clipped",
    )
    opt = keras.optimizers.AdamW(1e-3, weight_decay=1e-2, global_clipnorm=1.0, use_ema=True)
    model.compile(opt, "mse")
    return _fit(model, *_data((12,)))


def wide_deep():
    """Several Embedding inputs and a dense input concatenated (wide & deep), with
    Hashing and CategoryEncoding inside the model."""
    keras, L = _keras()
    rng = np.random.default_rng(9)
    n = 8 * BATCH
    user_in = keras.Input((1,), dtype="int32", name="user")
    item_in = keras.Input((1,), dtype="int32", name="item")
    num_in = keras.Input((4,), name="numeric")
    u = L.Flatten(name="u_flat")(L.Embedding(50, 6, name="user_emb")(user_in))
    i = L.Flatten(name="i_flat")(L.Embedding(40, 6, name="item_emb")(item_in))
    hashed = L.Hashing(16, name="cross_hash")(item_in)
    wide = L.CategoryEncoding(16, output_mode="one_hot", name="wide_onehot")(hashed)
    deep = L.Dense(16, activation="relu", name="deep_1")(
        L.Concatenate(name="deep_in")([u, i, num_in])
    )
    h = L.Concatenate(name="wide_deep")([wide, L.Dense(8, activation="relu", name="deep_2")(deep)])
    out = L.Dense(1, activation="sigmoid", name="ctr")(h)
    model = keras.Model([user_in, item_in, num_in], out, name="wide_deep")
    model.compile("adam", "binary_crossentropy", metrics=["accuracy", keras.metrics.Precision()])
    x = [
        rng.integers(0, 50, (n, 1)),
        rng.integers(0, 40, (n, 1)),
        rng.random((n, 4), dtype="float32"),
    ]
    return _fit(model, x, rng.integers(0, 2, (n, 1)).astype("float32"))


def reshaping_seq():
    """A Sequential of shape layers: ZeroPadding2D, Cropping2D, Permute, Reshape,
    RepeatVector, and a recurrent decoder over the repeated vector."""
    keras, L = _keras()
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            L.ZeroPadding2D(1, name="pad"),
            L.Conv2D(4, 3, name="conv"),
            L.Cropping2D(1, name="crop"),
            L.Permute((3, 1, 2), name="perm"),
            L.Reshape((4, 16), name="rows"),
            L.LSTM(8, name="enc"),
            L.RepeatVector(3, name="repeat"),
            L.SimpleRNN(5, return_sequences=True, go_backwards=True, name="dec"),
            L.Flatten(name="flat"),
            L.Dense(3, name="out"),
        ],
        name="reshaper",
    )
    model.compile("adam", "mse")
    return _fit(model, *_data((6, 6, 2)))


def stacked_cells():
    """keras.layers.RNN over a list of cells (StackedRNNCells) with recurrent dropout."""
    keras, L = _keras()
    cells = [L.LSTMCell(6, recurrent_dropout=0.2, name="cell_a"), L.GRUCell(5, name="cell_b")]
    model = keras.Sequential(
        [keras.Input((5, 3)), L.RNN(cells, name="stack"), L.Dense(3, name="out")], name="cells"
    )
    model.compile("adam", "mse")
    return _fit(model, *_data((5, 3)))


def multi_loss_weights():
    """Three heads with loss weights, per-output metrics and a sample weight."""
    keras, L = _keras()
    rng = np.random.default_rng(10)
    n = 8 * BATCH
    inp = keras.Input((10,))
    h = L.Dense(16, activation="relu", name="trunk")(inp)
    reg = L.Dense(2, name="reg")(h)
    cls = L.Dense(4, activation="softmax", name="cls")(h)
    bin_ = L.Dense(1, activation="sigmoid", name="bin")(h)
    model = keras.Model(inp, {"reg": reg, "cls": cls, "bin": bin_}, name="heads")
    model.compile(
        "adam",
        loss={
            "reg": "huber",
            "cls": "sparse_categorical_crossentropy",
            "bin": "binary_crossentropy",
        },
        loss_weights={"reg": 0.5, "cls": 1.0, "bin": 2.0},
        metrics={"reg": ["mae"], "cls": ["accuracy"], "bin": [keras.metrics.AUC(name="auc")]},
    )
    x = rng.random((n, 10), dtype="float32")
    y = {
        "reg": rng.random((n, 2), dtype="float32"),
        "cls": rng.integers(0, 4, n),
        "bin": rng.integers(0, 2, (n, 1)).astype("float32"),
    }
    return _fit(model, x, y, fit_kw={"sample_weight": rng.random(n).astype("float32")})


def efficientnet_v2():
    """keras.applications.EfficientNetV2B0 (fused MBConv blocks, stochastic depth)."""
    keras, _ = _keras()
    return _app(keras.applications.EfficientNetV2B0, include_preprocessing=True)


def convnext():
    """keras.applications.ConvNeXtTiny (LayerScale and StochasticDepth custom layers)."""
    keras, _ = _keras()
    return _app(keras.applications.ConvNeXtTiny)
