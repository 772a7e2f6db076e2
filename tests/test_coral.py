"""Coral Edge TPU target: the op check (first CPU op, general constraints), the compiler log
parser, and the coral form of the zoo models (same float function, all ops on the Edge TPU)."""
import json
import os
import stat

import flatbuffers
import numpy as np
import pytest

import tfuav  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from helpers import randomize_bn
from tfuav.convert import to_int8_tflite
from tfuav.convert.inspect_tflite import load_model, op_name, schema
from tfuav.errors import TfuavError
from tfuav.export.coral import (EdgeTpuFallbackError, assert_edgetpu_ready, edgetpu_report,
                                edgetpu_report_markdown, parse_compiler_log)
from tfuav.models import build_model, coral_form
from tfuav.models.layers import ChannelGather
from tfuav.models.layers.coral import dense_to_grouped_kernel, grouped_to_dense_kernel

L = tf.keras.layers

# What `edgetpu_compiler -s -o out model_int8.tflite` prints, in the format Coral documents
# (compiler 16); the numbers are made up for the test.
COMPILER_LOG = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 412 ms.

Input model: model_int8.tflite
Input size: 96.50KiB
Output model: out/model_int8_edgetpu.tflite
Output size: 301.25KiB
On-chip memory used for caching model parameters: 245.75KiB
On-chip memory remaining for caching model parameters: 7.66MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 162
Operation log: out/model_int8_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will instead run on the CPU, which is slower. If possible, consider updating your model to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 33
Number of operations that will run on CPU: 129

Operator                       Count      Status

DEPTHWISE_CONV_2D              4          Mapped to Edge TPU
DEPTHWISE_CONV_2D              50         More than one subgraph is not supported
GATHER                         1          Operation not supported
CONV_2D                        2          Mapped to Edge TPU
DIV                            4          Operation not supported
Compilation child process completed within timeout period.
Compilation succeeded!
"""


def _rep(shape, n=4, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, *shape)).astype(np.float32)


def _convert(model):
    return to_int8_tflite(model, _rep(model.input_shape[1:]))


@pytest.fixture(scope="module")
def gather_model_tflite():
    """CONV_2D, MAX_POOL_2D, then op #2 a GATHER (channel shuffle), then supported ops."""
    x = inputs = tf.keras.Input((16, 16, 3), batch_size=1, name="image")
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = ChannelGather([1, 0, 3, 2, 5, 4, 7, 6], name="shuffle")(x)
    x = L.Conv2D(8, 1, name="mix")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(4, name="fc")(x)
    return _convert(tf.keras.Model(inputs, x))


def _ops(tfl):
    model = load_model(tfl)
    return [op_name(model, op) for op in model.subgraphs[0].operators]


def test_first_unsupported_op_and_everything_after_it_run_on_the_cpu(gather_model_tflite):
    ops = _ops(gather_model_tflite)
    assert ops[:3] == ["CONV_2D", "MAX_POOL_2D", "GATHER"], ops
    report = edgetpu_report(gather_model_tflite)
    first = report["first_cpu_op"]
    assert (first["index"], first["op"], first["layer"]) == (2, "GATHER", "shuffle")
    assert "not an Edge TPU op" in first["reason"]
    assert report["edgetpu_ops"] == 2 and report["cpu_ops"] == len(ops) - 2
    assert report["total_ops"] == len(ops) and not report["fully_mapped"]
    later = report["ops"][3:]
    assert later and all(r["supported"] and not r["edgetpu"] for r in later)
    assert all("after the first CPU op #2" in r["reason"] for r in later)
    assert report["inputs"][0]["shape"] == [1, 16, 16, 3]
    md = edgetpu_report_markdown(report)
    assert "2 / %d" % len(ops) in md and "#2 `GATHER`" in md and "`shuffle`" in md
    with pytest.raises(EdgeTpuFallbackError, match=r"GATHER \(op #2, from Keras layer 'shuffle'\)"):
        assert_edgetpu_ready(report)


