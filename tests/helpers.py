"""Shared test helpers."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import tfuav  # noqa: F401  (first: selects Keras 2)
import tensorflow as tf

# Real models nobody here trained (MLPerf Tiny visual wake words), beside the repository.
VWW_DIR = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "mlperf_tiny_vww"
REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None):
    """Run the `tfuav` command in a child process."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "tfuav", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or REPO, env=env, timeout=600)


def cli_build(work, config_text, target="cortex-m7"):
    """`tfuav build` with a small config written into `work`; returns the build directory."""
    config = Path(work) / "small.yaml"
    config.write_text(config_text)
    out = Path(work) / "build"
    result = run_cli("build", "--target", target, "--config", config, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def error_line(result):
    """The one 'error:' line of a failed command (exit status 2, no traceback)."""
    lines = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    return lines[0]


def convert_zoo_model(name, size=64):
    """A registered model with random weights and non-trivial BatchNorm, as int8 TFLite;
    returns (tflite bytes, the float representative images)."""
    from tfuav.convert import to_int8_tflite
    from tfuav.models import build_model
    model = build_model(name, (size, size, 3), 4)
    randomize_bn(model)
    rep = np.random.default_rng(0).uniform(0, 1, (4, size, size, 3)).astype(np.float32)
    return to_int8_tflite(model, rep), rep


def randomize_bn(model, seed=0):
    """Non-trivial BatchNorm statistics, so that folding them is actually exercised."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            n = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n),
                               rng.normal(0, 0.2, n), rng.uniform(0.5, 2.0, n)])


def small_cnn_tflite(size=32, classes=4):
    """A small int8 CNN (conv, depthwise, pooling, dense, softmax) with random weights."""
    from tfuav.convert import to_int8_tflite
    L = tf.keras.layers
    inp = tf.keras.Input((size, size, 3))
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(classes, activation="softmax")(x)
    rep = np.random.default_rng(0).uniform(0, 1, (8, size, size, 3)).astype(np.float32)
    return to_int8_tflite(tf.keras.Model(inp, out), rep)
