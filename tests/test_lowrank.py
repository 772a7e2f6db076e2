"""Low-rank factorization of pointwise convolutions."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import numpy as np
import pytest
import tensorflow as tf

from tfuav.compress import factorize_pointwise
from tfuav.convert import assert_graph_ok, tflite_info, to_int8_tflite
from tfuav.errors import TfuavError
from tfuav.models.stats import count_macs
from tfuav.validate import cross_validate, make_validation_inputs

keras = tf.keras
L = keras.layers


def model_with_pointwise():
    """1x1 convs 24 -> 40 (BN, ReLU6) and 40 -> 32 (stride 2), a grouped 1x1 and a 3x3 conv
    (never factorized), and a small 1x1 (8 -> 4) below min_channels."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 24), name="image")
    x = L.Conv2D(40, 1, name="expand")(inp)
    x = L.ReLU(6.0)(L.BatchNormalization(name="expand_bn")(x))
    x = L.Conv2D(32, 1, strides=2, activation="relu", name="project")(x)
    x = L.Conv2D(32, 1, groups=4, name="grouped")(x)
    x = L.Conv2D(8, 3, padding="same", name="spatial")(x)
    out = L.Conv2D(4, 1, name="small")(x)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    bn = model.get_layer("expand_bn")
    bn.set_weights([rng.uniform(0.5, 1.5, 40), rng.normal(0, 0.2, 40), rng.normal(0, 0.2, 40),
                    rng.uniform(0.5, 2.0, 40)])
    for name in ("expand", "project"):
        layer = model.get_layer(name)
        layer.set_weights([layer.kernel.numpy(), rng.normal(0, 0.1, layer.bias.shape)])
    return model


def _x(n=4):
    return np.random.default_rng(1).uniform(-1, 1, (n, 12, 12, 24)).astype(np.float32)


def _product(model, name):
    first = model.get_layer(f"{name}_reduce").kernel.numpy()[0, 0].astype(np.float64)
    second = model.get_layer(name).kernel.numpy()[0, 0].astype(np.float64)
    return first @ second


def test_full_rank_reproduces_the_model():
    model = model_with_pointwise()
    factored, ranks = factorize_pointwise(model, rank=1000, only_if_cheaper=False)
    assert ranks == {"expand": 24, "project": 32}
    x = _x()
    np.testing.assert_allclose(factored(x, training=False), model(x, training=False),
                               atol=1e-5, rtol=0)
    assert factored.get_layer("expand_reduce").bias is None       # the bias is on the second
    np.testing.assert_array_equal(factored.get_layer("project").bias.numpy(),
                                  model.get_layer("project").bias.numpy())


@pytest.mark.parametrize("rank", [4, 11])
def test_rank_r_error_is_the_discarded_singular_values(rank):
    model = model_with_pointwise()
    factored, ranks = factorize_pointwise(model, rank=rank)
    assert ranks == {"expand": rank, "project": rank}
    for name in ranks:
        w = model.get_layer(name).kernel.numpy()[0, 0].astype(np.float64)
        s = np.linalg.svd(w, compute_uv=False)
        error = np.linalg.norm(w - _product(factored, name))
        assert error == pytest.approx(np.sqrt((s[rank:] ** 2).sum()), rel=1e-4)
        # no rank-r matrix does better: a random rank-r one is worse
        rng = np.random.default_rng(0)
        q = np.linalg.qr(rng.normal(size=(w.shape[1], rank)))[0]
        assert error < np.linalg.norm(w - w @ q @ q.T)
    # MACs by hand: expand at 12x12, project at 6x6 (stride 2 on the first factor)
    saved = 12 * 12 * (24 * 40 - rank * (24 + 40)) + 6 * 6 * (40 * 32 - rank * (40 + 32))
    assert count_macs(model) - count_macs(factored) == saved
    # grouped, 3x3 and the small 1x1 are left alone
    for name in ("grouped", "spatial", "small"):
        np.testing.assert_array_equal(factored.get_layer(name).kernel.numpy(),
                                      model.get_layer(name).kernel.numpy())


def test_energy_picks_the_smallest_rank_and_only_where_it_saves():
    model = model_with_pointwise()
    _, ranks = factorize_pointwise(model, energy=0.9)
    for name, (c_in, c_out) in {"expand": (24, 40), "project": (40, 32)}.items():
        s = np.linalg.svd(model.get_layer(name).kernel.numpy()[0, 0], compute_uv=False)
        energy = np.cumsum(s ** 2) / np.sum(s ** 2)
        r = int(np.argmax(energy >= 0.9)) + 1
        if r * (c_in + c_out) < c_in * c_out:
            assert ranks[name] == r
        else:
            assert name not in ranks
    _, ranks = factorize_pointwise(model, rank=16)   # 16 (24 + 40) > 24 x 40: not cheaper
    assert ranks == {"project": 16}                  # 16 (40 + 32) < 40 x 32
    with pytest.raises(TfuavError, match="rank must be at least 1"):
        factorize_pointwise(model, rank=0)


def test_factorized_model_converts_to_int8():
    model = model_with_pointwise()
    factored, _ = factorize_pointwise(model, rank=8)
    x = _x(8)
    tflite = to_int8_tflite(factored, x)
    assert_graph_ok(tflite)
    assert tflite_info(tflite)["macs"] == count_macs(factored)
    assert cross_validate(tflite, make_validation_inputs(tflite)).passed
