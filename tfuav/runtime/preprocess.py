"""Model input preprocessing shared by training, conversion and the Pi / Coral runtime.

This module imports only numpy: `tfuav.data.preprocess` re-exports it for the training side.
"""
import numpy as np


def preprocess(images_uint8):
    """uint8 RGB images (any shape) -> float32 in [0, 1]: exactly ``images / 255.0`` as float32."""
    return (np.asarray(images_uint8) / 255.0).astype(np.float32)
