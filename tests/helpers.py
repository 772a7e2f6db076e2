"""Shared test helpers."""
from pathlib import Path

import numpy as np

import tfuav  # noqa: F401  (first: selects Keras 2)
import tensorflow as tf

# Real models nobody here trained (MLPerf Tiny visual wake words), beside the repository.
VWW_DIR = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "mlperf_tiny_vww"


def randomize_bn(model, seed=0):
    """Non-trivial BatchNorm statistics, so that folding them is actually exercised."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            n = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n),
                               rng.normal(0, 0.2, n), rng.uniform(0.5, 2.0, n)])
