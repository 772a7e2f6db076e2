"""COCO metrics (tfuav.eval.coco) against pycocotools itself and hand-computed cases."""
import contextlib
import io
import json

import numpy as np
import pytest

from tfuav.eval.coco import (STAT_NAMES, coco_metrics, evaluate_coco, ignored_cover,
                             plot_pr_curves)
from tfuav.errors import TfuavError

# pycocotools divides by (tp + fp + eps), so a perfect precision is 1 - 2e-16
ONE = pytest.approx(1.0, abs=1e-12)
CATS = [{"id": 1, "name": "car"}, {"id": 2, "name": "pedestrian"}]


def _gt(boxes_per_image, size=(640, 480)):
    """boxes_per_image: {image_id: [(category_id, [x, y, w, h]), ...]}"""
    images, anns = [], []
    for image_id, boxes in boxes_per_image.items():
        images.append({"id": image_id, "file_name": f"{image_id}.jpg",
                       "width": size[0], "height": size[1]})
        for cat, box in boxes:
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat,
                         "bbox": list(map(float, box)), "area": float(box[2] * box[3]),
                         "iscrowd": 0})
    return {"images": images, "annotations": anns, "categories": CATS}


def _det(image_id, cat, box, score):
    return {"image_id": image_id, "category_id": cat, "bbox": list(map(float, box)),
            "score": score}


def _random_case(seed=0):
    rng = np.random.default_rng(seed)
    gt_boxes, dets = {}, []
    for image_id in range(1, 6):
        boxes = []
        for _ in range(rng.integers(2, 9)):
            w, h = rng.uniform(8, 200, 2)
            x, y = rng.uniform(0, 400), rng.uniform(0, 250)
            cat = int(rng.integers(1, 3))
            boxes.append((cat, [x, y, w, h]))
            if rng.random() < 0.8:          # a jittered detection of it
                j = rng.normal(0, 0.08, 4) * [w, h, w, h]
                dets.append(_det(image_id, cat, [x + j[0], y + j[1], w + j[2], h + j[3]],
                                 float(rng.uniform(0.3, 1))))
        for _ in range(rng.integers(0, 4)):  # false positives
            dets.append(_det(image_id, int(rng.integers(1, 3)),
                             [*rng.uniform(0, 400, 2), *rng.uniform(10, 80, 2)],
                             float(rng.uniform(0, 0.8))))
        gt_boxes[image_id] = boxes
    return _gt(gt_boxes), dets


