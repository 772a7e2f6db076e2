"""Keras -> int8 TFLite conversion, flatbuffer inspection and graph checks (small hand-built models)."""
import tfuav  # noqa: F401  (first: selects Keras 2)


import flatbuffers
import numpy as np
import pytest
import tensorflow as tf

from helpers import VWW_DIR, randomize_bn
from tfuav.convert import (GraphCheckError, assert_graph_ok, check_graph, op_details,
                           tflite_info, to_int8_tflite)
from tfuav.convert.inspect_tflite import load_model, schema
from tfuav.convert.tflite import ConversionError
from tfuav.errors import TfuavError
from tfuav.models.layers import ChannelGather

L = tf.keras.layers
VWW_TFLITE = VWW_DIR / "vww_96_int8.tflite"


def _rep(shape, n=4, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n,) + tuple(shape)).astype(np.float32)


@pytest.fixture(scope="module")
def bn_after_concat_model():
    inp = tf.keras.Input((16, 16, 3))
    a = L.Conv2D(4, 3, padding="same")(inp)
    b = L.Conv2D(4, 1)(inp)
    x = L.Concatenate()([a, b])
    x = L.BatchNormalization(name="bn_after_concat")(x)
    x = L.Conv2D(8, 1)(x)
    model = tf.keras.Model(inp, x)
    randomize_bn(model)
    return model


def test_keras_dilated_depthwise_is_flagged_as_space_to_batch():
    inp = tf.keras.Input((16, 16, 4))
    out = L.DepthwiseConv2D(3, dilation_rate=2, padding="same")(inp)
    tfl = to_int8_tflite(tf.keras.Model(inp, out), _rep((16, 16, 4)))
    assert "SPACE_TO_BATCH_ND" in tflite_info(tfl)["ops"]
    problems = check_graph(tfl)
    assert problems and problems[0].startswith("op 0 SPACE_TO_BATCH_ND")
    assert "DilatedDepthwiseConv2D" in problems[0]
    with pytest.raises(GraphCheckError) as err:
        assert_graph_ok(tfl)
    message = str(err.value)
    assert "\n" not in message and "SPACE_TO_BATCH_ND" in message
    assert isinstance(err.value, TfuavError)


def test_batchnorm_after_concat_is_flagged(bn_after_concat_model):
    tfl = to_int8_tflite(bn_after_concat_model, _rep((16, 16, 3)))
    ops = tflite_info(tfl)["ops"]
    assert ops == ["CONV_2D", "CONV_2D", "CONCATENATION", "MUL", "ADD", "CONV_2D"]
    problems = check_graph(tfl)
    assert len(problems) == 2
    assert problems[0].startswith("op 3 MUL") and "bn_after_concat" in problems[0]
    assert problems[1].startswith("op 4 ADD") and "BatchNorm survived" in problems[1]
    with pytest.raises(GraphCheckError, match=r"op 3 MUL .*bn_after_concat"):
        assert_graph_ok(tfl)


