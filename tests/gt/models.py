"""The ground-truth corpus: small real Keras models, each a builder returning a fit spec.

Every builder returns {"model": compiled model, "x", "y", "batch_size", "steps"} and
optionally "restore" (undo a global setting). Models are tiny so that the whole corpus
records in minutes on two CPU cores; what matters is structure, not size.
"""

from __future__ import annotations

import numpy as np

BATCH = 8


def _keras():
    import keras

    return keras, keras.layers


def _data(shape, n_out=3, n=8 * BATCH, seed=0, classes=False):
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape), dtype="float32")
    y = rng.integers(0, n_out, n) if classes else rng.random((n, n_out), dtype="float32")
    return x, y


def _fit(model, x, y, steps=6, **kw):
    return {"model": model, "x": x, "y": y, "batch_size": BATCH, "steps": steps, **kw}


def _app(factory, size=32, **kw):
    keras, _ = _keras()
    model = factory(input_shape=(size, size, 3), weights=None, classes=4, **kw)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data((size, size, 3), 4, classes=True)
    return _fit(model, x, y)


def mobilenet_v2():
    keras, _ = _keras()
    return _app(keras.applications.MobileNetV2, alpha=0.35)


def mobilenet_v3_small():
    keras, _ = _keras()
    return _app(keras.applications.MobileNetV3Small, alpha=0.75, minimalistic=False)


def resnet50_v2():
    keras, _ = _keras()
    return _app(keras.applications.ResNet50V2)


def efficientnet_b0():
    keras, _ = _keras()
    return _app(keras.applications.EfficientNetB0)


def densenet121():
    keras, _ = _keras()
    return _app(keras.applications.DenseNet121)


def conv_bn():
    """Conv2D(use_bias=False) + BatchNorm + ReLU layers, a projection residual, pooling."""
    keras, L = _keras()
    inp = keras.Input((16, 16, 3))
    h = L.Conv2D(8, 3, use_bias=False, padding="same", name="stem")(inp)
    h = L.BatchNormalization(name="stem_bn")(h)
    h = L.ReLU(name="stem_relu")(h)
    r = L.Conv2D(16, 3, strides=2, use_bias=False, padding="same", name="conv_a")(h)
    r = L.BatchNormalization(name="bn_a")(r)
    r = L.Activation("relu", name="act_a")(r)
    s = L.Conv2D(16, 1, strides=2, use_bias=False, name="proj")(h)
    h = L.Add(name="add")([r, s])
    h = L.MaxPooling2D(name="pool")(h)
    out = L.Dense(3, name="head")(L.GlobalAveragePooling2D(name="gap")(h))
    model = keras.Model(inp, out, name="conv_bn")
    model.compile("sgd", "mse")
    return _fit(model, *_data((16, 16, 3)))


def _seq_model(rnn_layer, name):
    keras, L = _keras()
    model = keras.Sequential([keras.Input((6, 4)), rnn_layer, L.Dense(3, name="head")], name=name)
    model.compile("adam", "mse", metrics=["mae"])
    return _fit(model, *_data((6, 4)))


def lstm():
    _, L = _keras()
    return _seq_model(L.LSTM(8, name="lstm"), "lstm_model")


def gru():
    _, L = _keras()
    return _seq_model(L.GRU(8, name="gru"), "gru_model")


def simple_rnn():
    _, L = _keras()
    return _seq_model(L.SimpleRNN(8, name="rnn"), "rnn_model")


def bidirectional():
    _, L = _keras()
    return _seq_model(L.Bidirectional(L.LSTM(6), name="bidi"), "bidi_model")


def stacked_rnn():
    """Two LSTMs returning sequences into a GRU: while loops feeding while loops."""
    keras, L = _keras()
    model = keras.Sequential(
        [
            keras.Input((6, 4)),
            L.LSTM(8, return_sequences=True, name="lstm_a"),
            L.LSTM(8, return_sequences=True, name="lstm_b"),
            L.GRU(4, name="gru"),
            L.Dense(3, name="head"),
        ],
        name="stacked",
    )
    model.compile("rmsprop", "mse")
    return _fit(model, *_data((6, 4)))


