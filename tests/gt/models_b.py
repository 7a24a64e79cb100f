"""Corpus models, part two: preprocessing, custom training, structure, precision, placement."""

from __future__ import annotations

import numpy as np

from .models import _data, _fit, _keras


def augmentation():
    keras, L = _keras()
    inp = keras.Input((16, 16, 3))
    h = L.Rescaling(1 / 255.0, name="rescale")(inp)
    h = L.RandomFlip("horizontal", name="flip")(h)
    h = L.RandomRotation(0.1, name="rotate")(h)
    h = L.RandomContrast(0.2, name="contrast")(h)
    h = L.Conv2D(4, 3, activation="relu", name="conv")(h)
    out = L.Dense(3, name="head")(L.GlobalMaxPooling2D(name="gmp")(h))
    model = keras.Model(inp, out, name="augment")
    model.compile("adam", "mse")
    return _fit(model, *_data((16, 16, 3)))


def normalization():
    keras, L = _keras()
    x, y = _data((10,))
    norm = L.Normalization(name="norm")
    norm.adapt(x)
    model = keras.Sequential(
        [keras.Input((10,)), norm, L.Dense(16, activation="tanh", name="hidden"), L.Dense(3)],
        name="normed",
    )
    model.compile("adam", "mse", metrics=["mse"])
    return _fit(model, x, y)


def embedding():
    keras, L = _keras()
    rng = np.random.default_rng(1)
    x = rng.integers(0, 50, (64, 7))
    y = rng.integers(0, 2, (64, 1)).astype("float32")
    inp = keras.Input((7,), dtype="int32")
    h = L.Embedding(50, 8, name="embed")(inp)
    h = L.Conv1D(8, 3, name="conv1d")(h)
    out = L.Dense(1, activation="sigmoid", name="head")(L.GlobalAveragePooling1D(name="gap")(h))
    model = keras.Model(inp, out, name="embedder")
    model.compile("adam", "binary_crossentropy", metrics=["accuracy", "auc"])
    return _fit(model, x, y)


def subclassed_add_loss():
    keras, L = _keras()

    class Block(keras.layers.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.a = L.Dense(16, kernel_regularizer="l2", name="inner_a")
            self.b = L.Dense(16, kernel_regularizer=keras.regularizers.L1(1e-3), name="inner_b")

        def call(self, x):
            h = self.b(keras.ops.relu(self.a(x)))
            self.add_loss(1e-3 * keras.ops.mean(keras.ops.square(h)))
            return h + x

    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.proj = L.Dense(16, name="proj")
            self.block = Block(name="block")
            self.out = L.Dense(3, name="out", bias_regularizer="l2")

        def call(self, x):
            return self.out(self.block(self.proj(x)))

    model = Net()
    model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((12,)))


def custom_train_step():
    keras, L = _keras()
    import tensorflow as tf

    class Custom(keras.Model):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            for m in self.metrics:
                if m.name == "loss":
                    m.update_state(loss)
                else:
                    m.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    inp = keras.Input((12,))
    h = L.Dense(16, activation="relu", name="hidden")(inp)
    out = L.Dense(3, name="head")(h)
    model = Custom(inp, out, name="custom")
    model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((12,)))


def shared_layers():
    keras, L = _keras()
    a, b = keras.Input((10,), name="a"), keras.Input((10,), name="b")
    shared = L.Dense(12, activation="relu", name="shared")
    norm = L.LayerNormalization(name="shared_norm")
    ha, hb = norm(shared(a)), norm(shared(b))
    twice = shared(L.Dense(10, name="back")(ha))
    out = L.Dense(3, name="head")(L.Concatenate(name="cat")([ha, hb, twice]))
    model = keras.Model([a, b], out, name="siamese")
    model.compile("adam", "mse")
    x, y = _data((10,))
    return _fit(model, [x, x[::-1].copy()], y)


def nested_models():
    keras, L = _keras()
    e_in = keras.Input((12,))
    inner = keras.Sequential([keras.Input((16,)), L.Dense(16, name="dense")], name="inner")
    h = L.Dense(16, name="dense")(e_in)
    encoder = keras.Model(e_in, inner(h) + h, name="encoder")
    inp = keras.Input((12,))
    out = L.Dense(3, name="dense")(encoder(inp))
    model = keras.Model(inp, out, name="outer")
    model.compile("adam", "mse")
    return _fit(model, *_data((12,)))


