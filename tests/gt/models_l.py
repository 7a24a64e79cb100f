"""A ninth held-out set: layers named like TF's own scopes (`body`, `concat`, `cond`...),
unrolled RNNs, a mixture-of-experts router, dict inputs and outputs, an LSTM with
recurrent dropout, a Loss subclass, one block reused by two sub-models, a model compiled
with run_eagerly, a transposed-convolution decoder and hashed integer features, recorded
only on request (`python -m tests.gt record OUTDIR --set heldout_i`). Written before it was
first scored.

Same builder contract as models.py.
"""

from __future__ import annotations

import numpy as np

from .models import BATCH, _data, _fit, _keras


def library_names():
    """Layers named after scopes TF and Keras open themselves: a nested `body` model, and
    `concat`, `stack`, `transpose`, `moments`, `cond`, `gradients`, `head` layers."""
    keras, L = _keras()
    inp = keras.Input((8, 6))
    body = keras.Sequential(
        [
            L.Conv1D(8, 3, padding="same", activation="relu", name="cond"),
            L.Dense(8, name="moments"),
        ],
        name="body",
    )
    a = body(inp)
    b = L.Dense(8, name="gradients")(inp)
    h = L.Concatenate(name="concat")([a, b])
    h = L.Permute((2, 1), name="transpose")(h)
    h = L.Dense(4, name="stack")(h)
    out = L.Dense(3, name="head")(L.Flatten(name="flatten")(h))
    model = keras.Model(inp, out, name="named_like_tf")
    model.compile("adam", "mse")
    return _fit(model, *_data((8, 6)))


def unrolled_rnn():
    """LSTM and SimpleRNN with unroll=True: the cell runs once per timestep, in Python."""
    keras, L = _keras()
    inp = keras.Input((5, 4))
    h = L.LSTM(6, return_sequences=True, unroll=True, name="lstm_unrolled")(inp)
    h = L.SimpleRNN(5, unroll=True, name="rnn_unrolled")(h)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="unrolled")
    model.compile("adam", "mse")
    return _fit(model, *_data((5, 4)))


def moe_router():
    """A mixture-of-experts layer: a router's top-2 gate weights mix four expert Dense
    sublayers, each run on every token (dense dispatch with keras.ops.top_k and one_hot)."""
    keras, L = _keras()
    ops = keras.ops

    class MoE(L.Layer):
        def __init__(self, units, experts=4, **kw):
            super().__init__(**kw)
            self.router = L.Dense(experts, name="router")
            self.experts = [
                L.Dense(units, activation="relu", name=f"expert_{i}") for i in range(experts)
            ]
            self.n = experts

        def call(self, x):
            logits = self.router(x)
            top, idx = ops.top_k(logits, k=2)
            gate = ops.sum(
                ops.one_hot(idx, self.n) * ops.expand_dims(ops.softmax(top), -1), axis=-2
            )
            outs = ops.stack([e(x) for e in self.experts], axis=-2)
            return ops.sum(outs * ops.expand_dims(gate, -1), axis=-2)

    inp = keras.Input((6, 8))
    h = MoE(8, name="moe")(inp)
    out = L.Dense(3, name="out")(L.GlobalAveragePooling1D(name="pool")(h))
    model = keras.Model(inp, out, name="moe_model")
    model.compile("adam", "mse")
    return _fit(model, *_data((6, 8)))


def dict_io():
    """Named dict inputs and outputs, a loss and a metric per output, loss weights."""
    keras, L = _keras()
    num = keras.Input((6,), name="numbers")
    img = keras.Input((8, 8, 1), name="image")
    a = L.Dense(8, activation="relu", name="num_dense")(num)
    b = L.Flatten(name="img_flat")(L.Conv2D(4, 3, name="img_conv")(img))
    h = L.Concatenate(name="joined")([a, b])
    outs = {
        "score": L.Dense(1, name="score")(h),
        "label": L.Dense(3, activation="softmax", name="label")(h),
    }
    model = keras.Model({"numbers": num, "image": img}, outs, name="dict_model")
    model.compile(
        "adam",
        loss={"score": "mse", "label": "sparse_categorical_crossentropy"},
        loss_weights={"score": 0.5, "label": 1.0},
        metrics={"score": ["mae"], "label": ["accuracy"]},
    )
    rng = np.random.default_rng(3)
    n = 8 * BATCH
    x = {
        "numbers": rng.random((n, 6), dtype="float32"),
        "image": rng.random((n, 8, 8, 1), dtype="float32"),
    }
    y = {"score": rng.random((n, 1), dtype="float32"), "label": rng.integers(0, 3, n)}
    return _fit(model, x, y)


