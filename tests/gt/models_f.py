"""A fourth held-out set: training set-ups rather than layer types (frozen backbones,
tracked layer containers, lazily built layers, tf.data pipelines, stateful RNNs, other
optimizer APIs), recorded only on request (`python -m tests.gt record OUTDIR --set
heldout_d`). Written after the fixes the third set led to.

Same builder contract as models.py; a builder that trains on a tf.data.Dataset passes
it as "x" with "y" None and "batch_size" None.
"""

from __future__ import annotations

import numpy as np

from .models import BATCH, _data, _fit, _keras


def frozen_backbone():
    """Transfer learning: a frozen MobileNetV2 called with training=False, a new head."""
    keras, L = _keras()
    base = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None
    )
    base.trainable = False
    inp = keras.Input((32, 32, 3))
    h = base(inp, training=False)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    out = L.Dense(4, activation="softmax", name="new_head")(L.Dropout(0.2, name="drop")(h))
    model = keras.Model(inp, out, name="transfer")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data((32, 32, 3), 4, classes=True)
    return _fit(model, x, y)


def list_blocks():
    """A subclassed model whose blocks live in a list and whose heads live in a dict."""
    keras, L = _keras()

    class Tower(keras.Model):
        def __init__(self):
            super().__init__(name="tower")
            self.blocks = [L.Dense(12, activation="relu", name=f"block_{i}") for i in range(3)]
            self.heads = {"a": L.Dense(2, name="head_a"), "b": L.Dense(1, name="head_b")}

        def call(self, x):
            for block in self.blocks:
                x = block(x)
            return keras.ops.concatenate([self.heads["a"](x), self.heads["b"](x)], axis=-1)

    model = Tower()
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def lazy_build():
    """A custom layer that creates its sublayers in build(), from the input shape."""
    keras, L = _keras()

    class Expand(keras.layers.Layer):
        def build(self, shape):
            self.up = L.Dense(shape[-1] * 2, activation="relu", name="up")
            self.down = L.Dense(shape[-1], name="down")

        def call(self, x):
            return x + self.down(self.up(x))

    inp = keras.Input((8,))
    h = Expand(name="expand_a")(L.Dense(8, name="stem")(inp))
    h = Expand(name="expand_b")(h)
    out = L.Dense(3, name="head")(h)
    model = keras.Model(inp, out, name="lazy")
    model.compile("adam", "mse")
    return _fit(model, *_data((8,)))


def dataset_map():
    """fit() on a tf.data pipeline that maps, augments and batches in the pipeline."""
    keras, L = _keras()
    import tensorflow as tf

    x, y = _data((12, 12, 3), 3, classes=True)

    def prep(img, label):
        img = tf.image.random_flip_left_right(img, seed=2)
        return tf.image.adjust_brightness(img, 0.1) * 2.0 - 1.0, label

    ds = tf.data.Dataset.from_tensor_slices((x, y)).map(prep).batch(BATCH).prefetch(2)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            L.Conv2D(6, 3, activation="relu", name="conv"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(3, activation="softmax", name="cls"),
        ],
        name="piped",
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return {"model": model, "x": ds, "y": None, "batch_size": None, "steps": 6}


def stateful_rnn():
    """A stateful LSTM (fixed batch size, states carried between batches)."""
    keras, L = _keras()
    model = keras.Sequential(
        [
            keras.Input((5, 3), batch_size=BATCH),
            L.LSTM(6, stateful=True, return_sequences=True, name="stateful_lstm"),
            L.SimpleRNN(4, stateful=True, name="stateful_rnn"),
            L.Dense(2, name="out"),
        ],
        name="stateful",
    )
    model.compile("adam", "mse")
    return _fit(model, *_data((5, 3), 2))


def masked_attention():
    """Embedding(mask_zero) masks propagated into MultiHeadAttention and pooling."""
    keras, L = _keras()
    rng = np.random.default_rng(14)
    n = 8 * BATCH
    x = rng.integers(1, 30, (n, 8))
    x[:, 6:] = 0
    inp = keras.Input((8,), dtype="int32")
    h = L.Embedding(30, 8, mask_zero=True, name="emb")(inp)
    h = L.MultiHeadAttention(2, 4, name="mha")(h, h)
    h = L.LayerNormalization(name="ln")(h)
    out = L.Dense(3, activation="softmax", name="cls")(L.GlobalAveragePooling1D(name="pool")(h))
    model = keras.Model(inp, out, name="masked_attn")
    model.compile("adam", "sparse_categorical_crossentropy")
    return _fit(model, x, rng.integers(0, 3, n))