def _with_fused_relu_on_pool(tfl):
    model = load_model(tfl)
    sg = model.subgraphs[0]
    pool = next(op for op in sg.operators if op_name(model, op) == "MAX_POOL_2D")
    pool.builtinOptions.fusedActivationFunction = schema.ActivationFunctionType.RELU
    builder = flatbuffers.Builder(len(tfl) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_fused_activation_on_pooling_is_flagged(gather_model_tflite):
    report = edgetpu_report(_with_fused_relu_on_pool(gather_model_tflite))
    first = report["first_cpu_op"]
    assert (first["index"], first["op"], first["layer"]) == (1, "MAX_POOL_2D", "pool")
    assert "fused activation" in first["reason"]
    assert report["edgetpu_ops"] == 1


def test_tensor_with_four_non_unit_innermost_dims_is_flagged():
    x = inputs = tf.keras.Input((8, 8, 8), batch_size=1, name="image")
    x = L.Conv2D(8, 1, name="conv")(x)
    x = L.Reshape((2, 4, 8, 8), name="to5d")(x)        # [1, 2, 4, 8, 8]: 4 non-unit dims
    x = L.Permute((2, 1, 3, 4), name="swap")(x)        # a 5-D TRANSPOSE keeps it 5-D
    x = L.Reshape((8, 8, 8), name="back")(x)
    x = L.Conv2D(4, 1, name="out")(x)
    report = edgetpu_report(_convert(tf.keras.Model(inputs, x)))
    first = report["first_cpu_op"]
    assert (first["index"], first["op"]) == (1, "RESHAPE"), report["ops"]
    assert "more than 3 non-unit innermost dimensions" in first["reason"]
    assert "[1, 2, 4, 8, 8]" in first["reason"]
    assert report["edgetpu_ops"] == 1 and report["cpu_ops"] == report["total_ops"] - 1


def test_compiler_log_parser():
    log = parse_compiler_log(COMPILER_LOG)
    assert log["version"] == "16.0.384591198" and log["compile_ms"] == 412
    assert log["succeeded"] is True
    assert log["input_model"] == "model_int8.tflite"
    assert log["output_model"] == "out/model_int8_edgetpu.tflite"
    assert log["input_size_bytes"] == round(96.5 * 1024)
    assert log["on_chip_cache_bytes"] == round(245.75 * 1024)
    assert log["on_chip_remaining_bytes"] == round(7.66 * 1024 ** 2)
    assert log["off_chip_streaming_bytes"] == 0
    assert log["subgraphs"] == 1 and log["total_ops"] == 162
    assert (log["edgetpu_ops"], log["cpu_ops"]) == (33, 129)
    assert log["operation_log"] == "out/model_int8_edgetpu.log"
    rows = log["operators"]
    assert [(r["op"], r["count"], r["mapped"]) for r in rows] == [
        ("DEPTHWISE_CONV_2D", 4, True), ("DEPTHWISE_CONV_2D", 50, False), ("GATHER", 1, False),
        ("CONV_2D", 2, True), ("DIV", 4, False)]
    assert rows[2]["status"] == "Operation not supported"
    # only the operator table (the .log file): counts come from the table
    table = COMPILER_LOG[COMPILER_LOG.index("Operator "):]
    only = parse_compiler_log("Edge TPU Compiler version 16.0.384591198\n" + table)
    assert (only["edgetpu_ops"], only["cpu_ops"]) == (6, 55)
    assert parse_compiler_log("ERROR: Didn't find op for builtin opcode 'X'\n")["succeeded"] is False


def test_compiler_missing_or_present_on_path(gather_model_tflite, tmp_path, monkeypatch):
    path = os.environ.get("PATH", "")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    comp = edgetpu_report(gather_model_tflite, model_path="m.tflite")["compiler"]
    assert comp["available"] is False and comp["ran"] is False
    assert comp["command"] == "edgetpu_compiler -s -o OUTDIR m.tflite"
    assert "not on PATH" in comp["note"]
    # a stand-in compiler that prints the documented log
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "log.txt").write_text(COMPILER_LOG)
    fake = bin_dir / "edgetpu_compiler"
    fake.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/args\ncat {tmp_path}/log.txt\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{path}")
    model = tmp_path / "model_int8.tflite"
    model.write_bytes(gather_model_tflite)
    comp = edgetpu_report(gather_model_tflite, model_path=model, out_dir=tmp_path / "out")["compiler"]
    assert (tmp_path / "args").read_text().split() == ["-s", "-o", str(tmp_path / "out"), str(model)]
    assert comp["ran"] and comp["succeeded"] and comp["returncode"] == 0
    assert (comp["edgetpu_ops"], comp["cpu_ops"], comp["off_chip_streaming_bytes"]) == (33, 129, 0)


