"""The uavlite detector and its layers: shapes, independent references, int8 conversion,
TFLite reference kernels vs TFLM, the Cortex-M op set and budgets."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import numpy as np
import pytest
import tensorflow as tf

from helpers import randomize_bn
from tfuav.convert import assert_graph_ok, check_graph, op_details, tflite_info, to_int8_tflite
from tfuav.errors import TfuavError
from tfuav.export.fit import fit_check
from tfuav.export.opcheck import unsupported_ops
from tfuav.models import build_model, get_spec
from tfuav.models.layers import ConnectionScale, shuffle_permutation
from tfuav.models.layers.bottleneck import shuffle_bottleneck
from tfuav.models.layers.deformable import DeformableDepthwiseConv2D
from tfuav.models.layers.detection_head import centernet_head
from tfuav.models.layers.fusion import adaptive_level_fusion, refine_fuse
from tfuav.models.layers.receptive import receptive_field_block
from tfuav.models.layers.recalibration import (ChannelAttention1D, GroupNorm, eca_kernel_size,
                                               recalibrate, spatial_attention)
from tfuav.models.registry import _REGISTRY, register
from tfuav.models.stats import count_macs, count_params
from tfuav.quantization import dequantize, quantize
from tfuav.runtime.detect import decode_head
from tfuav.targets import load_runtime, load_target
from tfuav.validate import cross_validate, make_validation_inputs, run_reference

keras = tf.keras
L = keras.layers
TFLM = load_runtime("tflm")


def _wrap(block, shape=(16, 16, 16), seed=0):
    """A one-input Keras model around `block`, with non-trivial BatchNorm statistics and
    connection gates (a gate of exactly 1 would be folded away and never exercised)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape)
    model = keras.Model(inp, block(inp))
    randomize_bn(model, seed)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, ConnectionScale):
            layer.set_weights([np.float32(rng.uniform(0.5, 1.5))])
    return model


def _int8_error_lsb(model, seed=0):
    """(tflite bytes, max |int8 - float| in output LSBs) on the TFLite reference kernels, after
    the checks every layer must pass on the Cortex-M path. The compared inputs are among the
    calibration samples, so no activation is clipped: what is left is rounding."""
    rng = np.random.default_rng(seed)
    shape = model.input_shape[1:]
    rep = rng.uniform(-1, 1, (16,) + shape).astype(np.float32)
    x = rep[:4]
    tfl = to_int8_tflite(model, rep)
    assert check_graph(tfl) == []
    assert unsupported_ops(tfl, TFLM) == []
    info = tflite_info(tfl)
    inp, out = info["inputs"][0], info["outputs"][0]
    q = [quantize(v[None], inp["scale"], inp["zero_point"], np.int8) for v in x]
    got = np.stack([dequantize(y, out["scale"], out["zero_point"]) for y in run_reference(tfl, q)])
    want = model(x).numpy().reshape(got.shape)
    return tfl, float(np.abs(got - want).max() / out["scale"])


# ------------------------------------------------------------------------------- bottleneck

def test_shuffle_bottleneck_structure_and_int8():
    model = _wrap(lambda x: shuffle_bottleneck(x, 16, groups=2, name="u"))
    assert model.output_shape == (None, 16, 16, 16)
    reduce, expand = model.get_layer("u_reduce_conv"), model.get_layer("u_expand_conv")
    assert reduce.kernel.shape == (1, 1, 8, 8) and reduce.groups == 2     # 16 -> 8, 2 groups
    assert expand.kernel.shape == (1, 1, 4, 16) and expand.groups == 2
    assert model.get_layer("u_shuffle").indices == shuffle_permutation(8, 2)
    assert isinstance(model.get_layer("u_add"), L.Add)                     # residual
    tfl, err = _int8_error_lsb(model)
    hist = tflite_info(tfl)["op_histogram"]
    # BN folded, ReLU6 fused: exactly the convolutions, the shuffle and the residual add
    assert hist == {"CONV_2D": 2, "GATHER": 1, "DEPTHWISE_CONV_2D": 1, "ADD": 1}
    assert err <= 3


