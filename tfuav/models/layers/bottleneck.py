"""Depthwise-separable bottleneck units with grouped pointwise convolutions and channel shuffle.

Every convolution is followed directly by its BatchNorm (and ReLU6 where there is one), so the
converter folds the BatchNorm into the convolution's weights and bias and fuses the ReLU6 into
the op: one CONV_2D / DEPTHWISE_CONV_2D per convolution in the int8 graph.
"""
import tensorflow as tf

from tfuav.models.layers.channels import ChannelGather, shuffle_permutation

keras = tf.keras
layers = keras.layers

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def batch_norm(x, name, relu6=True):
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if relu6 else x


def conv_bn(x, filters, kernel_size=1, strides=1, groups=1, relu6=True, name="conv"):
    """Conv2D (no bias: BatchNorm brings it) + BatchNorm (+ ReLU6)."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", groups=groups,
                      use_bias=False, name=f"{name}_conv")(x)
    return batch_norm(x, name, relu6)


def depthwise_bn(x, strides=1, relu6=True, name="dw"):
    """Depthwise 3x3 (no bias) + BatchNorm (+ ReLU6)."""
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False,
                               name=f"{name}_dw")(x)
    return batch_norm(x, f"{name}_dw", relu6)


def usable_groups(groups, *channels):
    """`groups` if it divides every channel count, else 1 (a dense pointwise convolution)."""
    return groups if all(c % groups == 0 for c in channels) else 1


def shuffle_bottleneck(x, out_channels, strides=1, groups=2, reduction=0.5, depthwise=None,
                       name="unit"):
    """1x1 grouped reduce + BN + ReLU6, channel shuffle, depthwise 3x3 (stride `strides`) + BN +
    ReLU6, 1x1 grouped expand + BN (linear); the input is added back when the shape allows.

    depthwise(x, strides, name) -> x replaces the depthwise 3x3 + BN + ReLU6 (e.g. a
    deformable one). The shuffle lets the expand's channel groups see every reduce group.
    """
    in_channels = int(x.shape[-1])
    mid = max(groups, int(round(out_channels * reduction / groups)) * groups)
    g_in = usable_groups(groups, in_channels, mid)
    y = conv_bn(x, mid, groups=g_in, name=f"{name}_reduce")
    g_out = usable_groups(groups, mid, out_channels)
    if g_out > 1:
        y = ChannelGather(shuffle_permutation(mid, g_out), name=f"{name}_shuffle")(y)
    y = (depthwise or (lambda t, s, n: depthwise_bn(t, s, name=n)))(y, strides, name)
    y = conv_bn(y, out_channels, groups=g_out, relu6=False, name=f"{name}_expand")
    if strides == 1 and in_channels == out_channels:
        y = layers.Add(name=f"{name}_add")([y, x])
    return y
