"""Object-detection annotations: VisDrone-DET text files and COCO json, for the anchor-free
UAV detectors.

One image's ground truth is an :class:`ImageAnnotations`: boxes as float32 ``[N, 4]`` in
``(x, y, w, h)`` pixels (top-left corner, width, height), integer category ids ``[N]``, a boolean
``ignore`` flag ``[N]``, the image's ignored regions ``[M, 4]`` (same box format) and the image
size ``(width, height)``.

VisDrone-DET decisions (checked against the format description shipped with the dataset and the
official MATLAB evaluation toolkit, github.com/VisDrone/VisDrone2018-DET-toolkit):

* Each line is ``left,top,width,height,score,category,truncation,occlusion``; a trailing comma and
  blank lines are accepted. Anything else that does not parse is a malformed line.
* **Category 0** ("ignored region") rows become ignored regions, not objects.
* **Score 0.** The dataset description says a ground-truth score of 0 means "the box is ignored in
  evaluation" (1 means it is evaluated). The toolkit (``utils/saveAnnoRes.m`` then
  ``utils/evalRes.m``) turns a score-0 object into an *ignore* ground truth of its own class: a
  detection that falls on it is neither a true nor a false positive, and missing it is no false
  negative; its overlap is measured as intersection over the detection's area, and it may absorb
  several detections. That is exactly COCO's ``iscrowd=1`` rule in pycocotools, so a score-0
  object with category 1..11 is kept as an object with ``ignore=True`` and written to COCO as
  ``iscrowd=1``. A score-0 row of category 0 is an ignored region like any other category-0 row.
* **Category 11** ("others") is kept as its own class id 11. The official protocol evaluates only
  the ten classes 1..10 (``utils/calcAccuracy.m`` loops over classes 1..10), so
  :data:`VISDRONE_EVAL_CATEGORY_IDS` leaves it out; pass those ids to
  :func:`tfuav.eval.coco.coco_metrics` to score like the official toolkit.
* Boxes that reach outside the image are clipped to it; boxes entirely outside it, or with no area
  left after clipping (VisDrone has a few zero-height boxes), are dropped. Both are counted, for
  objects and ignored regions alike.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfuav.errors import TfuavError
from tfuav.fileio import atomic_write_json

VISDRONE_CATEGORIES = {
    0: "ignored_region", 1: "pedestrian", 2: "people", 3: "bicycle", 4: "car", 5: "van",
    6: "truck", 7: "tricycle", 8: "awning-tricycle", 9: "bus", 10: "motor", 11: "others",
}
#: The classes the official VisDrone-DET protocol scores (no ignored regions, no "others").
VISDRONE_EVAL_CATEGORY_IDS = tuple(range(1, 11))

_VISDRONE_FIELDS = "left,top,width,height,score,category,truncation,occlusion"


@dataclass
class ImageAnnotations:
    """Ground truth of one image. Boxes are (x, y, w, h) pixels; ``image_size`` is (width, height)."""
    boxes: np.ndarray                 # float32 [N, 4]
    category_ids: np.ndarray          # int64 [N]
    ignored_regions: np.ndarray       # float32 [M, 4]
    image_size: tuple[int, int]       # (width, height)
    ignore: np.ndarray = None         # bool [N]: "ignore" ground truth (COCO iscrowd)

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.category_ids = np.asarray(self.category_ids, np.int64).reshape(-1)
        self.ignored_regions = np.asarray(self.ignored_regions, np.float32).reshape(-1, 4)
        n = len(self.boxes)
        self.ignore = (np.zeros(n, bool) if self.ignore is None
                       else np.asarray(self.ignore, bool).reshape(-1))
        if len(self.category_ids) != n or len(self.ignore) != n:
            raise ValueError(f"{n} boxes but {len(self.category_ids)} category ids and "
                             f"{len(self.ignore)} ignore flags")
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))

    def __len__(self):
        return len(self.boxes)


@dataclass
class VisDroneRead:
    """What :func:`read_visdrone_txt` found: the annotations plus what it had to fix or skip."""
    annotations: ImageAnnotations
    clipped: int = 0                  # boxes partly outside the image, clipped to it
    dropped: int = 0                  # boxes outside the image or with no area, left out
    malformed: list[str] = field(default_factory=list)   # "file:line: problem", skipped lines


def _size(image_size):
    if isinstance(image_size, (int, np.integer)):
        return int(image_size), int(image_size)
    w, h = image_size
    return int(w), int(h)


def _clip_xywh(box, width, height):
    """(clipped box or None when nothing is left, whether clipping changed it)."""
    x, y, w, h = box
    x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))
    if not (w > 0 and h > 0) or x2 <= x1 or y2 <= y1:
        return None, False
    out = (x1, y1, x2 - x1, y2 - y1)
    return out, out != (x, y, w, h)


def _parse_visdrone_line(text):
    """Numbers of one line, or a string saying what is wrong with it."""
    parts = [p.strip() for p in text.split(",")]
    if parts and parts[-1] == "":
        parts = parts[:-1]                        # trailing comma
    if len(parts) != 8:
        return f"expected 8 comma-separated numbers ({_VISDRONE_FIELDS}), got {len(parts)}"
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return f"expected numbers ({_VISDRONE_FIELDS}), got {text.strip()!r}"
    if not all(math.isfinite(v) for v in values):
        return f"expected finite numbers ({_VISDRONE_FIELDS}), got {text.strip()!r}"
    category = values[5]
    if category != int(category) or int(category) not in VISDRONE_CATEGORIES:
        return f"expected a category id 0..11, got {parts[5]!r}"
    return values


def read_visdrone_txt(path, image_size, strict: bool = False) -> VisDroneRead:
    """Read one VisDrone-DET annotation file (see the module docstring for the rules).

    ``image_size`` is ``(width, height)`` or one int for a square image. Malformed lines are
    skipped with one warning naming ``file:line`` each (also listed in ``.malformed``); with
    ``strict=True`` the first one raises :class:`TfuavError` instead.
    """
    path = Path(path)
    width, height = _size(image_size)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as e:
        raise TfuavError(f"cannot read VisDrone annotations {path}: {e.strerror or e}") from None
    boxes, cats, ignore, regions, malformed = [], [], [], [], []
    clipped = dropped = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        values = _parse_visdrone_line(line)
        if isinstance(values, str):
            message = f"{path}:{number}: {values}"
            if strict:
                raise TfuavError(message)
            malformed.append(message)
            continue
        box, changed = _clip_xywh(tuple(values[:4]), width, height)
        if box is None:
            dropped += 1
            continue
        clipped += changed
        score, category = values[4], int(values[5])
        if category == 0:
            regions.append(box)
        else:
            boxes.append(box)
            cats.append(category)
            ignore.append(score == 0)
    if malformed:
        warnings.warn(f"skipped {len(malformed)} malformed VisDrone line(s): "
                      + "; ".join(malformed), stacklevel=2)
    ann = ImageAnnotations(boxes=np.array(boxes, np.float32).reshape(-1, 4), category_ids=cats,
                           ignored_regions=np.array(regions, np.float32).reshape(-1, 4),
                           image_size=(width, height), ignore=ignore)
    return VisDroneRead(annotations=ann, clipped=clipped, dropped=dropped, malformed=malformed)


def visdrone_coco_categories(include_others: bool = True) -> list[dict]:
    """COCO ``categories`` for VisDrone (ids 1..10, and 11 "others" unless left out)."""
    last = 11 if include_others else 10
    return [{"id": i, "name": VISDRONE_CATEGORIES[i], "supercategory": "object"}
            for i in range(1, last + 1)]


# ---------------------------------------------------------------------------------------- COCO

def _require(record, key, where, path):
    if not isinstance(record, dict) or key not in record:
        raise TfuavError(f"{path}: {where} has no {key!r} key")
    return record[key]


def read_coco_json(path):
    """Read a COCO detection file.

    Returns ``(images, annotations, categories)``: the ``images`` records (list of dicts),
    ``{image_id: ImageAnnotations}`` for every image (``iscrowd`` becomes ``ignore``; an image's
    optional ``ignored_regions`` key, a list of xywh boxes that tfuav writes, becomes its ignored
    regions) and the ``categories`` records. Missing keys end in one :class:`TfuavError` line
    naming the key and the file.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise TfuavError(f"cannot read COCO json {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise TfuavError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise TfuavError(f"{path}: expected a JSON object with 'images', 'annotations', "
                         f"'categories'")
    images = _require(data, "images", "the top level", path)
    anns = _require(data, "annotations", "the top level", path)
    categories = _require(data, "categories", "the top level", path)
    for i, c in enumerate(categories):
        _require(c, "id", f"categories[{i}]", path)
        _require(c, "name", f"categories[{i}]", path)
    per_image = {}
    for i, im in enumerate(images):
        image_id = _require(im, "id", f"images[{i}]", path)
        size = (_require(im, "width", f"images[{i}]", path),
                _require(im, "height", f"images[{i}]", path))
        per_image[image_id] = (size, [], [], [], im.get("ignored_regions", []))
    for i, a in enumerate(anns):
        image_id = _require(a, "image_id", f"annotations[{i}]", path)
        _require(a, "id", f"annotations[{i}]", path)
        cat = _require(a, "category_id", f"annotations[{i}]", path)
        bbox = _require(a, "bbox", f"annotations[{i}]", path)
        if image_id not in per_image:
            raise TfuavError(f"{path}: annotations[{i}] names image_id {image_id!r}, "
                             f"which is not in 'images'")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise TfuavError(f"{path}: annotations[{i}] 'bbox' must be [x, y, w, h]")
        _, boxes, cats, ignore, _ = per_image[image_id]
        boxes.append(bbox)
        cats.append(cat)
        ignore.append(bool(a.get("iscrowd", 0)))
    annotations = {
        image_id: ImageAnnotations(boxes=np.array(b, np.float32).reshape(-1, 4), category_ids=c,
                                   ignored_regions=np.array(r, np.float32).reshape(-1, 4),
                                   image_size=size, ignore=g)
        for image_id, (size, b, c, g, r) in per_image.items()}
    return images, annotations, categories


