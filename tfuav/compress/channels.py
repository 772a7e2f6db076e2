"""Channel analysis: which channels of a functional model must be removed together.

Every (tensor, channel) pair is an element; layers tie elements (union-find), and a class of
tied elements (a "channel set") is the unit of removal. Ties:

- per-channel layers (BatchNorm, activations, pools, padding, resizing, dropout, depthwise
  convolutions, ConnectionScale, GlobalResponseNorm): out[c] ~ in[c] (a depthwise conv with
  multiplier m: out[c*m + j] ~ in[c]);
- Add / Multiply / Subtract / Maximum / Minimum / Average: every input and the output
  channel-wise; an input broadcast over channels (1 channel) is pinned instead;
- Concatenate (channel axis): positionally; ChannelSplit: each part to its slice;
  ChannelGather: out[i] ~ concat(inputs)[indices[i]].

Conv2D (grouped too), DilatedConv2D and Dense are boundaries: their outputs start new
classes and their inputs are "exits", where removed channels are replaced by constants folded
into the bias. GlobalResponseNorm's cross-channel mean is an exit too. Any other layer (and a
layer called twice) pins every channel of its inputs and outputs, as do the model's inputs and
outputs: a pinned class is never removed.
"""
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from tfuav.compress.graph import Graph
from tfuav.errors import TfuavError
from tfuav.models.layers import (ChannelGather, ChannelSplit, ConnectionScale, DilatedConv2D,
                                 DilatedDepthwiseConv2D, GlobalResponseNorm)

keras = tf.keras
L = keras.layers

_PARAMETER_FREE = tuple(t for t in (
    L.ReLU, L.LeakyReLU, L.ELU, L.ThresholdedReLU, L.MaxPooling2D, L.AveragePooling2D,
    L.GlobalAveragePooling2D, L.GlobalMaxPooling2D, L.ZeroPadding2D, L.Cropping2D,
    L.UpSampling2D, L.Dropout, L.GaussianNoise, L.GaussianDropout, L.AlphaDropout,
    L.ActivityRegularization, L.Resizing, getattr(L, "Identity", None)) if t is not None)
_MERGES = (L.Add, L.Multiply, L.Subtract, L.Maximum, L.Minimum, L.Average)
_ELEMENTWISE_ACTIVATIONS = {
    "linear", "relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "swish", "silu", "elu",
    "selu", "gelu", "softplus", "softsign", "exponential", "mish", "hard_swish", "hard_silu",
    "leaky_relu"}
_CHANNELS_LAST = (None, "channels_last")


def _channels_last(layer):
    return getattr(layer, "data_format", None) in _CHANNELS_LAST


def _is_per_channel(layer, rank):
    if isinstance(layer, (ConnectionScale, L.BatchNormalization)):
        if isinstance(layer, L.BatchNormalization):
            axis = list(np.atleast_1d(layer.axis))
            return len(axis) == 1 and axis[0] in (-1, rank - 1)
        return True
    if isinstance(layer, L.Activation):
        return getattr(layer.activation, "__name__", "") in _ELEMENTWISE_ACTIVATIONS
    if isinstance(layer, L.Softmax):
        axes = [a % rank for a in np.atleast_1d(layer.axis)]
        return rank - 1 not in axes
    if isinstance(layer, L.PReLU):
        shared = [a % rank for a in np.atleast_1d(layer.shared_axes or [])]
        return rank - 1 not in shared
    return isinstance(layer, _PARAMETER_FREE) and _channels_last(layer)


