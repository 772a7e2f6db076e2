import subprocess
import sys

import numpy as np
import pytest

import tfuav  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from tfuav.errors import TfuavError
from tfuav.models import build_model
from tfuav.models.layers import (ChannelGather, DilatedConv2D, DilatedDepthwiseConv2D,
                                 GlobalResponseNorm, shuffle_permutation)
from tfuav.models.stats import count_macs, count_params, thop_flops

keras = tf.keras


def test_tfuav_uses_keras_2_and_tfmot_imports():
    code = ("import tfuav, tensorflow as tf, tensorflow_model_optimization as tfmot;"
            "import tf_keras; assert tf.keras.Model is tf_keras.Model, tf.keras.Model;"
            "print(tf_keras.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("2.")


@pytest.mark.parametrize("name, trainable", [("glimmernet", 31_204), ("takunet", 37_444)])
def test_trainable_parameters_match_the_reference(name, trainable):
    assert count_params(build_model(name, (224, 224, 3), 4))["params_trainable"] == trainable


@pytest.mark.parametrize("name", ["glimmernet", "takunet"])
def test_spatial_sizes_and_widths(name):
    model = build_model(name, (224, 224, 3), 4)
    shape = {layer.name: layer.output_shape for layer in model.layers}
    assert shape["stem_conv"][1:3] == (112, 112)
    assert shape["stem_dw"][1:] == (57, 57, 40)  # padding 2 + valid; 'same' would give 56
    for stage, (size, width) in enumerate([(28, 80), (14, 160), (7, 240), (3, 240)], start=1):
        assert shape[f"stage{stage}_down_grn"][1:] == (size, size, width)


def _gd_conv_macs():
    # depthwise 3x3 of every GDBlock: spatial^2 * C * 9 * depth, stages at 57, 28, 14, 7
    return sum(s * s * c * 9 * n for s, c, n in [(57, 40, 4), (28, 80, 4), (14, 160, 4), (7, 240, 1)])


def test_glimmernet_compute_counts():
    model = build_model("glimmernet", (224, 224, 3), 4)
    stem = 112 * 112 * 40 * 27 + 57 * 57 * 40 * 9
    aggregators = sum(s * s * c_out * 8 for s, c_out in [(57, 80), (28, 160), (14, 240), (7, 240)])
    refiner_head = 3 * 3 * 240 * 9 + 240 * 4
    assert count_macs(model) == stem + _gd_conv_macs() + aggregators + refiner_head == 26_462_120
    # The paper's counter convention, every convolution counted:
    assert thop_flops(model) == 30_436_200
    # ... and what it reported when it skipped the GDBlock convolutions (22.26M):
    assert round((thop_flops(model) - _gd_conv_macs()) / 1e6, 2) == 22.26


def _np_depthwise(x, kernel, bias, dilation, stride=1, pad=None):
    """Reference depthwise conv (NHWC, kernel k x k x C), zero padding `pad` (None = 'same')."""
    k = kernel.shape[0]
    eff = (k - 1) * dilation + 1
    if pad is None:
        total = eff - 1
        pad = (total // 2, total - total // 2)
    else:
        pad = (pad, pad)
    xp = np.pad(x, ((0, 0), pad, pad, (0, 0)))
    out_h = (xp.shape[1] - eff) // stride + 1
    out_w = (xp.shape[2] - eff) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, x.shape[3]))
    for i in range(k):
        for j in range(k):
            patch = xp[:, i * dilation:i * dilation + stride * (out_h - 1) + 1:stride,
                       j * dilation:j * dilation + stride * (out_w - 1) + 1:stride, :]
            out += patch * kernel[i, j]
    return out + bias


def test_dilated_depthwise_matches_numpy_and_trains():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 10, 3)).astype(np.float32)
    for dilation in (1, 2, 3):
        layer = DilatedDepthwiseConv2D(3, dilation_rate=dilation)
        y = layer(x).numpy()
        kernel, bias = [w.numpy() for w in layer.weights]
        np.testing.assert_allclose(y, _np_depthwise(x, kernel[..., 0], bias, dilation), atol=1e-5)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)