def test_dense_kernel_is_the_permuted_grouped_kernel():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(1, 1, 4, 6)).astype(np.float32)    # 8 -> 6 channels, 2 groups
    order = list(rng.permutation(8))
    dense = grouped_to_dense_kernel(kernel, 2, order)
    x = rng.normal(size=(8,)).astype(np.float32)
    mixed = x[order]
    grouped = np.concatenate([mixed[:4] @ kernel[0, 0, :, :3], mixed[4:] @ kernel[0, 0, :, 3:]])
    np.testing.assert_allclose(x @ dense[0, 0], grouped, rtol=1e-6)
    np.testing.assert_array_equal(dense_to_grouped_kernel(dense, 2, order), kernel)
    assert np.count_nonzero(dense) == kernel.size   # zeros elsewhere: quantize to exact 0


def test_gather_and_grouped_conv_become_one_conv_that_is_exact_in_int8():
    """ChannelGather + grouped 1x1 Conv2D vs PermutedGroupedConv1x1 with the same weights:
    the int8 models compute the same bytes (same per-channel weights, zeros stay zero)."""
    from tfuav.models.layers import PermutedGroupedConv1x1
    from tfuav.validate import run_reference
    order = list(np.random.default_rng(1).permutation(16))

    def model(coral):
        x = inputs = tf.keras.Input((8, 8, 16), batch_size=1, name="image")
        x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
        if coral:
            x = PermutedGroupedConv1x1(8, 4, order, name="agg")(x)
        else:
            x = ChannelGather(order, name="mix")(x)
            x = L.Conv2D(8, 1, groups=4, name="agg")(x)
        return tf.keras.Model(inputs, L.ReLU(6.0, name="relu6")(x))

    default, coral = model(False), model(True)
    coral.get_layer("dw").set_weights(default.get_layer("dw").get_weights())
    coral.get_layer("agg").set_grouped_weights(*default.get_layer("agg").get_weights())
    rep = _rep((8, 8, 16), n=8)
    a, b = to_int8_tflite(default, rep), to_int8_tflite(coral, rep)
    assert "GATHER" in _ops(a) and _ops(b) == ["DEPTHWISE_CONV_2D", "CONV_2D"]
    x = np.random.default_rng(2).integers(-128, 128, (6, 1, 8, 8, 16), dtype=np.int8)
    outs_a, outs_b = run_reference(a, list(x)), run_reference(b, list(x))
    assert len(np.unique(np.concatenate([np.ravel(o) for o in outs_a]))) > 20  # not saturated
    for out_a, out_b in zip(outs_a, outs_b):
        np.testing.assert_array_equal(out_a, out_b)


def _random_zoo(name, size=64):
    model = build_model(name, (size, size, 3), 4)
    randomize_bn(model)
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if layer.name.endswith("_grn"):   # non-trivial GRN (gamma, beta start at zero)
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("name", ["glimmernet", "takunet"])
def test_coral_form_computes_the_default_form(name):
    model = _random_zoo(name)
    coral = coral_form(model)
    assert coral.input_shape == (1, 64, 64, 3)
    layers = {layer.__class__.__name__ for layer in coral.layers}
    assert "ChannelGather" not in layers and "GlobalResponseNorm" not in layers
    assert {"PermutedGroupedConv1x1", "CoralGlobalResponseNorm"} <= layers
    x = _rep((64, 64, 3), n=3, seed=5)
    expected = model.predict(x, verbose=0)
    got = np.concatenate([coral(x[i:i + 1]).numpy() for i in range(3)])
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_model_forms_are_validated():
    with pytest.raises(TfuavError, match="unknown model form"):
        build_model("glimmernet", (64, 64, 3), 4, form="gpu")
    assert build_model("takunet", (64, 64, 3), 4, form="coral").input_shape == (1, 64, 64, 3)


def _coral_tflite(name):
    model = coral_form(_random_zoo(name))
    return to_int8_tflite(model, _rep((64, 64, 3)))


