"""TakuNet: the depthwise baseline GlimmerNet is compared with."""
import tensorflow as tf

from tfuav.models.common import aggregate, aggregate_coral, bn_relu6, build_classifier
from tfuav.models.layers import ChannelGather, interleave_permutation
from tfuav.models.registry import register

keras = tf.keras
layers = keras.layers

OUT_WIDTHS = (80, 160, 240, 240)
DEPTHS = (5, 5, 5, 3)


def taku_block(x, name):
    """Depthwise 3x3 + BN + ReLU6, plus the identity."""
    y = layers.DepthwiseConv2D(3, padding="same", name=f"{name}_dw")(x)
    y = bn_relu6(y, f"{name}_dw")
    return layers.Add(name=f"{name}_add")([y, x])


def aggregator(stage_input, blocks_output, channels_out, name):
    """Blocks' output interleaved with the stage input, grouped 1x1 conv with 2C/4 groups."""
    channels = stage_input.shape[-1]
    mixed = ChannelGather(interleave_permutation(channels), name=f"{name}_mix")(
        [blocks_output, stage_input])
    return aggregate(mixed, channels_out, 2 * channels // 4, name)


def aggregator_coral(stage_input, blocks_output, channels_out, name):
    """aggregator() for the Edge TPU: interleave and grouped conv as one dense 1x1 conv."""
    channels = stage_input.shape[-1]
    return aggregate_coral([blocks_output, stage_input], interleave_permutation(channels),
                           channels_out, 2 * channels // 4, name)


@register("takunet", default_input_shape=(224, 224, 3), default_num_classes=4,
          description="TakuNet: depthwise blocks, the GlimmerNet baseline",
          forms=("default", "coral"))
def build_takunet(input_shape, num_classes, form="default"):
    return build_classifier("takunet", input_shape, num_classes, DEPTHS, OUT_WIDTHS,
                            taku_block, aggregator_coral if form == "coral" else aggregator,
                            form=form)
