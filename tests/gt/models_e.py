"""A third held-out set: more structures none of the other sets has, recorded only on
request (`python -m tests.gt record OUTDIR --set heldout_c`). Written, like models_d.py,
after the rules it checks were fixed.

Same builder contract as models.py.
"""

from __future__ import annotations

import numpy as np

from .models import BATCH, _data, _fit, _keras


def vae_add_loss():
    """A VAE: a sampling layer adds its KL term with add_loss, no compiled loss on the
    latent path, reconstruction loss on the output."""
    keras, L = _keras()
    ops = keras.ops

    class Sampling(keras.layers.Layer):
        def call(self, inputs):
            mean, log_var = inputs
            kl = -0.5 * ops.mean(1 + log_var - ops.square(mean) - ops.exp(log_var))
            self.add_loss(kl)
            eps = keras.random.normal(ops.shape(mean), seed=3)
            return mean + ops.exp(0.5 * log_var) * eps

    inp = keras.Input((12,))
    h = L.Dense(16, activation="relu", name="enc")(inp)
    z = Sampling(name="sample")([L.Dense(4, name="z_mean")(h), L.Dense(4, name="z_log_var")(h)])
    out = L.Dense(12, activation="sigmoid", name="dec")(
        L.Dense(16, activation="relu", name="dec_h")(z)
    )
    model = keras.Model(inp, out, name="vae")
    model.compile("adam", "binary_crossentropy")
    x, _ = _data((12,))
    return _fit(model, x, x.copy())


def gan_two_optimizers():
    """A GAN-style custom train_step: two sub-models, two optimizers, two tapes."""
    keras, L = _keras()
    import tensorflow as tf

    gen = keras.Sequential(
        [keras.Input((4,)), L.Dense(8, activation="relu", name="g_h"), L.Dense(6, name="g_out")],
        name="generator",
    )
    disc = keras.Sequential(
        [keras.Input((6,)), L.Dense(8, activation="relu", name="d_h"), L.Dense(1, name="d_out")],
        name="discriminator",
    )

    class GAN(keras.Model):
        def __init__(self):
            super().__init__(name="gan")
            self.gen, self.disc = gen, disc
            self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
            self.g_opt = keras.optimizers.Adam(1e-3)
            self.d_opt = keras.optimizers.SGD(1e-2)

        def call(self, z):
            return self.disc(self.gen(z))

        def train_step(self, data):
            real, _ = data
            z = tf.random.normal((tf.shape(real)[0], 4), seed=1)
            with tf.GradientTape() as d_tape:
                fake = self.gen(z, training=True)
                d_real, d_fake = self.disc(real, training=True), self.disc(fake, training=True)
                d_loss = self.bce(tf.ones_like(d_real), d_real) + self.bce(
                    tf.zeros_like(d_fake), d_fake
                )
            self.d_opt.apply(
                d_tape.gradient(d_loss, self.disc.trainable_variables),
                self.disc.trainable_variables,
            )
            with tf.GradientTape() as g_tape:
                g_loss = self.bce(
                    tf.ones_like(d_fake), self.disc(self.gen(z, training=True), training=True)
                )
            self.g_opt.apply(
                g_tape.gradient(g_loss, self.gen.trainable_variables), self.gen.trainable_variables
            )
            return {"d_loss": d_loss, "g_loss": g_loss}

    model = GAN()
    model.build((None, 4))
    model.g_opt.build(gen.trainable_variables)
    model.d_opt.build(disc.trainable_variables)
    model.compile()
    x, y = _data((6,))
    return _fit(model, x, y)


def string_lookup():
    """StringLookup and an Embedding over string tokens inside the model."""
    keras, L = _keras()
    vocab = ["red", "green", "blue", "cyan", "pink"]
    rng = np.random.default_rng(11)
    n = 8 * BATCH
    import tensorflow as tf

    # A tf string tensor: Keras's numpy adapter takes no str arrays.
    x = tf.constant([[vocab[i] for i in row] for row in rng.integers(0, 5, (n, 3))])
    inp = keras.Input((3,), dtype="string")
    ids = L.StringLookup(vocabulary=vocab, name="lookup")(inp)
    h = L.Flatten(name="flat")(L.Embedding(7, 4, name="color_emb")(ids))
    out = L.Dense(2, activation="softmax", name="cls")(h)
    model = keras.Model(inp, out, name="colors")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return _fit(model, x, rng.integers(0, 2, n))


