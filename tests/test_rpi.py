"""The Raspberry Pi bundle: a folder that runs on numpy + ai-edge-litert + OpenCV alone."""
import json
import os
import stat
import subprocess
import sys

import cv2
import numpy as np
import pytest
from ai_edge_litert import interpreter as litert

from helpers import error_line, run_cli, small_cnn_tflite
from tfuav.config import CONFIG_DIR, load_config
from tfuav.pipeline import build

LABELS = ["collapsed_building", "fire", "flood", "normal"]


def _reference_top1(model_bytes, rgb_images):
    """Top-1 class computed independently: /255, quantize by hand, TFLite reference kernels."""
    interp = litert.Interpreter(model_content=model_bytes,
                                experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zero = inp["quantization"]
    tops = []
    for img in rgb_images:
        q = np.clip(np.round(img.astype(np.float64) / 255.0 / scale) + zero, -128, 127)
        interp.set_tensor(inp["index"], q.astype(np.int8)[None])
        interp.invoke()
        tops.append(int(np.argmax(interp.get_tensor(out["index"])[0])))
    return tops


def test_rpi_bundle_runs_without_tensorflow(tmp_path):
    tfl = small_cnn_tflite()
    model = tmp_path / "uav_cnn.tflite"
    model.write_bytes(tfl)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    result = run_cli("export", model, "--target", "rpi", "--labels", labels, "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    bundle = tmp_path / "rpi_bundle"
    assert (bundle / "model_int8.tflite").read_bytes() == tfl
    assert (bundle / "labels.txt").read_text().split() == LABELS
    assert "ai-edge-litert" in (bundle / "requirements.txt").read_text()
    assert "tensorflow" not in (bundle / "requirements.txt").read_text()
    assert "ExecStart=" in (bundle / "tfuav-infer.service").read_text()
    assert "Raspberry Pi OS" in (bundle / "README.md").read_text()
    assert os.stat(bundle / "run.sh").st_mode & stat.S_IXUSR
    assert os.stat(bundle).st_mode & stat.S_IROTH  # a normal folder, not a private temp dir

    rng = np.random.default_rng(3)
    images = [np.clip(rng.normal(m, 60, (32, 32, 3)), 0, 255).astype(np.uint8)
              for m in (40, 100, 160, 220)]
    frames = tmp_path / "frames"
    frames.mkdir()
    for k, img in enumerate(images):  # PNG: lossless, the bundle reads the same pixels
        cv2.imwrite(str(frames / f"{k}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    proc = subprocess.run(["./run.sh", "--source", str(frames), "--top-k", "1"], cwd=bundle,
                          env=dict(os.environ, PYTHON=sys.executable), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(ln) for ln in proc.stdout.splitlines()]
    assert [ln["top"][0]["index"] for ln in lines] == _reference_top1(tfl, images)
    assert all(ln["top"][0]["label"] == LABELS[ln["top"][0]["index"]] for ln in lines)

    # the bundle's own copy of the runtime is what runs, and it never loads TensorFlow
    code = ("import sys, cv2; import tfuav_runtime as rt; "
            "c = rt.Classifier('model_int8.tflite', labels='labels.txt'); "
            f"c.classify(cv2.imread({str(frames / '0.png')!r})[:, :, ::-1].copy()); "
            "print(rt.__file__); print(sorted(m for m in ('tensorflow', 'tf_keras', 'tfuav') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=bundle, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    origin, loaded = proc.stdout.splitlines()[-2:]
    assert origin.startswith(str(bundle / "tfuav_runtime"))
    assert loaded == "[]"


def test_rpi_bundle_label_count_is_checked(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(small_cnn_tflite())
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    line = error_line(run_cli("export", model, "--target", "rpi", "--labels", labels,
                              "--out", tmp_path))
    assert "2 labels" in line and "4 classes" in line
    assert not (tmp_path / "rpi_bundle").exists()


@pytest.mark.slow
def test_build_for_rpi_leaves_a_bundle(tmp_path):
    config = load_config(CONFIG_DIR / "default.yaml", {"train": {"epochs": 1},
                                                       "data": {"synthetic_per_class": 24}})
    report = build(config, "rpi", tmp_path, echo=lambda *_: None)
    bundle = tmp_path / "rpi_bundle"
    assert (bundle / "model_int8.tflite").read_bytes() == (tmp_path / "model_int8.tflite").read_bytes()
    assert (bundle / "labels.txt").read_text().split() == LABELS
    assert report["bundle"]["folder"] == str(bundle)