def test_float_io_passes_only_with_float_io():
    inp = tf.keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, padding="same")(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU(6.0)(x)
    x = L.Conv2D(4, 1)(x)
    model = tf.keras.Model(inp, x)
    randomize_bn(model)
    tfl = to_int8_tflite(model, _rep((16, 16, 3)), float_io=True)
    info = tflite_info(tfl)
    assert info["ops"][0] == "QUANTIZE" and info["ops"][-1] == "DEQUANTIZE"
    assert info["inputs"][0]["dtype"] == "float32"
    assert check_graph(tfl, float_io=True) == []
    problems = check_graph(tfl, float_io=False)
    assert problems[0].startswith("op 0 QUANTIZE") and "float32" in problems[0]
    assert problems[-1].startswith(f"op {len(info['ops']) - 1} DEQUANTIZE")
    # and the int8 conversion of the same model is clean (BN folded, ReLU6 fused)
    tfl8 = to_int8_tflite(model, _rep((16, 16, 3)))
    assert tflite_info(tfl8)["ops"] == ["CONV_2D", "CONV_2D"]
    assert [d["fused_activation"] for d in op_details(tfl8)] == ["RELU6", "NONE"]
    assert check_graph(tfl8) == []


def _relu_after_gather_model():
    inp = tf.keras.Input((8, 8, 4))
    x = L.Conv2D(4, 1)(inp)
    x = ChannelGather([3, 2, 1, 0])([x])
    x = L.ReLU()(x)
    x = L.Conv2D(4, 1)(x)
    return tf.keras.Model(inp, x)


def test_relu_after_gather_is_not_flagged():
    tfl = to_int8_tflite(_relu_after_gather_model(), _rep((8, 8, 4)))
    assert tflite_info(tfl)["ops"] == ["CONV_2D", "GATHER", "RELU", "CONV_2D"]
    assert check_graph(tfl) == []


def _unfuse_first_activation(model_bytes):
    """Rewrite the flatbuffer: move the first op's fused activation into a standalone op
    (what a converter that failed to fuse would have produced)."""
    m = load_model(model_bytes)
    sg = m.subgraphs[0]
    op = sg.operators[0]
    act = op.builtinOptions.fusedActivationFunction
    act_op_code = {schema.ActivationFunctionType.RELU: schema.BuiltinOperator.RELU,
                   schema.ActivationFunctionType.RELU6: schema.BuiltinOperator.RELU6}[act]
    op.builtinOptions.fusedActivationFunction = schema.ActivationFunctionType.NONE
    out_index = int(op.outputs[0])
    old = sg.tensors[out_index]
    new = schema.TensorT()
    new.shape, new.type, new.buffer = list(old.shape), old.type, 0
    new.name = b"pre_activation"
    new.quantization = old.quantization
    sg.tensors.append(new)
    new_index = len(sg.tensors) - 1
    op.outputs = [new_index]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = act_op_code
    code.version = 1
    m.operatorCodes.append(code)
    relu = schema.OperatorT()
    relu.opcodeIndex = len(m.operatorCodes) - 1
    relu.inputs, relu.outputs = [new_index], [out_index]
    sg.operators.insert(1, relu)
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_standalone_relu_after_conv_is_flagged():
    inp = tf.keras.Input((8, 8, 4))
    x = L.Conv2D(4, 1, activation="relu")(inp)
    x = L.Conv2D(4, 1)(x)
    tfl = to_int8_tflite(tf.keras.Model(inp, x), _rep((8, 8, 4)))
    assert check_graph(tfl) == []
    broken = _unfuse_first_activation(tfl)
    assert tflite_info(broken)["ops"] == ["CONV_2D", "RELU", "CONV_2D"]
    problems = check_graph(broken)
    assert len(problems) == 1
    assert problems[0].startswith("op 1 RELU (tensor 'pre_activation')")
    assert "op 0 CONV_2D" in problems[0]


def test_macs_match_closed_form():
    inp = tf.keras.Input((10, 10, 3))
    x = L.Conv2D(8, 3, padding="valid")(inp)           # -> 8x8x8, 3x3x3 filter
    x = L.Conv2D(8, 1, groups=2)(x)                     # -> 8x8x8, 1x1x(8/2) filter
    x = L.DepthwiseConv2D(3, strides=2, padding="same")(x)  # -> 4x4x8, 3x3 per channel
    x = L.Flatten()(x)                                  # 128
    x = L.Dense(5)(x)
    tfl = to_int8_tflite(tf.keras.Model(inp, x), _rep((10, 10, 3)))
    info = tflite_info(tfl)
    expected = (8 * 8 * 8 * 3 * 3 * 3      # conv 3x3
                + 8 * 8 * 8 * 1 * 1 * 4    # grouped 1x1 conv, groups = 2
                + 4 * 4 * 8 * 3 * 3        # depthwise 3x3 stride 2
                + 1 * 5 * 128)             # dense
    assert info["op_histogram"]["CONV_2D"] == 2
    assert info["macs"] == expected == 17664
    assert info["size_bytes"] == len(tfl)
    assert info["inputs"][0]["dtype"] == "int8" and info["outputs"][0]["shape"] == [1, 5]
    assert set(info["tensor_types"]) <= {"int8", "int32"}


def test_tflite_info_on_vww_fixture():
    info = tflite_info(VWW_TFLITE.read_bytes())
    assert info["size_bytes"] == 333288
    assert set(info["op_histogram"]) == {"AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D",
                                         "FULLY_CONNECTED", "RESHAPE", "SOFTMAX"}
    (inp,) = info["inputs"]
    assert inp["shape"] == [1, 96, 96, 3] and inp["dtype"] == "int8"
    assert inp["zero_point"] == -128 and abs(inp["scale"] - 1 / 255) < 1e-9
    assert info["macs"] == 7489664  # MobileNetV1-0.25 at 96x96: ~7.5 M MACs
    # constants: the Keras model's 216,322 trainable weights (BN folded: moving stats and
    # BN params merge into conv weights/biases), plus the reshape's shape tensor
    assert 200_000 < info["params"] < 221_794
    assert check_graph(VWW_TFLITE.read_bytes()) == []


def test_conversion_failure_names_the_op():
    inp = tf.keras.Input((4,))
    out = L.Lambda(lambda t: tf.math.erf(t))(inp)
    with pytest.raises(ConversionError) as err:
        to_int8_tflite(tf.keras.Model(inp, out), _rep((4,)))
    assert isinstance(err.value, TfuavError)
    assert "tf.Erf" in str(err.value) and "\n" not in str(err.value)


def test_garbage_bytes_are_a_user_error():
    with pytest.raises(TfuavError, match="^bad.tflite: "):
        tflite_info(b"not a flatbuffer at all", source="bad.tflite")