def test_strided_bottleneck_has_no_residual():
    model = _wrap(lambda x: shuffle_bottleneck(x, 32, strides=2, name="u"))
    assert model.output_shape == (None, 8, 8, 32)
    assert "u_add" not in [layer.name for layer in model.layers]
    _, err = _int8_error_lsb(model)
    assert err <= 3


# ---------------------------------------------------------------------------- recalibration

def test_eca_kernel_size_rule():
    # |log2(C) / 2 + 1 / 2|, made odd: C=16 -> 2.5 -> 2 -> 3; C=96 -> 3.79 -> 3; C=256 -> 4.5 -> 5
    assert [eca_kernel_size(c) for c in (16, 96, 256, 1024)] == [3, 3, 5, 5]


def test_channel_attention_matches_numpy_and_converts():
    model = _wrap(lambda x: ChannelAttention1D(name="eca")(x))
    x = np.random.default_rng(1).normal(size=(2, 16, 16, 16)).astype(np.float32)
    kernel = model.get_layer("eca").kernel.numpy().ravel()                # 3 taps
    pooled = x.mean(axis=(1, 2))                                          # [2, 16]
    padded = np.pad(pooled, ((0, 0), (1, 1)))
    mixed = sum(kernel[t] * padded[:, t:t + 16] for t in range(3))       # cross-correlation
    want = 1 / (1 + np.exp(-mixed))
    np.testing.assert_allclose(model(x).numpy().reshape(2, 16), want, atol=1e-5)
    assert model.output_shape == (None, 1, 1, 16)
    tfl, err = _int8_error_lsb(model)
    assert "FULLY_CONNECTED" not in tflite_info(tfl)["ops"]
    assert err <= 2


def test_group_norm_matches_numpy_and_converts():
    model = _wrap(lambda x: GroupNorm(4, name="gn")(x))
    gn = model.get_layer("gn")
    rng = np.random.default_rng(2)
    gn.set_weights([rng.uniform(0.5, 2, 16).astype(np.float32),
                    rng.normal(size=16).astype(np.float32)])
    x = rng.normal(2.0, 3.0, (2, 16, 16, 16)).astype(np.float32)
    g = x.reshape(2, 16, 16, 4, 4)                                        # 4 groups of 4
    mean = g.mean(axis=(1, 2, 4), keepdims=True)
    var = g.var(axis=(1, 2, 4), keepdims=True)
    want = ((g - mean) / np.sqrt(var + 1e-3)).reshape(x.shape) * gn.gamma.numpy() + gn.beta.numpy()
    np.testing.assert_allclose(model(x).numpy(), want, atol=1e-4)
    tfl, err = _int8_error_lsb(model)
    assert {"RSQRT", "MEAN"} <= set(tflite_info(tfl)["ops"])
    assert err <= 4


def test_spatial_attention_and_recalibration():
    spatial = _wrap(lambda x: spatial_attention(x, name="sa"))
    assert spatial.output_shape == (None, 16, 16, 16)
    _, err = _int8_error_lsb(spatial)
    # in units of 1/256 after the sigmoid: the int8 variance limits the RSQRT's resolution
    assert err <= 12

    model = _wrap(lambda x: recalibrate(x, name="r"))
    x = np.random.default_rng(3).normal(size=(2, 16, 16, 16)).astype(np.float32)
    parts = keras.Model(model.input, [model.get_layer("r_channel").output,
                                      model.get_layer("r_spatial_sigmoid").output])
    a_c, a_s = (p.numpy() for p in parts(x))
    np.testing.assert_allclose(model(x).numpy(), x + x * a_c + x * a_s, rtol=1e-5, atol=1e-5)
    _, err = _int8_error_lsb(model)
    assert err <= 4


# ----------------------------------------------------------------------------- neck, head

def _three_levels(x):
    """Three pyramid levels (16, 8 and 4 cells; 16, 24 and 32 channels) from one input."""
    return [x, L.Conv2D(24, 1, name="p3")(L.MaxPooling2D(2)(x)),
            L.Conv2D(32, 1, name="p4")(L.MaxPooling2D(4)(x))]


