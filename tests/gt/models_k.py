"""A held-out set in Keras 2 (tf_keras, `tf.keras` under TF_USE_LEGACY_KERAS=1), the Keras
of TF 2.15-era Macs with tensorflow-metal: its layer scopes are written once and carry no
`_<k>`, raw TF ops on symbolic tensors become `tf.*` layers, and its trainer, metrics and
optimizers are other classes. Recorded only on request (`python -m tests.gt record OUTDIR
--set tf_keras`; needs `pip install tf_keras`), each model in a worker with
TF_USE_LEGACY_KERAS=1.

Same builder contract as models.py.
"""

from __future__ import annotations

import numpy as np

from .models import BATCH, _data, _fit


def _tf_keras():
    import tf_keras

    return tf_keras, tf_keras.layers


def k2_conv_bn():
    """Conv2D without bias, BatchNormalization, ReLU, pooling, a Dense head."""
    keras, L = _tf_keras()
    inp = keras.Input((12, 12, 3))
    h = L.Conv2D(8, 3, use_bias=False, name="conv")(inp)
    h = L.ReLU(name="relu")(L.BatchNormalization(name="bn")(h))
    h = L.MaxPooling2D(name="pool")(h)
    out = L.Dense(3, name="head")(L.Flatten(name="flat")(h))
    model = keras.Model(inp, out, name="k2_conv")
    model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((12, 12, 3)))


def k2_resnet_block():
    """Two residual blocks, the second with a projection shortcut, global pooling."""
    keras, L = _tf_keras()
    inp = keras.Input((10, 10, 4))
    h = L.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inp)
    for i, (f, project) in enumerate([(8, False), (12, True)]):
        y = L.Conv2D(f, 3, padding="same", name=f"b{i}_c1")(h)
        y = L.Activation("relu", name=f"b{i}_relu")(L.BatchNormalization(name=f"b{i}_bn")(y))
        y = L.Conv2D(f, 3, padding="same", name=f"b{i}_c2")(y)
        short = L.Conv2D(f, 1, name=f"b{i}_proj")(h) if project else h
        h = L.Activation("relu", name=f"b{i}_out")(L.Add(name=f"b{i}_add")([y, short]))
    out = L.Dense(3, name="head")(L.GlobalAveragePooling2D(name="gap")(h))
    model = keras.Model(inp, out, name="k2_resnet")
    model.compile("sgd", "mse")
    return _fit(model, *_data((10, 10, 4)))


def k2_lstm():
    """An LSTM over a sequence and a Dense head."""
    keras, L = _tf_keras()
    inp = keras.Input((7, 5))
    h = L.LSTM(8, name="lstm")(inp)
    model = keras.Model(inp, L.Dense(3, name="head")(h), name="k2_lstm_model")
    model.compile("adam", "mse")
    return _fit(model, *_data((7, 5)))


def k2_gru_stack():
    """Two stacked GRUs and a Bidirectional LSTM."""
    keras, L = _tf_keras()
    inp = keras.Input((6, 4))
    h = L.GRU(8, return_sequences=True, name="gru_a")(inp)
    h = L.GRU(8, return_sequences=True, name="gru_b")(h)
    h = L.Bidirectional(L.LSTM(4), name="bilstm")(h)
    model = keras.Model(inp, L.Dense(3, name="head")(h), name="k2_rnn")
    model.compile("rmsprop", "mse")
    return _fit(model, *_data((6, 4)))


def k2_subclassed():
    """A subclassed model with add_loss and kernel regularizers."""
    keras, L = _tf_keras()
    import tensorflow as tf

    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="k2_net")
            reg = keras.regularizers.L2(1e-3)
            self.d1 = L.Dense(16, activation="relu", kernel_regularizer=reg, name="d1")
            self.d2 = L.Dense(16, activation="relu", kernel_regularizer=reg, name="d2")
            self.out = L.Dense(3, name="out")

        def call(self, x):
            h = self.d2(self.d1(x))
            self.add_loss(1e-3 * tf.reduce_mean(tf.square(h)))
            return self.out(h)

    model = Net()
    model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((10,)))


def k2_multi_io():
    """Two inputs, two outputs with their own losses, weights and metrics."""
    keras, L = _tf_keras()
    rng = np.random.default_rng(41)
    n = 8 * BATCH
    a_in, b_in = keras.Input((6,), name="a"), keras.Input((4,), name="b")
    h = L.Concatenate(name="cat")([L.Dense(8, name="a_enc")(a_in), L.Dense(8, name="b_enc")(b_in)])
    h = L.Dense(12, activation="relu", name="shared")(h)
    reg = L.Dense(1, name="reg")(h)
    cls = L.Dense(3, activation="softmax", name="cls")(h)
    model = keras.Model([a_in, b_in], [reg, cls], name="k2_multi")
    model.compile(
        "adam",
        loss={"reg": "mse", "cls": "sparse_categorical_crossentropy"},
        loss_weights={"reg": 0.5, "cls": 1.0},
        metrics={"reg": ["mae"], "cls": ["accuracy"]},
    )
    x = [rng.random((n, 6), dtype="float32"), rng.random((n, 4), dtype="float32")]
    y = {"reg": rng.random((n, 1), dtype="float32"), "cls": rng.integers(0, 3, n)}
    return _fit(model, x, y)


