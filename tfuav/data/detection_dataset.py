"""Detection data sets: images resized to a square and their boxes, in train/val/test splits.

Sources: the embedded synthetic aerial scenes (path None), a VisDrone-DET folder
(``images/`` + ``annotations/*.txt``, or ``train/``, ``val/``, ``test/`` folders each laid out
so) or a COCO json file whose ``file_name`` entries are found next to it (or in an ``images/``
folder beside it). Sources without their own splits are split by a permutation seeded by
``seed`` (15 % val, 15 % test).

An annotation is ``{"boxes": float32 [n, 4] (x, y, w, h) pixels of the resized image,
"labels": int64 [n] indices into class_names, "ignore": bool [n]}``; ``ignore`` marks objects
that are neither to be found nor to be penalised (VisDrone score 0, COCO iscrowd).
VisDrone's ignored regions (category 0) are kept per image in ``DetectionSplit.ignored_regions``
for evaluation; its "others" class (11), which the official protocol does not score, is left
out, so the classes are the ten scored ones.
"""
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tfuav.data.detection import (VISDRONE_CATEGORIES, VISDRONE_EVAL_CATEGORY_IDS,
                                  read_coco_json, read_visdrone_txt)
from tfuav.data.folder import IMAGE_EXTENSIONS
from tfuav.errors import TfuavError

SPLITS = ("train", "val", "test")
VAL_FRACTION = 0.15
TEST_FRACTION = 0.15
DEFAULT_SYNTHETIC_COUNT = 600
_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val",
                  "test": "test"}
_VISDRONE_LAYOUT = "root/images/*.jpg + root/annotations/*.txt, or root/{train,val,test}/ so"


@dataclass
class DetectionSplit:
    images: np.ndarray                                   # uint8 [N, S, S, 3], RGB
    annotations: list                                    # per image, see the module docstring
    ignored_regions: list = field(default_factory=list)  # per image float32 [M, 4], or []
    paths: list = field(default_factory=list)            # source file per image, [] if generated

    def __post_init__(self):
        if not self.ignored_regions:
            self.ignored_regions = [np.zeros((0, 4), np.float32) for _ in self.annotations]
        if len(self.images) != len(self.annotations) or \
                len(self.ignored_regions) != len(self.annotations):
            raise ValueError(f"{len(self.images)} images, {len(self.annotations)} annotations, "
                             f"{len(self.ignored_regions)} ignored-region lists")

    def __len__(self):
        return int(len(self.annotations))


@dataclass
class DetectionDataset:
    class_names: list
    splits: dict                                  # "train" / "val" / "test" -> DetectionSplit
    source: str                                   # "synthetic", a folder or a json path
    skipped: list = field(default_factory=list)   # unreadable images left out (paths)

    @property
    def num_classes(self):
        return len(self.class_names)


def annotation(boxes, labels, ignore=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels, np.int64).reshape(-1)
    ignore = np.zeros(len(boxes), bool) if ignore is None else np.asarray(ignore, bool).reshape(-1)
    return {"boxes": boxes, "labels": labels, "ignore": ignore}


def split_indices(count, seed, val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION):
    """{split: index array}: a permutation seeded by `seed`, cut into test, val, then train
    (val and test get at least one image each from 3 images on)."""
    order = np.random.default_rng(seed).permutation(count)
    sizes = [int(round(count * f)) for f in (test_fraction, val_fraction)]
    if count >= 3:
        sizes = [max(1, s) for s in sizes]
    n_test, n_val = sizes
    return {"test": order[:n_test], "val": order[n_test:n_test + n_val],
            "train": order[n_test + n_val:]}


def _take(images, anns, regions, paths, idx):
    return DetectionSplit(images=images[idx], annotations=[anns[i] for i in idx],
                          ignored_regions=[regions[i] for i in idx],
                          paths=[paths[i] for i in idx] if paths else [])


def _split_by_seed(images, anns, regions, paths, seed):
    idx = split_indices(len(anns), seed)
    return {name: _take(images, anns, regions, paths, idx[name]) for name in SPLITS}


def _synthetic(image_size, count, seed):
    from tfuav.data.synthetic_detection import generate_detection_scenes
    images, anns, class_names = generate_detection_scenes(count, image_size, seed)
    anns = [annotation(a["boxes"], a["labels"]) for a in anns]
    regions = [np.zeros((0, 4), np.float32) for _ in anns]
    return DetectionDataset(class_names=class_names,
                            splits=_split_by_seed(images, anns, regions, [], seed),
                            source="synthetic")


