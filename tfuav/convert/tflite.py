"""Keras -> full-integer int8 TFLite (TFLITE_BUILTINS_INT8 only, per-channel weights)."""
import contextlib
import logging
import os
import re
import tempfile
import warnings

import numpy as np

import tfuav  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from tfuav.errors import TfuavError


class ConversionError(TfuavError):
    """The TFLite converter refused the model."""


@contextlib.contextmanager
def _quiet_stderr():
    """Send fd 2 (where the MLIR converter writes its C++ logs) to a temp file.

    Yields a callable returning what was captured, so a failure can still be explained."""
    captured = tempfile.TemporaryFile(mode="w+b")
    saved = None
    try:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
    except OSError:  # no real fd 2 (some embedded hosts): just don't redirect
        saved = None

    def read():
        captured.flush()
        captured.seek(0)
        return captured.read().decode(errors="replace")

    try:
        yield read
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)


_OP_PATTERNS = (
    re.compile(r"'((?:tf|tfl|mhlo|stablehlo)\.[A-Za-z0-9_]+)' op"),
    re.compile(r"\b(?:op|ops?:)\s+'?((?:tf|tfl)\.[A-Za-z0-9_]+)"),
    re.compile(r"\b((?:tf|tfl)\.[A-Za-z0-9_]+)\b"),
)


def _first_failing_op(message):
    for pattern in _OP_PATTERNS:
        m = pattern.search(message)
        if m:
            return m.group(1)
    return None


def _one_line(message, limit=300):
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    # prefer the line that carries an "error:" from MLIR
    for ln in lines:
        if "error:" in ln:
            text = ln[ln.index("error:") + len("error:"):].strip()
            break
    else:
        text = lines[0] if lines else type(message).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def to_int8_tflite(model, representative, float_io=False):
    """Convert a Keras model to int8 TFLite bytes.

    representative: float32 NHWC array of already-preprocessed samples (fed one per batch).
    float_io: keep float32 input/output (QUANTIZE/DEQUANTIZE at the graph edges); otherwise
    the graph input and output are int8.
    """
    rep = np.asarray(representative, dtype=np.float32)
    if rep.ndim < 2 or len(rep) == 0:
        raise TfuavError("representative data must be a non-empty batch of samples (N, H, W, C)")
    expected = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if expected is not None and tuple(rep.shape[1:]) != tuple(
            d if d is not None else rep.shape[1 + i] for i, d in enumerate(expected)):
        raise TfuavError(f"representative data has sample shape {tuple(rep.shape[1:])}, "
                         f"the model expects {expected}")

    import tensorflow as tf

    def representative_dataset():
        for i in range(len(rep)):
            yield [rep[i:i + 1]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8

    tf_logger = tf.get_logger()
    old_level = tf_logger.level
    absl_logger = logging.getLogger("absl")
    old_absl = absl_logger.level
    tf_logger.setLevel(logging.ERROR)
    absl_logger.setLevel(logging.ERROR)
    try:
        with _quiet_stderr() as captured, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return bytes(converter.convert())
            except Exception as exc:  # the converter raises ConverterError and friends
                message = f"{exc}\n{captured()}"
                op = _first_failing_op(message)
                where = f" at op {op}" if op else ""
                raise ConversionError(
                    f"int8 TFLite conversion failed{where}: {_one_line(exc)}") from None
    finally:
        tf_logger.setLevel(old_level)
        absl_logger.setLevel(old_absl)
