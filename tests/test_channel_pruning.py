"""Structured (channel) pruning: channel analysis, exact surgery, connection removal, the
budgeted search, MAC / latency counts and slimming training."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import numpy as np
import pytest
import tensorflow as tf

from helpers import VWW_DIR, randomize_bn
from tfuav.compress import (ChannelPlan, add_slimming_penalty, analyze_channels, apply_plan,
                            estimate_latency_ms, format_table, prune_channels,
                            remove_slimming_penalty)
from tfuav.config import TrainConfig
from tfuav.convert import assert_graph_ok, tflite_info, to_int8_tflite
from tfuav.data import Dataset, Split
from tfuav.errors import TfuavError
from tfuav.models import build_model
from tfuav.models.layers import (ChannelGather, ChannelSplit, ConnectionScale, DilatedConv2D,
                                 DilatedDepthwiseConv2D, GlobalResponseNorm, shuffle_permutation)
from tfuav.models.stats import count_macs, count_params
from tfuav.validate import cross_validate, make_validation_inputs

keras = tf.keras
L = keras.layers
SIZE = 64


class Mystery(L.Layer):
    """A layer the channel analysis has no rule for (it rotates the channels)."""

    def call(self, x):
        return tf.concat([x[..., 1:], x[..., :1]], axis=-1)


def detector_style(size=32):
    """The layers a small detector is built from: inverted bottleneck whose branch is gated
    by a ConnectionScale, grouped 1x1, pooling / dilated depthwise / upsampling / concat,
    split + shuffle gather, a 1-channel sigmoid attention map, squeeze-excite,
    depthwise multiplier 2 after zero padding, GRN, a zero-padded 3x3 conv, a layer without
    a rule, and a softmax."""
    def bn_relu(x, name, cap=None):
        x = L.BatchNormalization(name=f"{name}_bn")(x)
        return L.ReLU(cap, name=f"{name}_relu")(x)

    inp = keras.Input((size, size, 3), name="image")
    x = bn_relu(L.Conv2D(16, 3, strides=2, padding="same", name="stem")(inp), "stem")
    e = bn_relu(L.Conv2D(32, 1, name="b_expand")(x), "b_expand", 6.0)
    e = bn_relu(L.DepthwiseConv2D(3, padding="same", name="b_dw")(e), "b_dw", 6.0)
    p = L.BatchNormalization(name="b_project_bn")(L.Conv2D(16, 1, name="b_project")(e))
    p = ConnectionScale(name="b_gate")(p)
    x = L.Add(name="b_add")([x, p])
    g = bn_relu(L.Conv2D(24, 1, groups=4, name="g_conv")(x), "g")
    d = L.MaxPooling2D(2, name="down_pool")(g)
    d = bn_relu(L.Conv2D(8, 1, name="down_reduce")(d), "down_reduce")
    d = bn_relu(L.Conv2D(24, 3, padding="same", name="down_conv")(d), "down_conv")
    d = bn_relu(DilatedDepthwiseConv2D(3, dilation_rate=2, name="down_ddw")(d), "down_ddw")
    u = L.UpSampling2D(2, name="up")(d)
    c = L.Concatenate(name="fuse")([g, u])
    parts = ChannelSplit(2, name="split")(c)
    a = [bn_relu(L.DepthwiseConv2D(3, padding="same", name=f"mix_dw{i}")(part), f"mix_dw{i}")
         for i, part in enumerate(parts)]
    s = ChannelGather(shuffle_permutation(48, 2), name="shuffle")(a)
    att = L.Conv2D(1, 1, activation="sigmoid", name="att")(s)
    s = L.Multiply(name="att_mul")([s, att])
    se = L.GlobalAveragePooling2D(keepdims=True, name="se_pool")(s)
    se = L.Conv2D(48, 1, activation="sigmoid", name="se_conv")(se)
    s = L.Multiply(name="se_mul")([s, se])
    m = L.ZeroPadding2D(1, name="dm_pad")(s)
    m = bn_relu(L.DepthwiseConv2D(3, depth_multiplier=2, name="dm")(m), "dm")
    m = GlobalResponseNorm(name="grn")(m)
    h = bn_relu(L.Conv2D(12, 1, name="head_reduce")(m), "head_reduce")
    h = Mystery(name="mystery")(h)
    out = L.Softmax(name="scores")(L.Conv2D(6, 1, name="head_out")(h))
    return keras.Model(inp, out, name="detector_style")


def randomize(model, seed=0):
    """Random BatchNorm statistics, GRN parameters and connection scales."""
    randomize_bn(model, seed)
    rng = np.random.default_rng(seed + 1)
    for layer in model.layers:
        if isinstance(layer, GlobalResponseNorm):
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
        elif isinstance(layer, ConnectionScale):
            layer.set_weights([np.float32(rng.uniform(0.5, 1.5))])
    return model


def build(name):
    keras.utils.set_random_seed(0)
    if name == "detector_style":
        return randomize(detector_style())
    return randomize(build_model(name, (SIZE, SIZE, 3), 4))


def inputs_for(model, n=8, seed=2):
    shape = tuple(model.input_shape[1:])
    return np.random.default_rng(seed).uniform(0, 1, (n,) + shape).astype(np.float32)


MODELS = ["glimmernet", "takunet", "uavlite", "detector_style"]


# ---------------------------------------------------------------------- analysis

def test_grouped_convolutions_keep_channels_individually_prunable():
    analysis = analyze_channels(build("glimmernet"))
    removable = analysis.removable()
    # stem and the four aggregators: 40 + 80 + 160 + 240 + 240 channels, none tied together
    assert len(removable) == 760
    for cls in removable:
        (producer,) = cls.producers
        assert sum(1 for key, _ in cls.elements if key == f"{producer}:0") == 1
    # a stage channel runs from its producer through every block of the stage
    stage2 = analysis.class_of("stage1_agg_conv", 5)
    names = {key.split(":")[0] for key, _ in stage2.elements}
    assert {"stage1_down_grn", "stage2_block3_add", "stage2_agg_mix"} <= names
    assert {(layer, kind) for layer, _, _, kind in stage2.exits} == {
        ("stage1_down_grn", "grn"), ("stage2_agg_conv", "fold")}


def test_unknown_layers_broadcasts_and_model_edges_pin():
    analysis = analyze_channels(build("detector_style"))
    for c in range(12):  # feeds a layer without a rule
        cls = analysis.class_of("head_reduce", c)
        assert cls.pinned and cls.pinned_by == "mystery"
    assert analysis.class_of("att", 0).pinned          # a broadcast 1-channel map
    assert analysis.class_of("head_out", 0).pinned     # softmax over channels + model output
    assert analysis.class_of("stem", 0).pinned is False
    # the squeeze-excite conv's output is tied to the channel it scales
    se = analysis.class_of("se_conv", 3)
    assert ("se_mul:0", 3) in se.elements and not se.pinned
    # depth multiplier 2: one input channel and its two outputs are one set
    dm = analysis.class_of("dm", 7)
    assert {("dm:0", 6), ("dm:0", 7), ("dm_pad:0", 3)} <= set(dm.elements)
    with pytest.raises(TfuavError, match="pinned by 'mystery'"):
        analysis.plan([analysis.class_of("head_reduce", 0)])


# ---------------------------------------------------------------------- exact surgery

def _needs_zero(analysis, cls):
    """A set whose values are multiplied by a map of another set, or that reaches a
    zero-padded kxk convolution, is exactly removable only when it is 0."""
    multiplies = {n.outputs[0] for n in analysis.graph.nodes if isinstance(n.layer, L.Multiply)}
    return any(kind == "zero" for *_, kind in cls.exits) or any(
        key in multiplies for key, _ in cls.elements)


def silence(model, analysis, classes):
    """Make the sets constant: gamma 0 in each of their BatchNorms (and GRNs), beta 0 too
    where only the constant 0 is exact."""
    grns = [n for n in analysis.graph.nodes if isinstance(n.layer, GlobalResponseNorm)]
    for cls in classes:
        zero = _needs_zero(analysis, cls)
        for name, c in cls.batchnorms:
            layer = model.get_layer(name)
            w = layer.get_weights()
            w[0][c] = 0.0
            if zero:
                w[1][c] = 0.0
            layer.set_weights(w)
        for node in grns:
            for key, c in cls.elements:
                if key == node.inputs[0]:
                    w = node.layer.get_weights()
                    w[0][c] = 0.0
                    if zero:
                        w[1][c] = 0.0
                    node.layer.set_weights(w)


def pick(analysis, per_group=2):
    """A few sets of every producing layer (first and middle ones)."""
    groups = {}
    for cls in analysis.removable():
        if cls.producers:
            groups.setdefault(cls.producers, []).append(cls)
    picks = []
    for classes in groups.values():
        if len(classes) >= 4:
            picks += [classes[0], classes[len(classes) // 2]][:per_group]
    return picks


def _channels(model):
    out = {}
    for layer in model.layers:
        shapes = layer.output_shape if isinstance(layer.output_shape, list) else [
            layer.output_shape]
        for i, s in enumerate(shapes):
            out[f"{layer.name}:{i}"] = s[-1]
    return out


@pytest.mark.parametrize("name", MODELS)
def test_removing_silenced_channel_sets_is_exact(name):
    model = build(name)
    analysis = analyze_channels(model)
    picks = pick(analysis)
    assert len(picks) >= 4
    silence(model, analysis, picks)
    x = inputs_for(model)
    pruned, info = apply_plan(model, analysis.plan(picks), x)
    expected = model(x, training=False).numpy()
    got = pruned(x, training=False).numpy()
    err = float(np.abs(got - expected).max())
    print(f"{name}: {len(picks)} channel sets removed, max |output error| {err:.2e}, "
          f"MACs {count_macs(model):,} -> {count_macs(pruned):,}")
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert info["max_removed_std"] < 1e-5
    before, after = _channels(model), _channels(pruned)
    removed = analysis.plan(picks).remove
    for cls in picks:  # every set really left the layers it ran through
        narrowed = [k for k, _ in cls.elements if after.get(k) == before[k] - len(removed[k])]
        assert narrowed, cls.elements[:3]
    assert all(after.get(k, 0) <= before[k] for k in removed)
    assert count_macs(pruned) < count_macs(model)
    assert count_params(pruned)["params_total"] < count_params(model)["params_total"]


def test_grn_keeps_the_original_channel_mean():
    model = build("glimmernet")
    analysis = analyze_channels(model)
    picks = [analysis.class_of("stage2_agg_conv", c) for c in (3, 50, 51, 52, 99)]
    silence(model, analysis, picks)
    for cls in picks:  # a non-zero constant (ReLU6 of 0.5), so the removed norm matters
        for name, c in cls.batchnorms:
            layer = model.get_layer(name)
            w = layer.get_weights()
            w[1][c] = 0.5
            layer.set_weights(w)
    x = inputs_for(model)
    pruned, _ = apply_plan(model, analysis.plan(picks), x)
    grn = pruned.get_layer("stage2_down_grn")
    assert grn.mean_channels == 160 and grn.gamma.shape[0] == 155
    h = model.get_layer("stage2_down_grn").input.shape[1]
    # five channels of constant 0.5 over h x h pixels: ||x_c|| = 0.5 h each
    assert grn.removed_norm == pytest.approx(5 * 0.5 * h, rel=1e-5)
    np.testing.assert_allclose(pruned(x, training=False), model(x, training=False), atol=1e-5)
    clone = GlobalResponseNorm.from_config(grn.get_config())
    assert (clone.mean_channels, clone.removed_norm) == (grn.mean_channels, grn.removed_norm)


def test_zero_padded_kxk_consumer_needs_the_constant_zero():
    model = build("detector_style")
    analysis = analyze_channels(model)
    cls = analysis.class_of("down_reduce", 2)
    assert {kind for *_, kind in cls.exits} == {"zero"}
    x = inputs_for(model)
    with pytest.raises(TfuavError, match="zero-padded 3x3 convolution"):
        apply_plan(model, analysis.plan([cls]), x)
    silence(model, analysis, [cls])  # gamma = beta = 0: the channel is 0 after the ReLU
    pruned, _ = apply_plan(model, analysis.plan([cls]), x)
    assert pruned.get_layer("down_conv").kernel.shape[2] == 7
    np.testing.assert_allclose(pruned(x, training=False), model(x, training=False), atol=1e-5)


# ---------------------------------------------------------------------- connections

BRANCH = ["b_expand", "b_expand_bn", "b_expand_relu", "b_dw", "b_dw_bn", "b_dw_relu",
          "b_project", "b_project_bn", "b_gate", "b_add"]


def test_connection_with_scale_zero_is_removed_exactly():
    model = build("detector_style")
    model.get_layer("b_gate").set_weights([np.float32(0.0)])
    x = inputs_for(model)
    pruned, report = prune_channels(model, x, budget_macs=1.0)
    assert report["connections_removed"] == ["b_gate"]
    names = {layer.name for layer in pruned.layers}
    assert not names & set(BRANCH)
    assert pruned.get_layer("g_conv").input._keras_history.layer.name == "stem_relu"
    np.testing.assert_allclose(pruned(x, training=False), model(x, training=False), atol=1e-6)
    assert count_macs(model) - count_macs(pruned) == 16 * 16 * (16 * 32 + 32 * 9 + 32 * 16)


def test_constant_branch_is_folded_into_the_consumer():
    model = build("detector_style")
    bn = model.get_layer("b_project_bn")
    w = bn.get_weights()
    w[0][:] = 0.0  # the branch is the constant 0.7 * beta
    bn.set_weights(w)
    model.get_layer("b_gate").set_weights([np.float32(0.7)])
    x = inputs_for(model)
    pruned, info = apply_plan(model, ChannelPlan(connections=["b_gate"]), x)
    assert info["connection_unfolded_max_abs"] == 0.0
    assert info["connection_max_abs"] == pytest.approx(0.7 * np.abs(w[1]).max(), rel=1e-5)
    np.testing.assert_allclose(pruned(x, training=False), model(x, training=False), atol=1e-5)


# ---------------------------------------------------------------------- budget

def _check_int8(pruned, x):
    tflite = to_int8_tflite(pruned, x)
    assert_graph_ok(tflite)
    info = tflite_info(tflite)
    assert info["macs"] == count_macs(pruned)
    result = cross_validate(tflite, make_validation_inputs(tflite, real_images_float=x[:2]))
    assert result.passed, result.summary()
    return info


@pytest.mark.parametrize("name", ["takunet", "uavlite", "detector_style"])
def test_half_the_macs_converts_and_runs_the_same_on_tflm(name):
    model = build(name)
    x = inputs_for(model)
    pruned, report = prune_channels(model, x, budget_macs=0.5)
    print(f"\n{name}: MACs {report['macs_before']:,} -> {report['macs_after']:,}, params "
          f"{report['params_before']:,} -> {report['params_after']:,}\n"
          + format_table(report["table"]))
    assert report["budget_met"]
    assert report["macs_before"] == count_macs(model)
    assert report["macs_after"] == count_macs(pruned) == report["predicted_cost"]
    assert 0.47 <= count_macs(pruned) / count_macs(model) <= 0.5
    rows = {r["layer"]: r for r in report["table"]}
    assert sum(r["macs_after"] for r in rows.values()) == count_macs(pruned)
    _check_int8(pruned, x)


@pytest.mark.slow
def test_half_the_macs_glimmernet_int8():
    model = build("glimmernet")
    x = inputs_for(model)
    pruned, report = prune_channels(model, x, budget_macs=0.5)
    assert 0.47 <= report["macs_ratio"] <= 0.5
    _check_int8(pruned, x)


def test_latency_budget():
    model = build("takunet")
    x = inputs_for(model, n=4)
    before = estimate_latency_ms(model, "cortex-m7", "cmsis-nn")
    pruned, report = prune_channels(model, x, budget_latency_ms=0.6 * before,
                                    target="cortex-m7", kernels="cmsis-nn")
    assert report["latency_ms_before"] == pytest.approx(before)
    assert report["latency_ms_after"] == pytest.approx(
        estimate_latency_ms(pruned, "cortex-m7", "cmsis-nn"))
    assert 0.57 * before <= report["latency_ms_after"] <= 0.6 * before
    with pytest.raises(TfuavError, match="needs a target"):
        prune_channels(model, x, budget_latency_ms=1.0)


# ---------------------------------------------------------------------- counts

def test_count_macs_by_hand_and_against_tflite():
    inp = keras.Input((12, 12, 8), batch_size=1)  # static shapes for the dense on 3x3x6
    a = L.Conv2D(12, 3, padding="same", groups=4, name="grouped")(inp)        # 12x12x12
    b = L.DepthwiseConv2D(3, depth_multiplier=2, name="dw2")(a)                # 10x10x24
    c = DilatedConv2D(6, name="dilated")(b)                                    # 3x3x6
    d = L.Dense(5, name="dense_nd")(c)                                         # 3x3x5
    e = L.Dense(3, name="dense")(L.Flatten()(d))
    model = keras.Model(inp, e)
    by_hand = (12 * 12 * 12 * 3 * 3 * 2      # grouped: 8/4 = 2 inputs per output
               + 10 * 10 * 24 * 3 * 3        # depthwise, 2 outputs per input channel
               + 3 * 3 * 6 * 3 * 3 * 24      # 3x3 stride 2 dilation 2, valid
               + 3 * 3 * 5 * 6               # dense on every pixel
               + 45 * 3)
    assert count_macs(model) == by_hand
    rep = np.random.default_rng(0).uniform(-1, 1, (4, 12, 12, 8)).astype(np.float32)
    # the converter's own graph, counted from its tensor shapes
    assert tflite_info(to_int8_tflite(model, rep))["macs"] == by_hand


def test_latency_estimate_closed_form_and_calibration():
    inp = keras.Input((16, 16, 4))
    x = L.Conv2D(8, 1, name="pw")(inp)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    out = L.Dense(2, name="fc")(L.GlobalAveragePooling2D()(x))
    model = keras.Model(inp, out)
    conv, dw, fc = 16 * 16 * 8 * 4, 16 * 16 * 8 * 9, 8 * 2
    for kernels, per_mac in (("reference", 101.2e6 / 7_489_664), ("cmsis-nn", 24.0e6 / 7_489_664)):
        expected = (conv + dw + fc) * per_mac / (480 * 1e3)   # Cortex-M7 at 480 MHz
        assert estimate_latency_ms(model, "cortex-m7", kernels) == pytest.approx(expected,
                                                                                 rel=1e-3)
    # the calibration model itself: MLPerf Tiny VWW, 101.2 M / 24.0 M instructions
    vww = keras.models.load_model(VWW_DIR / "vww_96.h5", compile=False)
    for kernels, instructions in (("reference", 101.2e6), ("cmsis-nn", 24.0e6)):
        cycles = estimate_latency_ms(vww, "cortex-m7", kernels) * 480 * 1e3
        assert cycles == pytest.approx(instructions, rel=1e-3)


# ---------------------------------------------------------------------- slimming

def _data(n=16):
    rng = np.random.default_rng(0)
    split = Split(images=rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8),
                  labels=(np.arange(n) % 2).astype(np.int64))
    return Dataset(class_names=["a", "b"], splits={"train": split}, source="test")


def _mean_abs_gamma(model):
    return float(np.mean(np.concatenate([np.abs(l.gamma.numpy()) for l in model.layers
                                         if isinstance(l, L.BatchNormalization)])))


def test_slimming_penalty_shrinks_gammas():
    from tfuav.train.loop import fit_model
    keras.utils.set_random_seed(0)
    base = build_model("takunet", (SIZE, SIZE, 3), 2)
    cfg = TrainConfig(batch_size=8, learning_rate=1e-3, weight_decay=0.0)
    penalised = add_slimming_penalty(base, l1=0.5)
    gammas = [l.gamma for l in penalised.layers if isinstance(l, L.BatchNormalization)]
    assert len(penalised.losses) == 1
    assert float(penalised.losses[0]) == pytest.approx(
        0.5 * sum(float(np.abs(g.numpy()).sum()) for g in gammas), rel=1e-6)
    plain = remove_slimming_penalty(penalised)
    assert plain.losses == []
    keras.utils.set_random_seed(1)
    fit_model(penalised, _data(), cfg, epochs=2, augment=False, progress=False)
    keras.utils.set_random_seed(1)
    fit_model(plain, _data(), cfg, epochs=2, augment=False, progress=False)
    start = _mean_abs_gamma(base)
    print(f"mean |gamma|: start {start:.4f}, plain {_mean_abs_gamma(plain):.4f}, "
          f"penalised {_mean_abs_gamma(penalised):.4f}")
    assert _mean_abs_gamma(penalised) < _mean_abs_gamma(plain) - 0.002
    assert _mean_abs_gamma(base) == start  # the original model is untouched


def test_channel_split_sizes_convert_to_split_v():
    inp = keras.Input((6, 6, 6))
    parts = ChannelSplit(sizes=[1, 3, 2], name="split")(inp)
    out = L.Concatenate()([L.ReLU()(p) for p in reversed(parts)])
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 6, 6, 6)).astype(np.float32)
    expected = np.concatenate([np.maximum(x[..., 4:], 0), np.maximum(x[..., 1:4], 0),
                               np.maximum(x[..., :1], 0)], axis=-1)
    np.testing.assert_allclose(model(x).numpy(), expected)
    assert ChannelSplit.from_config(model.get_layer("split").get_config()).sizes == [1, 3, 2]
    tflite = to_int8_tflite(model, x)
    assert "SPLIT_V" in tflite_info(tflite)["op_histogram"]
    assert cross_validate(tflite, make_validation_inputs(tflite)).passed


def test_latency_estimate_covers_every_layer_of_the_detector():
    """Every MAC of uavlite (its channel attention's 1-D convolution included) is priced."""
    import yaml

    from tfuav.config import CONFIG_DIR
    from tfuav.targets import load_target
    model = build("uavlite")
    table = yaml.safe_load((CONFIG_DIR / "runtimes" / "tflm.yaml").read_text())
    per_mac = set(table["cycles_per_mac"]["reference"].values())
    assert len(per_mac) == 1  # one calibrated figure for every op kind
    clock_khz = load_target("cortex-m7").clock_mhz * 1e3
    assert estimate_latency_ms(model, "cortex-m7") == pytest.approx(
        count_macs(model) * per_mac.pop() / clock_khz, rel=1e-9)
