"""Receptive-field enhancement: parallel depthwise 3x3 branches with dilations 1, 3 and 5.

Each branch is a native dilated DEPTHWISE_CONV_2D (DilatedDepthwiseConv2D; Keras' dilation_rate
would lower to SPACE_TO_BATCH_ND, which TFLM computes differently) + BN + ReLU6. The branches
are concatenated, mixed back to the input width by a 1x1 convolution + BN, and added to the
input: the same position sees 3x3, 7x7 and 11x11 neighbourhoods for the price of three
depthwise convolutions.
"""
import tensorflow as tf

from tfuav.models.layers.bottleneck import batch_norm, conv_bn
from tfuav.models.layers.dilated_depthwise import DilatedDepthwiseConv2D

keras = tf.keras
layers = keras.layers

DILATIONS = (1, 3, 5)


def receptive_field_block(x, dilations=DILATIONS, name="rfb"):
    channels = int(x.shape[-1])
    branches = []
    for d in dilations:
        if d == 1:
            y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_d{d}")(x)
        else:
            y = DilatedDepthwiseConv2D(3, dilation_rate=d, padding="same", use_bias=False,
                                       name=f"{name}_d{d}")(x)
        branches.append(batch_norm(y, f"{name}_d{d}"))
    y = layers.Concatenate(name=f"{name}_concat")(branches)
    y = conv_bn(y, channels, relu6=False, name=f"{name}_mix")
    return layers.Add(name=f"{name}_add")([y, x])
