"""A learnable scalar gate on a cross-layer or fusion connection.

Network-slimming training puts an L1 penalty on `scale`; a connection whose scale ends near
zero contributes nothing and channel surgery removes it (and the layers only it fed).
"""
import tensorflow as tf

keras = tf.keras


class ConnectionScale(keras.layers.Layer):
    """y = scale * x with one trainable scalar `scale` (initially 1)."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones", trainable=True)
        super().build(input_shape)

    def call(self, x):
        return x * self.scale