def write_coco_json(path, images, annotations, categories):
    """Write a COCO detection file atomically.

    ``images``: records with at least ``id`` and ``file_name`` (``width``/``height`` come from the
    annotations' ``image_size`` when missing); ``annotations``: ``{image_id: ImageAnnotations}``;
    ``categories``: COCO category records. Annotation ids run from 1; ``area`` is ``w*h``;
    ``iscrowd`` is the ignore flag; an image's ignored regions go to its ``ignored_regions`` key.
    """
    out_images = []
    known = set()
    for im in images:
        rec = dict(im)
        image_id = rec["id"]
        known.add(image_id)
        ann = annotations.get(image_id)
        if ann is not None:
            rec.setdefault("width", ann.image_size[0])
            rec.setdefault("height", ann.image_size[1])
            if len(ann.ignored_regions):
                rec["ignored_regions"] = [[float(v) for v in r] for r in ann.ignored_regions]
        out_images.append(rec)
    missing = set(annotations) - known
    if missing:
        raise TfuavError(f"annotations for image id(s) {sorted(missing)} that are not in images")
    out_anns = []
    for image_id, ann in annotations.items():
        for box, cat, ign in zip(ann.boxes, ann.category_ids, ann.ignore):
            x, y, w, h = (float(v) for v in box)
            out_anns.append({"id": len(out_anns) + 1, "image_id": image_id,
                             "category_id": int(cat), "bbox": [x, y, w, h], "area": w * h,
                             "iscrowd": int(bool(ign))})
    atomic_write_json(path, {"images": out_images, "annotations": out_anns,
                             "categories": list(categories)})


def detections_to_coco(detections, box_format: str = "xywh") -> list[dict]:
    """Detector output to COCO's results list ``[{image_id, category_id, bbox, score}]``.

    ``detections``: ``{image_id: (boxes [K, 4], scores [K], category_ids [K])}``; boxes in pixels,
    ``(x, y, w, h)`` or, with ``box_format="xyxy"``, ``(x1, y1, x2, y2)``.
    """
    if box_format not in ("xywh", "xyxy"):
        raise ValueError(f"box_format must be 'xywh' or 'xyxy', got {box_format!r}")
    out = []
    for image_id, (boxes, scores, cats) in detections.items():
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        cats = np.asarray(cats).reshape(-1)
        if not len(boxes) == len(scores) == len(cats):
            raise ValueError(f"image {image_id}: {len(boxes)} boxes, {len(scores)} scores, "
                             f"{len(cats)} category ids")
        if box_format == "xyxy":
            boxes = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        for box, score, cat in zip(boxes, scores, cats):
            out.append({"image_id": image_id, "category_id": int(cat),
                        "bbox": [float(v) for v in box], "score": float(score)})
    return out
