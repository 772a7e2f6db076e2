"""tfuav.runtime: TensorFlow-free inference on the Pi / Coral host, `tfuav infer` and `tfuav bench`."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import io
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert import interpreter as litert

from helpers import REPO, error_line, randomize_bn, run_cli
from tfuav.runtime import (Classifier, EdgeTpuUnavailableError, InferenceError, benchmark,
                           format_table, open_source, run_inference)

L = tf.keras.layers
SIZE = 64
NUM_VIDEO_FRAMES = 8


def _write_png(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _tiny_cnn(num_classes):
    inputs = tf.keras.Input((SIZE, SIZE, 3))
    x = inputs
    for filters in (8, 16, 16):
        x = L.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = L.BatchNormalization(momentum=0.8)(x)
        x = L.ReLU()(x)
    x = L.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inputs, L.Dense(num_classes)(x))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small CNN trained a few epochs on the synthetic scenes, its int8 .tflite, labels, a
    folder of held-out images (one unreadable, one of another size) and an MJPG video."""
    from tfuav.convert import to_int8_tflite
    from tfuav.data import generate_emergency_scenes, preprocess
    work = tmp_path_factory.mktemp("runtime")
    images, labels, names = generate_emergency_scenes(50, SIZE, seed=0)
    tf.keras.utils.set_random_seed(0)
    model = _tiny_cnn(len(names))
    model.compile(tf.keras.optimizers.Adam(1e-2),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(preprocess(images), labels, batch_size=32, epochs=40, shuffle=True, verbose=0)
    model_file = work / "model_int8.tflite"
    model_file.write_bytes(to_int8_tflite(model, preprocess(images[::10])))
    labels_file = work / "labels.txt"
    labels_file.write_text("\n".join(names) + "\n")

    # frames from the training scenes, all four classes: the model is confident on them, so
    # float and int8 rank the same class first
    held_out = images[[0, 50, 100, 150, 1, 51, 101, 151, 2, 52, 102, 152]]
    folder = work / "frames"
    folder.mkdir()
    for i, img in enumerate(held_out[:6]):
        _write_png(folder / f"{i:02d}.png", img)
    big = cv2.resize(held_out[6], (80, 80), interpolation=cv2.INTER_LINEAR)
    _write_png(folder / "06_big.png", big)                        # resized by the runtime
    (folder / "03_broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (folder / "notes.txt").write_text("not an image, ignored")

    video = work / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (SIZE, SIZE))
    assert writer.isOpened()
    for img in held_out[4:4 + NUM_VIDEO_FRAMES]:
        writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    writer.release()
    return {"keras": model, "model": model_file, "labels": labels_file, "names": names,
            "folder": folder, "video": video, "work": work}


def _keras_top1(model, images_rgb):
    from tfuav.data import preprocess
    return np.argmax(model.predict(preprocess(np.stack(images_rgb)), verbose=0), axis=1).tolist()


def _json_lines(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_import_and_classify_without_tensorflow(trained):
    code = (
        "import sys, cv2\n"
        "import tfuav.runtime as rt\n"
        f"clf = rt.Classifier({str(trained['model'])!r}, num_threads=1, labels={str(trained['labels'])!r})\n"
        f"img = cv2.cvtColor(cv2.imread({str(trained['folder'] / '00.png')!r}), cv2.COLOR_BGR2RGB)\n"
        "top = clf.classify(img, top_k=2)\n"
        "assert len(top) == 2 and top[0]['score'] >= top[1]['score'], top\n"
        "heavy = [m for m in ('tensorflow', 'tf_keras', 'albumentations', 'tfuav.data') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print(top[0]['label'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() in trained["names"]


def test_runtime_folder_runs_as_its_own_package(trained, tmp_path):
    """The Pi bundle ships a copy of tfuav/runtime as a top-level package: no tfuav import."""
    shutil.copytree(REPO / "tfuav" / "runtime", tmp_path / "tfuav_runtime",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "tfuav_runtime", trained["model"], "--source",
                          trained["folder"] / "01.png", "--labels", trained["labels"]],
                         capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    [record] = _json_lines(out.stdout)
    assert record["frame"] == 0 and record["top"][0]["label"] in trained["names"]
    code = ("import sys, tfuav_runtime; import numpy as np\n"
            "assert tfuav_runtime.quantize(np.float32(1.0), 1 / 255, -128, np.int8) == 127\n"
            "assert not [m for m in sys.modules if m == 'tfuav' or m.startswith('tfuav.')]\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env)


def test_preprocessing_matches_training_and_conversion_bit_for_bit(trained):
    import tfuav.runtime as rt
    from tfuav.data import generate_emergency_scenes
    from tfuav.data import preprocess as train_preprocess
    from tfuav.quantization import dequantize, quantize
    from tfuav.train.loop import _preprocess as training_input
    from tfuav.validate import make_validation_inputs
    images, _, _ = generate_emergency_scenes(2, SIZE, seed=3)
    every_value = np.arange(256, dtype=np.uint8).reshape(4, 8, 8, 1).repeat(3, axis=3)
    every_value = cv2.resize(every_value.reshape(16, 16, 3), (SIZE, SIZE),
                             interpolation=cv2.INTER_NEAREST)
    images = np.concatenate([images, every_value[None]])
    # float: what training feeds the Keras model
    assert np.array_equal(rt.preprocess(images), training_input(images))
    assert np.array_equal(rt.preprocess(images), train_preprocess(images))
    assert rt.preprocess(images).dtype == np.float32
    # int8: what conversion / validation / evaluation feed the .tflite
    clf = Classifier(trained["model"])
    assert clf.input_dtype == np.int8
    scale, zero_point = clf.input["quantization"]
    validation = make_validation_inputs(trained["model"].read_bytes(),
                                        real_images_float=train_preprocess(images), num_random=0)
    for image, expected in zip(images, validation):
        ours = clf.prepare(image)
        assert ours.dtype == np.int8 and ours.shape == (1, SIZE, SIZE, 3)
        assert np.array_equal(ours, expected)
        assert np.array_equal(ours, quantize(train_preprocess(image)[None], scale, zero_point,
                                             np.int8))
    assert len(np.unique(clf.prepare(every_value))) == 256
    # dequantize: the same function on both sides
    q = np.arange(-128, 128, dtype=np.int8)
    assert np.array_equal(rt.dequantize(q, 0.1, 3), dequantize(q, 0.1, 3))
    assert tfuav.quantization.quantize is rt.quantize


def test_infer_folder_matches_keras_and_reference_kernels(trained):
    result = run_cli("infer", trained["model"], "--source", trained["folder"],
                     "--labels", trained["labels"], "--top-k", "2", "--threads", "1")
    assert result.returncode == 0, result.stderr
    records = _json_lines(result.stdout)
    files = sorted(p for p in trained["folder"].iterdir() if p.suffix != ".txt")
    assert [r["frame"] for r in records] == list(range(len(files)))
    assert [r["source"] for r in records] == [str(p) for p in files]
    broken = [r for r in records if "error" in r]
    assert len(broken) == 1 and broken[0]["source"].endswith("03_broken.jpg")
    assert "03_broken.jpg" in broken[0]["error"]
    good = [r for r in records if "error" not in r]
    assert len(good) == len(files) - 1 and all(len(r["top"]) == 2 for r in good)
    assert all(r["latency_ms"] > 0 for r in good)
    assert "1 unreadable" in result.stderr

    # the Keras float model on the same decoded (and INTER_AREA resized) images
    images = [_read_rgb(r["source"]) for r in good]
    resized = [cv2.resize(im, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for im in images]
    assert images[-1].shape[:2] == (80, 80)
    assert [r["top"][0]["index"] for r in good] == _keras_top1(trained["keras"], resized)
    assert [r["top"][0]["label"] for r in good] == [
        trained["names"][r["top"][0]["index"]] for r in good]
    assert len({r["top"][0]["index"] for r in good}) >= 2   # not one class for everything

    # int8 output within 1 LSB of the TFLite reference kernels for the same input tensors
    clf = Classifier(trained["model"], num_threads=1)
    ref = litert.Interpreter(model_path=str(trained["model"]),
                             experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    ref.allocate_tensors()
    out_scale = clf.output["quantization"][0]
    for r, image in zip(good, images):
        x = clf.prepare(image)
        ref.set_tensor(ref.get_input_details()[0]["index"], x)
        ref.invoke()
        expected = ref.get_tensor(ref.get_output_details()[0]["index"])
        ours = clf.invoke(x)
        assert ours.dtype == np.int8
        assert np.abs(ours.astype(int) - expected.astype(int)).max() <= 1
        scores = clf.scores(ours)
        for entry in r["top"]:   # the printed scores are the dequantized int8 outputs
            assert entry["score"] == pytest.approx(float(scores[entry["index"]]), abs=1e-6)
            assert abs(entry["score"] - float(clf.scores(expected)[entry["index"]])) \
                <= out_scale * 1.0001


def test_infer_video_matches_keras_and_writes_annotated_video(trained, tmp_path):
    out_video = tmp_path / "annotated.avi"
    result = run_cli("infer", trained["model"], "--source", trained["video"],
                     "--labels", trained["labels"], "--top-k", "1",
                     "--save-video", out_video)
    assert result.returncode == 0, result.stderr
    records = _json_lines(result.stdout)
    assert [r["frame"] for r in records] == list(range(NUM_VIDEO_FRAMES))
    assert all("error" not in r and r["source"] == str(trained["video"]) for r in records)

    capture = cv2.VideoCapture(str(trained["video"]))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    assert len(frames) == NUM_VIDEO_FRAMES
    assert [r["top"][0]["index"] for r in records] == _keras_top1(trained["keras"], frames)

    annotated = cv2.VideoCapture(str(out_video))
    count, first = 0, None
    while True:
        ok, bgr = annotated.read()
        if not ok:
            break
        first = bgr if first is None else first
        count += 1
    annotated.release()
    assert count == NUM_VIDEO_FRAMES and first.shape == (SIZE, SIZE, 3)
    # the label box (black, white text) is drawn in the top-left corner
    corner = cv2.cvtColor(first[:8, :20], cv2.COLOR_BGR2GRAY)
    assert corner.min() < 40 and corner.max() > 150
    assert not list(tmp_path.glob(".*partial*"))


def test_missing_model_and_missing_source_are_one_line(trained, tmp_path):
    missing_model = tmp_path / "nope.tflite"
    line = error_line(run_cli("infer", missing_model, "--source", trained["folder"]))
    assert str(missing_model) in line and "not found" in line
    missing_source = tmp_path / "no_such_clip.mp4"
    line = error_line(run_cli("infer", trained["model"], "--source", missing_source))
    assert str(missing_source) in line
    not_a_video = tmp_path / "clip.mp4"
    not_a_video.write_bytes(b"garbage" * 100)
    line = error_line(run_cli("infer", trained["model"], "--source", not_a_video))
    assert str(not_a_video) in line
    line = error_line(run_cli("infer", trained["labels"], "--source", trained["folder"]))
    assert str(trained["labels"]) in line
    line = error_line(run_cli("bench", missing_model))
    assert str(missing_model) in line
    # the module main (the Pi bundle) says the same, exit status 2
    out = subprocess.run([sys.executable, "-m", "tfuav.runtime", missing_model, "--source",
                          trained["folder"]], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith("error: ")
    assert str(missing_model) in out.stderr and "Traceback" not in out.stderr


def test_unreadable_single_image_is_reported_not_fatal(trained, tmp_path):
    bad = tmp_path / "frame.png"
    bad.write_bytes(b"\x89PNG truncated")
    out, err = io.StringIO(), io.StringIO()
    assert run_inference(trained["model"], bad, out=out, err=err) == 0
    [record] = _json_lines(out.getvalue())
    assert record["frame"] == 0 and str(bad) in record["error"] and "top" not in record


def test_interrupt_stops_cleanly_with_summary(trained, tmp_path):
    class InterruptAfter(io.StringIO):
        def write(self, text):
            if self.getvalue().count("\n") == 2:
                raise KeyboardInterrupt
            return super().write(text)

    out, err = InterruptAfter(), io.StringIO()
    video = tmp_path / "partial.mp4"
    status = run_inference(trained["model"], trained["folder"], out=out, err=err, save_video=video)
    assert status == 130
    assert len(_json_lines(out.getvalue())) == 2
    assert err.getvalue().startswith("interrupted after 3 frames")
    assert video.is_file() and not list(tmp_path.glob(".*partial*"))


def test_sources_end_cleanly(trained):
    frames = list(open_source(trained["video"]))
    assert len(frames) == NUM_VIDEO_FRAMES and all(f.error is None for f in frames)
    assert frames[0].image.dtype == np.uint8 and frames[0].image.shape == (SIZE, SIZE, 3)
    assert [f.index for f in open_source(trained["folder"])] == list(range(8))
    with pytest.raises(InferenceError, match="camera 99"):
        open_source(99)


def test_bench_json_and_table(trained):
    result = run_cli("bench", trained["model"], "--threads", "1", "--runs", "20", "--warmup", "2",
                     "--json")
    assert result.returncode == 0, result.stderr
    b = json.loads(result.stdout)
    assert 0 < b["p50_ms"] <= b["p90_ms"] <= b["p99_ms"]
    assert b["fps"] > 0 and b["peak_rss_mib"] > 0
    assert b["threads"] == 1 and b["runs"] == 20 and b["warmup"] == 2
    assert b["input_shape"] == [1, SIZE, SIZE, 3] and b["input_dtype"] == "int8"
    table = run_cli("bench", trained["model"], "--runs", "5")
    assert table.returncode == 0, table.stderr
    assert "p50 ms" in table.stdout and "FPS" in table.stdout and "peak RSS MiB" in table.stdout
    two = [benchmark(trained["model"], threads=t, runs=5, warmup=1) for t in (1, 2)]
    assert [row.split()[0] for row in format_table(two).splitlines()[-2:]] == ["1", "2"]


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_uint8_and_float_io_models(tmp_path):
    """uint8 input (quantized with the model's own scale / zero point) and float input/output."""
    from tfuav.convert import to_int8_tflite
    tf.keras.utils.set_random_seed(1)
    model = _tiny_cnn(3)
    randomize_bn(model)
    rep = np.random.default_rng(0).uniform(0, 1, (4, SIZE, SIZE, 3)).astype(np.float32)
    float_io = tmp_path / "float_io.tflite"
    float_io.write_bytes(to_int8_tflite(model, rep, float_io=True))
    clf = Classifier(float_io, labels=["a", "b", "c"])
    image = (rep[0] * 255).astype(np.uint8)
    assert clf.input_dtype == np.float32 and clf.prepare(image).dtype == np.float32
    top = clf.classify(image, top_k=5)
    assert [t["label"] for t in top] == [["a", "b", "c"][t["index"]] for t in top]
    assert len(top) == 3 and top[0]["score"] >= top[1]["score"] >= top[2]["score"]

    # a uint8-input model: the input is quantized to uint8 with its own parameters
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([r[None]] for r in rep)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    uint8_file = tmp_path / "uint8.tflite"
    uint8_file.write_bytes(converter.convert())
    clf8 = Classifier(uint8_file)
    assert clf8.input_dtype == np.uint8 and clf8.output_dtype == np.uint8
    scale, zero_point = clf8.input["quantization"]
    x = clf8.prepare(image)
    assert x.dtype == np.uint8
    assert np.array_equal(x, np.clip(np.round(image / 255.0 / scale) + zero_point, 0, 255)
                          .astype(np.uint8)[None])
    # same int8 graph inside: the dequantized outputs agree to a couple of output steps
    out_scale = clf8.output["quantization"][0]
    float_scores = clf.scores(clf.invoke(clf.prepare(image)))
    assert np.abs(clf8.scores(clf8.invoke(x)) - float_scores).max() <= 2.01 * out_scale


def test_missing_edgetpu_library_is_a_clear_error(trained):
    import ctypes
    try:
        ctypes.CDLL("libedgetpu.so.1")
        pytest.skip("libedgetpu is installed on this machine")
    except OSError:
        pass
    with pytest.raises(EdgeTpuUnavailableError, match="libedgetpu1-std"):
        Classifier(trained["model"], edgetpu=True)
    line = error_line(run_cli("infer", trained["model"], "--source", trained["folder"],
                              "--edgetpu"))
    assert "libedgetpu.so.1" in line and "sudo apt-get install libedgetpu1-std" in line


def test_ctrl_c_exits_130_with_summary(trained, tmp_path):
    """A real SIGINT to the module main while it streams a video: exit 130 and the summary."""
    import signal
    video = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (SIZE, SIZE))
    rng = np.random.default_rng(0)
    for _ in range(800):   # ~150 KB of JSON lines: more than a pipe holds, so it cannot finish
        writer.write(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    writer.release()
    proc = subprocess.Popen([sys.executable, "-m", "tfuav.runtime", str(trained["model"]),
                             "--source", str(video)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = json.loads(proc.stdout.readline())
    assert first["frame"] == 0
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("interrupted after ") and "frames" in summary
    assert len(out.splitlines()) + 1 < 800
