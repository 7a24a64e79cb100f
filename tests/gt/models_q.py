"""A fourteenth held-out set: LoRA-adapted and int8-quantized layers, user name scopes in a
model's call and around a whole train_step, Python code in the step (tf.py_function in a
layer and in the tf.data pipeline), a float64 head in a float32 model, a model built under
a OneDeviceStrategy, a segmentation loss with an ignored class and MeanIoU, and a
train_step that calls the user's own tf.functions, recorded only on request
(`python -m tests.gt record OUTDIR --set heldout_n`). Written before it was first scored.

Same builder contract as models.py.
"""

from __future__ import annotations

import numpy as np

from .models import BATCH, _data, _fit, _keras


def _track(metrics, loss, y, pred) -> dict:
    """A custom train_step's metric updates and its logs (Keras 3.6's compiled metrics
    give theirs as one dict)."""
    out = {}
    for m in metrics:
        if m.name == "loss":
            m.update_state(loss)
        else:
            m.update_state(y, pred)
    for m in metrics:
        r = m.result()
        out.update(r if isinstance(r, dict) else {m.name: r})
    return out


def lora_dense():
    """Dense layers adapted with LoRA (`enable_lora`): a frozen kernel plus two low-rank
    trainable factors, multiplied in the layer's own call."""
    keras, L = _keras()
    inp = keras.Input((16,))
    h = L.Dense(24, activation="relu", name="base_a")(inp)
    h = L.Dense(24, activation="relu", name="base_b")(h)
    model = keras.Model(inp, L.Dense(3, name="head")(h), name="lora")
    for name in ("base_a", "base_b"):
        model.get_layer(name).enable_lora(4)
    model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((16,)))


def quantized_lora():
    """A model quantized to int8 (`model.quantize`), then trained through LoRA factors: the
    layers quantize their inputs and dequantize their outputs in their own call."""
    keras, L = _keras()
    inp = keras.Input((16,))
    h = L.Dense(24, activation="relu", name="q_a")(inp)
    model = keras.Model(inp, L.Dense(3, name="q_head")(h), name="quantized")
    model.get_layer("q_a").enable_lora(4)
    model.quantize("int8")
    model.compile("adam", "mse")
    return _fit(model, *_data((16,)))


def user_name_scopes():
    """A subclassed model whose call opens its own name scopes (keras.name_scope and
    tf.name_scope) around sublayer calls: scopes in op names that are not layers."""
    keras, L = _keras()
    import tensorflow as tf

    class Scoped(keras.Model):
        def __init__(self):
            super().__init__(name="scoped")
            self.a = L.Dense(12, activation="relu", name="enc_a")
            self.b = L.Dense(12, activation="relu", name="enc_b")
            self.out = L.Dense(3, name="out")

        def call(self, x):
            with keras.name_scope("encoder"):
                h = self.b(self.a(x))
            with tf.name_scope("post"):
                h = h * tf.math.rsqrt(tf.reduce_mean(tf.square(h), -1, keepdims=True) + 1e-6)
            return self.out(h)

    model = Scoped()
    model.compile("adam", "mse", metrics=["mae"])
    x, y = _data((10,))
    model(x[:1])
    return _fit(model, x, y)


def scoped_train_step():
    """A custom train_step that wraps all of its work (forward, loss, gradients, optimizer,
    metrics) in one tf.name_scope: every root op gets the same user prefix."""
    keras, L = _keras()
    import tensorflow as tf

    class Wrapped(keras.Model):
        def __init__(self):
            super().__init__(name="wrapped")
            self.hidden = L.Dense(12, activation="relu", name="hidden")
            self.out = L.Dense(3, name="out")

        def call(self, x):
            return self.out(self.hidden(x))

        def train_step(self, data):
            x, y = data
            with tf.name_scope("my_step"):
                with tf.GradientTape() as tape:
                    pred = self(x, training=True)
                    loss = self.compute_loss(x=x, y=y, y_pred=pred)
                grads = tape.gradient(loss, self.trainable_variables)
                self.optimizer.apply(grads, self.trainable_variables)
                return _track(self.metrics, loss, y, pred)

    model = Wrapped()
    model.compile("adam", "mse", metrics=["mae"])
    x, y = _data((10,))
    model(x[:1])
    return _fit(model, x, y)


