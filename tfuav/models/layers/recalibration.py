"""Lightweight feature recalibration: channel attention (ECA style) and spatial attention
(depthwise convolution + group normalisation), fused with the input residually:

    y = x + x * a_c + x * a_s = x * (1 + a_c + a_s)

a_c [B, 1, 1, C] comes from global average pooling and a 1-D convolution across the channel
axis (no fully connected layer), a_s [B, H, W, C] from a depthwise 3x3 convolution, group
normalisation and a sigmoid. Both are in (0, 1), so a feature is at most tripled and never
suppressed below itself: the module starts as a mild re-weighting of an identity, which keeps
a freshly initialised network trainable. Written as x * ((1 + a_c) + a_s) it costs, in int8,
one ADD on the [B, 1, 1, C] vector, one broadcast ADD and one MUL at full size.
"""
import math

import tensorflow as tf

keras = tf.keras
layers = keras.layers


def eca_kernel_size(channels, gamma=2, b=1):
    """ECA-Net's adaptive 1-D kernel size: the odd number nearest log2(C) / gamma + b / gamma."""
    k = int(abs(math.log2(channels) / gamma + b / gamma))
    return k if k % 2 else k + 1


class ChannelAttention1D(keras.layers.Layer):
    """a_c = sigmoid(conv1d_k(GAP(x))) over the channel axis: [B, H, W, C] -> [B, 1, 1, C].

    The 1-D convolution is a CONV_2D with a 1 x k kernel on the pooled vector laid out as a
    1 x C image with one channel (MEAN, RESHAPE, CONV_2D, RESHAPE, LOGISTIC in TFLite)."""

    def __init__(self, kernel_size=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = None if kernel_size is None else int(kernel_size)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.k = self.kernel_size or eca_kernel_size(channels)
        self.kernel = self.add_weight(name="kernel", shape=(1, self.k, 1, 1),
                                      initializer="glorot_uniform")
        super().build(input_shape)

    def call(self, x):
        channels = x.shape[-1]
        pooled = tf.reduce_mean(x, axis=(1, 2), keepdims=True)                # [B, 1, 1, C]
        row = tf.reshape(pooled, (-1, 1, channels, 1))
        mixed = tf.nn.conv2d(row, self.kernel, strides=1, padding="SAME")
        return tf.sigmoid(tf.reshape(mixed, (-1, 1, 1, channels)))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[0], 1, 1, input_shape[-1]])

    macs_op = "CONV_2D"  # the 1-D convolution converts to a 1 x k CONV_2D

    def count_macs(self):
        """The 1-D convolution's multiply-accumulates (tfuav.models.stats asks for them)."""
        return int(self.input_shape[-1]) * self.k

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size)
        return config


class GroupNorm(keras.layers.Layer):
    """Group normalisation of a [B, H, W, C] tensor with per-channel gamma and beta.

    Written with 4-D RESHAPE, MEAN, SQUARED_DIFFERENCE, ADD, RSQRT and MUL, which TFLite
    quantizes to int8 and TFLM runs (tf.keras' GroupNormalization goes through 5-D tensors)."""

    def __init__(self, groups=4, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if channels % self.groups:
            raise ValueError(f"{channels} channels cannot be normalised in {self.groups} groups")
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        super().build(input_shape)

    def call(self, x):
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        grouped = tf.reshape(x, (-1, h * w, self.groups, c // self.groups))
        mean = tf.reduce_mean(grouped, axis=(1, 3), keepdims=True)
        var = tf.reduce_mean(tf.math.squared_difference(grouped, mean), axis=(1, 3),
                             keepdims=True)
        normed = (grouped - mean) * tf.math.rsqrt(var + self.epsilon)
        return tf.reshape(normed, (-1, h, w, c)) * self.gamma + self.beta

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups, epsilon=self.epsilon)
        return config


def spatial_attention(x, groups=4, name="spatial"):
    """a_s = sigmoid(GroupNorm(depthwise 3x3(x))): one weight per position and channel."""
    channels = int(x.shape[-1])
    groups = groups if channels % groups == 0 else 1
    a = layers.DepthwiseConv2D(3, padding="same", name=f"{name}_dw")(x)
    a = GroupNorm(groups, name=f"{name}_gn")(a)
    return layers.Activation("sigmoid", name=f"{name}_sigmoid")(a)


class ResidualAttention(keras.layers.Layer):
    """[x, a_c, a_s] -> x * ((1 + a_c) + a_s); a_c may be [B, 1, 1, C] (broadcast)."""

    def call(self, inputs):
        x, a_c, a_s = inputs
        return x * ((1.0 + a_c) + a_s)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[0])


def recalibrate(x, groups=4, name="recal"):
    """y = x * (1 + a_c + a_s), see the module docstring."""
    a_c = ChannelAttention1D(name=f"{name}_channel")(x)
    a_s = spatial_attention(x, groups, name=f"{name}_spatial")
    return ResidualAttention(name=f"{name}_apply")([x, a_c, a_s])
