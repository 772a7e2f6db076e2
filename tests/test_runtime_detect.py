"""Detectors on the Pi / Coral host: tfuav.runtime.Detector, `tfuav infer` and the bundle's
run.sh, against the TFLite interpreter and a decoder written out here by hand."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import io
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from ai_edge_litert import interpreter as litert

from helpers import error_line, run_cli, small_cnn_tflite
from test_detect_c import detector_tflite
from tfuav.runtime import Detector, InferenceError, decode_head, open_model, run_inference
from tfuav.runtime.quant import dequantize

LABELS = ["person", "car", "boat"]
INPUT = 32  # the detector's input size; its output grid is 8x8 (stride 4)


def _write_png(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _frames(seed=0):
    """Smooth random RGB frames of the model's size and of two others."""
    rng = np.random.default_rng(seed)
    frames = []
    for h, w in ((32, 32), (48, 64), (64, 64), (32, 32)):
        small = rng.uniform(0, 255, (h // 8, w // 8, 3)).astype(np.float32)
        frames.append(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
                      .clip(0, 255).astype(np.uint8))
    return frames


def _raw_output(model_bytes, rgb, reference):
    """The model's int8 output for a frame, computed here: area resize, / 255, quantize by
    hand, invoke (reference kernels, or the interpreter's default ones)."""
    kwargs = {"experimental_op_resolver_type": litert.OpResolverType.BUILTIN_REF} \
        if reference else {}
    interp = litert.Interpreter(model_content=model_bytes, **kwargs)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    if rgb.shape[:2] != (INPUT, INPUT):
        rgb = cv2.resize(rgb, (INPUT, INPUT), interpolation=cv2.INTER_AREA)
    scale, zero = inp["quantization"]
    q = np.clip(np.round(rgb.astype(np.float64) / 255.0 / scale) + zero, -128, 127)
    interp.set_tensor(inp["index"], q.astype(np.int8)[None])
    interp.invoke()
    return interp.get_tensor(out["index"])[0].copy(), out["quantization"]


def _hand_decoded(out, quantization, num_classes, stride, top_k, threshold, frame_hw):
    """The detections of one output, loop by loop in float64: 3x3 peaks per class (equal
    neighbours allowed, no neighbours outside the grid), best score first (ties: lower
    (y, x, class) index), boxes from centre and size, clipped, scaled to the frame."""
    scale, zero = quantization
    real = (out.astype(np.float64) - zero) * scale
    h, w, _ = out.shape
    found = []
    for y in range(h):
        for x in range(w):
            for c in range(num_classes):
                v = real[y, x, c]
                neighbours = [real[j, i, c] for j in range(max(0, y - 1), min(h, y + 2))
                              for i in range(max(0, x - 1), min(w, x + 2))]
                if v >= threshold and v >= max(neighbours):
                    found.append((-v, (y * w + x) * num_classes + c, x, y, c))
    boxes = []
    for neg, _, x, y, c in sorted(found)[:top_k]:
        cx = (x + real[y, x, num_classes + 2]) * stride
        cy = (y + real[y, x, num_classes + 3]) * stride
        bw = real[y, x, num_classes] * w * stride
        bh = real[y, x, num_classes + 1] * h * stride
        x0, x1 = (min(max(v, 0), w * stride) for v in (cx - bw / 2, cx + bw / 2))
        y0, y1 = (min(max(v, 0), h * stride) for v in (cy - bh / 2, cy + bh / 2))
        sx, sy = frame_hw[1] / (w * stride), frame_hw[0] / (h * stride)
        boxes.append({"class": c, "score": -neg, "x": x0 * sx, "y": y0 * sy,
                      "w": (x1 - x0) * sx, "h": (y1 - y0) * sy})
    return boxes


def _assert_same_boxes(got, expected):
    assert [(b["class"], b["score"]) for b in got] == \
        [(b["class"], b["score"]) for b in expected]
    for g, e in zip(got, expected):       # JSON coordinates are rounded to 0.01 px
        assert all(abs(g[k] - e[k]) <= 0.005 + 1e-9 for k in "xywh"), (g, e)
        assert g["label"] == LABELS[g["class"]]


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """The detector's .tflite with its labels, and a folder of frames (one unreadable)."""
    work = tmp_path_factory.mktemp("detector")
    model_bytes = detector_tflite()[0]
    model = work / "uav_det.tflite"
    model.write_bytes(model_bytes)
    labels = work / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    frames = work / "frames"
    frames.mkdir()
    images = _frames()
    for k, image in enumerate(images):
        _write_png(frames / f"{k}.png", image)
    (frames / "1b_broken.png").write_bytes(b"\x89PNG not really")
    return {"bytes": model_bytes, "model": model, "labels": labels, "frames": frames,
            "images": images, "work": work}


def test_detector_boxes_equal_decode_head_on_the_reference_kernels(detector):
    det = Detector(detector["model"], labels=detector["labels"], reference_kernels=True,
                   score_threshold=0.5, max_boxes=12)
    assert (det.num_classes, det.stride, det.grid) == (3, 4, (8, 8))
    for image in detector["images"]:
        raw, quantization = _raw_output(detector["bytes"], image, reference=True)
        assert quantization == (1 / 256, -128)
        expected = decode_head(dequantize(raw, *quantization), 3, 4, top_k=12,
                               score_threshold=0.5)
        got = det.boxes(det.invoke(det.prepare(image)))
        assert all(g.tobytes() == e.tobytes() for g, e in zip(got, expected))
        assert len(got[0]) > 0
        # in the frame's own pixels
        _assert_same_boxes(det.detect(image),
                           _hand_decoded(raw, quantization, 3, 4, 12, 0.5, image.shape[:2]))


def test_detector_parameters_come_from_the_sidecar_or_the_caller(detector, tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(detector["bytes"])
    # no detector.json: a classifier, unless asked for a detector (then shapes decide)
    assert type(open_model(model)).__name__ == "Classifier"
    det = open_model(model, detector=True)
    assert (det.num_classes, det.stride, det.max_boxes, det.score_threshold) == (3, 4, 20, 0.3)
    (tmp_path / "detector.json").write_text(json.dumps(
        {"format": "tfuav-detector", "num_classes": 3, "stride": 4, "top_k": 7,
         "score_threshold": 0.55}))
    det = open_model(model)
    assert isinstance(det, Detector) and (det.max_boxes, det.score_threshold) == (7, 0.55)
    det = open_model(model, max_boxes=2, score_threshold=0.25)      # the caller overrides
    assert (det.max_boxes, det.score_threshold) == (2, 0.25)
    for field, value in (("stride", 2), ("num_classes", 4)):
        sidecar = {"format": "tfuav-detector", "num_classes": 3, "stride": 4, "top_k": 7,
                   "score_threshold": 0.5, field: value}
        (tmp_path / "detector.json").write_text(json.dumps(sidecar))
        with pytest.raises(InferenceError, match="m.tflite"):
            open_model(model)
    (tmp_path / "detector.json").write_text('{"format": "tfuav-detector", "num_classes": 3, '
                                            '"stride": 4, "top_k": "many", '
                                            '"score_threshold": 0.5}')
    with pytest.raises(InferenceError, match=r"detector.json: field 'top_k' must be an integer"):
        open_model(model)
    with pytest.raises(InferenceError, match="2 labels for a detector of 3 classes"):
        Detector(detector["model"], labels=["a", "b"])


def test_infer_prints_boxes_and_draws_them(detector, tmp_path):
    model = tmp_path / "uav_det.tflite"
    model.write_bytes(detector["bytes"])
    (tmp_path / "detector.json").write_text(json.dumps(
        {"format": "tfuav-detector", "num_classes": 3, "stride": 4, "top_k": 4,
         "score_threshold": 0.375}))
    out, err = io.StringIO(), io.StringIO()
    video = tmp_path / "boxes.avi"
    status = run_inference(model, detector["frames"], labels=detector["labels"], out=out,
                           err=err, save_video=video, reference_kernels=True)
    assert status == 0, err.getvalue()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2, 3, 4]
    assert "error" in records[2] and "boxes" not in records[2]    # 1b_broken.png
    readable = [r for r in records if "boxes" in r]
    for record, image in zip(readable, detector["images"]):
        raw, quantization = _raw_output(detector["bytes"], image, reference=True)
        _assert_same_boxes(record["boxes"], _hand_decoded(raw, quantization, 3, 4, 4, 0.375,
                                                          image.shape[:2]))
    assert f"{sum(len(r['boxes']) for r in readable)} boxes" in err.getvalue()
    # the annotated video: the first frame's best box is drawn in green on its edges
    capture = cv2.VideoCapture(str(video))
    ok, first = capture.read()
    capture.release()
    assert ok and first.shape[:2] == (32, 32)
    box = readable[0]["boxes"][0]
    x0, y0 = int(round(box["x"])), int(round(box["y"]))
    x1, y1 = int(round(box["x"] + box["w"])) - 1, int(round(box["y"] + box["h"])) - 1
    edge = np.concatenate([first[y0, x0:x1 + 1], first[y1, x0:x1 + 1], first[y0:y1 + 1, x0],
                           first[y0:y1 + 1, x1]]).astype(int)
    source = cv2.cvtColor(detector["images"][0], cv2.COLOR_RGB2BGR)
    plain = np.concatenate([source[y0, x0:x1 + 1], source[y1, x0:x1 + 1],
                            source[y0:y1 + 1, x0], source[y0:y1 + 1, x1]]).astype(int)
    green_minus_rest = lambda px: (px[:, 1] - (px[:, 0] + px[:, 2]) / 2).mean()  # noqa: E731
    assert green_minus_rest(edge) > green_minus_rest(plain) + 60


def test_infer_command_line_for_detectors(detector, tmp_path):
    result = run_cli("infer", detector["model"], "--source", detector["frames"] / "1.png",
                     "--labels", detector["labels"], "--detector", "--max-boxes", "3",
                     "--score-threshold", "0.5", "--reference-kernels")
    assert result.returncode == 0, result.stderr[-2000:]
    [record] = [json.loads(line) for line in result.stdout.splitlines()]
    raw, quantization = _raw_output(detector["bytes"], detector["images"][1], reference=True)
    _assert_same_boxes(record["boxes"], _hand_decoded(raw, quantization, 3, 4, 3, 0.5, (48, 64)))
    # detector options on a classifier, a classifier taken for a detector: one line each
    classifier = tmp_path / "cnn.tflite"
    classifier.write_bytes(small_cnn_tflite())
    line = error_line(run_cli("infer", classifier, "--source", detector["frames"] / "0.png",
                              "--max-boxes", "3"))
    assert "--max-boxes" in line and "detector" in line
    line = error_line(run_cli("infer", classifier, "--source", detector["frames"] / "0.png",
                              "--detector"))
    assert "cnn.tflite" in line and "[1, 4]" in line and "classes + 4" in line


def test_bundle_run_sh_prints_the_boxes_of_a_folder(detector, tmp_path):
    result = run_cli("export", detector["model"], "--target", "rpi", "--detector", "--classes",
                     ",".join(LABELS), "--max-boxes", "5", "--score-threshold", "0.5",
                     "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    bundle = tmp_path / "rpi_bundle"
    sidecar = json.loads((bundle / "detector.json").read_text())
    assert sidecar == {"format": "tfuav-detector", "num_classes": 3, "stride": 4, "top_k": 5,
                       "score_threshold": 0.5}
    assert (bundle / "labels.txt").read_text().split() == LABELS
    assert "detector.json" in (bundle / "README.md").read_text()
    proc = subprocess.run(["./run.sh", "--source", str(detector["frames"])], cwd=bundle,
                          env=dict(os.environ, PYTHON=sys.executable), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    readable = [r for r in records if "boxes" in r]
    assert len(records) == 5 and len(readable) == 4
    for record, image in zip(readable, detector["images"]):
        # the bundle runs the interpreter's default kernels: so does the computation here
        raw, quantization = _raw_output(detector["bytes"], image, reference=False)
        _assert_same_boxes(record["boxes"], _hand_decoded(raw, quantization, 3, 4, 5, 0.5,
                                                          image.shape[:2]))
        assert 0 < len(record["boxes"]) <= 5
    # the bundle's own runtime package decodes without TensorFlow
    code = ("import sys, cv2; import tfuav_runtime as rt; "
            "d = rt.Detector.from_sidecar('model_int8.tflite', labels='labels.txt'); "
            f"print(len(d.detect(cv2.imread({str(detector['frames'] / '0.png')!r})[:, :, ::-1]"
            ".copy()))); print(sorted(m for m in ('tensorflow', 'tf_keras', 'tfuav') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=bundle, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    count, loaded = proc.stdout.splitlines()[-2:]
    assert int(count) == len(readable[0]["boxes"]) and loaded == "[]"
