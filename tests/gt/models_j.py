"""An eighth held-out set: one tensor read by five layers, a user custom gradient,
grouped-query attention in a block called twice, an LSTM under mixed precision,
Bidirectional GRU states, 1-D depthwise and separable convolutions, stochastic depth
with a seed generator, a Lambda around tf.signal, masked pooling of embeddings, and
RepeatVector/Permute into an LSTM decoder, recorded only on request (`python -m tests.gt
record OUTDIR --set heldout_h`). Written before it was first scored.

Same builder contract as models.py.
"""

from __future__ import annotations

import numpy as np

from .models import BATCH, _data, _fit, _keras


def fanout_five():
    """One hidden tensor read by five Dense heads, summed back together."""
    keras, L = _keras()
    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="trunk")(inp)
    heads = [L.Dense(4, name=f"head_{i}")(h) for i in range(5)]
    out = L.Dense(3, name="out")(L.Add(name="sum")(heads))
    model = keras.Model(inp, out, name="fanout")
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def custom_gradient_layer():
    """A layer whose call uses keras.ops.custom_gradient (a clipped straight-through)."""
    keras, L = _keras()
    ops = keras.ops

    @ops.custom_gradient
    def clip_through(x):
        def grad(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            return ops.clip(upstream, -1.0, 1.0)

        return ops.round(x * 4.0) / 4.0, grad

    class Quantize(L.Layer):
        def call(self, x):
            return clip_through(x)

    inp = keras.Input((10,))
    h = L.Dense(12, activation="relu", name="pre")(inp)
    h = Quantize(name="quantize")(h)
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="custom_grad")
    model.compile("adam", "mse")
    return _fit(model, *_data((10,)))


def gqa_decoder():
    """A decoder block with GroupQueryAttention (causal mask) called twice (shared
    weights), in a subclassed model."""
    keras, L = _keras()

    class Block(L.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.attn = L.GroupQueryAttention(8, 4, 2, name="gqa")
            self.norm = L.LayerNormalization(name="norm")
            self.ffn = L.Dense(16, activation="gelu", name="ffn")

        def call(self, x):
            x = self.norm(x + self.attn(x, x, use_causal_mask=True))
            return x + self.ffn(x)

    class Decoder(keras.Model):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.proj = L.Dense(16, name="proj")
            self.block = Block(name="block")
            self.head = L.Dense(5, name="head")

        def call(self, x):
            h = self.proj(x)
            h = self.block(self.block(h))
            return self.head(h)

    model = Decoder(name="gqa_dec")
    model.compile("adam", "mse")
    rng = np.random.default_rng(31)
    n = 8 * BATCH
    x = rng.normal(size=(n, 6, 7)).astype("float32")
    return _fit(model, x, rng.normal(size=(n, 6, 5)).astype("float32"))


def mixed_lstm():
    """An LSTM and Dense layers under mixed_float16, a float32 head."""
    keras, L = _keras()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inp = keras.Input((6, 5))
        h = L.LSTM(8, name="lstm")(inp)
        h = L.Dense(8, activation="relu", name="mid")(h)
        model = keras.Model(inp, L.Dense(3, dtype="float32", name="head")(h), name="mixed_lstm")
        model.compile("adam", "mse")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return _fit(model, *_data((6, 5)))


def bidi_states():
    """Bidirectional GRU returning both directions' states (merge_mode=None), concatenated."""
    keras, L = _keras()
    inp = keras.Input((7, 4))
    fwd, bwd, h_f, h_b = L.Bidirectional(
        L.GRU(6, return_sequences=True, return_state=True), merge_mode=None, name="bigru"
    )(inp)
    pooled = L.GlobalAveragePooling1D(name="pool")(L.Add(name="merge")([fwd, bwd]))
    h = L.Concatenate(name="cat")([pooled, h_f, h_b])
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="bidi_states")
    model.compile("adam", "mse")
    return _fit(model, *_data((7, 4)))


