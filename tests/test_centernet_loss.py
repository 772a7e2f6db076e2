"""CenterNet targets and loss (tfuav.losses) against hand-computed cases."""
import math

import numpy as np
import pytest

import tfuav  # noqa: F401  (first: selects Keras 2)
from tfuav.losses import centernet_losses, draw_gaussian, encode_targets, gaussian_radius

C = 4  # classes


def test_radius_rule_by_hand():
    # 8 x 8 cells, IoU 0.7. Case 3 (both corners inside) is the smallest:
    # 4m r^2 - 2m (h + w) r + (m - 1) w h = 0, root (b + sqrt(b^2 - 4ac)) / 2 as released:
    # a = 2.8, b = -22.4, c = -19.2 -> (-22.4 + sqrt(501.76 + 215.04)) / 2
    assert gaussian_radius(8, 8) == pytest.approx((-22.4 + math.sqrt(716.8)) / 2)   # 2.1866
    # 2 x 3 cells: case 3 again, a = 2.8, b = -7, c = -1.8
    assert gaussian_radius(3, 2) == pytest.approx((-7 + math.sqrt(49 + 20.16)) / 2)  # 0.658
    # a long thin box: case 3 still the smallest, and growing with the box
    assert gaussian_radius(1, 20) < gaussian_radius(2, 20)


def test_single_box_targets():
    # box 32 x 32 px at (17, 9) in a 64 x 64 image, stride 4: centre (33, 25) px = (8.25, 6.25)
    # cells -> peak at cell x 8, y 6; offset (0.25, 0.25); size 0.5 x 0.5 of the image;
    # 8 x 8 cells -> radius int(2.19) = 2, sigma = 5 / 6
    t = encode_targets([[17, 9, 32, 32]], [2], 64, 4, C)
    assert t.shape == (16, 16, C + 5) and t.dtype == np.float32
    heat = t[..., 2]
    assert heat[6, 8] == 1.0
    assert np.argmax(heat) == 6 * 16 + 8 and np.count_nonzero(heat == 1.0) == 1
    two_sigma2 = 2 * (5 / 6) ** 2
    assert heat[6, 9] == pytest.approx(math.exp(-1 / two_sigma2), rel=1e-6)    # 0.4868
    assert heat[5, 8] == pytest.approx(math.exp(-1 / two_sigma2), rel=1e-6)
    assert heat[7, 9] == pytest.approx(math.exp(-2 / two_sigma2), rel=1e-6)    # 0.2369
    assert heat[6, 10] == pytest.approx(math.exp(-4 / two_sigma2), rel=1e-6)   # 0.0561
    assert heat[8, 10] == pytest.approx(math.exp(-8 / two_sigma2), rel=1e-6)   # window corner
    assert heat[6, 11] == 0 and heat[9, 8] == 0                                # outside r = 2
    assert np.count_nonzero(heat) == 25
    assert not t[..., [0, 1, 3]].any()                                        # other classes
    np.testing.assert_allclose(t[6, 8, C:C + 4], [0.5, 0.5, 0.25, 0.25])
    mask = t[..., C + 4]
    assert mask[6, 8] == 1 and mask.sum() == 1
    assert np.count_nonzero(t[..., C:C + 4]) == 4                             # only at the centre


def test_small_box_is_one_cell_and_boxes_merge_by_maximum():
    # a 5 x 6 px car at (40, 0) in a 64 x 48 (w x h) image: centre (42.5, 3) -> cell (10, 0),
    # offset (0.625, 0.75); 1.25 x 1.5 cells -> radius 0: just the peak
    t = encode_targets([[40, 0, 5, 6], [0, 0, 64, 48]], [1, 1], (64, 48), 4, C)
    assert t.shape == (12, 16, C + 5)
    np.testing.assert_allclose(t[0, 10, C:C + 4], [5 / 64, 6 / 48, 0.625, 0.75])
    assert t[0, 10, 1] == 1.0
    # the big box's Gaussian is under the small one's peak; both peaks survive
    assert t[6, 8, 1] == 1.0 and t[..., C + 4].sum() == 2
    # nothing for boxes without area
    assert not encode_targets([[3, 3, 0, 5]], [0], 64, 4, C).any()


