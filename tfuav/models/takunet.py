"""TakuNet: the depthwise baseline GlimmerNet is compared with."""
import tensorflow as tf

from tfuav.models.common import aggregate, bn_relu6, downsample, refiner_and_head, stem
from tfuav.models.layers import ChannelGather, interleave_permutation
from tfuav.models.registry import register

keras = tf.keras
layers = keras.layers

WIDTHS = (40, 80, 160, 240)
OUT_WIDTHS = (80, 160, 240, 240)
DEPTHS = (5, 5, 5, 3)


def taku_block(x, name):
    """Depthwise 3x3 + BN + ReLU6, plus the identity."""
    y = layers.DepthwiseConv2D(3, padding="same", name=f"{name}_dw")(x)
    y = bn_relu6(y, f"{name}_dw")
    return layers.Add(name=f"{name}_add")([y, x])


@register("takunet", default_input_shape=(224, 224, 3), default_num_classes=4,
          description="TakuNet: depthwise blocks, the GlimmerNet baseline")
def build_takunet(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape, name="image")
    x = stem(inputs, WIDTHS[0])
    for s, (depth, c_out) in enumerate(zip(DEPTHS, OUT_WIDTHS), start=1):
        y = x
        for b in range(depth):
            y = taku_block(y, f"stage{s}_block{b}")
        channels = x.shape[-1]
        mixed = ChannelGather(interleave_permutation(channels), name=f"stage{s}_mix")([y, x])
        x = aggregate(mixed, c_out, 2 * channels // 4, f"stage{s}_agg")
        x = downsample(x, average=(s == len(DEPTHS)), name=f"stage{s}_down")
    outputs = refiner_and_head(x, num_classes)
    return keras.Model(inputs, outputs, name="takunet")
