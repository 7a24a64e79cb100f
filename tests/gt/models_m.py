"""A tenth held-out set: a tiny vision transformer (patches, class token, learned position
weights), many stateful metrics (AUC, Precision, Recall, top-k, F1), a learning-rate
schedule with global clipnorm, a gradient penalty from a nested GradientTape, a layer with
its own weights and a training branch, keras.ops splits into several outputs, RMS and unit
normalisation, Huber and cosine losses on two outputs, 2-D attention and a Bidirectional
LSTM without merging, recorded only on request (`python -m tests.gt record OUTDIR --set
heldout_j`). Written before it was first scored.

Same builder contract as models.py.
"""

from __future__ import annotations

import numpy as np

from .models import BATCH, _data, _fit, _keras


def vit_tiny():
    """Patch embedding (strided Conv2D), a class token and position embeddings held as the
    layer's own weights, two pre-norm encoder blocks with GELU MLPs."""
    keras, L = _keras()
    ops = keras.ops

    class Tokens(L.Layer):
        def build(self, shape):
            self.cls = self.add_weight((1, 1, shape[-1]), initializer="zeros", name="cls")
            self.pos = self.add_weight((1, shape[1] + 1, shape[-1]), name="pos")

        def call(self, x):
            cls = ops.broadcast_to(self.cls, (ops.shape(x)[0], 1, ops.shape(x)[-1]))
            return ops.concatenate([cls, x], axis=1) + self.pos

    def block(x, i):
        h = L.LayerNormalization(name=f"ln1_{i}")(x)
        h = L.MultiHeadAttention(2, 4, name=f"attn_{i}")(h, h)
        x = L.Add(name=f"res1_{i}")([x, h])
        h = L.LayerNormalization(name=f"ln2_{i}")(x)
        h = L.Dense(16, activation="gelu", name=f"mlp_in_{i}")(h)
        return L.Add(name=f"res2_{i}")([x, L.Dense(8, name=f"mlp_out_{i}")(h)])

    inp = keras.Input((8, 8, 3))
    h = L.Conv2D(8, 4, strides=4, name="patchify")(inp)
    h = Tokens(name="tokens")(L.Reshape((4, 8), name="to_seq")(h))
    for i in range(2):
        h = block(h, i)
    out = L.Dense(4, name="head")(L.LayerNormalization(name="ln_out")(h[:, 0]))
    model = keras.Model(inp, out, name="vit")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data((8, 8, 3), 4, classes=True)
    return _fit(model, x, y)


def rich_metrics():
    """A binary classifier compiled with AUC, Precision, Recall, BinaryAccuracy and a
    binary F1Score: metrics with thresholds and confusion-matrix updates."""
    keras, L = _keras()
    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    out = L.Dense(1, activation="sigmoid", name="prob")(h)
    model = keras.Model(inp, out, name="metrics_heavy")
    model.compile(
        "adam",
        "binary_crossentropy",
        metrics=[
            keras.metrics.AUC(name="auc"),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
            keras.metrics.BinaryAccuracy(name="acc"),
            keras.metrics.F1Score(threshold=0.5, average="micro", name="f1"),
        ],
    )
    rng = np.random.default_rng(2)
    n = 8 * BATCH
    return _fit(
        model, rng.random((n, 10), dtype="float32"), rng.integers(0, 2, (n, 1)).astype("float32")
    )


def schedule_clipnorm():
    """AdamW with a CosineDecay learning-rate schedule, global_clipnorm and weight decay."""
    keras, L = _keras()
    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="scheduled")
    lr = keras.optimizers.schedules.CosineDecay(
        1e-3, decay_steps=100, warmup_target=2e-3, warmup_steps=3
    )
    model.compile(keras.optimizers.AdamW(lr, weight_decay=1e-3, global_clipnorm=1.0), "mse")
    return _fit(model, *_data((10,)))


def gradient_penalty():
    """A custom train_step adding a gradient penalty: an inner GradientTape differentiates
    the critic's output with respect to its input, the outer one the penalised loss."""
    keras, L = _keras()
    import tensorflow as tf

    class Critic(keras.Model):
        def __init__(self):
            super().__init__(name="critic")
            self.hidden = L.Dense(12, activation="tanh", name="hidden")
            self.score = L.Dense(1, name="score")

        def call(self, x):
            return self.score(self.hidden(x))

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    inner.watch(x)
                    pred = self(x, training=True)
                grads = inner.gradient(pred, x)
                penalty = tf.reduce_mean(tf.square(tf.norm(grads, axis=-1) - 1.0))
                loss = tf.reduce_mean(tf.square(pred - y)) + 0.1 * penalty
            self.optimizer.apply(
                outer.gradient(loss, self.trainable_variables), self.trainable_variables
            )
            return {"loss": loss}

    model = Critic()
    model.compile(keras.optimizers.Adam(1e-3))
    x, y = _data((10,), 1)
    model(x[:1])
    return _fit(model, x, y)


