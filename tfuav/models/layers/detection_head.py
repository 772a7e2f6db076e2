"""The single-tensor CenterNet head of the tfuav detectors (see tfuav.runtime.detect).

Output [B, H, W, C + 4], every channel through one sigmoid: C class-centre heatmaps, the box
width and height as fractions of the input image, and the centre's sub-cell offset (dx, dy).
"""
import math

import numpy as np
import tensorflow as tf

from tfuav.models.layers.bottleneck import depthwise_bn

keras = tf.keras
layers = keras.layers

HEATMAP_PRIOR = 0.1   # CenterNet's initial heatmap probability: bias -log((1 - p) / p) = -2.19
SIZE_PRIOR = 0.1      # initial box side as a fraction of the image


def _logit(p):
    return math.log(p / (1 - p))


def centernet_head(x, num_classes, name="head"):
    """Depthwise 3x3 + BN + ReLU6, a 1x1 convolution to C + 4 channels, one sigmoid."""
    x = depthwise_bn(x, name=name)
    bias = np.zeros(num_classes + 4, np.float32)
    bias[:num_classes] = _logit(HEATMAP_PRIOR)
    bias[num_classes:num_classes + 2] = _logit(SIZE_PRIOR)
    x = layers.Conv2D(num_classes + 4, 1, name=f"{name}_out",
                      bias_initializer=keras.initializers.Constant(bias))(x)
    return layers.Activation("sigmoid", name=f"{name}_sigmoid")(x)
