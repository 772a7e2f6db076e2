"""Budgeted per-layer channel search: how many channels each layer keeps.

Every removable channel set has an importance (the mean |gamma| of its BatchNorms and |scale|
of its ConnectionScales: network slimming drives both towards 0 for channels the task does not
need) and a cost it saves (MACs, or estimated latency: MACs x the runtime's cycles per MAC for
the op kind / clock). Sets are grouped by the layer(s) producing them; each group gives up its
least important set in turn, and the greedy search takes, step by step, the group's offer with
the least importance per cost saved until the model fits the budget. A group never drops below
a floor (`min_keep_ratio` of its channels, at least 1, in every tensor); whole connections
gated by a ConnectionScale are offers too (importance: |scale| x their channel count plus
the importance of every set living only in the layers that go with them; saving: those
layers' cost).

The cost model is the rebuilt model's: a grouped convolution costs groups x widest group in x
widest group out, as surgery pads it (see surgery.grouped_layout), so the search's prediction
equals count_macs of the pruned model.
"""
import copy
import math
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from tfuav.compress.channels import ChannelPlan
from tfuav.errors import TfuavError
from tfuav.models.layers import ConnectionScale
from tfuav.models.stats import layer_macs, op_macs

keras = tf.keras
L = keras.layers

MAX_CHUNK = 64   # sets taken together when one alone saves nothing (grouped-conv padding)


# ---------------------------------------------------------------------- latency

def runtime_cycles(target, kernels="reference"):
    """(Target, {op kind: cycles per MAC}) for a target name or Target."""
    from tfuav.targets import load_runtime, load_target
    target = load_target(target) if isinstance(target, str) else target
    runtime = load_runtime(target.runtime)
    table = runtime.cycles_per_mac.get(kernels)
    if not table:
        raise TfuavError(f"configs/runtimes/{runtime.name}.yaml: no cycles_per_mac for kernels "
                         f"{kernels!r}, so no latency estimate for target {target.name!r} "
                         f"(kernel sets listed: {', '.join(runtime.cycles_per_mac) or 'none'})")
    return target, table


def _cycles(table, kind):
    if kind not in table:
        raise TfuavError(f"configs/runtimes: cycles_per_mac has no entry for {kind} "
                         f"(listed: {', '.join(sorted(table))})")
    return float(table[kind])


def estimate_latency_ms(model, target, kernels="reference"):
    """Estimated inference time on the target: sum over MAC ops of MACs x cycles per MAC of
    the op kind, divided by the clock."""
    target, table = runtime_cycles(target, kernels)
    cycles = sum(macs * _cycles(table, kind) for kind, macs in layer_macs(model).values())
    return cycles / (target.clock_mhz * 1e3)


# ---------------------------------------------------------------------- cost model

def _spatial(shape):
    return int(np.prod([d for d in shape[1:-1] if d is not None]))


@dataclass
class _Cost:
    node: object
    kind: str                 # conv | grouped | depthwise | dense | fixed
    factor: float             # cost per unit (MACs x weight)
    key_in: str = ""
    key_out: str = ""
    groups: int = 1
    ipg: int = 0
    opg: int = 0
    fixed: float = 0.0