def layer_kind(node, graph):
    """How a node treats channels: 'alias', 'per_channel', 'depthwise', 'grn', 'merge',
    'concat', 'split', 'gather', 'conv', 'dense' or 'unknown'."""
    layer = node.layer
    if node.alias:
        return "alias"
    ins, outs = node.inputs, node.outputs
    if node.shared or isinstance(layer, keras.Model) or not ins \
            or any(graph.channels(k) == 0 for k in ins + outs):
        return "unknown"
    single = len(ins) == 1 and len(outs) == 1
    rank = graph.shapes[ins[0]].rank
    c_in, c_out = graph.channels(ins[0]), graph.channels(outs[0])
    if isinstance(layer, GlobalResponseNorm):
        return "grn" if single and rank == 4 and c_in == c_out else "unknown"
    if isinstance(layer, (DilatedDepthwiseConv2D, L.DepthwiseConv2D)):
        ok = single and rank == 4 and _channels_last(layer) and c_out % c_in == 0
        return "depthwise" if ok else "unknown"
    if isinstance(layer, DilatedConv2D) or (
            isinstance(layer, L.Conv2D) and not isinstance(layer, L.Conv2DTranspose)):
        return "conv" if single and rank == 4 and _channels_last(layer) else "unknown"
    if isinstance(layer, L.Dense):
        return "dense" if single else "unknown"
    if isinstance(layer, _MERGES):
        full = [graph.channels(k) for k in ins]
        ok = len(outs) == 1 and all(c in (c_out, 1) for c in full) and c_out in full
        return "merge" if ok else "unknown"
    if isinstance(layer, L.Concatenate):
        ok = len(outs) == 1 and layer.axis in (-1, rank - 1)
        return "concat" if ok else "unknown"
    if isinstance(layer, ChannelSplit):
        return "split" if len(ins) == 1 else "unknown"
    if isinstance(layer, ChannelGather):
        return "gather" if len(outs) == 1 else "unknown"
    if single and c_in == c_out and _is_per_channel(layer, rank):
        return "per_channel"
    return "unknown"


def conv_exit_kind(layer):
    """'fold' where replacing an input channel by a constant is exactly a bias change
    (1x1 kernels, 'valid' padding, dense), 'zero' where the zero padding at the border makes
    it exact only for the constant 0."""
    if isinstance(layer, (L.Dense, DilatedConv2D)):
        return "fold"
    kernel = tuple(layer.kernel_size)
    return "fold" if layer.padding == "valid" or all(k == 1 for k in kernel) else "zero"


@dataclass
class ChannelClass:
    id: int
    elements: list                       # [(tensor key, channel)]
    pinned: bool = False
    pinned_by: str = ""                  # the first layer (or "model input/output") that pins it
    batchnorms: list = field(default_factory=list)   # [(layer name, channel)]
    scales: list = field(default_factory=list)       # ConnectionScale layer names
    exits: list = field(default_factory=list)        # [(layer name, key, channel, kind)]
    producers: tuple = ()                # boundary layers whose outputs are in the class


@dataclass
class ChannelPlan:
    """What surgery removes: channels per tensor key, and ConnectionScale-gated connections
    (layer names) cut from the Add they feed."""
    remove: dict = field(default_factory=dict)    # key -> sorted channel list
    connections: list = field(default_factory=list)

    def merged(self, other):
        remove = {k: sorted(set(v) | set(other.remove.get(k, ()))) for k, v in self.remove.items()}
        for k, v in other.remove.items():
            remove.setdefault(k, sorted(v))
        return ChannelPlan(remove, sorted(set(self.connections) | set(other.connections)))


