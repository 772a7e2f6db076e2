"""Cross-validation TFLite reference kernels vs TFLite Micro (TFLM runs in child processes)."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import math

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import interpreter as litert

from helpers import VWW_DIR, convert_zoo_model
from tfuav.convert import check_graph, op_details, tflite_info, to_int8_tflite
from tfuav.validate import (TflmRunError, ValidationResult, cross_validate, find_arena_size,
                            make_validation_inputs, run_reference, run_tflm)

L = tf.keras.layers
VWW_SMALLEST_ARENA = 103_680  # fixture README, tflite-micro wheel on x86-64


@pytest.fixture(scope="module")
def vww_tflite():
    return (VWW_DIR / "vww_96_int8.tflite").read_bytes()  # missing fixture -> failure, not skip


def test_vww_fixture_cross_validates_exactly(vww_tflite):
    real = np.random.default_rng(1).uniform(0, 1, (2, 96, 96, 3)).astype(np.float32)
    inputs = make_validation_inputs(vww_tflite, real_images_float=real, num_random=3)
    result = cross_validate(vww_tflite, inputs)
    print("VWW:", result.summary())
    assert isinstance(result, ValidationResult)
    assert result.passed and result.error is None
    assert result.max_abs_diff == 0 and result.num_differing == 0
    assert result.num_outputs == 5 * 2
    assert [a["op"] for a in result.allowances] == ["FULLY_CONNECTED"]  # listed, not needed here
    assert result.first_divergence is None
    assert result.runtimes == ["tflite-reference", "tflm"]
    assert VWW_SMALLEST_ARENA <= result.arena_bytes < VWW_SMALLEST_ARENA + 1024
    d = result.to_dict()
    assert d["passed"] is True and d["arena_bytes"] == result.arena_bytes


def test_vww_arena_search_and_too_small_arena(vww_tflite):
    arena = find_arena_size(vww_tflite)
    print("VWW smallest TFLM arena found:", arena)
    assert arena % 1024 == 0
    assert VWW_SMALLEST_ARENA <= arena < VWW_SMALLEST_ARENA + 1024
    x = make_validation_inputs(vww_tflite, num_random=1, seed=3)
    assert np.array_equal(run_tflm(vww_tflite, x, arena_size=arena)[0],
                          run_reference(vww_tflite, x)[0])
    # one KiB less must fail, and fail as an exception in this process (TFLM ran in a child)
    with pytest.raises(TflmRunError):
        run_tflm(vww_tflite, x, arena_size=arena - 1024)


def test_make_validation_inputs_quantizes_real_images(vww_tflite):
    img = np.zeros((96, 96, 3), np.float32)
    img[0, 0] = [0.0, 0.25, 1.0]
    img[0, 1] = [2.0, -1.0, 1 / 255]
    inputs = make_validation_inputs(vww_tflite, real_images_float=img[None], num_random=2)
    assert len(inputs) == 3 and all(x.dtype == np.int8 for x in inputs)
    assert inputs[0].shape == (1, 96, 96, 3)
    assert not np.array_equal(inputs[0], inputs[1])
    q = inputs[2][0]
    assert q[0, 0].tolist() == [-128, -64, 127]    # 0.25*255 = 63.75 -> 64 -> -128 + 64
    assert q[0, 1].tolist() == [127, -128, -127]   # clipped both ways; one LSB


@pytest.mark.slow
def test_vww_keras_model_converts_and_cross_validates():
    model = tf.keras.models.load_model(VWW_DIR / "vww_96.h5", compile=False)
    rep = np.random.default_rng(0).uniform(0, 1, (8, 96, 96, 3)).astype(np.float32)
    tfl = to_int8_tflite(model, rep)
    assert check_graph(tfl) == []
    result = cross_validate(tfl, make_validation_inputs(tfl, real_images_float=rep[:2]))
    print("VWW from .h5:", result.summary(), tflite_info(tfl)["op_histogram"])
    assert result.passed and result.max_abs_diff == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["glimmernet", "takunet"])
def test_zoo_model_converts_checks_and_cross_validates(name):
    tfl, rep = convert_zoo_model(name)
    info = tflite_info(tfl)
    assert check_graph(tfl) == []
    assert "SPACE_TO_BATCH_ND" not in info["ops"] and "BATCH_TO_SPACE_ND" not in info["ops"]
    details = op_details(tfl)
    dw_dilations = {d["options"]["dilationHFactor"] for d in details
                    if d["name"] == "DEPTHWISE_CONV_2D"}
    conv_dilations = {d["options"]["dilationHFactor"] for d in details if d["name"] == "CONV_2D"}
    if name == "glimmernet":  # grouped dilated depthwise blocks
        assert {1, 2, 3} <= dw_dilations
    else:  # TakuNet's depthwise convs are undilated; only the stem conv is dilated
        assert dw_dilations == {1}
    assert 2 in conv_dilations  # the stem's stride-2 dilation-2 conv, native
    # every BatchNorm folded: no MUL/ADD carries a batch norm name (check (b)), and every
    # depthwise/conv carries the fused ReLU6 except the refiner (BN without activation)
    assert not any("RELU" == n or "RELU6" == n for n in info["ops"])
    assert set(info["tensor_types"]) <= {"int8", "int32"}
    result = cross_validate(tfl, make_validation_inputs(tfl, real_images_float=rep[:2]))
    print(f"{name}:", result.summary(), "ops:", info["op_histogram"], "macs:", info["macs"])
    assert result.passed and result.max_abs_diff <= 1
    assert [a["op"] for a in result.allowances] == ["FULLY_CONNECTED"]  # the classifier head


def _quantize_multiplier(real):
    q, exponent = math.frexp(real)
    q = round(q * (1 << 31))
    if q == 1 << 31:
        q, exponent = q // 2, exponent + 1
    return q, exponent


def _single_rounding(acc, multiplier, shift):
    total = 31 - shift
    return (acc * multiplier + (1 << (total - 1))) >> total


def _double_rounding(acc, multiplier, shift):
    """gemmlowp: SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT (C semantics)."""
    acc = acc * (1 << max(shift, 0))
    product = acc * multiplier
    nudged = product + np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    high = np.sign(nudged) * (np.abs(nudged) // (1 << 31))  # C division truncates toward zero
    right = max(-shift, 0)
    mask = (1 << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


def test_fully_connected_difference_is_the_requantization_rounding():
    """Recompute a FULLY_CONNECTED by hand: the reference runtime matches single rounding and
    TFLM matches gemmlowp's double rounding on every output, which is the allowance's reason."""
    tf.keras.utils.set_random_seed(0)  # the kernel's initial values decide whether ties occur
    inp = tf.keras.Input((48,))
    model = tf.keras.Model(inp, L.Dense(10, activation="relu")(inp))
    rng = np.random.default_rng(0)
    tfl = to_int8_tflite(model, rng.normal(0, 1, (32, 48)).astype(np.float32))
    interp = litert.Interpreter(model_content=tfl)
    interp.allocate_tensors()
    tensors = {t["name"]: t for t in interp.get_tensor_details()}
    weights = next(t for t in tensors.values() if list(t["shape"]) == [10, 48])
    biases = [t for t in tensors.values() if t["dtype"] == np.int32 and list(t["shape"]) == [10]]
    w = interp.get_tensor(weights["index"]).astype(np.int64)
    bias = interp.get_tensor(biases[0]["index"]).astype(np.int64) if biases else 0
    in_scale, in_zero = interp.get_input_details()[0]["quantization"]
    out_scale, out_zero = interp.get_output_details()[0]["quantization"]
    w_scales = np.broadcast_to(weights["quantization_parameters"]["scales"], (10,))

    inputs = [rng.integers(-128, 128, (1, 48)).astype(np.int8) for _ in range(300)]
    acc = (np.concatenate(inputs).astype(np.int64) - in_zero) @ w.T + bias
    by_hand = {}
    for name, requantize in (("single", _single_rounding), ("double", _double_rounding)):
        out = np.empty_like(acc)
        for j in range(10):
            out[:, j] = requantize(acc[:, j], *_quantize_multiplier(in_scale * w_scales[j] / out_scale))
        by_hand[name] = np.clip(out + out_zero, out_zero, 127)  # fused RELU: clamp at real 0
    reference = np.concatenate(run_reference(tfl, inputs))
    tflm = np.concatenate(run_tflm(tfl, inputs))
    assert (reference != tflm).any(), "no difference to explain on these inputs"
    np.testing.assert_array_equal(reference, by_hand["single"])
    np.testing.assert_array_equal(tflm, by_hand["double"])

    result = cross_validate(tfl, inputs)
    assert result.passed and result.max_abs_diff == 1
    assert [a["op"] for a in result.allowances] == ["FULLY_CONNECTED"]


def test_allowance_is_listed_only_when_its_op_is_present():
    inp = tf.keras.Input((8, 8, 3))
    model = tf.keras.Model(inp, L.Conv2D(4, 3, activation="relu")(inp))
    rep = np.random.default_rng(1).uniform(0, 1, (16, 8, 8, 3)).astype(np.float32)
    tfl = to_int8_tflite(model, rep)
    result = cross_validate(tfl, make_validation_inputs(tfl, rep, num_random=4))
    assert result.allowances == [] and result.passed and result.max_abs_diff == 0


def test_keras_dilated_depthwise_diverges_and_is_named():
    """Keras' SPACE_TO_BATCH_ND lowering is computed differently by TFLM: the gate fails and
    names the first diverging output (no allowance covers it)."""
    inp = tf.keras.Input((24, 24, 8))
    x = L.Conv2D(8, 1)(inp)
    x = L.DepthwiseConv2D(3, dilation_rate=2, padding="same")(x)
    x = L.Conv2D(8, 1)(x)
    rep = np.random.default_rng(0).uniform(0, 1, (8, 24, 24, 8)).astype(np.float32)
    tfl = to_int8_tflite(tf.keras.Model(inp, x), rep)
    result = cross_validate(tfl, make_validation_inputs(tfl, rep, num_random=4))
    print("Keras dilated depthwise:", result.summary())
    if result.num_differing == 0:
        pytest.fail("expected TFLM to diverge on SPACE_TO_BATCH_ND-lowered dilated depthwise")
    assert not result.passed and result.allowances == []
    fd = result.first_divergence
    assert set(fd) == {"input_index", "output_index", "reference", "tflm"}
    assert fd["reference"] != fd["tflm"]
    assert "first divergence" in result.summary()