class CostModel:
    """Cost (MACs, or ms with `weights` {op kind: ms per MAC}) of the graph with some channel
    sets and connections removed."""

    def __init__(self, graph, kinds, weights=None):
        self.graph = graph
        self.weights = weights
        self.items = []
        self.by_key = {}
        self.kept = {k: graph.channels(k) for k in graph.shapes}
        self.group_in, self.group_out = {}, {}
        self.dead = set()
        for node in graph.nodes:
            item = self._item(node, kinds[node.name])
            if item is None:
                continue
            self.items.append(item)
            for key in {item.key_in, item.key_out} - {""}:
                self.by_key.setdefault(key, []).append(item)
            if item.kind == "grouped":
                self.group_in[node.name] = np.full(item.groups, item.ipg)
                self.group_out[node.name] = np.full(item.groups, item.opg)

    def _weight(self, op):
        return 1.0 if self.weights is None else _cycles(self.weights, op)

    def _item(self, node, kind):
        layer = node.layer
        op, macs = op_macs(layer) if not node.alias else (None, 0)
        if kind == "conv":
            k = int(np.prod(layer.kernel.shape[:-2]))
            f = _spatial(self.graph.shapes[node.outputs[0]]) * k * self._weight("CONV_2D")
            groups = getattr(layer, "groups", 1) or 1
            key_in, key_out = node.inputs[0], node.outputs[0]
            if groups == 1:
                return _Cost(node, "conv", f, key_in, key_out)
            return _Cost(node, "grouped", f, key_in, key_out, groups,
                         self.graph.channels(key_in) // groups,
                         self.graph.channels(key_out) // groups)
        if kind == "depthwise":
            kernel = layer.depthwise_kernel.shape
            f = _spatial(self.graph.shapes[node.outputs[0]]) * int(kernel[0]) * int(kernel[1])
            return _Cost(node, "depthwise", f * self._weight("DEPTHWISE_CONV_2D"),
                         key_out=node.outputs[0])
        if kind == "dense":
            f = _spatial(self.graph.shapes[node.outputs[0]]) or 1
            return _Cost(node, "dense", f * self._weight("FULLY_CONNECTED"), node.inputs[0],
                         node.outputs[0])
        if macs:
            return _Cost(node, "fixed", 0.0, fixed=macs * self._weight(op))
        return None

    def item_cost(self, item, delta=None, group_delta=None):
        if item.node.name in self.dead:
            return 0.0
        d = delta or {}
        if item.kind == "fixed":
            return item.fixed
        if item.kind == "depthwise":
            return item.factor * (self.kept[item.key_out] - d.get(item.key_out, 0))
        if item.kind in ("conv", "dense"):
            return item.factor * (self.kept[item.key_in] - d.get(item.key_in, 0)) * (
                self.kept[item.key_out] - d.get(item.key_out, 0))
        gi = self.group_in[item.node.name]
        go = self.group_out[item.node.name]
        if group_delta and item.node.name in group_delta:
            di, do = group_delta[item.node.name]
            gi, go = gi - di, go - do
        alive = go > 0
        if not alive.any():
            return 0.0
        return item.factor * int(alive.sum()) * max(1, int(gi[alive].max())) * int(go[alive].max())

    def total(self):
        return sum(self.item_cost(item) for item in self.items)

    # ---------------------------------------------------------------- channel sets

    def deltas(self, classes):
        """Element counts per key, and per grouped conv the per-group counts, that removing
        `classes` takes away."""
        delta, group = {}, {}
        for cls in classes:
            for key, c in cls.elements:
                delta[key] = delta.get(key, 0) + 1
                for item in self.by_key.get(key, ()):
                    if item.kind != "grouped":
                        continue
                    di, do = group.setdefault(item.node.name, (np.zeros(item.groups, int),
                                                                np.zeros(item.groups, int)))
                    if key == item.key_in:
                        di[c // item.ipg] += 1
                    if key == item.key_out:
                        do[c // item.opg] += 1
        return delta, group

    def saving(self, delta, group):
        items = {id(i): i for key in delta for i in self.by_key.get(key, ())}
        return sum(self.item_cost(i) - self.item_cost(i, delta, group) for i in items.values())

    def apply(self, delta, group):
        for key, n in delta.items():
            self.kept[key] -= n
        for name, (di, do) in group.items():
            self.group_in[name] = self.group_in[name] - di
            self.group_out[name] = self.group_out[name] - do


# ---------------------------------------------------------------------- the search

def importance(model_layers, cls):
    """Mean |gamma| of the set's BatchNorms and |scale| of its ConnectionScales (None when
    it has neither: no slimming signal, the search keeps it)."""
    values = []
    for name, c in cls.batchnorms:
        values.append(abs(float(model_layers[name].gamma.numpy()[c])))
    for name in cls.scales:
        values.append(abs(float(model_layers[name].get_weights()[0])))
    return float(np.mean(values)) if values else None


def cuttable_connections(graph):
    """ConnectionScale nodes that feed only Add layers (and no model output)."""
    found = []
    for node in graph.nodes:
        if not isinstance(node.layer, ConnectionScale) or node.shared:
            continue
        users = graph.consumers(node.outputs[0])
        if users and node.outputs[0] not in graph.output_keys and all(
                isinstance(u.layer, L.Add) and not u.shared for u in users):
            found.append(node)
    return found


def connection_layers(graph, name):
    """Names of the layers that disappear with the connection gated by ConnectionScale
    `name` (itself included)."""
    trial = copy.copy(graph)
    trial.nodes = [copy.copy(n) for n in graph.nodes]
    trial.refresh()
    node = trial.node(name)
    for add in list(trial.consumers(node.outputs[0])):
        if len(add.inputs) <= 1:
            return None
        trial.cut_input(add, node.outputs[0])
    trial.drop_dead()
    remaining = {n.name for n in trial.nodes}
    return {n.name for n in graph.nodes} - remaining


@dataclass
class SearchResult:
    plan: ChannelPlan
    classes: list                    # removed ChannelClass objects
    connections: list                # removed connection names
    cost_before: float
    cost_after: float
    budget: float
    met: bool
    groups: dict = field(default_factory=dict)   # producer layers -> (sets before, after)


def search(analysis, budget, excluded=(), weights=None, min_keep_ratio=0.1,
           connections=True, tolerance=0.01):
    """Greedy per-layer search (see the module docstring) until the cost is at most
    `budget` (MACs, or ms with `weights`). `excluded`: class ids the search must keep.
    Near the budget, an offer that would overshoot it by more than `tolerance` x the
    original cost gives way to the best smaller offer, so the result lands close under it."""
    graph = analysis.graph
    layers = {n.name: n.layer for n in graph.nodes}
    cost = CostModel(graph, analysis.kinds, weights)
    before = total = cost.total()
    floor = {k: max(1, math.ceil(min_keep_ratio * graph.channels(k))) for k in graph.shapes}
    excluded = set(excluded)
    groups = {}
    for cls in analysis.removable():
        if cls.id in excluded or not cls.producers:
            continue
        value = importance(layers, cls)
        if value is not None:
            groups.setdefault(cls.producers, []).append((value, cls.id, cls))
    for offers in groups.values():
        offers.sort(key=lambda o: (o[0], o[1]))
    sizes = {p: len(o) for p, o in groups.items()}
    gates = []
    if connections:
        producer = {k: n.name for n in graph.nodes for k in n.outputs}
        for node in cuttable_connections(graph):
            names = connection_layers(graph, node.name)
            if not names:
                continue
            # The connection's channels, each worth |scale| as a set is worth its |gamma|,
            # plus every set that lives only in the layers going with it: cutting is then
            # priced like removing all it carries.
            value = abs(float(node.layer.get_weights()[0])) * graph.channels(node.outputs[0])
            for cls in analysis.classes:
                if all(producer.get(k) in names for k, _ in cls.elements):
                    value += importance(layers, cls) or 0.0
            gates.append((value, node.name, names))
    chosen, cut = [], []

    def fits(delta):
        return all(cost.kept[k] - n >= floor[k] for k, n in delta.items())

    while total > budget + 1e-9:
        offers_now = []   # (score, kind, ...) per group head and per connection
        for producers, offers in groups.items():
            chunk, value, i = [], 0.0, 0
            while i < len(offers) and len(chunk) < MAX_CHUNK:
                v, _, cls = offers[i]
                delta, group = cost.deltas(chunk + [cls])
                if not fits(delta):
                    if not chunk:
                        offers.pop(i)   # floors only tighten: this set stays for good
                        continue
                    break
                chunk.append(cls)
                value += v
                i += 1
                saved = cost.saving(delta, group)
                if saved > 0:
                    offers_now.append((value / saved, "sets", producers, chunk, delta, group,
                                       saved))
                    break
        for value, name, names in gates:
            if name in cut:
                continue
            saved = sum(cost.item_cost(i) for i in cost.items if i.node.name in names)
            if saved > 0:
                offers_now.append((value / saved, "gate", name, names, None, None, saved))
        if not offers_now:
            break
        best = min(offers_now, key=lambda o: o[0])
        needed = total - budget
        if best[6] > needed + tolerance * before:
            # the last steps: rather than overshoot the budget by much, take smaller offers
            smaller = [o for o in offers_now if o[6] <= needed]
            best = min(smaller, key=lambda o: o[0]) if smaller else min(
                offers_now, key=lambda o: (o[6], o[0]))
        if best[1] == "sets":
            _, _, producers, chunk, delta, group, saved = best
            del groups[producers][:len(chunk)]
            cost.apply(delta, group)
            chosen += chunk
        else:
            cut.append(best[2])
            cost.dead.update(best[3])
        total = cost.total()
    plan = analysis.plan(chosen, cut)
    after = {p: sizes[p] - sum(1 for c in chosen if c.producers == p) for p in sizes}
    return SearchResult(plan, chosen, cut, before, total, budget, total <= budget + 1e-9,
                        {", ".join(p): (sizes[p], after[p]) for p in sizes})