def test_glimmernet_coral_form_runs_entirely_on_the_edgetpu():
    tfl = _coral_tflite("glimmernet")
    sg = load_model(tfl).subgraphs[0]
    inp = sg.tensors[sg.inputs[0]]
    assert list(inp.shape) == [1, 64, 64, 3]
    assert inp.shapeSignature is None or list(inp.shapeSignature) == [1, 64, 64, 3]
    report = edgetpu_report(tfl)
    assert report["cpu_ops"] == 0 and report["first_cpu_op"] is None, report["first_cpu_op"]
    assert report["fully_mapped"] and report["edgetpu_ops"] == report["total_ops"]
    ops = {r["op"] for r in report["ops"]}
    assert not ops & {"GATHER", "DIV", "TILE"}
    assert "L2_NORMALIZATION" in ops and "RSQRT" in ops
    assert not any("dynamic batch" in w for w in report["warnings"])
    assert_edgetpu_ready(report)
    print("glimmernet coral:", report["edgetpu_ops"], "/", report["total_ops"])


@pytest.mark.slow
def test_glimmernet_default_form_falls_back_at_the_first_channel_gather():
    from helpers import convert_zoo_model
    tfl, _ = convert_zoo_model("glimmernet")
    report = edgetpu_report(tfl)
    first = report["first_cpu_op"]
    assert (first["op"], first["layer"]) == ("GATHER", "stage1_agg_mix")
    assert report["edgetpu_ops"] == first["index"] and report["cpu_ops"] > 0
    assert report["edgetpu_ops"] + report["cpu_ops"] == report["total_ops"]
    problems = {r["op"] for r in report["ops"] if not r["supported"]}
    assert {"GATHER", "DIV", "CONV_2D"} <= problems   # CONV_2D: the grouped aggregators
    assert any("dynamic batch" in w for w in report["warnings"])
    print("glimmernet default:", report["edgetpu_ops"], "/", report["total_ops"], first)


@pytest.mark.slow
def test_takunet_coral_form_runs_entirely_on_the_edgetpu():
    report = edgetpu_report(_coral_tflite("takunet"))
    assert report["cpu_ops"] == 0 and report["first_cpu_op"] is None, report["first_cpu_op"]


@pytest.mark.slow
def test_build_for_coral_converts_the_edge_tpu_form(tmp_path):
    from tfuav.config import CONFIG_DIR, load_config
    from tfuav.pipeline import build
    config = load_config(CONFIG_DIR / "default.yaml", {"train": {"epochs": 1},
                                                       "data": {"synthetic_per_class": 24}})
    report = build(config, "coral", tmp_path, echo=lambda *_: None)
    assert report["edgetpu"]["fully_mapped"] is True and report["edgetpu"]["cpu_ops"] == 0
    assert report["validation"]["passed"] is True
    assert "edgetpu_compiler -s" in report["edgetpu"]["compiler"]["command"]
    assert "## Coral Edge TPU" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "edgetpu_report.json").read_text())["fully_mapped"] is True
    bundle = tmp_path / "rpi_bundle"
    assert "--edgetpu" in (bundle / "run.sh").read_text()
    assert "edgetpu_compiler -s model_int8.tflite" in (bundle / "README.md").read_text()
    assert (bundle / "model_int8.tflite").read_bytes() == (tmp_path / "model_int8.tflite").read_bytes()


def test_export_for_coral_names_the_first_cpu_op(tmp_path):
    from helpers import run_cli
    L = tf.keras.layers
    inp = tf.keras.Input((16, 16, 3), batch_size=1)
    x = L.Conv2D(8, 3, padding="same", name="stem")(inp)
    x = L.Lambda(lambda t: tf.gather(t, [7, 6, 5, 4, 3, 2, 1, 0], axis=-1), name="shuffle")(x)
    x = L.Conv2D(8, 1, name="mix")(x)
    model = tf.keras.Model(inp, L.Dense(4)(L.GlobalAveragePooling2D()(x)))
    rep = np.random.default_rng(0).uniform(0, 1, (8, 16, 16, 3)).astype(np.float32)
    path = tmp_path / "m.tflite"
    path.write_bytes(to_int8_tflite(model, rep))
    result = run_cli("export", path, "--target", "coral", "--out", tmp_path / "o")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "GATHER" in result.stdout and "'shuffle'" in result.stdout
    saved = json.loads((tmp_path / "o" / "edgetpu_report.json").read_text())
    assert saved["first_cpu_op"]["op"] == "GATHER" and saved["first_cpu_op"]["layer"] == "shuffle"
    assert (tmp_path / "o" / "rpi_bundle" / "run.sh").is_file()
