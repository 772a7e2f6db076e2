"""Affine int8/uint8 quantization of tensors with a model's (scale, zero point); numpy only.

This is the canonical implementation: training, conversion, validation and the Pi runtime all
quantize model inputs and dequantize model outputs with these two functions.
"""
import numpy as np


def quantize(x, scale, zero_point, dtype):
    """Real values to `dtype`; float dtypes (or scale 0, i.e. no quantization) pass through.

    q = clip(round(x / scale) + zero_point) to the range of the integer dtype; numpy's round
    (half to even) is the rounding TFLite's own QUANTIZE op uses for float inputs.
    """
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer) or not scale:
        return np.asarray(x).astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(np.asarray(x) / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q, scale, zero_point):
    """Integer tensor back to float32 real values; float tensors (or scale 0) pass through."""
    if not np.issubdtype(np.asarray(q).dtype, np.integer) or not scale:
        return np.asarray(q).astype(np.float32)
    return (np.asarray(q).astype(np.float32) - zero_point) * scale
