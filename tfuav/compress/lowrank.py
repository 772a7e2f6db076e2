"""Low-rank factorization of pointwise convolutions: a dense (groups=1) 1x1 Conv2D with
kernel W (C_in x C_out) becomes two thin 1x1 convolutions, C_in -> r without bias and
r -> C_out with the bias and activation, from the truncated SVD W ~ U_r S_r V_r^T (split as
U_r sqrt(S_r) and sqrt(S_r) V_r^T, so both factors have the same scale in int8). By
Eckart-Young this is the best rank-r approximation in the Frobenius norm; its error is the
norm of the discarded singular values. MACs per pixel drop from C_in C_out to r (C_in + C_out).
"""
import numpy as np
import tensorflow as tf

from tfuav.compress.graph import Graph, clone_layer, weight_name
from tfuav.errors import TfuavError

keras = tf.keras


def _pointwise(layer):
    return (type(layer) is keras.layers.Conv2D and tuple(layer.kernel_size) == (1, 1)
            and layer.groups == 1 and tuple(layer.dilation_rate) == (1, 1)
            and layer.data_format == "channels_last")


def choose_rank(singular_values, rank=None, energy=0.9):
    """`rank` (capped at the full rank), or the smallest rank keeping `energy` of the sum of
    squared singular values."""
    s = np.asarray(singular_values, np.float64)
    if rank is not None:
        return int(min(max(1, rank), len(s)))
    total = float((s ** 2).sum())
    if total == 0:
        return 1
    kept = np.cumsum(s ** 2) / total
    return int(min(len(s), np.searchsorted(kept, energy - 1e-12) + 1))


def factorize_pointwise(model, rank=None, energy=0.9, min_channels=8, only_if_cheaper=True):
    """Rebuild `model` with every eligible 1x1 convolution factorized (see the module
    docstring). A layer is eligible when it is a plain Conv2D, 1x1, groups 1, with
    min(C_in, C_out) >= min_channels, and (only_if_cheaper) the rank saves MACs:
    r (C_in + C_out) < C_in C_out. The second convolution keeps the layer's name; the first
    is named `<name>_reduce`. Returns (model, {layer name: rank})."""
    if rank is None and not 0.0 < energy <= 1.0:
        raise TfuavError(f"energy must be in (0, 1], got {energy}")
    if rank is not None and int(rank) < 1:
        raise TfuavError(f"rank must be at least 1, got {rank}")
    graph = Graph.from_model(model)
    names = {layer.name for layer in model.layers}
    ranks = {}

    def call(node, args, kwargs):
        layer = node.layer
        if not _pointwise(layer) or node.shared:
            return clone_layer(layer)(*args, **kwargs)
        weights = {weight_name(w): w.numpy() for w in layer.weights}
        w = weights["kernel"][0, 0].astype(np.float64)  # (C_in, C_out)
        c_in, c_out = w.shape
        if min(c_in, c_out) < min_channels:
            return clone_layer(layer)(*args, **kwargs)
        u, s, vt = np.linalg.svd(w, full_matrices=False)
        r = choose_rank(s, rank, energy)
        if only_if_cheaper and r * (c_in + c_out) >= c_in * c_out:
            return clone_layer(layer)(*args, **kwargs)
        root = np.sqrt(s[:r])
        first = (u[:, :r] * root).astype(np.float32).reshape(1, 1, c_in, r)
        second = (root[:, None] * vt[:r]).astype(np.float32).reshape(1, 1, r, c_out)
        config = layer.get_config()
        reduce_name = f"{layer.name}_reduce"
        while reduce_name in names:
            reduce_name += "_"
        names.add(reduce_name)
        reduce_config = dict(config, name=reduce_name, filters=r, use_bias=False,
                             activation="linear", activity_regularizer=None)
        reduce = clone_layer(layer, reduce_config, [first])
        expand_config = dict(config, filters=c_out, strides=(1, 1), padding="valid")
        expand_weights = [second] + ([weights["bias"]] if layer.use_bias else [])
        expand = clone_layer(layer, expand_config, expand_weights)
        ranks[layer.name] = r
        x = reduce(*args, **kwargs)
        return expand(x)

    return graph.rebuild(call), ranks
