"""Channel re-ordering (shuffle, interleaving) as one constant GATHER on the channel axis."""
import numpy as np
import tensorflow as tf

keras = tf.keras


def shuffle_permutation(channels, groups):
    """Channel shuffle: output channel groups*j + m is input channel m*(channels/groups) + j."""
    if channels % groups:
        raise ValueError(f"{channels} channels cannot be shuffled in {groups} groups")
    per_group = channels // groups
    return [m * per_group + j for j in range(per_group) for m in range(groups)]


def interleave_permutation(channels):
    """Indices into concat([a, b]) (each `channels` wide) giving [a0, b0, a1, b1, ...]."""
    return [i for c in range(channels) for i in (c, channels + c)]


class ChannelGather(keras.layers.Layer):
    """Concatenates its inputs on the channel axis, then re-orders channels by `indices`."""

    def __init__(self, indices, **kwargs):
        super().__init__(**kwargs)
        self.indices = [int(i) for i in indices]

    def call(self, inputs):
        x = tf.concat(inputs, axis=-1) if isinstance(inputs, (list, tuple)) else inputs
        return tf.gather(x, np.asarray(self.indices, dtype=np.int32), axis=-1)

    def compute_output_shape(self, input_shape):
        first = input_shape[0] if isinstance(input_shape, (list, tuple)) and \
            isinstance(input_shape[0], (list, tuple, tf.TensorShape)) else input_shape
        return tf.TensorShape(list(first[:-1]) + [len(self.indices)])

    def get_config(self):
        config = super().get_config()
        config.update(indices=self.indices)
        return config


class ChannelSplit(keras.layers.Layer):
    """Splits the channel axis into `groups` contiguous equal parts (one TFLite SPLIT), or
    into parts of the given `sizes` (one SPLIT_V; channel pruning leaves unequal parts)."""

    def __init__(self, groups=None, sizes=None, **kwargs):
        super().__init__(**kwargs)
        if sizes is not None:
            sizes = [int(s) for s in sizes]
            if not sizes or min(sizes) < 1:
                raise ValueError(f"split sizes must be positive, got {sizes}")
            if groups is not None and int(groups) != len(sizes):
                raise ValueError(f"{len(sizes)} sizes for {groups} groups")
            groups = len(sizes)
        if groups is None:
            raise ValueError("ChannelSplit needs groups or sizes")
        self.groups = int(groups)
        self.sizes = sizes

    def _sizes(self, channels):
        if self.sizes is not None:
            if sum(self.sizes) != channels:
                raise ValueError(f"split sizes {self.sizes} do not add up to {channels} channels")
            return self.sizes
        if channels % self.groups:
            raise ValueError(f"{channels} channels cannot be split in {self.groups} groups")
        return [channels // self.groups] * self.groups

    def call(self, x):
        sizes = self._sizes(x.shape[-1])
        if self.sizes is None:
            return tf.split(x, self.groups, axis=-1)
        return tf.split(x, sizes, axis=-1)

    def compute_output_shape(self, input_shape):
        return [tf.TensorShape(list(input_shape[:-1]) + [s])
                for s in self._sizes(int(input_shape[-1]))]

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups)
        if self.sizes is not None:
            config.update(sizes=self.sizes)
        return config