def py_function_layer():
    """A layer that runs Python (numpy) in the step through tf.py_function: a per-sample
    scale computed on the host, held out of the gradient."""
    keras, L = _keras()
    import tensorflow as tf

    def host_scale(x):
        return (1.0 + np.tanh(np.abs(x.numpy()).mean(axis=1, keepdims=True))).astype("float32")

    class HostScale(L.Layer):
        def call(self, x):
            s = tf.py_function(host_scale, [x], tf.float32)
            s.set_shape([None, 1])
            return x * tf.stop_gradient(s)

    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    h = HostScale(name="host_scale")(h)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="py_layer")
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def py_function_pipeline():
    """A tf.data pipeline whose map runs Python (numpy jitter) through tf.py_function."""
    keras, L = _keras()
    import tensorflow as tf

    def jitter(x):
        rng = np.random.default_rng(int(abs(x.numpy().sum()) * 1000) % 97)
        return (x.numpy() + rng.normal(0, 0.01, x.shape)).astype("float32")

    def prep(x, y):
        x2 = tf.py_function(jitter, [x], tf.float32)
        x2.set_shape(x.shape)
        return x2, y

    x, y = _data((10,))
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .map(prep)
        .batch(BATCH, drop_remainder=True)
        .prefetch(2)
    )
    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="py_pipeline")
    model.compile("adam", "mse", metrics=["mae"])
    spec = _fit(model, ds, None)
    spec["batch_size"] = None
    return spec


def float64_head():
    """A float32 model whose last Dense computes in float64 (its own dtype), then an
    Activation back in float32: casts between the two at the head."""
    keras, L = _keras()
    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="body")(inp)
    h = L.Dense(3, dtype="float64", name="wide_head")(h)
    out = L.Activation("linear", dtype="float32", name="back32")(h)
    model = keras.Model(inp, out, name="f64_head")
    model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((10,)))


def one_device_strategy():
    """A conv model built, compiled and fitted under tf.distribute.OneDeviceStrategy."""
    keras, L = _keras()
    import tensorflow as tf

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        inp = keras.Input((12, 12, 3))
        h = L.Conv2D(8, 3, activation="relu", name="conv")(inp)
        h = L.BatchNormalization(name="bn")(h)
        h = L.GlobalAveragePooling2D(name="gap")(h)
        model = keras.Model(inp, L.Dense(3, name="out")(h), name="one_device")
        model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((12, 12, 3)))


def ignore_class_seg():
    """A small segmentation net: per-pixel SparseCategoricalCrossentropy with an ignored
    class (its mask in the loss) and a MeanIoU metric (a confusion matrix a step)."""
    keras, L = _keras()
    inp = keras.Input((12, 12, 3))
    h = L.Conv2D(8, 3, padding="same", activation="relu", name="enc")(inp)
    h = L.MaxPooling2D(name="down")(h)
    h = L.Conv2D(8, 3, padding="same", activation="relu", name="mid")(h)
    h = L.UpSampling2D(name="up")(h)
    out = L.Conv2D(4, 1, name="logits")(h)
    model = keras.Model(inp, out, name="seg")
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        metrics=[keras.metrics.MeanIoU(num_classes=4, sparse_y_pred=False, name="miou")],
    )
    rng = np.random.default_rng(11)
    n = 8 * BATCH
    x = rng.random((n, 12, 12, 3), dtype="float32")
    y = rng.integers(0, 4, (n, 12, 12)).astype("int32")
    return _fit(model, x, y)


def nested_tf_function_step():
    """A custom train_step that calls the user's own tf.functions: one augments the batch
    before the forward pass, one computes a penalty added to the loss."""
    keras, L = _keras()
    import tensorflow as tf

    @tf.function
    def augment(x):
        return x + 0.01 * tf.sin(x * 3.0)

    @tf.function
    def smoothness(pred):
        return tf.reduce_mean(tf.square(pred[:, 1:] - pred[:, :-1]))

    class Nested(keras.Model):
        def __init__(self):
            super().__init__(name="nested_fn")
            self.hidden = L.Dense(12, activation="relu", name="hidden")
            self.out = L.Dense(3, name="out")

        def call(self, x):
            return self.out(self.hidden(x))

        def train_step(self, data):
            x, y = data
            x = augment(x)
            with tf.GradientTape() as tape:
                pred = self(x, training=True)
                loss = self.compute_loss(x=x, y=y, y_pred=pred) + 0.1 * smoothness(pred)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            return _track(self.metrics, loss, y, pred)

    model = Nested()
    model.compile("adam", "mse", metrics=["mae"])
    x, y = _data((10,))
    model(x[:1])
    return _fit(model, x, y)