def test_stem_conv_is_stride_2_dilation_2():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 11, 11, 2)).astype(np.float32)
    layer = DilatedConv2D(3)
    y = layer(np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))).numpy()
    kernel, bias = [w.numpy() for w in layer.weights]
    xp = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    ref = np.zeros(y.shape)
    for oy in range(y.shape[1]):
        for ox in range(y.shape[2]):
            patch = xp[0, 2 * oy:2 * oy + 5:2, 2 * ox:2 * ox + 5:2, :]  # 3x3 taps, dilation 2
            ref[0, oy, ox] = np.einsum("ijc,ijco->o", patch, kernel) + bias
    assert y.shape[1:3] == (6, 6)
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_channel_shuffle_and_mixed_concatenation_by_hand():
    assert shuffle_permutation(8, 4) == [0, 2, 4, 6, 1, 3, 5, 7]  # new 4j+m = old m*2+j
    blocks = np.arange(8, dtype=np.float32).reshape(1, 1, 1, 8)
    stage_in = 100 + np.arange(8, dtype=np.float32).reshape(1, 1, 1, 8)
    perm = shuffle_permutation(8, 4)
    order = [i for c in range(8) for i in (perm[c], 8 + c)]
    mixed = ChannelGather(order)([blocks, stage_in]).numpy().ravel().tolist()
    assert mixed == [0, 100, 2, 101, 4, 102, 6, 103, 1, 104, 3, 105, 5, 106, 7, 107]


def test_gd_block_matches_numpy_reference():
    """One GDBlock of a built model against split / dilated depthwise / BN / ReLU6 / concat / add."""
    model = build_model("glimmernet", (64, 64, 3), 4)
    rng = np.random.default_rng(2)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(size=c), rng.normal(size=c) * .1,
                               rng.uniform(0.5, 2, c)])
    block_in = model.get_layer("stage1_block0_split").input
    block_out = model.get_layer("stage1_block0_add").output
    sub = keras.Model(block_in, block_out)
    x = rng.normal(size=(1, 17, 17, 40)).astype(np.float32)
    branches = []
    for g, d in enumerate((1, 2, 2, 3)):
        conv = model.get_layer(f"stage1_block0_dw{g}")
        kernel, bias = [w.numpy() for w in conv.weights]
        y = _np_depthwise(x[..., 10 * g:10 * g + 10], kernel[..., 0], bias, d)
        gamma, beta, mean, var = model.get_layer(f"stage1_block0_dw{g}_bn").get_weights()
        y = gamma * (y - mean) / np.sqrt(var + 1e-5) + beta
        branches.append(np.clip(y, 0, 6))
    ref = np.concatenate(branches, axis=-1) + x
    np.testing.assert_allclose(sub(x).numpy(), ref, atol=1e-4)


def test_grn_matches_formula_including_a_dead_channel():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 3, (2, 5, 6, 8)).astype(np.float32)
    x[0, :, :, 3] = 0
    grn = GlobalResponseNorm()
    grn.build(x.shape)
    gamma, beta = rng.normal(size=8).astype(np.float32), rng.normal(size=8).astype(np.float32)
    grn.set_weights([gamma, beta])
    gx = np.sqrt((x.astype(np.float64) ** 2).sum(axis=(1, 2), keepdims=True))
    nx = gx / (gx.mean(axis=-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(grn(x).numpy(), gamma * (x * nx) + beta + x, atol=1e-5)


def test_grn_starts_as_identity():
    x = np.random.default_rng(4).normal(size=(1, 4, 4, 6)).astype(np.float32)
    np.testing.assert_allclose(GlobalResponseNorm()(x).numpy(), x, atol=1e-6)


def test_too_small_input_is_a_clear_error():
    with pytest.raises(TfuavError, match="at least 57x57"):
        build_model("takunet", (48, 48, 3), 4)
    assert build_model("takunet", (57, 57, 3), 4).output_shape == (None, 4)


def test_unknown_model_lists_choices():
    with pytest.raises(TfuavError, match="glimmernet.*takunet"):
        build_model("resnet9000")
