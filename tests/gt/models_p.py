"""A thirteenth held-out set: a train_step that calls super() and adds its own work, a
custom test_step under validation, an output without a loss, weighted metrics with
sample weights, TimeDistributed(Bidirectional(LSTM)), learned and parametric activations,
steps_per_execution with validation, and a model fitted twice (profiled in the second
fit), recorded only on request (`python -m tests.gt record OUTDIR --set heldout_m`).
Written before it was first scored.

Same builder contract as models.py.
"""

from __future__ import annotations

import numpy as np

from .models import BATCH, _data, _fit, _keras


def super_train_step():
    """A subclassed model whose train_step calls super().train_step and then updates its
    own tracker of the batch's mean prediction."""
    keras, L = _keras()

    class Tracked(keras.Model):
        def __init__(self):
            super().__init__(name="tracked")
            self.hidden = L.Dense(12, activation="relu", name="hidden")
            self.out = L.Dense(3, name="out")
            self.pred_mean = keras.metrics.Mean(name="pred_mean")

        def call(self, x):
            return self.out(self.hidden(x))

        def train_step(self, data):
            logs = super().train_step(data)
            x, _ = data
            self.pred_mean.update_state(keras.ops.mean(self(x, training=False)))
            return {**logs, "pred_mean": self.pred_mean.result()}

    model = Tracked()
    model.compile("adam", "mse")
    x, y = _data((10,))
    model(x[:1])
    return _fit(model, x, y)


def custom_test_step():
    """A custom test_step (its own loss arithmetic and a tracker) run on validation data
    between the profiled training batches."""
    keras, L = _keras()

    class Checked(keras.Model):
        def __init__(self):
            super().__init__(name="checked")
            self.hidden = L.Dense(12, activation="relu", name="hidden")
            self.out = L.Dense(3, name="out")
            self.val_err = keras.metrics.Mean(name="err")

        def call(self, x):
            return self.out(self.hidden(x))

        def test_step(self, data):
            x, y = data
            err = keras.ops.mean(keras.ops.abs(self(x, training=False) - y))
            self.val_err.update_state(err)
            return {"err": self.val_err.result()}

    model = Checked()
    model.compile("adam", "mse")
    x, y = _data((10,), n=3 * BATCH)
    vx, vy = _data((10,), n=2 * BATCH, seed=4)
    model(x[:1])
    return _fit(model, x, y, fit_kw={"validation_data": (vx, vy), "epochs": 2})


def output_without_loss():
    """Two outputs, one trained (mse) and one only monitored (loss None, a metric)."""
    keras, L = _keras()
    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    main = L.Dense(3, name="main")(h)
    aux = L.Dense(2, name="aux")(h)
    model = keras.Model(inp, {"main": main, "aux": aux}, name="partly_trained")
    model.compile("adam", loss={"main": "mse", "aux": None}, metrics={"aux": ["mae"]})
    x, y = _data((10,))
    rng = np.random.default_rng(11)
    return _fit(model, x, {"main": y, "aux": rng.random((len(x), 2), dtype="float32")})


def weighted_metrics_sw():
    """weighted_metrics beside plain metrics, trained with per-sample weights."""
    keras, L = _keras()
    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, L.Dense(4, activation="softmax", name="probs")(h), name="weighted")
    model.compile(
        "adam",
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
        weighted_metrics=[
            "accuracy",
            keras.metrics.SparseTopKCategoricalAccuracy(k=2, name="top2"),
        ],
    )
    x, y = _data((10,), 4, classes=True)
    sw = np.random.default_rng(12).random(len(x)).astype("float32")
    return _fit(model, x, y, fit_kw={"sample_weight": sw})


def td_bidi_lstm():
    """TimeDistributed(Bidirectional(LSTM)) over sequences of sequences."""
    keras, L = _keras()
    inp = keras.Input((3, 5, 4))
    h = L.TimeDistributed(L.Bidirectional(L.LSTM(4), name="bidi"), name="td")(inp)
    out = L.Dense(3, name="out")(L.Flatten(name="flat")(h))
    model = keras.Model(inp, out, name="nested_rnn")
    model.compile("adam", "mse")
    return _fit(model, *_data((3, 5, 4)))


def activation_zoo():
    """PReLU, LeakyReLU, ELU, an Activation("swish") and Softmax over an axis."""
    keras, L = _keras()
    inp = keras.Input((6, 8))
    h = L.PReLU(name="prelu")(L.Dense(8, name="d1")(inp))
    h = L.LeakyReLU(0.2, name="leaky")(L.Dense(8, name="d2")(h))
    h = L.ELU(name="elu")(L.Dense(8, name="d3")(h))
    h = L.Activation("swish", name="swish")(L.Dense(8, name="d4")(h))
    h = L.Softmax(axis=1, name="soft_time")(h)
    out = L.Dense(3, name="out")(L.GlobalAveragePooling1D(name="pool")(h))
    model = keras.Model(inp, out, name="activations")
    model.compile("adam", "mse")
    return _fit(model, *_data((6, 8)))


def spe_with_validation():
    """steps_per_execution=2 and validation data: the loop runs two steps per call and the
    evaluation its own loop."""
    keras, L = _keras()
    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="spe_val")
    model.compile("adam", "mse", metrics=["mae"], steps_per_execution=2)
    x, y = _data((10,), n=4 * BATCH)
    vx, vy = _data((10,), n=2 * BATCH, seed=5)
    return _fit(model, x, y, fit_kw={"validation_data": (vx, vy), "epochs": 2})


def fitted_twice():
    """A model fitted once before the profiled fit (the train function traced and run
    before, its optimizer's variables already made), then recompiled with a new optimizer
    after unfreezing a layer, as in fine-tuning."""
    keras, L = _keras()
    inp = keras.Input((10,))
    base = L.Dense(12, activation="relu", name="base")
    h = base(inp)
    model = keras.Model(inp, L.Dense(3, name="head")(h), name="finetuned")
    base.trainable = False
    model.compile("adam", "mse")
    x, y = _data((10,))
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    base.trainable = True
    model.compile(keras.optimizers.Adam(1e-4), "mse", metrics=["mae"])
    return _fit(model, x, y)
