"""Parameter and compute counts of Keras models.

`macs` counts the multiply-accumulates of the deployed graph: convolutions (grouped, dilated,
separable, transposed), depthwise convolutions and dense layers on inputs of any rank
(BatchNorm is folded into them by the converter, so it costs nothing on the board); a custom
layer that multiplies-accumulates counts itself with a `count_macs()` method.

`thop_flops` reproduces the convention of the PyTorch counter the GlimmerNet paper used
(conv/linear MACs, 2 per BatchNorm output element, 1 per output element of a non-global
average pool), counting every convolution, so published figures can be compared honestly.
"""
import numpy as np
import tensorflow as tf

from tfuav.models.layers import DilatedConv2D, DilatedDepthwiseConv2D, PermutedGroupedConv1x1

keras = tf.keras


def _elements(shape):
    return int(np.prod([d for d in shape[1:] if d is not None]))


def _shape(shape):
    return shape[0] if isinstance(shape, list) else shape


def op_macs(layer):
    """(op kind, multiply-accumulates) of one layer; the kind names the TFLite op it becomes."""
    custom = getattr(layer, "count_macs", None)
    if callable(custom):  # a custom layer may count its own, naming the op it becomes
        return getattr(layer, "macs_op", "CUSTOM"), int(custom())
    out = _shape(layer.output_shape) if hasattr(layer, "output_shape") else None
    if out is None:
        return None, 0
    if isinstance(layer, (keras.layers.DepthwiseConv2D, DilatedDepthwiseConv2D)):
        kernel = layer.depthwise_kernel.shape  # k, k, c, multiplier
        return "DEPTHWISE_CONV_2D", _elements(out) * int(kernel[0]) * int(kernel[1])
    if isinstance(layer, keras.layers.SeparableConv2D):
        dw, pw = layer.depthwise_kernel.shape, layer.pointwise_kernel.shape
        spatial = _elements(out) // int(out[-1])
        return "CONV_2D", spatial * int(pw[2]) * (int(dw[0]) * int(dw[1]) + int(pw[3]))
    if isinstance(layer, keras.layers.Conv2DTranspose):
        kernel = layer.kernel.shape  # k, k, out, in
        return "TRANSPOSE_CONV", (_elements(_shape(layer.input_shape)) * int(kernel[0])
                                  * int(kernel[1]) * int(kernel[2]))
    if isinstance(layer, (keras.layers.Conv2D, DilatedConv2D, PermutedGroupedConv1x1)):
        kernel = layer.kernel.shape  # k, k, in/groups, out (dense for the coral 1x1)
        return "CONV_2D", _elements(out) * int(np.prod(kernel[:-1]))
    if isinstance(layer, keras.layers.Dense):
        kernel = layer.kernel.shape
        return "FULLY_CONNECTED", _elements(out) * int(kernel[0])
    return None, 0


def layer_macs(model):
    """{layer name: (op kind, MACs)} for every layer that multiplies-accumulates."""
    counts = {}
    for layer in _all_layers(model):
        kind, macs = op_macs(layer)
        if macs:
            counts[layer.name] = (kind, macs)
    return counts


def count_params(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return {"params_trainable": trainable, "params_total": int(model.count_params())}


def count_macs(model):
    """Multiply-accumulates of one inference (batch 1) of the deployed graph."""
    return sum(op_macs(layer)[1] for layer in _all_layers(model))


def thop_flops(model):
    total = 0
    for layer in _all_layers(model):
        total += op_macs(layer)[1]
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
