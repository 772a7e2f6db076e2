"""A functional Keras model as editable data: its nodes (layer, inputs, outputs) in
topological order, tensors named by key, and a rebuild into a new functional model.

Channel analysis reads it, connection removal edits it (an Add input cut, dead layers
dropped), and surgery / low-rank factorization rebuild it with edited layers.
"""
from dataclasses import dataclass, field

import tensorflow as tf

from tfuav.errors import TfuavError

keras = tf.keras


class Ref:
    """Stands for one tensor (by key) inside a node's call arguments."""

    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key

    def __repr__(self):
        return f"Ref({self.key})"


@dataclass
class Node:
    layer: keras.layers.Layer
    args: object                  # call_args with tensors replaced by Ref
    kwargs: dict
    outputs: list                 # output keys, flattened
    shared: bool = False          # the layer is called more than once in the model
    alias: bool = False           # an Add left with one input: the output is that input

    @property
    def name(self):
        return self.layer.name

    @property
    def inputs(self):
        """Input keys in call order (args, then kwargs)."""
        leaves = tf.nest.flatten([self.args, self.kwargs])
        return [leaf.key for leaf in leaves if isinstance(leaf, Ref)]


def _key(tensor):
    layer, node_index, tensor_index = tensor._keras_history
    if len(layer._inbound_nodes) > 1:
        return f"{layer.name}@{node_index}:{tensor_index}"
    return f"{layer.name}:{tensor_index}"


def _is_tensor(x):
    return hasattr(x, "_keras_history")


def _to_refs(structure):
    return tf.nest.map_structure(lambda x: Ref(_key(x)) if _is_tensor(x) else x, structure)


@dataclass
class Graph:
    model: keras.Model
    nodes: list
    input_keys: list
    output_structure: object      # model outputs with tensors replaced by Ref
    shapes: dict                  # key -> TensorShape
    tensors: dict                 # key -> the model's KerasTensor (for measurements)
    _consumers: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_model(cls, model):
        if not getattr(model, "_is_graph_network", False):
            raise TfuavError(f"model {model.name!r}: structured compression needs a functional "
                             f"Keras model (keras.Model(inputs, outputs) or Sequential with an "
                             f"input shape), not a subclassed one")
        calls = {}
        for depth in model._nodes_by_depth:
            for node in model._nodes_by_depth[depth]:
                calls[node.layer] = calls.get(node.layer, 0) + 1
        nodes, shapes, tensors = [], {}, {}
        for t in model.inputs:
            shapes[_key(t)], tensors[_key(t)] = t.shape, t
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if isinstance(node.layer, keras.layers.InputLayer):
                    continue
                outs = tf.nest.flatten(node.outputs)
                for t in outs:
                    shapes[_key(t)], tensors[_key(t)] = t.shape, t
                nodes.append(Node(node.layer, _to_refs(node.call_args),
                                  _to_refs(node.call_kwargs), [_key(t) for t in outs],
                                  shared=calls[node.layer] > 1))
        graph = cls(model, nodes, [_key(t) for t in model.inputs],
                    _to_refs(model._nested_outputs), shapes, tensors)
        graph.refresh()
        return graph

    # ------------------------------------------------------------------ queries

    def refresh(self):
        self._consumers = {}
        for node in self.nodes:
            for key in node.inputs:
                self._consumers.setdefault(key, []).append(node)

    def consumers(self, key):
        return self._consumers.get(key, [])

    def producer(self, key):
        for node in self.nodes:
            if key in node.outputs:
                return node
        return None

    def node(self, layer_name):
        for node in self.nodes:
            if node.name == layer_name:
                return node
        raise TfuavError(f"model {self.model.name!r} has no layer {layer_name!r}")

    @property
    def output_keys(self):
        return [r.key for r in tf.nest.flatten(self.output_structure) if isinstance(r, Ref)]

    def channels(self, key):
        shape = self.shapes[key]
        return int(shape[-1]) if shape.rank and shape[-1] is not None else 0

    # ------------------------------------------------------------------ edits

    def cut_input(self, node, key):
        """Drop input `key` from the list argument of merge layer `node` (Add); an Add left
        with one input becomes an alias of it."""
        inputs = node.args[0]
        kept = [r for r in inputs if not (isinstance(r, Ref) and r.key == key)]
        if len(kept) == len(inputs):
            raise ValueError(f"{key} is not an input of {node.name}")
        if not kept:
            raise TfuavError(f"cannot remove every input of {node.name!r}")
        node.args = (kept,) + tuple(node.args[1:])
        node.alias = len(kept) == 1
        self.refresh()

    def drop_dead(self):
        """Remove the nodes none of whose outputs is used. Returns their layer names."""
        dropped = []
        while True:
            used = set(self.output_keys)
            for node in self.nodes:
                used.update(node.inputs)
            dead = [n for n in self.nodes if not any(k in used for k in n.outputs)]
            if not dead:
                break
            dropped += [n.name for n in dead]
            self.nodes = [n for n in self.nodes if n not in dead]
        self.refresh()
        return dropped

    def resolve(self, key):
        """The key a tensor really is after aliases (an Add left with one input)."""
        node = self.producer(key)
        while node is not None and node.alias:
            key = node.inputs[0]
            node = self.producer(key)
        return key

    # ------------------------------------------------------------------ rebuild

    def rebuild(self, call_node=None, name=None):
        """A new functional model. call_node(node, args, kwargs) -> output tensor(s) calls a
        (new) layer on the new tensors; by default every layer is cloned from its config
        with its weights (and shared with the old model if it cannot be cloned)."""
        call_node = call_node or (lambda node, args, kwargs: clone_layer(node.layer)(
            *args, **kwargs))
        inputs = []
        tensors = {}
        for key in self.input_keys:
            old = self.tensors[key]
            layer = old._keras_history[0]
            new = keras.Input(batch_shape=old.shape, dtype=old.dtype, name=layer.name)
            inputs.append(new)
            tensors[key] = new
        def look(x):
            return tensors[x.key] if isinstance(x, Ref) else x

        for node in self.nodes:
            args = tf.nest.map_structure(look, node.args)
            kwargs = tf.nest.map_structure(look, node.kwargs)
            if node.alias:
                out = [tensors[node.inputs[0]]]
            else:
                out = tf.nest.flatten(call_node(node, args, kwargs))
            if len(out) != len(node.outputs):
                raise ValueError(f"{node.name}: {len(out)} outputs for {len(node.outputs)}")
            for key, t in zip(node.outputs, out):
                tensors[key] = t
        outputs = tf.nest.map_structure(look, self.output_structure)
        model = keras.Model(inputs, outputs, name=name or self.model.name)
        return set_pending_weights(model)


def clone_layer(layer, config=None, weights=None):
    """A new layer from `layer`'s (or the given) config; its weights are set once it is built
    (call `set_pending_weights`). Falls back to the layer itself if it cannot be cloned."""
    try:
        new = layer.__class__.from_config(dict(config or layer.get_config()))
    except (NotImplementedError, TypeError, ValueError):
        if config is not None:
            raise
        return layer
    new._tfuav_pending_weights = layer.get_weights() if weights is None else weights
    return new


def set_pending_weights(model):
    """Set the weights recorded by clone_layer on every layer of `model` that has them."""
    for layer in model.layers:
        weights = getattr(layer, "_tfuav_pending_weights", None)
        if weights is not None:
            layer.set_weights(weights)
            del layer._tfuav_pending_weights
    return model


def weight_name(variable):
    """'kernel', 'bias', 'gamma', ... from a variable name like 'conv/kernel:0'."""
    return variable.name.split("/")[-1].split(":")[0]
