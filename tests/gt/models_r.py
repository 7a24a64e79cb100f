"""A fifteenth held-out set: optimizers with names of their own (a named Adam, a custom
Optimizer subclass), linear algebra in a layer, tf.map_fn over the batch, keras.ops in
Lambda layers, a custom Loss and a custom Metric with their own names, and a layer that
calls tf.vectorized_map, recorded only on request
(`python -m tests.gt record OUTDIR --set heldout_o`). Written before it was first scored.

Same builder contract as models.py.
"""

from __future__ import annotations

from .models import _data, _fit, _keras


def _mlp(keras, L, name):
    inp = keras.Input((10,))
    h = L.Dense(16, activation="relu", name="hidden")(inp)
    h = L.Dense(16, activation="relu", name="hidden2")(h)
    return keras.Model(inp, L.Dense(3, name="out")(h), name=name)


def named_optimizer():
    """An Adam given a name of its own (`fancy_adam`): its scope is that name."""
    keras, L = _keras()
    model = _mlp(keras, L, "named_opt")
    model.compile(keras.optimizers.Adam(1e-3, name="fancy_adam"), "mse", metrics=["mae"])
    return _fit(model, *_data((10,)))


def custom_optimizer():
    """A keras.optimizers.Optimizer subclass (sign descent with momentum), its own
    update_step and variables."""
    keras, L = _keras()
    ops = keras.ops

    class SignMomentum(keras.optimizers.Optimizer):
        def __init__(self, learning_rate=1e-3, beta=0.9, name="sign_momentum", **kw):
            super().__init__(learning_rate=learning_rate, name=name, **kw)
            self.beta = beta

        def build(self, variables):
            if self.built:
                return
            super().build(variables)
            self.moms = [self.add_variable_from_reference(v, "mom") for v in variables]

        def update_step(self, gradient, variable, learning_rate):
            m = self.moms[self._get_variable_index(variable)]
            self.assign(m, self.beta * m + (1.0 - self.beta) * gradient)
            self.assign_sub(variable, ops.cast(learning_rate, variable.dtype) * ops.sign(m))

    model = _mlp(keras, L, "custom_opt")
    model.compile(SignMomentum(), "mse", metrics=["mae"])
    return _fit(model, *_data((10,)))


def linalg_layer():
    """A layer that solves a small regularised least-squares problem per batch (Gram
    matrix, Cholesky factor, triangular solves): linear algebra kernels and their
    gradients inside a layer."""
    keras, L = _keras()
    import tensorflow as tf

    class Ridge(L.Layer):
        def call(self, x):
            gram = tf.matmul(x, x, transpose_a=True) + 0.1 * tf.eye(tf.shape(x)[-1])
            chol = tf.linalg.cholesky(gram)
            rhs = tf.matmul(x, x[:, :4], transpose_a=True)
            coef = tf.linalg.cholesky_solve(chol, rhs)
            return tf.matmul(x, coef)

    inp = keras.Input((10,))
    h = L.Dense(8, activation="tanh", name="proj")(inp)
    h = Ridge(name="ridge")(h)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="linalg")
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def _mapped_model(mapper, layer_name: str, model_name: str):
    """A model whose one layer maps a Dense sublayer (`inner`) over the batch's rows with
    `mapper(fn, x)` (tf.map_fn, tf.vectorized_map)."""
    keras, L = _keras()

    class PerRow(L.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.inner = L.Dense(6, activation="relu", name="inner")

        def build(self, shape):
            self.inner.build((1, shape[-1]))

        def call(self, x):
            return mapper(lambda row: self.inner(row[None, :])[0], x)

    inp = keras.Input((10,))
    h = PerRow(name=layer_name)(inp)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name=model_name)
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def map_fn_layer():
    """A layer that runs tf.map_fn over the batch (a while loop of TensorArrays) with a
    Dense sublayer called inside the mapped function."""
    import tensorflow as tf

    return _mapped_model(tf.map_fn, "per_sample", "mapped")


def keras_ops_lambda():
    """Lambda layers made of keras.ops only: top_k, one_hot, where, einsum, cumsum."""
    keras, L = _keras()
    ops = keras.ops

    def topk_mask(x):
        vals, _ = ops.top_k(x, 4)
        return ops.where(x >= vals[:, -1:], x, ops.zeros_like(x))

    def mixer(x):
        w = ops.softmax(ops.einsum("bi,bj->bij", x, x), axis=-1)
        return ops.cumsum(ops.einsum("bij,bj->bi", w, x), axis=-1)

    inp = keras.Input((12,))
    h = L.Dense(12, name="pre")(inp)
    h = L.Lambda(topk_mask, name="topk_mask")(h)
    h = L.Lambda(mixer, name="mixer")(h)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="ops_lambda")
    model.compile("adam", "mse")
    return _fit(model, *_data((12,)))


def custom_loss_and_metric():
    """A keras.losses.Loss subclass and a keras.metrics.Metric subclass, each with a name
    of its own, the metric keeping two variables of its own."""
    keras, L = _keras()
    ops = keras.ops

    class LogCosh(keras.losses.Loss):
        def __init__(self):
            super().__init__(name="my_log_cosh")

        def call(self, y_true, y_pred):
            d = y_pred - y_true
            return ops.mean(d + ops.softplus(-2.0 * d) - ops.log(2.0), axis=-1)

    class WithinTolerance(keras.metrics.Metric):
        def __init__(self, tol=0.25):
            super().__init__(name="within_tol")
            self.tol = tol
            self.hits = self.add_variable((), initializer="zeros", name="hits")
            self.seen = self.add_variable((), initializer="zeros", name="seen")

        def update_state(self, y_true, y_pred, sample_weight=None):
            ok = ops.cast(ops.abs(y_true - y_pred) <= self.tol, "float32")
            self.hits.assign_add(ops.sum(ok))
            self.seen.assign_add(ops.cast(ops.size(ok), "float32"))

        def result(self):
            return self.hits / ops.maximum(self.seen, 1.0)

    model = _mlp(keras, L, "own_loss_metric")
    model.compile("adam", LogCosh(), metrics=[WithinTolerance()])
    return _fit(model, *_data((10,)))


def vmap_layer():
    """A layer whose call maps a per-example function with tf.vectorized_map (pfor),
    a Dense sublayer applied inside it."""
    import tensorflow as tf

    return _mapped_model(tf.vectorized_map, "vmapped", "vmap")


def sgd_nesterov_named_metrics():
    """SGD with Nesterov momentum and named built-in metrics (`rmse`, `r2`)."""
    keras, L = _keras()
    model = _mlp(keras, L, "sgd_named")
    model.compile(
        keras.optimizers.SGD(1e-2, momentum=0.9, nesterov=True),
        "mse",
        metrics=[
            keras.metrics.RootMeanSquaredError(name="rmse"),
            keras.metrics.R2Score(name="r2"),
        ],
    )
    return _fit(model, *_data((10,)))
