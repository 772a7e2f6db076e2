"""Magnitude pruning (tfmot) of the conv / depthwise / dense kernels, custom convs included."""
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from tfuav.models.layers import DilatedConv2D, DilatedDepthwiseConv2D

keras = tf.keras
sparsity = tfmot.sparsity.keras


class _PrunableDilatedDepthwiseConv2D(DilatedDepthwiseConv2D, sparsity.PrunableLayer):
    def get_prunable_weights(self):
        return [self.depthwise_kernel]


class _PrunableDilatedConv2D(DilatedConv2D, sparsity.PrunableLayer):
    def get_prunable_weights(self):
        return [self.kernel]


class _PrunableDepthwiseConv2D(keras.layers.DepthwiseConv2D, sparsity.PrunableLayer):
    def get_prunable_weights(self):
        return [self.depthwise_kernel]


# tfmot's registry lists DepthwiseConv2D with no prunable weight (it is left dense), and does
# not know the model-zoo layers. The model-zoo layers are not edited for tfmot: while pruning they are swapped for these
# subclasses (same weights, same call), and swapped back after strip_pruning.
_PRUNABLE = {DilatedDepthwiseConv2D: _PrunableDilatedDepthwiseConv2D,
             DilatedConv2D: _PrunableDilatedConv2D,
             keras.layers.DepthwiseConv2D: _PrunableDepthwiseConv2D}
_BASE = {v: k for k, v in _PRUNABLE.items()}
_BUILTIN = (keras.layers.Conv2D, keras.layers.Dense)


def _swap_class(layer, mapping):
    cls = mapping.get(type(layer))
    if cls is None:
        return layer.__class__.from_config(layer.get_config())
    return cls.from_config(layer.get_config())


def _schedule(target, steps):
    if steps <= 1:
        return sparsity.ConstantSparsity(target, begin_step=0, frequency=1)
    # About 20 mask updates, the last one exactly at the final step (end_step), so the
    # target sparsity is reached before the fine-tuning ends.
    frequency = max(1, (steps - 1) // 20)
    end_step = (steps - 1) // frequency * frequency
    return sparsity.PolynomialDecay(initial_sparsity=0.0, final_sparsity=target,
                                    begin_step=0, end_step=end_step, frequency=frequency)


def _clone(model, fn):
    clone = keras.models.clone_model(model, clone_function=fn)
    clone.set_weights(model.get_weights())
    return clone


def prune_magnitude(model, dataset, train_cfg, target_sparsity, epochs, progress=True,
                    augment=True):
    """Fine-tunes `model` for `epochs` epochs while pruning every conv / depthwise / dense
    kernel (custom dilated convs included) to `target_sparsity` of zeros; returns the stripped
    model (plain layers, zeros in the kernels)."""
    from tfuav.train.loop import fit_model

    if not 0.0 < target_sparsity < 1.0:
        raise ValueError(f"target sparsity must be in (0, 1), got {target_sparsity}")
    n = len(dataset.splits["train"].labels)
    steps = max(1, epochs * -(-n // train_cfg.batch_size))
    schedule = _schedule(float(target_sparsity), steps)

    prunable = _clone(model, lambda layer: _swap_class(layer, _PRUNABLE))

    def wrap(layer):
        if isinstance(layer, _BUILTIN + tuple(_BASE)):
            return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    wrapped = keras.models.clone_model(prunable, clone_function=wrap)
    fit_model(wrapped, dataset, train_cfg, epochs, callbacks=[sparsity.UpdatePruningStep()],
              augment=augment, progress=progress)
    # The last optimizer step moves the weights after the last forward pass masked them
    # (momentum, weight decay): apply the final masks before stripping.
    for layer in wrapped.layers:
        for weight, mask, _ in getattr(layer, "pruning_vars", []):
            weight.assign(weight * mask)
    stripped = sparsity.strip_pruning(wrapped)
    return _clone(stripped, lambda layer: _swap_class(layer, _BASE))


def _kernels(layer):
    return [w for w in layer.weights if "kernel" in w.name.split("/")[-1]]


def sparsity_report(model):
    """Fraction of exactly-zero weights in the conv / dense kernels: overall and per layer."""
    layers, zeros, total = {}, 0, 0
    for layer in model.layers:
        kernels = _kernels(layer)
        if not kernels:
            continue
        values = np.concatenate([np.ravel(w.numpy()) for w in kernels])
        z = int(np.count_nonzero(values == 0))
        layers[layer.name] = z / values.size
        zeros, total = zeros + z, total + values.size
    return {"overall": zeros / total if total else 0.0, "layers": layers}