def test_draw_gaussian_clips_at_the_border():
    heat = np.zeros((4, 5))
    draw_gaussian(heat, 0, 0, 2)
    assert heat[0, 0] == 1.0 and heat[0, 2] == pytest.approx(math.exp(-4 / (2 * (5 / 6) ** 2)))
    assert heat[3, 3] == 0 and heat.shape == (4, 5)


def _outputs(targets):
    """A prediction equal to the targets' size/offset channels, heatmap all zeros."""
    out = np.zeros(targets.shape[:-1] + (C + 4,), np.float32)
    out[..., C:] = targets[..., C:C + 4]
    return out


def test_perfect_prediction_costs_nothing():
    t = encode_targets([[17, 9, 32, 32], [2, 40, 6, 5]], [2, 0], 64, 4, C)[None]
    out = _outputs(t)
    out[..., :C] = (t[..., :C] == 1.0)                 # 1 at the peaks, 0 elsewhere
    losses = {k: float(v) for k, v in centernet_losses(t, out, C).items()}
    assert losses["heatmap"] < 1e-6
    assert losses["size"] == 0 and losses["offset"] == 0 and losses["total"] < 1e-6


def test_focal_size_and_offset_by_hand():
    t = encode_targets([[17, 9, 32, 32]], [2], 64, 4, C)[None]
    out = _outputs(t)
    out[0, 6, 8, 2] = 0.5                              # the peak, predicted 0.5
    out[0, 6, 9, 2] = 0.2                              # a neighbour, target g = 0.4868
    out[0, 6, 8, C:C + 2] += [0.05, -0.1]              # size off by 0.8 and 1.6 cells
    out[0, 6, 8, C + 2] += 0.1                         # dx off by 0.1 cell
    g = math.exp(-1 / (2 * (5 / 6) ** 2))
    # positive: -(1 - p)^2 log p; negative: -(1 - g)^4 p^2 log(1 - p); one object.
    # Everything else is predicted 0, clipped to 1e-4: each costs 1e-8 * 1e-4, negligible.
    heat = 0.25 * math.log(2) + (1 - g) ** 4 * 0.04 * -math.log(0.8)
    size = (0.05 * 16 + 0.1 * 16) / 2                 # mean L1 in cells
    offset = 0.1 / 2
    losses = {k: float(v) for k, v in
              centernet_losses(t, out, C, size_weight=0.1, offset_weight=1.0).items()}
    assert losses["heatmap"] == pytest.approx(heat, rel=1e-4)
    assert losses["size"] == pytest.approx(size, rel=1e-5)
    assert losses["offset"] == pytest.approx(offset, rel=1e-5)
    assert losses["total"] == pytest.approx(heat + 0.1 * size + offset, rel=1e-4)


def test_losses_are_normalised_by_the_objects_of_the_batch():
    one = encode_targets([[17, 9, 32, 32]], [2], 64, 4, C)
    batch = np.stack([one, one])
    out = _outputs(batch)
    out[:, 6, 8, 2] = 0.5
    out[:, 6, 8, C] += 0.05
    single = centernet_losses(one[None], out[:1], C)
    double = centernet_losses(batch, out, C)
    for key in ("heatmap", "size", "offset"):
        assert float(double[key]) == pytest.approx(float(single[key]), rel=1e-5)
    empty = centernet_losses(np.zeros_like(batch), np.full(out.shape, 0.5, np.float32), C)
    # no objects: the count is taken as 1; every cell is a negative with p = 0.5
    assert float(empty["heatmap"]) == pytest.approx(2 * 16 * 16 * C * 0.25 * math.log(2),
                                                     rel=1e-5)
    assert float(empty["size"]) == 0 and float(empty["offset"]) == 0