def depthwise_1d():
    """DepthwiseConv1D and SeparableConv1D with a depth multiplier, then pooling."""
    keras, L = _keras()
    inp = keras.Input((16, 4))
    h = L.DepthwiseConv1D(3, depth_multiplier=2, activation="relu", name="dw")(inp)
    h = L.SeparableConv1D(6, 3, padding="same", activation="relu", name="sep")(h)
    h = L.AveragePooling1D(2, name="avg")(h)
    out = L.Dense(3, name="out")(L.Flatten(name="flat")(h))
    model = keras.Model(inp, out, name="dw1d")
    model.compile("adam", "mse")
    return _fit(model, *_data((16, 4)))


def droppath_blocks():
    """Residual blocks with stochastic depth: a layer drawing from its own SeedGenerator."""
    keras, L = _keras()
    ops = keras.ops

    class DropPath(L.Layer):
        def __init__(self, rate, **kw):
            super().__init__(**kw)
            self.rate = rate
            self.seed = keras.random.SeedGenerator(7)

        def call(self, x, training=False):
            if not training:
                return x
            keep = keras.random.uniform((ops.shape(x)[0], 1), seed=self.seed) >= self.rate
            return x * ops.cast(keep, x.dtype) / (1.0 - self.rate)

    inp = keras.Input((12,))
    h = L.Dense(16, name="stem")(inp)
    for i in range(2):
        f = L.Dense(16, activation="relu", name=f"f_{i}")(h)
        h = L.Add(name=f"res_{i}")([h, DropPath(0.2, name=f"drop_{i}")(f)])
    model = keras.Model(inp, L.Dense(3, name="out")(h), name="droppath")
    model.compile("adam", "mse")
    return _fit(model, *_data((12,)))


def stft_lambda():
    """A Lambda computing a magnitude spectrogram with tf.signal.stft, then Conv1D."""
    keras, L = _keras()
    import tensorflow as tf

    inp = keras.Input((64,))
    spec = L.Lambda(
        lambda x: tf.abs(tf.signal.stft(x, frame_length=16, frame_step=8)), name="stft"
    )(inp)
    h = L.Conv1D(4, 3, activation="relu", name="conv")(spec)
    out = L.Dense(3, name="out")(L.GlobalAveragePooling1D(name="pool")(h))
    model = keras.Model(inp, out, name="stft_model")
    model.compile("adam", "mse")
    return _fit(model, *_data((64,)))


def masked_pooling():
    """Embedding with mask_zero into masked GlobalAveragePooling1D and a Dense head."""
    keras, L = _keras()
    rng = np.random.default_rng(32)
    n, seq = 8 * BATCH, 9
    ids = rng.integers(1, 40, (n, seq))
    ids[:, 6:] = 0
    inp = keras.Input((seq,), dtype="int32")
    h = L.Embedding(40, 8, mask_zero=True, name="emb")(inp)
    h = L.GlobalAveragePooling1D(name="masked_pool")(h)
    model = keras.Model(inp, L.Dense(2, name="out")(h), name="masked_pool_model")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return _fit(model, ids, rng.integers(0, 2, n))


def repeat_permute():
    """An encoder vector repeated over time (RepeatVector), permuted and reshaped, decoded
    by an LSTM with a TimeDistributed head."""
    keras, L = _keras()
    inp = keras.Input((10,))
    h = L.Dense(8, activation="relu", name="enc")(inp)
    h = L.RepeatVector(5, name="repeat")(h)
    h = L.Permute((2, 1), name="permute")(h)
    h = L.Reshape((5, 8), name="reshape")(h)
    h = L.LSTM(6, return_sequences=True, name="dec")(h)
    out = L.TimeDistributed(L.Dense(2), name="td_head")(h)
    model = keras.Model(inp, out, name="repeat_decoder")
    model.compile("adam", "mse")
    rng = np.random.default_rng(33)
    x = rng.normal(size=(8 * BATCH, 10)).astype("float32")
    return _fit(model, x, rng.normal(size=(8 * BATCH, 5, 2)).astype("float32"))
