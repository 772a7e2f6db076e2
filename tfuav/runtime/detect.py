"""Decoding of a single-stage anchor-free (CenterNet-style) detection head, numpy only.

The head gives, on a grid `stride` times smaller than the input: a class heatmap [H, W, C]
(scores in [0, 1], e.g. after a sigmoid), box sizes [H, W, 2] as (w, h) and sub-cell offsets
[H, W, 2] as (dx, dy), both in grid cells. A detection is a heatmap cell that is the maximum
of its 3x3 neighbourhood (in its own class; equal neighbours all survive, as with a 3x3 max
pool), ranked by score: its centre is (x + dx, y + dy) cells, its box that centre +- size / 2,
and everything is scaled by `stride` into input-image pixels, clipped to the image.
"""
import numpy as np


def _peaks(heatmap):
    """Mask of cells equal to the maximum of their 3x3 neighbourhood (edges padded with -inf)."""
    h, w, _ = heatmap.shape
    padded = np.pad(heatmap, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    neighbourhood = np.max([padded[dy:dy + h, dx:dx + w]
                            for dy in range(3) for dx in range(3)], axis=0)
    return heatmap >= neighbourhood


def decode_centernet(heatmap, size, offset, stride, top_k=100, score_threshold=0.1,
                     image_size=None):
    """Returns (boxes float32 [N, 4] as x, y, w, h in input pixels, scores [N], classes [N]),
    best first, at most `top_k`, scores >= score_threshold. image_size (width, height) clips
    the boxes; default: the grid size times the stride."""
    heatmap = np.asarray(heatmap, np.float32)
    size = np.asarray(size, np.float32)
    offset = np.asarray(offset, np.float32)
    h, w, _ = heatmap.shape
    if size.shape != (h, w, 2) or offset.shape != (h, w, 2):
        raise ValueError(f"size {size.shape} and offset {offset.shape} must be ({h}, {w}, 2) "
                         f"like the heatmap's grid")
    scores = np.where(_peaks(heatmap), heatmap, -np.inf).ravel()
    order = np.argsort(-scores, kind="stable")[:top_k]
    order = order[scores[order] >= score_threshold]
    ys, xs, classes = np.unravel_index(order, heatmap.shape)
    cx = (xs + offset[ys, xs, 0]) * stride
    cy = (ys + offset[ys, xs, 1]) * stride
    bw, bh = size[ys, xs, 0] * stride, size[ys, xs, 1] * stride
    img_w, img_h = image_size if image_size is not None else (w * stride, h * stride)
    x0 = np.clip(cx - bw / 2, 0, img_w)
    y0 = np.clip(cy - bh / 2, 0, img_h)
    x1 = np.clip(cx + bw / 2, 0, img_w)
    y1 = np.clip(cy + bh / 2, 0, img_h)
    boxes = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.float32)
    return boxes, scores[order].astype(np.float32), classes.astype(np.int64)


def decode_head(output, num_classes, stride, top_k=100, score_threshold=0.1):
    """Decodes the output of a tfuav detector: one tensor [H, W, num_classes + 4], every
    channel a sigmoid in [0, 1]: the class heatmap, the box width and height as fractions of
    the input image's width and height, and the centre's sub-cell offset (dx, dy).

    The input image is (W * stride) x (H * stride) pixels. Returns what decode_centernet does.
    One value range for all channels lets a single int8 output tensor (scale 1/256) carry
    them all at full resolution.
    """
    output = np.asarray(output, np.float32)
    if output.ndim == 4 and output.shape[0] == 1:
        output = output[0]
    if output.ndim != 3 or output.shape[-1] != num_classes + 4:
        raise ValueError(f"detector output {output.shape} is not [H, W, {num_classes} + 4]")
    h, w, _ = output.shape
    size = output[..., num_classes:num_classes + 2] * np.array([w, h], np.float32)
    return decode_centernet(output[..., :num_classes], size,
                            output[..., num_classes + 2:], stride, top_k=top_k,
                            score_threshold=score_threshold)
