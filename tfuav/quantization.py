"""Affine int8/uint8 quantization of tensors with a model's (scale, zero point); numpy only."""
import numpy as np


def quantize(x, scale, zero_point, dtype):
    """Real values to `dtype`; float dtypes (or scale 0, i.e. no quantization) pass through."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer) or not scale:
        return np.asarray(x).astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(np.asarray(x) / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q, scale, zero_point):
    if not np.issubdtype(np.asarray(q).dtype, np.integer) or not scale:
        return np.asarray(q).astype(np.float32)
    return (np.asarray(q).astype(np.float32) - zero_point) * scale
