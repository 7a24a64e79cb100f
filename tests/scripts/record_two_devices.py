"""Record a real two-device run: two logical CPUs, one layer pinned to the second.

Run in its own process (logical devices must be set before TensorFlow starts):
    python tests/scripts/record_two_devices.py LOGDIR
"""

import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from tb_metal_plugin import MetalProfileCallback  # noqa: E402


class Pinned(keras.layers.Layer):
    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1], 8))

    def call(self, x):
        with tf.device("/CPU:1"):
            return tf.matmul(x, self.w)


inp = keras.Input((12,))
h = keras.layers.Dense(12, name="pre")(inp)
h = Pinned(name="pinned")(h)
out = keras.layers.Dense(3, name="head")(h)
m = keras.Model(inp, out)
m.compile("adam", "sparse_categorical_crossentropy")
x = np.random.rand(64, 12).astype("float32")
y = np.random.randint(0, 3, 64)
# --bench: also run the callback's layer benchmark (measured time per layer and device)
callback = MetalProfileCallback(
    sys.argv[1], profile_batch=(2, 3), layer_benchmark="--bench" in sys.argv
)
m.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
