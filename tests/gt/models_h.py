"""A sixth held-out set: the callback's own edges (a custom step under MirroredStrategy,
several steps per execution with a custom step, an explicit loss-scale optimizer, a
BatchNorm-heavy model under mixed precision), recorded only on request (`python -m
tests.gt record OUTDIR --set heldout_f`).

Same builder contract as models.py.
"""

from __future__ import annotations

from .models import _data, _fit, _keras


def _custom_step_model(keras, L, name):
    import tensorflow as tf

    class Step(keras.Model):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                pred = self(x, training=True)
                loss = self.compute_loss(x=x, y=y, y_pred=pred)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            return self.compute_metrics(x, y, pred, sample_weight=None)

    inp = keras.Input((12,))
    h = L.Dense(16, activation="relu", name="hidden")(inp)
    return Step(inp, L.Dense(3, name="out")(h), name=name)


def mirrored_custom_step():
    """A custom train_step under MirroredStrategy over two logical CPUs."""
    keras, L = _keras()
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = _custom_step_model(keras, L, "mirrored_step")
        model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((12,), n=16 * 8))


def spe_custom_step():
    """steps_per_execution=2 with a custom train_step."""
    keras, L = _keras()
    model = _custom_step_model(keras, L, "spe_step")
    model.compile("sgd", "mse", metrics=["mae"], steps_per_execution=2)
    return _fit(model, *_data((12,), n=16 * 8), steps=12)


def loss_scale_explicit():
    """mixed_float16 with an explicitly wrapped LossScaleOptimizer and BatchNorm layers."""
    keras, L = _keras()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inp = keras.Input((8, 8, 3))
        h = L.Conv2D(8, 3, use_bias=False, name="conv")(inp)
        h = L.Activation("relu", name="relu")(L.BatchNormalization(name="bn")(h))
        h = L.GlobalAveragePooling2D(name="gap")(h)
        out = L.Dense(3, dtype="float32", name="head")(h)
        model = keras.Model(inp, out, name="scaled")
        opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3))
        model.compile(opt, "mse")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return _fit(model, *_data((8, 8, 3)))
