"""Native engine, whole models on the host: every intermediate tensor of the MLPerf Tiny VWW
model, the zoo models (GlimmerNet, TakuNet, UAVLite; 64x64, random weights, non-trivial
BatchNorm) and a Keras model using the remaining converter ops is byte-identical with the
TFLite reference kernels."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import numpy as np
import pytest
from helpers import convert_zoo_model
from test_native_support import (VWW, build_kernel_archive, expose_all_tensors, host_executable,
                                 random_int8, reference_outputs, run_executable)

from tfuav.convert.inspect_tflite import tflite_info
from tfuav.export.native import compile_model
from tfuav.quantization import quantize


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return build_kernel_archive(tmp_path_factory.mktemp("native_lib"))


def inputs_for(model_bytes, images=None, random=2, seed=0):
    spec = tflite_info(model_bytes)["inputs"][0]
    rng = np.random.default_rng(seed)
    rows = [[random_int8(spec["shape"], rng)] for _ in range(random)]
    for img in images if images is not None else []:
        rows.append([quantize(img.reshape(spec["shape"]), spec["scale"], spec["zero_point"],
                              np.int8)])
    return rows


def assert_all_tensors_match(model_bytes, archive, workdir, rows):
    """Every intermediate tensor (a variant of the model that outputs all of them), and the
    outputs of the model as it is (its memory plan shares bytes between tensors that the
    variant keeps apart)."""
    compiled = compile_model(model_bytes, "plain")
    exe = host_executable(compiled, workdir / "plain", archive)
    for row, ours in zip(rows, run_executable(exe, rows)):
        ref = np.concatenate([o.reshape(-1) for o in reference_outputs(model_bytes, row)])
        assert np.array_equal(ref, ours), "model outputs differ"
    exposed = expose_all_tensors(model_bytes)
    compiled = compile_model(exposed, "model")
    exe = host_executable(compiled, workdir, archive)
    outs = run_executable(exe, rows)
    n_tensors = 0
    for row, ours in zip(rows, outs):
        refs = reference_outputs(exposed, row)
        n_tensors = len(refs)
        offset = 0
        for k, ref in enumerate(refs):
            ref = ref.reshape(-1)
            got = ours[offset:offset + ref.size]
            offset += ref.size
            bad = np.flatnonzero(got != ref)
            assert bad.size == 0, (f"model output {k} ({ref.size} bytes): {bad.size} bytes "
                                   f"differ, first at {bad[:5]}")
        assert offset == ours.size
    return n_tensors


def test_vww_every_tensor_bit_exact(archive, tmp_path):
    model = VWW.read_bytes()
    n = assert_all_tensors_match(model, archive, tmp_path, inputs_for(model, random=3))
    assert n >= 29  # every conv / depthwise / pool / FC / softmax output was compared


def zoo_names():
    """GlimmerNet, TakuNet and UAVLite (where the registry has it)."""
    from tfuav.models.registry import model_names
    return [n for n in ("glimmernet", "takunet", "uavlite") if n in model_names()]


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo_names())
def test_zoo_model_every_tensor_bit_exact(name, archive, tmp_path):
    model, rep = convert_zoo_model(name, 64)
    n = assert_all_tensors_match(model, archive, tmp_path, inputs_for(model, rep[:2], random=1))
    assert n >= 60


def keras_op_zoo():
    """A small Keras model whose conversion uses HARD_SWISH, LOGISTIC, TANH, MUL,
    TRANSPOSE_CONV (with its shape computed by SHAPE/STRIDED_SLICE/PACK), LEAKY_RELU,
    MAX_POOL_2D, RESIZE_NEAREST_NEIGHBOR, MEAN, FULLY_CONNECTED and SOFTMAX."""
    import tensorflow as tf

    from tfuav.convert import to_int8_tflite
    L = tf.keras.layers
    inp = tf.keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, padding="same")(inp)
    x = L.Lambda(lambda t: t * tf.nn.relu6(t + 3.0) / 6.0)(x)  # converts to HARD_SWISH
    a = L.Activation("sigmoid")(L.Conv2D(8, 1)(x))
    b = L.Activation("tanh")(L.Conv2D(8, 1)(x))
    x = L.Multiply()([a, b])
    x = L.Conv2DTranspose(6, 3, strides=2, padding="same")(x)
    x = L.LeakyReLU(0.2)(x)
    x = L.UpSampling2D(2)(L.MaxPooling2D(4)(x))
    x = L.Conv2D(4, 3, strides=2, padding="valid")(x)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(5, activation="softmax")(x)
    rep = np.random.default_rng(0).uniform(0, 1, (8, 16, 16, 3)).astype(np.float32)
    return to_int8_tflite(tf.keras.Model(inp, out), rep), rep


def test_keras_converted_ops_bit_exact(archive, tmp_path):
    model, rep = keras_op_zoo()
    ops = set(tflite_info(model)["ops"])
    assert {"HARD_SWISH", "LOGISTIC", "TANH", "TRANSPOSE_CONV", "SHAPE",
            "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU"} <= ops
    compiled = compile_model(model, "ops")
    assert any(f.endswith(":SHAPE") for f in compiled.folded)
    assert_all_tensors_match(model, archive, tmp_path, inputs_for(model, rep[:3], random=2))