def clipvalue_sgd():
    """SGD with Nesterov momentum, clipvalue, and a learning-rate schedule."""
    keras, L = _keras()
    model = keras.Sequential(
        [keras.Input((10,)), L.Dense(12, activation="elu", name="h"), L.Dense(3, name="y")],
        name="sgd_net",
    )
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    opt = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, clipvalue=0.5)
    model.compile(opt, "mse", metrics=[keras.metrics.RootMeanSquaredError()])
    return _fit(model, *_data((10,)))


def deferred_sequential():
    """A Sequential built without an Input (built on the first batch)."""
    keras, L = _keras()
    model = keras.Sequential(
        [
            L.Dense(10, activation="relu", name="first"),
            L.BatchNormalization(name="bn"),
            L.Dense(3, name="last"),
        ],
        name="deferred",
    )
    model.compile("rmsprop", "mse")
    return _fit(model, *_data((7,)))


def custom_step_apply_gradients():
    """A custom train_step on the older optimizer API (apply_gradients of pairs) and
    compute_metrics, with a loss it computes itself."""
    keras, L = _keras()
    import tensorflow as tf

    class Step(keras.Model):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                pred = self(x, training=True)
                loss = tf.reduce_mean(tf.square(pred - y)) + tf.add_n(self.losses or [0.0])
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
            return self.compute_metrics(x, y, pred, sample_weight=None)

    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", kernel_regularizer="l2", name="h")(inp)
    out = L.Dense(3, name="y")(h)
    model = Step(inp, out, name="stepper")
    model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((10,)))


def relu6_blocks():
    """Conv + BN + ReLU(max_value=6) blocks with a ZeroPadding and a strided depthwise
    conv (MobileNet-v1 style), built by hand."""
    keras, L = _keras()
    inp = keras.Input((16, 16, 3))
    h = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="c1")(inp)
    h = L.ReLU(6.0, name="c1_relu")(L.BatchNormalization(name="c1_bn")(h))
    h = L.ZeroPadding2D(((0, 1), (0, 1)), name="pad")(h)
    h = L.DepthwiseConv2D(3, strides=2, use_bias=False, name="dw")(h)
    h = L.ReLU(6.0, name="dw_relu")(L.BatchNormalization(name="dw_bn")(h))
    h = L.Conv2D(12, 1, use_bias=False, name="pw")(h)
    h = L.ReLU(6.0, name="pw_relu")(L.BatchNormalization(name="pw_bn")(h))
    out = L.Dense(3, name="head")(L.GlobalAveragePooling2D(name="gap")(h))
    model = keras.Model(inp, out, name="mnv1")
    model.compile("adam", "mse")
    return _fit(model, *_data((16, 16, 3)))


def shared_head_two_losses():
    """One layer's output used by two outputs with different losses and loss weights."""
    keras, L = _keras()
    rng = np.random.default_rng(15)
    n = 8 * BATCH
    inp = keras.Input((10,))
    shared = L.Dense(8, activation="relu", name="shared")(inp)
    out_a = L.Activation("linear", name="raw")(shared)
    out_b = L.Dense(2, activation="softmax", name="probs")(shared)
    model = keras.Model(inp, [out_a, out_b], name="twin_losses")
    model.compile("adam", ["mae", "sparse_categorical_crossentropy"], loss_weights=[0.3, 1.0])
    y = [rng.random((n, 8), dtype="float32"), rng.integers(0, 2, n)]
    return _fit(model, rng.random((n, 10), dtype="float32"), y)


def override_compute_loss():
    """A model that overrides compute_loss (Keras 3's hook for custom losses) to add a
    penalty on its own output."""
    keras, L = _keras()
    ops = keras.ops

    class Penalised(keras.Model):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            base = super().compute_loss(x, y, y_pred, sample_weight, training)
            return base + 0.01 * ops.mean(ops.square(y_pred))

    inp = keras.Input((10,))
    out = L.Dense(3, name="out")(L.Dense(8, activation="tanh", name="h")(inp))
    model = Penalised(inp, out, name="penalised")
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def tf_function_layer():
    """A custom layer whose call is a tf.function (a nested function call in the step)
    and one that recomputes its activations in the backward pass (tf.recompute_grad)."""
    keras, L = _keras()
    import tensorflow as tf

    class Compiled(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], shape[-1]), name="w")

        @tf.function
        def call(self, x):
            return tf.nn.relu(tf.matmul(x, self.w)) + x

    class Recomputed(keras.layers.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.fc = L.Dense(8, activation="relu", name="fc")

        def call(self, x):
            return tf.recompute_grad(lambda t: self.fc(t) * 2.0)(x)

    inp = keras.Input((8,))
    h = Compiled(name="compiled")(L.Dense(8, name="stem")(inp))
    h = Recomputed(name="recomputed")(h)
    out = L.Dense(3, name="head")(h)
    model = keras.Model(inp, out, name="tf_fn")
    model.compile("adam", "mse")
    return _fit(model, *_data((8,)))
