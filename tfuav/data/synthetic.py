"""Embedded synthetic aerial-emergency scenes (AIDER-like, top-down UAV views).

Four classes, drawn directly at the requested size with numpy + cv2, deterministic for a seed:
collapsed_building, fire, flood, normal. All scenes share the same ground, fields, roads and
lighting so the classes differ by their content, not by a trivial global colour.
"""
import cv2
import numpy as np

CLASS_NAMES = ["collapsed_building", "fire", "flood", "normal"]

_GROUNDS = [(96, 122, 62), (120, 128, 70), (138, 120, 86), (110, 104, 80), (84, 108, 60)]
_FIELDS = [(70, 120, 50), (150, 140, 80), (120, 96, 64), (96, 140, 70), (170, 160, 110)]
_ROOFS = [(170, 70, 55), (150, 90, 70), (120, 120, 125), (200, 200, 195), (90, 90, 100),
          (180, 120, 80)]


def _rand_color(rng, palette, jitter=18):
    base = np.array(palette[rng.integers(len(palette))], np.float32)
    # mostly brightness variation, small hue jitter (no magenta meadows)
    return base * rng.uniform(0.85, 1.15) + rng.normal(0, jitter / 3, 3).astype(np.float32)


def _smooth_noise(rng, s, cells):
    small = rng.random((cells, cells)).astype(np.float32)
    return cv2.resize(small, (s, s), interpolation=cv2.INTER_CUBIC)


def _blend(img, mask, color):
    """Alpha-blend ``color`` (3-vector or HxWx3 image) into img where mask (HxW in [0,1])."""
    m = mask[..., None]
    img *= 1.0 - m
    img += m * color


def _rect_points(rng, s, lo, hi, center=None):
    cx, cy = center if center is not None else rng.uniform(0.05, 0.95, 2) * s
    w, h = rng.uniform(lo, hi, 2) * s
    box = ((float(cx), float(cy)), (float(w), float(h)), float(rng.uniform(0, 180)))
    return cv2.boxPoints(box), box


def _poly_mask(s, pts, blur=0.0):
    mask = np.zeros((s, s), np.float32)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1.0)
    if blur > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), blur)
    return mask


def _ground(rng, s):
    base = _rand_color(rng, _GROUNDS)
    low = _smooth_noise(rng, s, rng.integers(3, 7)) - 0.5
    img = base + low[..., None] * rng.uniform(30, 60) * np.array([1.0, 1.1, 0.8], np.float32)
    img += rng.normal(0, rng.uniform(4, 10), (s, s, 1)).astype(np.float32)
    for _ in range(rng.integers(0, 4)):               # agricultural fields
        pts, _ = _rect_points(rng, s, 0.25, 0.7)
        color = _rand_color(rng, _FIELDS)
        stripes = (np.sin(np.arange(s, dtype=np.float32) * rng.uniform(0.8, 2.0))[None, :]
                   * rng.uniform(0, 10))[..., None]
        _blend(img, _poly_mask(s, pts) * rng.uniform(0.6, 0.95), color + stripes)
    return img


def _roads(rng, img, s, count):
    for _ in range(count):
        color = np.full(3, rng.uniform(75, 140), np.float32) + rng.normal(0, 6, 3)
        a = rng.uniform(0, 1, 2) * s
        if rng.random() < 0.5:
            a[rng.integers(2)] = 0
        b = rng.uniform(0, 1, 2) * s
        b[rng.integers(2)] = s
        mask = np.zeros((s, s), np.float32)
        t = max(1, int(round(s * rng.uniform(0.03, 0.07))))
        cv2.line(mask, tuple(int(v) for v in a), tuple(int(v) for v in b), 1.0, t, cv2.LINE_AA)
        _blend(img, mask, color)


def _trees(rng, img, s, count):
    for _ in range(count):
        mask = np.zeros((s, s), np.float32)
        c = (int(rng.integers(0, s)), int(rng.integers(0, s)))
        r = max(1, int(s * rng.uniform(0.02, 0.06)))
        cv2.circle(mask, c, r, 1.0, -1, cv2.LINE_AA)
        green = np.array([rng.uniform(25, 60), rng.uniform(70, 120), rng.uniform(20, 50)],
                         np.float32)
        _blend(img, mask, green)


def _building(rng, img, s, lo=0.08, hi=0.22, center=None):
    pts, box = _rect_points(rng, s, lo, hi, center)
    shadow = pts + s * 0.025 * rng.uniform(0.5, 1.5)
    _blend(img, _poly_mask(s, shadow) * 0.5, np.zeros(3, np.float32))
    roof = _rand_color(rng, _ROOFS, 12)
    _blend(img, _poly_mask(s, pts), roof)
    # ridge line along the long side, one darker roof half
    p = pts
    if np.linalg.norm(p[1] - p[0]) < np.linalg.norm(p[2] - p[1]):
        p = np.roll(p, 1, axis=0)
    m0, m1 = (p[0] + p[3]) / 2, (p[1] + p[2]) / 2
    half = np.array([p[0], p[1], m1, m0])
    _blend(img, _poly_mask(s, half) * 0.35, np.zeros(3, np.float32))
    edge = np.zeros((s, s), np.float32)
    cv2.polylines(edge, [np.round(pts).astype(np.int32)], True, 1.0, 1, cv2.LINE_AA)
    _blend(img, edge * 0.5, roof * 0.5)
    return box


