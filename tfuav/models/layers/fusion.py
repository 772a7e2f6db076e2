"""Multi-scale fusion for the detector neck: adaptive hierarchical fusion of pyramid levels and
top-down refinement (deep features upsampled and added to shallow ones).

Every input of a fusion passes through a ConnectionScale gate, so network slimming can find
(and channel surgery remove) the connections that carry little.
"""
import tensorflow as tf

from tfuav.models.layers.bottleneck import conv_bn, depthwise_bn
from tfuav.models.layers.connection import ConnectionScale

keras = tf.keras
layers = keras.layers


def _resample(x, factor, name):
    """Nearest-neighbour upsampling by `factor` (> 1) or max pooling by 1 / factor (< 1)."""
    if factor > 1:
        return layers.UpSampling2D(int(factor), interpolation="nearest", name=f"{name}_up")(x)
    if factor < 1:
        k = int(round(1 / factor))
        return layers.MaxPooling2D(k, strides=k, name=f"{name}_pool")(x)
    return x


def match_level(x, size, width, name):
    """x brought to spatial size `size` (an integer factor of 2 away) and `width` channels: a 1x1
    conv + BN + ReLU6 where the width differs, at the lower of the two resolutions."""
    factor = size / int(x.shape[1])
    if factor < 1:
        x = _resample(x, factor, name)
    if int(x.shape[-1]) != width:
        x = conv_bn(x, width, name=f"{name}_lateral")
    if factor > 1:
        x = _resample(x, factor, name)
    return x


class WeightedLevelSum(keras.layers.Layer):
    """[weights [B, H, W, L], level_1 .. level_L (each [B, H, W, C])] -> sum_l w_l * level_l."""

    def call(self, inputs):
        weights, levels = inputs[0], inputs[1:]
        parts = tf.split(weights, len(levels), axis=-1)
        total = parts[0] * levels[0]
        for w, level in zip(parts[1:], levels[1:]):
            total = total + w * level
        return total

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape[1])


def adaptive_level_fusion(levels, target, width, name="asff"):
    """Adaptive hierarchical fusion (ASFF style) of pyramid levels at the resolution of
    levels[target]: every level is brought to that resolution and `width` channels and gated,
    a 1x1 convolution over their concatenation gives one logit per level and position, a softmax
    over the levels turns them into weights, and the output is the weighted sum."""
    size = int(levels[target].shape[1])
    matched = []
    for i, level in enumerate(levels):
        x = match_level(level, size, width, f"{name}_l{i}")
        matched.append(ConnectionScale(name=f"{name}_l{i}_gate")(x))
    logits = layers.Concatenate(name=f"{name}_concat")(matched)
    logits = layers.Conv2D(len(levels), 1, name=f"{name}_logits")(logits)
    weights = layers.Softmax(axis=-1, name=f"{name}_softmax")(logits)
    return WeightedLevelSum(name=f"{name}_sum")([weights] + matched)


def refine_fuse(deep, shallow, width, name="refine"):
    """Top-down refinement: `deep` (half the resolution of `shallow`) upsampled by nearest
    neighbour, both brought to `width` channels and gated, added element-wise, then a depthwise
    3x3 and a 1x1 convolution (each + BN + ReLU6) smooth the sum."""
    size = int(shallow.shape[1])
    up = ConnectionScale(name=f"{name}_deep_gate")(match_level(deep, size, width, f"{name}_deep"))
    lateral = ConnectionScale(name=f"{name}_shallow_gate")(
        match_level(shallow, size, width, f"{name}_shallow"))
    x = layers.Add(name=f"{name}_add")([up, lateral])
    x = depthwise_bn(x, name=f"{name}_smooth")
    return conv_bn(x, width, name=f"{name}_mix")


