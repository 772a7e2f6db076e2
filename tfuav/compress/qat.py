"""Quantization-aware fine-tuning (tfmot default 8-bit scheme) of models with custom layers.

BatchNorm is first folded into the preceding convolution in a rebuilt functional model (tfmot
only folds BN after its own Conv2D/DepthwiseConv2D), then every layer is annotated: built-in
layers with tfmot's default configs, the model-zoo layers with the QuantizeConfigs below.
"""
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from tfuav.models.layers import (ChannelGather, ChannelSplit, DilatedConv2D,
                                 DilatedDepthwiseConv2D, GlobalResponseNorm)

keras = tf.keras
tfmot_q = tfmot.quantization.keras
quantizers = tfmot_q.quantizers

_CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, DilatedDepthwiseConv2D, DilatedConv2D)


# ---------------------------------------------------------------- BatchNorm folding

def _map_structure(structure, tensors):
    def look(t):
        return tensors.get(id(t), t)
    return tf.nest.map_structure(look, structure)


def _graph_nodes(model):
    """The model's (layer, node) pairs in topological order."""
    nodes = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if not isinstance(node.layer, keras.layers.InputLayer):
                nodes.append(node)
    return nodes


def _consumers(model, nodes):
    count = {}
    for node in nodes:
        for t in tf.nest.flatten(node.keras_inputs):
            count[id(t)] = count.get(id(t), 0) + 1
    for t in model.outputs:
        count[id(t)] = count.get(id(t), 0) + 1
    return count


def _folded_conv(conv, bn):
    """A copy of `conv` with a bias, computing bn(conv(x)) in inference mode."""
    config = conv.get_config()
    if "use_bias" in config:
        config["use_bias"] = True
    new = conv.__class__.from_config(config)
    gamma = bn.gamma.numpy() if bn.gamma is not None else 1.0
    beta = bn.beta.numpy() if bn.beta is not None else 0.0
    scale = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    shift = beta - bn.moving_mean.numpy() * scale
    depthwise = isinstance(conv, (keras.layers.DepthwiseConv2D, DilatedDepthwiseConv2D))
    kernel = (conv.depthwise_kernel if depthwise else conv.kernel).numpy()
    bias = conv.bias.numpy() if getattr(conv, "bias", None) is not None else 0.0
    if depthwise:  # output channel c * multiplier + m comes from kernel[..., c, m]
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * scale
    return new, [kernel.astype(np.float32), (bias * scale + shift).astype(np.float32)]


def _foldable_bn(layer):
    return (isinstance(layer, keras.layers.BatchNormalization)
            and layer.axis in ([-1], [3], -1, 3))


def fold_batchnorm(model):
    """A rebuilt functional model where every BatchNormalization fed only by a convolution
    (Conv2D, DepthwiseConv2D, DilatedDepthwiseConv2D, DilatedConv2D) is folded into it. Equal
    to `model` in inference mode up to float rounding. Other layers are shared with `model`."""
    nodes = _graph_nodes(model)
    consumers = _consumers(model, nodes)
    producer = {}  # id(tensor) -> layer that produced it
    for node in nodes:
        for t in tf.nest.flatten(node.outputs):
            producer[id(t)] = node.layer
    fold_into = {}  # conv layer -> bn layer
    for node in nodes:
        if not _foldable_bn(node.layer):
            continue
        inputs = tf.nest.flatten(node.keras_inputs)
        conv = producer.get(id(inputs[0]))
        if len(inputs) == 1 and isinstance(conv, _CONVS) and consumers[id(inputs[0])] == 1 \
                and len(conv._inbound_nodes) == 1:
            fold_into[conv] = node.layer
    folded_bns = set(fold_into.values())

    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=layer.name)
              for t, layer in zip(model.inputs, model._input_layers)]
    tensors = {id(t): n for t, n in zip(model.inputs, inputs)}
    pending = []
    for node in nodes:
        layer = node.layer
        if layer in folded_bns:
            out = tensors[id(tf.nest.flatten(node.keras_inputs)[0])]
        else:
            args = _map_structure(node.call_args, tensors)
            kwargs = _map_structure(node.call_kwargs, tensors)
            if layer in fold_into:
                layer, weights = _folded_conv(layer, fold_into[layer])
                out = layer(*args, **kwargs)
                pending.append((layer, weights))
            else:
                out = layer(*args, **kwargs)
        for old, new in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(out)):
            tensors[id(old)] = new
    outputs = _map_structure(model._nested_outputs, tensors)
    for layer, weights in pending:
        layer.set_weights(weights)
    return keras.Model(inputs, outputs, name=model.name)


# ---------------------------------------------------------------- QuantizeConfigs

def _weight_quantizer():
    # Per output channel (last kernel axis), symmetric, narrow range: tfmot's conv weight
    # quantizer. For depthwise kernels [k, k, C, 1] the last axis is the multiplier, exactly
    # as with tfmot's own DepthwiseConv2D config.
    return quantizers.LastValueQuantizer(num_bits=8, per_axis=True, symmetric=True,
                                         narrow_range=True)