def _scene_normal(rng, img, s):
    _roads(rng, img, s, rng.integers(1, 3))
    for _ in range(rng.integers(2, 6)):
        _building(rng, img, s)
    for _ in range(rng.integers(1, 4)):                # parks / tree groups
        c = rng.uniform(0.1, 0.9, 2) * s
        for _ in range(rng.integers(4, 10)):
            mask = np.zeros((s, s), np.float32)
            p = c + rng.normal(0, 0.08 * s, 2)
            cv2.circle(mask, tuple(int(v) for v in p), max(1, int(s * rng.uniform(0.03, 0.07))),
                       1.0, -1, cv2.LINE_AA)
            _blend(img, mask, np.array([rng.uniform(25, 60), rng.uniform(80, 130),
                                        rng.uniform(20, 50)], np.float32))
    _trees(rng, img, s, rng.integers(3, 12))


def _scene_collapsed(rng, img, s):
    _roads(rng, img, s, rng.integers(0, 2))
    for _ in range(rng.integers(0, 2)):                # a surviving building now and then
        _building(rng, img, s)
    for _ in range(rng.integers(2, 5)):                # rubble fields
        pts, box = _rect_points(rng, s, 0.25, 0.55)
        mask = _poly_mask(s, pts, blur=s * 0.03)
        grey = rng.uniform(100, 170)
        tex = grey + rng.normal(0, rng.uniform(18, 35), (s, s, 1)).astype(np.float32)
        tex = tex + np.array([8, 4, -4], np.float32) * rng.uniform(0, 2)  # dusty brown tint
        mask *= 0.55 + 0.45 * _smooth_noise(rng, s, 6)
        _blend(img, mask, tex)
        debris = np.zeros((s, s), np.float32)
        for _ in range(rng.integers(4, 12)):            # broken slabs
            q, _ = _rect_points(rng, s, 0.02, 0.07,
                                center=np.array(box[0]) + rng.normal(0, 0.12, 2) * s)
            cv2.fillPoly(debris, [np.round(q).astype(np.int32)], float(rng.uniform(0.5, 1.0)))
        _blend(img, debris, np.full(3, rng.uniform(60, 200), np.float32))
        # broken outline of the former building: only pieces of its walls remain
        walls = np.zeros((s, s), np.float32)
        for k in range(4):
            a, b = pts[k], pts[(k + 1) % 4]
            for _ in range(2):
                if rng.random() < 0.6:
                    t0 = rng.uniform(0, 0.6)
                    t1 = min(1.0, t0 + rng.uniform(0.15, 0.45))
                    p0 = a + (b - a) * t0 + rng.normal(0, 0.01 * s, 2)
                    p1 = a + (b - a) * t1 + rng.normal(0, 0.01 * s, 2)
                    cv2.line(walls, tuple(int(v) for v in p0), tuple(int(v) for v in p1),
                             1.0, max(1, s // 40), cv2.LINE_AA)
        _blend(img, walls * 0.8, np.full(3, rng.uniform(40, 90), np.float32))
    _trees(rng, img, s, rng.integers(0, 4))


def _scene_fire(rng, img, s):
    _roads(rng, img, s, rng.integers(0, 2))
    for _ in range(rng.integers(1, 4)):
        _building(rng, img, s)
    _trees(rng, img, s, rng.integers(2, 8))
    wind = rng.normal(0, 1, 2)
    wind = wind / (np.linalg.norm(wind) + 1e-6)
    for _ in range(rng.integers(1, 4)):
        c = rng.uniform(0.15, 0.85, 2) * s
        r = s * rng.uniform(0.07, 0.16)
        burnt = np.zeros((s, s), np.float32)
        cv2.circle(burnt, tuple(int(v) for v in c), int(r * 1.6), 1.0, -1)
        _blend(img, cv2.GaussianBlur(burnt, (0, 0), r * 0.4) * 0.6,
               np.array([35, 30, 28], np.float32))
        flame = np.zeros((s, s), np.float32)
        for _ in range(rng.integers(2, 6)):
            p = c + rng.normal(0, r * 0.5, 2)
            axes = (max(1, int(r * rng.uniform(0.4, 1.0))), max(1, int(r * rng.uniform(0.3, 0.8))))
            cv2.ellipse(flame, tuple(int(v) for v in p), axes, float(rng.uniform(0, 180)),
                        0, 360, 1.0, -1)
        flame = cv2.GaussianBlur(flame, (0, 0), max(0.6, r * 0.2))
        outer = np.array([rng.uniform(190, 240), rng.uniform(50, 110), rng.uniform(10, 40)],
                         np.float32)
        _blend(img, np.clip(flame * 1.3, 0, 1), outer)
        core = np.clip((flame - 0.6) * 2.5, 0, 1)
        _blend(img, core, np.array([255, rng.uniform(190, 240), rng.uniform(80, 150)], np.float32))
        # smoke plume drifting downwind, widening and fading
        smoke = np.zeros((s, s), np.float32)
        length = s * rng.uniform(0.3, 0.8)
        for t in np.linspace(0.1, 1.0, 8):
            p = c + wind * length * t + rng.normal(0, r * 0.3, 2)
            cv2.circle(smoke, tuple(int(v) for v in p), max(1, int(r * (0.6 + 1.4 * t))),
                       float(1.0 - 0.6 * t), -1)
        smoke = cv2.GaussianBlur(smoke, (0, 0), max(1.0, r * 0.6))
        grey = rng.uniform(140, 215)
        _blend(img, np.clip(smoke, 0, 1) * rng.uniform(0.5, 0.8),
               np.array([grey, grey, grey * rng.uniform(0.95, 1.05)], np.float32))


def _scene_flood(rng, img, s):
    _roads(rng, img, s, rng.integers(0, 2))
    for _ in range(rng.integers(1, 5)):
        _building(rng, img, s)
    _trees(rng, img, s, rng.integers(1, 8))
    field_ = _smooth_noise(rng, s, rng.integers(2, 5))
    field_ += np.linspace(-0.3, 0.3, s, dtype=np.float32)[:, None] * rng.choice([-1, 1])
    coverage = rng.uniform(0.45, 0.85)
    thr = np.quantile(field_, 1.0 - coverage)
    water = np.clip((field_ - thr) * 12.0, 0, 1)
    muddy = np.array([rng.uniform(110, 150), rng.uniform(90, 120), rng.uniform(55, 80)], np.float32)
    blue = np.array([rng.uniform(50, 80), rng.uniform(80, 110), rng.uniform(110, 150)], np.float32)
    mix = rng.uniform(0.15, 1)
    color = muddy * (1 - mix) + blue * mix
    tex = color + (_smooth_noise(rng, s, 8)[..., None] - 0.5) * 20
    # reflections: light streaks along one direction plus sparkles
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    wave = np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * rng.uniform(0.6, 1.4)
                  + rng.uniform(0, 6.28))
    tex = tex + (np.clip(wave, 0.75, 1) - 0.75)[..., None] * rng.uniform(30, 80)
    tex = tex + (rng.random((s, s, 1)) > 0.985) * 60
    _blend(img, water * rng.uniform(0.85, 1.0), tex)
    for _ in range(rng.integers(0, 3)):               # submerged rooftops poking out
        _building(rng, img, s, 0.05, 0.12)


_SCENES = {"collapsed_building": _scene_collapsed, "fire": _scene_fire,
           "flood": _scene_flood, "normal": _scene_normal}


def _light(rng, img, s):
    gain = rng.uniform(0.75, 1.25) * rng.uniform(0.95, 1.05, 3)
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s - 0.5
    ang = rng.uniform(0, 2 * np.pi)
    grad = 1.0 + (xx * np.cos(ang) + yy * np.sin(ang)) * rng.uniform(0, 0.4)
    img = img * gain.astype(np.float32) * grad[..., None]
    if rng.random() < 0.15:                            # haze
        img = img * 0.8 + rng.uniform(150, 200) * 0.2
    if rng.random() < 0.3:                             # slight motion/focus blur
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 0.9))
    return img