def own_weights_branch():
    """A layer holding its own kernel (add_weight, ops.matmul) with a Python branch on
    `training` that adds noise, and a BatchNormalization after it."""
    keras, L = _keras()
    ops = keras.ops

    class NoisyLinear(L.Layer):
        def __init__(self, units, **kw):
            super().__init__(**kw)
            self.units = units
            self.seed = keras.random.SeedGenerator(7)

        def build(self, shape):
            self.w = self.add_weight((shape[-1], self.units), name="w")
            self.b = self.add_weight((self.units,), initializer="zeros", name="b")

        def call(self, x, training=None):
            y = ops.matmul(x, self.w) + self.b
            if training:
                y = y + keras.random.normal(ops.shape(y), stddev=0.05, seed=self.seed)
            return ops.relu(y)

    inp = keras.Input((10,))
    h = NoisyLinear(12, name="noisy")(inp)
    h = L.BatchNormalization(name="bn")(h)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="own_weights")
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def split_outputs():
    """keras.ops.split of one Dense output into three heads, each with its own loss."""
    keras, L = _keras()
    ops = keras.ops
    inp = keras.Input((10,))
    h = L.Dense(9, name="trunk")(inp)
    a, b, c = ops.split(h, 3, axis=-1)
    outs = [L.Dense(2, name=f"head_{i}")(t) for i, t in enumerate((a, b, c))]
    model = keras.Model(inp, outs, name="split")
    model.compile("adam", ["mse", "mae", "mse"])
    x, _ = _data((10,))
    rng = np.random.default_rng(5)
    ys = [rng.random((len(x), 2), dtype="float32") for _ in range(3)]
    return _fit(model, x, ys)


def rms_unit_norms():
    """LayerNormalization(rms_scaling=True), UnitNormalization and GroupNormalization."""
    keras, L = _keras()
    inp = keras.Input((6, 8))
    h = L.LayerNormalization(rms_scaling=True, name="rms")(L.Dense(8, name="proj")(inp))
    h = L.UnitNormalization(name="unit")(h)
    h = L.GroupNormalization(groups=2, name="group")(h)
    out = L.Dense(3, name="out")(L.GlobalAveragePooling1D(name="pool")(h))
    model = keras.Model(inp, out, name="norms")
    model.compile("adam", "mse")
    return _fit(model, *_data((6, 8)))


def huber_cosine():
    """Two outputs trained with Huber and CosineSimilarity losses, with a KLDivergence
    metric on one of them."""
    keras, L = _keras()
    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="shared")(inp)
    reg = L.Dense(2, name="reg")(h)
    emb = L.Dense(4, activation="softmax", name="emb")(h)
    model = keras.Model(inp, [reg, emb], name="two_losses")
    model.compile(
        "adam",
        [keras.losses.Huber(), keras.losses.CosineSimilarity()],
        metrics=[[], [keras.metrics.KLDivergence(name="kl")]],
    )
    x, _ = _data((10,))
    rng = np.random.default_rng(6)
    y2 = rng.random((len(x), 4), dtype="float32")
    return _fit(
        model, x, [rng.random((len(x), 2), dtype="float32"), y2 / y2.sum(-1, keepdims=True)]
    )


def attention_2d():
    """MultiHeadAttention over both spatial axes of a feature map (attention_axes=(1, 2))."""
    keras, L = _keras()
    inp = keras.Input((4, 4, 6))
    h = L.Conv2D(8, 1, name="embed")(inp)
    h = L.MultiHeadAttention(2, 4, attention_axes=(1, 2), name="attn2d")(h, h)
    out = L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="gap")(h))
    model = keras.Model(inp, out, name="attn_2d")
    model.compile("adam", "mse")
    return _fit(model, *_data((4, 4, 6)))


def bidi_unmerged():
    """Bidirectional(LSTM, merge_mode=None): forward and backward outputs used apart."""
    keras, L = _keras()
    inp = keras.Input((6, 4))
    fwd, bwd = L.Bidirectional(L.LSTM(5), merge_mode=None, name="bidi")(inp)
    out = L.Dense(3, name="out")(L.Subtract(name="diff")([fwd, bwd]))
    model = keras.Model(inp, out, name="unmerged")
    model.compile("adam", "mse")
    return _fit(model, *_data((6, 4)))
