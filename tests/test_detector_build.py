"""End to end for the detector: `tfuav build --model uavlite` on the synthetic scenes, then
`tfuav compress --prune-channels` of that build, exported as a Raspberry Pi bundle."""
import json

import numpy as np
import pytest

from helpers import cli_build, error_line, run_cli
from tfuav.convert import tflite_info
from tfuav.eval.detection import detect_tflite, evaluate_detections

SMALL_DETECTOR = """\
data:
  image_size: 64
  synthetic_scenes: 160
model:
  name: uavlite
train:
  epochs: 3
  batch_size: 32
  learning_rate: 0.003
convert:
  representative_samples: 16
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return cli_build(tmp_path_factory.mktemp("detector"), SMALL_DETECTOR)


@pytest.mark.slow
def test_detector_build_reports_coco_metrics_and_packages_the_decoder(built):
    report = json.loads((built / "report.json").read_text())
    assert report["task"] == "detection" and report["model"] == "uavlite"
    assert report["validation"]["passed"] is True
    # the report's int8 metrics are what pycocotools gives for the saved model on the test split
    from tfuav.data.detection_dataset import load_detection_dataset
    test = load_detection_dataset(None, image_size=64, count=160, seed=0).splits["test"]
    tflite = (built / "model_int8.tflite").read_bytes()
    direct = evaluate_detections(detect_tflite(tflite, test.images, 4, 4), test,
                                 ["person", "car", "truck", "bus"])
    assert np.isclose(report["metrics"]["int8"]["AP50"], direct["AP50"])
    assert (built / "pr_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "pr_curves.png" in (built / "report.md").read_text()
    firmware = built / "firmware"
    assert (firmware / "tfuav_detect.c").is_file()
    assert "MODEL_DETECT_NUM_CLASSES 4" in (firmware / "model_config.h").read_text()


@pytest.mark.slow
def test_pruned_detector_has_half_the_macs_and_a_pi_bundle(built):
    result = run_cli("compress", built, "--prune-channels", "--budget-macs", "0.5",
                     "--slimming-epochs", "1", "--finetune-epochs", "1", "--target", "rpi")
    assert result.returncode == 0, result.stderr[-3000:]
    before = json.loads((built / "report.json").read_text())
    out = built / "compressed"
    after = json.loads((out / "report.json").read_text())
    macs = tflite_info((out / "model_int8.tflite").read_bytes())["macs"]
    assert 0.45 * before["macs"] <= macs <= 0.5 * before["macs"], (before["macs"], macs)
    assert after["validation"]["passed"] is True and after["task"] == "detection"
    sidecar = json.loads((out / "rpi_bundle" / "detector.json").read_text())
    assert sidecar["num_classes"] == 4 and sidecar["stride"] == 4


@pytest.mark.slow
def test_deformable_variant_is_refused_for_full_integer_targets_with_the_plain_one_named(tmp_path):
    config = tmp_path / "dcn.yaml"
    config.write_text(SMALL_DETECTOR.replace("uavlite", "uavlite_dcn")
                      .replace("synthetic_scenes: 160", "synthetic_scenes: 40")
                      .replace("epochs: 3", "epochs: 1"))
    line = error_line(run_cli("build", "--target", "cortex-m7", "--config", config,
                              "--out", tmp_path / "out"))
    assert "uavlite_dcn keeps float ops" in line and "--model uavlite," in line
    assert not (tmp_path / "out" / "model_int8.tflite").exists()
