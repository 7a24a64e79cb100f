"""A fifth held-out set: whole architectures users train (a tiny BERT-style encoder with a
padding mask, a U-Net, VGG16, ResNet50, an attention decoder) and integer feature
preprocessing, recorded only on request (`python -m tests.gt record OUTDIR --set
heldout_e`). Written after the fixes the fourth set led to.

Same builder contract as models.py.
"""

from __future__ import annotations

import numpy as np

from .models import BATCH, _app, _data, _fit, _keras


def bert_tiny():
    """Token and position embeddings, two post-norm encoder blocks with a padding mask
    input, a pooled classifier head."""
    keras, L = _keras()
    ops = keras.ops
    rng = np.random.default_rng(16)
    n, seq = 8 * BATCH, 12
    ids = rng.integers(1, 50, (n, seq))
    ids[:, 9:] = 0
    tok_in = keras.Input((seq,), dtype="int32", name="token_ids")
    mask_in = keras.Input((seq,), dtype="int32", name="padding_mask")
    h = L.Embedding(50, 16, name="token_emb")(tok_in)
    pos = L.Embedding(seq, 16, name="pos_emb")(ops.arange(seq))
    h = L.Dropout(0.1, name="emb_drop")(L.LayerNormalization(name="emb_ln")(h + pos))
    attn_mask = L.Lambda(lambda m: ops.cast(m[:, None, :], "bool"), name="attn_mask")(mask_in)
    for i in range(2):
        a = L.MultiHeadAttention(2, 8, name=f"attn_{i}")(h, h, attention_mask=attn_mask)
        h = L.LayerNormalization(name=f"attn_ln_{i}")(h + L.Dropout(0.1, name=f"attn_drop_{i}")(a))
        f = L.Dense(16, name=f"ffn_out_{i}")(L.Dense(32, activation="gelu", name=f"ffn_in_{i}")(h))
        h = L.LayerNormalization(name=f"ffn_ln_{i}")(h + f)
    pooled = L.Dense(16, activation="tanh", name="pooler")(h[:, 0, :])
    out = L.Dense(2, name="logits")(pooled)
    model = keras.Model([tok_in, mask_in], out, name="bert_tiny")
    model.compile(
        keras.optimizers.AdamW(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return _fit(model, [ids, (ids > 0).astype("int32")], rng.integers(0, 2, n))


def unet_small():
    """A two-level U-Net: conv blocks down, Conv2DTranspose up, skip concatenations,
    per-pixel softmax."""
    keras, L = _keras()
    rng = np.random.default_rng(17)
    n = 8 * BATCH

    def block(x, f, name):
        x = L.Conv2D(f, 3, padding="same", activation="relu", name=f"{name}_a")(x)
        return L.Conv2D(f, 3, padding="same", activation="relu", name=f"{name}_b")(x)

    inp = keras.Input((16, 16, 1))
    d1 = block(inp, 4, "down1")
    d2 = block(L.MaxPooling2D(name="pool1")(d1), 8, "down2")
    mid = block(L.MaxPooling2D(name="pool2")(d2), 16, "mid")
    u2 = L.Conv2DTranspose(8, 2, strides=2, name="up2")(mid)
    u2 = block(L.Concatenate(name="skip2")([u2, d2]), 8, "dec2")
    u1 = L.Conv2DTranspose(4, 2, strides=2, name="up1")(u2)
    u1 = block(L.Concatenate(name="skip1")([u1, d1]), 4, "dec1")
    out = L.Conv2D(3, 1, activation="softmax", name="seg")(u1)
    model = keras.Model(inp, out, name="unet")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = rng.random((n, 16, 16, 1), dtype="float32")
    return _fit(model, x, rng.integers(0, 3, (n, 16, 16)))


def vgg16():
    keras, _ = _keras()
    return _app(keras.applications.VGG16)


def resnet50():
    keras, _ = _keras()
    return _app(keras.applications.ResNet50)


def integer_features():
    """Discretization, IntegerLookup and multi-hot CategoryEncoding of integer features
    inside the model, concatenated with a numeric input."""
    keras, L = _keras()
    rng = np.random.default_rng(18)
    n = 8 * BATCH
    age_in = keras.Input((1,), name="age")
    code_in = keras.Input((3,), dtype="int64", name="codes")
    age = L.Discretization(bin_boundaries=[0.25, 0.5, 0.75], name="age_bins")(age_in)
    age = L.CategoryEncoding(4, output_mode="one_hot", name="age_onehot")(age)
    codes = L.IntegerLookup(vocabulary=[3, 5, 7, 9], name="code_lookup")(code_in)
    codes = L.CategoryEncoding(5, output_mode="multi_hot", name="code_multi_hot")(codes)
    h = L.Dense(8, activation="relu", name="mix")(L.Concatenate(name="feats")([age, codes]))
    out = L.Dense(1, activation="sigmoid", name="risk")(h)
    model = keras.Model([age_in, code_in], out, name="tabular")
    model.compile("adam", "binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    x = [rng.random((n, 1), dtype="float32"), rng.choice([3, 5, 7, 9, 11], (n, 3))]
    return _fit(model, x, rng.integers(0, 2, (n, 1)).astype("float32"))


def attention_decoder():
    """A GRU encoder, a GRU decoder attending over the encoder's states (Luong-style
    Attention), TimeDistributed output, softmax with Softmax and Identity layers."""
    keras, L = _keras()
    rng = np.random.default_rng(19)
    n = 8 * BATCH
    src, tgt = keras.Input((7, 4), name="src"), keras.Input((5, 4), name="tgt")
    enc_seq, enc_state = L.GRU(8, return_sequences=True, return_state=True, name="enc")(src)
    dec_seq = L.GRU(8, return_sequences=True, name="dec")(tgt, initial_state=enc_state)
    ctx = L.Attention(name="luong")([dec_seq, enc_seq])
    h = L.Concatenate(name="ctx_cat")([dec_seq, ctx])
    logits = L.TimeDistributed(L.Dense(6), name="vocab")(h)
    out = L.Identity(name="ident")(L.Softmax(name="softmax")(logits))
    model = keras.Model([src, tgt], out, name="attn_dec")
    model.compile("adam", "sparse_categorical_crossentropy")
    x = [rng.random((n, 7, 4), dtype="float32"), rng.random((n, 5, 4), dtype="float32")]
    return _fit(model, x, rng.integers(0, 6, (n, 5)))


def channels_first_conv():
    """Conv2D and pooling with data_format="channels_first" (layout transposes)."""
    keras, L = _keras()
    inp = keras.Input((3, 12, 12))
    h = L.Permute((2, 3, 1), name="to_nhwc")(inp)
    h = L.Conv2D(6, 3, padding="same", activation="relu", name="conv_nhwc")(h)
    h = L.Permute((3, 1, 2), name="to_nchw")(h)
    h = L.Conv1D(4, 3, data_format="channels_first", name="conv1d_cf")(
        L.Reshape((6, 144), name="flat_hw")(h)
    )
    out = L.Dense(3, name="head")(
        L.GlobalAveragePooling1D(data_format="channels_first", name="gap")(h)
    )
    model = keras.Model(inp, out, name="layouts")
    model.compile("adam", "mse")
    return _fit(model, *_data((3, 12, 12)))


def loops_in_layers():
    """Custom layers that loop with keras.ops: fori_loop (a while loop with a gradient),
    scan over the time axis, and vectorized_map over the batch."""
    keras, L = _keras()
    ops = keras.ops

    class Iterate(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1], shape[-1]), name="w")

        def call(self, x):
            return ops.fori_loop(0, 3, lambda i, h: ops.tanh(ops.matmul(h, self.w)) + x, x)

    class Cumulate(keras.layers.Layer):
        def call(self, x):  # (batch, time, feat): running sum over time
            xs = ops.transpose(x, (1, 0, 2))
            _, ys = ops.scan(lambda c, t: (c + t, c + t), ops.zeros_like(xs[0]), xs)
            return ops.transpose(ys, (1, 0, 2))

    class PerExample(keras.layers.Layer):
        def call(self, x):
            return ops.vectorized_map(lambda row: ops.sort(row, axis=-1), x)

    inp = keras.Input((5, 6))
    h = Cumulate(name="cumulate")(L.Dense(6, name="proj")(inp))
    h = PerExample(name="per_example")(h)
    h = Iterate(name="iterate")(L.Flatten(name="flat")(h))
    out = L.Dense(3, name="head")(h)
    model = keras.Model(inp, out, name="loops")
    model.compile("adam", "mse")
    return _fit(model, *_data((5, 6)))
