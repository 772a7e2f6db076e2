import tfuav  # noqa: F401  (before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf

from tfuav.compress import fold_batchnorm, prune_magnitude, quantize_aware, sparsity_report
from tfuav.config import TrainConfig
from tfuav.data import Dataset, Split
from tfuav.models import build_model

keras = tf.keras
SIZE = 64  # the smallest input GlimmerNet builds at (five 2x reductions before its last pool)


def data(n=16):
    rng = np.random.default_rng(0)
    split = Split(images=rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8),
                  labels=(np.arange(n) % 2).astype(np.int64))
    return Dataset(class_names=["a", "b"], splits={"train": split}, source="test")


def glimmernet_with_bn_stats():
    keras.utils.set_random_seed(0)
    model = build_model("glimmernet", (SIZE, SIZE, 3), 2)
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.uniform(-0.2, 0.2, n),
                               rng.uniform(-0.2, 0.2, n), rng.uniform(0.5, 2.0, n)])
    return model


def test_fold_batchnorm_equivalent():
    model = glimmernet_with_bn_stats()
    folded = fold_batchnorm(model)
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in folded.layers)
    x = np.random.default_rng(2).random((4, SIZE, SIZE, 3), dtype=np.float32)
    np.testing.assert_allclose(folded(x, training=False), model(x, training=False), atol=1e-4)


@pytest.mark.slow
def test_pruning_reaches_target():
    model = build_model("glimmernet", (SIZE, SIZE, 3), 2)
    cfg = TrainConfig(batch_size=8, learning_rate=1e-4)
    pruned = prune_magnitude(model, data(), cfg, 0.5, epochs=2, progress=False, augment=False)
    report = sparsity_report(pruned)
    assert report["overall"] == pytest.approx(0.5, abs=0.02)
    # custom dilated convolutions are pruned too
    assert report["layers"]["stem_conv"] == pytest.approx(0.5, abs=0.02)
    assert report["layers"]["stage2_block0_dw1"] == pytest.approx(0.5, abs=0.02)
    assert [type(l) for l in pruned.layers] == [type(l) for l in model.layers]
    assert np.isfinite(pruned.predict(np.zeros((1, SIZE, SIZE, 3)), verbose=0)).all()


@pytest.mark.slow
def test_qat_converts_to_all_int8():
    model = glimmernet_with_bn_stats()
    cfg = TrainConfig(batch_size=8, learning_rate=1e-4)
    qat = quantize_aware(model, data(), cfg, epochs=1, progress=False, augment=False)
    x = np.random.default_rng(3).random((8, SIZE, SIZE, 3), dtype=np.float32)
    from tfuav.convert import assert_graph_ok, tflite_info, to_int8_tflite
    from tfuav.validate import cross_validate, make_validation_inputs
    tflite = to_int8_tflite(qat, x)
    assert_graph_ok(tflite)  # int8 only: no float op, no DEQUANTIZE, BN folded, ReLU fused
    ops = tflite_info(tflite)["op_histogram"]
    for op in ("DEPTHWISE_CONV_2D", "CONV_2D", "SPLIT", "GATHER", "L2_NORMALIZATION"):
        assert op in ops, ops
    result = cross_validate(tflite, make_validation_inputs(tflite, real_images_float=x[:2]))
    assert result.passed, result.summary()