def render_scene(class_name, image_size, rng):
    """One uint8 RGB scene of ``class_name``."""
    s = int(image_size)
    img = _ground(rng, s)
    _SCENES[class_name](rng, img, s)
    img = _light(rng, img, s)
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    if rng.random() < 0.5:                              # random 90-degree orientation
        img = np.rot90(img, int(rng.integers(1, 4)))
    return np.clip(img, 0, 255).astype(np.uint8)


def generate_emergency_scenes(per_class, image_size, seed):
    """Class-balanced synthetic scenes: (images uint8 [4*per_class, S, S, 3], labels int64,
    class_names). Image i of class c depends only on (seed, c, i)."""
    if per_class < 1 or image_size < 8:
        from tfuav.errors import TfuavError
        raise TfuavError(f"synthetic data needs per_class >= 1 and image_size >= 8, "
                         f"got per_class={per_class}, image_size={image_size}")
    s = int(image_size)
    images = np.empty((len(CLASS_NAMES) * per_class, s, s, 3), np.uint8)
    labels = np.empty(len(CLASS_NAMES) * per_class, np.int64)
    k = 0
    for c, name in enumerate(CLASS_NAMES):
        for i in range(per_class):
            rng = np.random.default_rng([int(seed), c, i])
            images[k] = render_scene(name, s, rng)
            labels[k] = c
            k += 1
    return images, labels, list(CLASS_NAMES)