def k2_mixed_float16():
    """Conv and Dense layers under mixed_float16, a float32 softmax head."""
    keras, L = _tf_keras()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inp = keras.Input((10, 10, 3))
        h = L.Conv2D(8, 3, activation="relu", name="conv")(inp)
        h = L.GlobalAveragePooling2D(name="gap")(h)
        h = L.Dense(8, activation="relu", name="mid")(h)
        out = L.Dense(3, activation="softmax", dtype="float32", name="head")(h)
        model = keras.Model(inp, out, name="k2_mixed")
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return _fit(model, *_data((10, 10, 3), classes=True))


def k2_transformer():
    """A post-norm transformer block: MultiHeadAttention, LayerNormalization, a Dense FFN."""
    keras, L = _tf_keras()
    inp = keras.Input((8, 12))
    a = L.MultiHeadAttention(2, 6, name="mha")(inp, inp)
    h = L.LayerNormalization(name="ln1")(L.Add(name="res1")([inp, a]))
    f = L.Dense(12, name="ffn_out")(L.Dense(24, activation="relu", name="ffn_in")(h))
    h = L.LayerNormalization(name="ln2")(L.Add(name="res2")([h, f]))
    out = L.Dense(3, name="head")(L.GlobalAveragePooling1D(name="pool")(h))
    model = keras.Model(inp, out, name="k2_tfm")
    model.compile("adam", "mse")
    return _fit(model, *_data((8, 12)))


def k2_tf_ops():
    """Raw TF ops on symbolic tensors between layers (tf_keras wraps each in a `tf.*`
    layer): tf.nn.relu, tf.concat, tf.reduce_mean, tf.math.square."""
    keras, L = _tf_keras()
    import tensorflow as tf

    inp = keras.Input((10,))
    a = L.Dense(8, name="a")(inp)
    b = L.Dense(8, name="b")(inp)
    h = tf.concat([tf.nn.relu(a), tf.math.square(b)], axis=-1)
    h = h - tf.reduce_mean(h, axis=-1, keepdims=True)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="k2_ops")
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def k2_mobilenet_v2():
    """tf_keras.applications.MobileNetV2 (alpha 0.35, no weights) at 32x32."""
    keras, _ = _tf_keras()
    model = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=4
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data((32, 32, 3), 4, classes=True)
    return _fit(model, x, y)


def k2_custom_train_step():
    """A Keras 2 custom train_step: GradientTape, compiled_loss, apply_gradients,
    compiled_metrics."""
    keras, L = _tf_keras()
    import tensorflow as tf

    class Step(keras.Model):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                pred = self(x, training=True)
                loss = self.compiled_loss(y, pred, regularization_losses=self.losses)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
            self.compiled_metrics.update_state(y, pred)
            return {m.name: m.result() for m in self.metrics}

    inp = keras.Input((9,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    model = Step(inp, L.Dense(3, name="out")(h), name="k2_step")
    model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((9,)))


def k2_embedding_pool():
    """Embedding, GlobalAveragePooling1D and a softmax head on token ids."""
    keras, L = _tf_keras()
    rng = np.random.default_rng(42)
    n, seq = 8 * BATCH, 8
    inp = keras.Input((seq,), dtype="int32")
    h = L.GlobalAveragePooling1D(name="pool")(L.Embedding(50, 8, name="emb")(inp))
    out = L.Dense(4, activation="softmax", name="head")(L.Dense(8, name="mid")(h))
    model = keras.Model(inp, out, name="k2_emb")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return _fit(model, rng.integers(0, 50, (n, seq)), rng.integers(0, 4, n))


def k2_default_names():
    """A Sequential with Keras 2's default layer names (`dense`, `dense_1`, `dense_2`:
    most of them end like a Keras 3 suffix) and default compile settings."""
    keras, L = _tf_keras()
    model = keras.Sequential(
        [
            keras.Input((10,)),
            L.Dense(16, activation="relu"),
            L.Dense(16, activation="relu"),
            L.Dropout(0.1),
            L.Dense(8, activation="relu"),
            L.Dense(3),
        ]
    )
    model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((10,)))


def k2_efficientnet():
    """tf_keras.applications.EfficientNetB0 (no weights) at 32x32: swish, squeeze-excite."""
    keras, _ = _tf_keras()
    model = keras.applications.EfficientNetB0(input_shape=(32, 32, 3), weights=None, classes=4)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data((32, 32, 3), 4, classes=True)
    return _fit(model, x, y)


def k2_nested_time_distributed():
    """A nested Sequential encoder inside a functional model, TimeDistributed over it."""
    keras, L = _tf_keras()
    enc = keras.Sequential([keras.Input((6,)), L.Dense(8, activation="relu")], name="enc")
    inp = keras.Input((4, 6))
    h = L.TimeDistributed(enc, name="td")(inp)
    h = L.Flatten()(h)
    model = keras.Model(inp, L.Dense(3)(h), name="k2_nested")
    model.compile("sgd", "mse")
    return _fit(model, *_data((4, 6)))