def test_adaptive_fusion_weights_sum_to_one_per_position():
    model = _wrap(lambda x: adaptive_level_fusion(_three_levels(x), 1, 16, name="a"))
    assert model.output_shape == (None, 8, 8, 16)
    gates = [model.get_layer(f"a_l{i}_gate").output for i in range(3)]
    parts = keras.Model(model.input, gates + [model.get_layer("a_softmax").output])
    x = np.random.default_rng(4).normal(size=(2, 16, 16, 16)).astype(np.float32)
    *levels, weights = (p.numpy() for p in parts(x))
    assert all(level.shape == (2, 8, 8, 16) for level in levels)
    np.testing.assert_allclose(weights.sum(-1), 1, atol=1e-5)
    want = sum(weights[..., i:i + 1] * levels[i] for i in range(3))
    np.testing.assert_allclose(model(x).numpy(), want, rtol=1e-5, atol=1e-5)
    # logits that prefer one level everywhere select that level
    logits = model.get_layer("a_logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([np.zeros_like(kernel), np.array([0, 0, 50], np.float32)])
    np.testing.assert_allclose(model(x).numpy(), parts(x)[2].numpy(), atol=1e-5)
    logits.set_weights([kernel, bias])
    tfl, err = _int8_error_lsb(model)
    assert {"SOFTMAX", "RESIZE_NEAREST_NEIGHBOR", "MAX_POOL_2D"} <= set(tflite_info(tfl)["ops"])
    # each gated level and the weights are within ~3 of their own LSBs; the weighted mean
    # spans a narrower range than the levels, so the same rounding is more of its LSBs
    assert err <= 8


def test_receptive_field_block_uses_native_dilations():
    model = _wrap(lambda x: receptive_field_block(x, name="rfb"))
    assert model.output_shape == (None, 16, 16, 16)
    tfl, err = _int8_error_lsb(model)
    dilations = sorted(d["options"]["dilationHFactor"] for d in op_details(tfl)
                       if d["name"] == "DEPTHWISE_CONV_2D")
    assert dilations == [1, 3, 5]
    assert err <= 3


def test_refinement_upsamples_and_adds():
    model = _wrap(lambda x: refine_fuse(L.Conv2D(24, 1)(L.MaxPooling2D(2)(x)), x, 16, name="rf"))
    assert model.output_shape == (None, 16, 16, 16)
    assert model.get_layer("rf_deep_up").output_shape == (None, 16, 16, 16)
    _, err = _int8_error_lsb(model)
    assert err <= 6


def test_head_contract_and_prior():
    model = _wrap(lambda x: centernet_head(x, 4, name="head"))
    assert model.output_shape == (None, 16, 16, 8)
    bias = model.get_layer("head_out").bias.numpy()
    np.testing.assert_allclose(bias[:4], -np.log((1 - 0.1) / 0.1), rtol=1e-6)    # -2.197
    tfl, err = _int8_error_lsb(model)
    out = tflite_info(tfl)["outputs"][0]
    assert (out["scale"], out["zero_point"]) == (1 / 256, -128)        # one int8 scale for all
    assert tflite_info(tfl)["ops"][-1] == "LOGISTIC"
    assert err <= 3


# ---------------------------------------------------------------------------- deformable

def _bilinear_reference(x, kernel, rows, cols):
    """Deformable depthwise by explicit loops: x [H, W, C], kernel [9, C], sampling rows/cols
    [H, W, 9]; bilinear interpolation with zeros outside the image."""
    h, w, c = x.shape

    def pixel(r, q):
        return x[r, q] if 0 <= r < h and 0 <= q < w else np.zeros(c)

    out = np.zeros((h, w, c))
    for i in range(h):
        for j in range(w):
            for t in range(9):
                r, q = rows[i, j, t], cols[i, j, t]
                r0, q0 = int(np.floor(r)), int(np.floor(q))
                fr, fq = r - r0, q - q0
                sample = ((1 - fr) * (1 - fq) * pixel(r0, q0) + (1 - fr) * fq * pixel(r0, q0 + 1)
                          + fr * (1 - fq) * pixel(r0 + 1, q0) + fr * fq * pixel(r0 + 1, q0 + 1))
                out[i, j] += kernel[t] * sample
    return out


def test_deformable_depthwise_without_offsets_is_a_depthwise_conv():
    x = np.random.default_rng(5).normal(size=(2, 6, 7, 3)).astype(np.float32)
    layer = DeformableDepthwiseConv2D(use_bias=True)
    dcn = layer(x)
    plain = L.DepthwiseConv2D(3, padding="same")
    plain.build(x.shape)
    plain.set_weights([layer.depthwise_kernel.numpy(), np.zeros(3, np.float32)])
    np.testing.assert_allclose(dcn.numpy(), plain(x).numpy(), atol=1e-5)


def test_deformable_depthwise_matches_loop_reference_with_learned_offsets():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(1, 5, 6, 2)).astype(np.float32)
    layer = DeformableDepthwiseConv2D(use_bias=False)
    layer(x)
    layer.offset_kernel.assign(rng.normal(0, 0.4, layer.offset_kernel.shape))
    layer.offset_bias.assign(rng.normal(0, 1.0, layer.offset_bias.shape))   # reaches outside
    rows, cols = (v.numpy()[0] for v in layer.sampling_positions(tf.constant(x)))
    # the regular 3x3 grid plus the offsets from the offset convolution
    offsets = tf.nn.conv2d(x, layer.offset_kernel, 1, "SAME").numpy()[0] + layer.offset_bias.numpy()
    grid_r = np.arange(5)[:, None, None] + np.repeat([-1, 0, 1], 3)
    np.testing.assert_allclose(rows, grid_r + offsets[..., 0::2], atol=1e-5)
    want = _bilinear_reference(x[0], layer.depthwise_kernel.numpy().reshape(9, 2), rows, cols)
    np.testing.assert_allclose(layer(x).numpy()[0], want, atol=1e-4)


