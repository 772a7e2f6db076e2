"""Decoding of a single-stage anchor-free (CenterNet-style) detection head, numpy only.

The head gives, on a grid `stride` times smaller than the input: a class heatmap [H, W, C]
(scores in [0, 1], e.g. after a sigmoid), box sizes [H, W, 2] as (w, h) and sub-cell offsets
[H, W, 2] as (dx, dy), both in grid cells. A detection is a heatmap cell that is the maximum
of its 3x3 neighbourhood (in its own class; equal neighbours all survive, as with a 3x3 max
pool), ranked by score: its centre is (x + dx, y + dy) cells, its box that centre +- size / 2,
and everything is scaled by `stride` into input-image pixels, clipped to the image.

Every box value is computed in float32, one rounding per operation, in the order the
firmware's C decoder (firmware_export/detect/tfuav_detect.c) uses: on the same int8 output
both give bit-identical boxes (with the sigmoid's scale 1/256 every step is exact).
"""
import numpy as np

F32 = np.float32


def _peaks(heatmap, pad):
    """Mask of cells equal to the maximum of their 3x3 neighbourhood; `pad`, lower than any
    value, stands for the cells outside the grid."""
    h, w, _ = heatmap.shape
    padded = np.pad(heatmap, ((1, 1), (1, 1), (0, 0)), constant_values=pad)
    neighbourhood = np.max([padded[dy:dy + h, dx:dx + w]
                            for dy in range(3) for dx in range(3)], axis=0)
    return heatmap >= neighbourhood


def _ranked(keys, top_k, passes):
    """Flattened (y, x, class) indices of the best `top_k` keys (ties: lower index first)
    that pass, best first."""
    order = np.argsort(-keys.ravel(), kind="stable")[:top_k]
    return order[passes.ravel()[order]]


def _boxes(ys, xs, size, offset, stride, image_size):
    """[N, 4] float32 boxes (x, y, w, h) in pixels from cells, sizes and offsets in cells."""
    stride = F32(stride)
    img_w, img_h = (F32(v) for v in image_size)
    cx = (xs.astype(F32) + offset[ys, xs, 0]) * stride
    cy = (ys.astype(F32) + offset[ys, xs, 1]) * stride
    half_w = size[ys, xs, 0] * stride * F32(0.5)
    half_h = size[ys, xs, 1] * stride * F32(0.5)
    x0 = np.clip(cx - half_w, F32(0), img_w)
    y0 = np.clip(cy - half_h, F32(0), img_h)
    x1 = np.clip(cx + half_w, F32(0), img_w)
    y1 = np.clip(cy + half_h, F32(0), img_h)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(F32).reshape(-1, 4)


def decode_centernet(heatmap, size, offset, stride, top_k=100, score_threshold=0.1,
                     image_size=None):
    """Returns (boxes float32 [N, 4] as x, y, w, h in input pixels, scores [N], classes [N]),
    best first, at most `top_k`, scores >= score_threshold (compared in float32).
    image_size (width, height) clips the boxes; default: the grid size times the stride."""
    heatmap = np.asarray(heatmap, F32)
    size = np.asarray(size, F32)
    offset = np.asarray(offset, F32)
    h, w, _ = heatmap.shape
    if size.shape != (h, w, 2) or offset.shape != (h, w, 2):
        raise ValueError(f"size {size.shape} and offset {offset.shape} must be ({h}, {w}, 2) "
                         f"like the heatmap's grid")
    peaks = _peaks(heatmap, -np.inf)
    order = _ranked(np.where(peaks, heatmap, -np.inf), top_k,
                    peaks & (heatmap >= F32(score_threshold)))
    ys, xs, classes = np.unravel_index(order, heatmap.shape)
    boxes = _boxes(ys, xs, size, offset, stride,
                   image_size if image_size is not None else (w * stride, h * stride))
    return boxes, heatmap[ys, xs, classes], classes.astype(np.int64)


def _grid(output, num_classes):
    """The [H, W, num_classes + 4] grid of a detector output (batch axis of 1 dropped)."""
    output = np.asarray(output)
    if output.ndim == 4 and output.shape[0] == 1:
        output = output[0]
    if output.ndim != 3 or output.shape[-1] != num_classes + 4:
        raise ValueError(f"detector output {output.shape} is not [H, W, {num_classes} + 4]")
    return output


def decode_head(output, num_classes, stride, top_k=100, score_threshold=0.1):
    """Decodes the output of a tfuav detector: one tensor [H, W, num_classes + 4], every
    channel a sigmoid in [0, 1]: the class heatmap, the box width and height as fractions of
    the input image's width and height, and the centre's sub-cell offset (dx, dy).

    The input image is (W * stride) x (H * stride) pixels. Returns what decode_centernet does.
    One value range for all channels lets a single int8 output tensor (scale 1/256) carry
    them all at full resolution.
    """
    output = _grid(np.asarray(output, F32), num_classes)
    h, w, _ = output.shape
    size = output[..., num_classes:num_classes + 2] * np.array([w, h], F32)
    return decode_centernet(output[..., :num_classes], size,
                            output[..., num_classes + 2:], stride, top_k=top_k,
                            score_threshold=score_threshold)


def min_passing_level(dtype, scale, zero_point, score_threshold):
    """The smallest integer of `dtype` whose dequantised score, (q - zero_point) * scale in
    float32, is >= score_threshold; one more than the dtype's maximum when none is."""
    info = np.iinfo(dtype)
    levels = np.arange(info.min, info.max + 1)
    passing = (levels.astype(F32) - F32(zero_point)) * F32(scale) >= F32(score_threshold)
    return int(levels[passing][0]) if passing.any() else info.max + 1


def decode_head_int8(q, scale, zero_point, num_classes, stride, top_k=100, score_threshold=0.1):
    """decode_head on the quantized output itself (int8, or any integer type) with its scale
    (> 0) and zero point. Peaks, ranking and the threshold are decided on the integers, as the
    firmware's C decoder does; equal to decode_head(dequantize(q), ...)."""
    q = _grid(q, num_classes)
    if not np.issubdtype(q.dtype, np.integer):
        raise ValueError(f"decode_head_int8 takes the quantized output, got {q.dtype}")
    if not scale > 0:
        raise ValueError(f"output scale must be > 0, got {scale}")
    h, w, _ = q.shape
    heat = q[..., :num_classes].astype(np.int32)
    min_q = min_passing_level(q.dtype, scale, zero_point, score_threshold)
    lowest = np.iinfo(q.dtype).min - 1
    keys = np.where(_peaks(heat, lowest), heat, lowest)
    order = _ranked(keys, top_k, keys >= min_q)
    ys, xs, classes = np.unravel_index(order, heat.shape)
    real = (q.astype(F32) - F32(zero_point)) * F32(scale)
    size = real[..., num_classes:num_classes + 2] * np.array([w, h], F32)
    boxes = _boxes(ys, xs, size, real[..., num_classes + 2:], stride, (w * stride, h * stride))
    return boxes, real[ys, xs, classes], classes.astype(np.int64)