def test_matches_pycocotools_directly(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt, dets = _random_case()
    gt_path, det_path = tmp_path / "gt.json", tmp_path / "det.json"
    gt_path.write_text(json.dumps(gt))
    det_path.write_text(json.dumps(dets))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        coco_dt = coco_gt.loadRes(str(det_path))
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ours = coco_metrics(gt_path, det_path)
    ours_mem = coco_metrics(gt, dets)
    assert len(STAT_NAMES) == 12
    for name, ref in zip(STAT_NAMES, ev.stats):
        want = None if ref < 0 else pytest.approx(float(ref), abs=1e-12)
        assert ours[name] == want, name
        assert ours_mem[name] == want, name
    assert 0 < ours["AP"] < 1
    # per-class AP equals the mean of the valid precision entries of that class
    for k, row in enumerate(ours["per_class"]):
        p = ev.eval["precision"][:, :, k, 0, -1]
        assert row["AP"] == pytest.approx(float(p[p > -1].mean()))
    assert [r["name"] for r in ours["per_class"]] == ["car", "pedestrian"]


def test_printout_suppressed(capsys):
    gt, dets = _random_case(1)
    coco_metrics(gt, dets)
    assert capsys.readouterr().out == ""


def test_perfect_detections():
    gt = _gt({1: [(1, [10, 10, 100, 80]), (2, [200, 150, 60, 120])],
              2: [(1, [300, 300, 150, 90])]})
    dets = [_det(a["image_id"], a["category_id"], a["bbox"], 0.9) for a in gt["annotations"]]
    m = coco_metrics(gt, dets)
    for name in ("AP", "AP50", "AP75", "AR100"):
        assert m[name] == ONE, name
    assert m["AP_small"] is None           # no small objects: COCOeval's -1 becomes None
    assert [r["AP"] for r in m["per_class"]] == [ONE, ONE]


def test_shifted_detections_iou_between_050_and_055():
    # a 100x100 box shifted 30 px sideways: IoU = (70*100) / (130*100) = 0.538
    gt = _gt({1: [(1, [0, 0, 100, 100])], 2: [(1, [200, 200, 100, 100])]})
    dets = [_det(1, 1, [30, 0, 100, 100], 0.9), _det(2, 1, [200, 230, 100, 100], 0.8)]
    m = coco_metrics(gt, dets)
    assert m["AP50"] == ONE
    assert m["AP75"] == 0.0


def test_one_of_two_found():
    # Two cars; the top-scoring detection finds one, a lower-scoring one hits nothing.
    # Ranked: TP (precision 1, recall .5), FP (precision .5, recall .5). COCO interpolates
    # precision as the best precision at recall >= r and samples 101 points r = 0, .01, ..., 1:
    # r = 0 .. .50 (51 points) -> 1.0; r = .51 .. 1 (50 points) -> 0 (recall never gets there).
    # AP50 = 51 / 101.
    gt = _gt({1: [(1, [10, 10, 50, 50]), (1, [200, 200, 50, 50])]})
    dets = [_det(1, 1, [10, 10, 50, 50], 0.9), _det(1, 1, [400, 50, 40, 40], 0.3)]
    m = coco_metrics(gt, dets)
    assert m["AP50"] == pytest.approx(51 / 101, abs=1e-12)
    assert m["per_class"][0]["AP50"] == pytest.approx(51 / 101, abs=1e-12)
    assert m["per_class"][1]["AP"] is None   # no pedestrians in the ground truth


def test_ignored_region_filtering_raises_precision():
    # One car; a higher-scoring false positive lies inside an ignored region.
    # Unfiltered, ranked: FP (precision 0, recall 0), TP (precision .5, recall 1). The
    # interpolated precision at every recall point 0..1 is the best to its right, .5, so
    # AP50 = 0.5. With the false positive removed, the TP alone gives AP50 = 1.0.
    gt = _gt({1: [(1, [300, 300, 60, 60])]})
    dets = [_det(1, 1, [20, 20, 40, 40], 0.9), _det(1, 1, [300, 300, 60, 60], 0.8)]
    regions = {1: [[0, 0, 100, 100]]}
    assert coco_metrics(gt, dets)["AP50"] == pytest.approx(0.5, abs=1e-12)
    assert coco_metrics(gt, dets, ignore_regions=regions)["AP50"] == ONE
    # the same regions read from the image record, as write_coco_json stores them
    gt["images"][0]["ignored_regions"] = regions[1]
    assert coco_metrics(gt, dets, ignore_regions="auto")["AP50"] == ONE


def test_ignored_cover_rule():
    regions = [[0, 0, 10, 10], [10, 0, 10, 10]]
    # half inside one region -> .5 (removed: the toolkit keeps only cover < .5)
    np.testing.assert_allclose(ignored_cover([[5, 10, 10, 10]], [[0, 10, 10, 10]]), [0.5])
    # straddling two touching regions: fully covered by their union
    np.testing.assert_allclose(ignored_cover([[5, 0, 10, 10]], regions), [1.0])
    # overlapping regions are not counted twice
    np.testing.assert_allclose(ignored_cover([[0, 0, 10, 10]], [[0, 0, 10, 5], [0, 0, 10, 10]]),
                               [1.0])
    np.testing.assert_allclose(ignored_cover([[30, 30, 5, 5]], regions), [0.0])
    gt = _gt({1: [(1, [300, 300, 60, 60])]})
    dets = [_det(1, 1, [300, 300, 60, 60], 0.8), _det(1, 1, [90, 0, 20, 20], 0.9)]
    # the second detection is exactly half inside: removed, AP50 1.0
    assert coco_metrics(gt, dets, ignore_regions={1: [[0, 0, 100, 100]]})["AP50"] == ONE
    # 40 % inside: kept, a false positive above the true one
    dets[1]["bbox"] = [96, 0, 10, 20]
    m = coco_metrics(gt, dets, ignore_regions={1: [[0, 0, 100, 100]]})
    assert m["AP50"] == pytest.approx(0.5)


def test_no_detections_and_errors():
    gt = _gt({1: [(1, [10, 10, 50, 50])]})
    m = coco_metrics(gt, [])
    assert m["AP"] == 0.0
    with pytest.raises(TfuavError, match="not in the ground truth"):
        coco_metrics(gt, [_det(5, 1, [0, 0, 1, 1], 0.5)])
    with pytest.raises(TfuavError, match="'score'"):
        coco_metrics(gt, [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}])
    with pytest.raises(TfuavError, match="'categories'"):
        coco_metrics({"images": [], "annotations": []}, [])


def test_cat_ids_restricts_classes():
    gt = _gt({1: [(1, [10, 10, 50, 50]), (2, [100, 100, 20, 40])]})
    dets = [_det(1, 1, [10, 10, 50, 50], 0.9)]
    assert coco_metrics(gt, dets)["AP"] == pytest.approx(0.5)
    m = coco_metrics(gt, dets, cat_ids=[1])
    assert m["AP"] == ONE and [r["category_id"] for r in m["per_class"]] == [1]


def test_pr_plot(tmp_path):
    gt, dets = _random_case(2)
    ev = evaluate_coco(gt, dets)
    out = plot_pr_curves(ev, tmp_path / "plots" / "pr.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