def time_distributed():
    keras, L = _keras()
    inp = keras.Input((5, 8, 8, 1))
    h = L.TimeDistributed(L.Conv2D(4, 3), name="td_conv")(inp)
    h = L.TimeDistributed(L.Flatten(), name="td_flat")(h)
    h = L.TimeDistributed(L.Dense(6), name="td_dense")(h)
    out = L.Dense(3, name="head")(L.GlobalAveragePooling1D(name="gap")(h))
    model = keras.Model(inp, out, name="td")
    model.compile("adam", "mse")
    return _fit(model, *_data((5, 8, 8, 1)))


def conv_lstm2d():
    keras, L = _keras()
    inp = keras.Input((4, 8, 8, 2))
    h = L.ConvLSTM2D(4, 3, padding="same", name="convlstm")(inp)
    out = L.Dense(3, name="head")(L.Flatten(name="flat")(h))
    model = keras.Model(inp, out, name="convlstm_model")
    model.compile("adam", "mse")
    return _fit(model, *_data((4, 8, 8, 2)))


def transformer():
    """MultiHeadAttention + LayerNorm + GELU FFN with residuals (ops at model level)."""
    keras, L = _keras()
    inp = keras.Input((8, 16))
    a = L.MultiHeadAttention(num_heads=2, key_dim=8, name="mha")(inp, inp)
    h = L.LayerNormalization(name="ln_1")(inp + a)
    f = L.Dense(32, activation="gelu", name="ffn_1")(h)
    f = L.Dropout(0.1, name="drop")(L.Dense(16, name="ffn_2")(f))
    h = L.LayerNormalization(name="ln_2")(h + f)
    out = L.Dense(3, name="head")(L.GlobalAveragePooling1D(name="gap")(h))
    model = keras.Model(inp, out, name="transformer")
    model.compile("adamw", "mse", metrics=["mae"])
    return _fit(model, *_data((8, 16)))


def einsum_dense():
    keras, L = _keras()
    inp = keras.Input((6, 8))
    h = L.EinsumDense("abc,cd->abd", output_shape=(None, 12), bias_axes="d", name="ein_a")(inp)
    h = L.EinsumDense("ab,bc->ac", output_shape=(5,), name="ein_b")(h[:, 0, :])
    out = L.Dense(3, name="head")(h)
    model = keras.Model(inp, out, name="einsum")
    model.compile("adam", "mse")
    return _fit(model, *_data((6, 8)))


def resnet_like():
    """ResNetV2-style pre-activation blocks with 1x1 projection shortcuts (the issue's
    allowed stand-in for ResNet50V2, which records in the extra set: --only resnet50_v2)."""
    keras, L = _keras()
    inp = keras.Input((16, 16, 3))
    h = L.Conv2D(8, 3, padding="same", name="stem")(inp)
    for i, (filters, stride) in enumerate(((8, 1), (16, 2), (32, 2))):
        pre = L.ReLU(name=f"b{i}_pre_relu")(L.BatchNormalization(name=f"b{i}_pre_bn")(h))
        if stride != 1 or h.shape[-1] != filters:
            short = L.Conv2D(filters, 1, strides=stride, name=f"b{i}_proj")(pre)
        else:
            short = h
        r = L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"b{i}_c1")(
            pre
        )
        r = L.ReLU(name=f"b{i}_relu")(L.BatchNormalization(name=f"b{i}_bn")(r))
        r = L.Conv2D(filters, 3, padding="same", name=f"b{i}_c2")(r)
        h = L.Add(name=f"b{i}_add")([short, r])
    h = L.ReLU(name="post_relu")(L.BatchNormalization(name="post_bn")(h))
    out = L.Dense(4, activation="softmax", name="head")(L.GlobalAveragePooling2D(name="gap")(h))
    model = keras.Model(inp, out, name="resnet_like")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data((16, 16, 3), 4, classes=True)
    return _fit(model, x, y)
