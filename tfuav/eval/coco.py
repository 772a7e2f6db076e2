"""COCO-style detection metrics (pycocotools' COCOeval), with VisDrone's ignored regions.

``coco_metrics`` returns COCOeval's twelve summary numbers by name plus a per-class AP table;
pycocotools' printout is suppressed. Numbers COCOeval cannot compute (it writes -1, e.g. AP_small
when there are no small objects) come back as ``None``.

Ignored regions (VisDrone-DET category 0). Rule, as in the official toolkit
(github.com/VisDrone/VisDrone2018-DET-toolkit, ``utils/dropObjectsInIgr.m``): the union of an
image's ignored regions is painted into a mask; a detection is *kept only while less than half of
its own area* lies in that mask, i.e. it is removed when ``covered_area / detection_area >= 0.5``.
The toolkit applies the same rule to the ground-truth objects, and so does :func:`coco_metrics`
(``drop_gt_in_ignored=True``). The toolkit measures the cover on a rounded pixel grid; here the
cover is the exact area of the union of the rectangles, so boxes with fractional or rounded-off
edges can differ from it by under a pixel's worth of area.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import numpy as np

from tfuav.errors import TfuavError
from tfuav.fileio import atomic_write_bytes

STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
              "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")
IGNORE_COVER_THRESHOLD = 0.5


def _number(value):
    value = float(value)
    return None if value < 0 or not np.isfinite(value) else value


def _load_json(source, what):
    if isinstance(source, (str, Path)):
        try:
            return json.loads(Path(source).read_text(encoding="utf-8"))
        except OSError as e:
            raise TfuavError(f"cannot read {what} {source}: {e.strerror or e}") from None
        except json.JSONDecodeError as e:
            raise TfuavError(f"{source}: not valid JSON ({e.msg} at line {e.lineno})") from None
    return copy.deepcopy(source)


def _xyxy(boxes):
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def _union_area(rects):
    """Exact area of the union of a few xyxy rectangles (coordinate compression)."""
    xs = np.unique(rects[:, [0, 2]])
    ys = np.unique(rects[:, [1, 3]])
    cx = (xs[:-1] + xs[1:]) / 2
    cy = (ys[:-1] + ys[1:]) / 2
    inside_x = (rects[:, None, 0] <= cx) & (cx < rects[:, None, 2])         # [M, X]
    inside_y = (rects[:, None, 1] <= cy) & (cy < rects[:, None, 3])         # [M, Y]
    covered = (inside_y[:, :, None] & inside_x[:, None, :]).any(axis=0)     # [Y, X]
    return float((np.diff(ys)[:, None] * np.diff(xs)[None, :] * covered).sum())


def ignored_cover(boxes, regions) -> np.ndarray:
    """Fraction of each xywh box's area that the union of the xywh ``regions`` covers."""
    boxes, regions = _xyxy(boxes), _xyxy(regions)
    out = np.zeros(len(boxes))
    if not len(boxes) or not len(regions):
        return out
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    lo = np.maximum(boxes[:, None, :2], regions[None, :, :2])               # [K, M, 2]
    hi = np.minimum(boxes[:, None, 2:], regions[None, :, 2:])
    wh = np.clip(hi - lo, 0, None)
    inter = wh[..., 0] * wh[..., 1]                                         # [K, M]
    for k in range(len(boxes)):
        if area[k] <= 0:
            continue
        hit = inter[k] > 0
        if hit.sum() <= 1:                  # one region or none: the union is that region
            out[k] = inter[k].sum() / area[k]
            continue
        clipped = np.concatenate([lo[k, hit], hi[k, hit]], axis=1)
        out[k] = _union_area(clipped) / area[k]
    return out


def _regions_from(gt, ignore_regions):
    """``{image_id: [M, 4] xywh}`` from the argument, or from the images' ``ignored_regions``."""
    if ignore_regions is None:
        return {}
    if isinstance(ignore_regions, str) and ignore_regions == "auto":
        return {im["id"]: np.asarray(im.get("ignored_regions", []), np.float64).reshape(-1, 4)
                for im in gt.get("images", [])}
    return {k: np.asarray(v, np.float64).reshape(-1, 4) for k, v in ignore_regions.items()}


def _outside_ignored(items, regions):
    """Mask over COCO records (dicts with image_id and bbox): False for those at least
    IGNORE_COVER_THRESHOLD inside their image's ignored regions."""
    keep = np.ones(len(items), bool)
    by_image = {}
    for i, item in enumerate(items):
        by_image.setdefault(item["image_id"], []).append(i)
    for image_id, idx in by_image.items():
        reg = regions.get(image_id)
        if reg is None or not len(reg):
            continue
        cover = ignored_cover([items[i]["bbox"] for i in idx], reg)
        keep[np.asarray(idx)[cover >= IGNORE_COVER_THRESHOLD]] = False
    return keep


def filter_ignored(gt: dict, detections: list, regions: dict, drop_gt_in_ignored: bool = True):
    """Remove detections (and, as the VisDrone toolkit does, ground truth) that lie at least half
    inside an image's ignored regions. Returns ``(gt, detections)``; the inputs are not changed."""
    if not regions:
        return gt, detections
    detections = [d for d, k in zip(detections, _outside_ignored(detections, regions)) if k]
    if drop_gt_in_ignored:
        anns = gt.get("annotations", [])
        gt = dict(gt, annotations=[a for a, k in zip(anns, _outside_ignored(anns, regions)) if k])
    return gt, detections


def evaluate_coco(gt_json_path_or_dict, detections_list_or_path, ignore_regions=None,
                  cat_ids=None, drop_gt_in_ignored: bool = True):
    """Run COCOeval (bbox) quietly and return it, evaluated and accumulated (not summarized).

    ``ignore_regions``: ``None`` (no filtering), ``"auto"`` (each gt image record's
    ``ignored_regions`` key, as :func:`tfuav.data.detection.write_coco_json` writes it) or
    ``{image_id: [[x, y, w, h], ...]}``. ``cat_ids``: the categories to score (default all of the
    gt file's; VisDrone's official protocol is ``VISDRONE_EVAL_CATEGORY_IDS``).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = _load_json(gt_json_path_or_dict, "ground truth")
    dets = _load_json(detections_list_or_path, "detections")
    if not isinstance(gt, dict):
        raise TfuavError("ground truth must be a COCO json object")
    for key in ("images", "annotations", "categories"):
        if key not in gt:
            raise TfuavError(f"ground truth {_name(gt_json_path_or_dict)} has no {key!r} key")
    if isinstance(dets, dict) and "annotations" in dets:
        dets = dets["annotations"]
    if not isinstance(dets, list):
        raise TfuavError("detections must be a list of {image_id, category_id, bbox, score}")
    for i, d in enumerate(dets):
        for key in ("image_id", "category_id", "bbox", "score"):
            if key not in d:
                raise TfuavError(f"detections {_name(detections_list_or_path)}: entry {i} has "
                                 f"no {key!r} key")
    image_ids = {im["id"] for im in gt["images"]}
    unknown = sorted({d["image_id"] for d in dets} - image_ids, key=str)
    if unknown:
        raise TfuavError(f"detections name image id(s) not in the ground truth: {unknown[:10]}")
    for a in gt["annotations"]:
        a.setdefault("iscrowd", 0)
        a.setdefault("area", float(a["bbox"][2]) * float(a["bbox"][3]))
    gt, dets = filter_ignored(gt, dets, _regions_from(gt, ignore_regions), drop_gt_in_ignored)

    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if dets:
            coco_dt = coco_gt.loadRes(dets)
        else:                                # loadRes cannot take an empty list
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt["images"]), "annotations": [],
                               "categories": copy.deepcopy(gt["categories"])}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        if cat_ids is not None:
            ev.params.catIds = sorted(int(c) for c in cat_ids)
        ev.evaluate()
        ev.accumulate()
    return ev


def _name(source):
    return str(source) if isinstance(source, (str, Path)) else "(in memory)"


def coco_metrics(gt_json_path_or_dict, detections_list_or_path, ignore_regions=None,
                 cat_ids=None, drop_gt_in_ignored: bool = True) -> dict:
    """COCO bbox metrics: the twelve COCOeval stats by name (``STAT_NAMES``) and ``per_class``,
    a list of ``{category_id, name, AP, AP50}`` (AP over IoU .50:.95, area all, 100 detections,
    from COCOeval's precision array; ``None`` where the class has no ground truth).

    Arguments as for :func:`evaluate_coco`.
    """
    return metrics_of(evaluate_coco(gt_json_path_or_dict, detections_list_or_path,
                                    ignore_regions, cat_ids, drop_gt_in_ignored))


def metrics_of(ev) -> dict:
    """coco_metrics' dict from an accumulated COCOeval (:func:`evaluate_coco`)."""
    with contextlib.redirect_stdout(io.StringIO()):
        ev.summarize()
    out = {name: _number(v) for name, v in zip(STAT_NAMES, ev.stats)}
    out["per_class"] = per_class_ap(ev)
    return out


def _mean_valid(p):
    p = p[p > -1]
    return float(p.mean()) if p.size else None


def per_class_ap(ev) -> list[dict]:
    """Per-category AP (IoU .50:.95) and AP50 from an accumulated COCOeval."""
    precision = ev.eval["precision"]            # [T IoUs, R recalls, K classes, A areas, M maxDets]
    area = ev.params.areaRngLbl.index("all")
    iou50 = int(np.argmin(np.abs(ev.params.iouThrs - 0.5)))
    rows = []
    for k, cat_id in enumerate(ev.params.catIds):
        cats = ev.cocoGt.loadCats([cat_id]) if cat_id in ev.cocoGt.cats else [{}]
        p = precision[:, :, k, area, -1]
        rows.append({"category_id": int(cat_id), "name": cats[0].get("name", str(cat_id)),
                     "AP": _mean_valid(p), "AP50": _mean_valid(p[iou50])})
    return rows


def plot_pr_curves(ev, path, iou: float = 0.5, title: str | None = None) -> Path:
    """Write a PNG of precision against recall at one IoU threshold, one curve per class, from an
    accumulated COCOeval (:func:`evaluate_coco`). Classes without ground truth are left out."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t = int(np.argmin(np.abs(ev.params.iouThrs - iou)))
    area = ev.params.areaRngLbl.index("all")
    recall = ev.params.recThrs
    fig = Figure(figsize=(6, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for row, cat_id in zip(per_class_ap(ev), ev.params.catIds):
        k = ev.params.catIds.index(cat_id)
        p = ev.eval["precision"][t, :, k, area, -1]
        if not (p > -1).any():
            continue
        ap = row["AP50"] if abs(iou - 0.5) < 1e-9 else float(p[p > -1].mean())
        ax.plot(recall, np.where(p > -1, p, np.nan), label=f"{row['name']} (AP {ap:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title or f"precision-recall at IoU {iou:.2f}")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
