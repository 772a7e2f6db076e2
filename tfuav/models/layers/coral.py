"""Edge TPU forms of the layers the Coral compiler cannot map, computing the same function
with the same weights (the `coral` form of a zoo model, `build_model(..., form="coral")`).

- `PermutedGroupedConv1x1` replaces ChannelGather (TFLite GATHER, not an Edge TPU op) followed
  by a grouped 1x1 Conv2D (a grouped CONV_2D, newer than the Edge TPU compiler): the channel
  permutation and the group structure are folded into one dense 1x1 kernel (the weights are
  moved, not computed). Zeros quantize to zero and each output channel keeps its own nonzero
  weights, so the per-channel int8 weights, the int32 accumulators and the requantization are
  the grouped convolution's: exact in int8. It costs 2C x C_out instead of 2C/G x C_out
  multiply-accumulates per pixel, which the Edge TPU's matrix unit runs at full rate. (The
  dense kernel is the layer's variable, since the converter does not fold a kernel computed
  in the graph: it would stay as TILE/GATHER ops on the weights.)
- `CoralGlobalResponseNorm` replaces GlobalResponseNorm's DIV (not an Edge TPU op) by a
  multiplication with RSQRT squared, and its channel norms (a MEAN over the innermost axis,
  which the Edge TPU maps only for sizes that are multiples of 4) by a MEAN over height and
  width. The L2 normalization that keeps the norm well scaled in int8 stays.
"""
import numpy as np
import tensorflow as tf

from tfuav.models.layers.grn import GlobalResponseNorm

keras = tf.keras


def group_mask(c_in, c_out, groups, order=None):
    """0/1 matrix (c_in, c_out): 1 where input channel i (before the re-order `order`,
    mixed[j] = x[order[j]]) feeds output channel o in a grouped 1x1 convolution."""
    per_group, out_per_group = c_in // groups, c_out // groups
    mask = np.zeros((c_in, c_out), np.float32)
    for g in range(groups):
        mask[g * per_group:(g + 1) * per_group, g * out_per_group:(g + 1) * out_per_group] = 1
    if order is not None:
        permuted = np.empty_like(mask)
        permuted[np.asarray(order, np.int64)] = mask
        mask = permuted
    return mask


def grouped_to_dense_kernel(kernel, groups, order=None):
    """Dense (1, 1, C_in, C_out) numpy kernel equal to a grouped 1x1 kernel
    (1, 1, C_in/groups, C_out) applied after re-ordering the input channels by `order`.

    Every weight is copied, never computed: the dense convolution sums the same products as
    the grouped one, plus exact zeros."""
    kernel = np.asarray(kernel)
    per_group, c_out = kernel.shape[2], kernel.shape[3]
    c_in = per_group * groups
    out_per_group = c_out // groups
    dense = np.zeros((c_in, c_out), kernel.dtype)
    for g in range(groups):
        dense[g * per_group:(g + 1) * per_group, g * out_per_group:(g + 1) * out_per_group] = \
            kernel[0, 0, :, g * out_per_group:(g + 1) * out_per_group]
    if order is not None:
        permuted = np.empty_like(dense)
        permuted[np.asarray(order, np.int64)] = dense
        dense = permuted
    return dense.reshape(1, 1, c_in, c_out)


def dense_to_grouped_kernel(dense, groups, order=None):
    """Inverse of grouped_to_dense_kernel (weights outside the groups are dropped)."""
    dense = np.asarray(dense)[0, 0]
    if order is not None:
        dense = dense[np.asarray(order, np.int64)]
    c_in, c_out = dense.shape
    per_group, out_per_group = c_in // groups, c_out // groups
    kernel = np.zeros((per_group, c_out), dense.dtype)
    for g in range(groups):
        cols = slice(g * out_per_group, (g + 1) * out_per_group)
        kernel[:, cols] = dense[g * per_group:(g + 1) * per_group, cols]
    return kernel.reshape(1, 1, per_group, c_out)


class PermutedGroupedConv1x1(keras.layers.Layer):
    """Concatenation of the inputs, channel re-order by `order`, grouped 1x1 conv with bias,
    as ONE dense 1x1 CONV_2D: the kernel variable is the dense (1, 1, C_in, filters) kernel in
    the inputs' channel order, zero outside the groups (a constraint keeps it so in training).
    Weights of a grouped Conv2D convert with grouped_to_dense_kernel (`coral_form` does it)."""

    def __init__(self, filters, groups, order=None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.groups = int(filters), int(groups)
        self.order = None if order is None else [int(i) for i in order]

    def build(self, input_shape):
        shapes = input_shape if isinstance(input_shape, (list, tuple)) and \
            isinstance(input_shape[0], (list, tuple, tf.TensorShape)) else [input_shape]
        c_in = sum(int(s[-1]) for s in shapes)
        if c_in % self.groups or self.filters % self.groups:
            raise ValueError(f"{c_in} -> {self.filters} channels cannot form {self.groups} groups")
        if self.order is not None and sorted(self.order) != list(range(c_in)):
            raise ValueError(f"order must be a permutation of the {c_in} input channels")
        mask = group_mask(c_in, self.filters, self.groups, self.order).reshape(
            1, 1, c_in, self.filters)
        grouped_init = keras.initializers.GlorotUniform()

        def init(shape, dtype=None):
            grouped = grouped_init((1, 1, c_in // self.groups, self.filters), dtype=dtype)
            return tf.constant(grouped_to_dense_kernel(grouped.numpy(), self.groups, self.order),
                               dtype=dtype)

        self.kernel = self.add_weight(name="kernel", shape=(1, 1, c_in, self.filters),
                                      initializer=init,
                                      constraint=lambda w: w * tf.constant(mask, w.dtype))
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        x = tf.concat(inputs, axis=-1) if isinstance(inputs, (list, tuple)) else inputs
        out = tf.nn.conv2d(x, self.kernel, strides=1, padding="VALID")
        return tf.nn.bias_add(out, self.bias)

    def set_grouped_weights(self, kernel, bias):
        """Take the weights of the grouped Conv2D this layer replaces."""
        self.set_weights([grouped_to_dense_kernel(kernel, self.groups, self.order), bias])

    def compute_output_shape(self, input_shape):
        first = input_shape[0] if isinstance(input_shape, (list, tuple)) and \
            isinstance(input_shape[0], (list, tuple, tf.TensorShape)) else input_shape
        return tf.TensorShape(list(first[:-1]) + [self.filters])

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, groups=self.groups, order=self.order)
        return config


class CoralGlobalResponseNorm(GlobalResponseNorm):
    """GlobalResponseNorm (same gamma, beta, epsilon; same function) in Edge TPU ops:

        u = L2_NORMALIZATION of each channel over H*W (RESHAPE, TRANSPOSE, and back)
        n_c = MEAN_hw(x * u) = ||x_c|| / (H*W)
        m = MEAN_c(n) + epsilon / (H*W);  r = RSQRT(m)
        out = x * (1 + gamma * (n * r) * r) + beta        (r * r = 1 / m, no DIV)
    """

    def call(self, x):
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        per_channel = tf.transpose(tf.reshape(x, (-1, h * w, c)), (0, 2, 1))
        unit = tf.math.l2_normalize(per_channel, axis=-1)
        unit = tf.reshape(tf.transpose(unit, (0, 2, 1)), (-1, h, w, c))
        norm = tf.reduce_mean(x * unit, axis=(1, 2), keepdims=True)  # (B, 1, 1, C)
        r = tf.math.rsqrt(self.norm_denominator(norm, h * w))
        scale = 1.0 + self.gamma * ((norm * r) * r)
        return x * scale + self.beta
