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
    """Splits the channel axis into `groups` contiguous equal parts (one TFLite SPLIT)."""

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)

    def call(self, x):
        if x.shape[-1] % self.groups:
            raise ValueError(f"{x.shape[-1]} channels cannot be split in {self.groups} groups")
        return tf.split(x, self.groups, axis=-1)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape[:-1]) + [input_shape[-1] // self.groups]
        return [tf.TensorShape(shape)] * self.groups

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups)
        return config