def seq2seq_states():
    """An LSTM encoder's states as a GRU-free LSTM decoder's initial state (teacher forcing)."""
    keras, L = _keras()
    enc_in, dec_in = keras.Input((6, 3), name="src"), keras.Input((5, 3), name="tgt_in")
    _, h, c = L.LSTM(8, return_state=True, name="encoder")(enc_in)
    seq = L.LSTM(8, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    out = L.TimeDistributed(L.Dense(3), name="proj")(seq)
    model = keras.Model([enc_in, dec_in], out, name="seq2seq")
    model.compile("adam", "mse")
    rng = np.random.default_rng(12)
    n = 8 * BATCH
    x = [rng.random((n, 6, 3), dtype="float32"), rng.random((n, 5, 3), dtype="float32")]
    return _fit(model, x, rng.random((n, 5, 3), dtype="float32"))


def masking_gru():
    """Masking over padded float sequences into a GRU, then a dense head."""
    keras, L = _keras()
    x, y = _data((7, 4))
    x[:, 5:, :] = 0.0
    model = keras.Sequential(
        [
            keras.Input((7, 4)),
            L.Masking(0.0, name="mask"),
            L.GRU(6, name="gru"),
            L.Dense(3, name="out"),
        ],
        name="masked",
    )
    model.compile("adam", "mse")
    return _fit(model, x, y)


def merges_dot():
    """Dot, Subtract, Average, Maximum and Minimum merge layers between two branches."""
    keras, L = _keras()
    a_in, b_in = keras.Input((8,), name="a"), keras.Input((8,), name="b")
    a = L.Dense(8, name="fa")(a_in)
    b = L.Dense(8, name="fb")(b_in)
    dot = L.Dot(axes=1, normalize=True, name="cos")([a, b])
    mix = L.Concatenate(name="mix")(
        [
            L.Subtract(name="diff")([a, b]),
            L.Average(name="avg")([a, b]),
            L.Maximum(name="hi")([a, b]),
            L.Minimum(name="lo")([a, b]),
            dot,
        ]
    )
    out = L.Dense(3, name="head")(mix)
    model = keras.Model([a_in, b_in], out, name="merges")
    model.compile("adam", "mse")
    x, y = _data((8,))
    return _fit(model, [x, x[::-1].copy()], y)


def constraints_pool():
    """Kernel constraints (applied after each update), 1D pooling variants, Conv1DTranspose."""
    keras, L = _keras()
    c = keras.constraints
    inp = keras.Input((16, 3))
    h = L.Conv1D(6, 3, padding="same", kernel_constraint=c.MaxNorm(2.0), name="c1")(inp)
    h = L.MaxPooling1D(2, name="mp")(h)
    h = L.Conv1DTranspose(4, 3, strides=2, padding="same", kernel_constraint=c.NonNeg(), name="up")(
        h
    )
    h = L.AveragePooling1D(2, name="ap")(h)
    out = L.Dense(3, kernel_constraint=c.UnitNorm(), name="out")(
        L.GlobalMaxPooling1D(name="gmp")(h)
    )
    model = keras.Model(inp, out, name="constrained")
    model.compile("sgd", "mse")
    return _fit(model, *_data((16, 3)))


def resize_crop():
    """Image preprocessing inside the model on uint8 input: Resizing, CenterCrop,
    Rescaling, then a small conv net."""
    keras, L = _keras()
    rng = np.random.default_rng(13)
    n = 8 * BATCH
    x = rng.integers(0, 255, (n, 20, 20, 3)).astype("uint8")
    inp = keras.Input((20, 20, 3), dtype="uint8")
    h = L.Resizing(16, 16, name="resize")(inp)
    h = L.CenterCrop(12, 12, name="crop")(h)
    h = L.Rescaling(1.0 / 255, name="scale")(h)
    h = L.Conv2D(6, 3, activation="relu", name="conv")(h)
    out = L.Dense(3, name="head")(L.GlobalAveragePooling2D(name="gap")(h))
    model = keras.Model(inp, out, name="preproc")
    model.compile("adam", "sparse_categorical_crossentropy")
    return _fit(model, x, rng.integers(0, 3, n))


def grouped_dilated():
    """Grouped and dilated Conv2D, AveragePooling2D, GlobalMaxPooling2D."""
    keras, L = _keras()
    inp = keras.Input((12, 12, 4))
    h = L.Conv2D(8, 3, groups=2, padding="same", activation="relu", name="grouped")(inp)
    h = L.Conv2D(8, 3, dilation_rate=2, padding="same", name="dilated")(h)
    h = L.AveragePooling2D(2, name="avgpool")(h)
    out = L.Dense(3, name="head")(L.GlobalMaxPooling2D(name="gmax")(h))
    model = keras.Model(inp, out, name="grouped")
    model.compile("adam", "mse")
    return _fit(model, *_data((12, 12, 4)))


def ops_in_functional():
    """keras.ops called on symbolic tensors between layers (Operation nodes, no Layer)."""
    keras, L = _keras()
    ops = keras.ops
    inp = keras.Input((10,))
    a = L.Dense(12, name="left")(inp)
    b = L.Dense(12, name="right")(inp)
    h = ops.tanh(a) * ops.sigmoid(b) + ops.mean(a, axis=-1, keepdims=True)
    h = ops.concatenate([h, ops.square(b)], axis=-1)
    out = L.Dense(3, name="head")(h)
    model = keras.Model(inp, out, name="opsy")
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def nested_three():
    """A Sequential inside a Functional inside a subclassed model (three model levels)."""
    keras, L = _keras()
    inner = keras.Sequential(
        [keras.Input((8,)), L.Dense(8, activation="relu", name="in_a"), L.Dense(8, name="in_b")],
        name="inner",
    )
    mid_in = keras.Input((8,))
    mid = keras.Model(
        mid_in, L.LayerNormalization(name="mid_norm")(inner(mid_in) + mid_in), name="mid"
    )

    class Outer(keras.Model):
        def __init__(self):
            super().__init__(name="outer")
            self.stem = L.Dense(8, name="stem")
            self.mid = mid
            self.head = L.Dense(3, name="head")

        def call(self, x):
            return self.head(self.mid(self.stem(x)))

    model = Outer()
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def bf16_layers():
    """Per-layer dtype policies: a mixed_bfloat16 block inside a float32 model."""
    keras, L = _keras()
    inp = keras.Input((10,))
    h = L.Dense(16, activation="relu", dtype="mixed_bfloat16", name="bf_a")(inp)
    h = L.Dense(16, activation="relu", dtype="mixed_bfloat16", name="bf_b")(h)
    out = L.Dense(3, dtype="float32", name="f32_head")(h)
    model = keras.Model(inp, out, name="bf16")
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))