def _read_image(path):
    """RGB uint8 at its own size, or None when unreadable."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except (OSError, cv2.error):
        bgr = None
    if bgr is None or bgr.ndim != 3 or 0 in bgr.shape[:2]:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _resized(rgb, image_size, boxes_list):
    """The image resized to image_size x image_size and each [K, 4] xywh array scaled with it."""
    h, w = rgb.shape[:2]
    scale = np.array([image_size / w, image_size / h] * 2, np.float32)
    out = rgb if (h, w) == (image_size, image_size) else cv2.resize(
        rgb, (image_size, image_size), interpolation=cv2.INTER_AREA)
    return out, [np.asarray(b, np.float32).reshape(-1, 4) * scale for b in boxes_list]


class _Reader:
    """Collects images and annotations, skipping (or, strict, refusing) unreadable images."""

    def __init__(self, image_size, strict):
        self.image_size, self.strict = int(image_size), strict
        self.images, self.anns, self.regions, self.paths, self.skipped = [], [], [], [], []

    def image(self, path):
        rgb = _read_image(path)
        if rgb is None:
            if self.strict:
                raise TfuavError(f"{path}: unreadable or corrupt image (strict mode)")
            self.skipped.append(str(path))
        return rgb

    def add(self, path, rgb, boxes, labels, ignore, regions):
        img, (boxes, regions) = _resized(rgb, self.image_size, [boxes, regions])
        self.images.append(img)
        self.anns.append(annotation(boxes, labels, ignore))
        self.regions.append(regions)
        self.paths.append(str(path))

    def arrays(self, where):
        if not self.images:
            raise TfuavError(f"{where}: no readable annotated images")
        return np.stack(self.images), self.anns, self.regions, self.paths


VISDRONE_CLASSES = [VISDRONE_CATEGORIES[i] for i in VISDRONE_EVAL_CATEGORY_IDS]


def _read_visdrone_folder(folder, reader):
    images_dir, ann_dir = folder / "images", folder / "annotations"
    if not images_dir.is_dir() or not ann_dir.is_dir():
        raise TfuavError(f"{folder}: not a VisDrone-DET folder (expected {_VISDRONE_LAYOUT})")
    start = len(reader.images)
    files = sorted(p for p in images_dir.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    for path in files:
        txt = ann_dir / f"{path.stem}.txt"
        if not txt.is_file():
            if reader.strict:
                raise TfuavError(f"{txt}: annotation file missing for image {path.name}")
            reader.skipped.append(str(path))
            continue
        rgb = reader.image(path)
        if rgb is None:
            continue
        ann = read_visdrone_txt(txt, (rgb.shape[1], rgb.shape[0]), strict=reader.strict)
        ann = ann.annotations
        scored = np.isin(ann.category_ids, VISDRONE_EVAL_CATEGORY_IDS)
        labels = ann.category_ids[scored] - VISDRONE_EVAL_CATEGORY_IDS[0]
        reader.add(path, rgb, ann.boxes[scored], labels, ann.ignore[scored],
                   ann.ignored_regions)
    return range(start, len(reader.images))


def _visdrone(root, image_size, seed, strict):
    reader = _Reader(image_size, strict)
    named = {_SPLIT_ALIASES[p.name.lower()]: p for p in sorted(root.iterdir())
             if p.is_dir() and p.name.lower() in _SPLIT_ALIASES}
    if (root / "images").is_dir() or not named:
        _read_visdrone_folder(root, reader)
        images, anns, regions, paths = reader.arrays(root)
        splits = _split_by_seed(images, anns, regions, paths, seed)
    else:
        missing = [s for s in SPLITS if s not in named]
        if missing:
            raise TfuavError(f"{root}: split folder(s) {', '.join(missing)} missing "
                             f"(expected {_VISDRONE_LAYOUT})")
        ranges = {s: _read_visdrone_folder(named[s], reader) for s in SPLITS}
        images, anns, regions, paths = reader.arrays(root)
        splits = {s: _take(images, anns, regions, paths, np.asarray(list(r), np.int64))
                  for s, r in ranges.items()}
    _warn_skipped(reader.skipped)
    return DetectionDataset(class_names=list(VISDRONE_CLASSES), splits=splits,
                            source=str(root), skipped=reader.skipped)


def _coco(path, image_size, seed, strict):
    records, per_image, categories = read_coco_json(path)
    category_ids = sorted(int(c["id"]) for c in categories)
    names = {int(c["id"]): str(c["name"]) for c in categories}
    index = {cid: i for i, cid in enumerate(category_ids)}
    reader = _Reader(image_size, strict)
    for i, record in enumerate(records):
        name = record.get("file_name")
        if not name:
            raise TfuavError(f"{path}: images[{i}] has no 'file_name' key")
        candidates = [path.parent / name, path.parent / "images" / name]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            if strict:
                raise TfuavError(f"{path}: image file {name!r} of images[{i}] not found next "
                                 f"to the json or in its images/ folder")
            reader.skipped.append(str(candidates[0]))
            continue
        rgb = reader.image(found)
        if rgb is None:
            continue
        ann = per_image[record["id"]]
        unknown = sorted(set(ann.category_ids.tolist()) - set(index))
        if unknown:
            raise TfuavError(f"{path}: annotations of image {record['id']!r} use category id(s) "
                             f"{unknown} that are not in 'categories'")
        labels = np.array([index[int(c)] for c in ann.category_ids], np.int64)
        reader.add(found, rgb, ann.boxes, labels, ann.ignore, ann.ignored_regions)
    images, anns, regions, paths = reader.arrays(path)
    _warn_skipped(reader.skipped)
    return DetectionDataset(class_names=[names[c] for c in category_ids],
                            splits=_split_by_seed(images, anns, regions, paths, seed),
                            source=str(path), skipped=reader.skipped)


def _warn_skipped(skipped):
    if skipped:
        names = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        warnings.warn(f"skipped {len(skipped)} image(s) (unreadable or without annotations): "
                      f"{names}", stacklevel=3)


def load_detection_dataset(path=None, image_size=64, count=DEFAULT_SYNTHETIC_COUNT, seed=0,
                           strict=False):
    """A DetectionDataset (see the module docstring). `count` is the number of synthetic scenes
    (path None only); `strict` turns unreadable images, missing annotation files and malformed
    annotation lines into errors instead of warnings."""
    if image_size < 32:
        raise TfuavError(f"detection image_size must be at least 32, got {image_size}")
    if path is None:
        return _synthetic(int(image_size), int(count), seed)
    path = Path(path)
    if not path.exists():
        raise TfuavError(f"detection data not found: {path}")
    if path.is_dir():
        return _visdrone(path, image_size, seed, strict)
    if path.suffix.lower() == ".json":
        return _coco(path, image_size, seed, strict)
    raise TfuavError(f"{path}: expected a VisDrone-DET folder ({_VISDRONE_LAYOUT}) or a COCO "
                     f".json file")
