"""Model surgery: remove channel sets and gated connections, rebuilding a narrower model.

A removed channel's values where they leave their set (the inputs of convolutions and dense
layers, GlobalResponseNorm's channel mean) are replaced by constants: the per-channel means
measured by running the original model on sample inputs, folded into the consumer's bias
(exact when the channel is constant, e.g. after a BatchNorm with gamma 0; the mean-field
approximation otherwise: `max_removed_std` in the returned info says how far from exact).

Grouped 1x1/kxk convolutions keep every channel individually removable: a group that lost
more channels than the others is padded to the widest group (input slots filled with any kept
channel times zero weights, through the ChannelGather in front, which repeats indices;
output slots as zero-kernel outputs dropped by one ChannelGather after the conv + BN +
activation, so the converter still fuses them).
"""
import numpy as np
import tensorflow as tf

from tfuav.compress.channels import ChannelAnalysis, ChannelPlan, conv_exit_kind
from tfuav.compress.graph import Graph, clone_layer, weight_name
from tfuav.errors import TfuavError
from tfuav.models.layers import ChannelGather, ConnectionScale, DilatedConv2D

keras = tf.keras
L = keras.layers

ZERO_TOLERANCE = 1e-6   # a channel this close to 0 everywhere counts as the constant 0
_CHAIN = (L.BatchNormalization, L.ReLU, L.Activation, L.LeakyReLU, L.ELU)


# ---------------------------------------------------------------------- measurements

def _batches(sample_inputs, size):
    multi = isinstance(sample_inputs, (list, tuple))
    arrays = [np.asarray(a, np.float32) for a in (sample_inputs if multi else [sample_inputs])]
    n = len(arrays[0])
    if n == 0:
        raise TfuavError("sample_inputs is empty: channel surgery needs a few input samples")
    for start in range(0, n, size):
        part = [a[start:start + size] for a in arrays]
        yield part if multi else part[0]


