"""An eleventh held-out set: custom training loops (a GradientTape step in a tf.function,
with and without step markers; train_on_batch; two models and two optimizers in one
step), a layer calling another layer's sublayer, a variable outside every layer, causal
attention returning its scores, and layers named like op types or with dots and dashes,
recorded only on request (`python -m tests.gt record OUTDIR --set heldout_k`). Written
before it was first scored.

Same builder contract as models.py, plus "loop": a callable (run_dir, (first, last)) that
trains without model.fit and profiles batches first..last itself (stock mode only).
"""

from __future__ import annotations

from .models import BATCH, _data, _fit, _keras


def _small_model(keras, L, name):
    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="hidden")(inp)
    h = L.Dropout(0.1, name="drop")(h)
    return keras.Model(inp, L.Dense(3, name="out")(h), name=name)


def _batches(x, y):
    for i in range(len(x) // BATCH):
        yield x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]


def _loop(batches, step_fn, marked: bool):
    """A spec's "loop": step_fn on each batch, the profiler on around batches first..last,
    each step in a `Trace("train", step_num=...)` when marked."""
    import tensorflow as tf

    def loop(run_dir, profiled):
        first, last = profiled
        for step, batch in enumerate(batches()):
            if step == first:
                tf.profiler.experimental.start(run_dir)
            if marked:
                with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
                    step_fn(*batch)
            else:
                step_fn(*batch)
            if step == last:
                tf.profiler.experimental.stop()

    return loop


def _tape_loop(marked: bool):
    keras, L = _keras()
    import tensorflow as tf

    model = _small_model(keras, L, "tape_model")
    opt = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.MeanSquaredError()
    x, y = _data((10,))

    @tf.function
    def train_step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return {"model": model, "loop": _loop(lambda: _batches(x, y), train_step, marked)}


def tape_loop_marked():
    """A custom loop: a GradientTape step in a tf.function, each batch in a
    `tf.profiler.experimental.Trace("train", step_num=...)`."""
    return _tape_loop(marked=True)


def tape_loop_bare():
    """The same loop with no step markers: steps come from TF's step ids alone."""
    return _tape_loop(marked=False)


def train_on_batch_loop():
    """A compiled model trained with train_on_batch in a Python loop, metrics included."""
    keras, L = _keras()

    model = _small_model(keras, L, "tob_model")
    model.compile("adam", "mse", metrics=["mae"])
    x, y = _data((10,))

    return {"model": model, "loop": _loop(lambda: _batches(x, y), model.train_on_batch, False)}


def two_models_one_step():
    """An encoder and a decoder with their own optimizers, both updated in one tf.function
    step of a custom loop (a reconstruction loss and a latent penalty)."""
    keras, L = _keras()
    import tensorflow as tf

    inp = keras.Input((10,))
    enc = keras.Model(
        inp, L.Dense(4, activation="tanh", name="code")(L.Dense(8, name="e1")(inp)), name="encoder"
    )
    zin = keras.Input((4,))
    dec = keras.Model(
        zin,
        L.Dense(10, name="recon")(L.Dense(8, activation="relu", name="d1")(zin)),
        name="decoder",
    )
    opt_e, opt_d = keras.optimizers.Adam(1e-3), keras.optimizers.SGD(1e-2)
    x, _ = _data((10,))

    @tf.function
    def train_step(xb):
        with tf.GradientTape(persistent=True) as tape:
            z = enc(xb, training=True)
            rec = tf.reduce_mean(tf.square(dec(z, training=True) - xb))
            loss = rec + 0.01 * tf.reduce_mean(tf.square(z))
        opt_e.apply_gradients(
            zip(tape.gradient(loss, enc.trainable_variables), enc.trainable_variables, strict=True)
        )
        opt_d.apply_gradients(
            zip(tape.gradient(rec, dec.trainable_variables), dec.trainable_variables, strict=True)
        )
        del tape
        return loss

    def batches():
        return ((xb,) for xb, _ in _batches(x, x))

    return {"model": enc, "loop": _loop(batches, train_step, True)}


def borrowed_sublayer():
    """A layer that calls another layer's sublayer (weights owned by the first block)."""
    keras, L = _keras()

    class Owner(L.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.proj = L.Dense(8, name="proj")

        def call(self, x):
            return keras.ops.relu(self.proj(x))

    class Borrower(L.Layer):
        def __init__(self, owner, **kw):
            super().__init__(**kw)
            self.owner = owner
            self.gate = L.Dense(8, activation="sigmoid", name="gate")

        def call(self, x):
            return self.owner.proj(x) * self.gate(x)

    inp = keras.Input((8,))
    owner = Owner(name="owner")
    h = owner(inp)
    h = Borrower(owner, name="borrower")(h)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="borrowing")
    model.compile("adam", "mse")
    return _fit(model, *_data((8,)))


def outside_variable():
    """A trainable keras.Variable made outside every layer, read by a custom layer's call
    through a closure (a global temperature)."""
    keras, L = _keras()
    temperature = keras.Variable(1.0, name="temperature")

    class Scaled(L.Layer):
        def call(self, x):
            return x / temperature

    inp = keras.Input((10,))
    h = L.Dense(6, name="logits")(inp)
    out = L.Softmax(name="probs")(Scaled(name="scaled")(h))
    model = keras.Model(inp, out, name="tempered")
    model.compile("adam", "categorical_crossentropy")
    x, y = _data((10,), 6)
    return _fit(model, x, y / y.sum(-1, keepdims=True))


def causal_scores():
    """Causal MultiHeadAttention returning its scores, which a Dense reads too."""
    keras, L = _keras()
    inp = keras.Input((6, 8))
    out, scores = L.MultiHeadAttention(2, 4, name="mha")(
        inp, inp, use_causal_mask=True, return_attention_scores=True
    )
    s = L.Flatten(name="scores_flat")(scores)
    h = L.Concatenate(name="cat")([L.Flatten(name="out_flat")(out), s])
    model = keras.Model(inp, L.Dense(3, name="head")(h), name="causal")
    model.compile("adam", "mse")
    return _fit(model, *_data((6, 8)))


def op_like_names():
    """Layers named like op types and with dots and dashes: `MatMul`, `Reshape`,
    `Softmax`, `conv.1`, `head-out`, and a Dense named `dense_1` beside an unnamed Dense."""
    keras, L = _keras()
    inp = keras.Input((6, 4))
    h = L.Conv1D(8, 3, padding="same", name="conv.1")(inp)
    h = L.Dense(8, name="MatMul")(h)
    h = L.Reshape((48,), name="Reshape")(h)
    h = L.Dense(8, name="dense_1")(h)
    h = L.Dense(8)(h)
    h = L.Dense(3, name="head-out")(h)
    model = keras.Model(inp, L.Softmax(name="Softmax")(h), name="op_named")
    model.compile("adam", "categorical_crossentropy")
    x, y = _data((6, 4))
    return _fit(model, x, y / y.sum(-1, keepdims=True))