# ------------------------------------------------------------------------------ the models

def test_registry_knows_the_detectors():
    for name in ("uavlite", "uavlite_dcn"):
        spec = get_spec(name)
        assert spec.task == "detection"
        assert spec.default_input_shape == (96, 96, 3) and spec.default_num_classes == 4
    assert get_spec("glimmernet").task == "classification"
    # register() without the new argument still registers a classifier
    try:
        register("tmp_model", (32, 32, 3), 2, "x")(lambda shape, classes: None)
        assert _REGISTRY["tmp_model"].task == "classification"
    finally:
        _REGISTRY.pop("tmp_model", None)


def test_uavlite_shapes_gates_and_size():
    model = build_model("uavlite")
    assert model.output_shape == (None, 24, 24, 8)           # stride 4, 4 classes + 4
    assert build_model("uavlite", (64, 64, 3), 3).output_shape == (None, 16, 16, 7)
    gates = sorted(layer.name for layer in model.layers if isinstance(layer, ConnectionScale))
    assert gates == ["asff_l0_gate", "asff_l1_gate", "asff_l2_gate", "refine_deep_gate",
                     "refine_shallow_gate", "stage2_reuse_gate", "stage3_reuse_gate"]
    for size in (64, 96):
        m = build_model("uavlite", (size, size, 3), 4)
        macs, params = count_macs(m), count_params(m)["params_total"]
        print(f"uavlite {size}x{size}: {macs:,} MACs ({macs / size ** 2:.0f} per pixel), "
              f"{params:,} params")
        assert macs / size ** 2 < 1500 and params < 100_000
    for bad in ((72, 72, 3), (16, 16, 3)):
        with pytest.raises(TfuavError, match="multiples of 16"):
            build_model("uavlite", bad, 4)


@pytest.fixture(scope="module")
def uavlite_int8():
    model = _wrap_model(build_model("uavlite", (96, 96, 3), 4))
    rep = np.random.default_rng(0).uniform(0, 1, (8, 96, 96, 3)).astype(np.float32)
    return model, to_int8_tflite(model, rep), rep