class _UnionFind:
    def __init__(self, n):
        self.parent = np.arange(n)

    def find(self, i):
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class ChannelAnalysis:
    """The channel classes of a graph (see the module docstring)."""

    def __init__(self, graph):
        self.graph = graph
        self.kinds = {node.name: layer_kind(node, graph) for node in graph.nodes}
        keys = list(graph.shapes)
        self.offset, n = {}, 0
        for key in keys:
            self.offset[key] = n
            n += graph.channels(key)
        self._uf = _UnionFind(n)
        self._pins = {}  # element -> reason
        self._tie_all()
        self._collect(keys)

    # ---------------------------------------------------------------- element helpers

    def _e(self, key, c):
        return self.offset[key] + c

    def _tie(self, a, ca, b, cb):
        self._uf.union(self._e(a, ca), self._e(b, cb))

    def _pin(self, key, reason):
        for c in range(self.graph.channels(key)):
            self._pins.setdefault(self._e(key, c), reason)

    def _tie_all(self):
        g = self.graph
        for key in g.input_keys:
            self._pin(key, "model input")
        for key in g.output_keys:
            self._pin(key, "model output")
        for node in g.nodes:
            kind = self.kinds[node.name]
            ins, outs = node.inputs, node.outputs
            if kind in ("alias", "per_channel", "grn"):
                for c in range(g.channels(outs[0])):
                    self._tie(ins[0], c, outs[0], c)
            elif kind == "depthwise":
                m = g.channels(outs[0]) // g.channels(ins[0])
                for c in range(g.channels(ins[0])):
                    for j in range(m):
                        self._tie(ins[0], c, outs[0], c * m + j)
            elif kind == "merge":
                c_out = g.channels(outs[0])
                for key in ins:
                    if g.channels(key) == c_out:
                        for c in range(c_out):
                            self._tie(key, c, outs[0], c)
                    else:
                        self._pin(key, node.name)
            elif kind == "concat":
                pos = 0
                for key in ins:
                    for c in range(g.channels(key)):
                        self._tie(key, c, outs[0], pos + c)
                    pos += g.channels(key)
            elif kind == "split":
                pos = 0
                for key in outs:
                    for c in range(g.channels(key)):
                        self._tie(ins[0], pos + c, key, c)
                    pos += g.channels(key)
            elif kind == "gather":
                flat = [(key, c) for key in ins for c in range(g.channels(key))]
                for i, j in enumerate(node.layer.indices):
                    self._tie(outs[0], i, *flat[j])
            elif kind == "unknown":
                for key in ins + outs:
                    self._pin(key, node.name)

    def _collect(self, keys):
        g = self.graph
        by_root = {}
        for key in keys:
            for c in range(g.channels(key)):
                by_root.setdefault(self._uf.find(self._e(key, c)), []).append((key, c))
        self.classes = []
        self._class_of = {}
        for i, elements in enumerate(by_root.values()):
            cls = ChannelClass(i, elements)
            for key, c in elements:
                self._class_of[(key, c)] = i
                reason = self._pins.get(self._e(key, c))
                if reason and not cls.pinned:
                    cls.pinned, cls.pinned_by = True, reason
            self.classes.append(cls)
        producers = {}
        for node in g.nodes:
            kind = self.kinds[node.name]
            layer = node.layer
            if kind in ("conv", "dense"):
                key = node.inputs[0]
                exit_kind = conv_exit_kind(layer)
                for c in range(g.channels(key)):
                    self.classes[self._class_of[(key, c)]].exits.append(
                        (node.name, key, c, exit_kind))
                for c in range(g.channels(node.outputs[0])):
                    producers.setdefault(self._class_of[(node.outputs[0], c)], set()).add(
                        node.name)
            elif kind == "grn":
                key = node.inputs[0]
                for c in range(g.channels(key)):
                    self.classes[self._class_of[(key, c)]].exits.append((node.name, key, c, "grn"))
            elif kind == "per_channel" and isinstance(layer, L.BatchNormalization) \
                    and layer.scale:
                key = node.inputs[0]
                for c in range(g.channels(key)):
                    self.classes[self._class_of[(key, c)]].batchnorms.append((node.name, c))
            elif kind == "per_channel" and isinstance(layer, ConnectionScale):
                key = node.inputs[0]
                for c in range(g.channels(key)):
                    scales = self.classes[self._class_of[(key, c)]].scales
                    if node.name not in scales:
                        scales.append(node.name)
        for i, names in producers.items():
            self.classes[i].producers = tuple(sorted(names))

    # ---------------------------------------------------------------- queries

    def class_of(self, layer_name, channel, output=0):
        """The class holding channel `channel` of output `output` of layer `layer_name`."""
        node = self.graph.node(layer_name)
        key = node.outputs[output]
        if not 0 <= channel < self.graph.channels(key):
            raise TfuavError(f"layer {layer_name!r} has no output channel {channel}")
        return self.classes[self._class_of[(key, channel)]]

    def class_of_element(self, key, channel):
        return self.classes[self._class_of[(key, channel)]]

    def removable(self):
        return [c for c in self.classes if not c.pinned]

    def plan(self, classes, connections=()):
        """A ChannelPlan removing the given classes (ids or ChannelClass objects)."""
        remove = {}
        for cls in classes:
            cls = self.classes[cls] if isinstance(cls, (int, np.integer)) else cls
            if cls.pinned:
                raise TfuavError(f"channel set {cls.id} cannot be removed: it is pinned by "
                                 f"{cls.pinned_by!r}")
            for key, c in cls.elements:
                remove.setdefault(key, set()).add(c)
        return ChannelPlan({k: sorted(v) for k, v in remove.items()}, list(connections))


def analyze_channels(model_or_graph):
    """ChannelAnalysis of a functional Keras model (or of a Graph)."""
    graph = model_or_graph if isinstance(model_or_graph, Graph) else Graph.from_model(
        model_or_graph)
    return ChannelAnalysis(graph)
