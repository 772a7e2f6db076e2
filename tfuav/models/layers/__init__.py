"""Reusable Keras layers of the tfuav model zoo; each converts to int8 TFLite ops."""
from tfuav.models.layers.channels import (ChannelGather, ChannelSplit, interleave_permutation,
                                          shuffle_permutation)
from tfuav.models.layers.connection import ConnectionScale
from tfuav.models.layers.coral import CoralGlobalResponseNorm, PermutedGroupedConv1x1
from tfuav.models.layers.dilated_depthwise import DilatedConv2D, DilatedDepthwiseConv2D
from tfuav.models.layers.deformable import DeformableDepthwiseConv2D
from tfuav.models.layers.fusion import WeightedLevelSum
from tfuav.models.layers.grn import GlobalResponseNorm
from tfuav.models.layers.recalibration import ChannelAttention1D, GroupNorm, ResidualAttention

CUSTOM_OBJECTS = {
    "ChannelAttention1D": ChannelAttention1D,
    "ChannelGather": ChannelGather,
    "ChannelSplit": ChannelSplit,
    "ConnectionScale": ConnectionScale,
    "CoralGlobalResponseNorm": CoralGlobalResponseNorm,
    "DilatedConv2D": DilatedConv2D,
    "DeformableDepthwiseConv2D": DeformableDepthwiseConv2D,
    "DilatedDepthwiseConv2D": DilatedDepthwiseConv2D,
    "GlobalResponseNorm": GlobalResponseNorm,
    "GroupNorm": GroupNorm,
    "PermutedGroupedConv1x1": PermutedGroupedConv1x1,
    "ResidualAttention": ResidualAttention,
    "WeightedLevelSum": WeightedLevelSum,
}

__all__ = [
    "CUSTOM_OBJECTS",
    "ChannelAttention1D",
    "ChannelGather",
    "ChannelSplit",
    "ConnectionScale",
    "CoralGlobalResponseNorm",
    "DeformableDepthwiseConv2D",
    "DilatedConv2D",
    "DilatedDepthwiseConv2D",
    "GlobalResponseNorm",
    "GroupNorm",
    "PermutedGroupedConv1x1",
    "ResidualAttention",
    "WeightedLevelSum",
    "interleave_permutation",
    "shuffle_permutation",
]
