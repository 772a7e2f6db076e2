"""Affine int8/uint8 quantization of tensors with a model's (scale, zero point); numpy only.

The implementation lives in `tfuav.runtime.quant`, so that the TensorFlow-free runtime and the
training/conversion side quantize with the very same code.
"""
from tfuav.runtime.quant import dequantize, quantize

__all__ = ["dequantize", "quantize"]