def measure(model, graph, keys, grn_keys=(), sample_inputs=None, batch_size=16):
    """Per-channel statistics of tensors of `model` (given by graph key) on sample inputs:
    {key: {"mean", "std", "absmax"}}, plus for `grn_keys` the per-sample L2 norm over H, W:
    {"norm_mean", "norm_std"}."""
    keys, grn_keys = sorted(set(keys)), sorted(set(grn_keys))
    wanted = sorted(set(keys) | set(grn_keys))
    if not wanted:
        return {}
    if sample_inputs is None:
        raise TfuavError("removing channels needs sample_inputs (a few preprocessed input "
                         "samples) to measure the values that replace them")
    probe = keras.Model(model.inputs, [graph.tensors[k] for k in wanted])
    acc = {k: {"n": 0, "sum": 0.0, "sq": 0.0, "absmax": 0.0, "nn": 0, "nsum": 0.0, "nsq": 0.0}
           for k in wanted}
    for x in _batches(sample_inputs, batch_size):
        outs = probe(x, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for key, out in zip(wanted, outs):
            v = np.asarray(out, np.float64)
            a = acc[key]
            flat = v.reshape(-1, v.shape[-1])
            a["n"] += len(flat)
            a["sum"] = a["sum"] + flat.sum(0)
            a["sq"] = a["sq"] + (flat ** 2).sum(0)
            a["absmax"] = np.maximum(a["absmax"], np.abs(flat).max(0))
            if key in grn_keys:
                norms = np.sqrt((v.reshape(len(v), -1, v.shape[-1]) ** 2).sum(1))
                a["nn"] += len(norms)
                a["nsum"] = a["nsum"] + norms.sum(0)
                a["nsq"] = a["nsq"] + (norms ** 2).sum(0)
    stats = {}
    for key, a in acc.items():
        mean = a["sum"] / a["n"]
        entry = {"mean": mean, "std": np.sqrt(np.maximum(a["sq"] / a["n"] - mean ** 2, 0)),
                 "absmax": a["absmax"]}
        if key in grn_keys:
            nmean = a["nsum"] / a["nn"]
            entry.update(norm_mean=nmean,
                         norm_std=np.sqrt(np.maximum(a["nsq"] / a["nn"] - nmean ** 2, 0)))
        stats[key] = entry
    return stats


# ---------------------------------------------------------------------- folding

def _kernel_bias(layer):
    weights = {weight_name(w): w.numpy() for w in layer.weights}
    kernel = weights["kernel"]
    bias = weights.get("bias", np.zeros(kernel.shape[-1], kernel.dtype))
    return kernel, bias


def fold_delta(layer, constants):
    """Bias change of a conv / dense layer whose input channels k are replaced by the
    constants {k: value}: sum over the kernel's taps of W[..., k, out] * value, within k's
    group for a grouped convolution."""
    kernel, _ = _kernel_bias(layer)
    delta = np.zeros(kernel.shape[-1], np.float64)
    if not constants:
        return delta
    if isinstance(layer, L.Dense):
        for k, value in constants.items():
            delta += kernel[k].astype(np.float64) * value
        return delta
    taps = kernel.sum(axis=(0, 1)).astype(np.float64)       # (C_in / groups, C_out)
    groups = getattr(layer, "groups", 1) or 1
    per_group, out_per_group = taps.shape[0], taps.shape[1] // groups
    for k, value in constants.items():
        g = k // per_group
        cols = slice(g * out_per_group, (g + 1) * out_per_group)
        delta[cols] += taps[k - g * per_group, cols] * value
    return delta


def _with_bias(config, kernel, bias):
    """Config and weights of a conv/dense with the given kernel and bias (a bias is added
    when the layer had none and it is not zero)."""
    if "use_bias" in config and not config["use_bias"]:
        if not np.any(bias):
            return config, [kernel]
        config = dict(config, use_bias=True)
    return config, [kernel, bias.astype(np.float32)]


# ---------------------------------------------------------------------- connections

def cut_connections(model, names, sample_inputs=None):
    """Remove the connections gated by the ConnectionScale layers `names`: each is cut from
    the Add(s) it feeds (an Add left with one input becomes that input) and the layers that
    fed only it disappear. The branch's mean contribution (scale x per-channel mean of its
    input) is folded into the biases of the Add's consumers where they are all convolutions
    or dense layers (exact when the branch is constant, e.g. scale 0). Returns
    (model, info)."""
    graph = Graph.from_model(model)
    cuts = []
    for name in names:
        node = graph.node(name)
        key = node.outputs[0]
        adds = graph.consumers(key)
        if not isinstance(node.layer, ConnectionScale) or not adds or key in graph.output_keys \
                or any(not isinstance(a.layer, L.Add) or a.shared for a in adds):
            raise TfuavError(f"layer {name!r}: only a ConnectionScale feeding Add layers can be "
                             f"removed as a connection")
        cuts.append((node, adds))
    stats = measure(model, graph, [n.inputs[0] for n, _ in cuts], (), sample_inputs) \
        if sample_inputs is not None else {}
    offsets, unfolded, branch_max = {}, 0.0, 0.0
    for node, adds in cuts:
        scale = float(node.layer.get_weights()[0])
        entry = stats.get(node.inputs[0])
        if entry is not None:
            branch_max = max(branch_max, abs(scale) * float(entry["absmax"].max()))
        const = scale * entry["mean"] if entry is not None else None
        for add in adds:
            users = graph.consumers(add.outputs[0])
            foldable = add.outputs[0] not in graph.output_keys and all(
                isinstance(u.layer, (L.Conv2D, DilatedConv2D, L.Dense)) and not u.shared
                and conv_exit_kind(u.layer) == "fold" for u in users)
            if const is not None and np.any(const):
                if foldable:
                    for u in users:
                        offsets[u.name] = offsets.get(u.name, 0.0) + const
                else:
                    unfolded = max(unfolded, float(np.abs(const).max()))
            graph.cut_input(add, node.outputs[0])
    dropped = graph.drop_dead()

    def call(node, args, kwargs):
        layer = node.layer
        if node.name not in offsets:
            return clone_layer(layer)(*args, **kwargs)
        kernel, bias = _kernel_bias(layer)
        delta = fold_delta(layer, dict(enumerate(offsets[node.name])))
        config, weights = _with_bias(layer.get_config(), kernel, bias + delta)
        return clone_layer(layer, config, weights)(*args, **kwargs)

    info = {"connections_removed": list(names), "layers_removed": dropped,
            "connection_max_abs": branch_max, "connection_unfolded_max_abs": unfolded}
    return graph.rebuild(call), info


# ---------------------------------------------------------------------- channel plan

def grouped_layout(groups, c_in, c_out, kept_in, kept_out):
    """The rebuilt shape of a grouped convolution after removing channels.

    Returns (kept groups, input width, output width, input sequence, real-input mask,
    output sequence): the input sequence lists, group by group, the kept input channels
    padded to the widest group with a repeat of a kept channel (real mask False: zero
    weights); the output sequence lists the kept outputs padded with -1 (zero outputs)."""
    ipg, opg = c_in // groups, c_out // groups
    ins = [[i for i in kept_in if i // ipg == g] for g in range(groups)]
    outs = [[o for o in kept_out if o // opg == g] for g in range(groups)]
    kept = [g for g in range(groups) if outs[g]]
    in_w = max(1, max(len(ins[g]) for g in kept))
    out_w = max(len(outs[g]) for g in kept)
    sequence, real, out_sequence = [], [], []
    for g in kept:
        pad = ins[g][0] if ins[g] else kept_in[0]
        sequence += ins[g] + [pad] * (in_w - len(ins[g]))
        real += [True] * len(ins[g]) + [False] * (in_w - len(ins[g]))
        out_sequence += outs[g] + [-1] * (out_w - len(outs[g]))
    return kept, in_w, out_w, sequence, real, out_sequence


def _take(array, layout, axis, pad=0.0):
    """array's entries at `layout` along `axis`, with `pad` where layout is -1."""
    index = np.asarray([max(i, 0) for i in layout], np.int64)
    out = np.take(array, index, axis=axis)
    holes = np.asarray([i < 0 for i in layout])
    if holes.any():
        shape = [1] * out.ndim
        shape[axis] = len(layout)
        out = np.where(holes.reshape(shape), np.asarray(pad, out.dtype), out)
    return out


class _Surgeon:
    def __init__(self, graph, kinds, kept, stats):
        self.graph, self.kinds, self.kept, self.stats = graph, kinds, kept, stats
        self.layouts = {k: list(range(graph.channels(k))) for k in graph.input_keys}
        self.names = {n.name for n in graph.nodes}
        self.gather_target = {}   # gather layer name -> output sequence it must produce
        self.grouped = {}         # conv layer name -> grouped_layout(...)
        self.drop_after = {}      # key -> name of the conv whose padded outputs end there
        self.max_std = 0.0
        self._plan_grouped()

    def _unique(self, name):
        while name in self.names:
            name += "_"
        self.names.add(name)
        return name

    def _plan_grouped(self):
        g = self.graph
        for node in g.nodes:
            if self.kinds[node.name] != "conv" or getattr(node.layer, "groups", 1) == 1:
                continue
            key_in, key_out = node.inputs[0], node.outputs[0]
            plan = grouped_layout(node.layer.groups, g.channels(key_in), g.channels(key_out),
                                  self.kept[key_in], self.kept[key_out])
            self.grouped[node.name] = plan
            sequence, out_sequence = plan[3], plan[5]
            producer = g.producer(key_in)
            if sequence != self.kept[key_in] and producer is not None \
                    and self.kinds.get(producer.name) == "gather" \
                    and g.consumers(key_in) == [node] and key_in not in g.output_keys:
                self.gather_target[producer.name] = sequence
            if -1 in out_sequence:
                key = key_out
                while True:
                    users = g.consumers(key)
                    if key in g.output_keys or len(users) != 1 or users[0].shared \
                            or not isinstance(users[0].layer, _CHAIN) \
                            or self.kinds[users[0].name] != "per_channel":
                        break
                    key = users[0].outputs[0]
                self.drop_after[key] = node.name

    def layout(self, key):
        if key in self.layouts:
            return self.layouts[key]
        node = self.graph.producer(key)
        if node is not None and node.alias:
            return self.layout(node.inputs[0])
        raise KeyError(key)

    def _removed(self, key):
        kept = set(self.kept[key])
        return [c for c in range(self.graph.channels(key)) if c not in kept]

    def _constants(self, key):
        removed = self._removed(key)
        if not removed:
            return {}
        entry = self.stats[key]
        self.max_std = max(self.max_std, float(entry["std"][removed].max()))
        return {k: float(entry["mean"][k]) for k in removed}

    # ------------------------------------------------------------------ per kind

    def call(self, node, args, kwargs):
        kind = self.kinds[node.name]
        handler = getattr(self, f"_{kind}")
        out, layouts = handler(node, args, kwargs)
        out = out if isinstance(out, (list, tuple)) else [out]
        out = list(out)
        for i, (key, layout) in enumerate(zip(node.outputs, layouts)):
            if key in self.drop_after:
                index = [layout.index(c) for c in self.kept[key]]
                name = self._unique(f"{self.drop_after[key]}_drop")
                out[i] = ChannelGather(index, name=name)(out[i])
                layout = list(self.kept[key])
            self.layouts[key] = layout
        return out

    def _unknown(self, node, args, kwargs):
        for key in node.inputs:
            if self.layout(key) != list(range(self.graph.channels(key))):
                raise AssertionError(f"pinned layer {node.name} would see removed channels")
        return clone_layer(node.layer)(*args, **kwargs), [
            list(range(self.graph.channels(k))) for k in node.outputs]

    def _per_channel(self, node, args, kwargs):
        layer = node.layer
        layout = self.layout(node.inputs[0])
        channels = self.graph.channels(node.inputs[0])
        weights = []
        for w in layer.weights:
            value = w.numpy()
            if value.ndim == 0 or value.shape[-1] != channels or channels == 1:
                weights.append(value)
            else:
                pad = 1.0 if weight_name(w) == "moving_variance" else 0.0
                weights.append(_take(value, layout, -1, pad))
        return clone_layer(layer, layer.get_config(), weights)(*args, **kwargs), [layout]

    def _depthwise(self, node, args, kwargs):
        layer = node.layer
        layout = self.layout(node.inputs[0])
        m = self.graph.channels(node.outputs[0]) // self.graph.channels(node.inputs[0])
        out_layout = [c * m + j if c >= 0 else -1 for c in layout for j in range(m)]
        weights = []
        for w in layer.weights:
            value = w.numpy()
            if value.ndim == 4:
                weights.append(_take(value, layout, 2))
            else:
                weights.append(_take(value, out_layout, -1))
        return clone_layer(layer, layer.get_config(), weights)(*args, **kwargs), [out_layout]

    def _grn(self, node, args, kwargs):
        layer = node.layer
        key = node.inputs[0]
        layout = self.layout(key)
        config = layer.get_config()
        removed = self._removed(key)
        if removed:
            entry = self.stats[key]
            self.max_std = max(self.max_std, float(entry["norm_std"][removed].max()))
            config.update(mean_channels=layer.mean_channels or self.graph.channels(key),
                          removed_norm=layer.removed_norm + float(entry["norm_mean"][removed].sum()))
        weights = [_take(w.numpy(), layout, -1) for w in layer.weights]
        return clone_layer(layer, config, weights)(*args, **kwargs), [layout]

    def _merge(self, node, args, kwargs):
        c_out = self.graph.channels(node.outputs[0])
        full = [self.layout(k) for k in node.inputs if self.graph.channels(k) == c_out]
        if any(f != full[0] for f in full):
            raise AssertionError(f"inputs of {node.name} kept different channels")
        return clone_layer(node.layer)(*args, **kwargs), [full[0]]

    def _concat(self, node, args, kwargs):
        layout, pos = [], 0
        for key in node.inputs:
            layout += [pos + c for c in self.layout(key)]
            pos += self.graph.channels(key)
        return clone_layer(node.layer)(*args, **kwargs), [layout]

    def _split(self, node, args, kwargs):
        layout = self.layout(node.inputs[0])
        parts, pos = [], 0
        for key in node.outputs:
            n = self.graph.channels(key)
            parts.append([c - pos for c in layout if pos <= c < pos + n])
            pos += n
        sizes = [len(p) for p in parts]
        config = node.layer.get_config()
        config.pop("sizes", None)
        if len(set(sizes)) > 1:
            config["sizes"] = sizes
        config["groups"] = len(sizes)
        return clone_layer(node.layer, config, [])(*args, **kwargs), parts

    def _gather(self, node, args, kwargs):
        position, pos, start = {}, 0, 0
        for key in node.inputs:
            for i, c in enumerate(self.layout(key)):
                position.setdefault(start + c, pos + i)
            pos += len(self.layout(key))
            start += self.graph.channels(key)
        target = self.gather_target.get(node.name, self.kept[node.outputs[0]])
        indices = [position[node.layer.indices[t]] for t in target]
        config = dict(node.layer.get_config(), indices=indices)
        return clone_layer(node.layer, config, [])(*args, **kwargs), [list(target)]

    def _conv(self, node, args, kwargs):
        layer = node.layer
        key_in, key_out = node.inputs[0], node.outputs[0]
        layout = self.layout(key_in)
        kernel, bias = _kernel_bias(layer)
        bias = bias.astype(np.float64) + fold_delta(layer, self._constants(key_in))
        config = layer.get_config()
        if node.name in self.grouped:
            kept_groups, in_w, out_w, sequence, real, out_seq = self.grouped[node.name]
            if layout != sequence:
                index = [layout.index(c) for c in sequence]
                gather = ChannelGather(index, name=self._unique(f"{node.name}_in"))
                args = (gather(args[0]),) + tuple(args[1:])
            ipg = kernel.shape[2]
            new_kernel = np.zeros(kernel.shape[:2] + (in_w, len(out_seq)), kernel.dtype)
            new_bias = np.zeros(len(out_seq), np.float64)
            for j, g in enumerate(kept_groups):
                rows = [sequence[j * in_w + s] - g * ipg for s in range(in_w)
                        if real[j * in_w + s]]
                cols = [o for o in out_seq[j * out_w:(j + 1) * out_w] if o >= 0]
                block = kernel[:, :, rows][:, :, :, cols]
                new_kernel[:, :, :len(rows), j * out_w:j * out_w + len(cols)] = block
                new_bias[j * out_w:j * out_w + len(cols)] = bias[cols]
            config.update(filters=len(out_seq), groups=len(kept_groups))
            out_layout = out_seq
        else:
            out_layout = list(self.kept[key_out])
            new_kernel = kernel[:, :, layout][:, :, :, out_layout]
            new_bias = bias[out_layout]
            config.update(filters=len(out_layout))
        config, weights = _with_bias(config, new_kernel, new_bias)
        return clone_layer(layer, config, weights)(*args, **kwargs), [out_layout]

    def _dense(self, node, args, kwargs):
        layer = node.layer
        key_in, key_out = node.inputs[0], node.outputs[0]
        kernel, bias = _kernel_bias(layer)
        bias = bias.astype(np.float64) + fold_delta(layer, self._constants(key_in))
        out_layout = list(self.kept[key_out])
        new_kernel = kernel[self.layout(key_in)][:, out_layout]
        config = dict(layer.get_config(), units=len(out_layout))
        config, weights = _with_bias(config, new_kernel, bias[out_layout])
        return clone_layer(layer, config, weights)(*args, **kwargs), [out_layout]


def remove_channels(model, remove, sample_inputs):
    """Rebuild `model` without the channels `remove` ({tensor key: channels}, whole channel
    sets; keys that the model does not have are ignored). Returns (model, info)."""
    graph = Graph.from_model(model)
    analysis = ChannelAnalysis(graph)
    removed = {k: set(v) for k, v in remove.items() if k in graph.shapes and v}
    sets = {}
    for key, chans in removed.items():
        for c in chans:
            cls = analysis.class_of_element(key, c)
            if cls.id in sets:
                continue
            sets[cls.id] = cls
            if cls.pinned:
                raise TfuavError(f"channel {c} of {key} cannot be removed: its channel set is "
                                 f"pinned by {cls.pinned_by!r}")
            missing = [(k, j) for k, j in cls.elements if j not in removed.get(k, ())]
            if missing:
                raise TfuavError(f"channel {c} of {key} must be removed together with channel "
                                 f"{missing[0][1]} of {missing[0][0]} (same channel set)")
    kept = {k: [c for c in range(graph.channels(k)) if c not in removed.get(k, ())]
            for k in graph.shapes}
    empty = [k for k in removed if not kept[k]]
    if empty:
        raise TfuavError(f"removing every channel of {empty[0]} is not possible: keep at "
                         f"least one")
    exits, grn_keys = set(), set()
    for node in graph.nodes:
        kind = analysis.kinds[node.name]
        if kind in ("conv", "dense", "grn") and node.inputs[0] in removed:
            (grn_keys if kind == "grn" else exits).add(node.inputs[0])
    stats = measure(model, graph, exits, grn_keys, sample_inputs) if exits or grn_keys else {}
    for node in graph.nodes:
        if analysis.kinds[node.name] == "conv" and node.inputs[0] in removed \
                and conv_exit_kind(node.layer) == "zero":
            key = node.inputs[0]
            worst = max(removed[key], key=lambda c: stats[key]["absmax"][c])
            if stats[key]["absmax"][worst] > ZERO_TOLERANCE:
                raise TfuavError(
                    f"channel {worst} of {key} feeds {node.name!r}, a zero-padded "
                    f"{'x'.join(map(str, node.layer.kernel_size))} convolution, and is not "
                    f"constantly 0 (max |x| {stats[key]['absmax'][worst]:.3g}): removing it "
                    f"would not be exact at the border")
    surgeon = _Surgeon(graph, analysis.kinds, kept, stats)
    pruned = graph.rebuild(surgeon.call)
    info = {"channel_sets_removed": len(sets), "max_removed_std": surgeon.max_std}
    return pruned, info


def apply_plan(model, plan, sample_inputs):
    """Apply a ChannelPlan: cut its connections, then remove its channels. Returns
    (pruned model, info)."""
    info = {"connections_removed": [], "layers_removed": [], "connection_max_abs": 0.0,
            "connection_unfolded_max_abs": 0.0}
    if plan.connections:
        model, cut_info = cut_connections(model, plan.connections, sample_inputs)
        info.update(cut_info)
    pruned, channel_info = remove_channels(model, plan.remove, sample_inputs)
    info.update(channel_info)
    return pruned, info


__all__ = ["ChannelPlan", "apply_plan", "cut_connections", "fold_delta", "grouped_layout",
           "measure", "remove_channels"]
