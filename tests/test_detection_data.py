"""VisDrone-DET text and COCO json readers/writers (tfuav.data.detection)."""
import json
import warnings

import numpy as np
import pytest

from tfuav.data.detection import (ImageAnnotations, VISDRONE_EVAL_CATEGORY_IDS,
                                  detections_to_coco, read_coco_json, read_visdrone_txt,
                                  visdrone_coco_categories, write_coco_json)
from tfuav.errors import TfuavError

# image is 200 wide, 100 high
VISDRONE_TXT = "\n".join([
    "0,0,50,40,0,0,-1,-1,",          # 1: ignored region (category 0), trailing comma
    "10,20,30,40,1,4,0,1,",          # 2: car
    "",                              # 3: blank
    "60,10,20,20,1,11,0,0",          # 4: "others" stays class 11
    "12,abc,3,4,1,1,0,0",            # 5: malformed (not a number)
    "180,90,40,30,1,1,1,0",          # 6: partly outside -> clipped to 180,90,20,10
    "300,10,5,5,1,2,0,0",            # 7: entirely outside -> dropped
    "50,50,0,10,1,3,0,0",            # 8: zero width -> dropped
    "70,30,10,10,0,5,0,0",           # 9: score 0 van -> ignore ground truth
    "1,2,3",                         # 10: malformed (too few fields)
    "5,5,5,5,1,12,0,0",              # 11: malformed (no category 12)
    "-10,-5,30,20,1,6,1,0",          # 12: clipped to 0,0,20,15
]) + "\n"


@pytest.fixture
def visdrone_file(tmp_path):
    p = tmp_path / "0000001_00000_d_0000001.txt"
    p.write_text(VISDRONE_TXT)
    return p


def test_visdrone_parsing(visdrone_file):
    with pytest.warns(UserWarning) as record:
        read = read_visdrone_txt(visdrone_file, (200, 100))
    message = str(record[0].message)
    for line in (5, 10, 11):
        assert f"{visdrone_file}:{line}:" in message
    assert len(read.malformed) == 3
    ann = read.annotations
    assert ann.image_size == (200, 100)
    assert ann.boxes.dtype == np.float32 and ann.boxes.shape == (5, 4)
    np.testing.assert_array_equal(ann.category_ids, [4, 11, 1, 5, 6])
    np.testing.assert_allclose(ann.boxes, [[10, 20, 30, 40], [60, 10, 20, 20], [180, 90, 20, 10],
                                           [70, 30, 10, 10], [0, 0, 20, 15]])
    np.testing.assert_array_equal(ann.ignore, [False, False, False, True, False])
    np.testing.assert_allclose(ann.ignored_regions, [[0, 0, 50, 40]])
    assert read.clipped == 2
    assert read.dropped == 2


def test_visdrone_strict_names_file_and_line(visdrone_file):
    with pytest.raises(TfuavError, match=rf"{visdrone_file.name}:5: expected numbers"):
        read_visdrone_txt(visdrone_file, (200, 100), strict=True)


def test_visdrone_clean_file_no_warning(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("1,2,3,4,1,1,0,0\n\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read = read_visdrone_txt(p, 64)
    assert len(read.annotations) == 1 and read.clipped == read.dropped == 0
    assert read.annotations.image_size == (64, 64)


def test_visdrone_missing_file(tmp_path):
    with pytest.raises(TfuavError, match="cannot read VisDrone annotations"):
        read_visdrone_txt(tmp_path / "nope.txt", 64)


def test_visdrone_categories():
    assert VISDRONE_EVAL_CATEGORY_IDS == tuple(range(1, 11))
    cats = visdrone_coco_categories()
    assert [c["id"] for c in cats] == list(range(1, 12)) and cats[-1]["name"] == "others"
    assert len(visdrone_coco_categories(include_others=False)) == 10


def test_coco_round_trip(tmp_path, visdrone_file):
    with pytest.warns(UserWarning):
        first = read_visdrone_txt(visdrone_file, (200, 100)).annotations
    second = ImageAnnotations(boxes=[[1.5, 2.5, 3, 4]], category_ids=[2], ignored_regions=[],
                              image_size=(32, 48))
    empty = ImageAnnotations(boxes=np.zeros((0, 4)), category_ids=[], ignored_regions=[],
                             image_size=(10, 10))
    images = [{"id": 1, "file_name": "a.jpg"}, {"id": 7, "file_name": "b.jpg"},
              {"id": 9, "file_name": "c.jpg"}]
    path = tmp_path / "gt.json"
    write_coco_json(path, images, {1: first, 7: second, 9: empty}, visdrone_coco_categories())
    data = json.loads(path.read_text())
    ids = [a["id"] for a in data["annotations"]]
    assert len(ids) == len(set(ids)) == 6
    a0 = data["annotations"][0]
    assert a0["bbox"] == [10, 20, 30, 40] and a0["area"] == 1200 and a0["iscrowd"] == 0
    assert sum(a["iscrowd"] for a in data["annotations"]) == 1
    assert data["images"][0]["width"] == 200 and data["images"][0]["height"] == 100

    imgs, anns, cats = read_coco_json(path)
    assert [im["file_name"] for im in imgs] == ["a.jpg", "b.jpg", "c.jpg"]
    assert cats == visdrone_coco_categories()
    for image_id, want in {1: first, 7: second, 9: empty}.items():
        got = anns[image_id]
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_array_equal(got.category_ids, want.category_ids)
        np.testing.assert_array_equal(got.ignore, want.ignore)
        np.testing.assert_array_equal(got.ignored_regions, want.ignored_regions)
        assert got.image_size == want.image_size
    # pycocotools reads it
    from pycocotools.coco import COCO
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    assert len(coco.getAnnIds()) == 6


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("categories"), "the top level has no 'categories' key"),
    (lambda d: d["images"][0].pop("width"), r"images\[0\] has no 'width' key"),
    (lambda d: d["annotations"][0].pop("bbox"), r"annotations\[0\] has no 'bbox' key"),
    (lambda d: d["annotations"][0].update(image_id=99), "image_id 99"),
])
def test_coco_missing_keys(tmp_path, mutate, message):
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 4}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}],
            "categories": [{"id": 1, "name": "car"}]}
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TfuavError, match=message) as e:
        read_coco_json(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_coco_not_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{nope")
    with pytest.raises(TfuavError, match="not valid JSON"):
        read_coco_json(path)


def test_detections_to_coco():
    out = detections_to_coco({3: ([[10, 20, 30, 60]], [0.5], [4])}, box_format="xyxy")
    assert out == [{"image_id": 3, "category_id": 4, "bbox": [10.0, 20.0, 20.0, 40.0],
                    "score": 0.5}]
    out = detections_to_coco({3: (np.zeros((2, 4)) + 1, np.array([0.1, 0.2]), [1, 2])})
    assert [d["category_id"] for d in out] == [1, 2] and out[0]["bbox"] == [1.0] * 4
    with pytest.raises(ValueError):
        detections_to_coco({1: ([[0, 0, 1, 1]], [0.1, 0.2], [1])})