def _wrap_model(model, seed=0):
    """Trained-looking statistics: BatchNorm, connection gates and group-norm gamma/beta away
    from their initial values (which the converter would fold away)."""
    randomize_bn(model, seed)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, ConnectionScale):
            layer.set_weights([np.float32(rng.uniform(0.5, 1.5))])
        elif isinstance(layer, GroupNorm):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n).astype(np.float32),
                               rng.normal(0, 0.3, n).astype(np.float32)])
    return model


@pytest.mark.slow
def test_uavlite_int8_runs_on_tflm_bit_exactly_and_fits_cortex_m7(uavlite_int8):
    model, tfl, rep = uavlite_int8
    assert_graph_ok(tfl)
    assert unsupported_ops(tfl, load_runtime(load_target("cortex-m7").runtime)) == []
    info = tflite_info(tfl)
    assert len(info["outputs"]) == 1 and info["ops"][-1] == "LOGISTIC"
    out = info["outputs"][0]
    assert out["shape"] == [1, 24, 24, 8] and (out["scale"], out["zero_point"]) == (1 / 256, -128)
    result = cross_validate(tfl, make_validation_inputs(tfl, real_images_float=rep[:2]))
    print("uavlite 96x96 int8:", result.summary(), info["op_histogram"],
          f"{info['macs']:,} MACs, {info['size_bytes']:,} bytes")
    assert result.passed and result.max_abs_diff == 0 and result.allowances == []
    target = load_target("cortex-m7")
    fit = fit_check(info["size_bytes"], info["ops"], result.arena_bytes,
                    96 * 96 * 3 + 24 * 24 * 8, target, TFLM)
    assert fit.fits, fit.problems
    assert result.arena_bytes < 512 * 1024 // 2           # well under the arena region
    # the int8 head decodes like the float one: same peaks where the float scores are clear
    x = rep[2:3]
    q = quantize(x, info["inputs"][0]["scale"], info["inputs"][0]["zero_point"], np.int8)
    got = dequantize(run_reference(tfl, [q])[0], out["scale"], out["zero_point"])[0]
    want = model(x).numpy()[0]
    assert np.abs(got - want).max() < 0.06


def test_uavlite_dcn_runs_in_float_and_is_kept_off_tflm():
    model = build_model("uavlite_dcn", (64, 64, 3), 4)
    assert any(isinstance(layer, DeformableDepthwiseConv2D) for layer in model.layers)
    x = np.random.default_rng(7).uniform(0, 1, (4, 64, 64, 3)).astype(np.float32)
    y = model(x).numpy()
    assert y.shape == (4, 16, 16, 8) and np.isfinite(y).all()
    boxes, scores, classes = decode_head(y[0], 4, 4, score_threshold=0.0, top_k=5)
    assert len(boxes) == 5
    # converts to int8 TFLite with int8 input and output, the sampling kept in float ...
    tfl = to_int8_tflite(model, x)
    info = tflite_info(tfl)
    assert info["inputs"][0]["dtype"] == "int8" and info["outputs"][0]["dtype"] == "int8"
    assert any("computes in float" in p or "DEQUANTIZE" in p for p in check_graph(tfl))
    # ... which the Cortex-M op check refuses, naming FLOOR (TFLite has it in float only)
    blocked = {p["op"] for p in unsupported_ops(tfl, TFLM)}
    assert "FLOOR" in blocked
    # and the model runs on the TFLite reference kernels
    inp = info["inputs"][0]
    q = quantize(x[:1], inp["scale"], inp["zero_point"], np.int8)
    out = info["outputs"][0]
    got = dequantize(run_reference(tfl, [q])[0], out["scale"], out["zero_point"])
    assert np.abs(got[0] - y[0]).max() < 0.1


def test_detector_saves_and_loads(tmp_path):
    from tfuav.models.layers import CUSTOM_OBJECTS
    model = _wrap_model(build_model("uavlite_dcn", (64, 64, 3), 4))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False,
                                     custom_objects=CUSTOM_OBJECTS)
    x = np.random.default_rng(8).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