def recurrent_dropout_lstm():
    """An LSTM with dropout and recurrent_dropout (masks made once per call, outside the
    loop) under a GRU."""
    keras, L = _keras()
    inp = keras.Input((6, 4))
    h = L.LSTM(8, dropout=0.2, recurrent_dropout=0.2, return_sequences=True, name="lstm_rd")(inp)
    h = L.GRU(6, recurrent_dropout=0.1, name="gru_rd")(h)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="rec_dropout")
    model.compile("adam", "mse")
    return _fit(model, *_data((6, 4)))


def focal_loss_class():
    """A keras.losses.Loss subclass (focal loss) with label smoothing, and a custom Metric
    subclass updated from y_true and y_pred."""
    keras, L = _keras()
    ops = keras.ops

    class Focal(keras.losses.Loss):
        def call(self, y_true, y_pred):
            y_true = ops.one_hot(ops.cast(y_true, "int32"), 4) * 0.9 + 0.025
            p = ops.clip(y_pred, 1e-6, 1.0 - 1e-6)
            return -ops.sum(y_true * ops.power(1.0 - p, 2.0) * ops.log(p), axis=-1)

    class MeanConfidence(keras.metrics.Metric):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.total = self.add_variable((), initializer="zeros", name="total")
            self.count = self.add_variable((), initializer="zeros", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.total.assign_add(ops.sum(ops.max(y_pred, axis=-1)))
            self.count.assign_add(ops.cast(ops.shape(y_pred)[0], "float32"))

        def result(self):
            return self.total / self.count

    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    out = L.Dense(4, activation="softmax", name="probs")(h)
    model = keras.Model(inp, out, name="focal")
    model.compile("adam", Focal(name="focal"), metrics=[MeanConfidence(name="confidence")])
    x, y = _data((10,), 4, classes=True)
    return _fit(model, x, y)


def reused_block_two_models():
    """One Sequential block instance used inside two sub-models that the outer model calls
    on different inputs (its weights shared across both)."""
    keras, L = _keras()
    block = keras.Sequential(
        [L.Dense(8, activation="relu", name="fc1"), L.Dense(8, name="fc2")], name="shared_block"
    )

    def branch(name):
        i = keras.Input((6,))
        return keras.Model(i, L.Dense(4, name=f"{name}_proj")(block(i)), name=name)

    left, right = branch("left"), branch("right")
    a, b = keras.Input((6,)), keras.Input((6,))
    out = L.Dense(3, name="out")(L.Concatenate(name="cat")([left(a), right(b)]))
    model = keras.Model([a, b], out, name="two_users")
    model.compile("adam", "mse")
    x, y = _data((6,))
    x2 = np.random.default_rng(9).random(x.shape, dtype="float32")
    return _fit(model, [x, x2], y)


def eager_run():
    """compile(run_eagerly=True): every op runs eagerly from Python, no train function."""
    keras, L = _keras()
    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="eager")
    model.compile("adam", "mse", run_eagerly=True)
    return _fit(model, *_data((10,)))


def transposed_decoder():
    """Conv2DTranspose, UpSampling2D, Cropping2D and ZeroPadding2D in a decoder."""
    keras, L = _keras()
    inp = keras.Input((4, 4, 3))
    h = L.Conv2DTranspose(6, 3, strides=2, padding="same", activation="relu", name="up_conv")(inp)
    h = L.UpSampling2D(2, name="upsample")(h)
    h = L.ZeroPadding2D(1, name="pad")(h)
    h = L.Cropping2D(2, name="crop")(h)
    h = L.Conv2D(2, 3, padding="same", name="to_out")(h)
    model = keras.Model(
        inp, L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="gap")(h)), name="decoder"
    )
    model.compile("adam", "mse")
    return _fit(model, *_data((4, 4, 3)))


def hashed_features():
    """Integer ids hashed (Hashing), one-hot encoded (CategoryEncoding) and embedded, beside
    a Discretization of a float feature: preprocessing layers inside the model."""
    keras, L = _keras()
    ids = keras.Input((3,), dtype="int64", name="ids")
    val = keras.Input((1,), name="value")
    hashed = L.Hashing(16, name="hash")(ids)
    onehot = L.CategoryEncoding(16, output_mode="multi_hot", name="multi_hot")(hashed)
    emb = L.Flatten(name="emb_flat")(L.Embedding(16, 4, name="emb")(hashed))
    bins = L.CategoryEncoding(4, output_mode="one_hot", name="bin_onehot")(
        L.Discretization(bin_boundaries=[0.25, 0.5, 0.75], name="bins")(val)
    )
    h = L.Concatenate(name="feats")([onehot, emb, bins])
    model = keras.Model(
        [ids, val],
        L.Dense(3, name="out")(L.Dense(8, activation="relu", name="hidden")(h)),
        name="hashed",
    )
    model.compile("adam", "mse")
    rng = np.random.default_rng(4)
    n = 8 * BATCH
    x = [rng.integers(0, 1000, (n, 3)).astype("int64"), rng.random((n, 1), dtype="float32")]
    return _fit(model, x, rng.random((n, 3), dtype="float32"))