def colliding_names():
    keras, L = _keras()
    inp = keras.Input((12,))
    h = L.Dense(16, name="dense")(inp)
    h = L.Dense(16, name="dense_1")(h)
    h2 = L.Dense(16, name="dense_2_1")(inp)
    h = L.Dense(16, name="conv")(h + h2)
    h = L.BatchNormalization(name="batchnorm")(h)
    out = L.Dense(3, name="MatMul")(h)
    model = keras.Model(inp, out, name="functional")
    model.compile("adam", "mse")
    return _fit(model, *_data((12,)))


def multi_io():
    keras, L = _keras()
    img, vec = keras.Input((8, 8, 1), name="img"), keras.Input((5,), name="vec")
    h = L.Flatten(name="flat")(L.Conv2D(4, 3, name="conv")(img))
    h = L.Concatenate(name="cat")([h, L.Dense(8, name="vec_dense")(vec)])
    cls = L.Dense(4, activation="softmax", name="cls")(h)
    reg = L.Dense(2, name="reg")(h)
    model = keras.Model([img, vec], {"cls": cls, "reg": reg}, name="multi")
    model.compile(
        "adam",
        loss={"cls": "sparse_categorical_crossentropy", "reg": "huber"},
        loss_weights={"cls": 1.0, "reg": 0.5},
        metrics={"cls": ["accuracy"], "reg": ["mae", "mse"]},
    )
    rng = np.random.default_rng(2)
    n = 64
    x = [rng.random((n, 8, 8, 1), dtype="float32"), rng.random((n, 5), dtype="float32")]
    y = {"cls": rng.integers(0, 4, n), "reg": rng.random((n, 2), dtype="float32")}
    return _fit(model, x, y)


def mixed_float16():
    keras, L = _keras()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inp = keras.Input((16, 16, 3))
        h = L.Conv2D(8, 3, activation="relu", name="conv")(inp)
        h = L.BatchNormalization(name="bn")(h)
        h = L.Dense(8, name="dense")(L.GlobalAveragePooling2D(name="gap")(h))
        out = L.Activation("linear", dtype="float32", name="out")(L.Dense(3, name="head")(h))
        model = keras.Model(inp, out, name="mixed")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.compile("adam", "mse")
    return _fit(model, *_data((16, 16, 3)))


def steps_per_execution():
    keras, L = _keras()
    model = keras.Sequential(
        [keras.Input((12,)), L.Dense(16, name="hidden"), L.Dense(3, name="head")], name="spe"
    )
    model.compile("adam", "mse", metrics=["mae"], steps_per_execution=3)
    return _fit(model, *_data((12,), n=24 * 8), steps=24)


def jit_compile():
    keras, L = _keras()
    model = keras.Sequential(
        [keras.Input((12,)), L.Dense(16, activation="relu", name="hidden"), L.Dense(3)],
        name="xla",
    )
    model.compile("adam", "mse", jit_compile=True)
    return _fit(model, *_data((12,)))


def py_function():
    keras, L = _keras()
    import tensorflow as tf

    class PyLayer(keras.layers.Layer):
        def call(self, x):
            y = tf.py_function(lambda t: t * 2.0, [x], tf.float32)
            y.set_shape(x.shape)
            # numpy_function has no gradient: it sits on a branch the loss does not need.
            z = tf.numpy_function(lambda t: np.tanh(t).astype("float32"), [x], tf.float32)
            z.set_shape(x.shape)
            return y + tf.stop_gradient(z)

    inp = keras.Input((12,))
    h = PyLayer(name="py")(L.Dense(12, name="pre")(inp))
    out = L.Dense(3, name="head")(h)
    model = keras.Model(inp, out, name="pyfunc")
    model.compile("adam", "mse")
    return _fit(model, *_data((12,)))


def mirrored():
    """MirroredStrategy over two logical CPUs (the recorder configures them first)."""
    keras, L = _keras()
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = keras.Sequential(
            [keras.Input((12,)), L.Dense(16, activation="relu", name="hidden"), L.Dense(3)],
            name="mirror",
        )
        model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((12,), n=16 * 8))
