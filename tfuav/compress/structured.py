"""prune_channels: structured (channel) pruning of a functional Keras model to a MAC or
latency budget, with exact surgery (see channels.py, surgery.py, search.py)."""
from tfuav.compress.channels import ChannelAnalysis
from tfuav.compress.graph import Graph
from tfuav.compress.search import (cuttable_connections, estimate_latency_ms, runtime_cycles,
                                   search)
from tfuav.compress.surgery import ZERO_TOLERANCE, apply_plan, cut_connections, measure
from tfuav.errors import TfuavError
from tfuav.models.stats import count_macs, count_params, layer_macs


def _zero_only_violations(model, analysis, sample_inputs):
    """Ids of the channel sets that reach a zero-padded kxk convolution with values that are
    not 0: removing them would not be exact at the border, so they stay."""
    keys = {key for cls in analysis.removable() for _, key, _, kind in cls.exits
            if kind == "zero"}
    if not keys:
        return set()
    stats = measure(model, analysis.graph, keys, (), sample_inputs)
    bad = set()
    for cls in analysis.removable():
        for _, key, c, kind in cls.exits:
            if kind == "zero" and stats[key]["absmax"][c] > ZERO_TOLERANCE:
                bad.add(cls.id)
    return bad


def _channels(shape):
    shape = shape[0] if isinstance(shape, list) else shape
    return int(shape[-1]) if shape and shape[-1] is not None else None


def layer_table(before, after):
    """Per layer that multiplies-accumulates: channels in/out and MACs, before and after."""
    macs_before, macs_after = layer_macs(before), layer_macs(after)
    layers_after = {layer.name: layer for layer in after.layers}
    rows = []
    for layer in before.layers:
        if layer.name not in macs_before:
            continue
        new = layers_after.get(layer.name)
        rows.append({
            "layer": layer.name,
            "op": macs_before[layer.name][0],
            "channels_in_before": _channels(layer.input_shape),
            "channels_in_after": _channels(new.input_shape) if new is not None else 0,
            "channels_out_before": _channels(layer.output_shape),
            "channels_out_after": _channels(new.output_shape) if new is not None else 0,
            "macs_before": macs_before[layer.name][1],
            "macs_after": macs_after.get(layer.name, (None, 0))[1],
        })
    known = {r["layer"] for r in rows}
    for name, (op, macs) in macs_after.items():  # layers new in the pruned model
        if name not in known:
            new = layers_after[name]
            rows.append({"layer": name, "op": op, "channels_in_before": None,
                         "channels_in_after": _channels(new.input_shape),
                         "channels_out_before": None,
                         "channels_out_after": _channels(new.output_shape),
                         "macs_before": 0, "macs_after": macs})
    return rows


def format_table(rows):
    """The per-layer table as fixed-width text."""
    head = f"{'layer':<28} {'op':<18} {'in':>9} {'out':>9} {'MACs before':>12} {'after':>12}"
    lines = [head, "-" * len(head)]
    for r in rows:
        def pair(a, b):
            return f"{a if a is not None else '-'}>{b}" if a != b else f"{b}"
        lines.append(f"{r['layer']:<28} {r['op']:<18} "
                     f"{pair(r['channels_in_before'], r['channels_in_after']):>9} "
                     f"{pair(r['channels_out_before'], r['channels_out_after']):>9} "
                     f"{r['macs_before']:>12,} {r['macs_after']:>12,}")
    return "\n".join(lines)


def prune_channels(model, sample_inputs, budget_macs=0.5, budget_latency_ms=None, target=None,
                   kernels="reference", connection_threshold=1e-3, min_keep_ratio=0.1):
    """Network-slimming channel pruning with exact surgery.

    1. connections whose ConnectionScale |scale| < connection_threshold are removed;
    2. the search (search.py) picks channel sets (and more connections) by importance per
       cost saved until the model costs at most budget_macs x its MACs, or, with
       budget_latency_ms, until the latency estimated for `target` (a name or Target, with
       its runtime's cycles_per_mac for `kernels`) is at most that;
    3. surgery rebuilds the narrower model, replacing the removed channels by their means
       on `sample_inputs` (preprocessed inputs, as the model takes them).

    Returns (pruned model, report): MACs, params and estimated latency before/after, the
    budget and whether it was met, what was removed, how far from exact (max std of the
    removed channels), and the per-layer table (format_table renders it)."""
    if budget_latency_ms is None and not 0.0 < float(budget_macs) <= 1.0:
        raise TfuavError(f"budget_macs must be a fraction of the model's MACs in (0, 1], got "
                         f"{budget_macs}")
    if budget_latency_ms is not None and target is None:
        raise TfuavError("budget_latency_ms needs a target (its clock and runtime give the "
                         "latency estimate)")
    if not 0.0 <= float(min_keep_ratio) < 1.0:
        raise TfuavError(f"min_keep_ratio must be in [0, 1), got {min_keep_ratio}")
    weights = None
    if target is not None:
        target, table = runtime_cycles(target, kernels)
        if budget_latency_ms is not None:  # a MAC budget is searched in MACs
            weights = {op: cycles / (target.clock_mhz * 1e3) for op, cycles in table.items()}

    macs_before = count_macs(model)
    graph = Graph.from_model(model)
    gated = [n.name for n in cuttable_connections(graph)
             if abs(float(n.layer.get_weights()[0])) < connection_threshold]
    current, cut_info = model, {}
    if gated:
        current, cut_info = cut_connections(model, gated, sample_inputs)
    analysis = ChannelAnalysis(Graph.from_model(current))
    kept_for_border = _zero_only_violations(current, analysis, sample_inputs)
    if budget_latency_ms is not None:
        budget = float(budget_latency_ms)
    else:
        budget = float(budget_macs) * macs_before
    result = search(analysis, budget, excluded=kept_for_border, weights=weights,
                    min_keep_ratio=min_keep_ratio)
    pruned, info = apply_plan(current, result.plan, sample_inputs)

    macs_after = count_macs(pruned)
    report = {
        "macs_before": macs_before, "macs_after": macs_after,
        "macs_ratio": macs_after / macs_before if macs_before else 1.0,
        "params_before": count_params(model)["params_total"],
        "params_after": count_params(pruned)["params_total"],
        "budget": ({"latency_ms": budget} if budget_latency_ms is not None
                   else {"macs": int(budget), "fraction": float(budget_macs)}),
        "budget_met": bool(result.met),
        "predicted_cost": result.cost_after,
        "channel_sets_removed": len(result.classes),
        "channel_sets_kept_for_border": len(kept_for_border),
        "groups": {k: {"sets_before": b, "sets_after": a} for k, (b, a) in result.groups.items()},
        "connections_removed": sorted(set(gated) | set(result.connections)),
        "layers_removed": sorted(set(cut_info.get("layers_removed", []))
                                 | set(info["layers_removed"])),
        "max_removed_std": info["max_removed_std"],
        "connection_max_abs": max(cut_info.get("connection_max_abs", 0.0),
                                  info["connection_max_abs"]),
        "plan": {"remove": result.plan.remove, "connections": result.plan.connections},
        "table": layer_table(model, pruned),
    }
    if target is not None:
        report["latency_ms_before"] = estimate_latency_ms(model, target, kernels)
        report["latency_ms_after"] = estimate_latency_ms(pruned, target, kernels)
        report["target"], report["kernels"] = target.name, kernels
    if not result.met:
        report["note"] = ("budget not reached: every remaining channel set is at its floor "
                          "(min_keep_ratio), pinned, or has no BatchNorm/ConnectionScale to "
                          "rank it")
    return pruned, report
