"""Network-slimming sparsity training: an L1 penalty on every BatchNorm gamma and every
ConnectionScale scale drives the channels and connections the task does not need towards 0,
where channel pruning (prune_channels) removes them nearly exactly.

The penalty lives on a clone of the model (model.add_loss with callables), so any trainer
that minimises model.losses with its own loss (Keras fit, tfuav.train.loop.fit_model, the
detector trainer) trains sparsely; remove_slimming_penalty gives a clone without it.
"""
import tensorflow as tf

from tfuav.models.layers import ConnectionScale

keras = tf.keras


def _clone(model):
    from tfuav.models.layers import CUSTOM_OBJECTS
    with keras.utils.custom_object_scope(CUSTOM_OBJECTS):
        clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def slimming_variables(model):
    """(BatchNorm gammas, ConnectionScale scales) of the model."""
    gammas, scales = [], []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and layer.scale:
            gammas.append(layer.gamma)
        elif isinstance(layer, ConnectionScale):
            scales.append(layer.scale)
    return gammas, scales


def add_slimming_penalty(model, l1=1e-4, connection_l1=None):
    """A clone of `model` (same weights) whose losses include l1 x sum |gamma| over its
    BatchNorms and connection_l1 (default: l1) x sum |scale| over its ConnectionScales."""
    if l1 < 0 or (connection_l1 is not None and connection_l1 < 0):
        raise ValueError("slimming penalties must be >= 0")
    connection_l1 = l1 if connection_l1 is None else connection_l1
    clone = _clone(model)
    gammas, scales = slimming_variables(clone)
    if gammas and l1:
        clone.add_loss(lambda: l1 * tf.add_n([tf.reduce_sum(tf.abs(g)) for g in gammas]))
    if scales and connection_l1:
        clone.add_loss(lambda: connection_l1 * tf.add_n([tf.abs(s) for s in scales]))
    return clone


def remove_slimming_penalty(model):
    """A clone of `model` (same weights) without the penalty (nor any other added loss)."""
    return _clone(model)
