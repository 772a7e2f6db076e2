"""End to end: synthetic data -> trained GlimmerNet -> checked int8 model -> report."""
import json

import numpy as np
import pytest

from firmware_helpers import as_array, c_arrays, c_define, golden_vectors
from tfuav.config import CONFIG_DIR, load_config
from tfuav.pipeline import build
from tfuav.validate import run_tflm


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    # exactly what `tfuav build --target cortex-m7` runs
    config = load_config(CONFIG_DIR / "default.yaml")
    report = build(config, "cortex-m7", out, echo=lambda *_: None)
    return out, report


@pytest.mark.slow
def test_build_leaves_model_and_report(built):
    out, report = built
    assert (out / "model_int8.tflite").stat().st_size == report["int8_size_bytes"]
    saved = json.loads((out / "report.json").read_text())
    for key in ("model", "target", "params_trainable", "macs", "int8_size_bytes", "ops",
                "metrics", "validation", "timings"):
        assert key in saved
    assert saved["model"] == "glimmernet" and saved["target"] == "cortex-m7"
    assert set(saved["metrics"]) >= {"float", "int8"}
    assert saved["validation"]["runtimes"] == ["tflite-reference", "tflm"]
    assert saved["validation"]["passed"] is True
    assert "Cross-runtime validation" in (out / "report.md").read_text()
    assert set(saved["timings"]) >= {"data", "train", "convert", "validate"}


@pytest.mark.slow
def test_trained_model_beats_chance_and_int8_keeps_its_f1(built):
    _, report = built
    float_f1 = report["metrics"]["float"]["weighted_f1"]
    int8_f1 = report["metrics"]["int8"]["weighted_f1"]
    assert float_f1 > 0.6, report["metrics"]  # four balanced classes: chance is 0.25
    assert int8_f1 >= float_f1 - 0.02, (float_f1, int8_f1)


@pytest.mark.slow
def test_int8_graph_is_native(built):
    _, report = built
    ops = set(report["ops"])
    assert {"DEPTHWISE_CONV_2D", "CONV_2D", "FULLY_CONNECTED"} <= ops
    assert not ops & {"SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "DEQUANTIZE", "QUANTIZE"}
    # 13 GDBlocks with 4 groups each + stem + refiner depthwise convolutions
    assert report["op_histogram"]["DEPTHWISE_CONV_2D"] == 13 * 4 + 2


@pytest.mark.slow
def test_build_leaves_a_checked_firmware_folder(built):
    out, report = built
    folder = out / "firmware"
    tflite = (out / "model_int8.tflite").read_bytes()
    arrays = c_arrays((folder / "model_data.cc").read_text())
    assert list(arrays.values()) == [tflite]
    ins, outs = golden_vectors(folder)
    assert len(ins) == 2  # real test images
    arena = int(c_define((folder / "model_config.h").read_text(), "MODEL_ARENA_BYTES"))
    got = run_tflm(tflite, [as_array(x, np.int8, (1, 64, 64, 3)) for x in ins], arena_size=arena)
    assert [g.tobytes() for g in got] == outs
    fw = report["firmware"]
    assert fw["fit"]["fits"] is True and fw["arena"]["arena_bytes"] == arena
    assert "## Firmware (cortex-m7" in (out / "report.md").read_text()
