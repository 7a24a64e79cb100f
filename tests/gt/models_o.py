"""A twelfth held-out set: data from a keras.utils.PyDataset, ragged and sparse inputs,
training callbacks that act between steps, validation_split, a Model held inside a layer,
the same layer names in two sub-models, and adapted preprocessing layers, recorded only on
request (`python -m tests.gt record OUTDIR --set heldout_l`). Written before it was first
scored.

Same builder contract as models.py.
"""

from __future__ import annotations

import numpy as np

from .models import BATCH, _data, _fit, _keras


def pydataset_fit():
    """fit() on a keras.utils.PyDataset: batches made in Python, fed through a generator."""
    keras, L = _keras()

    class Batches(keras.utils.PyDataset):
        def __init__(self, x, y):
            super().__init__()
            self.x, self.y = x, y

        def __len__(self):
            return len(self.x) // BATCH

        def __getitem__(self, i):
            s = slice(i * BATCH, (i + 1) * BATCH)
            return self.x[s], self.y[s]

    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="py_data")
    model.compile("adam", "mse", metrics=["mae"])
    x, y = _data((10,))
    spec = _fit(model, Batches(x, y), None)
    spec["batch_size"] = None  # a PyDataset makes its own batches
    return spec


def ragged_input():
    """A ragged token input (tf.RaggedTensor) embedded, then made dense by the model."""
    keras, L = _keras()
    import tensorflow as tf

    class Densify(L.Layer):
        def call(self, x):
            return x.to_tensor() if isinstance(x, tf.RaggedTensor) else x

    inp = keras.Input((None,), dtype="int32", ragged=True)
    h = Densify(name="densify")(inp)
    h = L.Embedding(20, 4, name="emb")(h)
    out = L.Dense(3, name="out")(L.GlobalAveragePooling1D(name="pool")(h))
    model = keras.Model(inp, out, name="ragged")
    model.compile("adam", "mse")
    rng = np.random.default_rng(8)
    n = 8 * BATCH
    x = tf.ragged.constant([list(rng.integers(1, 20, int(rng.integers(2, 7)))) for _ in range(n)])
    return _fit(model, x, rng.random((n, 3), dtype="float32"))


def sparse_input():
    """A sparse multi-hot input (keras.Input(sparse=True)) into Dense layers."""
    keras, L = _keras()
    import tensorflow as tf

    inp = keras.Input((30,), sparse=True)
    h = L.Dense(8, activation="relu", name="sparse_dense")(inp)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="sparse")
    model.compile("adam", "mse")
    rng = np.random.default_rng(9)
    n = 8 * BATCH
    dense = (rng.random((n, 30)) < 0.1).astype("float32")
    x = tf.sparse.from_dense(dense)
    return _fit(model, x, rng.random((n, 3), dtype="float32"))


def callbacks_between():
    """EarlyStopping, ReduceLROnPlateau, a LearningRateScheduler and a CSVLogger-like
    callback acting between the profiled steps, over two short epochs."""
    keras, L = _keras()

    class Log(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.last = {k: float(v) for k, v in (logs or {}).items()}

    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="called_back")
    model.compile(keras.optimizers.SGD(0.01), "mse", metrics=["mae"])
    x, y = _data((10,), n=3 * BATCH)
    cbs = [
        keras.callbacks.EarlyStopping(monitor="loss", patience=5),
        keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=1),
        keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.9),
        Log(),
    ]
    return _fit(model, x, y, fit_kw={"epochs": 2, "callbacks_extra": cbs})


def validation_split_freq():
    """validation_split with validation_freq=1 over two epochs of three steps: the
    evaluation of epoch 1 falls between the profiled batches."""
    keras, L = _keras()
    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    h = L.BatchNormalization(name="bn")(h)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="split_val")
    model.compile("adam", "mse", metrics=["mae"])
    x, y = _data((10,), n=4 * BATCH)
    return _fit(model, x, y, fit_kw={"epochs": 2, "validation_split": 0.25})


def model_in_layer():
    """A custom layer that holds a whole Functional model and calls it on two halves of
    its input, adding the results."""
    keras, L = _keras()
    i = keras.Input((5,))
    inner = keras.Model(i, L.Dense(6, activation="relu", name="inner_dense")(i), name="inner")

    class Halves(L.Layer):
        def __init__(self, model, **kw):
            super().__init__(**kw)
            self.model = model

        def call(self, x):
            return self.model(x[:, :5]) + self.model(x[:, 5:])

    inp = keras.Input((10,))
    h = Halves(inner, name="halves")(inp)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="holder")
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def same_names_in_submodels():
    """Two sub-models whose layers have the same names (`dense`, `norm`), one after the
    other in the outer model."""
    keras, L = _keras()

    def sub(name, width):
        i = keras.Input((width,))
        h = L.LayerNormalization(name="norm")(L.Dense(8, name="dense")(i))
        return keras.Model(i, h, name=name)

    inp = keras.Input((10,))
    h = sub("first", 10)(inp)
    h = sub("second", 8)(h)
    model = keras.Model(inp, L.Dense(3, name="dense")(h), name="same_names")
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def adapted_preprocessing():
    """Normalization adapted to the data, Rescaling and CenterCrop on an image input."""
    keras, L = _keras()
    x, y = _data((10, 10, 3))
    norm = L.Normalization(name="norm")
    norm.adapt(x)
    inp = keras.Input((10, 10, 3))
    h = L.CenterCrop(8, 8, name="crop")(L.Rescaling(2.0, offset=-1.0, name="rescale")(norm(inp)))
    h = L.Conv2D(4, 3, activation="relu", name="conv")(h)
    model = keras.Model(
        inp, L.Dense(3, name="out")(L.GlobalAveragePooling2D(name="gap")(h)), name="adapted"
    )
    model.compile("adam", "mse")
    return _fit(model, x, y)