def _output_quantizer():
    return quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                             narrow_range=False)


class _PerChannelWeights(quantizers.LastValueQuantizer):
    """LastValueQuantizer per last axis whose min/max variables have that axis' size."""

    def __init__(self):
        super().__init__(num_bits=8, per_axis=True, symmetric=True, narrow_range=True)

    def build(self, tensor_shape, name, layer):
        shape = (int(tensor_shape[-1]),)
        return {"min_var": layer.add_weight(name + "_min", shape=shape, trainable=False,
                                            initializer=keras.initializers.Constant(-6.0)),
                "max_var": layer.add_weight(name + "_max", shape=shape, trainable=False,
                                            initializer=keras.initializers.Constant(6.0))}


class ConvQuantizeConfig(tfmot_q.QuantizeConfig):
    """DilatedDepthwiseConv2D / DilatedConv2D: kernel per channel, output (unless a ReLU that
    quantizes it follows, so the converter can fuse the activation) with a moving average."""

    def __init__(self, kernel_attr, quantize_output=True):
        self.kernel_attr = kernel_attr
        self.quantize_output = bool(quantize_output)

    def get_weights_and_quantizers(self, layer):
        return [(getattr(layer, self.kernel_attr), _PerChannelWeights())]

    def set_quantize_weights(self, layer, quantize_weights):
        setattr(layer, self.kernel_attr, quantize_weights[0])

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_output_quantizer()] if self.quantize_output else []

    def get_config(self):
        return {"kernel_attr": self.kernel_attr, "quantize_output": self.quantize_output}


class OutputQuantizeConfig(tfmot_q.QuantizeConfig):
    """Quantizes only the output (GlobalResponseNorm: gamma/beta stay float in QAT and are
    quantized by the converter as constants of the int8 MUL/ADD)."""

    def get_weights_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_output_quantizer()]

    def get_config(self):
        return {}


class PassThroughQuantizeConfig(OutputQuantizeConfig):
    """No quantizer: the layer only moves values (SPLIT, GATHER), so its int8 output keeps its
    input's scale."""

    def get_output_quantizers(self, layer):
        return []


def quantize_scope():
    """Scope that deserializes QAT models holding the model-zoo layers."""
    from tfuav.models.layers import CUSTOM_OBJECTS
    objects = dict(CUSTOM_OBJECTS, ConvQuantizeConfig=ConvQuantizeConfig,
                   OutputQuantizeConfig=OutputQuantizeConfig,
                   PassThroughQuantizeConfig=PassThroughQuantizeConfig,
                   _PerChannelWeights=_PerChannelWeights)
    return tfmot_q.quantize_scope(objects)


def _annotate(model):
    nodes = _graph_nodes(model)
    followed_by_relu = set()
    consumers_of = {}
    for node in nodes:
        for t in tf.nest.flatten(node.keras_inputs):
            consumers_of.setdefault(id(t), []).append(node.layer)
    for node in nodes:
        outs = tf.nest.flatten(node.outputs)
        users = consumers_of.get(id(outs[0]), [])
        if len(outs) == 1 and len(users) == 1 and isinstance(users[0], keras.layers.ReLU):
            followed_by_relu.add(node.layer)

    def config_for(layer):
        if isinstance(layer, DilatedDepthwiseConv2D):
            return ConvQuantizeConfig("depthwise_kernel", layer not in followed_by_relu)
        if isinstance(layer, DilatedConv2D):
            return ConvQuantizeConfig("kernel", layer not in followed_by_relu)
        if isinstance(layer, GlobalResponseNorm):
            return OutputQuantizeConfig()
        if isinstance(layer, (ChannelGather, ChannelSplit, keras.layers.AveragePooling2D)):
            # int8 AVERAGE_POOL_2D keeps its input's scale; a fake-quant of its own on the
            # output (tfmot's default) makes the converter insert a float round trip.
            return PassThroughQuantizeConfig()
        return None

    def annotate(layer):
        config = config_for(layer)
        if config is not None:
            return tfmot_q.quantize_annotate_layer(layer, quantize_config=config)
        return tfmot_q.quantize_annotate_layer(layer)

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
    return annotated


def quantize_model(model):
    """BN-folded, annotated, fake-quantized copy of `model` (not yet fine-tuned)."""
    folded = fold_batchnorm(model)
    annotated = _annotate(folded)
    with quantize_scope():
        return tfmot_q.quantize_apply(annotated)


def quantize_aware(model, dataset, train_cfg, epochs, progress=True, augment=True):
    """Quantization-aware fine-tuning of `model` for `epochs` epochs; the returned model holds
    fake-quant ops and converts to an all-int8 TFLite graph."""
    from tfuav.train.loop import fit_model

    qat = quantize_model(model)
    if epochs > 0:
        fit_model(qat, dataset, train_cfg, epochs, augment=augment, progress=progress)
    return qat
