"""Parameter and compute counts of Keras models.

`macs` counts the multiply-accumulates of the deployed graph: convolutions, depthwise
convolutions and dense layers (BatchNorm is folded into them by the converter, so it costs
nothing on the board). `thop_flops` reproduces the convention of the PyTorch counter the
GlimmerNet paper used (conv/linear MACs, 2 per BatchNorm output element, 1 per output element
of a non-global average pool), counting every convolution, so published figures can be
compared honestly.
"""
import numpy as np
import tensorflow as tf

from tfuav.models.layers import DilatedConv2D, DilatedDepthwiseConv2D

keras = tf.keras


def _elements(shape):
    return int(np.prod([d for d in shape[1:] if d is not None]))


def _layer_macs(layer):
    out = layer.output_shape
    if isinstance(layer, keras.layers.DepthwiseConv2D) or isinstance(layer, DilatedDepthwiseConv2D):
        kernel = layer.depthwise_kernel.shape  # k, k, c, multiplier
        return _elements(out) * int(kernel[0]) * int(kernel[1])
    if isinstance(layer, (keras.layers.Conv2D, DilatedConv2D)):
        kernel = layer.kernel.shape  # k, k, in/groups, out
        return _elements(out) * int(kernel[0]) * int(kernel[1]) * int(kernel[2])
    if isinstance(layer, keras.layers.Dense):
        return int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    return 0


def count_params(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return {"params_trainable": trainable, "params_total": int(model.count_params())}


def count_macs(model):
    """Multiply-accumulates of one inference (batch 1) of the deployed graph."""
    return sum(_layer_macs(layer) for layer in _all_layers(model))


def thop_flops(model):
    total = 0
    for layer in _all_layers(model):
        total += _layer_macs(layer)
        if isinstance(layer, keras.layers.BatchNormalization):
            total += 2 * _elements(layer.output_shape)
        elif isinstance(layer, keras.layers.AveragePooling2D):
            total += _elements(layer.output_shape)
    return total


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer
