"""Embedded synthetic aerial detection scenes: the default detection data, no download.

Top-down views on the same textured ground as the classification scenes (fields, roads,
trees, lighting), with many small objects of four classes clustered non-uniformly (traffic
along a road, a car park, a crowd) and a few large ones. Deterministic: image i depends only on
(seed, i). Boxes are axis-aligned (x, y, w, h) in pixels, tight around what was drawn.
"""
import cv2
import numpy as np

from tfuav.data.synthetic import _blend, _ground, _light, _poly_mask, _roads, _trees

DETECTION_CLASSES = ["person", "car", "truck", "bus"]
# object length as a fraction of the image side (lo, hi) and how often each class is drawn
_SIZES = {"person": (0.025, 0.05), "car": (0.06, 0.10), "truck": (0.10, 0.16),
          "bus": (0.22, 0.34)}
_CLUSTERED = {"person": 0.35, "car": 0.5, "truck": 0.15}   # class mix inside a cluster
_LARGE_PER_IMAGE = (0, 2)                                  # buses: the few large objects
_BODY = [(200, 40, 40), (230, 230, 230), (30, 30, 35), (40, 70, 160), (210, 180, 40),
         (120, 120, 130)]


def _iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter + 1e-9)


def _vehicle(rng, img, s, center, length, width, angle):
    """A rotated body with a darker windscreen band; returns its polygon."""
    box = ((float(center[0]), float(center[1])), (float(length), float(width)), float(angle))
    pts = cv2.boxPoints(box)
    shadow = pts + max(1.0, 0.15 * width)
    _blend(img, _poly_mask(s, shadow) * 0.45, np.zeros(3, np.float32))
    body = np.array(_BODY[rng.integers(len(_BODY))], np.float32) * rng.uniform(0.85, 1.1)
    _blend(img, _poly_mask(s, pts), body)
    a = np.deg2rad(angle)
    axis = np.array([np.cos(a), np.sin(a)], np.float32)
    glass_c = np.asarray(center, np.float32) + axis * length * 0.2
    glass = cv2.boxPoints(((float(glass_c[0]), float(glass_c[1])),
                           (float(length * 0.18), float(width * 0.8)), float(angle)))
    _blend(img, _poly_mask(s, glass) * 0.8, np.full(3, 25.0, np.float32))
    return pts


def _person(rng, img, s, center, size):
    r = max(1.0, size / 2)
    mask = np.zeros((s, s), np.float32)
    cv2.circle(mask, (int(round(center[0])), int(round(center[1]))), int(round(r)), 1.0, -1,
               cv2.LINE_AA)
    color = np.array(_BODY[rng.integers(len(_BODY))], np.float32)
    _blend(img, mask, color)
    c = np.asarray(center, np.float32)
    return np.array([c - r, c + [r, -r], c + r, c + [-r, r]], np.float32)


def _draw(rng, img, s, name, center):
    lo, hi = _SIZES[name]
    length = rng.uniform(lo, hi) * s
    if name == "person":
        return _person(rng, img, s, center, max(2.0, length))
    width = length * (0.45 if name != "bus" else 0.3)
    return _vehicle(rng, img, s, center, length, max(2.0, width), rng.uniform(0, 180))


def _tight_box(pts, s):
    x0, y0 = np.clip(pts.min(axis=0), 0, s)
    x1, y1 = np.clip(pts.max(axis=0), 0, s)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def render_detection_scene(image_size, rng, max_objects=40):
    """One uint8 RGB scene and its annotations {"boxes": float32 [N,4] xywh, "labels": [N]}."""
    s = int(image_size)
    img = _ground(rng, s)
    _roads(rng, img, s, rng.integers(1, 3))
    _trees(rng, img, s, rng.integers(2, 8))
    plan = [("bus", rng.uniform(0.15, 0.85, 2) * s)
            for _ in range(rng.integers(_LARGE_PER_IMAGE[0], _LARGE_PER_IMAGE[1] + 1))]
    names, mix = list(_CLUSTERED), np.array(list(_CLUSTERED.values()))
    for _ in range(rng.integers(1, 4)):               # clusters: traffic, car parks, crowds
        center = rng.uniform(0.1, 0.9, 2) * s
        spread = rng.uniform(0.04, 0.10) * s
        for _ in range(rng.integers(4, max(5, max_objects // 3))):
            plan.append((names[rng.choice(len(names), p=mix / mix.sum())],
                         center + rng.normal(0, spread, 2)))
    for _ in range(rng.integers(0, 5)):               # a few scattered ones
        plan.append((names[rng.choice(len(names), p=mix / mix.sum())],
                     rng.uniform(0.05, 0.95, 2) * s))
    boxes, labels = [], []
    for name, center in plan[:max_objects]:
        if not (0 <= center[0] < s and 0 <= center[1] < s):
            continue
        trial = np.copy(img)
        box = _tight_box(_draw(rng, trial, s, name, center), s)
        if box[2] < 1 or box[3] < 1 or any(_iou(box, b) > 0.2 for b in boxes):
            continue                                  # keep objects separable
        img = trial
        boxes.append(box)
        labels.append(DETECTION_CLASSES.index(name))
    img = _light(rng, img, s)
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    return (np.clip(img, 0, 255).astype(np.uint8),
            {"boxes": np.array(boxes, np.float32).reshape(-1, 4),
             "labels": np.array(labels, np.int64)})


def generate_detection_scenes(count, image_size, seed=0, max_objects=40):
    """(images uint8 [count, S, S, 3], annotations list, class names); image i depends only on
    (seed, i)."""
    if count < 1 or image_size < 32:
        from tfuav.errors import TfuavError
        raise TfuavError(f"synthetic detection data needs count >= 1 and image_size >= 32, "
                         f"got count={count}, image_size={image_size}")
    images = np.empty((count, image_size, image_size, 3), np.uint8)
    annotations = []
    for i in range(count):
        images[i], ann = render_detection_scene(image_size, np.random.default_rng([int(seed), i]),
                                                max_objects)
        annotations.append(ann)
    return images, annotations, list(DETECTION_CLASSES)
