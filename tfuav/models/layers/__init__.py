"""Reusable Keras layers of the tfuav model zoo; each converts to int8 TFLite ops."""
from tfuav.models.layers.channels import (ChannelGather, ChannelSplit, interleave_permutation,
                                          shuffle_permutation)
from tfuav.models.layers.connection import ConnectionScale
from tfuav.models.layers.coral import CoralGlobalResponseNorm, PermutedGroupedConv1x1
from tfuav.models.layers.dilated_depthwise import DilatedConv2D, DilatedDepthwiseConv2D
from tfuav.models.layers.grn import GlobalResponseNorm

CUSTOM_OBJECTS = {
    "ChannelGather": ChannelGather,
    "ChannelSplit": ChannelSplit,
    "ConnectionScale": ConnectionScale,
    "CoralGlobalResponseNorm": CoralGlobalResponseNorm,
    "DilatedConv2D": DilatedConv2D,
    "DilatedDepthwiseConv2D": DilatedDepthwiseConv2D,
    "GlobalResponseNorm": GlobalResponseNorm,
    "PermutedGroupedConv1x1": PermutedGroupedConv1x1,
}

__all__ = [
    "CUSTOM_OBJECTS",
    "ChannelGather",
    "ChannelSplit",
    "ConnectionScale",
    "CoralGlobalResponseNorm",
    "DilatedConv2D",
    "DilatedDepthwiseConv2D",
    "GlobalResponseNorm",
    "PermutedGroupedConv1x1",
    "interleave_permutation",
    "shuffle_permutation",
]
