"""GlimmerNet: grouped dilated depthwise convolutions for UAV emergency classification."""
import tensorflow as tf

from tfuav.models.common import aggregate, aggregate_coral, bn_relu6, build_classifier
from tfuav.models.layers import (ChannelGather, ChannelSplit, DilatedDepthwiseConv2D,
                                 shuffle_permutation)
from tfuav.models.registry import register

keras = tf.keras
layers = keras.layers

OUT_WIDTHS = (80, 160, 240, 240)
DEPTHS = (4, 4, 4, 1)
DILATIONS = (1, 2, 2, 3)


def gd_block(x, name):
    """Split into 4 contiguous channel groups, depthwise 3x3 with dilations 1, 2, 2, 3, BN,
    ReLU6, concat, then add the block input.

    BatchNorm and ReLU6 are per channel, so applying them per group before the concat is the
    same function as applying them after it; this order lets the converter fold each BN into
    its convolution and fuse the ReLU6.
    """
    parts = ChannelSplit(len(DILATIONS), name=f"{name}_split")(x)
    branches = []
    for g, (part, d) in enumerate(zip(parts, DILATIONS)):
        if d == 1:
            part = layers.DepthwiseConv2D(3, padding="same", name=f"{name}_dw{g}")(part)
        else:
            part = DilatedDepthwiseConv2D(3, dilation_rate=d, padding="same",
                                          name=f"{name}_dw{g}")(part)
        branches.append(bn_relu6(part, f"{name}_dw{g}"))
    y = layers.Concatenate(name=f"{name}_concat")(branches)
    return layers.Add(name=f"{name}_add")([y, x])


def _mix_order(channels):
    shuffle = shuffle_permutation(channels, 4)
    return [i for c in range(channels) for i in (shuffle[c], channels + c)]


def aggregator(stage_input, blocks_output, channels_out, name):
    """Channel shuffle of the blocks' output, interleaved with the stage input
    ([r0, x0, r1, x1, ...]), grouped 1x1 conv 2C -> C_out with C/4 groups, BN, ReLU6."""
    channels = stage_input.shape[-1]
    mixed = ChannelGather(_mix_order(channels), name=f"{name}_mix")([blocks_output, stage_input])
    return aggregate(mixed, channels_out, channels // 4, name)


def aggregator_coral(stage_input, blocks_output, channels_out, name):
    """aggregator() for the Edge TPU: shuffle, interleave and grouped conv as one dense 1x1 conv."""
    channels = stage_input.shape[-1]
    return aggregate_coral([blocks_output, stage_input], _mix_order(channels), channels_out,
                           channels // 4, name)


@register("glimmernet", default_input_shape=(224, 224, 3), default_num_classes=4,
          description="GlimmerNet: grouped dilated depthwise blocks (AIDER emergency classes)",
          forms=("default", "coral"))
def build_glimmernet(input_shape, num_classes, form="default"):
    return build_classifier("glimmernet", input_shape, num_classes, DEPTHS, OUT_WIDTHS,
                            gd_block, aggregator_coral if form == "coral" else aggregator,
                            form=form)
