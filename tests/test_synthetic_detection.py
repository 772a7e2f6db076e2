"""The embedded synthetic detection scenes."""
import numpy as np
import pytest

from tfuav.data.synthetic_detection import DETECTION_CLASSES, generate_detection_scenes
from tfuav.errors import TfuavError


@pytest.fixture(scope="module")
def scenes():
    return generate_detection_scenes(24, 256, seed=3)


def test_deterministic_and_independent_of_count(scenes):
    images, anns, names = scenes
    again, anns2, _ = generate_detection_scenes(5, 256, seed=3)
    assert names == DETECTION_CLASSES
    assert np.array_equal(images[:5], again)
    for a, b in zip(anns[:5], anns2):
        assert np.array_equal(a["boxes"], b["boxes"]) and np.array_equal(a["labels"], b["labels"])
    other, _, _ = generate_detection_scenes(1, 256, seed=4)
    assert not np.array_equal(other[0], images[0])


def test_boxes_are_valid_mostly_small_and_of_every_class(scenes):
    images, anns, _ = scenes
    boxes = np.concatenate([a["boxes"] for a in anns])
    labels = np.concatenate([a["labels"] for a in anns])
    assert len(boxes) >= 24 * 5
    x, y, w, h = boxes.T
    assert (w >= 1).all() and (h >= 1).all()
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= 256).all() and (y + h <= 256).all()
    assert set(labels.tolist()) == set(range(len(DETECTION_CLASSES)))
    assert ((w * h) < 32 * 32).mean() > 0.7          # COCO "small" objects dominate
    assert (w * h).max() > 10 * np.median(w * h)     # and a few are much larger


def test_objects_are_clustered_not_uniform(scenes):
    """Clark-Evans ratio: mean nearest-neighbour distance over its value for uniformly random
    points of the same density (1 for uniform, < 1 for clustered)."""
    def ratio(c):
        d = np.linalg.norm(c[:, None] - c[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        return d.min(axis=1).mean() / (0.5 / np.sqrt(len(c) / 256.0 ** 2))

    _, anns, _ = scenes
    ratios = [ratio(a["boxes"][:, :2] + a["boxes"][:, 2:] / 2) for a in anns
              if len(a["boxes"]) >= 8]
    rng = np.random.default_rng(0)
    uniform = [ratio(rng.uniform(0, 256, (15, 2))) for _ in range(200)]
    assert np.median(uniform) > 0.95                 # the statistic itself: ~1 when uniform
    assert len(ratios) >= 8 and np.median(ratios) < 0.85


def test_boxes_hold_the_drawn_objects(scenes):
    """A box covers an object: its pixels differ from the ground just outside it."""
    images, anns, _ = scenes
    contrasts = []
    for img, a in zip(images, anns):
        for x, y, w, h in a["boxes"].astype(int):
            if w < 4 or h < 4:
                continue
            inner = img[y + 1:y + h - 1, x + 1:x + w - 1].reshape(-1, 3).astype(float)
            ring = img[max(0, y - 3):y + h + 3, max(0, x - 3):x + w + 3].astype(float)
            contrasts.append(np.abs(inner.mean(0) - np.median(ring.reshape(-1, 3), 0)).max())
    assert np.median(contrasts) > 10


def test_bad_arguments():
    with pytest.raises(TfuavError):
        generate_detection_scenes(0, 256)
