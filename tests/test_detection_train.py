"""Detection data sets, box-aware augmentation, detector training and COCO evaluation."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import time
import warnings

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfuav.config import TrainConfig
from tfuav.data import DetectionAugmenter
from tfuav.data.detection import VISDRONE_CATEGORIES, ImageAnnotations, write_coco_json
from tfuav.data.detection_dataset import DetectionSplit, load_detection_dataset
from tfuav.errors import TfuavError
from tfuav.eval.detection import detect_keras, detect_tflite, evaluate_detections
from tfuav.models import build_model
from tfuav.train.detection import detection_train_config, epoch_batches, train_detector

keras = tf.keras


# ---------------------------------------------------------------------------------- data

def test_synthetic_detection_data_is_deterministic_and_split():
    a = load_detection_dataset(None, image_size=64, count=40, seed=3)
    b = load_detection_dataset(None, image_size=64, count=40, seed=3)
    assert a.class_names == ["person", "car", "truck", "bus"] and a.source == "synthetic"
    assert {k: len(v) for k, v in a.splits.items()} == {"train": 28, "val": 6, "test": 6}
    for name in ("train", "val", "test"):
        assert np.array_equal(a.splits[name].images, b.splits[name].images)
        assert a.splits[name].images.shape[1:] == (64, 64, 3)
        for x, y in zip(a.splits[name].annotations, b.splits[name].annotations):
            assert np.array_equal(x["boxes"], y["boxes"])
            assert np.array_equal(x["labels"], y["labels"])
    # the three splits are different images
    flat = [img.tobytes() for s in a.splits.values() for img in s.images]
    assert len(set(flat)) == 40
    c = load_detection_dataset(None, image_size=64, count=40, seed=4)
    assert not np.array_equal(c.splits["test"].images, a.splits["test"].images)


def _write_image(path, width, height, color=(90, 120, 60)):
    img = np.zeros((height, width, 3), np.uint8)
    img[:] = color
    assert cv2.imwrite(str(path), img)


VISDRONE_LINES = "\n".join([
    "20,10,40,20,1,4,0,0",          # car  -> class index 3
    "100,50,20,30,0,1,0,0",         # score 0 pedestrian -> ignore
    "150,60,10,10,1,11,0,0",        # "others": not a scored class, left out
    "0,0,50,25,0,0,0,0",            # ignored region
]) + "\n"


def _visdrone_folder(root, names):
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for name in names:
        _write_image(root / "images" / f"{name}.png", 200, 100)
        (root / "annotations" / f"{name}.txt").write_text(VISDRONE_LINES)


def test_visdrone_folder_is_resized_with_its_boxes(tmp_path):
    _visdrone_folder(tmp_path / "vd", ["a", "b", "c"])
    ds = load_detection_dataset(tmp_path / "vd", image_size=64, seed=0)
    assert ds.class_names == [VISDRONE_CATEGORIES[i] for i in range(1, 11)]
    assert sum(len(s) for s in ds.splits.values()) == 3
    split = next(s for s in ds.splits.values() if len(s))
    ann = split.annotations[0]
    # 200 x 100 -> 64 x 64: x scaled by 0.32, y by 0.64
    np.testing.assert_allclose(ann["boxes"], [[6.4, 6.4, 12.8, 12.8], [32, 32, 6.4, 19.2]],
                               rtol=1e-6)
    assert ann["labels"].tolist() == [3, 0] and ann["ignore"].tolist() == [False, True]
    np.testing.assert_allclose(split.ignored_regions[0], [[0, 0, 16, 16]], rtol=1e-6)
    assert split.images.shape[1:] == (64, 64, 3)
    assert split.images[0, 5, 5].tolist() == [60, 120, 90]            # BGR file -> RGB


def test_visdrone_split_folders_are_kept(tmp_path):
    for split, name in (("train", "t1"), ("val", "v1"), ("test", "x1")):
        _visdrone_folder(tmp_path / split, [name])
    ds = load_detection_dataset(tmp_path, image_size=32)
    assert [s.paths[0].rsplit("/", 1)[-1] for s in ds.splits.values()] == \
        ["t1.png", "v1.png", "x1.png"]


def test_coco_json_with_its_images(tmp_path):
    for i in range(3):
        _write_image(tmp_path / f"im{i}.png", 100, 50)
    anns = {i: ImageAnnotations(boxes=[[10, 5, 20, 10], [50, 25, 10, 10]], category_ids=[7, 3],
                                ignored_regions=[], image_size=(100, 50), ignore=[False, True])
            for i in range(3)}
    write_coco_json(tmp_path / "gt.json", [{"id": i, "file_name": f"im{i}.png"} for i in range(3)],
                    anns, [{"id": 7, "name": "boat"}, {"id": 3, "name": "car"}])
    ds = load_detection_dataset(tmp_path / "gt.json", image_size=50)
    assert ds.class_names == ["car", "boat"]                    # by category id
    ann = ds.splits["train"].annotations[0]
    np.testing.assert_allclose(ann["boxes"], [[5, 5, 10, 10], [25, 25, 5, 10]])
    assert ann["labels"].tolist() == [1, 0] and ann["ignore"].tolist() == [False, True]


def test_detection_data_errors_are_one_line(tmp_path):
    with pytest.raises(TfuavError, match="detection data not found"):
        load_detection_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TfuavError, match="not a VisDrone-DET folder"):
        load_detection_dataset(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(TfuavError, match="COCO"):
        load_detection_dataset(tmp_path / "notes.txt")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(TfuavError, match="not valid JSON"):
        load_detection_dataset(tmp_path / "bad.json")
    _visdrone_folder(tmp_path / "vd", ["a", "b", "c"])
    (tmp_path / "vd" / "annotations" / "b.txt").write_text("1,2,3\n")
    with pytest.raises(TfuavError, match=r"b\.txt:1: expected 8"):
        load_detection_dataset(tmp_path / "vd", strict=True)
    (tmp_path / "vd" / "images" / "c.png").write_bytes(b"not an image")
    (tmp_path / "vd" / "annotations" / "b.txt").write_text(VISDRONE_LINES)
    with pytest.raises(TfuavError, match=r"c\.png: unreadable"):
        load_detection_dataset(tmp_path / "vd", strict=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_detection_dataset(tmp_path / "vd")
    assert len(ds.skipped) == 1 and ds.skipped[0].endswith("c.png")
    assert any("skipped 1 image" in str(w.message) for w in caught)


# -------------------------------------------------------------------------- augmentation

def _red_box(image):
    """xywh of the pixels that are clearly red, or None."""
    img = image.astype(int)
    ys, xs = np.nonzero((img[..., 0] > 120) & (img[..., 0] - img[..., 1] > 60)
                        & (img[..., 0] - img[..., 2] > 60))
    if not len(xs):
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()],
                    np.float32)


def _iou(a, b):
    lo, hi = np.maximum(a[:2], b[:2]), np.minimum(a[:2] + a[2:], b[:2] + b[2:])
    inter = np.prod(np.clip(hi - lo, 0, None))
    return inter / (np.prod(a[2:]) + np.prod(b[2:]) - inter)


def _scene(x, y, side=12, size=64):
    img = np.full((size, size, 3), (70, 110, 60), np.uint8)
    img[y:y + side, x:x + side] = (230, 20, 20)
    return img, {"boxes": np.array([[x, y, side, side]], np.float32), "labels": np.array([2])}


def test_augmented_boxes_stay_on_the_objects():
    image, ann = _scene(8, 30)
    moved = 0
    for seed in range(40):
        out, out_ann = DetectionAugmenter(64, seed)(image, ann)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert len(out_ann["boxes"]) == 1 and out_ann["labels"].tolist() == [2]
        seen = _red_box(out)
        assert _iou(out_ann["boxes"][0], seen) > 0.75, (seed, out_ann["boxes"], seen)
        # a horizontal flip takes the square from x 8..20 to 44..56
        moved += abs(out_ann["boxes"][0, 0] + out_ann["boxes"][0, 2] / 2 - 14) > 20
    assert moved >= 5
    first = DetectionAugmenter(64, 7)
    again = DetectionAugmenter(64, 7)
    for _ in range(3):
        a, b = first(image, ann), again(image, ann)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1]["boxes"], b[1]["boxes"])


def test_boxes_leaving_the_image_are_clipped_or_dropped():
    image, ann = _scene(56, 26, side=8)              # touching the right border
    clipped = dropped = 0
    for seed in range(60):
        out, out_ann = DetectionAugmenter(64, seed)(image, ann)
        boxes = out_ann["boxes"]
        assert ((boxes[:, :2] >= 0) & (boxes[:, :2] + boxes[:, 2:] <= 64)).all()
        seen = _red_box(out)
        if len(boxes):
            assert _iou(boxes[0], seen) > 0.6, (seed, boxes, seen)
            clipped += boxes[0, 2] * boxes[0, 3] < 0.9 * 64 and seen is not None
        else:
            dropped += 1
            assert seen is None or seen[2] * seen[3] < 0.5 * 64 * 1.25 ** 2
    assert clipped + dropped >= 3


# ----------------------------------------------------------------------------- training

def _tiny_dataset(count=26, size=64):
    return load_detection_dataset(None, image_size=size, count=count, seed=1)   # 18 train


def test_epoch_batches_are_seeded():
    split = _tiny_dataset().splits["train"]

    def batches(epoch, seed=5):
        aug = DetectionAugmenter(64, seed)
        return list(epoch_batches(split, TrainConfig(batch_size=8, seed=seed), epoch, aug,
                                   64, 4, 4))

    a, b, other = batches(0), batches(0), batches(1)
    assert [x.shape for x, _ in a] == [(8, 64, 64, 3), (8, 64, 64, 3), (2, 64, 64, 3)]
    assert all(np.array_equal(x1, x2) and np.array_equal(y1, y2)
               for (x1, y1), (x2, y2) in zip(a, b))
    assert not np.array_equal(a[0][0], other[0][0])
    assert a[0][1].shape == (8, 16, 16, 9)


def test_train_detector_runs_and_checks_its_inputs():
    ds = _tiny_dataset()
    keras.utils.set_random_seed(0)
    model = build_model("uavlite", (64, 64, 3), 4)
    cfg = detection_train_config(batch_size=8)
    history = train_detector(model, ds, cfg, epochs=2, progress=False)
    assert [h["epoch"] for h in history] == [1, 2]
    for h in history:
        assert all(np.isfinite(h[k]) for k in ("loss", "heatmap_loss", "size_loss",
                                               "offset_loss", "val_loss"))
    assert history[1]["lr"] < history[0]["lr"]
    with pytest.raises(TfuavError, match="3 classes"):
        train_detector(build_model("uavlite", (64, 64, 3), 3), ds, cfg, 1, progress=False)
    with pytest.raises(TfuavError, match="96x96"):
        train_detector(build_model("uavlite", (96, 96, 3), 4), ds, cfg, 1, progress=False)


# ---------------------------------------------------------------------------- evaluation

def _split(boxes, labels, regions=None):
    ann = {"boxes": np.array(boxes, np.float32), "labels": np.array(labels),
           "ignore": np.zeros(len(boxes), bool)}
    return DetectionSplit(images=np.zeros((1, 64, 64, 3), np.uint8), annotations=[ann],
                          ignored_regions=[np.array(regions or [], np.float32).reshape(-1, 4)])


def test_evaluation_by_hand(tmp_path):
    names = ["a", "b"]
    split = _split([[10, 10, 10, 10]], [1])
    hit = (np.array([[10, 10, 10, 10]], np.float32), np.array([0.8]), np.array([1]))
    m = evaluate_detections([hit], split, names)
    assert m["AP50"] == pytest.approx(1.0) and m["AP"] == pytest.approx(1.0)
    assert m["per_class"][0]["AP50"] is None                        # class a has no objects
    assert m["per_class"][1]["AP50"] == pytest.approx(1.0)
    # the wrong class finds nothing
    assert evaluate_detections([(hit[0], hit[1], np.array([0]))], split, names)["AP50"] == 0.0
    # a better-scored false positive first: precision 1/2 at every recall -> AP50 0.5
    two = (np.array([[40, 40, 10, 10], [10, 10, 10, 10]], np.float32), np.array([0.9, 0.8]),
           np.array([1, 1]))
    assert evaluate_detections([two], split, names)["AP50"] == pytest.approx(0.5)
    # ... unless it lies in an ignored region
    ignored = _split([[10, 10, 10, 10]], [1], regions=[[35, 35, 20, 20]])
    assert evaluate_detections([two], ignored, names, pr_plot=tmp_path / "pr.png")["AP50"] == \
        pytest.approx(1.0)
    assert (tmp_path / "pr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(TfuavError):
        evaluate_detections([], split, names)


# ---------------------------------------------------------------------------- end to end

E2E_COUNT = 1000          # 700 training scenes
E2E_EPOCHS = 40


@pytest.mark.slow
def test_uavlite_learns_to_detect_from_scratch(capsys):
    ds = load_detection_dataset(None, image_size=64, count=E2E_COUNT, seed=0)
    keras.utils.set_random_seed(0)
    model = build_model("uavlite", (64, 64, 3), ds.num_classes)
    test = ds.splits["test"]
    untrained = evaluate_detections(detect_keras(model, test.images, 4), test, ds.class_names)
    started = time.perf_counter()
    history = train_detector(model, ds, detection_train_config(), E2E_EPOCHS, progress=False)
    seconds = time.perf_counter() - started
    float_metrics = evaluate_detections(detect_keras(model, test.images, 4), test, ds.class_names)

    from tfuav.convert import assert_graph_ok, tflite_info, to_int8_tflite
    from tfuav.data import preprocess
    rep = preprocess(ds.splits["train"].images[:100])
    tfl = to_int8_tflite(model, rep)
    assert_graph_ok(tfl)
    int8_metrics = evaluate_detections(detect_tflite(tfl, test.images), test, ds.class_names)
    with capsys.disabled():
        print(f"\nuavlite 64x64 from scratch: {E2E_EPOCHS} epochs in {seconds:.0f}s, loss "
              f"{history[0]['loss']:.3f} -> {history[-1]['loss']:.3f}; test AP50 untrained "
              f"{untrained['AP50']:.3f}, float {float_metrics['AP50']:.3f} "
              f"(AP {float_metrics['AP']:.3f}), int8 {int8_metrics['AP50']:.3f} "
              f"(AP {int8_metrics['AP']:.3f}); per class AP50 float "
              f"{[(r['name'], round(r['AP50'], 3)) for r in float_metrics['per_class']]}; "
              f"int8 ops {tflite_info(tfl)['op_histogram']}")
    assert untrained["AP50"] < 0.01
    assert history[-1]["loss"] < 0.6 * history[0]["loss"]
    # measured: float 0.24, int8 0.25 (AP50 of 4 classes; persons are 2-3 px at 64x64)
    assert float_metrics["AP50"] > 0.15
    assert int8_metrics["AP50"] > 0.15
    assert int8_metrics["AP50"] > 0.8 * float_metrics["AP50"]
