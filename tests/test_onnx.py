"""Keras -> ONNX export (tf2onnx), checked in onnxruntime against the Keras model."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf

from helpers import VWW_DIR, randomize_bn
from tfuav.convert import onnx as tfuav_onnx
from tfuav.convert.onnx import export_onnx_file, to_onnx, verify_onnx
from tfuav.data import generate_emergency_scenes, preprocess
from tfuav.errors import TfuavError
from tfuav.models import build_model
from tfuav.models.layers import (ChannelGather, ChannelSplit, DilatedConv2D,
                                 DilatedDepthwiseConv2D, GlobalResponseNorm,
                                 interleave_permutation)

L = tf.keras.layers
ATOL = 1e-4


def _uniform(shape, n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n,) + tuple(shape)).astype(np.float32)


def _randomize_grn(model, seed=1):
    """GRN starts as the identity (gamma = beta = 0); give it something to compute."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, GlobalResponseNorm):
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


@pytest.fixture(scope="module", params=["glimmernet", "takunet"])
def zoo(request):
    model = build_model(request.param, (64, 64, 3), 4)
    randomize_bn(model)
    _randomize_grn(model)
    return model, to_onnx(model)


def test_zoo_model_matches_keras_on_random_and_scene_inputs(zoo):
    model, data = zoo
    images, _, _ = generate_emergency_scenes(2, 64, seed=3)
    for inputs in (_uniform((64, 64, 3), 4), preprocess(images)):
        report = verify_onnx(data, model, inputs, atol=ATOL)
        assert report["ok"], report
        assert report["max_abs_diff"] <= ATOL
        assert report["outputs"][0]["argmax_agreement"] == 1.0
        assert report["samples"] == len(inputs)


def test_zoo_graph_is_plain_onnx_with_grouped_and_dilated_convs(zoo):
    model, data = zoo
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto)
    ops = {n.op_type for n in proto.graph.node}
    assert "PartitionedCall" not in ops and "Conv" in ops
    convs = [_attrs(n) for n in proto.graph.node if n.op_type == "Conv"]
    assert any(a.get("group", 1) > 1 and a.get("group") < 64 for a in convs)  # aggregators
    assert any(max(a.get("dilations", [1])) > 1 for a in convs)
    # Dynamic batch, named after the Keras input and output.
    (inp,) = proto.graph.input
    assert inp.name == model.input_names[0]
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [o.name for o in proto.graph.output] == model.output_names
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for n in (1, 3):
        (out,) = session.run(None, {inp.name: _uniform((64, 64, 3), n)})
        assert out.shape == (n, 4)


def test_each_custom_layer_converts():
    inp = tf.keras.Input((24, 24, 8))
    x = DilatedConv2D(16, name="stem")(inp)                        # stride 2, dilation 2
    parts = ChannelSplit(4, name="split")(x)
    parts = [DilatedDepthwiseConv2D(3, dilation_rate=d, name=f"dw{i}")(p)
             for i, (p, d) in enumerate(zip(parts, (1, 2, 2, 3)))]
    y = L.Concatenate()(parts)
    y = ChannelGather(interleave_permutation(16), name="mix")([x, y])
    y = L.Conv2D(16, 1, groups=8, name="grouped")(y)
    y = GlobalResponseNorm(name="grn")(y)
    y = DilatedDepthwiseConv2D(3, strides=2, dilation_rate=2, padding="valid", name="dw_s2")(y)
    model = tf.keras.Model(inp, y)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.5, w.shape) for w in model.get_weights()])
    report = verify_onnx(to_onnx(model), model, rng.normal(0, 1, (3, 24, 24, 8)), atol=ATOL)
    assert report["ok"], report
    assert report["outputs"][0]["shape"] == [3, 3, 3, 16]


def test_vww_fixture_exports_through_the_file_helper(tmp_path):
    out = tmp_path / "onnx" / "vww.onnx"
    report = export_onnx_file(VWW_DIR / "vww_96.h5", out)
    assert out.is_file() and out.stat().st_size == report["bytes"]
    assert report["verify"]["ok"] and report["verify"]["max_abs_diff"] <= ATOL
    assert report["inputs"] == {"input_1": [None, 96, 96, 3]}
    assert report["opset"] >= 13
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (probs,) = session.run(None, {"input_1": _uniform((96, 96, 3), 2)})
    assert probs.shape == (2, 2)
    assert not list(out.parent.glob(".*.tmp"))


def test_corrupt_model_file_is_one_line_error(tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0garbage" * 64)
    out = tmp_path / "broken.onnx"
    with pytest.raises(TfuavError) as err:
        export_onnx_file(bad, out)
    assert "\n" not in str(err.value) and "broken.h5" in str(err.value)
    assert not out.exists()


def test_mismatch_is_one_line_error_and_nothing_is_written(tmp_path, monkeypatch):
    def tiny(seed):
        tf.keras.utils.set_random_seed(seed)
        inp = tf.keras.Input((8, 8, 3), name="image")
        x = L.GlobalAveragePooling2D()(L.Conv2D(4, 3)(inp))
        return tf.keras.Model(inp, L.Dense(2, name="score")(x))

    path = tmp_path / "tiny.keras"
    tiny(0).save(path)
    other = to_onnx(tiny(1))  # same graph, other weights
    monkeypatch.setattr(tfuav_onnx, "to_onnx", lambda model, opset=None: other)
    out = tmp_path / "tiny.onnx"
    with pytest.raises(TfuavError) as err:
        export_onnx_file(path, out)
    message = str(err.value)
    assert "\n" not in message and "'score'" in message and "differs from Keras" in message
    assert not out.exists()


def test_cli_exports_onnx(tmp_path):
    from helpers import error_line, run_cli
    result = run_cli("export", VWW_DIR / "vww_96.h5", "--format", "onnx", "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "vww_96.onnx"
    session = ort.InferenceSession(out.read_bytes(), providers=["CPUExecutionProvider"])
    keras = tf.keras.models.load_model(VWW_DIR / "vww_96.h5", compile=False)
    x = np.random.default_rng(5).uniform(0, 1, (2, 96, 96, 3)).astype(np.float32)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert np.abs(got - keras(x, training=False).numpy()).max() < 1e-4
    assert "--target is required" in error_line(run_cli("export", VWW_DIR / "vww_96.h5"))
