"""Building blocks shared by GlimmerNet and TakuNet (stem, refiner, head, downsampler)."""
import tensorflow as tf

from tfuav.errors import TfuavError

from tfuav.models.layers import (CoralGlobalResponseNorm, DilatedConv2D, GlobalResponseNorm,
                                 PermutedGroupedConv1x1)

keras = tf.keras
layers = keras.layers

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1 expressed the Keras way


def bn_relu6(x, name):
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x)


STEM_WIDTH = 40
MIN_INPUT_SIZE = 57  # stem to 16, then four 2x2 pools down to 1


def stem(x, channels):
    """Conv k3 s2 dilation 2 and depthwise k3 s2, each after an explicit zero padding of 2."""
    height, width = x.shape[1], x.shape[2]
    if min(height, width) < MIN_INPUT_SIZE:
        raise TfuavError(f"input {height}x{width} is too small: this model needs at least "
                         f"{MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}")
    x = layers.ZeroPadding2D(2, name="stem_pad1")(x)
    # Keras' Conv2D refuses stride and dilation together; the native op does both.
    x = DilatedConv2D(channels, name="stem_conv")(x)
    x = bn_relu6(x, "stem_conv")
    x = layers.ZeroPadding2D(2, name="stem_pad2")(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="valid", name="stem_dw")(x)
    return bn_relu6(x, "stem_dw")


def aggregate(x, channels_out, groups, name):
    """Grouped 1x1 convolution + BN + ReLU6 over already re-ordered channels."""
    x = layers.Conv2D(channels_out, 1, groups=groups, name=f"{name}_conv")(x)
    return bn_relu6(x, name)


def aggregate_coral(inputs, order, channels_out, groups, name):
    """The coral form of ChannelGather(order) + aggregate(): one dense 1x1 CONV_2D holding the
    same grouped kernel (layer `{name}_conv`), BN, ReLU6; see layers/coral.py."""
    x = layers.Concatenate(name=f"{name}_mix")(inputs)
    x = PermutedGroupedConv1x1(channels_out, groups, order, name=f"{name}_conv")(x)
    return bn_relu6(x, name)


def downsample(x, average, name, form="default"):
    pool = layers.AveragePooling2D if average else layers.MaxPooling2D
    x = pool(2, strides=2, name=f"{name}_pool")(x)
    grn = CoralGlobalResponseNorm if form == "coral" else GlobalResponseNorm
    return grn(name=f"{name}_grn")(x)


def refiner_and_head(x, num_classes):
    x = layers.DepthwiseConv2D(3, padding="same", name="refiner_dw")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="refiner_bn")(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    return layers.Dense(num_classes, name="head_fc")(x)


def build_classifier(name, input_shape, num_classes, depths, out_widths, block, aggregate_stage,
                     form="default"):
    """Stem, then per stage: `depth` blocks, the stage aggregator, pooling + GRN; refiner, head.

    block(x, name) -> x; aggregate_stage(stage_input, blocks_output, channels_out, name) -> x.
    form "coral": a fixed batch of 1 (the Edge TPU compiles static shapes only) and the Edge TPU
    form of the GRN; the caller passes the coral aggregator.
    """
    inputs = keras.Input(shape=input_shape, name="image",
                         batch_size=1 if form == "coral" else None)
    x = stem(inputs, STEM_WIDTH)
    for s, (depth, c_out) in enumerate(zip(depths, out_widths), start=1):
        y = x
        for b in range(depth):
            y = block(y, f"stage{s}_block{b}")
        x = aggregate_stage(x, y, c_out, f"stage{s}_agg")
        x = downsample(x, average=(s == len(depths)), name=f"stage{s}_down", form=form)
    return keras.Model(inputs, refiner_and_head(x, num_classes), name=name)
