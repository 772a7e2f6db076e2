"""uavlite: a single-stage anchor-free (CenterNet-style) detector for UAV views on
microcontrollers.

Backbone: a stride-2 stem, then three stages (strides 4, 8, 16) of depthwise-separable
bottleneck units with grouped 1x1 convolutions and channel shuffle; each stage ends in a
recalibration module (ECA channel attention + group-normalised spatial attention) and, from
the second stage on, starts from its predecessor's output concatenated with the pooled output
of the stage before that (dense feature reuse, gated by a ConnectionScale).
Neck: adaptive hierarchical fusion of the three stages at stride 8, a receptive-field module
(dilations 1, 3, 5), and a refinement that upsamples the result to stride 4 and adds it to the
stride-4 stage features. Head: one [H/4, W/4, C + 4] all-sigmoid tensor (tfuav.runtime.detect).

Size: 55.5 k parameters, about 990 multiply-accumulates per input pixel (4.1 M at 64x64,
9.1 M at 96x96); int8 at 96x96 the model is 144 KB and TFLM needs a 176 KB arena.

uavlite_dcn is the same network with deformable depthwise convolutions in the stride-16 stage;
its sampling ops keep it off full-integer TFLM (see layers/deformable.py).
"""
import tensorflow as tf

from tfuav.errors import TfuavError
from tfuav.models.layers.bottleneck import batch_norm, conv_bn, shuffle_bottleneck
from tfuav.models.layers.connection import ConnectionScale
from tfuav.models.layers.deformable import DeformableDepthwiseConv2D
from tfuav.models.layers.detection_head import centernet_head
from tfuav.models.layers.fusion import adaptive_level_fusion, refine_fuse
from tfuav.models.layers.receptive import receptive_field_block
from tfuav.models.layers.recalibration import recalibrate
from tfuav.models.registry import register

keras = tf.keras
layers = keras.layers

STEM_WIDTH = 16
STAGES = ((32, 2), (64, 2), (128, 2))      # (width, units) at strides 4, 8, 16
NECK_WIDTH = 48
GROUPS = 2                                 # of the pointwise convolutions
INPUT_MULTIPLE = 16                        # the deepest stage's stride


def _deformable_depthwise(x, strides, name):
    if strides != 1:
        raise ValueError("the deformable depthwise convolution has stride 1 only")
    x = DeformableDepthwiseConv2D(3, use_bias=False, name=f"{name}_dcn")(x)
    return batch_norm(x, f"{name}_dcn")


def backbone(inputs, deformable=False):
    """The stride-4, -8 and -16 stage outputs."""
    x = conv_bn(inputs, STEM_WIDTH, 3, strides=2, name="stem")
    outputs = [x]
    for s, (width, units) in enumerate(STAGES, start=1):
        if len(outputs) >= 2:       # dense reuse: the stage before the previous one, pooled
            reuse = layers.AveragePooling2D(2, name=f"stage{s}_reuse_pool")(outputs[-2])
            reuse = ConnectionScale(name=f"stage{s}_reuse_gate")(reuse)
            x = layers.Concatenate(name=f"stage{s}_reuse_concat")([x, reuse])
        depthwise = _deformable_depthwise if deformable and s == len(STAGES) else None
        x = shuffle_bottleneck(x, width, strides=2, groups=GROUPS, name=f"stage{s}_unit0")
        for u in range(1, units):
            x = shuffle_bottleneck(x, width, groups=GROUPS, depthwise=depthwise,
                                   name=f"stage{s}_unit{u}")
        x = recalibrate(x, name=f"stage{s}_recal")
        outputs.append(x)
    return outputs[1:]


def build_detector(name, input_shape, num_classes, deformable=False):
    height, width = int(input_shape[0]), int(input_shape[1])
    if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE or min(height, width) < 32:
        raise TfuavError(f"{name} needs an input of at least 32x32 whose sides are multiples of "
                         f"{INPUT_MULTIPLE}, got {height}x{width}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    c2, c3, c4 = backbone(inputs, deformable)
    fused = adaptive_level_fusion([c2, c3, c4], target=1, width=NECK_WIDTH, name="asff")
    fused = receptive_field_block(fused, name="rfb")
    refined = refine_fuse(fused, c2, NECK_WIDTH, name="refine")
    return keras.Model(inputs, centernet_head(refined, num_classes), name=name)


@register("uavlite", default_input_shape=(96, 96, 3), default_num_classes=4, task="detection",
          description="uavlite: shuffle-bottleneck CenterNet detector (stride 4, int8 TFLM)")
def build_uavlite(input_shape, num_classes):
    return build_detector("uavlite", input_shape, num_classes)


@register("uavlite_dcn", default_input_shape=(96, 96, 3), default_num_classes=4,
          task="detection", plain_variant="uavlite",
          description="uavlite with deformable depthwise convolutions (float / not TFLM int8)")
def build_uavlite_dcn(input_shape, num_classes):
    return build_detector("uavlite_dcn", input_shape, num_classes, deformable=True)
