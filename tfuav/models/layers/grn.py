"""Global Response Normalization (ConvNeXt-V2 style), written with ops that TFLite and TFLM
both run in int8 and compute identically.

    Gx = ||x_c||_2 over H, W;  Nx = Gx / (mean_c Gx + 1e-6);  out = gamma * (x * Nx) + beta + x

int8 TFLite has no SQRT in TFLM and a SUM that TFLM computes differently from the reference
kernels, so the norm is taken as ||x_c|| = sum_hw(x * x / ||x_c||) with L2_NORMALIZATION and the
H*W factor of the sum cancels against the channel mean (it is moved into the epsilon). The
output is rearranged as x * (1 + gamma * Nx) + beta: the per-channel factor is a C-vector, so
the full-size tensor sees one MUL and one ADD.

A GRN whose input lost channels to channel pruning keeps computing the original channel mean:
`mean_channels` is the channel count that mean is over (None: the layer's own count) and
`removed_norm` the summed ||x_c||_2 of the removed channels (constant once they are removed):

    mean_c Gx = (sum of Gx over the kept channels + removed_norm) / mean_channels
"""
import tensorflow as tf

keras = tf.keras


class GlobalResponseNorm(keras.layers.Layer):
    def __init__(self, epsilon=1e-6, mean_channels=None, removed_norm=0.0, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.mean_channels = None if mean_channels is None else int(mean_channels)
        self.removed_norm = float(removed_norm)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="zeros")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        super().build(input_shape)

    def call(self, x):
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        per_channel = tf.transpose(tf.reshape(x, (-1, h * w, c)), (0, 2, 1))
        unit = tf.math.l2_normalize(per_channel, axis=-1)
        norm = tf.reduce_mean(per_channel * unit, axis=-1)  # ||x_c|| / (h*w)
        ratio = norm / self.norm_denominator(norm, h * w)
        scale = tf.reshape(1.0 + self.gamma * ratio, (-1, 1, 1, c))
        return x * scale + self.beta

    def norm_denominator(self, norm, hw):
        """mean_c(norm) + epsilon / hw for norm = ||x_c|| / hw on the last axis (keepdims),
        over the original channels when some were removed. With none removed the graph is
        the MEAN and ADD it always was."""
        channels = int(norm.shape[-1])
        total = self.mean_channels or channels
        mean = tf.reduce_mean(norm, axis=-1, keepdims=True)
        if total != channels:
            mean = mean * (channels / total)
        return mean + (self.epsilon + self.removed_norm / total) / hw

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        if self.mean_channels is not None or self.removed_norm:
            config.update(mean_channels=self.mean_channels, removed_norm=self.removed_norm)
        return config
