"""CenterNet-style decoding in tfuav.runtime, on hand-built head outputs."""
import numpy as np
import pytest

from tfuav.runtime.detect import decode_centernet


def _head(h=8, w=10, c=2):
    return np.zeros((h, w, c), np.float32), np.zeros((h, w, 2), np.float32), \
        np.zeros((h, w, 2), np.float32)


def test_two_objects_decode_to_their_boxes():
    heat, size, off = _head()
    heat[2, 3, 0] = 0.9                        # class 0 at cell (x=3, y=2)
    size[2, 3] = (2.0, 1.0)
    off[2, 3] = (0.5, 0.25)
    heat[6, 8, 1] = 0.7                        # class 1 at cell (x=8, y=6)
    size[6, 8] = (1.0, 3.0)
    heat[6, 7, 1] = 0.4                        # its neighbour: not a peak
    boxes, scores, classes = decode_centernet(heat, size, off, stride=4)
    # centre (3.5, 2.25) cells = (14, 9) px; size (8, 4) px -> x 10..18, y 7..11
    # centre (8, 6) cells = (32, 24) px; size (4, 12) px -> x 30..34, y 18..30
    np.testing.assert_allclose(boxes, [[10, 7, 8, 4], [30, 18, 4, 12]])
    np.testing.assert_allclose(scores, [0.9, 0.7])
    assert classes.tolist() == [0, 1]


def test_peaks_are_per_class_and_ties_survive():
    heat, size, off = _head()
    heat[4, 4, 0] = 0.8
    heat[4, 5, 1] = 0.8                        # other class next to it: both are peaks
    heat[1, 1, 0] = heat[1, 2, 0] = 0.5        # equal neighbours: both survive
    _, scores, classes = decode_centernet(heat, size, off, stride=1)
    assert sorted(zip(scores.astype(float).round(3).tolist(), classes.tolist())) == [
        (0.5, 0), (0.5, 0), (0.8, 0), (0.8, 1)]


def test_top_k_threshold_and_clipping():
    heat, size, off = _head()
    for k, v in enumerate([0.95, 0.6, 0.3, 0.05]):
        heat[0, 2 * k, 0] = v
    size[0, 0] = (4.0, 4.0)                    # sticks out of the image at the top-left
    boxes, scores, _ = decode_centernet(heat, size, off, stride=2, top_k=2)
    np.testing.assert_allclose(scores, [0.95, 0.6])
    np.testing.assert_allclose(boxes[0], [0, 0, 4, 4])   # centre (0,0) px, +-4 px, clipped
    _, scores, _ = decode_centernet(heat, size, off, stride=2, score_threshold=0.2)
    np.testing.assert_allclose(scores, [0.95, 0.6, 0.3])
    with pytest.raises(ValueError):
        decode_centernet(heat, size[:, :5], off, stride=2)
