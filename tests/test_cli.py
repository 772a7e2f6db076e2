"""User-facing behaviour of the `tfuav` command: one clear line and a non-zero exit on bad input."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import VWW_DIR, error_line, run_cli

REPO = Path(__file__).resolve().parents[1]
VWW = VWW_DIR


def test_help_does_not_import_tensorflow():
    code = "import sys; from tfuav.cli import main; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert "build" in run_cli("--help").stdout


def test_unknown_target_lists_choices():
    line = error_line(run_cli("build", "--target", "cortex-m99"))
    assert "cortex-m99" in line and "cortex-m7" in line and "rpi" in line


def test_unknown_model_lists_choices():
    line = error_line(run_cli("build", "--target", "cortex-m7", "--model", "yolo"))
    assert "'yolo'" in line and "glimmernet" in line and "takunet" in line


def test_config_typo_names_the_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("train:\n  epoch: 3\n")
    line = error_line(run_cli("build", "--target", "cortex-m7", "--config", config, "--out", tmp_path / "o"))
    assert "train.epoch" in line and str(config) in line and "epochs" in line


def test_config_wrong_type_names_the_key(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("train:\n  batch_size: sixty-four\n")
    line = error_line(run_cli("build", "--target", "cortex-m7", "--config", config, "--out", tmp_path / "o"))
    assert "train.batch_size" in line and "int" in line


def test_missing_data_dir_is_named(tmp_path):
    missing = tmp_path / "no_such_dir"
    line = error_line(run_cli("build", "--target", "cortex-m7", "--data", missing, "--out", tmp_path / "o"))
    assert str(missing) in line
    assert not (tmp_path / "o" / "model_int8.tflite").exists()


def test_corrupt_image_with_strict_is_named(tmp_path):
    import cv2
    import numpy as np
    data = tmp_path / "data"
    for c in ("fire", "normal"):
        (data / c).mkdir(parents=True)
        for i in range(4):
            cv2.imwrite(str(data / c / f"{i}.png"), np.full((64, 64, 3), 40 * i, np.uint8))
    bad = data / "fire" / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    line = error_line(run_cli("build", "--target", "cortex-m7", "--data", data, "--strict",
                            "--out", tmp_path / "o"))
    assert "broken.jpg" in line
    assert not (tmp_path / "o" / "model_int8.tflite").exists()


def test_inspect_registered_model_json():
    result = run_cli("inspect", "glimmernet", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout)
    assert info["name"] == "glimmernet"
    assert info["input_shape"] == [224, 224, 3]
    assert info["params_trainable"] == 31_204
    assert info["params_total"] > info["params_trainable"]
    assert info["macs"] == 26_462_120


def test_inspect_unknown_name_lists_choices():
    line = error_line(run_cli("inspect", "mobilenet"))
    assert "glimmernet" in line


def test_inspect_missing_file():
    line = error_line(run_cli("inspect", "nowhere/model.tflite"))
    assert "nowhere/model.tflite" in line


def test_inspect_vww_keras_fixture():
    result = run_cli("inspect", VWW / "vww_96.h5", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout)
    # facts from the fixture's README
    assert info["input_shape"] == [96, 96, 3]
    assert info["params_total"] == 221_794 and info["params_trainable"] == 216_322


def test_inspect_vww_tflite_fixture():
    result = run_cli("inspect", VWW / "vww_96_int8.tflite", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout)
    assert info["size_bytes"] == 333_288
    assert set(info["ops"]) == {"AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D",
                                "FULLY_CONNECTED", "RESHAPE", "SOFTMAX"}
    assert set(info["tensor_types"]) <= {"int8", "int32"}
    assert info["input_shape"] == [96, 96, 3]
    for key in ("name", "params_trainable", "params_total", "macs"):
        assert key in info


def test_targets_lists_budgets():
    result = run_cli("targets")
    assert result.returncode == 0
    for name in ("cortex-m7", "cortex-m4", "coral", "rpi"):
        assert name in result.stdout


@pytest.mark.slow
def test_convert_brings_the_vww_keras_model_to_int8(tmp_path):
    result = run_cli("convert", VWW / "vww_96.h5", "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["validation"]["passed"] is True
    assert report["validation"]["max_abs_diff"] <= 1
    assert report["params_trainable"] == 216_322
    # MobileNetV1 0.25 at 96x96: the Keras count and the converted graph's count agree
    assert report["macs"] == report["keras_macs"]
    tflite = (tmp_path / "model_int8.tflite").read_bytes()
    assert len(tflite) == report["int8_size_bytes"]


def test_convert_rejects_a_file_that_is_not_a_model(tmp_path):
    bogus = tmp_path / "weights.h5"
    bogus.write_bytes(b"\x89HDF garbage")
    line = error_line(run_cli("convert", bogus, "--out", tmp_path / "o"))
    assert "weights.h5" in line
    assert not (tmp_path / "o").exists()
